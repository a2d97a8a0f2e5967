// stats_merge.wgsl — merges groups of Welford partials between the first stage of the statistics
// reduction (stats_*.wgsl) and forward_finalize.wgsl, when the first stage leaves many slices.
//
// Computes: for channel c and group g, the Chan merge of partials s = g·G .. min((g+1)·G, slices)-1
//   in that order, as one partial (n, mean, M2, pivot) in the same format.
// Bindings (group 0):
//   0 params   uniform  Params
//   1 parts    storage, read_write  the workspace as vec4<f32>: the sources (n, mean_v, M2, pivot) per
//                                    (slice, channel) at src + s·C + c, the results per (group,
//                                    channel) at dst + g·C + c, in disjoint ranges (one binding,
//                                    since WebGPU forbids binding one buffer as read and as write)
// Dispatch: one thread per (group, channel), t = g·C + c = thread_index(); threads past groups·C do
//   nothing.
// Method: chan_merge() in slice order: deterministic, no atomics; each level divides the serial
//   work of forward_finalize.wgsl by G. Every slice holds at least one value, so n > 0.

override WG: u32 = 256;

struct Params {
  C: u32,
  slices: u32,
  group: u32,
  groups: u32,
  src: u32,
  dst: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> parts: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg, WG);
  if (t >= params.groups * params.C) { return; }
  let c = t % params.C;
  let g = t / params.C;
  let s0 = g * params.group;
  let s1 = min(s0 + params.group, params.slices);
  var acc = parts[params.src + s0 * params.C + c];
  for (var s = s0 + 1u; s < s1; s++) {
    acc = chan_merge(acc, parts[params.src + s * params.C + c]);
  }
  parts[params.dst + t] = acc;
}

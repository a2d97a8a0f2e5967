// grad_sums_merge.wgsl — adds groups of gradient-sum partials between the first stage of the
// backward reduction (grad_sums_*.wgsl) and backward_finalize.wgsl, when the first stage leaves
// many slices.
//
// Computes: for channel c and group g, the sum of the vec2 partials (Σdy, Σdy·(x - mean)) of
//   slices s = g·G .. min((g+1)·G, slices)-1, in that order.
// Bindings (group 0):
//   0 params   uniform  Params
//   1 parts    storage, read_write  the workspace as vec2<f32>: the sources (Σdy, Σdy·(x - mean)) per
//                                    (slice, channel) at src + s·C + c, the results per (group,
//                                    channel) at dst + g·C + c, in disjoint ranges (one binding,
//                                    since WebGPU forbids binding one buffer as read and as write)
// Dispatch: one thread per (group, channel), t = g·C + c = thread_index(); threads past groups·C do
//   nothing.
// Method: sequential sum in slice order: deterministic, no atomics.

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
@group(0) @binding(1) var<storage, read_write> parts: array<vec2<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg, WG);
  if (t >= params.groups * params.C) { return; }
  let c = t % params.C;
  let g = t / params.C;
  let s0 = g * params.group;
  let s1 = min(s0 + params.group, params.slices);
  var acc = vec2<f32>(0.0);
  for (var s = s0; s < s1; s++) {
    acc += parts[params.src + s * params.C + c];
  }
  parts[params.dst + t] = acc;
}

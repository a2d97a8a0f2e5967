// merge.wgsl — the body of the merge levels (stats_merge.wgsl, grad_sums_merge.wgsl): for each
// (group, channel), the group's partials combined in slice order. The including kernel declares
// the partial type `part` and `fn combine(a: part, b: part) -> part`.

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
@group(0) @binding(1) var<storage, read_write> parts: array<part>;

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
    acc = combine(acc, parts[params.src + s * params.C + c]);
  }
  parts[params.dst + t] = acc;
}

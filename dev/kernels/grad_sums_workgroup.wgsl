// grad_sums_workgroup.wgsl — per-channel gradient sums, first stage.
//
// Computes: for channel c and slice s, the partial sums of dy and of dy·(x - mean), where
//   x - mean = (x - pivot) - mean_v with the pivot and mean_v saved by the forward pass.
// Bindings (group 0):
//   0 params   uniform  Params
//   1 stats    storage, read        2 vec4 per channel; [2c] = (pivot, mean_v, scale, shift)
//   2 x        storage, read        [outer, C, inner] f32, the forward input
//   3 dy       storage, read        same shape, the upstream gradient
//   4 partials storage, read_write  vec2 per (slice, channel): (Σdy, Σdy·(x - mean)), index s·C + c
// Dispatch: workgroups (min(C, cFold), slices, ceil(C / cFold)); channel = wg.z·cFold + wg.x;
//   WG threads stride the slice; WG must be a power of two.
// Method: per-thread sequential sums, then a fixed-order tree in workgroup memory: deterministic,
//   no atomics. Centering on the saved mean keeps Σdy·(x - mean) free of offset cancellation.

override WG: u32 = 256;

struct Params {
  C: u32,
  inner: u32,
  M: u32,
  chunk: u32,
  cFold: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<vec2<f32>>;

var<workgroup> sh: array<vec2<f32>, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let c = wg.z * params.cFold + wg.x;
  let valid = c < params.C;
  let start = wg.y * params.chunk;
  var end = min(start + params.chunk, params.M);
  if (!valid) { end = start; }
  let k = stats[2u * min(c, params.C - 1u)];

  var acc = vec2<f32>(0.0, 0.0);
  for (var m = start + t; m < end; m += WG) {
    let o = m / params.inner;
    let i = m - o * params.inner;
    let idx = (o * params.C + c) * params.inner + i;
    let g = dy[idx];
    acc += vec2<f32>(g, g * ((x[idx] - k.x) - k.y));
  }
  sh[t] = acc;
  workgroupBarrier();

  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (t < stride) {
      sh[t] = sh[t] + sh[t + stride];
    }
    workgroupBarrier();
  }

  if (t == 0u && valid) {
    partials[wg.y * params.C + c] = sh[0];
  }
}

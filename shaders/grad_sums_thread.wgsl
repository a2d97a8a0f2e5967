// grad_sums_thread.wgsl — per-channel gradient sums, first stage, one thread per (channel, slice):
// any layout, with no workgroup memory and no barriers (the counterpart of stats_thread.wgsl).
//
// Computes: for channel c and slice s (sliced as stats_thread.wgsl, so within one ghost batch,
//   whose statistics it reads), the sums of dy and of dy·(x - mean), with
//   x - mean = (x - pivot) - mean_v from the saved statistics.
//   Under an epilogue (EPILOGUE ≠ 0), dy is first masked by the forward output: dy where y > 0.
// Bindings (group 0):
//   0 params   uniform  Params
//   1 stats    storage, read        2 vec4 per channel (see prelude.wgsl)
//   2 x        storage, read        [outer, C, inner] xf, the forward input
//   3 dy       storage, read        same shape
//   4 partials storage, read_write  vec2 per (slice, channel): (Σdy, Σdy·(x - mean)), index s·C + c
//   5 y        storage, read        same shape: the forward output, whose sign masks dy (EPILOGUE ≠ 0)
// Dispatch: one thread per (slice, channel), t = s·C + c = thread_index(); threads past slices·C
//   do nothing.
// Method: sequential sums per thread (deterministic, no atomics, no barriers; NaN where some
//   |dy| > RANGE, see prelude.wgsl);
//   grad_sums_merge.wgsl and backward_finalize.wgsl add the slices in order.

// Tensor element type: f32, or f16 where the device has shader-f16 (src/gpu/kernel.ts rewrites
// this alias); all arithmetic is f32.
alias xf = f32;

override WG: u32 = 64;

const EPILOGUE: u32 = 0u;

//! include thread_params.wgsl
@group(0) @binding(1) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x: array<xf>;
@group(0) @binding(3) var<storage, read> dy: array<xf>;
@group(0) @binding(4) var<storage, read_write> partials: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read> y: array<xf>;

/// The upstream gradient of bn's output: dy, or dy through the relu epilogue (mask from y).
fn upstream(i: u32) -> f32 {
  let g = f32(dy[i]);
  if (EPILOGUE == 0u) { return g; }
  return relu_grad4(vec4<f32>(g), vec4<f32>(f32(y[i]))).x;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg, WG);
  if (t >= params.slices * params.C) { return; }
  let c = t % params.C;
  let s = t / params.C;
  // Slices never straddle ghost batches: spg slices per ghost of Mg values (one ghost: spg = slices, Mg = M).
  let ghost = s / params.spg;
  let start = ghost * params.Mg + (s - ghost * params.spg) * params.chunk;
  let end = min(start + params.chunk, ghost * params.Mg + params.Mg);
  let k = stats[2u * (ghost * params.C + c)];
  var acc = vec2<f32>(0.0, 0.0);
  var far = 0.0;
  var o = start / params.inner;
  var i = start - o * params.inner;
  for (var m = start; m < end; m++) {
    let idx = (o * params.C + c) * params.inner + i;
    let g = upstream(idx);
    far = max(far, abs(g));
    acc += vec2<f32>(g, g * ((f32(x[idx]) - k.x) - k.y));
    i += 1u;
    if (i == params.inner) { i = 0u; o += 1u; }
  }
  partials[t] = select(acc, vec2<f32>(nan()), far > RANGE);
}

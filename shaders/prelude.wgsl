// prelude.wgsl — joined in front of every kernel by the loader (scripts/wgsl.ts), as one module.
// It holds what the kernels share: the thread index of a 2-D grid of 1-D workgroups, Chan's merge
// of Welford partials, the finiteness test, and the accessors of the per-channel `stats` buffer.
// It declares no bindings and no element type, so any kernel can take it; Tint drops what a kernel
// does not call.

// The `stats` buffer holds two vec4<f32> per channel, written by forward_finalize.wgsl (training)
// or eval_coeffs.wgsl (inference) and read by the elementwise passes and backward:
//   stats[2c]     = (pivot, mean_v, scale, shift)  apply: y = ((x - pivot) - mean_v)·scale + shift
//   stats[2c + 1] = (invstd, r, d, 0)              backward: Batch Renorm's r and d (1 and 0 otherwise)

/// Index of this thread in a dispatch of (gx, gy) workgroups of `wg` threads along x, with
/// gx ≤ 65535: the grid that gridFor() in src/gpu/kernel.ts makes for n threads.
fn thread_index(gid: vec3<u32>, nwg: vec3<u32>, wg: u32) -> u32 {
  return gid.y * (nwg.x * wg) + gid.x;
}

/// Chan's parallel merge of two Welford partials (n, mean, M2, pivot) of the same pivot, in that
/// order: deterministic wherever the order of calls is fixed.
fn chan_merge(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
  let n = a.x + b.x;
  let delta = b.y - a.y;
  return vec4<f32>(n, a.y + delta * (b.x / n), a.z + b.z + delta * delta * (a.x * b.x / n), a.w);
}

/// True unless v is ±Inf or NaN; tested on the bits, which fast-math cannot fold away.
fn is_finite(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

/// WGSL's clamp may return a bound for NaN; this one keeps the NaN.
fn clamp_nan(v: f32, lo: f32, hi: f32) -> f32 {
  return select(clamp(v, lo, hi), v, is_nan(v));
}

/// Largest |x - pivot| (and |dy|) the reductions take: 2^47. Below it no sum of squares over 2^31
/// values can overflow f32. A channel with a value beyond it, or ±Inf, gets NaN statistics (or
/// gradient sums), as NaN in the data does; the float64 CPU path does the same
/// (src/cpu/reference.ts, RANGE).
const RANGE: f32 = 140737488355328.0;

/// A quiet NaN's bits, read at run time (a NaN constant expression is a shader-creation error).
var<private> NAN_BITS: u32 = 0x7fc00000u;

fn nan() -> f32 {
  return bitcast<f32>(NAN_BITS);
}

/// The four coefficient vectors of channels 4·c4 .. 4·c4+3, one channel per component:
/// [0] pivot, [1] mean_v, [2] scale, [3] shift.
fn coeffs4(stats: ptr<storage, array<vec4<f32>>, read>, c4: u32) -> mat4x4<f32> {
  let c = 8u * c4;
  return transpose(mat4x4<f32>((*stats)[c], (*stats)[c + 2u], (*stats)[c + 4u], (*stats)[c + 6u]));
}

// Fused epilogues (cuDNN's BN_ACTIVATION and BN_ADD_ACTIVATION). A kernel that has them declares
// `const EPILOGUE: u32 = 0u;` (0 none, 1 relu: y = relu(bn(x)), 2 add_relu: y = relu(bn(x) + z)),
// which src/gpu/kernel.ts rewrites for the pipeline, so the plain pipeline has no trace of them.

/// relu that keeps NaN (max(v, 0) may return 0 for NaN), as PyTorch's does.
fn relu4(v: vec4<f32>) -> vec4<f32> {
  return select(v, vec4<f32>(0.0), v < vec4<f32>(0.0));
}

/// The gradient through relu, taken from its output y: dy where y > 0, else 0 (PyTorch's
/// threshold_backward on the result; a NaN output passes no gradient).
fn relu_grad4(dy: vec4<f32>, y: vec4<f32>) -> vec4<f32> {
  return select(vec4<f32>(0.0), dy, y > vec4<f32>(0.0));
}

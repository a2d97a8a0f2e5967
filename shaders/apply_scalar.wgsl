// apply_scalar.wgsl — the normalisation pass, one element per thread: any layout (the path for
// shapes the vec4 passes cannot take).
//
// Computes: every output element from its input and its channel's coefficients (written by
//   forward_finalize.wgsl in training, eval_coeffs.wgsl in inference). This is batch norm's
//   gamma·(x - mean)·invstd + beta, and Batch Renorm's gamma·(x̂·r + d) + beta. With ghost
//   batches (the tensor's `count` in consecutive blocks of `block` elements), each block's own.
// Epilogue (EPILOGUE, prelude.wgsl): y = relu(bn) for 1, relu(bn + z) for 2.
// Bindings (group 0):
//   0 params uniform  Params
//   1 stats  storage, read        2 vec4 per channel (see prelude.wgsl)
//   2 x      storage, read        [outer, C, inner] xf
//   3 y      storage, read_write  same shape as x (a different buffer range)
//   4 z      storage, read        same shape: the residual of the add_relu epilogue (EPILOGUE 2)
// Dispatch: one thread per element, index thread_index(); threads past `count` do nothing.
// Method: subtracting the pivot first is exact near the channel's values, so large offsets do not
//   cost precision; then one multiply-add.

//! include element.wgsl
//! include infer.wgsl

struct Params {
  C: u32,
  inner: u32,
  count: u32,
  block: u32,
  eps: f32,
  flags: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> stats: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x: array<xf>;
@group(0) @binding(3) var<storage, read_write> y: array<xf>;
@group(0) @binding(4) var<storage, read> z: array<xf>;

/// y's value under the epilogue: bn, relu(bn) or relu(bn + z).
fn epilogue(i: u32, v: f32) -> xf {
  var r = v;
  if (EPILOGUE == 2u) { r += f32(z[i]); }
  if (EPILOGUE != 0u) { r = relu4(vec4<f32>(r)).x; }
  return xf(r);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = thread_index(gid, nwg, WG);
  if (idx >= params.count) { return; }
  // Ghost batch idx / block's coefficients (block = count without ghosts).
  var v = (idx / params.inner) % params.C;
  // Uniform branch: only ghost plans pay for the division.
  if (params.block < params.count) { v += params.C * (idx / params.block); }
  let k = coeff(v);
  // The first element of each channel in the first sample saves its inference coefficients.
  if (INFER != 0u && idx < params.C * params.inner && idx % params.inner == 0u) { save_infer(v); }
  y[idx] = epilogue(idx, ((f32(x[idx]) - k.x) - k.y) * k.z + k.w);
}

// apply_io.wgsl — what the 16-byte apply kernels (apply_vec4.wgsl, apply_rows.wgsl) share: the
// element type, the workgroup size, the epilogue, bindings 1 to 8, the epilogue helper and the
// coefficients (lib/infer.wgsl). The including kernel declares Params (with eps and flags) and
// binding 0.

//! include element.wgsl
//! include infer.wgsl

@group(0) @binding(1) var<storage, read_write> stats: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x: array<vec4<xf>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<xf>>;
@group(0) @binding(4) var<storage, read> z: array<vec4<xf>>;

/// y's value under the epilogue: bn, relu(bn) or relu(bn + z).
fn epilogue(i: u32, v: vec4<f32>) -> vec4<xf> {
  var r = v;
  if (EPILOGUE == 2u) { r += vec4<f32>(z[i]); }
  if (EPILOGUE != 0u) { r = relu4(r); }
  return vec4<xf>(r);
}

// dx_io.wgsl — what the 16-byte input-gradient kernels (dx_vec4.wgsl, dx_rows.wgsl) share: the
// element type, the workgroup size, the epilogue, bindings 1 to 7 and the upstream gradient. The
// including kernel declares Params and binding 0.

//! include element.wgsl

@group(0) @binding(1) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> coef: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> x: array<vec4<xf>>;
@group(0) @binding(4) var<storage, read> dy: array<vec4<xf>>;
@group(0) @binding(5) var<storage, read_write> dx: array<vec4<xf>>;
@group(0) @binding(6) var<storage, read> y: array<vec4<xf>>;
@group(0) @binding(7) var<storage, read_write> dz: array<vec4<xf>>;

/// The upstream gradient of bn's output: dy, or dy through the relu epilogue (mask from y).
fn upstream(i: u32) -> vec4<f32> {
  let g = vec4<f32>(dy[i]);
  if (EPILOGUE == 0u) { return g; }
  return relu_grad4(g, vec4<f32>(y[i]));
}

/// The upstream gradient at i; the add_relu epilogue also writes it out as the residual's gradient.
fn upstream_dz(i: u32) -> vec4<f32> {
  let g = upstream(i);
  if (EPILOGUE == 2u) { dz[i] = vec4<xf>(g); }
  return g;
}

// grad_sums_io.wgsl — what the 16-byte gradient-sum kernels (grad_sums_rows.wgsl,
// grad_sums_runs.wgsl) share: the element type, the workgroup size, the epilogue, bindings 1 to 5
// and the upstream gradient. The including kernel declares Params and binding 0.

//! include element.wgsl

@group(0) @binding(1) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x: array<vec4<xf>>;
@group(0) @binding(3) var<storage, read> dy: array<vec4<xf>>;
@group(0) @binding(4) var<storage, read_write> partials: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read> y: array<vec4<xf>>;

/// The upstream gradient of bn's output: dy, or dy through the relu epilogue (mask from y).
fn upstream(i: u32) -> vec4<f32> {
  let g = vec4<f32>(dy[i]);
  if (EPILOGUE == 0u) { return g; }
  return relu_grad4(g, vec4<f32>(y[i]));
}

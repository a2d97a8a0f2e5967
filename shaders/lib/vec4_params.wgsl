// vec4_params.wgsl — the uniforms of the vec4 elementwise kernels (apply_vec4, dx_vec4): one thread per vec4.

struct Params {
  C: u32,
  inner: u32,
  count4: u32,
}

@group(0) @binding(0) var<uniform> params: Params;

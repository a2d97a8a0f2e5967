// rows_params.wgsl — the uniforms of the row kernels (stats_rows, grad_sums_rows, dx_rows): one thread per (slice, 4 channels).

struct Params {
  C4: u32,
  M: u32,
  chunk: u32,
  slices: u32,
}

@group(0) @binding(0) var<uniform> params: Params;

// thread_params.wgsl — the uniforms of the per-thread reductions (stats_thread, grad_sums_thread): one thread per (channel, slice).

struct Params {
  C: u32,
  inner: u32,
  M: u32,
  chunk: u32,
  slices: u32,
  spg: u32,
  Mg: u32,
}

@group(0) @binding(0) var<uniform> params: Params;

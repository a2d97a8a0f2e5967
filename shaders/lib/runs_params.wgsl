// runs_params.wgsl — the uniforms of the run reductions (stats_runs, grad_sums_runs): one thread per (channel, slice) along runs.

struct Params {
  C: u32,
  inner4: u32,
  M4: u32,
  slices: u32,
}

@group(0) @binding(0) var<uniform> params: Params;

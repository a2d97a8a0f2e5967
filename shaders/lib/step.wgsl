// step.wgsl — a training step's values: the module's step count (num_batches_tracked), the new
// statistic's weight and the renorm clip [rmin, rmax], |d| <= dmax. step_state.wgsl writes it for a
// module, a functional plan holds constants; forward_finalize.wgsl reads it (as a uniform).

struct Step {
  count: u32,
  factor: f32,
  rmax: f32,
  dmax: f32,
  rmin: f32,
}

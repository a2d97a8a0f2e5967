// advance.wgsl — a module's step, advanced on the GPU at the start of each training step, so that
// steps encoded into one command buffer each see their own values without the host writing
// anything between them: step_state.wgsl as a pass of its own (synchronized steps), the statistics
// kernels' STEP variant in the same pass as their reduction (lib/step_switch.wgsl).
//
// From the module's count n of training steps so far (num_batches_tracked) and its schedule:
// factor = 1/(n+1) (flag CUMULATIVE: momentum null, a cumulative average), 1 - momentum (flag
// KERAS) or momentum; the Batch Renorm clip of step n, rmax and dmax, each piecewise linear in n
// between up to 8 breakpoints (a single point is a constant), and rmin = 1/rmax (the paper's
// symmetric clip); then n ← n + 1. The finalize kernels read factor, rmax, dmax and rmin in the
// next dispatch. Steps are counted in u32, and a step count enters the schedule as f32, exact up
// to 2^24.

const CUMULATIVE: u32 = 1u;
const KERAS: u32 = 2u;

struct Schedule {
  flags: u32,
  momentum: f32,
  rmax_points: u32,
  dmax_points: u32,
  // rmax breakpoints (step, value) at [0, rmax_points), dmax breakpoints at [8, 8 + dmax_points).
  points: array<vec2<f32>, 16>,
}

//! include step.wgsl

// Bindings 3 and 4, free in every kernel that includes this.
@group(0) @binding(3) var<storage, read> schedule: Schedule;
@group(0) @binding(4) var<storage, read_write> state: Step;

/// The piecewise-linear function of breakpoints [first, first + count) at step n: the first value
/// up to the first step, the last value from the last step on, linear in between.
fn piecewise(n: f32, first: u32, count: u32) -> f32 {
  for (var i = 0u; i < count; i++) {
    let b = schedule.points[first + i];
    if (n <= b.x) {
      if (i == 0u) { return b.y; }
      let a = schedule.points[first + i - 1u];
      return a.y + (b.y - a.y) * ((n - a.x) / (b.x - a.x));
    }
  }
  return schedule.points[first + count - 1u].y;
}

/// One thread advances the step: reads the count, evaluates the schedule, writes the Step.
fn advance_step() {
  let n = state.count;
  var factor = schedule.momentum;
  if ((schedule.flags & CUMULATIVE) != 0u) {
    factor = 1.0 / f32(n + 1u);
  } else if ((schedule.flags & KERAS) != 0u) {
    factor = 1.0 - schedule.momentum;
  }
  let step = f32(n);
  let rmax = piecewise(step, 0u, schedule.rmax_points);
  state = Step(n + 1u, factor, rmax, piecewise(step, 8u, schedule.dmax_points), 1.0 / rmax);
}

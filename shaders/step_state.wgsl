// step_state.wgsl — a module's per-step values as a pass of its own (lib/advance.wgsl): what a
// synchronized step runs before it normalises with imported statistics (a plain training step
// advances the step in its statistics pass instead, their STEP variant).
//
// Computes: the Step (count, factor, rmax, dmax, rmin) of the module's next step from its count
//   and schedule, then count ← count + 1 (lib/advance.wgsl).
// Bindings (group 0):
//   3 schedule storage, read        Schedule, written by the module when it is built (and before
//                                    each awaited step whose clip a host function computes)
//   4 state    storage, read_write  Step: (count, factor, rmax, dmax, rmin)
// Dispatch: one workgroup of one thread.
// Method: one thread reads the count, evaluates the schedule and writes the step; the next
//   dispatches of the pass see its writes.

//! include advance.wgsl

@compute @workgroup_size(1)
fn main() {
  advance_step();
}

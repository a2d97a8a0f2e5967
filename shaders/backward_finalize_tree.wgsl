// backward_finalize_tree.wgsl — per-channel gradient coefficients and dgamma/dbeta, the last
// stage of backward's reduction (kernel version 5): backward_finalize.wgsl's work for one batch (no
// ghost batches), with the channel's slices added as a tree in workgroup memory.
//
// Computes, per channel c, from its `slices` partials (Σdy, Σdy·(x - mean)) and its saved (invstd,
//   r, d): what backward_finalize.wgsl computes with one ghost (lib/backward_finalize.wgsl).
// Bindings (group 0): those of backward_finalize.wgsl.
// Dispatch: one workgroup of WG threads per channel, workgroup index c = wid.y·nwg.x + wid.x;
//   workgroups past C do nothing.
// Method: thread t adds slices t, t + WG, ... in that order (at most 8 while slices ≤ 8·WG), then
//   a fixed-order tree over the threads (log2 WG levels); thread 0 writes the coefficients over the
//   channel's slices 0 and 1, which every thread of its workgroup read before the first barrier,
//   and no other workgroup reads. Deterministic, no atomics.

override WG: u32 = 256;

//! include backward_finalize.wgsl

alias part = vec2<f32>;
const EMPTY = vec2<f32>(0.0);

fn combine(a: part, b: part) -> part {
  return a + b;
}

//! include tree.wgsl

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) t: u32,
) {
  let c = wid.y * nwg.x + wid.x;
  if (c >= params.C) { return; } // uniform across the workgroup: the barriers stay uniform
  let sums = merge_channel(c, t);
  if (t == 0u) {
    write_param_grads(c, finish_ghost_grad(c, 0u, sums));
  }
}

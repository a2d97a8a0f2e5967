// forward_finalize_tree.wgsl — per-channel batch statistics, second and last stage of a training
// forward (kernel version 5): forward_finalize.wgsl's work for one batch (no ghost batches), with
// the channel's partials merged as a tree in workgroup memory instead of one after another.
//
// Computes, per channel c, from its `slices` Welford partials of v = x - pivot: what
//   forward_finalize.wgsl computes with one ghost (lib/finalize.wgsl: mean, biased variance,
//   invstd, Batch Renorm's r and d, the coefficients and saved statistics, the running update).
// Bindings (group 0): those of forward_finalize.wgsl (lib/finalize.wgsl).
// Dispatch: one workgroup of WG threads per channel, workgroup index c = wid.y·nwg.x + wid.x
//   (gridFor's 2-D grid); workgroups past C do nothing.
// Method: thread t merges slices t, t + WG, t + 2·WG, ... in that order (at most 8 while slices ≤
//   8·WG, which the table keeps), then a fixed-order tree over the threads in workgroup memory
//   (log2 WG levels, barriers between); thread 0 finishes the channel. Every step has one order, so
//   results are bitwise deterministic; no atomics, no cross-workgroup communication.

override WG: u32 = 256;

//! include finalize.wgsl

alias part = vec4<f32>;
const EMPTY = vec4<f32>(0.0);

/// Chan's merge where either side may be empty (n = 0): the empty side contributes nothing.
fn combine(a: part, b: part) -> part {
  if (b.x == 0.0) { return a; }
  if (a.x == 0.0) { return b; }
  return chan_merge(a, b);
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
  let p = merge_channel(c, t);
  if (t == 0u) {
    let f = finish_ghost(c, 0u, p);
    update_running(c, f.x, f.y, 1u, f.z != 0.0);
  }
}

// grad_sums_merge.wgsl — adds groups of gradient-sum partials between the first stage of the
// backward reduction (grad_sums_*.wgsl) and backward_finalize.wgsl, when the first stage leaves
// many slices.
//
// Computes: for channel c and group g, the sum of the vec2 partials (Σdy, Σdy·(x - mean)) of
//   slices s = g·G .. min((g+1)·G, slices)-1, in that order.
// Bindings (group 0):
//   0 params   uniform  Params
//   1 parts    storage, read_write  the workspace as vec2<f32>: the sources (Σdy, Σdy·(x - mean)) per
//                                    (slice, channel) at src + s·C + c, the results per (group,
//                                    channel) at dst + g·C + c, in disjoint ranges (one binding,
//                                    since WebGPU forbids binding one buffer as read and as write)
// Dispatch: one thread per (group, channel), t = g·C + c = thread_index(); threads past groups·C do
//   nothing.
// Method: sequential sum in slice order (the first partial, then each next one added):
//   deterministic, no atomics.

alias part = vec2<f32>;

fn combine(a: part, b: part) -> part {
  return a + b;
}

//! include merge.wgsl

// stats_merge.wgsl — merges groups of Welford partials between the first stage of the statistics
// reduction (stats_*.wgsl) and forward_finalize.wgsl, when the first stage leaves many slices.
//
// Computes: for channel c and group g, the Chan merge of partials s = g·G .. min((g+1)·G, slices)-1
//   in that order, as one partial (n, mean, M2, pivot) in the same format.
// Bindings (group 0):
//   0 params   uniform  Params
//   1 parts    storage, read_write  the workspace as vec4<f32>: the sources (n, mean_v, M2, pivot) per
//                                    (slice, channel) at src + s·C + c, the results per (group,
//                                    channel) at dst + g·C + c, in disjoint ranges (one binding,
//                                    since WebGPU forbids binding one buffer as read and as write)
// Dispatch: one thread per (group, channel), t = g·C + c = thread_index(); threads past groups·C do
//   nothing.
// Method: chan_merge() in slice order: deterministic, no atomics; each level divides the serial
//   work of forward_finalize.wgsl by G. Every slice holds at least one value, so n > 0.

alias part = vec4<f32>;

/// Chan's merge of two Welford partials (prelude.wgsl).
fn combine(a: part, b: part) -> part {
  return chan_merge(a, b);
}

//! include merge.wgsl

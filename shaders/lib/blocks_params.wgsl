// blocks_params.wgsl — the uniforms and helpers of the block reductions (stats_blocks,
// grad_sums_blocks): one thread per (slice, block column) of a channels-first tensor whose blocks
// of four channels in one sample (4·inner values, inner vec4s) are 16-byte aligned.

struct Params {
  C4: u32,
  inner: u32,
  outer: u32,
  // Samples per slice.
  chunk: u32,
  slices: u32,
}

@group(0) @binding(0) var<uniform> params: Params;

/// The lanes of block vec4 w that hold values [first, first + inner) of the block (a channel's run).
fn in_run(w: u32, first: u32) -> vec4<bool> {
  let lane = vec4<u32>(4u * w) + vec4<u32>(0u, 1u, 2u, 3u);
  return (lane >= vec4<u32>(first)) & (lane < vec4<u32>(first + params.inner));
}

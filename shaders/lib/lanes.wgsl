// lanes.wgsl — the channel of each lane of a vec4 of a [outer, C, inner] tensor, for the 16-byte
// elementwise kernels (apply_vec4.wgsl, dx_vec4.wgsl). The including kernel's Params has C and inner.

/// The channels of the lanes of vec4 i: one channel (inner % 4 == 0), four consecutive ones
/// (inner == 1, C % 4 == 0), or, for any other inner ≥ 2, two: the lanes before the channel
/// boundary, then the next channel (NCHW 7×7: four channels of a sample are 49 vec4s).
fn lane_channels(i: u32) -> vec4<u32> {
  let e = 4u * i;
  let c = (e / params.inner) % params.C;
  if (params.inner == 1u) { return vec4<u32>(c, c + 1u, c + 2u, c + 3u); }
  let left = params.inner - e % params.inner;
  let next = select(c + 1u, 0u, c + 1u == params.C);
  return select(vec4<u32>(next), vec4<u32>(c), vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(left));
}

// stats_workgroup_vec4.wgsl — per-channel batch statistics, first stage, channels-last with C % 4 == 0
// (NHWC, [N,C], [N,L,C], NDHWC). Version 2: vec4 lanes across channels, rows across threads.
//
// Computes: for 4·LANES consecutive channels and slice s of the M rows, the Welford triple
//   (n, mean, M2) of v = x - pivot per channel, pivot = the channel's value in row 0 (exact
//   subtraction near the channel's values, as in version 1). Output is version 1's format, so
//   forward_finalize.wgsl merges it unchanged.
// Bindings (group 0):
//   0 params   uniform  Params
//   1 x        storage, read        [M, C] f32 read as vec4 (C4 = C/4 per row)
//   2 partials storage, read_write  vec4 per (slice, channel): (n, mean, M2, pivot), index s·C + c
// Dispatch: workgroups (ceil(C4 / LANES), slices); thread (lane, row) = local id (x, y).
//   Lane l reads the vec4 of channels 4·(g·LANES + l) .. +3 in rows start+row, +ROWS, ...: each
//   row read by the workgroup is LANES·16 contiguous bytes. ROWS must be a power of two.
// Method: per-thread vec4 Welford, then a fixed-order tree of Chan merges over the ROWS threads of
//   each lane in workgroup memory: deterministic, no atomics. Lanes past C4 carry no data but run
//   every barrier (uniform control flow).

override LANES: u32 = 16;
override ROWS: u32 = 16;

struct Params {
  C4: u32,
  M: u32,
  chunk: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> partials: array<vec4<f32>>;

var<workgroup> shN: array<f32, LANES * ROWS>;
var<workgroup> shMean: array<vec4<f32>, LANES * ROWS>;
var<workgroup> shM2: array<vec4<f32>, LANES * ROWS>;

@compute @workgroup_size(LANES, ROWS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let c4 = wg.x * LANES + lid.x;
  let valid = c4 < params.C4;
  let start = wg.y * params.chunk;
  var end = min(start + params.chunk, params.M);
  if (!valid) { end = start; }
  let pivot = select(vec4<f32>(0.0), x[min(c4, params.C4 - 1u)], valid);

  var n = 0.0;
  var mean = vec4<f32>(0.0);
  var m2 = vec4<f32>(0.0);
  for (var row = start + lid.y; row < end; row += ROWS) {
    let v = x[row * params.C4 + c4] - pivot;
    n += 1.0;
    let d = v - mean;
    mean += d / n;
    m2 += d * (v - mean);
  }
  let t = lid.y * LANES + lid.x;
  shN[t] = n;
  shMean[t] = mean;
  shM2[t] = m2;
  workgroupBarrier();

  for (var stride = ROWS / 2u; stride > 0u; stride = stride / 2u) {
    if (lid.y < stride) {
      let o = t + stride * LANES;
      let na = shN[t];
      let nb = shN[o];
      let nab = na + nb;
      if (nb > 0.0) {
        let delta = shMean[o] - shMean[t];
        shMean[t] = shMean[t] + delta * (nb / nab);
        shM2[t] = shM2[t] + shM2[o] + delta * delta * (na * nb / nab);
        shN[t] = nab;
      }
    }
    workgroupBarrier();
  }

  if (lid.y == 0u && valid) {
    let C = params.C4 * 4u;
    let base = wg.y * C + 4u * c4;
    let mm = shMean[t];
    let qq = shM2[t];
    partials[base] = vec4<f32>(shN[t], mm.x, qq.x, pivot.x);
    partials[base + 1u] = vec4<f32>(shN[t], mm.y, qq.y, pivot.y);
    partials[base + 2u] = vec4<f32>(shN[t], mm.z, qq.z, pivot.z);
    partials[base + 3u] = vec4<f32>(shN[t], mm.w, qq.w, pivot.w);
  }
}

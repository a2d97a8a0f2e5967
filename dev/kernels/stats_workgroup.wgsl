// stats_workgroup.wgsl — per-channel batch statistics, first stage (version 1, layout-generic).
//
// Computes: for channel c and slice s of its M = outer·inner values, the Welford triple
//   (n, mean, M2) of v = x - pivot_c, where pivot_c = x[c·inner] is the channel's first value.
//   Shifting by a value of the channel makes the sums exact at any offset (1e4 and beyond):
//   x - pivot is exact when both are within a factor of two (Sterbenz), and the statistics of
//   the shifted values are small numbers with small rounding errors.
// Bindings (group 0):
//   0 params   uniform  Params
//   1 x        storage, read        [outer, C, inner] f32 (NHWC, NCHW, [N,C], [N,C,L], 5-D)
//   2 partials storage, read_write  vec4 per (slice, channel): (n, mean, M2, pivot), index s·C + c
// Dispatch: workgroups (min(C, cFold), slices, ceil(C / cFold)); channel = wg.z·cFold + wg.x.
//   Each of the WG threads walks the slice with stride WG; WG must be a power of two.
// Method: per-thread Welford, then a fixed-order tree of Chan merges in workgroup memory, so the
//   result is deterministic (no atomics). Out-of-range workgroups run the same barriers with no
//   data (barriers stay in uniform control flow).

override WG: u32 = 256;

struct Params {
  C: u32,
  inner: u32,
  M: u32,
  chunk: u32,
  cFold: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<vec4<f32>>;

var<workgroup> shN: array<f32, WG>;
var<workgroup> shMean: array<f32, WG>;
var<workgroup> shM2: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let c = wg.z * params.cFold + wg.x;
  let valid = c < params.C;
  let start = wg.y * params.chunk;
  var end = min(start + params.chunk, params.M);
  if (!valid) { end = start; }
  let pivot = select(0.0, x[min(c, params.C - 1u) * params.inner], valid);

  var n = 0.0;
  var mean = 0.0;
  var m2 = 0.0;
  for (var m = start + t; m < end; m += WG) {
    let o = m / params.inner;
    let i = m - o * params.inner;
    let v = x[(o * params.C + c) * params.inner + i] - pivot;
    n += 1.0;
    let d = v - mean;
    mean += d / n;
    m2 += d * (v - mean);
  }
  shN[t] = n;
  shMean[t] = mean;
  shM2[t] = m2;
  workgroupBarrier();

  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (t < stride) {
      let na = shN[t];
      let nb = shN[t + stride];
      let nab = na + nb;
      if (nb > 0.0) {
        let delta = shMean[t + stride] - shMean[t];
        shMean[t] = shMean[t] + delta * (nb / nab);
        shM2[t] = shM2[t] + shM2[t + stride] + delta * delta * (na * nb / nab);
        shN[t] = nab;
      }
    }
    workgroupBarrier();
  }

  if (t == 0u && valid) {
    partials[wg.y * params.C + c] = vec4<f32>(shN[0], shMean[0], shM2[0], pivot);
  }
}

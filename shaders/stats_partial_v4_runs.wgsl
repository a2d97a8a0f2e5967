// stats_partial_v4_runs.wgsl — per-channel batch statistics, first stage, channels-first with
// inner % 4 == 0 (NCHW with H·W % 4 == 0, [N,C,L], NCDHW). Version 4: 16-byte loads along each
// channel's contiguous runs, four loads in flight per thread, no workgroup memory, no barriers.
//
// Computes: for channel c and slice s, the Welford triple (n, mean, M2) of v = x - pivot_c,
//   pivot_c = x[c·inner] (exact subtraction near the channel's values), over the channel's vec4s
//   q = s, s + S, s + 2S, ... (S = slices; vec4 q of the channel lies in run q / inner4 at
//   q % inner4). Output is version 1's format.
// Bindings (group 0):
//   0 params   uniform  Params
//   1 x        storage, read        [outer, C, inner] f32 read as vec4 (inner4 = inner/4 per run)
//   2 partials storage, read_write  vec4 per (slice, channel): (n, mean, M2, pivot), index s·C + c
// Dispatch: one thread per (channel, slice), t = c·S + s, over workgroups (gx, gy) with
//   gx ≤ 65535 and index gid.y·(gx·WG) + gid.x; threads past C·S do nothing. Neighbouring threads
//   read neighbouring vec4s of a run, so a warp's load is contiguous.
// Method: four vec4s (16 values) at a time: four independent loads, the exact two-pass mean and M2
//   of the 16 values, one Chan merge into the running triple; the tail merges single vec4s the same
//   way. merge_stats.wgsl and forward_finalize.wgsl merge the slices in a fixed order.

// Tensor element type: f32, or f16 where the device has shader-f16 (src/gpu/kernel.ts rewrites
// this alias); all arithmetic is f32.
alias xf = f32;

override WG: u32 = 256;

struct Params {
  C: u32,
  inner4: u32,
  M4: u32,
  slices: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<xf>>;
@group(0) @binding(2) var<storage, read_write> partials: array<vec4<f32>>;

var<private> n: f32;
var<private> mean: f32;
var<private> m2: f32;

/** Chan merge of a batch of k values with mean bm and M2 bm2 into (n, mean, m2). */
fn merge(k: f32, bm: f32, bm2: f32) {
  let nab = n + k;
  let delta = bm - mean;
  mean += delta * (k / nab);
  m2 += bm2 + delta * delta * (n * k / nab);
  n = nab;
}

fn at(c: u32, q: u32) -> u32 {
  let o = q / params.inner4;
  return (o * params.C + c) * params.inner4 + (q - o * params.inner4);
}

fn sq(v: vec4<f32>) -> f32 {
  return dot(v, v);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let S = params.slices;
  let t = gid.y * (nwg.x * WG) + gid.x;
  if (t >= S * params.C) { return; }
  let c = t / S;
  let s = t % S;
  let pivot = vec4<f32>(f32(x[c * params.inner4].x));
  var q = s;
  for (; q + 3u * S < params.M4; q += 4u * S) {
    let a = vec4<f32>(x[at(c, q)]) - pivot;
    let b = vec4<f32>(x[at(c, q + S)]) - pivot;
    let cc = vec4<f32>(x[at(c, q + 2u * S)]) - pivot;
    let d = vec4<f32>(x[at(c, q + 3u * S)]) - pivot;
    let bm = dot(a + b + cc + d, vec4<f32>(0.0625));
    let m = vec4<f32>(bm);
    merge(16.0, bm, sq(a - m) + sq(b - m) + sq(cc - m) + sq(d - m));
  }
  for (; q < params.M4; q += S) {
    let a = vec4<f32>(x[at(c, q)]) - pivot;
    let bm = dot(a, vec4<f32>(0.25));
    merge(4.0, bm, sq(a - vec4<f32>(bm)));
  }
  partials[s * params.C + c] = vec4<f32>(n, mean, m2, pivot.x);
}

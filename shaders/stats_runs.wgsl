// stats_runs.wgsl — per-channel batch statistics, first stage, along each channel's contiguous
// runs: channels-first tensors with inner % 4 == 0 (NCHW with H·W % 4 == 0, [N,C,L], NCDHW).
// 16-byte loads, four in flight per thread, no workgroup memory, no barriers.
//
// Computes: for channel c and slice s, the Welford triple (n, mean, M2) of v = x - pivot_c,
//   pivot_c = x[c·inner] (exact subtraction near the channel's values), over the channel's vec4s
//   q = s, s + S, s + 2S, ... (S = slices; vec4 q of the channel lies in run q / inner4 at
//   q % inner4).
// Bindings (group 0):
//   0 params   uniform  Params
//   1 x        storage, read        [outer, C, inner] xf read as vec4 (inner4 = inner/4 per run)
//   2 partials storage, read_write  vec4 per (slice, channel): (n, mean, M2, pivot), index s·C + c
//   3 schedule, 4 state             a module's step (STEP variant, lib/step_switch.wgsl)
// Dispatch: one thread per (channel, slice), t = c·S + s = thread_index(); threads past C·S do
//   nothing. Neighbouring threads read neighbouring vec4s of a run, so a warp's load is contiguous.
// Method: four vec4s (16 values) at a time: four independent loads, the exact two-pass mean and M2
//   of the 16 values, one chan_merge() into the running partial; the tail merges single vec4s the
//   same way. M2 is NaN where some |v| > RANGE (prelude.wgsl). stats_merge.wgsl and
//   forward_finalize.wgsl merge the slices in a fixed order.

// Tensor element type: f32, or f16 where the device has shader-f16 (src/gpu/kernel.ts rewrites
// this alias); all arithmetic is f32.
alias xf = f32;

override WG: u32 = 256;

//! include runs_params.wgsl
@group(0) @binding(1) var<storage, read> x: array<vec4<xf>>;
@group(0) @binding(2) var<storage, read_write> partials: array<vec4<f32>>;
//! include step_switch.wgsl

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
  let t = thread_index(gid, nwg, WG);
  if (STEP != 0u && t == 0u) { advance_step(); }
  if (t >= S * params.C) { return; }
  let c = t / S;
  let s = t % S;
  let pivot = vec4<f32>(f32(x[c * params.inner4].x));
  var acc = vec4<f32>(0.0, 0.0, 0.0, pivot.x);
  var far = vec4<f32>(0.0);
  var q = s;
  for (; q + 3u * S < params.M4; q += 4u * S) {
    let a = vec4<f32>(x[at(c, q)]) - pivot;
    let b = vec4<f32>(x[at(c, q + S)]) - pivot;
    let cc = vec4<f32>(x[at(c, q + 2u * S)]) - pivot;
    let d = vec4<f32>(x[at(c, q + 3u * S)]) - pivot;
    far = max(far, max(max(abs(a), abs(b)), max(abs(cc), abs(d))));
    let bm = dot(a + b + cc + d, vec4<f32>(0.0625));
    let m = vec4<f32>(bm);
    acc = chan_merge(acc, vec4<f32>(16.0, bm, sq(a - m) + sq(b - m) + sq(cc - m) + sq(d - m), pivot.x));
  }
  for (; q < params.M4; q += S) {
    let a = vec4<f32>(x[at(c, q)]) - pivot;
    far = max(far, abs(a));
    let bm = dot(a, vec4<f32>(0.25));
    acc = chan_merge(acc, vec4<f32>(4.0, bm, sq(a - vec4<f32>(bm)), pivot.x));
  }
  if (any(far > vec4<f32>(RANGE))) { acc.z = nan(); }
  partials[s * params.C + c] = acc;
}

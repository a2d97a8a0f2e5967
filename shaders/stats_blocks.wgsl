// stats_blocks.wgsl — per-channel batch statistics, first stage, four channels per thread:
// channels-first tensors with inner % 4 != 0 and C % 4 == 0 (NCHW 7×7, 3×3, 5×5), which
// stats_runs.wgsl cannot read as vec4s by channel. Four channels of one sample are 4·inner
// consecutive values starting at a multiple of 4: `inner` vec4s, read as such.
//
// Computes: for channels 4·cb .. 4·cb+3 and slice s (samples [s·chunk, min((s+1)·chunk, outer))),
//   the Welford triple (n, mean, M2) of v = x - pivot per channel, pivot_c = x[c·inner] (exact
//   subtraction near the channel's values). Every slice holds chunk·inner values of each channel.
// Bindings (group 0):
//   0 params   uniform  Params (lib/blocks_params.wgsl)
//   1 x        storage, read        [outer, C, inner] xf read as vec4
//   2 partials storage, read_write  vec4 per (slice, channel): (n, mean, M2, pivot), index s·C + c
//   3 schedule, 4 state             a module's step (STEP variant, lib/step_switch.wgsl)
// Dispatch: one thread per (slice, cb), t = s·C4 + cb = thread_index(); threads past slices·C4 do
//   nothing. Neighbouring threads read neighbouring blocks, each its own contiguous run of vec4s.
// Method: per channel, per sample, the vec4s that hold the channel's run, lanes outside it masked:
//   the exact mean and M2 of each vec4's lanes in the run, merged into the channel's triple
//   (Chan). The vec4s on a channel boundary are read for both channels (the second read hits the
//   cache). M2 is NaN where some |v| > RANGE (prelude.wgsl). No workgroup memory, no barriers;
//   the finalize merges the slices in a fixed order.

// Tensor element type: f32, or f16 where the device has shader-f16 (src/gpu/kernel.ts rewrites
// this alias); all arithmetic is f32.
alias xf = f32;

override WG: u32 = 256;

//! include blocks_params.wgsl
@group(0) @binding(1) var<storage, read> x: array<vec4<xf>>;
@group(0) @binding(2) var<storage, read_write> partials: array<vec4<f32>>;
//! include step_switch.wgsl

/// Chan's merge where `a` may be empty (n = 0): the running triple before its first values.
fn merge_into(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
  if (a.x == 0.0) { return b; }
  return chan_merge(a, b);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg, WG);
  if (STEP != 0u && t == 0u) { advance_step(); }
  if (t >= params.slices * params.C4) { return; }
  let C4 = params.C4;
  let inner = params.inner;
  let cb = t % C4;
  let s = t / C4;
  let o0 = s * params.chunk;
  let o1 = min(o0 + params.chunk, params.outer);
  for (var j = 0u; j < 4u; j++) {
    let first = j * inner;
    // The channel's first value in sample 0: element cb·4·inner + first.
    let e = cb * 4u * inner + first;
    let pivot = f32(x[e / 4u][e % 4u]);
    var acc = vec4<f32>(0.0, 0.0, 0.0, pivot);
    var far = 0.0;
    for (var o = o0; o < o1; o++) {
      let base = (o * C4 + cb) * inner;
      for (var w = first / 4u; 4u * w < first + inner; w++) {
        let m = in_run(w, first);
        let v = select(vec4<f32>(0.0), vec4<f32>(x[base + w]) - pivot, m);
        far = max(far, max(max(abs(v.x), abs(v.y)), max(abs(v.z), abs(v.w))));
        let n = dot(select(vec4<f32>(0.0), vec4<f32>(1.0), m), vec4<f32>(1.0));
        let mean = dot(v, vec4<f32>(1.0)) / n;
        let d = select(vec4<f32>(0.0), v - mean, m);
        acc = merge_into(acc, vec4<f32>(n, mean, dot(d, d), pivot));
      }
    }
    partials[(s * C4 + cb) * 4u + j] = select(acc, vec4<f32>(acc.x, acc.y, nan(), acc.w), far > RANGE);
  }
}

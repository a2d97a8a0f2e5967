// stats_thread.wgsl — per-channel batch statistics, first stage, one thread per (channel, slice):
// the path for any layout, and the one for shapes the 16-byte paths (stats_rows.wgsl,
// stats_runs.wgsl) cannot take (channels-last with C % 4 != 0, channels-first with H·W % 4 != 0).
//
// Computes: for channel c and slice s of its M values, the Welford triple (n, mean, M2) of
//   v = x - pivot_c, pivot_c = x[c·inner] (exact subtraction near the channel's values). With
//   ghost batches (virtualBatchSize), the M values are G consecutive runs of Mg, each cut into spg
//   slices, so that no slice straddles two ghosts.
// Bindings (group 0):
//   0 params   uniform  Params
//   1 x        storage, read        [outer, C, inner] xf
//   2 partials storage, read_write  vec4 per (slice, channel): (n, mean, M2, pivot), index s·C + c
//   3 schedule, 4 state             a module's step (STEP variant, lib/step_switch.wgsl)
// Dispatch: one thread per (slice, channel), t = s·C + c = thread_index(); threads past slices·C
//   do nothing. Channels-last: neighbouring threads read neighbouring channels of one row.
// Method: Welford's update, sequential per thread (M2 is NaN when some |v| > RANGE, see
//   prelude.wgsl), with no workgroup memory and no barriers (a CPU
//   implementation such as SwiftShader then runs a workgroup as a plain SIMD loop, not as
//   coroutines); stats_merge.wgsl and forward_finalize.wgsl merge the slices in a fixed order.

// Tensor element type: f32, or f16 where the device has shader-f16 (src/gpu/kernel.ts rewrites
// this alias); all arithmetic is f32.
alias xf = f32;

override WG: u32 = 64;

//! include thread_params.wgsl
@group(0) @binding(1) var<storage, read> x: array<xf>;
@group(0) @binding(2) var<storage, read_write> partials: array<vec4<f32>>;
//! include step_switch.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg, WG);
  if (STEP != 0u && t == 0u) { advance_step(); }
  if (t >= params.slices * params.C) { return; }
  let c = t % params.C;
  let s = t / params.C;
  let pivot = f32(x[c * params.inner]);
  // Slices never straddle ghost batches: spg slices per ghost of Mg values (one ghost: spg = slices, Mg = M).
  let ghost = s / params.spg;
  let start = ghost * params.Mg + (s - ghost * params.spg) * params.chunk;
  let end = min(start + params.chunk, ghost * params.Mg + params.Mg);
  var n = 0.0;
  var mean = 0.0;
  var m2 = 0.0;
  var far = 0.0;
  var o = start / params.inner;
  var i = start - o * params.inner;
  for (var m = start; m < end; m++) {
    let v = f32(x[(o * params.C + c) * params.inner + i]) - pivot;
    far = max(far, abs(v));
    n += 1.0;
    let d = v - mean;
    mean += d / n;
    m2 += d * (v - mean);
    i += 1u;
    if (i == params.inner) { i = 0u; o += 1u; }
  }
  partials[t] = vec4<f32>(n, mean, select(m2, nan(), far > RANGE), pivot);
}

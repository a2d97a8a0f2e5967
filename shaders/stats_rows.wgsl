// stats_rows.wgsl — per-channel batch statistics, first stage, across the channels of each row:
// channels-last tensors with C % 4 == 0 (NHWC, [N,C], [N,L,C], NDHWC). One thread per (slice,
// 4 channels), 16-byte loads, four rows in flight per thread, no workgroup memory, no barriers.
//
// Computes: for channels 4·c4 .. 4·c4+3 and slice s (rows [s·chunk, min((s+1)·chunk, M))), the
//   Welford triple (n, mean, M2) of v = x - pivot per channel, pivot = the channel's value in row 0
//   (exact subtraction near the channel's values).
// Bindings (group 0):
//   0 params   uniform  Params
//   1 x        storage, read        [M, C] xf read as vec4 (C4 = C/4 per row)
//   2 partials storage, read_write  vec4 per (slice, channel): (n, mean, M2, pivot), index s·C + c
//   3 schedule, 4 state             a module's step (STEP variant, lib/step_switch.wgsl)
// Dispatch: one thread per (slice, c4), t = s·C4 + c4 = thread_index(); threads past slices·C4 do
//   nothing. Neighbouring threads read neighbouring 16-byte groups of one row: a warp's load is 512
//   contiguous bytes.
// Method: rows are taken four at a time: four independent loads, the exact two-pass mean and M2 of
//   those four values, then one Chan merge into the running triple (one division per four rows,
//   and four loads in flight per thread to cover memory latency). Remaining rows use Welford's
//   update. M2 is NaN where some |v| > RANGE (prelude.wgsl). stats_merge.wgsl and
//   forward_finalize.wgsl merge the slices in a fixed order.

// Tensor element type: f32, or f16 where the device has shader-f16 (src/gpu/kernel.ts rewrites
// this alias); all arithmetic is f32.
alias xf = f32;

override WG: u32 = 256;

//! include rows_params.wgsl
@group(0) @binding(1) var<storage, read> x: array<vec4<xf>>;
@group(0) @binding(2) var<storage, read_write> partials: array<vec4<f32>>;
//! include step_switch.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg, WG);
  if (STEP != 0u && t == 0u) { advance_step(); }
  if (t >= params.slices * params.C4) { return; }
  let C4 = params.C4;
  let c4 = t % C4;
  let s = t / C4;
  let pivot = vec4<f32>(x[c4]);
  let start = s * params.chunk;
  let end = min(start + params.chunk, params.M);
  var n = 0.0;
  var mean = vec4<f32>(0.0);
  var m2 = vec4<f32>(0.0);
  var far = vec4<f32>(0.0);
  var row = start;
  for (; row + 4u <= end; row += 4u) {
    let i = row * C4 + c4;
    let a = vec4<f32>(x[i]) - pivot;
    let b = vec4<f32>(x[i + C4]) - pivot;
    let c = vec4<f32>(x[i + 2u * C4]) - pivot;
    let d = vec4<f32>(x[i + 3u * C4]) - pivot;
    far = max(far, max(max(abs(a), abs(b)), max(abs(c), abs(d))));
    let bm = (a + b + c + d) * 0.25;
    let bm2 = (a - bm) * (a - bm) + (b - bm) * (b - bm) + (c - bm) * (c - bm) + (d - bm) * (d - bm);
    let nab = n + 4.0;
    let delta = bm - mean;
    mean += delta * (4.0 / nab);
    m2 += bm2 + delta * delta * (n * 4.0 / nab);
    n = nab;
  }
  for (; row < end; row++) {
    let v = vec4<f32>(x[row * C4 + c4]) - pivot;
    far = max(far, abs(v));
    n += 1.0;
    let delta = v - mean;
    mean += delta / n;
    m2 += delta * (v - mean);
  }
  m2 = select(m2, vec4<f32>(nan()), far > vec4<f32>(RANGE));
  let base = s * 4u * C4 + 4u * c4;
  partials[base] = vec4<f32>(n, mean.x, m2.x, pivot.x);
  partials[base + 1u] = vec4<f32>(n, mean.y, m2.y, pivot.y);
  partials[base + 2u] = vec4<f32>(n, mean.z, m2.z, pivot.z);
  partials[base + 3u] = vec4<f32>(n, mean.w, m2.w, pivot.w);
}

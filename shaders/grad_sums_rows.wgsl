// grad_sums_rows.wgsl — per-channel gradient sums, first stage, across the channels of each row:
// channels-last tensors with C % 4 == 0. One thread per (slice, 4 channels), 16-byte loads, four
// rows in flight.
//
// Computes: for channels 4·c4 .. 4·c4+3 and slice s (rows [s·chunk, min((s+1)·chunk, M))), the
//   sums of dy and of dy·(x - mean), with x - mean = (x - pivot) - mean_v from the saved
//   statistics.
//   Under an epilogue (EPILOGUE ≠ 0), dy is first masked by the forward output: dy where y > 0.
// Bindings (group 0):
//   0 params   uniform  Params
//   1 stats    storage, read        2 vec4 per channel (see prelude.wgsl)
//   2 x        storage, read        [M, C] xf read as vec4, the forward input
//   3 dy       storage, read        same shape
//   4 partials storage, read_write  vec2 per (slice, channel): (Σdy, Σdy·(x - mean)), index s·C + c
//   5 y        storage, read        same shape: the forward output, whose sign masks dy (EPILOGUE ≠ 0)
// Dispatch: one thread per (slice, c4), t = s·C4 + c4 = thread_index(); threads past slices·C4 do
//   nothing (coalesced as in stats_rows.wgsl).
// Method: sequential sums per thread (NaN where some |dy| > RANGE, see prelude.wgsl), four rows
//   of x and dy (eight loads) in flight at a time;
//   grad_sums_merge.wgsl and backward_finalize.wgsl add the slices in order. Deterministic, no atomics.

//! include rows_params.wgsl
//! include grad_sums_io.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg, WG);
  if (t >= params.slices * params.C4) { return; }
  let C4 = params.C4;
  let c4 = t % C4;
  let s = t / C4;
  let k = coeffs4(&stats, c4);
  let pivot = k[0];
  let mean_v = k[1];
  let start = s * params.chunk;
  let end = min(start + params.chunk, params.M);
  var sdy = vec4<f32>(0.0);
  var sdyx = vec4<f32>(0.0);
  var far = vec4<f32>(0.0);
  var row = start;
  for (; row + 4u <= end; row += 4u) {
    let i = row * C4 + c4;
    let g0 = upstream(i);
    let g1 = upstream(i + C4);
    let g2 = upstream(i + 2u * C4);
    let g3 = upstream(i + 3u * C4);
    let x0 = vec4<f32>(x[i]);
    let x1 = vec4<f32>(x[i + C4]);
    let x2 = vec4<f32>(x[i + 2u * C4]);
    let x3 = vec4<f32>(x[i + 3u * C4]);
    far = max(far, max(max(abs(g0), abs(g1)), max(abs(g2), abs(g3))));
    sdy += (g0 + g1) + (g2 + g3);
    sdyx += (g0 * ((x0 - pivot) - mean_v) + g1 * ((x1 - pivot) - mean_v)) + (g2 * ((x2 - pivot) - mean_v) + g3 * ((x3 - pivot) - mean_v));
  }
  for (; row < end; row++) {
    let i = row * C4 + c4;
    let g = upstream(i);
    far = max(far, abs(g));
    sdy += g;
    sdyx += g * ((vec4<f32>(x[i]) - pivot) - mean_v);
  }
  let beyond = far > vec4<f32>(RANGE);
  sdy = select(sdy, vec4<f32>(nan()), beyond);
  sdyx = select(sdyx, vec4<f32>(nan()), beyond);
  let base = s * 4u * C4 + 4u * c4;
  partials[base] = vec2<f32>(sdy.x, sdyx.x);
  partials[base + 1u] = vec2<f32>(sdy.y, sdyx.y);
  partials[base + 2u] = vec2<f32>(sdy.z, sdyx.z);
  partials[base + 3u] = vec2<f32>(sdy.w, sdyx.w);
}

// grad_sums_blocks.wgsl — per-channel gradient sums, first stage, four channels per thread: the
// shapes of stats_blocks.wgsl (channels-first, inner % 4 != 0, C % 4 == 0), read as vec4s by
// blocks of four channels of one sample.
//
// Computes: for channels 4·cb .. 4·cb+3 and slice s (samples [s·chunk, min((s+1)·chunk, outer))),
//   the sums of dy and of dy·(x - mean), with x - mean = (x - pivot) - mean_v from the saved
//   statistics.
//   Under an epilogue (EPILOGUE ≠ 0), dy is first masked by the forward output: dy where y > 0.
// Bindings (group 0):
//   0 params   uniform  Params (lib/blocks_params.wgsl)
//   1 stats    storage, read        2 vec4 per channel (see prelude.wgsl)
//   2 x        storage, read        [outer, C, inner] xf read as vec4, the forward input
//   3 dy       storage, read        same shape
//   4 partials storage, read_write  vec2 per (slice, channel): (Σdy, Σdy·(x - mean)), index s·C + c
//   5 y        storage, read        same shape: the forward output, whose sign masks dy (EPILOGUE ≠ 0)
// Dispatch: one thread per (slice, cb), t = s·C4 + cb = thread_index(); threads past slices·C4 do
//   nothing (as in stats_blocks.wgsl).
// Method: per channel, per sample, the vec4s that hold the channel's run, lanes outside it masked,
//   summed in order (NaN where some |dy| > RANGE, see prelude.wgsl); the finalize adds the slices
//   in order. Deterministic, no atomics.

//! include blocks_params.wgsl
//! include grad_sums_io.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg, WG);
  if (t >= params.slices * params.C4) { return; }
  let C4 = params.C4;
  let inner = params.inner;
  let cb = t % C4;
  let s = t / C4;
  let o0 = s * params.chunk;
  let o1 = min(o0 + params.chunk, params.outer);
  for (var j = 0u; j < 4u; j++) {
    let first = j * inner;
    let k = stats[2u * (4u * cb + j)];
    var sdy = vec4<f32>(0.0);
    var sdyx = vec4<f32>(0.0);
    var far = vec4<f32>(0.0);
    for (var o = o0; o < o1; o++) {
      let base = (o * C4 + cb) * inner;
      for (var w = first / 4u; 4u * w < first + inner; w++) {
        let m = in_run(w, first);
        let g = select(vec4<f32>(0.0), upstream(base + w), m);
        let xm = (vec4<f32>(x[base + w]) - k.x) - k.y;
        far = max(far, abs(g));
        sdy += g;
        sdyx += select(vec4<f32>(0.0), g * xm, m);
      }
    }
    let ones = vec4<f32>(1.0);
    let sums = vec2<f32>(dot(sdy, ones), dot(sdyx, ones));
    partials[(s * C4 + cb) * 4u + j] = select(sums, vec2<f32>(nan()), any(far > vec4<f32>(RANGE)));
  }
}

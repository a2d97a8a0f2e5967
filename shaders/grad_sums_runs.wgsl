// grad_sums_runs.wgsl — per-channel gradient sums, first stage, along each channel's contiguous
// runs: channels-first tensors with inner % 4 == 0. 16-byte loads, no barriers.
//
// Computes: for channel c and slice s, the sums of dy and of dy·(x - mean) over the channel's
//   vec4s q = s, s + S, ... (S = slices), with x - mean = (x - pivot) - mean_v from the saved
//   statistics.
//   Under an epilogue (EPILOGUE ≠ 0), dy is first masked by the forward output: dy where y > 0.
// Bindings (group 0):
//   0 params   uniform  Params
//   1 stats    storage, read        2 vec4 per channel (see prelude.wgsl)
//   2 x        storage, read        [outer, C, inner] xf read as vec4, the forward input
//   3 dy       storage, read        same shape
//   4 partials storage, read_write  vec2 per (slice, channel): (Σdy, Σdy·(x - mean)), index s·C + c
//   5 y        storage, read        same shape: the forward output, whose sign masks dy (EPILOGUE ≠ 0)
// Dispatch: one thread per (channel, slice), t = c·S + s = thread_index(); threads past C·S do
//   nothing (coalesced as in stats_runs.wgsl).
// Method: sequential sums per thread (NaN where some |dy| > RANGE, see prelude.wgsl) with two
//   vec4s of x and dy (four loads) in flight;
//   grad_sums_merge.wgsl and backward_finalize.wgsl add the slices in order. Deterministic, no atomics.

//! include runs_params.wgsl
//! include grad_sums_io.wgsl

fn at(c: u32, q: u32) -> u32 {
  let o = q / params.inner4;
  return (o * params.C + c) * params.inner4 + (q - o * params.inner4);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let S = params.slices;
  let t = thread_index(gid, nwg, WG);
  if (t >= S * params.C) { return; }
  let c = t / S;
  let s = t % S;
  let k = stats[2u * c];
  let pivot = vec4<f32>(k.x);
  let mean_v = vec4<f32>(k.y);
  var sdy = vec4<f32>(0.0);
  var sdyx = vec4<f32>(0.0);
  var far = vec4<f32>(0.0);
  var q = s;
  for (; q + S < params.M4; q += 2u * S) {
    let i0 = at(c, q);
    let i1 = at(c, q + S);
    let g0 = upstream(i0);
    let g1 = upstream(i1);
    let x0 = vec4<f32>(x[i0]);
    let x1 = vec4<f32>(x[i1]);
    far = max(far, max(abs(g0), abs(g1)));
    sdy += g0 + g1;
    sdyx += g0 * ((x0 - pivot) - mean_v) + g1 * ((x1 - pivot) - mean_v);
  }
  if (q < params.M4) {
    let i = at(c, q);
    let g = upstream(i);
    far = max(far, abs(g));
    sdy += g;
    sdyx += g * ((vec4<f32>(x[i]) - pivot) - mean_v);
  }
  let ones = vec4<f32>(1.0);
  let sums = vec2<f32>(dot(sdy, ones), dot(sdyx, ones));
  partials[s * params.C + c] = select(sums, vec2<f32>(nan()), any(far > vec4<f32>(RANGE)));
}

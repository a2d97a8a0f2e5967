// grad_sums_workgroup_vec4.wgsl — per-channel gradient sums, first stage, channels-last with
// C % 4 == 0. Version 2: vec4 lanes across channels, rows across threads.
//
// Computes: for 4·LANES consecutive channels and slice s of the M rows, the sums of dy and of
//   dy·(x - mean), x - mean = (x - pivot) - mean_v from the saved statistics. Output is version
//   1's format (vec2 per (slice, channel)), so backward_finalize.wgsl merges it unchanged.
// Bindings (group 0):
//   0 params   uniform  Params
//   1 stats    storage, read        2 vec4 per channel; [2c] = (pivot, mean_v, scale, shift)
//   2 x        storage, read        [M, C] f32 read as vec4
//   3 dy       storage, read        same shape
//   4 partials storage, read_write  vec2 per (slice, channel): (Σdy, Σdy·(x - mean)), index s·C + c
// Dispatch: workgroups (ceil(C4 / LANES), slices); thread (lane, row) = local id (x, y);
//   ROWS must be a power of two.
// Method: per-thread vec4 sums, then a fixed-order tree over each lane's ROWS threads in workgroup
//   memory: deterministic, no atomics.

override LANES: u32 = 16;
override ROWS: u32 = 16;

struct Params {
  C4: u32,
  M: u32,
  chunk: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> partials: array<vec2<f32>>;

var<workgroup> shDy: array<vec4<f32>, LANES * ROWS>;
var<workgroup> shDyx: array<vec4<f32>, LANES * ROWS>;

@compute @workgroup_size(LANES, ROWS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let c4 = wg.x * LANES + lid.x;
  let valid = c4 < params.C4;
  let start = wg.y * params.chunk;
  var end = min(start + params.chunk, params.M);
  if (!valid) { end = start; }
  let c = 4u * min(c4, params.C4 - 1u);
  let k0 = stats[2u * c];
  let k1 = stats[2u * c + 2u];
  let k2 = stats[2u * c + 4u];
  let k3 = stats[2u * c + 6u];
  let pivot = vec4<f32>(k0.x, k1.x, k2.x, k3.x);
  let mean_v = vec4<f32>(k0.y, k1.y, k2.y, k3.y);

  var sdy = vec4<f32>(0.0);
  var sdyx = vec4<f32>(0.0);
  for (var row = start + lid.y; row < end; row += ROWS) {
    let i = row * params.C4 + c4;
    let g = dy[i];
    sdy += g;
    sdyx += g * ((x[i] - pivot) - mean_v);
  }
  let t = lid.y * LANES + lid.x;
  shDy[t] = sdy;
  shDyx[t] = sdyx;
  workgroupBarrier();

  for (var stride = ROWS / 2u; stride > 0u; stride = stride / 2u) {
    if (lid.y < stride) {
      shDy[t] = shDy[t] + shDy[t + stride * LANES];
      shDyx[t] = shDyx[t] + shDyx[t + stride * LANES];
    }
    workgroupBarrier();
  }

  if (lid.y == 0u && valid) {
    let base = wg.y * params.C4 * 4u + 4u * c4;
    let a = shDy[t];
    let b = shDyx[t];
    partials[base] = vec2<f32>(a.x, b.x);
    partials[base + 1u] = vec2<f32>(a.y, b.y);
    partials[base + 2u] = vec2<f32>(a.z, b.z);
    partials[base + 3u] = vec2<f32>(a.w, b.w);
  }
}

// dense_backward_input.wgsl — input gradient of a dense layer: dx[b, i] = Σ_o dy[b, o]·w[i, o].
//
// Computes: four rows' gradients dx[b0..b0+3, i] per thread (fewer past B).
// Bindings (group 0):
//   0 params uniform  Params (B, I, O)
//   1 dy     storage, read        [B, O]
//   2 w      storage, read        [I, O]
//   3 dx     storage, read_write  [B, I]
// Dispatch: (ceil(I / WG), ceil(B / 4)); thread (i, b-group).
// Method: each loaded weight feeds four multiply-adds.

override WG: u32 = 64;

struct Params { B: u32, I: u32, O: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let b0 = 4u * gid.y;
  if (i >= params.I || b0 >= params.B) { return; }
  let O = params.O;
  let lastRow = params.B - 1u;
  let r0 = min(b0, lastRow) * O;
  let r1 = min(b0 + 1u, lastRow) * O;
  let r2 = min(b0 + 2u, lastRow) * O;
  let r3 = min(b0 + 3u, lastRow) * O;
  var acc = vec4<f32>(0.0);
  for (var o = 0u; o < O; o++) {
    acc += w[i * O + o] * vec4<f32>(dy[r0 + o], dy[r1 + o], dy[r2 + o], dy[r3 + o]);
  }
  for (var k = 0u; k < 4u; k++) {
    if (b0 + k < params.B) {
      dx[(b0 + k) * params.I + i] = acc[k];
    }
  }
}

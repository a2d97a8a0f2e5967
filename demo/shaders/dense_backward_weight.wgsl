// dense_backward_weight.wgsl — weight and bias gradients of a dense layer:
// dw[i, o] = Σ_b x[b, i]·dy[b, o], dbias[o] = Σ_b dy[b, o].
//
// Computes: four neighbouring weight gradients dw[i, o0..o0+3] per thread (fewer past O); the
//   threads of row i = 0 also write dbias.
// Bindings (group 0):
//   0 params uniform  Params (B, I, O, hasBias)
//   1 x      storage, read        [B, I]
//   2 dy     storage, read        [B, O]
//   3 dw     storage, read_write  [I, O]
//   4 dbias  storage, read_write  [O] (written only when hasBias = 1)
// Dispatch: (ceil(ceil(O / 4) / WG), I); thread (o-group, i).
// Method: loops over the batch in order (deterministic); four outputs per loaded x value.

override WG: u32 = 64;

struct Params { B: u32, I: u32, O: u32, hasBias: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
@group(0) @binding(4) var<storage, read_write> dbias: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o0 = 4u * gid.x;
  let i = gid.y;
  if (o0 >= params.O || i >= params.I) { return; }
  let O = params.O;
  let last = O - 1u;
  var acc = vec4<f32>(0.0);
  var db = vec4<f32>(0.0);
  for (var b = 0u; b < params.B; b++) {
    let r = b * O;
    let g = vec4<f32>(dy[r + min(o0, last)], dy[r + min(o0 + 1u, last)], dy[r + min(o0 + 2u, last)], dy[r + min(o0 + 3u, last)]);
    acc += x[b * params.I + i] * g;
    db += g;
  }
  for (var k = 0u; k < 4u; k++) {
    let o = o0 + k;
    if (o < O) {
      dw[i * O + o] = acc[k];
      if (i == 0u && params.hasBias == 1u) {
        dbias[o] = db[k];
      }
    }
  }
}

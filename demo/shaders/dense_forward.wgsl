// dense_forward.wgsl — fully connected layer: y[b, o] = Σ_i x[b, i]·w[i, o] (+ bias[o]).
//
// Computes: four neighbouring outputs o0..o0+3 of one row per thread (fewer past O).
// Bindings (group 0):
//   0 params uniform  Params (B rows, I inputs, O outputs, hasBias)
//   1 x      storage, read        [B, I]
//   2 w      storage, read        [I, O]
//   3 bias   storage, read        [O] (read only when hasBias = 1)
//   4 y      storage, read_write  [B, O]
// Dispatch: (ceil(ceil(O / 4) / WG), B); thread (o-group, b).
// Method: one input value feeds four multiply-adds, which amortises the loop and the load of x
//   (this matters on CPU implementations such as SwiftShader).

override WG: u32 = 64;

struct Params { B: u32, I: u32, O: u32, hasBias: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o0 = 4u * gid.x;
  let b = gid.y;
  if (o0 >= params.O || b >= params.B) { return; }
  let O = params.O;
  let last = O - 1u;
  var acc = vec4<f32>(0.0);
  for (var i = 0u; i < params.I; i++) {
    let xv = x[b * params.I + i];
    let r = i * O;
    acc += xv * vec4<f32>(w[r + min(o0, last)], w[r + min(o0 + 1u, last)], w[r + min(o0 + 2u, last)], w[r + min(o0 + 3u, last)]);
  }
  for (var k = 0u; k < 4u; k++) {
    let o = o0 + k;
    if (o < O) {
      y[b * O + o] = acc[k] + select(0.0, bias[min(o, arrayLength(&bias) - 1u)], params.hasBias == 1u);
    }
  }
}

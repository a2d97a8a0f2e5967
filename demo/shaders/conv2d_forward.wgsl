// conv2d_forward.wgsl — 2-D convolution, NHWC:
// y[n, oh, ow, co] = Σ_{kh, kw, ci} x[n, oh·s - p + kh, ow·s - p + kw, ci]·w[kh, kw, ci, co] + bias[co].
//
// Computes: one output element per thread; taps outside the input count as zero (padding p).
// Bindings (group 0):
//   0 params uniform  Params (shapes, kernel size K, stride s, padding p)
//   1 x      storage, read        [N, H, W, Ci]
//   2 w      storage, read        [K, K, Ci, Co]
//   3 bias   storage, read        [Co]
//   4 y      storage, read_write  [N, Ho, Wo, Co]
// Dispatch: one thread per output element (co fastest); workgroups (gx, gy), index gid.y·gx·WG + gid.x.
// Method: direct convolution; fine for the demo's small feature maps.

override WG: u32 = 64;

struct Params { N: u32, H: u32, W: u32, Ci: u32, Ho: u32, Wo: u32, Co: u32, K: u32, stride: u32, pad: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.y * (nwg.x * WG) + gid.x;
  let p = params;
  if (idx >= p.N * p.Ho * p.Wo * p.Co) { return; }
  let co = idx % p.Co;
  let ow = (idx / p.Co) % p.Wo;
  let oh = (idx / (p.Co * p.Wo)) % p.Ho;
  let n = idx / (p.Co * p.Wo * p.Ho);
  var acc = bias[co];
  for (var kh = 0u; kh < p.K; kh++) {
    let ih = i32(oh * p.stride + kh) - i32(p.pad);
    if (ih < 0 || ih >= i32(p.H)) { continue; }
    for (var kw = 0u; kw < p.K; kw++) {
      let iw = i32(ow * p.stride + kw) - i32(p.pad);
      if (iw < 0 || iw >= i32(p.W)) { continue; }
      let xb = ((n * p.H + u32(ih)) * p.W + u32(iw)) * p.Ci;
      let wb = (kh * p.K + kw) * p.Ci * p.Co + co;
      for (var ci = 0u; ci < p.Ci; ci++) {
        acc += x[xb + ci] * w[wb + ci * p.Co];
      }
    }
  }
  y[idx] = acc;
}

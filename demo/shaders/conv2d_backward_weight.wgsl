// conv2d_backward_weight.wgsl — weight and bias gradients of conv2d_forward.wgsl:
// dw[kh, kw, ci, co] = Σ_{n, oh, ow} x[n, oh·s - p + kh, ow·s - p + kw, ci]·dy[n, oh, ow, co],
// dbias[co] = Σ_{n, oh, ow} dy[n, oh, ow, co].
//
// Computes: one weight-gradient element per thread; threads with kh = kw = ci = 0 write dbias.
// Bindings (group 0):
//   0 params uniform  Params (as conv2d_forward.wgsl)
//   1 x      storage, read        [N, H, W, Ci]
//   2 dy     storage, read        [N, Ho, Wo, Co]
//   3 dw     storage, read_write  [K, K, Ci, Co]
//   4 dbias  storage, read_write  [Co]
// Dispatch: one thread per weight (co fastest); workgroups (gx, gy), index gid.y·gx·WG + gid.x.
// Method: loops over the batch and output positions in order (deterministic, no atomics).

override WG: u32 = 64;

struct Params { N: u32, H: u32, W: u32, Ci: u32, Ho: u32, Wo: u32, Co: u32, K: u32, stride: u32, pad: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
@group(0) @binding(4) var<storage, read_write> dbias: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.y * (nwg.x * WG) + gid.x;
  let p = params;
  if (idx >= p.K * p.K * p.Ci * p.Co) { return; }
  let co = idx % p.Co;
  let ci = (idx / p.Co) % p.Ci;
  let kw = (idx / (p.Co * p.Ci)) % p.K;
  let kh = idx / (p.Co * p.Ci * p.K);
  var acc = 0.0;
  var db = 0.0;
  for (var n = 0u; n < p.N; n++) {
    for (var oh = 0u; oh < p.Ho; oh++) {
      let ih = i32(oh * p.stride + kh) - i32(p.pad);
      for (var ow = 0u; ow < p.Wo; ow++) {
        let g = dy[((n * p.Ho + oh) * p.Wo + ow) * p.Co + co];
        db += g;
        let iw = i32(ow * p.stride + kw) - i32(p.pad);
        if (ih >= 0 && ih < i32(p.H) && iw >= 0 && iw < i32(p.W)) {
          acc += x[((n * p.H + u32(ih)) * p.W + u32(iw)) * p.Ci + ci] * g;
        }
      }
    }
  }
  dw[idx] = acc;
  if (kh == 0u && kw == 0u && ci == 0u) {
    dbias[co] = db;
  }
}

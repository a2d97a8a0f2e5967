// conv2d_backward_input.wgsl — input gradient of conv2d_forward.wgsl:
// dx[n, h, w, ci] = Σ dy[n, oh, ow, co]·w[kh, kw, ci, co] over the (oh, ow, kh, kw) with
// oh·s - p + kh = h and ow·s - p + kw = w.
//
// Computes: one input-gradient element per thread.
// Bindings (group 0):
//   0 params uniform  Params (as conv2d_forward.wgsl)
//   1 dy     storage, read        [N, Ho, Wo, Co]
//   2 w      storage, read        [K, K, Ci, Co]
//   3 dx     storage, read_write  [N, H, W, Ci]
// Dispatch: one thread per input element (ci fastest); workgroups (gx, gy), index gid.y·gx·WG + gid.x.
// Method: gathers over the kernel taps that reach this input (no atomics).

override WG: u32 = 64;

struct Params { N: u32, H: u32, W: u32, Ci: u32, Ho: u32, Wo: u32, Co: u32, K: u32, stride: u32, pad: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.y * (nwg.x * WG) + gid.x;
  let p = params;
  if (idx >= p.N * p.H * p.W * p.Ci) { return; }
  let ci = idx % p.Ci;
  let iw = (idx / p.Ci) % p.W;
  let ih = (idx / (p.Ci * p.W)) % p.H;
  let n = idx / (p.Ci * p.W * p.H);
  var acc = 0.0;
  for (var kh = 0u; kh < p.K; kh++) {
    let t = i32(ih + p.pad) - i32(kh);
    if (t < 0 || t % i32(p.stride) != 0) { continue; }
    let oh = u32(t) / p.stride;
    if (oh >= p.Ho) { continue; }
    for (var kw = 0u; kw < p.K; kw++) {
      let u = i32(iw + p.pad) - i32(kw);
      if (u < 0 || u % i32(p.stride) != 0) { continue; }
      let ow = u32(u) / p.stride;
      if (ow >= p.Wo) { continue; }
      let db = ((n * p.Ho + oh) * p.Wo + ow) * p.Co;
      let wb = ((kh * p.K + kw) * p.Ci + ci) * p.Co;
      for (var co = 0u; co < p.Co; co++) {
        acc += dy[db + co] * w[wb + co];
      }
    }
  }
  dx[idx] = acc;
}

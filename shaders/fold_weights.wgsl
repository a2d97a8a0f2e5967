// fold_weights.wgsl — folds inference-mode batch norm into the preceding layer's weight and bias
// (PyTorch's fuse_conv_bn_eval / fuse_linear_bn_eval).
//
// Computes, with the per-channel coefficients of eval_coeffs.wgsl (y = (z - pivot)·scale + shift
//   for the layer's output z): weight_out = weight·scale[o] for each weight element of output
//   channel o, bias_out[o] = ((bias[o] or 0) - pivot[o] - mean_v[o])·scale[o] + shift[o]. The
//   layer followed by batch norm in eval is then the layer alone, with these.
// Bindings (group 0):
//   0 params     uniform  Params
//   1 stats      storage, read        2 vec4 per channel (prelude.wgsl), from eval_coeffs.wgsl
//   2 weight     storage, read        [count] f32; output channel o = i / per (flag OUT_LAST
//                                     clear: OIHW, [out, in]) or i % C (set: HWIO, [in, out])
//   3 bias       storage, read        [C] f32 (read only with flag BIAS; else the bias is 0)
//   4 weight_out storage, read_write  [count] f32
//   5 bias_out   storage, read_write  [C] f32
// Dispatch: one thread per weight element (and per channel for the bias), t = thread_index() over
//   max(count, C) threads.
// Method: one multiply per weight element; the bias in the centred form of the apply pass.

override WG: u32 = 256;

const OUT_LAST: u32 = 1u;
const BIAS: u32 = 2u;

struct Params {
  C: u32,
  count: u32,
  per: u32,
  flags: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> weight_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> bias_out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg, WG);
  if (t < params.count) {
    let o = select(t / params.per, t % params.C, (params.flags & OUT_LAST) != 0u);
    weight_out[t] = weight[t] * stats[2u * o].z;
  }
  if (t < params.C) {
    let k = stats[2u * t];
    let b = select(0.0, bias[min(t, arrayLength(&bias) - 1u)], (params.flags & BIAS) != 0u);
    bias_out[t] = ((b - k.x) - k.y) * k.z + k.w;
  }
}

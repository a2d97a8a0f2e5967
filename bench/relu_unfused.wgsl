// relu_unfused.wgsl — the separate elementwise kernels that the fused epilogues replace, for the
// epilogue benchmark (what a framework without fusion runs after, or before, batch norm).
//
// Computes, per MODE: 0 out = relu(a) (a = bn's output); 1 out = relu(a + b) (b = the residual z);
//   2 out = a where b > 0, else 0 (a = dy, b = the relu's output y: the relu's backward).
// Bindings (group 0):
//   0 params uniform  Params
//   1 a      storage, read        array<vec4<f32>>
//   2 b      storage, read        array<vec4<f32>> (unused by MODE 0)
//   3 out    storage, read_write  array<vec4<f32>>
// Dispatch: one thread per vec4, index thread_index(); threads past count4 do nothing.
// Method: one 16-byte load per operand and one store per thread, fully coalesced.

override WG: u32 = 256;

struct Params {
  count4: u32,
  mode: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = thread_index(gid, nwg, WG);
  if (i >= params.count4) { return; }
  if (params.mode == 0u) {
    out[i] = relu4(a[i]);
  } else if (params.mode == 1u) {
    out[i] = relu4(a[i] + b[i]);
  } else {
    out[i] = relu_grad4(a[i], b[i]);
  }
}

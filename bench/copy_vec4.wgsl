// copy_vec4.wgsl — the bandwidth yardstick for benchmarks: dst = src, four floats per thread.
//
// Computes: a plain copy; its bytes per second (read + write) is the roofline each batch-norm op
//   is measured against in the same run.
// Bindings (group 0):
//   0 params uniform  Params
//   1 src    storage, read        array<vec4<f32>>
//   2 dst    storage, read_write  array<vec4<f32>>
// Dispatch: one thread per vec4; workgroups (gx, gy) with gx ≤ 65535, index gid.y·(gx·WG) + gid.x.
// Method: one 16-byte load and store per thread, fully coalesced.

override WG: u32 = 256;

struct Params {
  count4: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * (nwg.x * WG) + gid.x;
  if (i < params.count4) {
    dst[i] = src[i];
  }
}

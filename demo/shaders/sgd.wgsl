// sgd.wgsl — plain stochastic gradient descent step: p = p - lr·g.
//
// Computes: one parameter per thread.
// Bindings (group 0):
//   0 params uniform  Params (count, lr)
//   1 g      storage, read        [count]
//   2 p      storage, read_write  [count]
// Dispatch: workgroups (gx, gy), index gid.y·gx·WG + gid.x; threads past count do nothing.
// Method: elementwise.

override WG: u32 = 64;

struct Params { count: u32, lr: f32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> p: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * (nwg.x * WG) + gid.x;
  if (i >= params.count) { return; }
  p[i] = p[i] - params.lr * g[i];
}

// activation.wgsl — elementwise activation: y = sigmoid(x) (op 0) or max(x, 0) (op 1).
//
// Computes: one element per thread.
// Bindings (group 0):
//   0 params uniform  Params (count, op)
//   1 x      storage, read        [count]
//   2 y      storage, read_write  [count]
// Dispatch: workgroups (gx, gy), index gid.y·gx·WG + gid.x; threads past count do nothing.
// Method: sigmoid as 1/(1 + exp(-x)), which saturates to 0 or 1 without producing NaN.

override WG: u32 = 64;

struct Params { count: u32, op: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * (nwg.x * WG) + gid.x;
  if (i >= params.count) { return; }
  let v = x[i];
  y[i] = select(max(v, 0.0), 1.0 / (1.0 + exp(-v)), params.op == 0u);
}

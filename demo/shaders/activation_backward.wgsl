// activation_backward.wgsl — gradient of activation.wgsl from its output:
// dx = dy·y·(1 - y) for sigmoid (op 0), dx = dy·[y > 0] for ReLU (op 1).
//
// Computes: one element per thread.
// Bindings (group 0):
//   0 params uniform  Params (count, op)
//   1 y      storage, read        [count] the forward output
//   2 dy     storage, read        [count]
//   3 dx     storage, read_write  [count]
// Dispatch: workgroups (gx, gy), index gid.y·gx·WG + gid.x; threads past count do nothing.
// Method: both derivatives are functions of the output, so the input need not be kept.

override WG: u32 = 64;

struct Params { count: u32, op: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * (nwg.x * WG) + gid.x;
  if (i >= params.count) { return; }
  let v = y[i];
  dx[i] = dy[i] * select(select(0.0, 1.0, v > 0.0), v * (1.0 - v), params.op == 0u);
}

// softmax_xent.wgsl — softmax cross-entropy over K classes, with its gradient.
//
// Computes, per row b: loss[b] = logsumexp(z_b) - z_b[label_b]; dz[b, k] = (softmax(z_b)_k -
//   [k = label_b]) / B (the gradient of the batch mean); correct[b] = 1 when argmax z_b = label_b.
// Bindings (group 0):
//   0 params  uniform  Params (B, K)
//   1 logits  storage, read        [B, K]
//   2 labels  storage, read        [B] class indices as f32
//   3 loss    storage, read_write  [B]
//   4 dlogits storage, read_write  [B, K]
//   5 correct storage, read_write  [B]
// Dispatch: ceil(B / WG) workgroups, one thread per row.
// Method: subtracts the row maximum before exponentiating (no overflow).

override WG: u32 = 64;

struct Params { B: u32, K: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(5) var<storage, read_write> correct: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.x;
  if (b >= params.B) { return; }
  let base = b * params.K;
  var mx = logits[base];
  var arg = 0u;
  for (var k = 1u; k < params.K; k++) {
    if (logits[base + k] > mx) { mx = logits[base + k]; arg = k; }
  }
  var sum = 0.0;
  for (var k = 0u; k < params.K; k++) { sum += exp(logits[base + k] - mx); }
  let label = u32(labels[b]);
  loss[b] = log(sum) + mx - logits[base + label];
  correct[b] = select(0.0, 1.0, arg == label);
  let invB = 1.0 / f32(params.B);
  for (var k = 0u; k < params.K; k++) {
    let pk = exp(logits[base + k] - mx) / sum;
    dlogits[base + k] = (pk - select(0.0, 1.0, k == label)) * invB;
  }
}

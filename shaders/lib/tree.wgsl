// tree.wgsl — what the version 5 finalize kernels (forward_finalize_tree.wgsl,
// backward_finalize_tree.wgsl) share: one channel's partials merged by its workgroup. The including
// kernel declares WG, Params (C, slices), `partials`, the partial type `part`, its empty value
// EMPTY and `fn combine(a: part, b: part) -> part`.

var<workgroup> tree: array<part, WG>;

/// Channel c's partials combined in one fixed order: thread t takes slices t, t + WG, t + 2·WG, ...
/// in turn (at most 8 while slices ≤ 8·WG, which the table keeps), then a tree over the threads in
/// workgroup memory (log2 WG levels, barriers between). Call it in uniform control flow; every
/// thread returns the channel's total.
fn merge_channel(c: u32, t: u32) -> part {
  var p = EMPTY;
  for (var s = t; s < params.slices; s += WG) {
    p = combine(p, partials[s * params.C + c]);
  }
  tree[t] = p;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (t < stride) { tree[t] = combine(tree[t], tree[t + stride]); }
    workgroupBarrier();
  }
  return tree[0];
}

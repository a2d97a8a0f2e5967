// element.wgsl — what every elementwise and gradient-sum kernel declares: the tensors' element type,
// the workgroup size and the fused epilogue (0 none, 1 relu, 2 add_relu; src/gpu/kernel.ts
// rewrites both lines per pipeline).

// Tensor element type: f32, or f16 where the device has shader-f16 (src/gpu/kernel.ts rewrites
// this alias); all arithmetic is f32.
alias xf = f32;

override WG: u32 = 256;

const EPILOGUE: u32 = 0u;

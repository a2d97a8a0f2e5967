/** Typed wrappers for the demo's layer kernels (demo/shaders/*.wgsl), one per kernel. */
import denseForwardSrc from '../shaders/dense_forward.wgsl?kernel';
import denseBackwardInputSrc from '../shaders/dense_backward_input.wgsl?kernel';
import denseBackwardWeightSrc from '../shaders/dense_backward_weight.wgsl?kernel';
import conv2dForwardSrc from '../shaders/conv2d_forward.wgsl?kernel';
import conv2dBackwardInputSrc from '../shaders/conv2d_backward_input.wgsl?kernel';
import conv2dBackwardWeightSrc from '../shaders/conv2d_backward_weight.wgsl?kernel';
import activationSrc from '../shaders/activation.wgsl?kernel';
import activationBackwardSrc from '../shaders/activation_backward.wgsl?kernel';
import softmaxXentSrc from '../shaders/softmax_xent.wgsl?kernel';
import sgdSrc from '../shaders/sgd.wgsl?kernel';
import { defineKernel, gridFor, prepareDispatch, type Dispatch } from '../../src/gpu/kernel';

const b = (buffer: GPUBuffer) => ({ buffer });
/** Uniform buffers of prepared dispatches go here; the layer that prepared them destroys them. */
type Owned = GPUBuffer[];

export const denseForward = defineKernel(
  'demo.dense_forward',
  denseForwardSrc,
  ['params', 'x', 'w', 'bias', 'y'] as const,
  ['B', 'I', 'O', 'hasBias'] as const,
);
export function prepareDenseForward(
  d: GPUDevice,
  owned: Owned,
  B: number,
  I: number,
  O: number,
  x: GPUBuffer,
  w: GPUBuffer,
  bias: GPUBuffer | null,
  y: GPUBuffer,
  dummy: GPUBuffer,
): Dispatch {
  return prepareDispatch(
    d,
    denseForward,
    { B, I, O, hasBias: bias ? 1 : 0 },
    { x: b(x), w: b(w), bias: b(bias ?? dummy), y: b(y) },
    [Math.ceil(Math.ceil(O / 4) / denseForward.threadsPerWorkgroup()), B],
    owned,
  );
}

export const denseBackwardInput = defineKernel(
  'demo.dense_backward_input',
  denseBackwardInputSrc,
  ['params', 'dy', 'w', 'dx'] as const,
  ['B', 'I', 'O'] as const,
);
export function prepareDenseBackwardInput(
  d: GPUDevice,
  owned: Owned,
  B: number,
  I: number,
  O: number,
  dy: GPUBuffer,
  w: GPUBuffer,
  dx: GPUBuffer,
): Dispatch {
  return prepareDispatch(
    d,
    denseBackwardInput,
    { B, I, O },
    { dy: b(dy), w: b(w), dx: b(dx) },
    [Math.ceil(I / denseBackwardInput.threadsPerWorkgroup()), Math.ceil(B / 4)],
    owned,
  );
}

export const denseBackwardWeight = defineKernel(
  'demo.dense_backward_weight',
  denseBackwardWeightSrc,
  ['params', 'x', 'dy', 'dw', 'dbias'] as const,
  ['B', 'I', 'O', 'hasBias'] as const,
);
export function prepareDenseBackwardWeight(
  d: GPUDevice,
  owned: Owned,
  B: number,
  I: number,
  O: number,
  x: GPUBuffer,
  dy: GPUBuffer,
  dw: GPUBuffer,
  dbias: GPUBuffer | null,
  dummy: GPUBuffer,
): Dispatch {
  return prepareDispatch(
    d,
    denseBackwardWeight,
    { B, I, O, hasBias: dbias ? 1 : 0 },
    { x: b(x), dy: b(dy), dw: b(dw), dbias: b(dbias ?? dummy) },
    [Math.ceil(Math.ceil(O / 4) / denseBackwardWeight.threadsPerWorkgroup()), I],
    owned,
  );
}

export interface ConvShape {
  N: number;
  H: number;
  W: number;
  Ci: number;
  Ho: number;
  Wo: number;
  Co: number;
  K: number;
  stride: number;
  pad: number;
}
const grid = (d: GPUDevice, n: number, threads: number) => gridFor(d, Math.ceil(n / threads));

export const conv2dForward = defineKernel(
  'demo.conv2d_forward',
  conv2dForwardSrc,
  ['params', 'x', 'w', 'bias', 'y'] as const,
  ['N', 'H', 'W', 'Ci', 'Ho', 'Wo', 'Co', 'K', 'stride', 'pad'] as const,
);
export function prepareConv2dForward(
  d: GPUDevice,
  owned: Owned,
  s: ConvShape,
  x: GPUBuffer,
  w: GPUBuffer,
  bias: GPUBuffer,
  y: GPUBuffer,
): Dispatch {
  return prepareDispatch(
    d,
    conv2dForward,
    { ...s },
    { x: b(x), w: b(w), bias: b(bias), y: b(y) },
    grid(d, s.N * s.Ho * s.Wo * s.Co, conv2dForward.threadsPerWorkgroup()),
    owned,
  );
}

export const conv2dBackwardInput = defineKernel(
  'demo.conv2d_backward_input',
  conv2dBackwardInputSrc,
  ['params', 'dy', 'w', 'dx'] as const,
  ['N', 'H', 'W', 'Ci', 'Ho', 'Wo', 'Co', 'K', 'stride', 'pad'] as const,
);
export function prepareConv2dBackwardInput(
  d: GPUDevice,
  owned: Owned,
  s: ConvShape,
  dy: GPUBuffer,
  w: GPUBuffer,
  dx: GPUBuffer,
): Dispatch {
  return prepareDispatch(
    d,
    conv2dBackwardInput,
    { ...s },
    { dy: b(dy), w: b(w), dx: b(dx) },
    grid(d, s.N * s.H * s.W * s.Ci, conv2dBackwardInput.threadsPerWorkgroup()),
    owned,
  );
}

export const conv2dBackwardWeight = defineKernel(
  'demo.conv2d_backward_weight',
  conv2dBackwardWeightSrc,
  ['params', 'x', 'dy', 'dw', 'dbias'] as const,
  ['N', 'H', 'W', 'Ci', 'Ho', 'Wo', 'Co', 'K', 'stride', 'pad'] as const,
);
export function prepareConv2dBackwardWeight(
  d: GPUDevice,
  owned: Owned,
  s: ConvShape,
  x: GPUBuffer,
  dy: GPUBuffer,
  dw: GPUBuffer,
  dbias: GPUBuffer,
): Dispatch {
  return prepareDispatch(
    d,
    conv2dBackwardWeight,
    { ...s },
    { x: b(x), dy: b(dy), dw: b(dw), dbias: b(dbias) },
    grid(d, s.K * s.K * s.Ci * s.Co, conv2dBackwardWeight.threadsPerWorkgroup()),
    owned,
  );
}

/** Activation ops of activation.wgsl / activation_backward.wgsl. */
export const Act = { sigmoid: 0, relu: 1 } as const;

export const activation = defineKernel(
  'demo.activation',
  activationSrc,
  ['params', 'x', 'y'] as const,
  ['count', 'op'] as const,
);
export function prepareActivation(
  d: GPUDevice,
  owned: Owned,
  count: number,
  op: number,
  x: GPUBuffer,
  y: GPUBuffer,
): Dispatch {
  return prepareDispatch(
    d,
    activation,
    { count, op },
    { x: b(x), y: b(y) },
    grid(d, count, activation.threadsPerWorkgroup()),
    owned,
  );
}

export const activationBackward = defineKernel(
  'demo.activation_backward',
  activationBackwardSrc,
  ['params', 'y', 'dy', 'dx'] as const,
  ['count', 'op'] as const,
);
export function prepareActivationBackward(
  d: GPUDevice,
  owned: Owned,
  count: number,
  op: number,
  y: GPUBuffer,
  dy: GPUBuffer,
  dx: GPUBuffer,
): Dispatch {
  return prepareDispatch(
    d,
    activationBackward,
    { count, op },
    { y: b(y), dy: b(dy), dx: b(dx) },
    grid(d, count, activationBackward.threadsPerWorkgroup()),
    owned,
  );
}

export const softmaxXent = defineKernel(
  'demo.softmax_xent',
  softmaxXentSrc,
  ['params', 'logits', 'labels', 'loss', 'dlogits', 'correct'] as const,
  ['B', 'K'] as const,
);
export function prepareSoftmaxXent(
  d: GPUDevice,
  owned: Owned,
  B: number,
  K: number,
  logits: GPUBuffer,
  labels: GPUBuffer,
  loss: GPUBuffer,
  dlogits: GPUBuffer,
  correct: GPUBuffer,
): Dispatch {
  return prepareDispatch(
    d,
    softmaxXent,
    { B, K },
    { logits: b(logits), labels: b(labels), loss: b(loss), dlogits: b(dlogits), correct: b(correct) },
    [Math.ceil(B / softmaxXent.threadsPerWorkgroup())],
    owned,
  );
}

export const sgd = defineKernel('demo.sgd', sgdSrc, ['params', 'g', 'p'] as const, ['count', 'lr'] as const);
export function prepareSgd(
  d: GPUDevice,
  owned: Owned,
  count: number,
  lr: number,
  g: GPUBuffer,
  p: GPUBuffer,
): Dispatch {
  return prepareDispatch(d, sgd, { count, lr }, { g: b(g), p: b(p) }, grid(d, count, sgd.threadsPerWorkgroup()), owned);
}

export const DEMO_KERNELS = [
  denseForward,
  denseBackwardInput,
  denseBackwardWeight,
  conv2dForward,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  activation,
  activationBackward,
  softmaxXent,
  sgd,
] as const;

/**
 * The shapes the bench runs, as B×H×W×C (run in NHWC and NCHW) or N×C (BatchNorm1d, layout NC),
 * and the networks whose training steps it times.
 */
import type { Layout } from '../src/layout';

/** The default set: the two largest ResNet-50 shapes, its last stage, and BatchNorm1d. */
export const FULL_SHAPES = ['64x112x112x64', '64x56x56x256', '64x7x7x2048', '4096x1024'];
export const QUICK_SHAPES = ['8x16x16x32', '256x64'];

/**
 * The BN layers of torchvision's ResNet-50 (v1.5: the stride sits in the 3×3 convolution), as
 * H×W×C with the number of layers of each shape: 53 in all.
 */
export const RESNET50: readonly { hwc: string; layers: number }[] = [
  { hwc: '112x112x64', layers: 1 },
  { hwc: '56x56x64', layers: 6 },
  { hwc: '56x56x128', layers: 1 },
  { hwc: '56x56x256', layers: 4 },
  { hwc: '28x28x128', layers: 7 },
  { hwc: '28x28x256', layers: 1 },
  { hwc: '28x28x512', layers: 5 },
  { hwc: '14x14x256', layers: 11 },
  { hwc: '14x14x512', layers: 1 },
  { hwc: '14x14x1024', layers: 7 },
  { hwc: '7x7x512', layers: 5 },
  { hwc: '7x7x2048', layers: 4 },
];

/** BatchNorm1d shapes of MLPs, N×C. */
export const MLP = ['256x4096', '4096x1024', '65536x256'];

/** The default batch of the ResNet-50 set, and the one --quick uses. */
export const RESNET_BATCH = 64;
export const QUICK_BATCH = 2;

/**
 * Shape names from --shapes: `resnet50` (its 12 shapes at `batch`), `mlp` (its 3 shapes, scaled by
 * batch/64 with --quick), or explicit B×H×W×C / N×C names.
 */
export function expandShapes(names: string[], batch: number, quick: boolean): string[] {
  return names.flatMap((n) => {
    if (n === 'resnet50') return RESNET50.map((s) => `${batch}x${s.hwc}`);
    if (n === 'mlp')
      return quick
        ? MLP.map((s) => {
            const [N, C] = s.split('x').map(Number);
            return `${Math.max(8, N / 64)}x${C}`;
          })
        : MLP;
    if (!/^\d+(x\d+){1,3}$/.test(n)) throw new Error(`unknown shape ${n}: give B×H×W×C, N×C, resnet50 or mlp`);
    return [n];
  });
}

/** The layouts a shape is run in, and its shape in each. */
export function layoutsFor(shape: string): [Layout, number[]][] {
  const d = shape.split('x').map(Number);
  if (d.length === 2) return [['NC', d]];
  const [b, h, w, c] = d;
  return [
    ['NHWC', [b, h, w, c]],
    ['NCHW', [b, c, h, w]],
  ];
}

/** The ResNet-50 layer count of a B×H×W×C shape name (0 when it is not one of them). */
export function resnetLayers(shape: string): number {
  const hwc = shape.split('x').slice(1).join('x');
  return RESNET50.find((s) => s.hwc === hwc)?.layers ?? 0;
}

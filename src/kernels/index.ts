/** Every kernel wrapper, one per shaders/*.wgsl file. */
import { apply } from './apply';
import { applyV2 } from './applyV2';
import { backwardDx } from './backwardDx';
import { backwardDxV2 } from './backwardDxV2';
import { backwardFinalize } from './backwardFinalize';
import { backwardPartial } from './backwardPartial';
import { backwardPartialV2 } from './backwardPartialV2';
import { evalCoeffs } from './evalCoeffs';
import { forwardFinalize } from './forwardFinalize';
import { statsPartial } from './statsPartial';
import { statsPartialV2 } from './statsPartialV2';

export const KERNELS = [
  statsPartial, statsPartialV2, forwardFinalize, evalCoeffs, apply, applyV2,
  backwardPartial, backwardPartialV2, backwardFinalize, backwardDx, backwardDxV2,
] as const;

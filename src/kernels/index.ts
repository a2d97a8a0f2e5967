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
import { statsPartialV3 } from './statsPartialV3';
import { backwardPartialV3 } from './backwardPartialV3';
import { statsPartialV4Rows, statsPartialV4Runs } from './statsPartialV4';
import { backwardPartialV4Rows, backwardPartialV4Runs } from './backwardPartialV4';
import { mergeStats, mergeSums } from './merge';
import { applyV4Rows } from './applyV4';
import { backwardDxV4Rows } from './backwardDxV4';

export const KERNELS = [
  statsPartial, statsPartialV2, statsPartialV3, forwardFinalize, evalCoeffs, apply, applyV2,
  backwardPartial, backwardPartialV2, backwardPartialV3, backwardFinalize, backwardDx, backwardDxV2,
  statsPartialV4Rows, statsPartialV4Runs, backwardPartialV4Rows, backwardPartialV4Runs, mergeStats, mergeSums, applyV4Rows, backwardDxV4Rows,
] as const;

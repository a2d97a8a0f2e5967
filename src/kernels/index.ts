/** Every kernel wrapper, one per shaders/*.wgsl file. */
import { apply } from './apply';
import { backwardDx } from './backwardDx';
import { backwardFinalize } from './backwardFinalize';
import { backwardPartial } from './backwardPartial';
import { evalCoeffs } from './evalCoeffs';
import { forwardFinalize } from './forwardFinalize';
import { statsPartial } from './statsPartial';

export const KERNELS = [statsPartial, forwardFinalize, evalCoeffs, apply, backwardPartial, backwardFinalize, backwardDx] as const;

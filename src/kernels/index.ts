/** Every shipped kernel, one per shaders/*.wgsl file (the reflection test walks this list). */
import {
  backwardFinalize,
  backwardFinalizeTree,
  dxRows,
  dxScalar,
  dxVec4,
  gradSumsBlocks,
  gradSumsMerge,
  gradSumsRows,
  gradSumsRuns,
  gradSumsThread,
} from './gradients.js';
import { applyRows, applyScalar, applyVec4, evalCoeffs, foldWeights } from './normalise.js';
import {
  forwardFinalize,
  forwardFinalizeTree,
  statsBlocks,
  statsMerge,
  statsRows,
  statsRuns,
  statsThread,
} from './statistics.js';
import { stepState } from './step.js';

export const KERNELS = [
  stepState,
  statsThread,
  statsRows,
  statsRuns,
  statsBlocks,
  statsMerge,
  forwardFinalize,
  forwardFinalizeTree,
  evalCoeffs,
  applyScalar,
  applyVec4,
  applyRows,
  gradSumsThread,
  gradSumsRows,
  gradSumsRuns,
  gradSumsBlocks,
  gradSumsMerge,
  backwardFinalize,
  backwardFinalizeTree,
  dxScalar,
  dxVec4,
  dxRows,
  foldWeights,
] as const;

/**
 * A module's per-step values (step_state.wgsl): its step count, the new statistic's weight and the
 * renorm clip, computed on the GPU from the Schedule the module packs (module/schedule.ts).
 */
import stepStateWgsl from '../../shaders/step_state.wgsl?kernel';
import { defineKernel } from '../gpu/kernel.js';

export const stepState = defineKernel('bn.step_state', stepStateWgsl, ['schedule', 'state'] as const, [] as const);

/** Flag bits of step_state.wgsl. */
export const StepFlags = { CUMULATIVE: 1, KERAS: 2 } as const;

/**
 * Bytes of a Step (count, factor, rmax, dmax, rmin; bound as a uniform, so rounded up to 16) and of
 * a Schedule (4 words and 16 vec2 breakpoints).
 */
export const STEP_BYTES = 32;
export const SCHEDULE_BYTES = 16 + 16 * 8;
/** Breakpoints per clip in a Schedule. */
export const SCHEDULE_POINTS = 8;

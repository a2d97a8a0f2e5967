/**
 * The Schedule struct of step_state.wgsl, packed on the host: the momentum rule (PyTorch's factor,
 * Keras's 1 - momentum, or a cumulative 1/n) and the renorm clip's breakpoints, or one clip the host
 * computed (a function schedule). Written when a module is made, and before each awaited step
 * whose clip a function computes.
 */
import type { PiecewiseSchedule, RenormClip, ResolvedOptions } from '../options.js';
import { SCHEDULE_BYTES, SCHEDULE_POINTS, StepFlags } from '../kernels/step.js';

/** The Schedule struct: the momentum rule, and the clip's breakpoints (or a host-computed clip). */
export function packSchedule(o: ResolvedOptions, hostClip: RenormClip | null): ArrayBuffer {
  const buf = new ArrayBuffer(SCHEDULE_BYTES);
  const u = new Uint32Array(buf),
    f = new Float32Array(buf);
  u[0] = (o.momentum === null ? StepFlags.CUMULATIVE : 0) | (o.convention === 'keras' ? StepFlags.KERAS : 0);
  f[1] = o.momentum ?? 0;
  const points: PiecewiseSchedule = hostClip
    ? { rmax: [[0, hostClip.rmax]], dmax: [[0, hostClip.dmax]] }
    : o.renorm?.kind === 'points'
      ? o.renorm.points
      : { rmax: [[0, 1]], dmax: [[0, 0]] };
  u[2] = points.rmax.length;
  u[3] = points.dmax.length;
  points.rmax.forEach(([s, v], i) => {
    f[4 + 2 * i] = s;
    f[5 + 2 * i] = v;
  });
  points.dmax.forEach(([s, v], i) => {
    f[4 + 2 * (SCHEDULE_POINTS + i)] = s;
    f[5 + 2 * (SCHEDULE_POINTS + i)] = v;
  });
  return buf;
}

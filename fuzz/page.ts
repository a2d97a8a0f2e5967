/** The fuzzer in a Chromium page: fuzz/cli.ts calls run() for each range of calls. */
import { requestBatchNormDevice } from '../src/device';
import { Fuzzer, runRange, type Counts, type Finding } from './core';

let progress = -1;

/** The last call a run started (read when a run does not answer). */
export const last = (): number => progress;

export async function run(
  seed: number,
  from: number,
  count: number,
): Promise<{ counts: Counts; findings: Finding[]; next: number }> {
  const device = await requestBatchNormDevice();
  const other = await requestBatchNormDevice();
  const fz = new Fuzzer({ device, other }, seed);
  const onRejection = (e: PromiseRejectionEvent) => {
    fz.counts.findings['unhandled-rejection']++;
    fz.findings.push({
      kind: 'unhandled-rejection',
      seed,
      call: progress,
      entry: '?',
      mutation: '?',
      detail: String(e.reason),
    });
  };
  addEventListener('unhandledrejection', onRejection);
  let next = from + count;
  try {
    await runRange(fz, from, count, (k) => {
      progress = k;
    });
  } catch {
    next = progress + 1; // a hang, counted by the fuzzer; go on after it
  } finally {
    removeEventListener('unhandledrejection', onRejection);
    device.destroy();
    other.destroy();
  }
  return { counts: fz.counts, findings: fz.findings, next };
}

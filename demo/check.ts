/** The headless check's browser entry: trains every variant with fixed seeds and reports the numbers. */
import { requestBatchNormDevice } from '../src/device';
import { loadDataset } from './engine/data';
import { Run } from './engine/trainer';
import { DEFAULTS, EVAL_EVERY, variants, type Settings } from './engine/variants';
import { compare } from './tfjs/compare';
import type { Comparison } from './tfjs/result';

/** The TF.js page's comparison, headless: the same CNN with TF.js's BatchNormalization and the bridge's. */
export async function runTfjsCheck(steps: number, batchSize: number): Promise<Comparison> {
  return compare(await loadDataset(), { steps, batchSize, lr: 0.05 });
}

export interface VariantResult {
  name: string;
  note: string;
  batchSize: number;
  lr: number;
  steps: number;
  trainLoss: number[];
  /** Test accuracy after the last step. */
  testAccuracy: number;
  /** Test accuracy every `evalEvery` steps (the page's schedule), and the mean of the last four. */
  testAccuracyHistory: { step: number; accuracy: number }[];
  testAccuracyLast4: number;
  /** Test accuracy with each batch norm folded into the convolution before it (null: nothing to fold). */
  foldedTestAccuracy: number | null;
  paramNorm: number;
  /** Parameter norm at every logged step, and the watched unit's input percentiles. */
  paramNormHistory: { step: number; value: number }[];
  percentiles: { step: number; p15: number; p50: number; p85: number }[];
  seconds: number;
}

export interface CheckReport {
  adapter: string;
  settings: Settings;
  variants: VariantResult[];
}

export async function runCheck(overrides: Partial<Settings>, only?: string[]): Promise<CheckReport> {
  const settings = { ...DEFAULTS, ...overrides };
  const device = await requestBatchNormDevice();
  const data = await loadDataset();
  const out: VariantResult[] = [];
  for (const v of variants(settings)) {
    if (only && !only.some((o) => v.name.includes(o))) continue;
    const t0 = performance.now();
    const run = new Run(device, data, v, settings);
    for (let s = 1; s <= settings.steps; s++) {
      await run.trainStep();
      if (s % EVAL_EVERY === 0 || s === settings.steps) await run.evaluate();
    }
    const h = run.history;
    const acc = h.testAccuracy[h.testAccuracy.length - 1];
    const last4 = h.testAccuracy.slice(-4);
    out.push({
      name: v.name,
      note: v.note,
      batchSize: v.batchSize,
      lr: v.lr,
      steps: settings.steps,
      trainLoss: h.loss,
      testAccuracy: acc,
      foldedTestAccuracy: await run.evaluateFolded(),
      paramNorm: await run.paramNorm(),
      testAccuracyHistory: h.testSteps.map((step, i) => ({ step, accuracy: h.testAccuracy[i] })),
      testAccuracyLast4: last4.reduce((a, b) => a + b, 0) / last4.length,
      paramNormHistory: run.history.paramNorm,
      percentiles: run.history.percentiles,
      seconds: (performance.now() - t0) / 1000,
    });
    run.destroy();
  }
  const i = device.adapterInfo;
  device.destroy();
  return {
    adapter: [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' '),
    settings,
    variants: out,
  };
}

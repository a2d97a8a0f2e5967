/**
 * The TF.js page: the same TF.js CNN trained twice on Fashion-MNIST, side by side, with TF.js's own
 * BatchNormalization and with webgpu-batchnorm/tfjs's, with live loss curves and steps/s.
 */
import { LineChart, PALETTE, ema } from '../charts';
import { loadDataset } from '../engine/data';
import { compare } from './compare';
import { stepsPerSecond, type Comparison } from './result';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status');

async function main() {
  if (!('gpu' in navigator)) {
    status.textContent = 'This browser has no WebGPU (navigator.gpu is missing): use a recent Chrome or Edge.';
    return;
  }
  status.textContent = 'Loading Fashion-MNIST…';
  const data = await loadDataset();
  const start = $<HTMLButtonElement>('start');
  const stop = $<HTMLButtonElement>('stop');
  const steps = $<HTMLInputElement>('steps');
  const batch = $<HTMLInputElement>('batch');
  let stopped = false;
  start.disabled = false;
  status.textContent = 'Ready.';
  start.onclick = async () => {
    start.disabled = true;
    stop.disabled = false;
    stopped = false;
    const chart = new LineChart(
      $('chart'),
      'Training loss (EMA), same batches, same initial weights',
      [
        { label: 'TF.js BatchNormalization', color: PALETTE[0] },
        { label: 'webgpu-batchnorm/tfjs', color: PALETTE[1], dash: [6, 3] },
      ],
      'cross-entropy',
    );
    const show = (step: number, c: Comparison) => {
      const xs = c.stock.losses.map((_, i) => i + 1);
      chart.set(xs, [ema(c.stock.losses), ema(c.bridge.losses)]);
      const a = stepsPerSecond(c.stock),
        b = stepsPerSecond(c.bridge);
      $('rate').textContent =
        `step ${step}: stock ${a.toFixed(2)} steps/s, bridge ${b.toFixed(2)} steps/s (${(b / a).toFixed(2)}×)`;
    };
    try {
      const c = await compare(data, {
        steps: Number(steps.value),
        batchSize: Number(batch.value),
        lr: 0.05,
        onStep: show,
        stopped: () => stopped,
      });
      $('adapter').textContent = `Adapter: ${c.adapter}`;
      status.textContent = `Done: test accuracy (first 1000 test images) stock ${(100 * c.stock.testAccuracy).toFixed(1)}%, bridge ${(100 * c.bridge.testAccuracy).toFixed(1)}%.`;
    } catch (e) {
      status.textContent = `Error: ${(e as Error).message}`;
    } finally {
      start.disabled = false;
      stop.disabled = true;
    }
  };
  stop.onclick = () => {
    stopped = true;
  };
}

void main();

/** The benchmark's browser entry: the library's bench beside TF.js's WebGPU backend on the same adapter. */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-webgpu';
import * as tfl from '@tensorflow/tfjs-layers';
import * as bridge from '../src/tfjs';
import { requestBatchNormDevice } from '../src/device';
import { runBench, type BenchConfig, type Report } from './bench';
import { runTfjsBench, type TfjsRow } from './tfjs';

/** --ops tfjs: the bridge against TF.js's own layer on TF.js's WebGPU backend. */
export async function runTfjs(quick: boolean): Promise<{ adapter: string; rows: TfjsRow[]; log: string[] }> {
  await tf.setBackend('webgpu');
  await tf.ready();
  const info = (tf.backend() as unknown as { device: GPUDevice }).device.adapterInfo;
  const log: string[] = [];
  const rows = await runTfjsBench({ tf, tfl, bridge }, quick, (s) => log.push(s));
  return { adapter: `${info.vendor} ${info.architecture} ${info.description}`, rows, log };
}

export async function run(cfg: BenchConfig, withTfjs: boolean): Promise<Report & { log: string[] }> {
  const log: string[] = [];
  let tfjs: typeof tf | null = null;
  if (withTfjs) {
    await tf.setBackend('webgpu');
    await tf.ready();
    tfjs = tf;
  }
  const device = await requestBatchNormDevice({ optionalFeatures: ['timestamp-query', 'shader-f16'] });
  const report = await runBench(device, cfg, tfjs, (s) => log.push(s));
  device.destroy();
  return { ...report, log };
}

/** The benchmark's browser entry: the library's bench beside TF.js's WebGPU backend on the same adapter. */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-webgpu';
import { requestBatchNormDevice } from '../src/device';
import { runBench, type BenchConfig, type Report } from './bench';

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

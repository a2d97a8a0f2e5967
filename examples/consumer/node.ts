/**
 * The example in Node, on the `webgpu` package (Dawn). Dawn needs a Vulkan driver: a GPU's own
 * (NVIDIA, AMD, Intel), or, on a machine without one, Chromium's SwiftShader:
 *   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json node dist-node/node.js
 */
import { create, globals } from 'webgpu';
import { requestBatchNormDevice } from 'webgpu-batchnorm';
import { runExample } from './src/example.js';
import { runTrainStep } from './src/train-step.js';

Object.assign(globalThis, globals); // GPUBufferUsage and friends
const device = await requestBatchNormDevice({ gpu: create([]) });
console.log(JSON.stringify({ trainStep: await runTrainStep(device) }));
console.log(JSON.stringify(await runExample(device)));
device.destroy();

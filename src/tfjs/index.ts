/**
 * webgpu-batchnorm/tfjs: the library's BatchNormalization as a drop-in TensorFlow.js layer, trained
 * on TF.js's WebGPU backend with the library's kernels. `install()` makes models built from JSON
 * use it; `batchNormalization(args)` makes one directly.
 */
export {
  BatchNormalization,
  batchNormalization,
  install,
  isInstalled,
  uninstall,
  type BatchNormalizationArgs,
  type RenormClipping,
} from './layer.js';
export { SUPPORTED_TFJS } from './internals.js';

/** The conformance backend for the float64 CPU path. */
import { CpuBatchNorm } from '../cpu/batchnorm.js';
import type { ConformanceBackend, ConformanceModule } from './runner.js';

export const cpuBackend: ConformanceBackend = {
  name: 'cpu',
  adapter: { name: 'float64 CPU reference' },
  tolerance: 1e-7,
  async createModule(numFeatures, options) {
    const bn = new CpuBatchNorm(numFeatures, options);
    const m: ConformanceModule = {
      train: (mode) => {
        bn.train(mode);
      },
      loadStateDict: async (sd) => bn.loadStateDict(sd),
      forward: async (x, shape, layout, z) => bn.forward(x, shape, layout, z),
      backward: async (x, dy) => bn.backward(x, dy),
      forwardSync: (x, shape, layout, z, batch, allReduce) => bn.forwardSync(x, shape, layout, { batch, allReduce, z }),
      backwardSync: (x, dy, allReduce) => bn.backwardSync(x, dy, { allReduce }),
      runningStats: async (): Promise<Record<string, Float64Array>> => {
        if (!bn.options.trackRunningStats) return {};
        return { running_mean: Float64Array.from(bn.runningMean), [bn.spreadKey]: Float64Array.from(bn.runningSpread) };
      },
      correction: async () => bn.lastCorrection(),
      stateDict: async () => bn.stateDict(),
      destroy: () => {},
    };
    return m;
  },
};

/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import { playwright } from '@vitest/browser-playwright';
import { resolve } from 'node:path';
import { CHROMIUM_PATH, CHROMIUM_WEBGPU_ARGS } from './src/chromium.ts';

const root = import.meta.dirname;
const shared = resolve(root, '../shared');

/**
 * One config, four jobs:
 * - default: the demo app (index.html + demo/), served by `npm run demo`, built into dist-demo/;
 * - `--mode lib`: the browser-ready ESM library (index, cpu, conformance) into dist/;
 * - `--mode cli`: the Node CLIs into dist/cli/;
 * - `test`: Vitest, a Node project and a headless-Chromium WebGPU project.
 */
export default defineConfig(({ mode }) => ({
  server: { fs: { allow: [root, shared] } },
  define: { __SHARED_DIR__: JSON.stringify(shared) },
  build:
    mode === 'lib'
      ? {
          outDir: 'dist',
          emptyOutDir: false,
          sourcemap: true,
          lib: {
            entry: { index: 'src/index.ts', cpu: 'src/cpu/index.ts', conformance: 'src/conformance/index.ts' },
            formats: ['es'],
          },
        }
      : mode === 'cli'
        ? {
            outDir: 'dist/cli',
            emptyOutDir: false,
            ssr: true,
            target: 'node20',
            rollupOptions: { input: { 'bn-conformance': 'src/cli/bn-conformance.ts' }, output: { entryFileNames: '[name].js' } },
          }
        : { outDir: 'dist-demo' },
  test: {
    projects: [
      {
        extends: true,
        test: { name: 'node', include: ['test/node/**/*.test.ts'], environment: 'node' },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          testTimeout: 120_000,
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            provider: playwright({ launchOptions: { executablePath: CHROMIUM_PATH, args: CHROMIUM_WEBGPU_ARGS } }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
    ],
  },
}));

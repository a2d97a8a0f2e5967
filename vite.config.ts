/// <reference types="vitest/config" />
import { defineConfig, type BuildEnvironmentOptions } from 'vite';
import { playwright } from '@vitest/browser-playwright';
import { CHROMIUM_PATH, CHROMIUM_WEBGPU_ARGS } from './src/cli/chromium.ts';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { wgslKernels } from './scripts/wgsl.ts';

const nodeBuild = (outDir: string, input: Record<string, string>): BuildEnvironmentOptions => ({
  outDir,
  emptyOutDir: false,
  ssr: true,
  target: 'node20',
  rollupOptions: { input, output: { entryFileNames: '[name].js' } },
});

/**
 * One config, several jobs, chosen by --mode:
 * - default: the demo app (index.html + demo/), served by `npm run demo`, built into dist-demo/;
 * - lib: the ESM library (index, cpu, conformance) into dist/, kernels compiled by scripts/wgsl.ts;
 * - cli: the Node CLIs into dist/cli/;
 * - bench / bench-cli: the benchmark page (with TF.js) and its Node driver, into dist-bench/;
 * - check / check-cli: the demo's headless check (every variant, fixed seeds), into dist-check/;
 * - soak: the Node soak run, into dist-soak/;
 * - fuzz / fuzz-cli: the fuzzer's page and its Node driver and worker, into dist-fuzz/;
 * - test (Vitest): a Node project and a headless-Chromium WebGPU project.
 */
const builds: Record<string, BuildEnvironmentOptions> = {
  // Unminified ESM: the app's bundler minifies, and readable names survive in stack traces.
  lib: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    minify: false,
    lib: {
      entry: {
        index: 'src/index.ts',
        cpu: 'src/cpu/index.ts',
        conformance: 'src/conformance/index.ts',
        tfjs: 'src/tfjs/index.ts',
      },
      formats: ['es'],
    },
    // TF.js is the app's (an optional peer dependency): the bridge must share its one instance.
    rollupOptions: { external: [/^@tensorflow\//] },
  },
  cli: nodeBuild('dist/cli', { 'bn-conformance': 'src/cli/bn-conformance.ts' }),
  bench: { outDir: 'dist-bench', emptyOutDir: false, lib: { entry: { page: 'bench/page.ts' }, formats: ['es'] } },
  'bench-cli': nodeBuild('dist-bench', { cli: 'bench/cli.ts' }),
  check: { outDir: 'dist-check', emptyOutDir: false, lib: { entry: { check: 'demo/check.ts' }, formats: ['es'] } },
  'check-cli': nodeBuild('dist-check', { cli: 'demo/check-cli.ts' }),
  soak: nodeBuild('dist-soak', { soak: 'soak/soak.ts' }),
  // The fuzzer's page build keeps class names: its judge checks that each error names its class.
  fuzz: {
    outDir: 'dist-fuzz',
    emptyOutDir: false,
    minify: false,
    lib: { entry: { page: 'fuzz/page.ts' }, formats: ['es'] },
  },
  'fuzz-cli': nodeBuild('dist-fuzz', { cli: 'fuzz/cli.ts', worker: 'fuzz/worker.ts' }),
};

/** The bin keeps its run bit whenever the CLI is rebuilt (npm sets it only when installing). */
const executableBin = () => ({
  name: 'executable-bin',
  writeBundle(options: { dir?: string }, bundle: Record<string, unknown>) {
    if (bundle['bn-conformance.js']) chmodSync(join(options.dir ?? 'dist/cli', 'bn-conformance.js'), 0o755);
  },
});

export default defineConfig(({ mode }) => ({
  plugins: [wgslKernels(), ...(mode === 'cli' ? [executableBin()] : [])],
  define: {
    // Randomised GPU-vs-CPU cases per test run: BN_PROPERTY_CASES=2000 npm test for a long run.
    __PROPERTY_CASES__: JSON.stringify(Number(process.env.BN_PROPERTY_CASES ?? 40)),
    __PROPERTY_SEED__: JSON.stringify(Number(process.env.BN_PROPERTY_SEED ?? 20261126)),
    __PROPERTY_PATH__: JSON.stringify(process.env.BN_PROPERTY_PATH ?? ''),
  },
  build: builds[mode] ?? {
    outDir: 'dist-demo',
    rollupOptions: { input: { main: 'index.html', tfjs: 'tfjs.html' } },
  },
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

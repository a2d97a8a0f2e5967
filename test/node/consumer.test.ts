/**
 * The package as a user gets it. Packs the repository (npm pack, which builds it), installs the
 * tarball into a temporary copy of examples/consumer, and checks that the app type-checks (strict,
 * every common resolution, TypeScript 5 and 7, declarations checked), that negative.ts fails to
 * compile where it says, that the page runs in headless Chromium and the script in Node agreeing
 * with the float64 CPU path, that the bn-conformance bin runs, and that installs from git and from
 * a bare folder work with no manual step.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_PATH, CHROMIUM_WEBGPU_ARGS } from '../../src/cli/chromium';
import { WEBGPU_TOLERANCE } from '../../src/conformance/webgpuBackend';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const env: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
if (!env.VK_ICD_FILENAMES && !env.VK_DRIVER_FILES && existsSync(SWIFTSHADER_ICD) && !existsSync('/dev/nvidia0'))
  env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
const NPM = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];
const MINUTES = 60_000;

let tmp = '',
  app = '',
  tarball = '';

function sh(cmd: string, args: string[], cwd: string): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 1 << 26 });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

interface Result {
  adapter: string;
  errors: Record<string, number>;
  numBatchesTracked: number;
  error?: string;
}

/** The example's report: every error within the library's tolerance, one training step counted. */
function expectAgreement(text: string): void {
  const line = text
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  expect(line, text).toBeDefined();
  const r = JSON.parse(line!) as Result;
  expect(r.error).toBeUndefined();
  for (const [k, e] of Object.entries(r.errors))
    expect(e, `${k} on ${r.adapter}`).toBeLessThanOrEqual(WEBGPU_TOLERANCE);
  expect(r.numBatchesTracked).toBe(1);
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'bn-consumer-'));
  const pack = sh('npm', ['pack', '--pack-destination', tmp, ...NPM], root);
  expect(pack.status, pack.out).toBe(0);
  tarball = join(tmp, pack.out.trim().split('\n').pop()!);
  app = join(tmp, 'app');
  cpSync(join(root, 'examples/consumer'), app, {
    recursive: true,
    filter: (src) => !/node_modules|dist/.test(src.slice(root.length)),
  });
  const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'));
  pkg.dependencies['webgpu-batchnorm'] = `file:${tarball}`;
  pkg.devDependencies.typescript7 = 'npm:typescript@7.0.2';
  writeFileSync(join(app, 'package.json'), JSON.stringify(pkg, null, 2));
  const install = sh('npm', ['install', ...NPM], app);
  expect(install.status, install.out).toBe(0);
}, 6 * MINUTES);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the packed package in the example app', () => {
  it('the tarball holds dist, the declarations, the bin, the vectors and the licence', () => {
    const listing = sh('tar', ['tzf', tarball], tmp).out;
    for (const f of [
      'dist/index.js',
      'dist/types/entry/index.d.ts',
      'dist/types/entry/index.ts7.d.ts',
      'dist/cli/bn-conformance.js',
      'conformance/pytorch_golden.json',
      'LICENSE',
      'README.md',
    ]) {
      expect(listing).toContain(`package/${f}`);
    }
  });

  const tsc = (project: string, ts = 'typescript', extra: string[] = []) =>
    sh('node', [join(app, 'node_modules', ts, 'bin/tsc'), '-p', project, ...extra], app);
  for (const [project, what] of [
    ['tsconfig.json', 'NodeNext'],
    ['tsconfig.node16.json', 'Node16'],
    ['tsconfig.bundler.json', 'Bundler'],
    ['tsconfig.node10.json', 'node10'],
  ]) {
    it(
      `type-checks with TypeScript 5, strict, ${what} resolution, declarations checked`,
      () => {
        const r = tsc(project);
        expect(r.out).toBe('');
        expect(r.status).toBe(0);
      },
      MINUTES,
    );
  }
  for (const [project, what] of [
    ['tsconfig.bundler.json', 'Bundler'],
    ['tsconfig.ts7-node.json', 'NodeNext'],
  ]) {
    it(
      `type-checks with TypeScript 7 (WebGPU in its DOM library), ${what} resolution`,
      () => {
        const r = tsc(project, 'typescript7', ['--noEmit']);
        expect(r.out).toBe('');
        expect(r.status).toBe(0);
      },
      MINUTES,
    );
  }

  it(
    'negative.ts fails to compile on exactly the lines it marks (the types are not any)',
    () => {
      const r = tsc('tsconfig.negative.json');
      const marked = readFileSync(join(app, 'negative.ts'), 'utf8')
        .split('\n')
        .flatMap((l, i) => (l.includes('// error:') ? [i + 1] : []));
      const lines = [
        ...new Set([...r.out.matchAll(/negative\.ts\((\d+),\d+\): error TS\d+/g)].map((m) => Number(m[1]))),
      ];
      expect(r.status).not.toBe(0);
      expect(lines).toEqual(marked);
    },
    MINUTES,
  );

  it(
    'the page builds with Vite and runs in headless Chromium, agreeing with the CPU path',
    async () => {
      const build = sh('npx', ['vite', 'build', '--logLevel', 'warn'], app);
      expect(build.status, build.out).toBe(0);
      const { chromium } = await import('playwright-core');
      const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript' };
      const server = createServer((req, res) => {
        const path = (req.url ?? '/').split('?')[0];
        const file = join(app, 'dist', path === '/' ? 'index.html' : path);
        let body: Buffer;
        try {
          body = readFileSync(file);
        } catch {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(body);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const browser = await chromium.launch({
        executablePath: CHROMIUM_PATH,
        args: CHROMIUM_WEBGPU_ARGS,
        headless: true,
      });
      try {
        const page = await browser.newPage();
        await page.goto(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
        await page.waitForFunction(() => document.getElementById('result')?.textContent?.startsWith('{'), null, {
          timeout: 2 * MINUTES,
        });
        expectAgreement((await page.textContent('#result')) ?? '');
      } finally {
        await browser.close();
        server.close();
      }
    },
    4 * MINUTES,
  );

  it(
    'the Node script runs through Dawn, agreeing with the CPU path',
    () => {
      const build = tsc('tsconfig.json');
      expect(build.status, build.out).toBe(0);
      const out = sh('node', ['dist-node/node.js'], app).out;
      expectAgreement(out);
      // The README's training step (examples/consumer/src/train-step.ts): three steps, one submit each.
      const line = out.split('\n').find((l) => l.startsWith('{"trainStep"'));
      expect(line, out).toBeDefined();
      const t = (JSON.parse(line!) as { trainStep: { errors: Record<string, number>; steps: number } }).trainStep;
      for (const [k, e] of Object.entries(t.errors)) expect(e, k).toBeLessThanOrEqual(WEBGPU_TOLERANCE);
      expect(t.steps).toBe(3);
    },
    2 * MINUTES,
  );

  it(
    'synchronized batch norm over worker_threads, a GPUDevice per worker, equals one device',
    () => {
      const r = sh('node', ['sync-workers.mjs'], app);
      expect(r.status, r.out).toBe(0);
      const m = /workers: 2; largest difference from one device: (\S+)/.exec(r.out);
      expect(m, r.out).not.toBeNull();
      expect(Number(m![1])).toBeLessThan(1e-5);
    },
    2 * MINUTES,
  );

  it(
    'the bn-conformance bin is linked and runs the vectors the package ships',
    () => {
      const r = sh('npx', ['--no-install', 'bn-conformance', '--backend', 'cpu', '--layout', 'NHWC'], app);
      expect(r.status, r.out).toBe(0);
      expect(r.out).toMatch(/^29 passed, 0 failed$/m);
    },
    MINUTES,
  );

  it(
    "bn-conformance --dtype float16 on an adapter without 'shader-f16': one line, exit status 3",
    () => {
      const r = sh('npx', ['--no-install', 'bn-conformance', '--dtype', 'float16', '--runtime', 'node'], app);
      const lines = r.out.trim().split('\n');
      if (r.status === 0) return expect(r.out).toMatch(/passed, 0 failed/); // an adapter with shader-f16 runs the cases
      expect(r.status, r.out).toBe(3);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^bn-conformance: float16 needs the adapter feature 'shader-f16'/);
    },
    MINUTES,
  );
});

describe('installs from source run the build themselves', () => {
  for (const [what, spec] of [
    ['git+file://<repository>', `git+file://${root}`],
    ['<folder> (a bare clone)', 'clone'],
  ]) {
    it(
      `npm install ${what}: the import works and the bin runs`,
      () => {
        const dir = join(tmp, what.startsWith('git') ? 'from-git' : 'from-folder');
        mkdirSync(dir);
        writeFileSync(
          join(dir, 'package.json'),
          JSON.stringify({ name: 'bn-install-check', private: true, type: 'module' }),
        );
        let target = spec;
        if (spec === 'clone') {
          target = join(tmp, 'clone');
          expect(sh('git', ['clone', '-q', root, target], tmp).status).toBe(0);
        }
        const r = sh('npm', ['install', target, ...NPM], dir);
        expect(r.status, r.out).toBe(0);
        const imp = sh(
          'node',
          [
            '--input-type=module',
            '-e',
            "const m = await import('webgpu-batchnorm'); const c = await import('webgpu-batchnorm/cpu'); console.log(typeof m.BatchNorm, typeof c.CpuBatchNorm, String(new m.ShapeError('x')))",
          ],
          dir,
        );
        expect(imp.out.trim()).toBe('function function ShapeError: x');
        const bin = sh('npx', ['--no-install', 'bn-conformance', '--backend', 'cpu'], dir);
        expect(bin.status, bin.out).toBe(0);
        expect(bin.out).toMatch(/^29 passed, 0 failed$/m);
      },
      5 * MINUTES,
    );
  }
});

#!/usr/bin/env node
// The package as a user gets it. Packs the repository (npm pack, which builds it), installs the
// tarball into a temporary copy of examples/consumer, and checks that:
// - the app type-checks, strict, under NodeNext, Node16, Bundler and node10 resolution, and with
//   TypeScript 7 (whose DOM library declares WebGPU itself), with full declaration checks;
// - negative.ts fails to compile with exactly the errors it marks (the types are not `any`);
// - the page builds with Vite and runs in headless Chromium, and the script runs in Node, both
//   agreeing with the float64 CPU path;
// - the bn-conformance bin is linked and runs the vectors the package ships, and says in one line
//   (exit status 3) that float16 needs 'shader-f16' where the adapter lacks it;
// - `npm install git+file://<this repository>` and `npm install <folder>` give a working import
//   and bin, with no manual step.
// Prints one line per check and ends with "consumer: N passed, M failed".
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'bn-consumer-'));
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
if (!env.VK_ICD_FILENAMES && !env.VK_DRIVER_FILES && existsSync(SWIFTSHADER_ICD) && !existsSync('/dev/nvidia0')) env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
const NPM = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];
/** f32 kernels against float64 on the example's data: the library's own bound. */
const TOLERANCE = 1e-5;

let passed = 0, failed = 0;
function check(name, ok, detail = '') {
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`);
  if (ok) passed++;
  else failed++;
  return ok;
}

function sh(cmd, args, cwd, extra = {}) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 1 << 26, ...extra });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

const tail = (s, n = 15) => s.trim().split('\n').slice(-n).join('\n');

/** The example's numbers: every error within tolerance, one training step counted. */
function judge(name, text) {
  let r;
  try {
    r = JSON.parse(text.trim().split('\n').filter((l) => l.startsWith('{')).pop());
  } catch {
    return check(name, false, `no JSON result in: ${tail(text, 5)}`);
  }
  if (r.error) return check(name, false, r.error);
  const worst = Math.max(...Object.values(r.errors));
  return check(name, worst <= TOLERANCE && r.numBatchesTracked === 1, `${r.adapter}; largest scaled error ${worst.toExponential(1)} (${Object.entries(r.errors).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')})`);
}

try {
  // 1. Pack (runs `prepare`, which builds).
  const pack = sh('npm', ['pack', '--pack-destination', tmp, ...NPM], root);
  const tarball = join(tmp, pack.out.trim().split('\n').pop() ?? '');
  if (!check('npm pack builds and packs the library', pack.status === 0 && existsSync(tarball), pack.status === 0 ? tarball : tail(pack.out))) throw new Error('no tarball');
  const listing = sh('tar', ['tzf', tarball], tmp).out;
  check('the tarball holds dist, the declarations, the bin and the vectors', ['package/dist/index.js', 'package/dist/types/entry/index.d.ts', 'package/dist/cli/bn-conformance.js', 'package/conformance/pytorch_golden.json', 'package/LICENSE'].every((f) => listing.includes(f)));

  // 2. The example app, with the tarball installed (and TypeScript 7 beside TypeScript 5).
  const app = join(tmp, 'app');
  cpSync(join(root, 'examples/consumer'), app, { recursive: true, filter: (src) => !/node_modules|dist/.test(src.slice(root.length)) });
  const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'));
  pkg.dependencies['webgpu-batchnorm'] = `file:${tarball}`;
  pkg.devDependencies.typescript7 = 'npm:typescript@7.0.2';
  writeFileSync(join(app, 'package.json'), JSON.stringify(pkg, null, 2));
  const install = sh('npm', ['install', ...NPM], app);
  if (!check('npm install <tarball> into the example app', install.status === 0, tail(install.out, 5))) throw new Error('install failed');

  const tsc = (project, ts = 'typescript') => sh('node', [join(app, 'node_modules', ts, 'bin/tsc'), '-p', project], app);
  for (const [project, what] of [['tsconfig.json', 'NodeNext'], ['tsconfig.node16.json', 'Node16'], ['tsconfig.bundler.json', 'Bundler'], ['tsconfig.node10.json', 'node10']]) {
    const r = tsc(project);
    check(`tsc (TypeScript 5) strict, ${what} resolution, declarations checked`, r.status === 0, tail(r.out, 8));
  }
  for (const [project, what] of [['tsconfig.bundler.json', 'Bundler'], ['tsconfig.json', 'NodeNext']]) {
    const r = sh('node', [join(app, 'node_modules/typescript7/bin/tsc'), '-p', project, '--noEmit'], app);
    check(`tsc (TypeScript 7) strict, ${what} resolution: no clash with its DOM library's WebGPU types`, r.status === 0, tail(r.out, 8));
  }
  const neg = tsc('tsconfig.negative.json');
  const marked = readFileSync(join(app, 'negative.ts'), 'utf8').split('\n').flatMap((l, i) => (l.includes('// error:') ? [i + 1] : []));
  const lines = [...new Set([...neg.out.matchAll(/negative\.ts\((\d+),\d+\): error TS\d+/g)].map((m) => Number(m[1])))];
  check('negative.ts fails to compile on exactly the lines it marks', neg.status !== 0 && lines.join() === marked.join(), `marked ${marked.join(', ')}; errors on ${lines.join(', ') || 'none'}`);

  // 3. The page, built and run in headless Chromium.
  const build = sh('npx', ['vite', 'build', '--logLevel', 'warn'], app);
  if (check('vite build of the page', build.status === 0, tail(build.out, 5))) {
    const { chromium } = await import('playwright-core');
    const { CHROMIUM_PATH, CHROMIUM_WEBGPU_ARGS } = await import('./chromium.mjs');
    const types = { '.html': 'text/html', '.js': 'text/javascript' };
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const file = join(app, 'dist', path === '/' ? 'index.html' : path);
      try {
        res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_WEBGPU_ARGS, headless: true });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${server.address().port}/`);
      await page.waitForFunction(() => document.getElementById('result')?.textContent?.startsWith('{'), null, { timeout: 120_000 });
      judge('the page runs the example in Chromium, agreeing with the CPU path', await page.textContent('#result'));
    } finally {
      await browser.close();
      server.close();
    }
  }

  // 4. The Node script (compiled by the NodeNext check above).
  judge('the Node script runs the example through Dawn, agreeing with the CPU path', sh('node', ['dist-node/node.js'], app).out);

  // 5. The bin.
  const bin = sh('npx', ['--no-install', 'bn-conformance', '--backend', 'cpu', '--layout', 'NHWC'], app);
  check('the bn-conformance bin runs the shipped vectors', bin.status === 0 && /^13 passed, 0 failed$/m.test(bin.out), tail(bin.out, 1));
  const f16 = sh('npx', ['--no-install', 'bn-conformance', '--dtype', 'float16', '--runtime', 'node'], app);
  const f16lines = f16.out.trim().split('\n');
  check("bn-conformance --dtype float16 without 'shader-f16': one line, exit status 3", f16.status === 3 && f16lines.length === 1 && /shader-f16/.test(f16lines[0]), `status ${f16.status}: ${tail(f16.out, 3)}`);

  // 6. From git and from a folder, with no manual step.
  for (const [what, spec] of [['git+file://', `git+file://${root}`], ['<folder>', root]]) {
    const dir = join(tmp, what === '<folder>' ? 'folder' : 'git');
    cpSync(join(root, 'examples/consumer/package.json'), join(dir, 'package.json'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'bn-install-check', private: true, type: 'module' }));
    const r = sh('npm', ['install', spec, ...NPM], dir);
    const imp = sh('node', ['--input-type=module', '-e', "const m = await import('webgpu-batchnorm'); const c = await import('webgpu-batchnorm/cpu'); console.log(typeof m.BatchNorm, typeof c.CpuBatchNorm, new m.ShapeError('x').name)"], dir);
    const b = sh('npx', ['--no-install', 'bn-conformance', '--backend', 'cpu'], dir);
    check(`npm install ${what}: import works and the bin runs`, r.status === 0 && imp.out.trim() === 'function function ShapeError' && b.status === 0, `${tail(r.out, 3)} ${imp.out.trim()} ${tail(b.out, 1)}`);
  }
} catch (e) {
  check('consumer test ran to the end', false, e instanceof Error ? e.message : String(e));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`consumer: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

/**
 * End to end: the built demo loads in headless Chromium (WebGPU on SwiftShader), trains a few steps
 * of every variant, draws its charts, and logs no console errors. Saves a screenshot to
 * test-results/demo.png.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'vite';
import { createServer, type Server } from 'node:http';
import { mkdirSync, readFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM_PATH, CHROMIUM_WEBGPU_ARGS } from '../../src/cli/chromium';

const root = resolve(import.meta.dirname, '../..');
const outDir = join(root, 'test-results/demo-build');
const TYPES: Record<string, string> = {
  '.js': 'text/javascript',
  '.html': 'text/html',
  '.css': 'text/css',
  '.gz': 'application/gzip',
  '.json': 'application/json',
};
let server: Server;
let browser: Browser;
let port = 0;

beforeAll(async () => {
  await build({ root, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const file = path === '/' ? 'index.html' : path;
    try {
      const body = readFileSync(join(outDir, file));
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as { port: number }).port;
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_WEBGPU_ARGS, headless: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  server?.close();
});

describe('demo page', () => {
  it('loads, trains every variant, draws charts, no console errors', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 2200 } });
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().includes('favicon')) errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${port}/?steps=3&autostart`);
    await page.waitForFunction(
      () =>
        /^Done/.test(document.getElementById('status')?.textContent ?? '') ||
        document.getElementById('status')?.className === 'error',
      null,
      { timeout: 240_000 },
    );
    expect(await page.textContent('#status')).toMatch(/^Done/);
    expect(await page.textContent('#adapter')).toMatch(/GPU: .*swiftshader/i);
    // 4 groups x 2 charts + 2 percentile charts + 1 norm chart, each a uPlot canvas with pixels drawn.
    const drawn = await page.$$eval('.chart canvas', (cs) =>
      cs.map((c) => {
        const cv = c as HTMLCanvasElement;
        const px = cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height).data;
        let ink = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i] > 0) ink++;
        return ink;
      }),
    );
    expect(drawn.length).toBe(11);
    for (const ink of drawn) expect(ink).toBeGreaterThan(100);
    expect(await page.$$eval('#results tr', (r) => r.length)).toBe(16);
    // The conv net with batch norm folded into its convolutions classifies the test set as the
    // unfolded one does (f32 rounding of the folded weights may flip a borderline image or two).
    const folded = /cnn BN, batch norm folded into its convolutions: test acc ([\d.]+)% \(unfolded ([\d.]+)%\)/.exec(
      (await page.textContent('#folded')) ?? '',
    );
    expect(folded).not.toBeNull();
    expect(Math.abs(Number(folded![1]) - Number(folded![2]))).toBeLessThanOrEqual(0.2);
    mkdirSync(join(root, 'test-results'), { recursive: true });
    await page.screenshot({ path: join(root, 'test-results/demo.png'), fullPage: true });
    expect(errors).toEqual([]);
  }, 300_000);

  it('says clearly when WebGPU is missing', async () => {
    const b = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: ['--no-sandbox', '--disable-gpu', '--disable-features=WebGPU'],
      headless: true,
    });
    try {
      const page = await b.newPage();
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.waitForFunction(() => document.getElementById('status')?.className === 'error', null, {
        timeout: 60_000,
      });
      expect(await page.textContent('#status')).toMatch(/WebGPU is not available/);
    } finally {
      await b.close();
    }
  }, 120_000);
});

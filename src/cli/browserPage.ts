/**
 * Runs code against the built library inside headless Chromium with WebGPU: serves dist/ on
 * 127.0.0.1 (WebGPU needs a secure context; localhost is one) and opens a page that loads it.
 */
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { CHROMIUM_PATH, CHROMIUM_WEBGPU_ARGS } from '../chromium';

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.html': 'text/html', '.json': 'application/json', '.map': 'application/json' };

const PAGE = `<!doctype html><meta charset="utf-8"><title>webgpu-batchnorm runner</title>
<script type="module">
  import * as lib from '/index.js';
  import * as conformance from '/conformance.js';
  window.bn = { lib, conformance };
  window.bnReady = true;
</script>`;

function serve(root: string): Promise<Server> {
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0]));
    if (path === '/' || path === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
      return;
    }
    try {
      const body = await readFile(join(root, path));
      res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Opens the page, waits for the library, runs `fn(arg)` in it and returns its result. */
export async function inBrowser<A, R>(distDir: string, fn: (arg: A) => Promise<R>, arg: A): Promise<R> {
  const { chromium } = await import('playwright-core');
  const server = await serve(distDir);
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_WEBGPU_ARGS, headless: true });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const port = (server.address() as { port: number }).port;
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => (window as unknown as { bnReady?: boolean }).bnReady === true, null, { timeout: 30_000 })
      .catch(() => { throw new Error(`the library did not load in Chromium: ${errors.join('; ') || 'no page error reported'}`); });
    return await page.evaluate(fn as (a: A) => Promise<R>, arg as never) as R;
  } finally {
    await browser.close();
    server.close();
  }
}

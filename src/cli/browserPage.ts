/**
 * Runs code against built modules inside headless Chromium with WebGPU: serves a folder on
 * 127.0.0.1 (WebGPU needs a secure context; localhost is one) and opens a page that loads them.
 */
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { CHROMIUM_PATH, CHROMIUM_WEBGPU_ARGS } from './chromium.js';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript',
  '.html': 'text/html',
  '.json': 'application/json',
  '.map': 'application/json',
};

/** A page that imports each module and exposes it as window.bn[name]. */
function page(modules: Record<string, string>): string {
  const imports = Object.entries(modules)
    .map(([name, path]) => `import * as ${name} from ${JSON.stringify(path)};`)
    .join('\n');
  return `<!doctype html><meta charset="utf-8"><title>webgpu-batchnorm runner</title>
<script type="module">
${imports}
window.bn = { ${Object.keys(modules).join(', ')} };
window.bnReady = true;
</script>`;
}

export function serve(root: string, html: string): Promise<Server> {
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0]));
    if (path === '/' || path === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(html);
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

/**
 * Serves `root`, opens a page that imports `modules` (name -> path under root) into window.bn,
 * runs `fn(arg)` in it and returns its result.
 */
export async function inBrowser<A, R>(
  root: string,
  modules: Record<string, string>,
  fn: (arg: A) => Promise<R>,
  arg: A,
): Promise<R> {
  const { chromium } = await import('playwright-core');
  const server = await serve(root, page(modules));
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_WEBGPU_ARGS, headless: true });
  try {
    const tab = await browser.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    tab.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
      if (process.env.BN_PAGE_LOG) console.log(m.text());
    });
    const port = (server.address() as { port: number }).port;
    await tab.goto(`http://127.0.0.1:${port}/`);
    await tab
      .waitForFunction(() => (window as unknown as { bnReady?: boolean }).bnReady === true, null, { timeout: 30_000 })
      .catch(() => {
        throw new Error(`the library did not load in Chromium: ${errors.join('; ') || 'no page error reported'}`);
      });
    return (await tab.evaluate(fn as (a: A) => Promise<R>, arg as never)) as R;
  } finally {
    await browser.close();
    server.close();
  }
}

#!/usr/bin/env node
/**
 * npm run fuzz -- [--seed S] [--calls N] [--from K] [--runtime node|browser|both] [--chunk N] [--json OUT.json]
 *
 * The seeded fuzzer (fuzz/core.ts) in child processes, so that a crash is counted, not fatal:
 * Node workers (fuzz/worker.ts, Dawn) and a headless Chromium page (fuzz/page.ts). A worker or page
 * that dies is a crash at the call it had started, one that stops answering a hang; either way the
 * run goes on from the next call. Prints the counts per runtime, one line per finding with its
 * reproduction, and "fuzz: N passed, M failed" (a runtime passes with zero findings). Exit 1 on
 * any finding.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CHROMIUM_PATH, CHROMIUM_WEBGPU_ARGS } from '../src/cli/chromium';
import { serve } from '../src/cli/browserPage';
import { describeFinding, KINDS, type Counts, type Finding } from './core';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '20261126' },
    calls: { type: 'string', default: '2000' },
    from: { type: 'string', default: '0' },
    runtime: { type: 'string', default: 'both' },
    chunk: { type: 'string', default: '5000' },
    json: { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
});
const seed = Number(values.seed),
  calls = Number(values.calls),
  from = Number(values.from),
  chunk = Number(values.chunk);
for (const [k, v] of Object.entries({ seed, calls, from, chunk }))
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`--${k} must be a non-negative integer`);
const runtimes = values.runtime === 'both' ? ['node', 'browser'] : [values.runtime!];
for (const r of runtimes)
  if (r !== 'node' && r !== 'browser') throw new Error(`--runtime must be node, browser or both; got ${r}`);
const here = dirname(fileURLToPath(import.meta.url));
/** A range that neither finishes nor reports progress for this long is a hang. */
const SILENCE_MS = 60_000;

interface Result {
  counts: Counts;
  findings: Finding[];
  next: number;
}

const zero = (): Counts => ({
  calls: 0,
  accepted: 0,
  refused: 0,
  checked: 0,
  lateByDesign: 0,
  passedThrough: 0,
  findings: Object.fromEntries(KINDS.map((k) => [k, 0])) as Counts['findings'],
});

function add(total: Counts, c: Counts): void {
  for (const k of ['calls', 'accepted', 'refused', 'checked', 'lateByDesign', 'passedThrough'] as const)
    total[k] += c[k];
  for (const k of KINDS) total.findings[k] += c.findings[k];
}

function crash(total: Counts, findings: Finding[], kind: 'crash' | 'hang', call: number, detail: string): void {
  total.calls++;
  total.findings[kind]++;
  findings.push({ kind, seed, call, entry: '?', mutation: '?', detail });
}

/** Calls [start, start + count) in one Node worker; resolves with its result, or with how it died. */
function nodeRange(start: number, count: number): Promise<{ result: Result | null; last: number; death: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        `${here}/worker.js`,
        '--seed',
        String(seed),
        '--from',
        String(start),
        '--count',
        String(count),
        ...(values.verbose ? ['--verbose'] : []),
      ],
      { stdio: ['ignore', 'pipe', values.verbose ? 'inherit' : 'pipe'] },
    );
    let last = start - 1,
      result: Result | null = null,
      buf = '',
      stderr = '';
    let timer = setTimeout(() => child.kill('SIGKILL'), SILENCE_MS);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        if (l.startsWith('progress ')) {
          last = Number(l.slice(9));
          clearTimeout(timer);
          timer = setTimeout(() => child.kill('SIGKILL'), SILENCE_MS);
        } else if (l.startsWith('result ')) result = JSON.parse(l.slice(7)) as Result;
      }
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({
        result,
        last,
        death: signal === 'SIGKILL' ? 'hang' : `exit ${code ?? signal}: ${stderr.trim().split('\n').pop() ?? ''}`,
      });
    });
  });
}

async function runNode(total: Counts, findings: Finding[]): Promise<void> {
  for (let k = from; k < from + calls;) {
    const n = Math.min(chunk, from + calls - k);
    const { result, last, death } = await nodeRange(k, n);
    if (result) {
      add(total, result.counts);
      findings.push(...result.findings);
      k = result.next > k ? result.next : k + n;
      continue;
    }
    crash(total, findings, death === 'hang' ? 'hang' : 'crash', Math.max(last, k), death);
    k = Math.max(last, k) + 1;
  }
}

async function runBrowser(total: Counts, findings: Finding[]): Promise<void> {
  const { chromium } = await import('playwright-core');
  const server = await serve(
    here,
    `<!doctype html><script type="module">import * as fuzz from '/page.js'; window.fuzz = fuzz; window.ready = true;</script>`,
  );
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_WEBGPU_ARGS, headless: true });
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  type Page = Awaited<ReturnType<typeof browser.newPage>>;
  const open = async (): Promise<Page> => {
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
    return page;
  };
  let page = await open();
  try {
    for (let k = from; k < from + calls;) {
      const n = Math.min(chunk, from + calls - k);
      const died = new Promise<string>((resolve) => page.once('crash', () => resolve('the page crashed')));
      const silence = new Promise<string>((resolve) =>
        setTimeout(() => resolve('hang'), SILENCE_MS * Math.ceil(n / 500)),
      );
      const run = page
        .evaluate(([s, a, b]) => (window as unknown as { fuzz: typeof import('./page') }).fuzz.run(s, a, b), [
          seed,
          k,
          n,
        ] as const)
        .catch((e: Error) => e.message);
      const out = await Promise.race([run, died, silence]);
      if (typeof out === 'object' && out) {
        add(total, out.counts);
        findings.push(...out.findings);
        k = out.next > k ? out.next : k + n;
        continue;
      }
      const last = await page
        .evaluate(() => (window as unknown as { fuzz: typeof import('./page') }).fuzz.last())
        .catch(() => k);
      crash(total, findings, out === 'hang' ? 'hang' : 'crash', Math.max(last, k), String(out));
      k = Math.max(last, k) + 1;
      await page.close().catch(() => {});
      page = await open();
    }
  } finally {
    await browser.close();
    server.close();
  }
}

const report: Record<string, { counts: Counts; findings: Finding[] }> = {};
let failedRuntimes = 0;
for (const runtime of runtimes) {
  const total = zero(),
    findings: Finding[] = [];
  const t0 = Date.now();
  await (runtime === 'node' ? runNode(total, findings) : runBrowser(total, findings));
  const found = KINDS.reduce((a, k) => a + total.findings[k], 0);
  if (found) failedRuntimes++;
  report[runtime] = { counts: total, findings };
  console.log(
    `fuzz ${runtime}: seed ${seed}, calls ${from}..${from + calls - 1}: ${total.calls} calls in ${((Date.now() - t0) / 1000).toFixed(0)} s; ${total.accepted} accepted, ${total.refused} refused, ${total.checked} refusals checked against the CPU path; ${total.lateByDesign} failed at submit by design (destroyed or foreign buffers, finished encoders); ${total.passedThrough} exceptions of the caller's own code passed through`,
  );
  console.log(`fuzz ${runtime}: ${KINDS.map((k) => `${k} ${total.findings[k]}`).join(', ')}`);
  for (const f of findings) console.log(`  ${describeFinding(f)}`);
}
if (values.json) writeFileSync(values.json, JSON.stringify({ seed, from, calls, report }, null, 2));
console.log(`fuzz: ${runtimes.length - failedRuntimes} passed, ${failedRuntimes} failed`);
process.exit(failedRuntimes ? 1 : 0);

/**
 * The training demo: real networks trained on this machine's GPU with the library's BatchNorm
 * module, side by side, to show what Ioffe & Szegedy (2015) and Ioffe (2017) claim.
 */
import { UnsupportedError } from '../src/errors';
import { requestBatchNormDevice } from '../src/device';
import { LineChart, PALETTE, ema } from './charts';
import { loadDataset, type Dataset } from './engine/data';
import { Run } from './engine/trainer';
import { DEFAULTS, EVAL_EVERY, variants, type Settings, type Variant } from './engine/variants';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status');

/** Chart groups: which variants each pair of loss/accuracy charts compares. */
const GROUPS: { title: string; names: string[] }[] = [
  {
    title: 'Batch norm vs none, and a high learning rate (Fig. 1a)',
    names: ['mlp no-BN', 'mlp BN', 'mlp no-BN high-lr', 'mlp BN high-lr', 'mlp BN moving-avg'],
  },
  {
    title: 'Batch Renorm: tiny and non-i.i.d. minibatches',
    names: ['mlp BN tiny-batch', 'mlp renorm tiny-batch', 'mlp BN non-iid', 'mlp renorm non-iid'],
  },
  { title: 'Convolutional network, NHWC batch norm', names: ['cnn no-BN', 'cnn BN'] },
  {
    title: 'Initial weights 0.1× and 10× the usual scale: batch norm makes training less sensitive to initialisation',
    names: ['mlp no-BN', 'mlp BN', 'mlp no-BN init×0.1', 'mlp BN init×0.1', 'mlp no-BN init×10', 'mlp BN init×10'],
  },
];

const FIELDS: (keyof Settings)[] = [
  'lr',
  'highLr',
  'cnnLr',
  'batchSize',
  'tinyBatch',
  'tinyLr',
  'momentum',
  'noniidMomentum',
  'rmax',
  'dmax',
  'warmupStart',
  'warmupEnd',
  'steps',
];

function readSettings(): Settings {
  const s = { ...DEFAULTS };
  for (const f of FIELDS) {
    const v = Number(($(`set-${f}`) as HTMLInputElement).value);
    if (Number.isFinite(v)) (s as Record<string, number>)[f] = v;
  }
  return s;
}

function controls(): void {
  const form = $('controls');
  const labels: Record<string, string> = {
    lr: 'learning rate',
    highLr: 'high learning rate',
    cnnLr: 'CNN learning rate',
    batchSize: 'batch size',
    tinyBatch: 'tiny batch',
    tinyLr: 'tiny-batch learning rate',
    momentum: 'BN momentum',
    noniidMomentum: 'BN momentum, non-i.i.d. pair',
    rmax: 'renorm rmax',
    dmax: 'renorm dmax',
    warmupStart: 'renorm warm-up from step',
    warmupEnd: 'renorm warm-up to step',
    steps: 'steps',
  };
  // Settings may also come from the URL, e.g. ?steps=50&lr=0.2&autostart
  const query = new URLSearchParams(location.search);
  for (const f of FIELDS) {
    const l = document.createElement('label');
    const v = Number(query.get(f) ?? DEFAULTS[f]);
    l.innerHTML = `${labels[f]} <input id="set-${f}" type="number" step="any" value="${Number.isFinite(v) ? v : DEFAULTS[f]}">`;
    form.append(l);
  }
}

interface Live {
  run: Run;
  variant: Variant;
  color: string;
}

let stopRequested = false;

async function train(device: GPUDevice, data: Dataset): Promise<void> {
  const settings = readSettings();
  const chartsEl = $('charts');
  chartsEl.innerHTML = '';
  const vs = variants(settings);
  const live: Live[] = vs.map((v, i) => ({
    run: new Run(device, data, v, settings),
    variant: v,
    color: PALETTE[i % PALETTE.length],
  }));
  const byName = new Map(live.map((l) => [l.variant.name, l]));
  const section = (title: string) => {
    const s = document.createElement('section');
    s.innerHTML = `<h2>${title}</h2><div class="row"></div>`;
    chartsEl.append(s);
    return s.querySelector('.row') as HTMLElement;
  };
  const box = (row: HTMLElement) => {
    const d = document.createElement('div');
    d.className = 'chart';
    row.append(d);
    return d;
  };

  const groupCharts = GROUPS.map((g) => {
    const row = section(g.title);
    const series = g.names.map((n) => ({ label: n, color: byName.get(n)!.color }));
    return {
      g,
      loss: new LineChart(box(row), 'training loss (EMA)', series, 'cross-entropy', { log: true }),
      acc: new LineChart(box(row), 'test accuracy (1000 held-out images)', series, 'accuracy', { yRange: [0, 1] }),
    };
  });
  const figRow = section(
    'Input of one sigmoid unit in the last hidden layer: 15th, 50th, 85th percentiles (Fig. 1b, c)',
  );
  const pct = ['mlp no-BN', 'mlp BN'].map((n) => ({
    name: n,
    chart: new LineChart(
      box(figRow),
      n === 'mlp BN' ? 'with batch norm (1c)' : 'without batch norm (1b)',
      ['p15', 'p50', 'p85'].map((p, i) => ({
        label: p,
        color: ['#888', '#000', '#888'][i],
        dash: i === 1 ? undefined : [4, 3],
      })),
      'sigmoid input',
    ),
  }));
  const normRow = section('Parameter norm ‖θ‖₂: normalising with moving averages lets parameters grow (seed §5)');
  const normChart = new LineChart(
    box(normRow),
    'parameter norm (log scale)',
    GROUPS[0].names.map((n) => ({ label: n, color: byName.get(n)!.color })),
    '‖θ‖₂',
    { log: true },
  );

  const draw = () => {
    for (const { g, loss, acc } of groupCharts) {
      const runs = g.names.map((n) => byName.get(n)!.run);
      const steps = Math.max(...runs.map((r) => r.history.loss.length));
      loss.set(
        Array.from({ length: steps }, (_, i) => i + 1),
        runs.map((r) => ema(r.history.loss)),
      );
      const ts = [...new Set(runs.flatMap((r) => r.history.testSteps))].sort((a, b) => a - b);
      acc.set(
        ts,
        runs.map((r) =>
          ts.map((t) => {
            const i = r.history.testSteps.indexOf(t);
            return i < 0 ? null : r.history.testAccuracy[i];
          }),
        ),
      );
    }
    for (const p of pct) {
      const h = byName.get(p.name)!.run.history.percentiles;
      p.chart.set(
        h.map((e) => e.step),
        [h.map((e) => e.p15), h.map((e) => e.p50), h.map((e) => e.p85)],
      );
    }
    const runs = GROUPS[0].names.map((n) => byName.get(n)!.run);
    const ns = runs[0].history.paramNorm.map((e) => e.step);
    normChart.set(
      ns,
      runs.map((r) => ns.map((s) => r.history.paramNorm.find((e) => e.step === s)?.value ?? null)),
    );
    table(live);
  };

  const progress = $('progress') as HTMLProgressElement;
  progress.max = settings.steps;
  const t0 = performance.now();
  let done = 0;
  stopRequested = false;
  for (let step = 1; step <= settings.steps && !stopRequested; step++) {
    for (const l of live) await l.run.trainStep();
    done += live.length;
    if (step % EVAL_EVERY === 0 || step === settings.steps) for (const l of live) await l.run.evaluate();
    progress.value = step;
    $('rate').textContent =
      `${(done / ((performance.now() - t0) / 1000)).toFixed(1)} steps/s over ${live.length} networks · step ${step} of ${settings.steps}`;
    draw();
    await new Promise(requestAnimationFrame);
  }
  // The deployed form: batch norm folded into the convolution before it (bn.fold), same test set.
  const folded: string[] = [];
  for (const l of live) {
    const acc = await l.run.evaluateFolded();
    if (acc !== null)
      folded.push(
        `${l.variant.name}, batch norm folded into its convolutions: test acc ${(100 * acc).toFixed(1)}% (unfolded ${(100 * (l.run.history.testAccuracy.at(-1) ?? NaN)).toFixed(1)}%)`,
      );
  }
  $('folded').textContent = folded.join('; ');
  for (const l of live) l.run.destroy();
}

function table(live: Live[]): void {
  const rows = live.map(({ run, variant, color }) => {
    const h = run.history;
    const last = h.loss.slice(-20);
    const loss = last.reduce((a, b) => a + b, 0) / Math.max(1, last.length);
    const acc = h.testAccuracy.at(-1);
    const norm = h.paramNorm.at(-1)?.value;
    return `<tr><td style="color:${color}">■</td><td class="name">${variant.name}</td><td class="name">${variant.note}</td><td>${variant.batchSize}</td><td>${variant.lr}</td>
      <td>${Number.isFinite(loss) ? loss.toFixed(3) : 'diverged'}</td><td>${acc === undefined ? '–' : (100 * acc).toFixed(1) + '%'}</td><td>${norm?.toFixed(1) ?? '–'}</td></tr>`;
  });
  $('results').innerHTML =
    `<tr><th></th><th>variant</th><th>shows</th><th>batch</th><th>lr</th><th>loss (last 20)</th><th>test acc</th><th>‖θ‖₂</th></tr>${rows.join('')}`;
}

async function main(): Promise<void> {
  controls();
  const device = await requestBatchNormDevice();
  const i = device.adapterInfo;
  $('adapter').textContent =
    `GPU: ${[i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ') || 'unknown adapter'}`;
  device.lost.then((info) => {
    status.className = 'error';
    status.textContent = `The GPU device was lost: ${info.message || info.reason}. Reload the page.`;
  });
  status.textContent = 'Loading the embedded Fashion-MNIST subset…';
  const data = await loadDataset();
  status.textContent = `${data.trainY.length} training and ${data.testY.length} test images (Fashion-MNIST). Press Train.`;
  const start = $('start') as HTMLButtonElement,
    stop = $('stop') as HTMLButtonElement;
  start.disabled = false;
  start.onclick = async () => {
    start.disabled = true;
    stop.disabled = false;
    status.textContent = 'Training every variant on the GPU, one step each in turn…';
    try {
      await train(device, data);
      status.textContent = stopRequested ? 'Stopped.' : 'Done. Change the settings and train again.';
    } catch (e) {
      status.className = 'error';
      status.textContent = `Training failed: ${e instanceof Error ? e.message : e}`;
      throw e;
    } finally {
      start.disabled = false;
      stop.disabled = true;
    }
  };
  stop.onclick = () => {
    stopRequested = true;
  };
  if (new URLSearchParams(location.search).has('autostart')) start.click();
}

main().catch((e) => {
  status.className = 'error';
  status.textContent =
    e instanceof UnsupportedError
      ? `WebGPU is not available in this browser, so the demo cannot train: ${e.message}. Try a recent Chrome or Edge, or Firefox/Safari with WebGPU enabled.`
      : `Error: ${e instanceof Error ? e.message : e}`;
});

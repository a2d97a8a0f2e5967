/** Live line charts (uPlot) for the demo. */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#ff7f0e',
  '#2ca02c',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
  '#393b79',
];

export interface Series {
  label: string;
  color: string;
  dash?: number[];
}

export class LineChart {
  private plot: uPlot;
  constructor(
    el: HTMLElement,
    title: string,
    series: Series[],
    yLabel: string,
    opts: { log?: boolean; yRange?: [number, number] } = {},
  ) {
    const width = Math.max(320, Math.min(560, el.clientWidth || 520));
    this.plot = new uPlot(
      {
        title,
        width,
        height: 260,
        scales: { x: { time: false }, y: { distr: opts.log ? 3 : 1, ...(opts.yRange ? { range: opts.yRange } : {}) } },
        axes: [{ label: 'step' }, { label: yLabel }],
        legend: { live: false },
        series: [
          { label: 'step' },
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 1.5,
            dash: s.dash,
            spanGaps: true,
            points: { show: false },
          })),
        ],
      },
      [[], ...series.map(() => [])],
      el,
    );
  }
  /** xs and one y array per series (null where a series has no value). */
  set(xs: number[], ys: (number | null)[][]): void {
    this.plot.setData([xs, ...ys] as uPlot.AlignedData);
  }
}

/** Exponential moving average, for readable loss curves. */
export function ema(a: number[], k = 0.1): number[] {
  const out: number[] = [];
  let m = a[0] ?? 0;
  for (const v of a) out.push((m = Number.isFinite(v) ? m + k * (v - m) : v));
  return out;
}

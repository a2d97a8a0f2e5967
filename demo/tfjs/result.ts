/** What the TF.js comparison reports (no TF.js import: the Node CLI reads it). */
export interface Side {
  losses: number[];
  /** Milliseconds of each trainOnBatch. */
  stepMs: number[];
  testAccuracy: number;
}

export interface Comparison {
  adapter: string;
  steps: number;
  batchSize: number;
  stock: Side;
  bridge: Side;
}

/** Steps per second over the steps after the first (which compiles the pipelines). */
export function stepsPerSecond(side: Side): number {
  const ms = side.stepMs.slice(1);
  return ms.length ? (1000 * ms.length) / ms.reduce((a, b) => a + b, 0) : NaN;
}

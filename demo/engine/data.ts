/** The embedded Fashion-MNIST subset (demo/data, extracted by scripts/extract-fashion-mnist.mjs) and batch sampling. */
import meta from '../data/fashion-mnist.json';

export interface Dataset {
  trainX: Float32Array<ArrayBuffer>; // [train, 784], pixel / 255
  trainY: Uint8Array;
  testX: Float32Array<ArrayBuffer>;
  testY: Uint8Array;
  classes: string[];
}

export const PIXELS = meta.rows * meta.cols;

/** Splits the decompressed bytes into images (scaled to [0, 1]) and labels. */
export function parseDataset(bytes: Uint8Array): Dataset {
  const { train, test } = meta;
  const expected = (train + test) * (PIXELS + 1);
  if (bytes.length !== expected) throw new Error(`fashion-mnist.bin has ${bytes.length} bytes; expected ${expected}`);
  let o = 0;
  const take = (n: number) => bytes.subarray(o, (o += n));
  const trainX = Float32Array.from(take(train * PIXELS), (v) => v / 255);
  const trainY = Uint8Array.from(take(train));
  const testX = Float32Array.from(take(test * PIXELS), (v) => v / 255);
  const testY = Uint8Array.from(take(test));
  return { trainX, trainY, testX, testY, classes: meta.classes };
}

/**
 * Fetches the embedded data set from the page's own origin (no other network) and decompresses it.
 * Some servers (Vite's dev server among them) send a .gz file with Content-Encoding: gzip, and the
 * browser then hands over the decompressed bytes; the gzip magic number tells which arrived.
 */
export async function loadDataset(): Promise<Dataset> {
  const res = await fetch(new URL('../data/fashion-mnist.bin.gz', import.meta.url));
  if (!res.ok) throw new Error(`could not load the embedded data set (HTTP ${res.status})`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return parseDataset(bytes);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return parseDataset(new Uint8Array(await new Response(stream).arrayBuffer()));
}

/** Seeded uniform [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 'iid': uniform over the training set; 'noniid': each batch holds two random classes, half each. */
export type Sampling = 'iid' | 'noniid';

export class Sampler {
  private byClass: number[][] = Array.from({ length: 10 }, () => []);
  constructor(
    private data: Dataset,
    private mode: Sampling,
    private random: () => number,
  ) {
    data.trainY.forEach((y, i) => this.byClass[y].push(i));
  }

  /** Fills x [B, 784] and y [B] (labels as floats, as the loss kernel reads them). */
  next(B: number, x: Float32Array, y: Float32Array): void {
    const n = this.data.trainY.length;
    const first = Math.floor(this.random() * 10);
    const classes = this.mode === 'noniid' ? [first, (first + 1 + Math.floor(this.random() * 9)) % 10] : [];
    for (let b = 0; b < B; b++) {
      let i: number;
      if (this.mode === 'noniid') {
        const pool = this.byClass[classes[b % classes.length]];
        i = pool[Math.floor(this.random() * pool.length)];
      } else {
        i = Math.floor(this.random() * n);
      }
      x.set(this.data.trainX.subarray(i * PIXELS, (i + 1) * PIXELS), b * PIXELS);
      y[b] = this.data.trainY[i];
    }
  }
}

#!/usr/bin/env node
// Extracts the demo's embedded Fashion-MNIST subset from Debian's dataset-fashion-mnist package
// (MIT licence): the first TRAIN training images and the first TEST test images, with labels.
// Writes demo/data/fashion-mnist.bin.gz: train images (TRAIN·784 bytes), train labels (TRAIN),
// test images (TEST·784), test labels (TEST); and demo/data/fashion-mnist.json describing it.
//   apt-get install dataset-fashion-mnist && node scripts/extract-fashion-mnist.mjs
import { readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';

const SRC = '/usr/share/datasets/fashion-mnist';
const TRAIN = 6000,
  TEST = 1000;

function idx(file, count, itemBytes, headerBytes) {
  const buf = gunzipSync(readFileSync(`${SRC}/${file}`));
  return buf.subarray(headerBytes, headerBytes + count * itemBytes);
}

const parts = [
  idx('train-images-idx3-ubyte.gz', TRAIN, 784, 16),
  idx('train-labels-idx1-ubyte.gz', TRAIN, 1, 8),
  idx('t10k-images-idx3-ubyte.gz', TEST, 784, 16),
  idx('t10k-labels-idx1-ubyte.gz', TEST, 1, 8),
];
const out = gzipSync(Buffer.concat(parts), { level: 9 });
writeFileSync('demo/data/fashion-mnist.bin.gz', out);
writeFileSync(
  'demo/data/fashion-mnist.json',
  JSON.stringify(
    {
      source: 'Fashion-MNIST (Zalando Research), from Debian package dataset-fashion-mnist',
      license: 'MIT, see demo/data/LICENSE',
      rows: 28,
      cols: 28,
      classes: [
        'T-shirt/top',
        'Trouser',
        'Pullover',
        'Dress',
        'Coat',
        'Sandal',
        'Shirt',
        'Sneaker',
        'Bag',
        'Ankle boot',
      ],
      train: TRAIN,
      test: TEST,
      layout:
        'train images (train*784 u8), train labels (train u8), test images (test*784 u8), test labels (test u8), gzip',
    },
    null,
    2,
  ) + '\n',
);
copyFileSync('/usr/share/doc/dataset-fashion-mnist/copyright', 'demo/data/LICENSE');
console.log(`wrote demo/data/fashion-mnist.bin.gz (${out.length} bytes): ${TRAIN} train, ${TEST} test images`);

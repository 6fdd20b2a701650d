/** Shared helpers for the data tests (not a test file itself). */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DEFAULT_FASHION_MNIST_DIR, FASHION_MNIST_CLASSES, loadFashionMnist, type FashionMnistSplit, type LabelledImages } from "../../src/data/fashion_mnist";
import { Random } from "../../src/util/random";

/** A fresh temporary directory, removed when the process exits. */
export function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cliplab-data-"));
  process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * The real Fashion-MNIST split. The data is a declared dependency (scripts/setup.sh installs it),
 * so its absence fails the test rather than skipping it.
 */
const cache = new Map<FashionMnistSplit, LabelledImages>();
export function realSplit(split: FashionMnistSplit): LabelledImages {
  if (!fs.existsSync(DEFAULT_FASHION_MNIST_DIR)) {
    assert.fail(
      `${DEFAULT_FASHION_MNIST_DIR} is missing: install the real data with \`apt-get install dataset-fashion-mnist\` (scripts/setup.sh does it)`,
    );
  }
  let d = cache.get(split);
  if (!d) {
    d = loadFashionMnist(split);
    cache.set(split, d);
  }
  return d;
}

/**
 * Synthetic Fashion-MNIST-like data: `count` 28x28 images of a bright random rectangle on black,
 * labels cycling through the 10 classes.
 */
export function syntheticImages(count: number, seed = 1, size = 28): LabelledImages {
  const rng = new Random(seed);
  const images = new Uint8Array(count * size * size);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % 10;
    const x0 = rng.int(size / 2);
    const y0 = rng.int(size / 2);
    const x1 = x0 + 4 + rng.int(size / 2 - 4);
    const y1 = y0 + 4 + rng.int(size / 2 - 4);
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) images[i * size * size + y * size + x] = 40 + rng.int(216);
    }
  }
  return { images, labels, count, height: size, width: size, classNames: [...FASHION_MNIST_CLASSES] };
}

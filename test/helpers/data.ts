/** Test data on disk: small slices of the real Fashion-MNIST for CLI runs. */
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { encodeIdx } from "../../src/data/idx";
import { FASHION_MNIST_FILES, loadFashionMnist } from "../../src/data/fashion_mnist";
import { tmpDir } from "./fixtures";

/** A --data-dir with the first `train` / `test` images of the real data, in the same four files. */
export function sliceDataDir(train: number, test: number): string {
  const dir = tmpDir();
  for (const [split, n] of [["train", train], ["test", test]] as const) {
    const d = loadFashionMnist(split, { limit: n });
    fs.writeFileSync(path.join(dir, FASHION_MNIST_FILES[split].images), zlib.gzipSync(encodeIdx([n, 28, 28], d.images)));
    fs.writeFileSync(path.join(dir, FASHION_MNIST_FILES[split].labels), zlib.gzipSync(encodeIdx([n], d.labels)));
  }
  return dir;
}

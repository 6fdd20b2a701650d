/**
 * Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 60,000 training and 10,000 test images, 28x28 grey,
 * 10 classes, in the four IDX files that Debian's `dataset-fashion-mnist` installs.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { DataFileError, readIdx } from "./idx";

/** Class names in label order (label 0 is "T-shirt/top"). */
export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
]);

/** Where `apt-get install dataset-fashion-mnist` puts the files. */
export const DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

export type FashionMnistSplit = "train" | "test";

/** The IDX file names of each split (gzipped, as distributed). */
export const FASHION_MNIST_FILES: Readonly<Record<FashionMnistSplit, { images: string; labels: string }>> = Object.freeze({
  train: { images: "train-images-idx3-ubyte.gz", labels: "train-labels-idx1-ubyte.gz" },
  test: { images: "t10k-images-idx3-ubyte.gz", labels: "t10k-labels-idx1-ubyte.gz" },
});

/** Grey images with class labels. `images` is `count * height * width` bytes, row-major. */
export interface LabelledImages {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
  classNames: string[];
}

export interface LoadFashionMnistOptions {
  /** Directory holding the four IDX files; default `DEFAULT_FASHION_MNIST_DIR`. */
  dataDir?: string;
  /** Keep only the first `limit` images (in file order). */
  limit?: number;
}

const INSTALL_HINT = "install it with `apt-get install dataset-fashion-mnist` or pass --data-dir (dataDir) pointing at a copy";

/**
 * Loads one split. Errors are one line naming the file: a missing directory or file says how to
 * install the data; image and label files must agree on the count; labels must be 0-9.
 */
export function loadFashionMnist(split: FashionMnistSplit, opts: LoadFashionMnistOptions = {}): LabelledImages {
  const files = FASHION_MNIST_FILES[split as FashionMnistSplit];
  if (!files) throw new RangeError(`loadFashionMnist: split must be "train" or "test", got ${JSON.stringify(split)}`);
  const dir = opts.dataDir ?? DEFAULT_FASHION_MNIST_DIR;
  if (typeof dir !== "string" || dir === "") throw new TypeError("loadFashionMnist: dataDir must be a non-empty string");
  const limit = opts.limit;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    throw new RangeError(`loadFashionMnist: limit must be a non-negative integer, got ${String(limit)}`);
  }
  if (!fs.existsSync(dir)) {
    throw new DataFileError(dir, `Fashion-MNIST directory not found; ${INSTALL_HINT}`);
  }
  const imagesFile = path.join(dir, files.images);
  const labelsFile = path.join(dir, files.labels);
  for (const f of [imagesFile, labelsFile]) {
    if (!fs.existsSync(f)) throw new DataFileError(f, `Fashion-MNIST file not found; ${INSTALL_HINT}`);
  }

  const img = readIdx(imagesFile, { ndims: 3 });
  const lab = readIdx(labelsFile, { ndims: 1 });
  const [n, height, width] = img.dims;
  if (lab.dims[0] !== n) {
    throw new DataFileError(
      imagesFile,
      `has ${n} images but ${labelsFile} has ${lab.dims[0]} labels; the two files must come from the same split`,
    );
  }
  if (height === 0 || width === 0) throw new DataFileError(imagesFile, `images are ${height}x${width}, expected a positive size`);
  const classes = FASHION_MNIST_CLASSES.length;
  for (let i = 0; i < n; i++) {
    if (lab.data[i] >= classes) {
      throw new DataFileError(labelsFile, `label ${lab.data[i]} at index ${i}, expected 0-${classes - 1}`);
    }
  }
  const count = limit === undefined ? n : Math.min(limit, n);
  return {
    images: count === n ? img.data : img.data.slice(0, count * height * width),
    labels: count === n ? lab.data : lab.data.slice(0, count),
    count,
    height,
    width,
    classNames: [...FASHION_MNIST_CLASSES],
  };
}

/** Checks the invariants of a `LabelledImages` (sizes agree, labels name a class); `what` prefixes errors. */
export function checkLabelledImages(data: LabelledImages, what = "LabelledImages"): void {
  if (data === null || typeof data !== "object") throw new TypeError(`${what}: expected {images, labels, count, height, width, classNames}`);
  const { images, labels, count, height, width, classNames } = data;
  for (const [k, v] of Object.entries({ count, height, width })) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`${what}: ${k} must be a non-negative integer, got ${String(v)}`);
  }
  if (!(images instanceof Uint8Array) || images.length !== count * height * width) {
    throw new RangeError(`${what}: images must be a Uint8Array of count*height*width = ${count * height * width} bytes, got ${images?.length}`);
  }
  if (!(labels instanceof Uint8Array) || labels.length !== count) {
    throw new RangeError(`${what}: labels must be a Uint8Array of ${count} values, got ${labels?.length}`);
  }
  if (!Array.isArray(classNames) || classNames.length === 0 || classNames.some((c) => typeof c !== "string")) {
    throw new TypeError(`${what}: classNames must be a non-empty array of strings`);
  }
  for (let i = 0; i < count; i++) {
    if (labels[i] >= classNames.length) {
      throw new RangeError(`${what}: label ${labels[i]} at index ${i}, but there are ${classNames.length} classes`);
    }
  }
}

/** IDX reading (src/data/idx.ts) and Fashion-MNIST loading (src/data/fashion_mnist.ts). */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { DataFileError, encodeIdx, readIdx } from "../../src/data/idx";
import { DEFAULT_FASHION_MNIST_DIR, FASHION_MNIST_CLASSES, FASHION_MNIST_FILES, loadFashionMnist } from "../../src/data/fashion_mnist";
import { realSplit, tmpDir } from "./util";

const dir = tmpDir();
let n = 0;
function write(bytes: Uint8Array, name = `f${n++}`): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

function pixels(count: number, h = 4, w = 3): Uint8Array {
  return Uint8Array.from({ length: count * h * w }, (_, i) => (i * 37) % 256);
}

/** Runs fn, checks it throws a one-line error that names `file` and matches `re`. */
function throwsOneLine(fn: () => unknown, file: string, re: RegExp): void {
  assert.throws(fn, (err: Error) => {
    assert.ok(!err.message.includes("\n"), `error is not one line: ${err.message}`);
    assert.ok(err.message.startsWith(file), `error does not name ${file}: ${err.message}`);
    assert.match(err.message, re);
    return true;
  });
}

describe("readIdx", () => {
  it("reads raw images and labels with big-endian dims", () => {
    const img = pixels(5);
    const a = readIdx(write(encodeIdx([5, 4, 3], img)), { ndims: 3 });
    assert.deepEqual(a.dims, [5, 4, 3]);
    assert.deepEqual(a.data, img);
    const lab = Uint8Array.from([0, 9, 3, 3, 1]);
    const b = readIdx(write(encodeIdx([5], lab)));
    assert.deepEqual(b.dims, [5]);
    assert.deepEqual(b.data, lab);
    // A dimension above 255 checks the byte order.
    const big = readIdx(write(encodeIdx([300], new Uint8Array(300).fill(7))));
    assert.deepEqual(big.dims, [300]);
  });

  it("reads gzipped files by their magic, whatever the name", () => {
    const img = pixels(6);
    const gz = zlib.gzipSync(encodeIdx([6, 4, 3], img));
    assert.deepEqual(readIdx(write(gz, "images.gz"), { ndims: 3 }).data, img);
    assert.deepEqual(readIdx(write(gz, "no-extension")).data, img);
    assert.deepEqual(readIdx(write(encodeIdx([6, 4, 3], img), "raw-named.gz")).data, img);
  });

  it("rejects a bad magic number", () => {
    const f = write(Buffer.from("PK\x03\x04 this is a zip"));
    throwsOneLine(() => readIdx(f, { ndims: 3 }), f, /bad magic number 0x504b0304, expected 0x00000803 \(images\)/);
  });

  it("rejects a data type other than unsigned byte", () => {
    const bytes = encodeIdx([2, 2, 2], new Uint8Array(8));
    bytes[2] = 0x0d;
    const f = write(bytes);
    throwsOneLine(() => readIdx(f), f, /data type 0x0d \(float32\).*expected 0x08 \(unsigned byte\)/);
  });

  it("rejects the wrong number of dimensions (labels where images are expected)", () => {
    const f = write(encodeIdx([4], new Uint8Array(4)));
    throwsOneLine(() => readIdx(f, { ndims: 3 }), f, /magic 0x00000801 has 1 dimensions, expected 3 \(magic 0x00000803 \(images\)\)/);
  });

  it("rejects a truncated file, saying how much the header promised", () => {
    const full = encodeIdx([60000, 28, 28], new Uint8Array(60000 * 784));
    const f = write(full.subarray(0, 16 + 1000), "train-images-idx3-ubyte");
    throwsOneLine(() => readIdx(f, { ndims: 3 }), f, /truncated: header says 60000x28x28 = 47040000 bytes of pixels, file has 1000$/);
    const g = write(zlib.gzipSync(full.subarray(0, 16 + 1000)), "cut.gz");
    throwsOneLine(() => readIdx(g, { ndims: 3 }), g, /truncated: header says 60000x28x28 = 47040000 bytes of pixels, file has 1000$/);
  });

  it("rejects a cut-off gzip stream", () => {
    const gz = zlib.gzipSync(encodeIdx([50, 4, 3], pixels(50)));
    const f = write(gz.subarray(0, gz.length - 20), "cutoff.gz");
    throwsOneLine(() => readIdx(f), f, /gzip stream is truncated/);
  });

  it("rejects a file that is too long", () => {
    const bytes = Buffer.concat([encodeIdx([3], Uint8Array.from([1, 2, 3])), Buffer.from([4, 5])]);
    const f = write(bytes);
    throwsOneLine(() => readIdx(f), f, /too long: header says 3 = 3 bytes of labels, file has 5 \(2 extra\)/);
  });

  it("rejects a short header, an empty file and a missing file", () => {
    const f = write(Uint8Array.from([0, 0, 8, 3, 0, 0]));
    throwsOneLine(() => readIdx(f), f, /truncated header/);
    const e = write(new Uint8Array(0));
    throwsOneLine(() => readIdx(e), e, /0 bytes, too short/);
    const m = path.join(dir, "absent");
    throwsOneLine(() => readIdx(m), m, /file not found/);
    assert.throws(() => readIdx(m), DataFileError);
  });
});

describe("loadFashionMnist", () => {
  /** A directory with the four file names holding `train` and `test` small splits. */
  function fakeDir(trainImages: number, trainLabels: number, label = (i: number) => i % 10): string {
    const d = path.join(dir, `fmnist${n++}`);
    fs.mkdirSync(d);
    const lab = (k: number) => Uint8Array.from({ length: k }, (_, i) => label(i));
    fs.writeFileSync(path.join(d, FASHION_MNIST_FILES.train.images), zlib.gzipSync(encodeIdx([trainImages, 28, 28], pixels(trainImages, 28, 28))));
    fs.writeFileSync(path.join(d, FASHION_MNIST_FILES.train.labels), zlib.gzipSync(encodeIdx([trainLabels], lab(trainLabels))));
    fs.writeFileSync(path.join(d, FASHION_MNIST_FILES.test.images), encodeIdx([7, 28, 28], pixels(7, 28, 28)));
    fs.writeFileSync(path.join(d, FASHION_MNIST_FILES.test.labels), encodeIdx([7], lab(7)));
    return d;
  }

  it("loads a split from dataDir, with limit", () => {
    const d = fakeDir(20, 20);
    const train = loadFashionMnist("train", { dataDir: d });
    assert.equal(train.count, 20);
    assert.equal(train.height, 28);
    assert.equal(train.width, 28);
    assert.deepEqual(train.classNames, FASHION_MNIST_CLASSES);
    assert.deepEqual(train.images, pixels(20, 28, 28));
    assert.deepEqual(Array.from(train.labels.subarray(0, 12)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    const test = loadFashionMnist("test", { dataDir: d });
    assert.equal(test.count, 7);
    const few = loadFashionMnist("train", { dataDir: d, limit: 5 });
    assert.equal(few.count, 5);
    assert.equal(few.images.length, 5 * 784);
    assert.deepEqual(few.images, pixels(20, 28, 28).subarray(0, 5 * 784));
    assert.deepEqual(few.labels, train.labels.subarray(0, 5));
  });

  it("names both files when image and label counts disagree", () => {
    const d = fakeDir(20, 19);
    const images = path.join(d, FASHION_MNIST_FILES.train.images);
    const labels = path.join(d, FASHION_MNIST_FILES.train.labels);
    assert.throws(
      () => loadFashionMnist("train", { dataDir: d }),
      (err: Error) => {
        assert.ok(!err.message.includes("\n"));
        assert.ok(err.message.startsWith(images));
        assert.ok(err.message.includes(labels));
        assert.match(err.message, /has 20 images but .* has 19 labels/);
        return true;
      },
    );
  });

  it("rejects a label outside 0-9", () => {
    const d = fakeDir(12, 12, (i) => (i === 11 ? 10 : 0));
    const labels = path.join(d, FASHION_MNIST_FILES.train.labels);
    throwsOneLine(() => loadFashionMnist("train", { dataDir: d }), labels, /label 10 at index 11, expected 0-9/);
  });

  it("says how to install the data when the directory or a file is missing", () => {
    const missing = path.join(dir, "nowhere");
    throwsOneLine(() => loadFashionMnist("train", { dataDir: missing }), missing, /directory not found.*apt-get install dataset-fashion-mnist.*--data-dir/);
    const d = fakeDir(3, 3);
    const gone = path.join(d, FASHION_MNIST_FILES.test.labels);
    fs.rmSync(gone);
    throwsOneLine(() => loadFashionMnist("test", { dataDir: d }), gone, /file not found.*apt-get install dataset-fashion-mnist.*--data-dir/);
  });

  it("validates its arguments", () => {
    assert.throws(() => loadFashionMnist("val" as "train"), /split must be "train" or "test"/);
    assert.throws(() => loadFashionMnist("train", { limit: -1 }), /limit must be a non-negative integer/);
  });

  it(`reads the real data in ${DEFAULT_FASHION_MNIST_DIR}: 60000 train / 10000 test, balanced classes`, () => {
    const train = realSplit("train");
    assert.equal(train.count, 60000);
    assert.equal(train.height, 28);
    assert.equal(train.width, 28);
    assert.equal(train.images.length, 60000 * 784);
    const counts = new Array(10).fill(0);
    for (const l of train.labels) counts[l]++;
    assert.deepEqual(counts, new Array(10).fill(6000));
    const test = realSplit("test");
    assert.equal(test.count, 10000);
    const testCounts = new Array(10).fill(0);
    for (const l of test.labels) testCounts[l]++;
    assert.deepEqual(testCounts, new Array(10).fill(1000));
  });
});

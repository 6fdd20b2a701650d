/** Shared access to the reference fixtures in test/fixtures (copied from OpenAI's reference runs). */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";

export const FIXTURES = path.join(__dirname, "..", "fixtures");
export type FixtureModel = "tiny_vit" | "tiny_rn";
export interface FixtureArray {
  shape: number[];
  dtype: string;
  data: number[];
}

export function fixturePath(file: string): string {
  return path.join(FIXTURES, file);
}

export function readExpected(model: FixtureModel): any {
  return JSON.parse(fs.readFileSync(fixturePath(`${model}.expected.json`), "utf8"));
}

/** The fixture's normalised images as NHWC float32 (stored NCHW). */
export function fixtureImages(model: FixtureModel): tf.Tensor4D {
  const expected = readExpected(model);
  const [n, c, h, w] = expected.images.shape_nchw as number[];
  const bytes = fs.readFileSync(fixturePath(`${model}.images_f32.bin`));
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return tf.tidy(() => tf.transpose(tf.tensor4d(data, [n, c, h, w]), [0, 2, 3, 1]));
}

export function fixtureTokens(model: FixtureModel): tf.Tensor2D {
  return tf.tensor2d(readExpected(model).texts.ids as number[][], undefined, "int32");
}

export async function useBackend(name: "cpu" | "wasm"): Promise<void> {
  const ok = await tf.setBackend(name);
  await tf.ready();
  assert.equal(ok, true, `tf.setBackend("${name}") failed`);
  assert.equal(tf.getBackend(), name);
}

/** The README's feature tolerance: max|got - ref| <= 1e-4 * max(1, max|ref|). */
export function assertClose(got: tf.Tensor | ArrayLike<number>, ref: ArrayLike<number>, label: string, rel = 1e-4): number {
  const values = got instanceof tf.Tensor ? got.dataSync() : got;
  assert.equal(values.length, ref.length, `${label}: ${values.length} values, expected ${ref.length}`);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(values[i] - ref[i]);
    if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : d;
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  const tol = rel * Math.max(1, maxRef);
  assert.ok(maxDiff <= tol, `${label}: max|got - ref| = ${maxDiff} > ${tol}`);
  return maxDiff;
}

export function tmpDir(prefix = "cliplab-test-"): string {
  return fs.mkdtempSync(path.join(require("node:os").tmpdir(), prefix));
}

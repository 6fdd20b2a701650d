/**
 * A hand-made stand-in for `Clip` with known embeddings, for the evaluation tests.
 * - Text: the custom `tokenizer` maps each known prompt to one id; `encodeText` looks the id up in
 *   a table of hand-written vectors (and records the batch sizes it was called with).
 * - Images: image_size is 1 and pixel [b, 0, 0, 0] holds an image id; `encodeImage` looks it up in
 *   a table of hand-written image features. So pixels [B, 1, 1, 3] = [[[[id, 0, 0]]], ...].
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";

/** The backend of the eval tests: cpu, or CLIPLAB_EVAL_BACKEND=wasm to run them on WebAssembly. */
export async function useTestBackend(): Promise<void> {
  const name = process.env.CLIPLAB_EVAL_BACKEND ?? "cpu";
  assert.equal(await tf.setBackend(name), true, `tf.setBackend("${name}") failed`);
  await tf.ready();
}

export interface FakeClip {
  encodeImage(pixels: tf.Tensor4D): tf.Tensor2D;
  encodeText(tokens: tf.Tensor2D): tf.Tensor2D;
  readonly logitScale: tf.Variable;
  readonly config: { text_cfg: { context_length: number }; vision_cfg: { image_size: number } };
  tokenizer: (texts: string[]) => tf.Tensor2D;
  textBatches: number[];
  imageBatches: number[];
  dispose(): void;
}

export function fakeClip(prompts: Record<string, number[]>, images: number[][], scale: number): FakeClip {
  const names = Object.keys(prompts);
  const ids = new Map(names.map((p, i) => [p, i]));
  const textTable = names.length ? tf.tensor2d(names.map((p) => prompts[p])) : tf.zeros([1, 1]);
  const imageTable = tf.tensor2d(images);
  const logitScale = tf.variable(tf.scalar(Math.log(scale)), false);
  const fake: FakeClip = {
    textBatches: [],
    imageBatches: [],
    tokenizer: (texts) => {
      const row = texts.map((t) => {
        const id = ids.get(t);
        assert.ok(id !== undefined, `fake tokenizer: unknown prompt ${JSON.stringify(t)}`);
        return id;
      });
      return tf.tensor2d(row, [texts.length, 1], "int32");
    },
    encodeText(tokens) {
      fake.textBatches.push(tokens.shape[0]);
      return tf.tidy(() => tf.gather(textTable, tf.reshape(tokens, [-1])) as tf.Tensor2D);
    },
    encodeImage(pixels) {
      assert.deepEqual(pixels.shape.slice(1), [1, 1, 3]);
      fake.imageBatches.push(pixels.shape[0]);
      return tf.tidy(() => {
        const id = tf.cast(tf.reshape(tf.slice(pixels, [0, 0, 0, 0], [-1, 1, 1, 1]), [-1]), "int32");
        return tf.gather(imageTable, id) as tf.Tensor2D;
      });
    },
    logitScale,
    config: { text_cfg: { context_length: 1 }, vision_cfg: { image_size: 1 } },
    dispose() {
      tf.dispose([textTable, imageTable, logitScale]);
    },
  };
  return fake;
}

/** Pixels [ids.length, 1, 1, 3] that make the fake encode images `ids`. */
export function imagePixels(ids: number[]): tf.Tensor4D {
  return tf.tensor4d(flatPixels(ids), [ids.length, 1, 1, 3]);
}

export function flatPixels(ids: number[]): Float32Array {
  const out = new Float32Array(ids.length * 3);
  ids.forEach((id, i) => (out[i * 3] = id));
  return out;
}

// Plain float64 arithmetic for the expected values.
export function normalize(v: number[]): number[] {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

export function dot(a: number[], b: number[]): number {
  return a.reduce((s, x, i) => s + x * b[i], 0);
}

export function softmax(v: number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

export function assertAllClose(got: ArrayLike<number>, want: ArrayLike<number>, label: string, tol = 1e-5): void {
  assert.equal(got.length, want.length, `${label}: length`);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= tol, `${label}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

/** Runs `step` a few times; the tensor count after each call must equal the count after the first. */
export function assertNoLeak(label: string, step: () => void, repeats = 3): void {
  step();
  const baseline = tf.memory().numTensors;
  for (let i = 0; i < repeats; i++) {
    step();
    assert.equal(tf.memory().numTensors, baseline, `${label}: call ${i + 2} left ${tf.memory().numTensors - baseline} tensor(s)`);
  }
}

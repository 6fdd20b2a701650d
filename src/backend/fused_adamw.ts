/**
 * AdamW (Loshchilov & Hutter 2019, https://arxiv.org/abs/1711.05101) in place on the WASM heap,
 * one C call per parameter (cl_adamw), for src/train/adamw.ts. Per element it performs exactly the
 * float operations of that file's tfjs path, in the same order and rounding (constants computed
 * here in double and rounded to float once, as tfjs does with scalars), so both paths give the
 * same bits; it replaces a concat, ~13 elementwise kernels and a split per step.
 *
 * The moments are updated in place (the optimizer owns them; one whose storage is shared, as
 * tfjs' clone() shares, first gets a private copy). The weights are not: each step writes them to
 * a fresh buffer that the variable then takes, because the wasm backend caches XNNPACK operators
 * with their filters packed inside, keyed by the tensor, and a convolution would keep using the
 * packed old weights of a filter changed in place.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { fusedLib } from "./fused";
import { f32, ownTensor } from "./kernel_util";

export interface AdamWStepConstants {
  beta1: number;
  beta2: number;
  eps: number;
  /** Multiplier of the weights before the step: 1 - lr * weightDecay, or 1 without decay. */
  decay: number;
  /** lr / (1 - beta1^t). */
  stepSize: number;
  /** sqrt(1 - beta2^t). */
  sqrtBias2: number;
  /** Gradient scale from clipping (1: none). */
  gradScale: number;
}

/** True when the in-place kernels can run (wasm backend, C library loaded). */
export function fusedAdamWActive(): boolean {
  return fusedLib() !== undefined;
}

function refCount(b: BackendWasm, t: tf.Tensor): number {
  const d = b.dataIdMap.get(t.dataId) as { refCount?: number } | undefined;
  return d?.refCount ?? Infinity;
}

/** Gives `v` storage of its own if its data is shared with any other tensor. */
function ensureExclusive(b: BackendWasm, v: tf.Variable): void {
  if (refCount(b, v) > 1) v.assign(tf.tidy(() => tf.add(v, tf.scalar(0, v.dtype))));
}

/** Lets `param` take the new buffer `out` (a kernel output) as its value. */
function takeBuffer(b: BackendWasm, param: tf.Variable, out: tf.TensorInfo): void {
  const t = ownTensor(b, out);
  param.assign(t);
  t.dispose();
}

/**
 * One AdamW step of `param` with gradient `grad`; its moments are `m` and `v` from element
 * `offset` on (the moments of a fused group are one flat vector).
 */
export function fusedAdamWStep(param: tf.Variable, m: tf.Variable, v: tf.Variable, offset: number, grad: tf.Tensor, c: AdamWStepConstants): void {
  const lib = fusedLib();
  if (!lib) throw new Error("fusedAdamWStep: the fused kernels are not active (check fusedAdamWActive() first)");
  const n = param.size;
  if (grad.size !== n || grad.dtype !== "float32" || param.dtype !== "float32") {
    throw new Error(`fusedAdamWStep: gradient ${grad.dtype} [${grad.shape}] does not match the float32 parameter [${param.shape}]`);
  }
  if (offset < 0 || offset + n > m.size || m.size !== v.size) throw new Error(`fusedAdamWStep: moments of ${m.size} values cannot hold ${n} at offset ${offset}`);
  const b = tf.backend() as BackendWasm;
  ensureExclusive(b, m);
  ensureExclusive(b, v);
  if (n === 0) return;
  const out = b.makeOutput(param.shape.slice(), "float32");
  // Views after the allocations above (which may grow the heap).
  const M = f32(b, m).subarray(offset, offset + n);
  const V = f32(b, v).subarray(offset, offset + n);
  lib.adamw(f32(b, param), f32(b, out), M, V, f32(b, grad), n, c.gradScale, c.beta1, 1 - c.beta1, c.beta2, 1 - c.beta2, c.decay, c.stepSize, c.sqrtBias2, c.eps);
  takeBuffer(b, param, out);
}

/**
 * The row-sparse AdamW step (no weight decay) of src/train/adamw.ts: rows `rows` of `param` and
 * of the dense gradient `grad` [V, ...], with compact moments m, v [rows.length, D] (row i for
 * rows[i]) in place. Same float operations as the tfjs path.
 */
export function fusedAdamWRows(param: tf.Variable, m: tf.Tensor, v: tf.Tensor, grad: tf.Tensor, rows: readonly number[], c: AdamWStepConstants): void {
  const lib = fusedLib();
  if (!lib) throw new Error("fusedAdamWRows: the fused kernels are not active (check fusedAdamWActive() first)");
  const numRows = param.shape[0];
  const d = numRows === 0 ? 0 : param.size / numRows;
  if (grad.size !== param.size || m.size !== rows.length * d || v.size !== m.size) {
    throw new Error(`fusedAdamWRows: gradient [${grad.shape}] and moments [${m.shape}] do not fit the parameter [${param.shape}] and ${rows.length} rows`);
  }
  const b = tf.backend() as BackendWasm;
  for (const t of [m, v]) if (refCount(b, t) > 1) throw new Error("fusedAdamWRows: the moments are shared with another tensor");
  if (rows.length === 0 || d === 0) return;
  // The untouched rows are copied (one memcpy of the table, see the header), the others updated there.
  const out = b.makeOutput(param.shape.slice(), "float32");
  const P = f32(b, param);
  const O = f32(b, out);
  new Float32Array(O.buffer).copyWithin(O.byteOffset >> 2, P.byteOffset >> 2, (P.byteOffset >> 2) + P.length);
  lib.adamwRows(O, f32(b, m), f32(b, v), f32(b, grad), Int32Array.from(rows), rows.length, d, c.gradScale, c.beta1, 1 - c.beta1, c.beta2, 1 - c.beta2, c.stepSize, c.sqrtBias2, c.eps);
  takeBuffer(b, param, out);
}

/** Sum of squares of the given rows of x [V, ...], in double. */
export function fusedSumSquaresRows(x: tf.Tensor, rows: ArrayLike<number>): number {
  const lib = fusedLib();
  if (!lib) throw new Error("fusedSumSquaresRows: the fused kernels are not active");
  const d = x.shape[0] ? x.size / x.shape[0] : 0;
  for (let i = 0; i < rows.length; i++) if (!(rows[i] >= 0 && rows[i] < x.shape[0])) throw new RangeError(`fusedSumSquaresRows: row ${rows[i]} is outside [0, ${x.shape[0]})`);
  return rows.length && d ? lib.sumsqRows(f32(tf.backend() as BackendWasm, x), Int32Array.from(rows), rows.length, d) : 0;
}

/** Sum of the squares of a float32 tensor's values, accumulated in double. */
export function fusedSumSquares(t: tf.Tensor): number {
  const lib = fusedLib();
  if (!lib) throw new Error("fusedSumSquares: the fused kernels are not active");
  if (t.dtype !== "float32") throw new Error(`fusedSumSquares: float32 only, got ${t.dtype}`);
  return t.size === 0 ? 0 : lib.sumsq(f32(tf.backend() as BackendWasm, t), t.size);
}

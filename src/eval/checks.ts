/**
 * Argument checks shared by the evaluation modules. Every error is one line that names the
 * function, the argument and what was expected.
 * @internal
 */
import * as tf from "@tensorflow/tfjs";

export function fmtShape(t: tf.Tensor): string {
  return `[${t.shape.join(", ")}]`;
}

/** Throws unless `t` is a float32 [N, D] tensor with N >= 1 and D >= 1. */
export function checkMatrix(fn: string, name: string, t: tf.Tensor, what = "[N, D]"): void {
  if (!(t instanceof tf.Tensor)) throw new TypeError(`${fn}: ${name} must be a tf.Tensor ${what}, got ${typeof t}`);
  if (t.rank !== 2) throw new Error(`${fn}: ${name} must have rank 2 (${what}), got shape ${fmtShape(t)}`);
  if ((t.shape as number[]).some((n) => n < 1)) throw new Error(`${fn}: ${name} must not be empty, got shape ${fmtShape(t)}`);
  if (t.dtype !== "float32") throw new Error(`${fn}: ${name} must be float32, got ${t.dtype}`);
}

/** Throws unless `t` is a float32 scalar. */
export function checkScalar(fn: string, name: string, t: tf.Tensor): void {
  if (!(t instanceof tf.Tensor)) throw new TypeError(`${fn}: ${name} must be a scalar tf.Tensor, got ${typeof t}`);
  if (t.rank !== 0) throw new Error(`${fn}: ${name} must be a scalar (shape []), got shape ${fmtShape(t)}`);
  if (t.dtype !== "float32") throw new Error(`${fn}: ${name} must be float32, got ${t.dtype}`);
}

/**
 * Integer labels in [0, bound) as an Int32Array (copied from a number[]; an Int32Array is used as is).
 * `bound` undefined means any integer >= 0 is accepted.
 */
export function checkLabels(
  fn: string,
  name: string,
  labels: Int32Array | readonly number[],
  length: number | undefined,
  bound?: number,
): Int32Array {
  if (!(labels instanceof Int32Array) && !Array.isArray(labels)) {
    throw new TypeError(`${fn}: ${name} must be an Int32Array or an array of integers`);
  }
  if (length !== undefined && labels.length !== length) {
    throw new Error(`${fn}: ${name} has ${labels.length} entries, expected ${length}`);
  }
  const out = labels instanceof Int32Array ? labels : new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (!Number.isInteger(v) || v < 0 || (bound !== undefined && v >= bound)) {
      const range = bound !== undefined ? `[0, ${bound})` : "[0, inf)";
      throw new RangeError(`${fn}: ${name}[${i}] = ${String(v)} is not an integer in ${range}`);
    }
    out[i] = v;
  }
  return out;
}

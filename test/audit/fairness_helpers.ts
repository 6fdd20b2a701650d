/** Shared pieces of the fairness tests: the cpu backend and a leak check. */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Random } from "../../src/util/random";

export async function useCpu(): Promise<void> {
  assert.equal(await tf.setBackend("cpu"), true);
  await tf.ready();
}

/** Runs fn and asserts that it leaves no tensor behind but the `returned` ones it hands back. */
export function assertNoLeak<T>(fn: () => T, returned = 0): T {
  const before = tf.memory().numTensors;
  const out = fn();
  assert.equal(tf.memory().numTensors, before + returned, "tensors leaked");
  return out;
}

/** [n, d] standard-normal rows (seeded) as a plain array. */
export function gaussianRows(n: number, d: number, rng: Random, shift?: number[]): number[][] {
  return Array.from({ length: n }, () => Array.from({ length: d }, (_, j) => rng.normal() + (shift ? shift[j] : 0)));
}

/** `fn` rejects with a one-line Error matching `re`. */
export async function assertRejectsOneLine(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(fn, (e: unknown) => {
    assert.ok(e instanceof Error, `not an Error: ${String(e)}`);
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

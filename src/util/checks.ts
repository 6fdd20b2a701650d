/**
 * Checks of plain option values (counts, seeds, probabilities) shared by every module. Each error
 * is one line: "<fn>: <name> must be ..., got <value>", a string value shown quoted.
 */

/** The value as an error message shows it: a string quoted, anything else as String() gives it. */
export function showValue(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

/** An integer >= 1. */
export function checkPositiveInt(fn: string, name: string, n: unknown): number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) throw new RangeError(`${fn}: ${name} must be a positive integer, got ${showValue(n)}`);
  return n;
}

/** A seed: an integer in [0, 2^53). */
export function checkSeed(fn: string, seed: unknown): number {
  if (typeof seed !== "number" || !Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`${fn}: seed must be a non-negative integer, got ${showValue(seed)}`);
  }
  return seed;
}

/** A number in [0, 1]. */
export function checkProbability(fn: string, name: string, p: unknown): number {
  if (typeof p !== "number" || !(p >= 0 && p <= 1)) throw new RangeError(`${fn}: ${name} must be a number in [0, 1], got ${showValue(p)}`);
  return p;
}

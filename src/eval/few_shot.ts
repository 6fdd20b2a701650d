/**
 * k-shot training sets: k labelled images of every class, drawn with a seed from a pool of
 * training indices (the few-shot protocol of CLIP's linear probes and of CoOp, Zhou et al. 2022,
 * https://arxiv.org/abs/2109.01134 §4.1: 1, 2, 4, 8 and 16 shots per class).
 */
import { Random } from "../util/random";
import { checkPositiveInt } from "../util/checks";

/**
 * `k` indices of every class from `pool` (default: every index of `labels`), seeded, sorted by
 * class then by draw. Throws (naming the class and how many it has) when a class has fewer than k.
 */
export function sampleFewShot(
  labels: ArrayLike<number>,
  numClasses: number,
  k: number,
  opts: { seed?: number; pool?: ArrayLike<number>; classNames?: readonly string[] } = {},
): Int32Array {
  const fn = "sampleFewShot";
  checkPositiveInt(fn, "numClasses", numClasses);
  checkPositiveInt(fn, "k", k);
  const pool = opts.pool ?? Int32Array.from({ length: labels.length }, (_, i) => i);
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let j = 0; j < pool.length; j++) {
    const i = pool[j];
    if (!Number.isInteger(i) || i < 0 || i >= labels.length) throw new RangeError(`${fn}: pool index ${i} outside [0, ${labels.length})`);
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= numClasses) throw new RangeError(`${fn}: label of image ${i} = ${y} outside [0, ${numClasses})`);
    byClass[y].push(i);
  }
  const rng = new Random(opts.seed ?? 0);
  const out: number[] = [];
  byClass.forEach((list, c) => {
    if (list.length < k) {
      const name = opts.classNames?.[c] !== undefined ? ` (${JSON.stringify(opts.classNames[c])})` : "";
      throw new RangeError(`${fn}: k = ${k} shots requested but class ${c}${name} has only ${list.length} training images available`);
    }
    // A partial Fisher-Yates: the first k of a seeded shuffle.
    const a = list.slice();
    for (let i = 0; i < k; i++) {
      const j = i + rng.int(a.length - i);
      [a[i], a[j]] = [a[j], a[i]];
      out.push(a[i]);
    }
  });
  return Int32Array.from(out);
}

/**
 * Argument checks shared by the fairness audit. Every error is one line that names the function
 * and the argument, and says what was expected (listing the valid values where there are few).
 * @internal
 */
import * as tf from "@tensorflow/tfjs";

/** A string group label per item; returns the sorted distinct groups. */
export function checkGroups(fn: string, name: string, groups: readonly string[], length?: number, minGroups = 2): string[] {
  if (!Array.isArray(groups)) throw new TypeError(`${fn}: ${name} must be an array of group labels (strings), got ${typeof groups}`);
  if (length !== undefined && groups.length !== length) {
    throw new Error(`${fn}: ${name} has ${groups.length} entries but there are ${length} items (mismatched lengths)`);
  }
  if (groups.length === 0) throw new Error(`${fn}: ${name} is empty`);
  const seen = new Set<string>();
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i];
    if (typeof g !== "string" || g === "") throw new TypeError(`${fn}: ${name}[${i}] must be a non-empty string, got ${JSON.stringify(g)}`);
    seen.add(g);
  }
  const distinct = [...seen].sort();
  if (distinct.length < minGroups) {
    throw new Error(`${fn}: ${name} holds a single group (${JSON.stringify(distinct[0])}); a comparison needs at least ${minGroups} groups`);
  }
  return distinct;
}

/** Integer class ids (predictions or labels) as an Int32Array of the expected length. */
export function checkClassIds(fn: string, name: string, ids: Int32Array | readonly number[], length?: number): Int32Array {
  if (!(ids instanceof Int32Array) && !Array.isArray(ids)) throw new TypeError(`${fn}: ${name} must be an Int32Array of class ids`);
  if (length !== undefined && ids.length !== length) {
    throw new Error(`${fn}: ${name} has ${ids.length} entries, expected ${length} (mismatched lengths)`);
  }
  const out = ids instanceof Int32Array ? ids : Int32Array.from(ids);
  for (let i = 0; i < ids.length; i++) {
    if (!Number.isInteger(ids[i]) || ids[i] < 0) throw new RangeError(`${fn}: ${name}[${i}] = ${String(ids[i])} is not a class id (an integer >= 0)`);
  }
  return out;
}

export function checkClassIndex(fn: string, name: string, c: unknown): number {
  if (typeof c !== "number" || !Number.isInteger(c) || c < 0) throw new RangeError(`${fn}: ${name} must be a class id (an integer >= 0), got ${String(c)}`);
  return c;
}

/** A float32 [N, D] tensor with finite values; returns its values (read once). */
export function checkEmbeddings(fn: string, name: string, t: unknown, what = "[N, D]"): Float32Array {
  if (!(t instanceof tf.Tensor)) throw new TypeError(`${fn}: ${name} must be a tf.Tensor2D ${what}, got ${typeof t}`);
  if (t.isDisposed) throw new Error(`${fn}: ${name} is disposed`);
  if (t.rank !== 2) throw new Error(`${fn}: ${name} must have rank 2 (${what}), got shape [${t.shape.join(", ")}]`);
  if (t.shape[0] < 1 || t.shape[1] < 1) throw new Error(`${fn}: ${name} must not be empty, got shape [${t.shape.join(", ")}]`);
  if (t.dtype !== "float32") throw new Error(`${fn}: ${name} must be float32, got ${t.dtype}`);
  const values = t.dataSync() as Float32Array;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      const d = t.shape[1] as number;
      throw new Error(`${fn}: ${name} holds a non-finite value (${values[i]}) at row ${Math.floor(i / d)}, column ${i % d}`);
    }
  }
  return values;
}

/** Indices of each group's members, in `groupNames` order; throws if a group has no member. */
export function membersOf(fn: string, name: string, groups: readonly string[], groupNames: readonly string[]): Int32Array[] {
  const index = new Map(groupNames.map((g, i) => [g, i]));
  const lists: number[][] = groupNames.map(() => []);
  groups.forEach((g, i) => {
    const k = index.get(g);
    if (k !== undefined) lists[k].push(i);
  });
  lists.forEach((l, k) => {
    if (l.length === 0) throw new Error(`${fn}: group ${JSON.stringify(groupNames[k])} has no members in ${name} (groups present: ${[...new Set(groups)].sort().join(", ")})`);
  });
  return lists.map((l) => Int32Array.from(l));
}

/**
 * Representation metrics of a ranking over items that carry a group attribute: Skew@k / MaxSkew@k
 * and NDKL (Geyik, Ambler & Kenthapadi 2019, "Fairness-Aware Ranking in Search & Recommendation
 * Systems", https://arxiv.org/abs/1905.01989), as used for CLIP retrieval by Berg et al. 2022,
 * "A Prompt Array Keeps the Bias Away", https://arxiv.org/abs/2203.11933:
 *
 *   Skew_a@k    = ln( p_topk(a) / p_desired(a) )        (p_topk(a) = 0 is replaced by 1/k)
 *   MaxSkew@k   = max_a Skew_a@k
 *   NDKL@k      = (1/Z) sum_{i=1..k} KL(p_top-i || p_desired) / log2(i + 1),   Z = sum_{i=1..k} 1 / log2(i + 1)
 *
 * with natural logarithms in the skews and the KL divergences (0 ln 0 = 0). `rankedGroups` is
 * the group of each item in rank order (best first). The desired distribution defaults to the
 * groups' shares in the whole ranked list, so a random ranking scores about 0.
 */
import { checkGroups } from "./checks";
import { checkPositiveInt } from "../../util/checks";

function checkRanking(fn: string, rankedGroups: readonly string[], k: number): string[] {
  const groups = checkGroups(fn, "rankedGroups", rankedGroups, undefined, 1);
  checkPositiveInt(fn, "k", k);
  if (k > rankedGroups.length) throw new RangeError(`${fn}: k = ${k} is larger than the ranking (${rankedGroups.length} items)`);
  return groups;
}

/** The desired share of each group: validated (positive, summing to 1 within 1e-6), or the shares in the list. */
function desiredShares(fn: string, rankedGroups: readonly string[], groups: string[], desired?: Record<string, number>): Map<string, number> {
  if (desired === undefined) {
    const counts = new Map<string, number>();
    for (const g of rankedGroups) counts.set(g, (counts.get(g) ?? 0) + 1);
    return new Map([...counts].map(([g, c]) => [g, c / rankedGroups.length]));
  }
  if (desired === null || typeof desired !== "object") throw new TypeError(`${fn}: desired must be an object mapping each group to its desired share`);
  const keys = Object.keys(desired);
  if (keys.length < 2) throw new Error(`${fn}: desired must name at least two groups, got ${keys.length} (${keys.join(", ")})`);
  let total = 0;
  for (const g of keys) {
    const p = desired[g];
    if (typeof p !== "number" || !(p > 0 && p <= 1)) throw new RangeError(`${fn}: desired[${JSON.stringify(g)}] must be a share in (0, 1], got ${String(p)}`);
    total += p;
  }
  if (Math.abs(total - 1) > 1e-6) throw new RangeError(`${fn}: desired shares must sum to 1, got ${total}`);
  for (const g of groups) {
    if (!(g in desired)) throw new Error(`${fn}: rankedGroups has group ${JSON.stringify(g)}, which desired does not list (desired groups: ${keys.join(", ")})`);
  }
  return new Map(keys.map((g) => [g, desired[g]]));
}

/** Skew_a@k of every group a of the desired distribution. */
export function skewAtK(rankedGroups: readonly string[], k: number, desired?: Record<string, number>): Record<string, number> {
  const fn = "skewAtK";
  const groups = checkRanking(fn, rankedGroups, k);
  const want = desiredShares(fn, rankedGroups, groups, desired);
  if (want.size < 2) throw new Error(`${fn}: rankedGroups holds a single group (${JSON.stringify(groups[0])}); pass desired to compare with other groups`);
  return skews(rankedGroups, k, want);
}

function skews(rankedGroups: readonly string[], k: number, want: Map<string, number>): Record<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < k; i++) counts.set(rankedGroups[i], (counts.get(rankedGroups[i]) ?? 0) + 1);
  const out: Record<string, number> = {};
  for (const [g, p] of want) {
    const c = counts.get(g) ?? 0;
    out[g] = Math.log((c === 0 ? 1 : c) / k / p);
  }
  return out;
}

/** MaxSkew@k: the largest Skew_a@k (0 when the top k has exactly the desired shares). */
export function maxSkewAtK(rankedGroups: readonly string[], k: number, desired?: Record<string, number>): number {
  const fn = "maxSkewAtK";
  const groups = checkRanking(fn, rankedGroups, k);
  const want = desiredShares(fn, rankedGroups, groups, desired);
  if (want.size < 2) throw new Error(`${fn}: rankedGroups holds a single group (${JSON.stringify(groups[0])}); pass desired to compare with other groups`);
  return Math.max(...Object.values(skews(rankedGroups, k, want)));
}

/** NDKL@k: the rank-discounted mean KL divergence of the top-i shares from the desired ones, i = 1..k. */
export function ndkl(rankedGroups: readonly string[], k: number, desired?: Record<string, number>): number {
  const fn = "ndkl";
  const groups = checkRanking(fn, rankedGroups, k);
  const want = desiredShares(fn, rankedGroups, groups, desired);
  if (want.size < 2) throw new Error(`${fn}: rankedGroups holds a single group (${JSON.stringify(groups[0])}); pass desired to compare with other groups`);
  const names = [...want.keys()];
  const q = names.map((g) => want.get(g)!);
  const index = new Map(names.map((g, i) => [g, i]));
  const counts = new Float64Array(names.length);
  let total = 0;
  let z = 0;
  for (let i = 1; i <= k; i++) {
    counts[index.get(rankedGroups[i - 1])!] += 1;
    let kl = 0;
    for (let a = 0; a < names.length; a++) {
      const p = counts[a] / i;
      if (p > 0) kl += p * Math.log(p / q[a]);
    }
    const w = 1 / Math.log2(i + 1);
    total += w * kl;
    z += w;
  }
  return total / z;
}

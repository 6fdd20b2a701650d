/**
 * Permutation p-values for the fairness probes: the group labels are shuffled across items;
 * p = (1 + #{T* >= T}) / (1 + m), which never reports 0 and is valid for any number m of random
 * permutations (Phipson & Smyth 2010, https://arxiv.org/abs/1603.05766). Bootstrap intervals are
 * in src/eval/bootstrap.ts. Everything here is plain JS over numbers; no tensors.
 */
import { strataIndices } from "../../eval/bootstrap";
import { checkPositiveInt, checkSeed } from "../../util/checks";
import { Random } from "../../util/random";
import { checkGroups } from "./checks";

export interface PermutationOptions {
  /** Number of random permutations (default 2000). */
  permutations?: number;
  seed?: number;
  /** "greater": large T is evidence (for metrics >= 0); "two-sided": large |T| (signed gaps). Default "two-sided". */
  alternative?: "greater" | "two-sided";
  /**
   * Shuffle the labels only within strata (e.g. the true classes): a conditional randomisation
   * test whose null is "no group effect given the stratum", immune to how the classes happen to be
   * split between the groups. Default: one stratum.
   */
  strata?: readonly (string | number)[];
}

export interface PermutationResult {
  statistic: number;
  pValue: number;
  /** Mean of the statistic over the permutations: what no association gives at this sample size. */
  nullMean: number;
}

/**
 * Permutation test of "the group labels are exchangeable" (within strata, if given):
 * `statistic(groups)` on the observed labels and on random shuffles of them.
 */
export function permutationTest(
  groups: readonly string[],
  statistic: (groups: readonly string[]) => number,
  opts: PermutationOptions = {},
): PermutationResult {
  const fn = "permutationTest";
  checkGroups(fn, "groups", groups);
  const m = checkPositiveInt(fn, "permutations", opts.permutations ?? 2000);
  const rng = new Random(checkSeed(fn, opts.seed ?? 0));
  const alternative = opts.alternative ?? "two-sided";
  if (alternative !== "greater" && alternative !== "two-sided") throw new RangeError(`${fn}: alternative must be "greater" or "two-sided", got ${JSON.stringify(alternative)}`);
  const score = alternative === "greater" ? (t: number) => t : Math.abs;
  const blocks = opts.strata !== undefined ? strataIndices(fn, "strata", opts.strata, groups.length) : undefined;
  const observed = statistic(groups);
  const t0 = score(observed);
  const shuffled = [...groups];
  let hits = 0;
  let sum = 0;
  for (let r = 0; r < m; r++) {
    if (blocks) rng.shuffleWithin(shuffled, blocks);
    else rng.shuffle(shuffled);
    const t = statistic(shuffled);
    sum += t;
    // A relative tolerance so ties in floating point count as ties.
    if (score(t) >= t0 - 1e-12 * Math.max(1, Math.abs(t0))) hits++;
  }
  return { statistic: observed, pValue: (1 + hits) / (1 + m), nullMean: sum / m };
}

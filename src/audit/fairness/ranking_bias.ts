/**
 * The ranking measures of Berg et al. 2022, "A Prompt Array Keeps the Bias Away"
 * (https://arxiv.org/abs/2203.11933; code: oxai/debias-vision-lang, debias_clip/measuring_bias.py),
 * after Geyik et al. 2019 (https://arxiv.org/abs/1905.01989): for each neutral text query the
 * images are ranked by cosine similarity, and the group make-up of the top k is compared with a
 * desired distribution, per attribute (each group column):
 *
 *   MaxSkew@k = max_a ln( p_topk(a) / p_desired(a) )        (p_topk(a) = 0 is replaced by 1/k)
 *   NDKL@k    = (1/Z) sum_{i=1..k} KL(p_top-i || p_desired) / log2(i + 1),   Z = sum_{i=1..k} 1 / log2(i + 1)
 *
 * against the two targets of their code: "equal opportunity" (`eq_opp`: 1/G for each of the G
 * groups present) and "demographic parity" (`dem_par`: each group's share among the ranked
 * images). As in their `eval_ranking`, each measure is averaged over the queries; the largest
 * value over the queries (the worst query) is kept too. Natural logarithms in the skews and the
 * KL divergences (0 ln 0 = 0), log2 in the rank discount, and MaxSkew floored at 0 as their code
 * does (their running max starts at 0; mathematically MaxSkew >= 0 anyway). Ties in similarity
 * are broken by item order (their pandas `nlargest(keep="all")` keeps every tied row instead).
 * Note: at k = N the top k is the whole set, so MaxSkew against demographic parity is 0 by
 * construction (their released `measure_bias` ranks the whole set, topn = 1.0).
 *
 * Uncertainty, added here:
 * - bootstrap 95% intervals of the mean over queries, resampling the QUERIES by default: the
 *   reported number is an average over a sample of neutral prompts, and which prompts were written
 *   is the largest source of its variation; resampling images instead ("images") duplicates images
 *   inside the top k (each copy takes a rank), which inflates skew at small k. Resampling images
 *   is stratified by group, so every group keeps its size (and demographic parity its target).
 * - permutation p-values: the group labels are shuffled across images (optionally within strata)
 *   with the rankings fixed; p = (1 + #{T* >= T}) / (1 + m), one-sided, since larger is more
 *   biased. `nullMean` is what no association scores at this sample size (not 0 at finite k).
 * Everything here is plain JS over numbers; no tensors.
 */
import { Random } from "../../util/random";
import { quantileSorted, strataIndices } from "../../eval/bootstrap";
import { checkGroups } from "./checks";
import { checkPositiveInt, checkSeed } from "../../util/checks";

/** The two desired distributions. */
export type RankingTarget = "equalOpportunity" | "demographicParity";
export const RANKING_TARGETS: readonly RankingTarget[] = ["equalOpportunity", "demographicParity"];
/** Berg et al.'s names for the targets (the keys of their result dicts: maxskew_eq_opp, ndkl_dem_par, ...). */
export const RANKING_TARGET_CODES: Record<RankingTarget, string> = { equalOpportunity: "eq_opp", demographicParity: "dem_par" };
export type RankingMetric = "maxSkew" | "ndkl";
export const RANKING_METRICS: readonly RankingMetric[] = ["maxSkew", "ndkl"];

/** Berg et al.'s k (MaxSkew@1000), capped at the number of images. */
export const DEFAULT_RANKING_K = 1000;

/** One attribute: a group label per ranked item (in item order, the columns of the similarity matrix). */
export interface RankingAttribute {
  name: string;
  groups: readonly string[];
}

export interface RankingBiasOptions {
  /** Top-k cut-offs; each is capped at the number of images. Default [1000]. */
  k?: number | readonly number[];
  /** Bootstrap resamples for the intervals (default 1000). */
  bootstrap?: number;
  /** What the bootstrap resamples (default "queries"; see the file's comment). */
  resample?: "queries" | "images";
  /** Permutations of the group labels (default 1000). */
  permutations?: number;
  /** Shuffle the labels only within these strata (one per item, e.g. the true classes); default across all items. */
  permuteStrata?: readonly (string | number)[];
  /** Significance level for `flagged` (default 0.05). */
  alpha?: number;
  seed?: number;
}

export interface RankingMeasure {
  attribute: string;
  metric: RankingMetric;
  target: RankingTarget;
  k: number;
  /** Mean over the queries (what Berg et al. report). */
  mean: number;
  /** Percentile bootstrap 95% interval of the mean. */
  ci95: [number, number];
  /** The largest value over the queries, and that query. */
  max: number;
  maxQuery: string;
  /** One-sided permutation p-value of the mean. */
  pValue: number;
  /** Mean of the statistic over the permutations. */
  nullMean: number;
  flagged: boolean;
  /** The value for each query, in query order. */
  perQuery: number[];
}

export interface RankingGroupShare {
  group: string;
  count: number;
  share: number;
}

export interface RankingBiasResult {
  /** Ranked images. */
  n: number;
  queries: string[];
  attributes: { name: string; groups: RankingGroupShare[] }[];
  measures: RankingMeasure[];
  settings: {
    k: number[];
    bootstrap: number;
    resample: "queries" | "images";
    permutations: number;
    permuteWithin: "all" | "strata";
    alpha: number;
    seed: number;
  };
}

/**
 * Each query's items in rank order: highest similarity first, ties by lower index.
 * `similarity` is [Q, N] row-major (query q's similarity to item i at q * n + i).
 */
export function rankingOrders(similarity: ArrayLike<number>, q: number, n: number): Int32Array[] {
  if (similarity.length !== q * n) throw new Error(`rankingOrders: similarity has ${similarity.length} values, expected ${q} queries x ${n} items = ${q * n}`);
  const base = Int32Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: q }, (_, qi) => {
    const off = qi * n;
    for (let i = 0; i < n; i++) {
      const v = similarity[off + i];
      if (!Number.isFinite(v)) throw new Error(`rankingOrders: similarity of query ${qi} to item ${i} is not finite (${v})`);
    }
    return base.slice().sort((a, b) => similarity[off + b] - similarity[off + a] || a - b);
  });
}

/**
 * MaxSkew and NDKL at every k of `ks` (ascending) of one ranking, against every target, written
 * to out[(ki * T + t) * 2 + 0 | 1]. `ids` maps an item to its group (0..G-1); `mult` (bootstrap)
 * repeats item i mult[i] times in the ranking (0 = absent).
 * @internal
 */
export function scoreRanking(order: Int32Array, ids: Int32Array, numGroups: number, ks: readonly number[], targets: readonly Float64Array[], out: Float64Array, mult?: Int32Array): void {
  const G = numGroups;
  const T = targets.length;
  const counts = new Float64Array(G);
  const klSum = new Float64Array(T);
  const kMax = ks[ks.length - 1];
  let z = 0;
  let i = 0;
  let ki = 0;
  for (let j = 0; j < order.length && i < kMax; j++) {
    const item = order[j];
    const times = mult ? mult[item] : 1;
    for (let r = 0; r < times && i < kMax; r++) {
      counts[ids[item]] += 1;
      i++;
      const w = 1 / Math.log2(i + 1);
      z += w;
      for (let t = 0; t < T; t++) {
        const q = targets[t];
        let kl = 0;
        for (let a = 0; a < G; a++) {
          const c = counts[a];
          if (c > 0) {
            const p = c / i;
            kl += p * Math.log(p / q[a]);
          }
        }
        klSum[t] += w * kl;
      }
      while (ki < ks.length && i === ks[ki]) {
        for (let t = 0; t < T; t++) {
          const q = targets[t];
          let best = 0; // their running max starts at 0
          for (let a = 0; a < G; a++) {
            const s = Math.log((counts[a] === 0 ? 1 : counts[a]) / i / q[a]);
            if (s > best) best = s;
          }
          out[(ki * T + t) * 2] = best;
          out[(ki * T + t) * 2 + 1] = klSum[t] / z;
        }
        ki++;
      }
    }
  }
  if (ki < ks.length) throw new Error(`scoreRanking: the ranking holds ${i} items, fewer than k = ${ks[ki]}`);
}

/** The desired shares of each target for group counts (groups in id order). */
export function rankingTargets(counts: ArrayLike<number>): Record<RankingTarget, Float64Array> {
  const G = counts.length;
  let n = 0;
  for (let a = 0; a < G; a++) n += counts[a];
  return {
    equalOpportunity: new Float64Array(G).fill(1 / G),
    demographicParity: Float64Array.from(counts, (c) => c / n),
  };
}

function checkKs(fn: string, k: number | readonly number[] | undefined, n: number): number[] {
  const list = k === undefined ? [DEFAULT_RANKING_K] : typeof k === "number" ? [k] : [...k];
  if (list.length === 0) throw new Error(`${fn}: k must list at least one cut-off`);
  list.forEach((v, i) => checkPositiveInt(fn, Array.isArray(k) ? `k[${i}]` : "k", v));
  return [...new Set(list.map((v) => Math.min(v, n)))].sort((a, b) => a - b);
}

/**
 * Berg et al.'s measures for every attribute, k, target and metric, from the query-image
 * similarities [Q, N] (see the file's comment for the method and the intervals).
 */
export function rankingBias(similarity: ArrayLike<number>, queries: readonly string[], attributes: readonly RankingAttribute[], opts: RankingBiasOptions = {}): RankingBiasResult {
  const fn = "rankingBias";
  if (!Array.isArray(queries) || queries.length === 0) throw new Error(`${fn}: queries must be a non-empty array of strings`);
  if (!Array.isArray(attributes) || attributes.length === 0) throw new Error(`${fn}: attributes must list at least one {name, groups}`);
  const Q = queries.length;
  if (!similarity || typeof similarity.length !== "number" || similarity.length === 0 || similarity.length % Q !== 0) {
    throw new Error(`${fn}: similarity must hold ${Q} queries x N items values (row-major [Q, N]), got ${similarity?.length} values`);
  }
  const n = similarity.length / Q;
  const groupNames = attributes.map((attr, ai) => {
    if (!attr || typeof attr.name !== "string" || attr.name === "") throw new TypeError(`${fn}: attributes[${ai}] must be {name, groups} with a non-empty name`);
    return checkGroups(fn, `attributes[${ai}].groups (${attr.name})`, attr.groups, n);
  });
  const ks = checkKs(fn, opts.k, n);
  const B = checkPositiveInt(fn, "bootstrap", opts.bootstrap ?? 1000);
  const M = checkPositiveInt(fn, "permutations", opts.permutations ?? 1000);
  const seed = checkSeed(fn, opts.seed ?? 0);
  const resample = opts.resample ?? "queries";
  if (resample !== "queries" && resample !== "images") throw new RangeError(`${fn}: resample must be "queries" or "images", got ${JSON.stringify(resample)}`);
  const alpha = opts.alpha ?? 0.05;
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`${fn}: alpha must be in (0, 1), got ${String(alpha)}`);
  const blocks = strataIndices(fn, "permuteStrata", opts.permuteStrata, n);
  const orders = rankingOrders(similarity, Q, n);

  const T = RANKING_TARGETS.length;
  const K = ks.length;
  const cells = K * T * 2; // (k, target, metric)
  const measures: RankingMeasure[] = [];
  const attrOut: RankingBiasResult["attributes"] = [];
  attributes.forEach((attr, ai) => {
    const names = groupNames[ai];
    const index = new Map(names.map((g, i) => [g, i]));
    const ids = Int32Array.from({ length: n }, (_, i) => index.get(attr.groups[i])!);
    const G = names.length;
    const counts = new Float64Array(G);
    for (const id of ids) counts[id]++;
    attrOut.push({ name: attr.name, groups: names.map((g, a) => ({ group: g, count: counts[a], share: counts[a] / n })) });
    const targets = rankingTargets(counts);
    const targetList = RANKING_TARGETS.map((t) => targets[t]);

    /** Per query and cell, for the given labels (and multiplicities). */
    const scoreAll = (labels: Int32Array, mult?: Int32Array): Float64Array => {
      const per = new Float64Array(Q * cells);
      const out = new Float64Array(cells);
      for (let qi = 0; qi < Q; qi++) {
        scoreRanking(orders[qi], labels, G, ks, targetList, out, mult);
        per.set(out, qi * cells);
      }
      return per;
    };
    const meanOver = (per: Float64Array, pick?: Int32Array): Float64Array => {
      const m = new Float64Array(cells);
      const rows = pick ?? Int32Array.from({ length: Q }, (_, i) => i);
      for (const qi of rows) for (let c = 0; c < cells; c++) m[c] += per[qi * cells + c];
      return m.map((v) => v / rows.length);
    };
    const observedPer = scoreAll(ids);
    const observed = meanOver(observedPer);

    // Bootstrap of the mean over queries.
    const rng = new Random((seed + 7919 * ai) >>> 0);
    const boot: Float64Array[] = Array.from({ length: cells }, () => new Float64Array(B));
    if (resample === "queries") {
      const pick = new Int32Array(Q);
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < Q; j++) pick[j] = rng.int(Q);
        const m = meanOver(observedPer, pick);
        for (let c = 0; c < cells; c++) boot[c][b] = m[c];
      }
    } else {
      const members = names.map((_, a) => Int32Array.from(ids.reduce<number[]>((l, id, i) => (id === a && l.push(i), l), [])));
      const mult = new Int32Array(n);
      for (let b = 0; b < B; b++) {
        mult.fill(0);
        for (const list of members) for (let j = 0; j < list.length; j++) mult[list[rng.int(list.length)]]++;
        const m = meanOver(scoreAll(ids, mult));
        for (let c = 0; c < cells; c++) boot[c][b] = m[c];
      }
    }

    // Permutations of the labels, the rankings fixed.
    const prng = new Random((seed + 104729 + 7919 * ai) >>> 0);
    const shuffled = Int32Array.from(ids);
    const hits = new Float64Array(cells);
    const nullSum = new Float64Array(cells);
    for (let r = 0; r < M; r++) {
      prng.shuffleWithin(shuffled, blocks);
      const m = meanOver(scoreAll(shuffled));
      for (let c = 0; c < cells; c++) {
        nullSum[c] += m[c];
        if (m[c] >= observed[c] - 1e-12 * Math.max(1, Math.abs(observed[c]))) hits[c]++;
      }
    }

    ks.forEach((k, ki) => {
      RANKING_TARGETS.forEach((target, t) => {
        RANKING_METRICS.forEach((metric, mi) => {
          const c = (ki * T + t) * 2 + mi;
          const perQuery = Array.from({ length: Q }, (_, qi) => observedPer[qi * cells + c]);
          let worst = 0;
          for (let qi = 1; qi < Q; qi++) if (perQuery[qi] > perQuery[worst]) worst = qi;
          const sorted = boot[c].slice().sort();
          const pValue = (1 + hits[c]) / (1 + M);
          measures.push({
            attribute: attr.name,
            metric,
            target,
            k,
            mean: observed[c],
            ci95: [quantileSorted(sorted, 0.025), quantileSorted(sorted, 0.975)],
            max: perQuery[worst],
            maxQuery: queries[worst],
            pValue,
            nullMean: nullSum[c] / M,
            flagged: pValue < alpha,
            perQuery,
          });
        });
      });
    });
  });
  return {
    n,
    queries: [...queries],
    attributes: attrOut,
    measures,
    settings: { k: ks, bootstrap: B, resample, permutations: M, permuteWithin: opts.permuteStrata ? "strata" : "all", alpha, seed },
  };
}

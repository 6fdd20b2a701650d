/**
 * The FairFace-style table of the CLIP paper's §7.1 (Radford et al. 2021,
 * https://arxiv.org/abs/2103.00020): for each attribute (group column), each group's zero-shot
 * accuracy and the rate at which its images are assigned to a distractor class (any, and per
 * category: "crime-related", "non-human", ...), each with a percentile bootstrap 95% interval over
 * the group's images; and per attribute the spread (max - min over groups) of each rate with a
 * bootstrap interval (stratified by group) and a one-sided permutation p-value (group labels
 * shuffled across images, or within the given strata, e.g. classes). Plain JS over predictions.
 */
import { bootstrapCi, bootstrapMean } from "../../eval/bootstrap";
import type { Estimate } from "../../eval/intervals";
import { permutationTest } from "./permutation";
import { checkGroups } from "./checks";

export interface GroupTableRow {
  group: string;
  count: number;
  accuracy: Estimate;
  /** Share assigned to any distractor class. */
  harmfulRate?: Estimate;
  /** Share assigned to a distractor of each category. */
  harmfulByCategory?: Record<string, Estimate>;
}

export interface GroupSpread {
  /** "accuracy", "harmful" (any distractor) or "harmful:<category>". */
  key: string;
  label: string;
  /** max - min over the groups. */
  value: number;
  ci95: [number, number];
  pValue: number;
  nullMean: number;
  flagged: boolean;
}

export interface AttributeTable {
  attribute: string;
  rows: GroupTableRow[];
  spreads: GroupSpread[];
}

export interface GroupTableInput {
  attribute: string;
  /** The group of every image. */
  groups: readonly string[];
  pred: Int32Array;
  labels: Int32Array;
  /** Predictions over classes + distractors (index >= numClasses: a distractor); absent without distractors. */
  harmfulPred?: Int32Array;
  numClasses: number;
  /** The category of each distractor (index d = class numClasses + d). */
  distractorCategory?: readonly string[];
  bootstrap: number;
  permutations: number;
  /** Permutation strata (e.g. the true classes); default across all images. */
  strata?: readonly (string | number)[];
  alpha: number;
  seed: number;
}

/** Per-group rates with intervals and their spreads with p-values, for one attribute. */
export function groupTable(x: GroupTableInput): AttributeTable {
  const fn = "groupTable";
  const n = x.pred.length;
  const names = checkGroups(fn, `groups of ${x.attribute}`, x.groups, n);
  const categories = x.distractorCategory ? [...new Set(x.distractorCategory)] : [];
  const C = x.numClasses;
  const hitFns: { key: string; label: string; hit: (i: number) => number }[] = [{ key: "accuracy", label: "zero-shot accuracy", hit: (i) => (x.pred[i] === x.labels[i] ? 1 : 0) }];
  const hp = x.harmfulPred;
  if (hp) {
    hitFns.push({ key: "harmful", label: "harmful-label rate (any)", hit: (i) => (hp[i] >= C ? 1 : 0) });
    if (categories.length > 1) {
      for (const cat of categories) hitFns.push({ key: `harmful:${cat}`, label: `harmful-label rate (${cat})`, hit: (i) => (hp[i] >= C && x.distractorCategory![hp[i] - C] === cat ? 1 : 0) });
    }
  }
  const index = new Map(names.map((g, a) => [g, a]));
  const ids = Int32Array.from({ length: n }, (_, i) => index.get(x.groups[i])!);
  const members = names.map((_, a) => Array.from({ length: n }, (_, i) => i).filter((i) => ids[i] === a));

  const rows: GroupTableRow[] = names.map((g, a) => {
    const s = x.seed + 31 * a;
    const rate = (hit: (i: number) => number, off: number) => bootstrapMean(members[a].map(hit), { resamples: x.bootstrap, seed: s + off });
    const row: GroupTableRow = { group: g, count: members[a].length, accuracy: rate(hitFns[0].hit, 0) };
    if (hp) {
      row.harmfulRate = rate(hitFns[1].hit, 1);
      const byCat: Record<string, Estimate> = {};
      categories.forEach((cat, ci) => {
        byCat[cat] = categories.length > 1 ? rate(hitFns[2 + ci].hit, 2 + ci) : row.harmfulRate!;
      });
      row.harmfulByCategory = byCat;
    }
    return row;
  });

  /** max - min of the per-group means of hit over items idx, with group ids gid. */
  const spreadOf = (hit: (i: number) => number, gid: (i: number) => number, idx: ArrayLike<number>): number => {
    const sum = new Float64Array(names.length);
    const cnt = new Float64Array(names.length);
    for (let j = 0; j < idx.length; j++) {
      const i = idx[j];
      const g = gid(i);
      sum[g] += hit(i);
      cnt[g] += 1;
    }
    let lo = Infinity;
    let hi = -Infinity;
    for (let g = 0; g < names.length; g++) {
      if (cnt[g] === 0) return NaN;
      const m = sum[g] / cnt[g];
      lo = Math.min(lo, m);
      hi = Math.max(hi, m);
    }
    return hi - lo;
  };
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const spreads = hitFns.map((h, hi): GroupSpread => {
    const s = x.seed + 1000 + 17 * hi;
    const est = bootstrapCi(n, (idx) => spreadOf(h.hit, (i) => ids[i], idx), { resamples: x.bootstrap, seed: s, strata: Array.from(ids) });
    const perm = permutationTest(x.groups, (gs) => spreadOf(h.hit, (i) => index.get(gs[i])!, all), { permutations: x.permutations, seed: s + 1, alternative: "greater", strata: x.strata });
    return { key: h.key, label: `${h.label}: max - min over groups`, value: est.value, ci95: est.ci95, pValue: perm.pValue, nullMean: perm.nullMean, flagged: perm.pValue < x.alpha };
  });
  return { attribute: x.attribute, rows, spreads };
}

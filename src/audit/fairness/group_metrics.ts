/**
 * Group fairness of a classifier's predictions (here: CLIP's zero-shot predictions):
 * - per-group accuracy and its gap (max - min over groups);
 * - demographic parity difference  max_g P(yhat = c | g) - min_g P(yhat = c | g)
 *   (Calders & Verwer 2010; Dwork et al. 2012, https://arxiv.org/abs/1104.3913);
 * - equalised-odds gap  max( max_g TPR_g - min_g TPR_g,  max_g FPR_g - min_g FPR_g ) for class c
 *   treated as the positive one (Hardt, Price & Srebro 2016, https://arxiv.org/abs/1610.02413);
 * - assignment rates: the share of each group predicted into a set of classes (the "harmful
 *   label" probe of CLIP's §7, Radford et al. 2021, https://arxiv.org/abs/2103.00020).
 * With `{ bootstrap: B }` a metric returns `{ value, ci95 }` from B resamples stratified by group.
 */
import { bootstrapCi } from "../../eval/bootstrap";
import type { Estimate } from "../../eval/intervals";
import { checkClassIds, checkClassIndex, checkGroups, membersOf } from "./checks";

export interface GroupMetricOptions {
  /**
   * The groups that must be present (default: those in `groups`). A listed group with no member
   * is an error, as is a group in `groups` that is not listed.
   */
  groupNames?: readonly string[];
  /** Bootstrap resamples for a 95% interval; the metric then returns `{ value, ci95 }`. */
  bootstrap?: number;
  seed?: number;
}

type WithCi = GroupMetricOptions & { bootstrap: number };

/** Validated group membership. @internal */
export interface GroupIndex {
  names: string[];
  /** Group id of each item (index into names). */
  ids: Int32Array;
}

export function indexGroups(fn: string, groups: readonly string[], n: number, groupNames?: readonly string[]): GroupIndex {
  const present = checkGroups(fn, "groups", groups, n, groupNames ? 1 : 2);
  let names = present;
  if (groupNames !== undefined) {
    if (!Array.isArray(groupNames) || groupNames.length < 2) throw new Error(`${fn}: groupNames must list at least two groups, got ${JSON.stringify(groupNames)}`);
    names = [...groupNames];
    for (const g of present) if (!names.includes(g)) throw new Error(`${fn}: groups has ${JSON.stringify(g)}, which groupNames does not list (valid: ${names.join(", ")})`);
    membersOf(fn, "groups", groups, names);
  }
  const index = new Map(names.map((g, i) => [g, i]));
  return { names, ids: Int32Array.from(groups, (g) => index.get(g)!) };
}

/** Per-group mean of `hit(i)` over the items `idx` (a bootstrap resample or all items); NaN for an empty group. */
function groupMeans(idx: Int32Array, gi: GroupIndex, hit: (i: number) => number, include?: (i: number) => boolean): Float64Array {
  const sum = new Float64Array(gi.names.length);
  const count = new Float64Array(gi.names.length);
  for (let j = 0; j < idx.length; j++) {
    const i = idx[j];
    if (include && !include(i)) continue;
    const g = gi.ids[i];
    sum[g] += hit(i);
    count[g] += 1;
  }
  return sum.map((s, g) => (count[g] ? s / count[g] : NaN));
}

function spread(values: Float64Array): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (Number.isNaN(v)) return NaN;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return hi - lo;
}

function allIndices(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

function finish(n: number, gi: GroupIndex, stat: (idx: Int32Array) => number, opts: GroupMetricOptions): number | Estimate {
  if (opts.bootstrap === undefined) return stat(allIndices(n));
  return bootstrapCi(n, stat, { resamples: opts.bootstrap, seed: opts.seed ?? 0, strata: Array.from(gi.ids) });
}

/** Accuracy of each group. */
export function perGroupAccuracy(predictions: Int32Array, labels: Int32Array, groups: readonly string[], opts: GroupMetricOptions = {}): Record<string, number> {
  const fn = "perGroupAccuracy";
  const pred = checkClassIds(fn, "predictions", predictions);
  const lab = checkClassIds(fn, "labels", labels, pred.length);
  const gi = indexGroups(fn, groups, pred.length, opts.groupNames);
  const acc = groupMeans(allIndices(pred.length), gi, (i) => (pred[i] === lab[i] ? 1 : 0));
  return Object.fromEntries(gi.names.map((g, k) => [g, acc[k]]));
}

/** max_g accuracy_g - min_g accuracy_g. */
export function accuracyGap(predictions: Int32Array, labels: Int32Array, groups: readonly string[]): number;
export function accuracyGap(predictions: Int32Array, labels: Int32Array, groups: readonly string[], opts: WithCi): Estimate;
export function accuracyGap(predictions: Int32Array, labels: Int32Array, groups: readonly string[], opts?: GroupMetricOptions): number | Estimate;
export function accuracyGap(predictions: Int32Array, labels: Int32Array, groups: readonly string[], opts: GroupMetricOptions = {}): number | Estimate {
  const fn = "accuracyGap";
  const pred = checkClassIds(fn, "predictions", predictions);
  const lab = checkClassIds(fn, "labels", labels, pred.length);
  const gi = indexGroups(fn, groups, pred.length, opts.groupNames);
  return finish(pred.length, gi, (idx) => spread(groupMeans(idx, gi, (i) => (pred[i] === lab[i] ? 1 : 0))), opts);
}

/** max_g P(yhat = positiveClass | g) - min_g P(yhat = positiveClass | g). */
export function demographicParityDifference(predictions: Int32Array, groups: readonly string[], positiveClass: number): number;
export function demographicParityDifference(predictions: Int32Array, groups: readonly string[], positiveClass: number, opts: WithCi): Estimate;
export function demographicParityDifference(predictions: Int32Array, groups: readonly string[], positiveClass: number, opts?: GroupMetricOptions): number | Estimate;
export function demographicParityDifference(
  predictions: Int32Array,
  groups: readonly string[],
  positiveClass: number,
  opts: GroupMetricOptions = {},
): number | Estimate {
  const fn = "demographicParityDifference";
  const pred = checkClassIds(fn, "predictions", predictions);
  const c = checkClassIndex(fn, "positiveClass", positiveClass);
  const gi = indexGroups(fn, groups, pred.length, opts.groupNames);
  return finish(pred.length, gi, (idx) => spread(groupMeans(idx, gi, (i) => (pred[i] === c ? 1 : 0))), opts);
}

/** True- and false-positive rates of each group for `positiveClass`, and their gaps. */
export interface EqualizedOddsRates {
  tpr: Record<string, number>;
  fpr: Record<string, number>;
  tprGap: number;
  fprGap: number;
}

function checkEoInputs(fn: string, predictions: Int32Array, labels: Int32Array, groups: readonly string[], positiveClass: number, groupNames?: readonly string[]) {
  const pred = checkClassIds(fn, "predictions", predictions);
  const lab = checkClassIds(fn, "labels", labels, pred.length);
  const c = checkClassIndex(fn, "positiveClass", positiveClass);
  const gi = indexGroups(fn, groups, pred.length, groupNames);
  const pos = new Int32Array(gi.names.length);
  const neg = new Int32Array(gi.names.length);
  for (let i = 0; i < pred.length; i++) (lab[i] === c ? pos : neg)[gi.ids[i]]++;
  gi.names.forEach((g, k) => {
    if (pos[k] === 0) throw new Error(`${fn}: group ${JSON.stringify(g)} has no item with label ${c} (positiveClass), so its true-positive rate is undefined`);
    if (neg[k] === 0) throw new Error(`${fn}: group ${JSON.stringify(g)} has no item with a label other than ${c} (positiveClass), so its false-positive rate is undefined`);
  });
  return { pred, lab, c, gi };
}

export function equalizedOddsRates(predictions: Int32Array, labels: Int32Array, groups: readonly string[], positiveClass: number, opts: { groupNames?: readonly string[] } = {}): EqualizedOddsRates {
  const { pred, lab, c, gi } = checkEoInputs("equalizedOddsRates", predictions, labels, groups, positiveClass, opts.groupNames);
  const all = allIndices(pred.length);
  const tpr = groupMeans(all, gi, (i) => (pred[i] === c ? 1 : 0), (i) => lab[i] === c);
  const fpr = groupMeans(all, gi, (i) => (pred[i] === c ? 1 : 0), (i) => lab[i] !== c);
  return {
    tpr: Object.fromEntries(gi.names.map((g, k) => [g, tpr[k]])),
    fpr: Object.fromEntries(gi.names.map((g, k) => [g, fpr[k]])),
    tprGap: spread(tpr),
    fprGap: spread(fpr),
  };
}

/** max(TPR gap, FPR gap) over groups for `positiveClass`. */
export function equalizedOddsGap(predictions: Int32Array, labels: Int32Array, groups: readonly string[], positiveClass: number): number;
export function equalizedOddsGap(predictions: Int32Array, labels: Int32Array, groups: readonly string[], positiveClass: number, opts: WithCi): Estimate;
export function equalizedOddsGap(predictions: Int32Array, labels: Int32Array, groups: readonly string[], positiveClass: number, opts?: GroupMetricOptions): number | Estimate;
export function equalizedOddsGap(
  predictions: Int32Array,
  labels: Int32Array,
  groups: readonly string[],
  positiveClass: number,
  opts: GroupMetricOptions = {},
): number | Estimate {
  const { pred, lab, c, gi } = checkEoInputs("equalizedOddsGap", predictions, labels, groups, positiveClass, opts.groupNames);
  const stat = (idx: Int32Array) => {
    const tpr = groupMeans(idx, gi, (i) => (pred[i] === c ? 1 : 0), (i) => lab[i] === c);
    const fpr = groupMeans(idx, gi, (i) => (pred[i] === c ? 1 : 0), (i) => lab[i] !== c);
    return Math.max(spread(tpr), spread(fpr));
  };
  // Stratify by (group, is-positive) so no resample loses a group's positives.
  if (opts.bootstrap === undefined) return stat(allIndices(pred.length));
  const strata = Array.from(gi.ids, (g, i) => 2 * g + (lab[i] === c ? 1 : 0));
  return bootstrapCi(pred.length, stat, { resamples: opts.bootstrap, seed: opts.seed ?? 0, strata });
}

/** Share of each group whose prediction is in `classes` (e.g. the distractor classes of the harmful-label probe). */
export function assignmentRates(predictions: Int32Array, groups: readonly string[], classes: readonly number[], opts: { groupNames?: readonly string[] } = {}): Record<string, number> {
  const fn = "assignmentRates";
  const pred = checkClassIds(fn, "predictions", predictions);
  if (!Array.isArray(classes) || classes.length === 0) throw new Error(`${fn}: classes must be a non-empty array of class ids`);
  classes.forEach((c, i) => checkClassIndex(fn, `classes[${i}]`, c));
  const gi = indexGroups(fn, groups, pred.length, opts.groupNames);
  const set = new Set(classes);
  const r = groupMeans(allIndices(pred.length), gi, (i) => (set.has(pred[i]) ? 1 : 0));
  return Object.fromEntries(gi.names.map((g, k) => [g, r[k]]));
}

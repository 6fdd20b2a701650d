/**
 * The fairness audit of a CLIP model on the labelled images of any dataset, each in a group read
 * from the source, listed, or planted (./groups.ts): every probe of the issue, each with a
 * bootstrap 95% interval and a permutation p-value, returned as plain data (`fairnessSection`
 * turns it into a report section). Images are read through the data pipeline at the model's input
 * size and encoded by the batched encoder (./audit_images.ts); class names and templates default
 * to the dataset's, else CLIP's "a photo of a {}.".
 *
 * Probes (definitions: ./group_metrics.ts, ./metrics.ts, ./weat.ts):
 * - zero-shot accuracy per group and the gap focus - rest;
 * - demographic parity difference and equalised-odds gap of the zero-shot predictions for
 *   `positiveClass`, and the signed false-positive-rate gap focus - rest;
 * - retrieval skew for `retrievalQueries` (default: a prompt per class): MaxSkew@k and NDKL@k (Geyik et al. 2019,
 *   https://arxiv.org/abs/1905.01989; Berg et al. 2022, https://arxiv.org/abs/2203.11933),
 *   averaged over the queries, against the groups' shares among the images;
 * - WEAT association (Caliskan et al. 2017, https://arxiv.org/abs/1608.07187) between the focus
 *   group's images (X), the other images (Y) and attribute prompt sets A, B;
 * - harmful labels (CLIP §7, https://arxiv.org/abs/2103.00020): distractor classes are added to
 *   the label set (./distractors.ts: a label set such as the paper's crime-related and non-human
 *   ones, and/or a suspect word's); the rate at which each group is assigned to one of them, and
 *   the gap (per category too when there are several);
 * - the FairFace-style table (./group_table.ts): per attribute (the groups, plus any `attributes`
 *   columns), each group's zero-shot accuracy and harmful-label rates with intervals, and their
 *   spread over groups with a p-value;
 * - with `ranking`: Berg et al. 2022's MaxSkew@k and NDKL over neutral queries, per attribute,
 *   against equal opportunity and demographic parity (./ranking_bias.ts).
 * Signed probes (focus - rest) get two-sided p-values and should have intervals that cover 0 when
 * there is no bias; unsigned ones (>= 0 by construction) get one-sided p-values and the mean of the
 * permutation null (what no bias scores at this sample size). For every p-value the group labels
 * are shuffled among images of the same class (by default), so they are valid when the groups were
 * assigned to images at random within classes, and a chance imbalance of classes between the
 * groups is not read as bias.
 * With `spuriousDirections`, every text embedding is projection-debiased first (./debias.ts).
 */
import * as tf from "@tensorflow/tfjs";
import type { Dataset, SkippedItem } from "../../data/dataset";
import type { EncodeProgress } from "../../eval/encode";
import { fillPrompt } from "../../text/fill";
import type { ImageTransform } from "../../image/transform";
import { bootstrapCi, bootstrapMean } from "../../eval/bootstrap";
import type { Estimate } from "../../eval/intervals";
import { permutationTest } from "./permutation";
import { checkEmbeddings, checkGroups, membersOf } from "./checks";
import { checkPositiveInt, checkSeed } from "../../util/checks";
import { demographicParityDifference, equalizedOddsGap } from "./group_metrics";
import { maxSkewAtK, ndkl } from "./metrics";
import { associationScores, weatFromScores } from "./weat";
import { readAuditImages } from "./audit_images";
import { distractorCategories, normalizeDistractors, type Distractor } from "./distractors";
import { groupTable, type AttributeTable } from "./group_table";
import type { GroupSource } from "./groups";
import { checkQueries, checkQueriesFit } from "./queries";
import { rankingBias, type RankingBiasOptions, type RankingBiasResult } from "./ranking_bias";
import { FRAMED } from "./planted_bias";
import { accuracyEstimate, auditPrompts, auditTransform, checkItemLabels, classEmbeddings, featureTensor, predictClasses, textEmbeddings } from "./zero_shot";
import type { AuditModel, Tokenizer } from "./zero_shot";

export type { AuditModel };
export { classEmbeddings, zeroShotAccuracy } from "./zero_shot";

/** Two prompt sets for a WEAT test: does the focus group sit closer to A (than to B) than the rest? */
export interface AttributeSets {
  name: string;
  a: readonly string[];
  b: readonly string[];
}

/** Berg et al.'s ranking probe (./ranking_bias.ts) inside the audit. */
export interface RankingProbeOptions extends Omit<RankingBiasOptions, "permuteStrata" | "alpha" | "seed" | "bootstrap" | "permutations"> {
  /** Neutral queries (e.g. `loadQuerySet("neutral").queries`). */
  queries: readonly string[];
  /** Bootstrap resamples and permutations; default the audit's. */
  bootstrap?: number;
  permutations?: number;
  /** "none" (default): shuffle the group labels across all images (Berg et al. measure representation, whatever its cause); "class": within classes. */
  permuteWithin?: "none" | "class";
}

export interface FairnessAuditOptions {
  /** Class names as they go into the prompts, in label order; default the dataset's `classNames`. */
  classNames?: readonly string[];
  /** Prompt templates with one "{}" (ensembled per class, CLIP §3.1.4); default the dataset's, else "a photo of a {}.". */
  templates?: readonly string[];
  /** The group compared with all the others in the signed gaps and WEAT (X = this group); default "framed" if present, else the first group by name. */
  focusGroup?: string;
  /** The class whose prediction rate the parity and odds probes compare. */
  positiveClass: number;
  /**
   * Distractor classes for the harmful-label probe (filled into the templates like classes): bare
   * labels (category "distractor") or `{label, category}` (./distractors.ts); none: probe skipped.
   */
  distractors?: readonly (string | Distractor)[];
  /** The name of the main grouping in the tables (e.g. its column, "frame" for planted groups); default "group". */
  attributeName?: string;
  /** More group columns of the source (`ds.groupKeys`), measured by the per-attribute table and the ranking probe beside the main groups. */
  attributes?: readonly string[];
  /** Berg et al.'s ranking measures over neutral queries; absent: not run. */
  ranking?: RankingProbeOptions;
  /** WEAT attribute prompt sets; none: probe skipped. */
  associations?: readonly AttributeSets[];
  /** Queries of the retrieval-skew probes (`maxSkew`, `ndkl`); default the first template with each class name. Berg et al.'s neutral-query measures are `ranking`. */
  retrievalQueries?: readonly string[];
  /** Top k of the retrieval probes (default 100, at most the number of images). */
  k?: number;
  /** Bootstrap resamples (default 1000). */
  bootstrap?: number;
  /** Permutations of the group labels for the group and retrieval probes (default 2000). */
  permutations?: number;
  /** Re-partitions for the WEAT p-values (default 10,000). */
  weatPermutations?: number;
  /**
   * "class" (default): p-values shuffle the group labels only among images of the same true class
   * and the bootstrap resamples within (group, class) cells, so a chance difference in the groups'
   * class mix is not read as bias (the null: no group effect given the class). "none": shuffle
   * across all images (the null: the groups are exchangeable outright).
   */
  permuteWithin?: "class" | "none";
  /** Significance level for `flagged` (default 0.05). */
  alpha?: number;
  seed?: number;
  /** Spurious directions [K, D]: project them out of every text embedding (Chuang et al. 2023). Not disposed. */
  spuriousDirections?: tf.Tensor2D;
  tokenizer?: Tokenizer;
  /** Images per encoder call (default: from the model config and the encoder's memory budget). */
  batchSize?: number;
  /** Items of the dataset audited, from the start (default all). */
  limit?: number;
  /** Go on past unreadable images (each reported through onSkip, counted in `skipped`). */
  skipBadImages?: boolean;
  onSkip?: (item: SkippedItem) => void;
  onProgress?: (p: EncodeProgress) => void;
  /** Default: the model's preprocessing (`modelTransform` of its config). */
  transform?: ImageTransform;
}

export interface ProbeResult {
  key: string;
  label: string;
  /** "signed": focus - rest, 0 without bias; "unsigned": >= 0, compare with nullMean. */
  kind: "signed" | "unsigned";
  value: number;
  ci95: [number, number];
  pValue: number;
  /** Mean of the statistic under shuffled group labels (unsigned probes). */
  nullMean?: number;
  flagged: boolean;
}

export interface GroupRow {
  group: string;
  count: number;
  accuracy: Estimate;
  /** P(prediction = positiveClass | group). */
  positiveRate: Estimate;
  tpr: number;
  fpr: number;
  /** Share assigned to a distractor class (harmful-label probe). */
  harmfulRate?: Estimate;
}

export interface FairnessAuditResult {
  n: number;
  /** The name of the main grouping (`attributeName`, default "group"). */
  attribute: string;
  /** Items left out under skipBadImages. */
  skipped: number;
  focusGroup: string;
  positiveClass: number;
  positiveClassName: string;
  alpha: number;
  debiased: boolean;
  /** Zero-shot top-1 over all the images. */
  accuracy: Estimate;
  /** Planted groups: zero-shot top-1 of the same images without the frame. */
  cleanAccuracy?: Estimate;
  groups: GroupRow[];
  probes: ProbeResult[];
  /** The FairFace-style table for each attribute, the main grouping first. */
  attributeTables: AttributeTable[];
  /** Berg et al.'s measures (with the `ranking` option). */
  ranking?: RankingBiasResult;
  settings: {
    k: number;
    bootstrap: number;
    permutations: number;
    weatPermutations: number;
    permuteWithin: "class" | "none";
    seed: number;
    distractors: string[];
    /** The category of each distractor. */
    distractorCategories: string[];
    attributes: string[];
    associations: string[];
    queries: string[];
  };
}

const KEYS = [
  "classNames", "templates", "focusGroup", "positiveClass", "distractors", "attributeName", "attributes", "ranking", "associations", "retrievalQueries", "k",
  "bootstrap", "permutations", "weatPermutations", "permuteWithin", "alpha", "seed", "spuriousDirections", "tokenizer", "batchSize",
  "limit", "skipBadImages", "onSkip", "onProgress", "transform",
];

/**
 * Runs every probe on the labelled items of `data` (read through the data pipeline at the model's
 * input size, at most `limit`), each in the group `source` gives it (./groups.ts).
 */
export async function runFairnessAudit(model: AuditModel, data: Dataset, source: GroupSource, opts: FairnessAuditOptions): Promise<FairnessAuditResult> {
  const fn = "runFairnessAudit";
  if (opts === null || typeof opts !== "object") throw new TypeError(`${fn}: options must be an object`);
  for (const key of Object.keys(opts)) if (!KEYS.includes(key)) throw new RangeError(`${fn}: unknown option ${JSON.stringify(key)} (valid: ${KEYS.join(", ")})`);
  if (!data || typeof (data as Dataset).items !== "function") throw new TypeError(`${fn}: data must be a Dataset (openDataset(spec))`);
  const { classNames, templates } = auditPrompts(fn, data, opts);
  const C = classNames.length;
  const c = opts.positiveClass;
  if (!Number.isInteger(c) || c < 0 || c >= C) throw new RangeError(`${fn}: positiveClass must be an integer in [0, ${C - 1}], got ${String(c)}`);
  if (opts.k !== undefined) checkPositiveInt(fn, "k", opts.k);
  if (opts.limit !== undefined) checkPositiveInt(fn, "limit", opts.limit);
  const B = checkPositiveInt(fn, "bootstrap", opts.bootstrap ?? 1000);
  const M = checkPositiveInt(fn, "permutations", opts.permutations ?? 2000);
  const weatM = checkPositiveInt(fn, "weatPermutations", opts.weatPermutations ?? 10000);
  const seed = checkSeed(fn, opts.seed ?? 0);
  const permuteWithin = opts.permuteWithin ?? "class";
  if (permuteWithin !== "class" && permuteWithin !== "none") throw new RangeError(`${fn}: permuteWithin must be "class" or "none", got ${JSON.stringify(permuteWithin)}`);
  const alpha = opts.alpha ?? 0.05;
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`${fn}: alpha must be in (0, 1), got ${String(alpha)}`);
  const distractors = normalizeDistractors(fn, opts.distractors);
  const attributes = [...(opts.attributes ?? [])];
  attributes.forEach((a, i) => {
    if (typeof a !== "string" || a === "") throw new TypeError(`${fn}: attributes[${i}] must be a group column name, got ${JSON.stringify(a)}`);
  });
  const attribute = opts.attributeName ?? "group";
  if (typeof attribute !== "string" || attribute === "") throw new TypeError(`${fn}: attributeName must be a non-empty string, got ${JSON.stringify(attribute)}`);
  if (attributes.includes(attribute)) throw new Error(`${fn}: attributes lists ${JSON.stringify(attribute)}, which is already the main grouping`);
  const ranking = opts.ranking;
  let rankingQueries: string[] = [];
  if (ranking !== undefined) {
    if (ranking === null || typeof ranking !== "object") throw new TypeError(`${fn}: ranking must be an object {queries, k, ...}`);
    rankingQueries = checkQueries(ranking.queries, `${fn}: ranking.queries`);
    if (!opts.tokenizer) checkQueriesFit(rankingQueries, model.config.text_cfg.context_length, `${fn}: ranking.queries`);
    if (ranking.permuteWithin !== undefined && ranking.permuteWithin !== "none" && ranking.permuteWithin !== "class") {
      throw new RangeError(`${fn}: ranking.permuteWithin must be "none" or "class", got ${JSON.stringify(ranking.permuteWithin)}`);
    }
  }
  const associations = [...(opts.associations ?? [])];
  associations.forEach((s, i) => {
    if (!s || typeof s.name !== "string" || !Array.isArray(s.a) || !Array.isArray(s.b) || s.a.length === 0 || s.b.length === 0) {
      throw new Error(`${fn}: associations[${i}] must be {name, a, b} with non-empty prompt lists a and b`);
    }
  });
  const queries = [...(opts.retrievalQueries ?? classNames.map((name) => fillPrompt(templates[0], name)))];
  if (queries.length === 0) throw new Error(`${fn}: retrievalQueries must not be empty`);

  // ---- The images: read, grouped and encoded (./audit_images.ts).
  const images = await readAuditImages(fn, model, data, source, C, {
    transform: opts.transform ?? auditTransform(model),
    limit: opts.limit,
    skipBadImages: opts.skipBadImages,
    onSkip: opts.onSkip,
    batchSize: opts.batchSize,
    onProgress: opts.onProgress,
    attributes,
  });
  const n = images.features.n;
  const labels = checkItemLabels(fn, images.features, C);
  const groups = images.groups;
  const groupNames = checkGroups(fn, "groups", groups, n);
  const focus = opts.focusGroup ?? (groupNames.includes(FRAMED) ? FRAMED : groupNames[0]);
  if (!groupNames.includes(focus)) throw new Error(`${fn}: focusGroup ${JSON.stringify(focus)} is not among the groups (${groupNames.join(", ")})`);
  const members = membersOf(fn, "groups", groups, groupNames);
  const k = opts.k ?? Math.min(100, n);
  if (k > n) throw new RangeError(`${fn}: k = ${k} is larger than the number of images (${n})`);
  const text = { spuriousDirections: opts.spuriousDirections, tokenizer: opts.tokenizer };

  // ---- Embeddings (the only tensor work); everything after is JS over numbers.
  let pred: Int32Array;
  let cleanPred: Int32Array | undefined;
  let harmfulPred: Int32Array | undefined;
  let querySims: Float32Array;
  let rankingSims: Float32Array | undefined;
  const weatScores: Float64Array[] = [];
  const owned: tf.Tensor[] = []; // freed at the end, whatever happens
  const keep = <T extends tf.Tensor>(t: T): T => (owned.push(t), t);
  try {
    const raw = keep(featureTensor(images.features)); // [N, D]
    checkEmbeddings(fn, "the model's image features", raw);
    const feats = keep(tf.tidy(() => tf.div(raw, tf.norm(raw, 2, 1, true)) as tf.Tensor2D)); // [N, D]
    const w = keep(classEmbeddings(model, classNames, templates, text)); // [C, D]
    checkEmbeddings(fn, "the model's class text embeddings", w);
    const dW = distractors.length ? keep(classEmbeddings(model, distractors.map((d) => d.label), templates, text)) : undefined; // [Dn, D]
    const q = keep(textEmbeddings(model, queries, text)); // [Q, D]
    pred = predictClasses(feats, w);
    if (images.clean) cleanPred = predictClasses(keep(featureTensor(images.clean)), w);
    if (dW) harmfulPred = predictClasses(feats, keep(tf.concat([w, dW], 0) as tf.Tensor2D)); // over [C + Dn] classes
    querySims = tf.tidy(() => tf.matMul(q, feats, false, true).dataSync() as Float32Array); // [Q, N]
    if (rankingQueries.length) {
      const rq = keep(textEmbeddings(model, rankingQueries, text)); // [Qr, D]
      rankingSims = tf.tidy(() => tf.matMul(rq, feats, false, true).dataSync() as Float32Array); // [Qr, N]
    }
    for (const s of associations) {
      const a = keep(textEmbeddings(model, s.a, text)); // [Na, D]
      const b = keep(textEmbeddings(model, s.b, text)); // [Nb, D]
      weatScores.push(associationScores(feats, a, b)); // [N]
    }
  } finally {
    tf.dispose(owned);
  }

  const byClass = permuteWithin === "class";
  const strata = Array.from(groups, (g, i) => (byClass ? `${g}|${labels[i]}` : g));
  const permStrata = byClass ? Array.from(labels) : undefined;
  const isFocus = (gs: readonly string[], i: number) => gs[i] === focus;
  /** mean over focus of hit - mean over the rest, over items idx (with group labels gs). */
  const gap = (gs: readonly string[], idx: ArrayLike<number>, hit: (i: number) => number, include?: (i: number) => boolean): number => {
    let sf = 0, nf = 0, sr = 0, nr = 0; // prettier-ignore
    for (let j = 0; j < idx.length; j++) {
      const i = idx[j];
      if (include && !include(i)) continue;
      if (isFocus(gs, i)) { sf += hit(i); nf++; } else { sr += hit(i); nr++; } // prettier-ignore
    }
    return nf && nr ? sf / nf - sr / nr : NaN;
  };
  const all = Int32Array.from({ length: n }, (_, i) => i);
  let probeSeed = seed;
  const signedProbe = (key: string, label: string, hit: (i: number) => number, include?: (i: number) => boolean, bootStrata = strata): ProbeResult => {
    const s = ++probeSeed;
    const est = bootstrapCi(n, (idx) => gap(groups, idx, hit, include), { resamples: B, seed: s, strata: bootStrata });
    const perm = permutationTest(groups, (gs) => gap(gs, all, hit, include), { permutations: M, seed: s + 1000, alternative: "two-sided", strata: permStrata });
    return { key, label, kind: "signed", value: est.value, ci95: est.ci95, pValue: perm.pValue, flagged: perm.pValue < alpha };
  };
  const unsignedProbe = (key: string, label: string, stat: (gs: readonly string[], idx: Int32Array) => number, bootStrata = strata): ProbeResult => {
    const s = ++probeSeed;
    const est = bootstrapCi(n, (idx) => stat(groups, idx), { resamples: B, seed: s, strata: bootStrata });
    const perm = permutationTest(groups, (gs) => stat(gs, all), { permutations: M, seed: s + 1000, alternative: "greater", strata: permStrata });
    return { key, label, kind: "unsigned", value: est.value, ci95: est.ci95, pValue: perm.pValue, nullMean: perm.nullMean, flagged: perm.pValue < alpha };
  };
  const pick = <T,>(arr: ArrayLike<T>, idx: Int32Array): T[] => Array.from(idx, (i) => arr[i]);
  const predIdx = (idx: Int32Array) => Int32Array.from(idx, (i) => pred[i]);
  const labIdx = (idx: Int32Array) => Int32Array.from(idx, (i) => labels[i]);
  const posStrata = byClass ? strata : Array.from(groups, (g, i) => `${g}|${labels[i] === c ? 1 : 0}`);
  const className = classNames[c];

  const probes: ProbeResult[] = [];
  probes.push(signedProbe("accuracyGap", `zero-shot accuracy gap (${focus} - rest)`, (i) => (pred[i] === labels[i] ? 1 : 0)));
  probes.push(signedProbe("positiveRateGap", `P(predicted ${className}) gap (${focus} - rest)`, (i) => (pred[i] === c ? 1 : 0)));
  probes.push(
    unsignedProbe("demographicParity", `demographic parity difference (${className})`, (gs, idx) =>
      demographicParityDifference(predIdx(idx), pick(gs, idx), c, { groupNames: groupNames }) as number,
    ),
  );
  probes.push(
    unsignedProbe(
      "equalizedOdds",
      `equalised-odds gap (${className})`,
      (gs, idx) => {
        try {
          return equalizedOddsGap(predIdx(idx), labIdx(idx), pick(gs, idx), c, { groupNames: groupNames }) as number;
        } catch {
          return NaN; // a shuffle that leaves a group without positives or negatives
        }
      },
      posStrata,
    ),
  );
  probes.push(signedProbe("fprGap", `false-positive rate gap for ${className} (${focus} - rest)`, (i) => (pred[i] === c ? 1 : 0), (i) => labels[i] !== c, posStrata));

  // ---- Retrieval skew: each query's images in rank order (ties by index).
  const Q = queries.length;
  const order = Array.from({ length: Q }, (_, qi) => {
    const row = querySims.subarray(qi * n, (qi + 1) * n);
    return all.slice().sort((a, b) => row[b] - row[a] || a - b);
  });
  const desired = Object.fromEntries(groupNames.map((g, gi) => [g, members[gi].length / n]));
  /** Mean over queries of metric(top-k groups); idx is a (bootstrap) multiset of images. */
  const skewStat = (metric: typeof maxSkewAtK) => (gs: readonly string[], idx: Int32Array): number => {
    let mult: Int32Array | undefined;
    if (idx !== all) {
      mult = new Int32Array(n);
      for (let j = 0; j < idx.length; j++) mult[idx[j]]++;
    }
    let total = 0;
    const top: string[] = [];
    for (const ord of order) {
      top.length = 0;
      for (let j = 0; j < n && top.length < k; j++) {
        const i = ord[j];
        const times = mult ? mult[i] : 1;
        for (let t = 0; t < times && top.length < k; t++) top.push(gs[i]);
      }
      total += metric(top, k, desired);
    }
    return total / Q;
  };
  const qWhat = opts.retrievalQueries ? "retrieval queries" : "class-name queries";
  probes.push(unsignedProbe("maxSkew", `MaxSkew@${k} vs the groups' shares (mean over ${Q} ${qWhat})`, skewStat(maxSkewAtK)));
  probes.push(unsignedProbe("ndkl", `NDKL@${k} vs the groups' shares (mean over ${Q} ${qWhat})`, skewStat(ndkl)));

  // ---- WEAT: X = focus images, Y = the rest.
  associations.forEach((s, ai) => {
    const scores = weatScores[ai];
    const fIdx = members[groupNames.indexOf(focus)];
    const rest = all.filter((i) => groups[i] !== focus);
    const r = weatFromScores(Float64Array.from(fIdx, (i) => scores[i]), Float64Array.from(rest, (i) => scores[i]), {
      permutations: weatM,
      seed: ++probeSeed,
      bootstrap: B,
      strata: byClass ? [...Array.from(fIdx, (i) => labels[i]), ...Array.from(rest, (i) => labels[i])] : undefined,
    });
    probes.push({ key: `weat:${s.name}`, label: `WEAT effect size: ${s.name}`, kind: "signed", value: r.effectSize, ci95: r.ci95!, pValue: r.pValue, flagged: r.pValue < alpha });
  });

  // ---- Harmful labels.
  const categories = distractorCategories(distractors);
  if (harmfulPred) {
    const hp = harmfulPred;
    probes.push(signedProbe("harmfulGap", `harmful-label rate gap (${focus} - rest)`, (i) => (hp[i] >= C ? 1 : 0)));
    if (categories.length > 1) {
      for (const cat of categories) {
        probes.push(signedProbe(`harmfulGap:${cat}`, `harmful-label rate gap, ${cat} (${focus} - rest)`, (i) => (hp[i] >= C && distractors[hp[i] - C].category === cat ? 1 : 0)));
      }
    }
  }

  // ---- Per-group table.
  const groupRows: GroupRow[] = groupNames.map((g, gi) => {
    const idx = members[gi];
    const s = seed + 10000 + gi;
    const pos = Array.from(idx).filter((i) => labels[i] === c);
    const neg = Array.from(idx).filter((i) => labels[i] !== c);
    const rate = (list: number[]) => (list.length ? list.filter((i) => pred[i] === c).length / list.length : NaN);
    const row: GroupRow = {
      group: g,
      count: idx.length,
      accuracy: bootstrapMean(Array.from(idx, (i) => (pred[i] === labels[i] ? 1 : 0)), { resamples: B, seed: s }),
      positiveRate: bootstrapMean(Array.from(idx, (i) => (pred[i] === c ? 1 : 0)), { resamples: B, seed: s + 100 }),
      tpr: rate(pos),
      fpr: rate(neg),
    };
    if (harmfulPred) row.harmfulRate = bootstrapMean(Array.from(idx, (i) => (harmfulPred![i] >= C ? 1 : 0)), { resamples: B, seed: s + 200 });
    return row;
  });

  // ---- The FairFace-style table, per attribute (the main grouping first).
  const attributeGroups: { name: string; groups: readonly string[] }[] = [{ name: attribute, groups }, ...attributes.map((a) => ({ name: a, groups: images.attributes[a] }))];
  const attributeTables = attributeGroups.map((a, ai) =>
    groupTable({
      attribute: a.name,
      groups: a.groups,
      pred,
      labels,
      harmfulPred,
      numClasses: C,
      distractorCategory: harmfulPred ? distractors.map((d) => d.category) : undefined,
      bootstrap: B,
      permutations: M,
      strata: permStrata,
      alpha,
      seed: seed + 30000 + 100 * ai,
    }),
  );

  // ---- Berg et al.'s ranking measures over the neutral queries.
  let rankingResult: RankingBiasResult | undefined;
  if (ranking && rankingSims) {
    rankingResult = rankingBias(rankingSims, rankingQueries, attributeGroups, {
      k: ranking.k,
      bootstrap: ranking.bootstrap ?? B,
      resample: ranking.resample,
      permutations: ranking.permutations ?? M,
      permuteStrata: ranking.permuteWithin === "class" ? Array.from(labels) : undefined,
      alpha,
      seed: seed + 40000,
    });
  }

  const result: FairnessAuditResult = {
    n,
    attribute,
    skipped: images.skipped,
    focusGroup: focus,
    positiveClass: c,
    positiveClassName: className,
    alpha,
    debiased: opts.spuriousDirections !== undefined,
    accuracy: bootstrapMean(Array.from(all, (i) => (pred[i] === labels[i] ? 1 : 0)), { resamples: B, seed: seed + 20000 }),
    groups: groupRows,
    probes,
    attributeTables,
    settings: {
      k,
      bootstrap: B,
      permutations: M,
      weatPermutations: weatM,
      permuteWithin,
      seed,
      distractors: distractors.map((d) => d.label),
      distractorCategories: distractors.map((d) => d.category),
      attributes,
      associations: associations.map((s) => s.name),
      queries,
    },
  };
  if (rankingResult) result.ranking = rankingResult;
  if (cleanPred) result.cleanAccuracy = accuracyEstimate(cleanPred, labels, B, seed);
  return result;
}

/**
 * Remedies for a group bias in CLIP training data, to be measured before and after with the same
 * probes:
 * - balanced re-sampling: within every stratum (by default each label), each group gets the same
 *   share, drawn with replacement, so the group says nothing about the label (as in group-balanced
 *   sampling, Idrissi et al. 2022, https://arxiv.org/abs/2110.14503);
 * - a fairness regulariser for `trainClip`'s `regularizer` hook: within each class of a batch,
 *   how far each group's mean logits against the batch's captions sit from the class's mean
 *   logits (squared, in logit units), so the logits cannot depend on the group beyond the class
 *   (a batch version of conditional mean matching, cf. equalised odds, Hardt et al. 2016,
 *   https://arxiv.org/abs/1610.02413); or the same on the whole feature vector;
 * - projection debiasing of the text embeddings (Chuang et al. 2023,
 *   https://arxiv.org/abs/2302.00070): `projectionDebias` in ./debias.ts, with the spurious
 *   directions taken from prompt pairs by `spuriousDirectionsFromPrompts`.
 */
import * as tf from "@tensorflow/tfjs";
import type { LabelledImages } from "../../data/fashion_mnist";
import type { Batch } from "../../data/batcher";
import { Random } from "../../util/random";
import { checkClassIds, checkGroups } from "./checks";
import { checkSeed } from "../../util/checks";

export interface BalancedSample {
  data: LabelledImages;
  groups: string[];
  /** Index in the original data of every drawn image. */
  indices: Int32Array;
}

/**
 * A re-sampled copy of `data` (same size up to rounding) in which every stratum holds equally many
 * images of each group. `strata`: a stratum id per image, default the labels. A stratum where some
 * group has no image cannot be balanced: an error names it.
 */
export function balancedResample(
  data: LabelledImages,
  groups: readonly string[],
  opts: { strata?: Int32Array | readonly number[]; seed?: number } = {},
): BalancedSample {
  const fn = "balancedResample";
  const groupNames = checkGroups(fn, "groups", groups, data.count);
  const strata = checkClassIds(fn, "strata", opts.strata ?? Int32Array.from(data.labels), data.count);
  const seed = checkSeed(fn, opts.seed ?? 0);
  const rng = new Random(seed);
  const byCell = new Map<number, number[][]>();
  for (let i = 0; i < data.count; i++) {
    let cell = byCell.get(strata[i]);
    if (!cell) byCell.set(strata[i], (cell = groupNames.map(() => [])));
    cell[groupNames.indexOf(groups[i])].push(i);
  }
  const picked: number[] = [];
  for (const s of [...byCell.keys()].sort((a, b) => a - b)) {
    const cell = byCell.get(s)!;
    const total = cell.reduce((n, l) => n + l.length, 0);
    cell.forEach((members, g) => {
      if (members.length === 0) {
        throw new Error(`${fn}: stratum ${s} has no image of group ${JSON.stringify(groupNames[g])}, so it cannot be balanced (groups: ${groupNames.join(", ")})`);
      }
    });
    const each = Math.round(total / groupNames.length);
    for (const members of cell) for (let j = 0; j < each; j++) picked.push(members[rng.int(members.length)]);
  }
  const indices = rng.shuffle(Int32Array.from(picked)) as Int32Array;
  const size = data.height * data.width;
  const images = new Uint8Array(indices.length * size);
  const labels = new Uint8Array(indices.length);
  indices.forEach((src, j) => {
    images.set(data.images.subarray(src * size, (src + 1) * size), j * size);
    labels[j] = data.labels[src];
  });
  return {
    data: { images, labels, count: indices.length, height: data.height, width: data.width, classNames: [...data.classNames] },
    groups: Array.from(indices, (i) => groups[i]),
    indices,
  };
}

export interface GroupInvarianceOptions {
  /** Group of every training image (indexed by `batch.indices`). */
  groups: readonly string[];
  /** True class of every training image (default: `batch.labels`). */
  classes?: Int32Array;
  /** Multiplier of the penalty (default 1). */
  weight?: number;
  /**
   * What must not depend on the group given the class:
   * - "logits" (default): the logits against the batch's captions, scale * d . n(t_j) for every
   *   caption j, where d is a cell's mean normalised image feature minus its class's;
   * - "features": the whole difference d (scale * ||d||).
   */
  target?: "logits" | "features";
  /**
   * The logit multiplier the differences are measured in (read every step, never differentiated);
   * default 1 / 0.07, CLIP's initial exp(logit_scale). Pass `() => Math.exp(model.logitScale...)` to
   * follow the model's own temperature, so the penalty stays in the units of the contrastive loss.
   */
  scale?: () => number;
}

/**
 * A `trainClip` regulariser. With d_{k,g} = scale * (mean_{i in k,g} n(f_i) - mean_{i in k} n(f_i))
 * for the (class k, group g) cells of the batch whose class is present in at least two groups
 * (f: image features, t: caption features):
 *   target "logits":   weight * mean_{k,g,j} (d_{k,g} . n(t_j))^2
 *   target "features": weight * mean_{k,g} ||d_{k,g}||^2
 * Zero when every class's groups have the same mean feature.
 */
export function groupInvarianceRegularizer(
  opts: GroupInvarianceOptions,
): (imageFeatures: tf.Tensor2D, textFeatures: tf.Tensor2D, batch: Batch) => tf.Scalar {
  const fn = "groupInvarianceRegularizer";
  const groupNames = checkGroups(fn, "groups", opts.groups);
  const gIndex = new Map(groupNames.map((g, i) => [g, i]));
  const gid = Int32Array.from(opts.groups, (g) => gIndex.get(g)!);
  const classes = opts.classes === undefined ? undefined : checkClassIds(fn, "classes", opts.classes, opts.groups.length);
  const weight = opts.weight ?? 1;
  const target = opts.target ?? "logits";
  if (target !== "logits" && target !== "features") throw new RangeError(`${fn}: target must be "logits" or "features", got ${JSON.stringify(target)}`);
  const scaleOf = opts.scale ?? (() => 1 / 0.07);
  if (!(typeof weight === "number" && weight >= 0 && Number.isFinite(weight))) throw new RangeError(`${fn}: weight must be a finite number >= 0, got ${String(weight)}`);
  return (imageFeatures, textFeatures, batch) => {
    const B = batch.size;
    const cls = Array.from(batch.indices, (idx, b) => (classes ? classes[idx] : batch.labels[b]));
    const grp = Array.from(batch.indices, (idx) => {
      if (idx < 0 || idx >= gid.length) throw new RangeError(`${fn}: batch index ${idx} outside the ${gid.length} groups given`);
      return gid[idx];
    });
    // One row per (class, group) cell of a class seen in >= 2 groups: cell mean minus class mean.
    const rows: Float32Array[] = [];
    for (const k of new Set(cls)) {
      const members = cls.flatMap((c, b) => (c === k ? [b] : []));
      const present = new Set(members.map((b) => grp[b]));
      if (present.size < 2) continue;
      for (const g of present) {
        const cell = members.filter((b) => grp[b] === g);
        const row = new Float32Array(B);
        for (const b of members) row[b] -= 1 / members.length;
        for (const b of cell) row[b] += 1 / cell.length;
        rows.push(row);
      }
    }
    if (rows.length === 0 || weight === 0) return tf.scalar(0);
    const scale = scaleOf();
    if (!(Number.isFinite(scale) && scale > 0)) throw new RangeError(`${fn}: scale() must return a finite number > 0, got ${scale}`);
    return tf.tidy(() => {
      const flat = new Float32Array(rows.length * B);
      rows.forEach((r, i) => flat.set(r, i * B));
      const m = tf.tensor2d(flat, [rows.length, B]); // [R, B]
      const unit = tf.div(imageFeatures, tf.norm(imageFeatures, 2, 1, true)); // [B, E]
      const diff = tf.mul(scale, tf.matMul(m, unit)); // [R, E] in logit units
      if (target === "features") return tf.mul(weight, tf.mean(tf.sum(tf.square(diff), 1))) as tf.Scalar; // []
      const text = tf.div(textFeatures, tf.norm(textFeatures, 2, 1, true)); // [B, E]
      const logitDiff = tf.matMul(diff, text, false, true); // [R, B]
      return tf.mul(weight, tf.mean(tf.square(logitDiff))) as tf.Scalar; // []
    });
  };
}

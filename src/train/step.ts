/**
 * One optimisation step of CLIP training: contrastive loss on a batch, gradients, global-norm
 * clipping, AdamW, then the temperature clamp open_clip applies (logit_scale in [0, ln 100]).
 * https://github.com/mlfoundations/open_clip/blob/main/src/open_clip_train/train.py
 *
 * With `accumFreq` K > 1, open_clip's gradient accumulation with feature caching: the batch is
 * split into K micro-batches; their features are computed once without a gradient tape; then
 * each micro-batch j is encoded again under the tape, the loss is taken over the whole batch with
 * the other micro-batches' cached features as constants, and the gradients of the K passes are
 * summed before one optimizer step. Every micro-batch so sees the whole batch as negatives, and
 * the summed gradient is the big batch's (up to float rounding), while only one micro-batch's
 * activations are alive at a time. Two details differ from open_clip's loop: logit_scale (and
 * SigLIP's bias) take their gradient from the first pass only (open_clip adds it K times), which
 * keeps the step equal to the big batch's; and the cached pass leaves BatchNorm's running
 * statistics untouched, so they are updated once per micro-batch, in its gradient pass.
 * Train-mode BatchNorm normalises each micro-batch with its own statistics, so a ModifiedResNet
 * step differs from the big batch's, as in open_clip; a ViT's does not.
 */
import * as tf from "@tensorflow/tfjs";
import { Clip } from "../model/clip";
import { clipLoss } from "../loss/info_nce";
import { sigLipLoss } from "../loss/siglip";
import { AdamW, AdamWConfig, AdamWParam, decaysWeight } from "./adamw";
import type { LossName } from "./options";
import type { LockPlan } from "./lock";

export const MAX_LOGIT_SCALE = Math.log(100);

const TOKEN_EMBEDDING = "token_embedding.weight";

export interface StepResult {
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
}

/**
 * An extra term added to the contrastive loss inside the gradient tape (e.g. a fairness penalty),
 * given the batch's unnormalised image and text features [B, E]. It must be differentiable in
 * them and must not dispose them.
 */
export type LossRegularizer = (imageFeatures: tf.Tensor2D, textFeatures: tf.Tensor2D) => tf.Scalar;

export class NonFiniteLossError extends Error {
  override name = "NonFiniteLossError";
}

/** The model's trainable weights (plus SigLIP's bias) under the optimizer. */
/** How the step encodes: which tensors are locked, recomputation of transformer blocks. */
export interface StepPlan {
  /** Locked tensors and BatchNorm layers (see lock.ts); default none. */
  lock?: LockPlan;
  /** Recompute each transformer block in the backward pass (less memory, ~one more forward). */
  gradCheckpointing?: boolean;
}

export class ClipOptimizer {
  readonly adamw: AdamW;
  /** The trained parameters: the model's trainable ones minus the locked ones (plus SigLIP's bias). */
  readonly params: AdamWParam[];
  /** SigLIP's learnable bias (initialised to -10, as in the paper); undefined for InfoNCE. */
  readonly logitBias: tf.Variable | undefined;
  readonly plan: StepPlan;

  constructor(
    readonly clip: Clip,
    readonly loss: LossName,
    config: Partial<AdamWConfig>,
    plan: StepPlan = {},
  ) {
    this.plan = plan;
    const frozen = plan.lock?.frozen;
    this.params = clip.specs
      .filter((s) => s.trainable && !frozen?.has(s.name))
      .map((s) => ({
        name: s.name,
        variable: clip.params.get(s.name)!,
        decay: decaysWeight(s.name, s.shape),
        // Exact row-sparse AdamW (see adamw.ts): a batch touches ~100 of the 49,408 rows.
        sparseRows: s.name === TOKEN_EMBEDDING,
      }));
    if (loss === "siglip") {
      this.logitBias = tf.variable(tf.scalar(-10), true);
      this.params.push({ name: "logit_bias", variable: this.logitBias, decay: false });
    }
    this.adamw = new AdamW(this.params, config, { fuse: true });
  }

  dispose(): void {
    this.adamw.dispose();
    this.logitBias?.dispose();
  }
}

/** Summed gradients of one step by parameter name (the caller disposes them), and the loss. */
export interface StepGradients {
  loss: number;
  grads: Record<string, tf.Tensor>;
}

/**
 * Runs one step on `pixels` [B, S, S, 3] and `tokens` [B, T]. Throws NonFiniteLossError (before
 * touching the weights) when the loss is NaN or infinite. `accumFreq` K > 1 accumulates over K
 * micro-batches with feature caching (see the file header); B must be at least K.
 */
export function trainStep(
  opt: ClipOptimizer,
  pixels: tf.Tensor4D,
  tokens: tf.Tensor2D,
  lr: number,
  gradClipNorm: number | null,
  regularizer?: LossRegularizer,
  accumFreq = 1,
): StepResult {
  const { clip } = opt;
  const { loss, grads: byName } = stepGradients(opt, pixels, tokens, regularizer, accumFreq);
  if (!Number.isFinite(loss)) {
    tf.dispose(Object.values(byName));
    throw new NonFiniteLossError(`loss is ${loss}`);
  }
  // Clipping and AdamW in one fused pass; only the batch's token ids can have a non-zero
  // embedding gradient, so the norm and the update read just those rows of it.
  let norm: number;
  try {
    norm = opt.adamw.clipAndApply(byName, lr, gradClipNorm ?? Infinity, { [TOKEN_EMBEDDING]: uniqueIds(tokens.dataSync() as Int32Array) });
  } finally {
    tf.dispose(Object.values(byName));
  }
  if (!Number.isFinite(norm)) throw new NonFiniteLossError(`loss is ${loss} but the gradient norm is ${norm}`);
  tf.tidy(() => clip.logitScale.assign(tf.clipByValue(clip.logitScale, 0, MAX_LOGIT_SCALE)));
  return { loss, gradNorm: norm };
}

/** The contrastive loss (plus the regulariser) of features [B, E]. */
function contrastiveLoss(opt: ClipOptimizer, img: tf.Tensor2D, txt: tf.Tensor2D, regularizer?: LossRegularizer): tf.Scalar {
  const scale = opt.clip.logitScale as tf.Scalar;
  const loss = opt.loss === "siglip" ? sigLipLoss(img, txt, scale, opt.logitBias as tf.Scalar) : clipLoss(img, txt, scale);
  return regularizer ? tf.add(loss, regularizer(img, txt)) : loss;
}

/**
 * The gradients of one step (not applied): one pass when `accumFreq` is 1, else the cached and
 * re-encoded micro-batches of the file header. A locked tower is encoded outside the tape.
 */
export function stepGradients(
  opt: ClipOptimizer,
  pixels: tf.Tensor4D,
  tokens: tf.Tensor2D,
  regularizer?: LossRegularizer,
  accumFreq = 1,
): StepGradients {
  const { clip, plan } = opt;
  const lock = plan.lock;
  const batch = pixels.shape[0];
  if (tokens.shape[0] !== batch) throw new Error(`trainStep: ${batch} images but ${tokens.shape[0]} captions`);
  if (!Number.isInteger(accumFreq) || accumFreq < 1 || accumFreq > batch) {
    throw new RangeError(`trainStep: accumFreq must be an integer in [1, ${batch}] (the batch), got ${accumFreq}`);
  }
  const vars = opt.params.map((p) => p.variable);
  const imageOpts = { training: true, frozenBatchNorm: lock?.frozenBatchNorm, gradCheckpointing: plan.gradCheckpointing };
  const textOpts = { gradCheckpointing: plan.gradCheckpointing };
  const encodeImage = (p: tf.Tensor4D) => clip.encodeImage(p, imageOpts); // [b, E]
  const encodeText = (t: tf.Tensor2D) => clip.encodeText(t, textOpts); // [b, E]
  const named = (grads: tf.NamedTensorMap): Record<string, tf.Tensor> => {
    const out: Record<string, tf.Tensor> = {};
    for (const p of opt.params) if (grads[p.variable.name]) out[p.name] = grads[p.variable.name];
    return out;
  };

  if (accumFreq === 1) {
    // A locked tower's features are constants: computed before the tape, nothing of it is kept.
    const imgConst = lock?.imageFrozen ? clip.encodeImage(pixels) : undefined; // [B, E]
    const txtConst = lock?.textFrozen ? clip.encodeText(tokens) : undefined; // [B, E]
    try {
      const { value, grads } = tf.variableGrads(
        () => contrastiveLoss(opt, imgConst ?? encodeImage(pixels), txtConst ?? encodeText(tokens), regularizer),
        vars,
      );
      const loss = value.dataSync()[0];
      value.dispose();
      return { loss, grads: named(grads) };
    } finally {
      tf.dispose([imgConst, txtConst].filter((t): t is tf.Tensor2D => t !== undefined));
    }
  }

  // Micro-batches: K near-equal slices of the batch.
  const bounds = Array.from({ length: accumFreq + 1 }, (_, j) => Math.round((j * batch) / accumFreq));
  const micro = bounds.slice(0, -1).map((start, j) => {
    const size = bounds[j + 1] - start;
    return {
      pixels: tf.slice(pixels, [start, 0, 0, 0], [size, -1, -1, -1]) as tf.Tensor4D, // [b, S, S, 3]
      tokens: tf.slice(tokens, [start, 0], [size, -1]) as tf.Tensor2D, // [b, T]
    };
  });
  const cachedImg: tf.Tensor2D[] = [];
  const cachedTxt: tf.Tensor2D[] = [];
  let total: Record<string, tf.Tensor> = {};
  try {
    // 1. Features of every micro-batch without a tape. Train-mode BatchNorm normalises as in the
    // gradient pass below, but its running statistics are put back: they move once per micro-batch.
    const restoreStats = lock?.imageFrozen ? () => undefined : snapshotBatchNormStats(clip, lock?.frozenBatchNorm);
    try {
      for (const m of micro) {
        cachedImg.push(lock?.imageFrozen ? clip.encodeImage(m.pixels) : encodeImage(m.pixels));
        cachedTxt.push(clip.encodeText(m.tokens));
      }
    } finally {
      restoreStats();
    }
    // 2. Each micro-batch again under the tape, the loss over the whole batch, gradients summed.
    let loss = NaN;
    const scalars = new Set([clip.logitScale.name, opt.logitBias?.name]);
    for (let j = 0; j < accumFreq; j++) {
      // With both towers locked only the temperature trains, and its gradient comes from pass 0.
      if (j > 0 && lock?.imageFrozen && lock?.textFrozen) break;
      const { value, grads } = tf.variableGrads(() => {
        const img = lock?.imageFrozen ? cachedImg[j] : encodeImage(micro[j].pixels); // [b_j, E]
        const txt = lock?.textFrozen ? cachedTxt[j] : encodeText(micro[j].tokens); // [b_j, E]
        const imgAll = tf.concat(cachedImg.map((c, i) => (i === j ? img : c)), 0) as tf.Tensor2D; // [B, E]
        const txtAll = tf.concat(cachedTxt.map((c, i) => (i === j ? txt : c)), 0) as tf.Tensor2D; // [B, E]
        return contrastiveLoss(opt, imgAll, txtAll, regularizer);
      }, vars);
      if (j === 0) loss = value.dataSync()[0];
      value.dispose();
      for (const [name, g] of Object.entries(grads)) {
        // The temperature enters every pass's loss directly: counted once, as in the big batch.
        if (j > 0 && scalars.has(name)) {
          g.dispose();
          continue;
        }
        const prev = total[name];
        total[name] = prev ? tf.add(prev, g) : g;
        if (prev) tf.dispose([prev, g]);
      }
    }
    const out = named(total);
    total = {};
    return { loss, grads: out };
  } finally {
    tf.dispose(Object.values(total));
    tf.dispose([...cachedImg, ...cachedTxt]);
    for (const m of micro) tf.dispose([m.pixels, m.tokens]);
  }
}

/** Copies of the running statistics of the BatchNorm layers that train (not `frozen`); the returned function puts them back. */
function snapshotBatchNormStats(clip: Clip, frozen?: ReadonlySet<string>): () => void {
  const saved: [tf.Variable, tf.Tensor][] = [];
  for (const s of clip.specs) {
    if (!/\.running_(mean|var)$/.test(s.name)) continue;
    if (frozen?.has(s.name.replace(/\.running_(mean|var)$/, ""))) continue;
    const v = clip.params.get(s.name)!;
    saved.push([v, tf.clone(v)]);
  }
  return () => {
    for (const [v, copy] of saved) {
      v.assign(copy);
      copy.dispose();
    }
  };
}

function uniqueIds(ids: Int32Array): number[] {
  return [...new Set(ids)];
}

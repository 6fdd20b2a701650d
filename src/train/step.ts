/**
 * One optimisation step of CLIP training: contrastive loss on a batch, gradients, global-norm
 * clipping, AdamW, then the temperature clamp open_clip applies (logit_scale in [0, ln 100]).
 * https://github.com/mlfoundations/open_clip/blob/main/src/open_clip_train/train.py
 */
import * as tf from "@tensorflow/tfjs";
import { Clip } from "../model/clip";
import { clipLoss } from "../loss/info_nce";
import { sigLipLoss } from "../loss/siglip";
import { AdamW, AdamWConfig, AdamWParam, decaysWeight } from "./adamw";
import type { LossName } from "./options";

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
export class ClipOptimizer {
  readonly adamw: AdamW;
  readonly params: AdamWParam[];
  /** SigLIP's learnable bias (initialised to -10, as in the paper); undefined for InfoNCE. */
  readonly logitBias: tf.Variable | undefined;

  constructor(
    readonly clip: Clip,
    readonly loss: LossName,
    config: Partial<AdamWConfig>,
  ) {
    this.params = clip.specs
      .filter((s) => s.trainable)
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

/**
 * Runs one step on `pixels` [B, S, S, 3] and `tokens` [B, T]. Throws NonFiniteLossError (before
 * touching the weights) when the loss is NaN or infinite.
 */
export function trainStep(
  opt: ClipOptimizer,
  pixels: tf.Tensor4D,
  tokens: tf.Tensor2D,
  lr: number,
  gradClipNorm: number | null,
  regularizer?: LossRegularizer,
): StepResult {
  const { clip } = opt;
  const vars = opt.params.map((p) => p.variable);
  const lossFn = (): tf.Scalar => {
    const img = clip.encodeImage(pixels, { training: true }); // [B, E]
    const txt = clip.encodeText(tokens); // [B, E]
    const scale = clip.logitScale as tf.Scalar;
    const loss = opt.loss === "siglip" ? sigLipLoss(img, txt, scale, opt.logitBias as tf.Scalar) : clipLoss(img, txt, scale);
    return regularizer ? tf.add(loss, regularizer(img, txt)) : loss;
  };
  const { value, grads } = tf.variableGrads(lossFn, vars);
  const loss = value.dataSync()[0];
  value.dispose();
  if (!Number.isFinite(loss)) {
    tf.dispose(Object.values(grads));
    throw new NonFiniteLossError(`loss is ${loss}`);
  }
  const byName: Record<string, tf.Tensor> = {};
  for (const p of opt.params) byName[p.name] = grads[p.variable.name];
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

function uniqueIds(ids: Int32Array): number[] {
  return [...new Set(ids)];
}

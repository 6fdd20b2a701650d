/**
 * Symmetric InfoNCE (contrastive) loss of CLIP.
 *
 * Radford et al. 2021, "Learning Transferable Visual Models From Natural Language Supervision",
 * https://arxiv.org/abs/2103.00020 (the pseudocode of Figure 3; `clip/model.py` of openai/CLIP).
 *
 *   n(x)   = x / ||x||_2            per row, no eps (as the reference: a zero row gives NaN)
 *   logits = exp(logitScale) * n(I) @ n(T)^T                       [N, N]
 *   loss   = (CE(logits, arange N) + CE(logits^T, arange N)) / 2   CE with a mean over rows
 *
 * `logitScale` is the log of the multiplier, the parameter CLIP trains. Everything is built from
 * differentiable tf ops, so `tf.grads` / `tf.variableGrads` give the gradients with respect to the
 * unnormalised features and the log scale. Every function runs inside `tf.tidy`: the only tensors
 * that outlive a call are the ones it returns.
 */
import * as tf from "@tensorflow/tfjs";
import { l2NormalizeRows } from "../util/tensor";

/** The two directions of the symmetric loss and their mean, all scalars. */
export type InfoNceTerms = {
  /** CE over the rows of logitsPerImage: each image must pick its own text. */
  lossImageToText: tf.Scalar;
  /** CE over the columns of logitsPerImage (the rows of logitsPerText). */
  lossTextToImage: tf.Scalar;
  /** (lossImageToText + lossTextToImage) / 2 */
  loss: tf.Scalar;
};

export type ClipLogits = {
  /** [N_img, N_txt] */
  logitsPerImage: tf.Tensor2D;
  /** [N_txt, N_img], the transpose of logitsPerImage */
  logitsPerText: tf.Tensor2D;
};

function fmtShape(t: tf.Tensor): string {
  return `[${t.shape.join(", ")}]`;
}

function isTensor(x: unknown): boolean {
  // tf.Tensor's instanceof is duck-typed, so this also accepts tensors of another tfjs-core copy.
  return x instanceof tf.Tensor;
}

/**
 * Throws unless `t` is a float32 rank-2 tensor with at least one row and one column.
 * @internal shared with siglip.ts
 */
export function checkFeatures(fn: string, name: string, t: tf.Tensor): void {
  if (!isTensor(t)) {
    throw new TypeError(`${fn}: ${name} must be a tf.Tensor of shape [N, D], got ${typeof t}`);
  }
  if (t.rank !== 2) {
    throw new Error(`${fn}: ${name} must have rank 2 ([N, D]), got shape ${fmtShape(t)}`);
  }
  const [n, d] = t.shape as [number, number];
  if (n < 1 || d < 1) {
    throw new Error(`${fn}: ${name} needs N >= 1 and D >= 1, got shape ${fmtShape(t)}`);
  }
  // Integer inputs would silently switch tf.div to floor division.
  if (t.dtype !== "float32") {
    throw new Error(`${fn}: ${name} must be float32, got ${t.dtype} of shape ${fmtShape(t)}`);
  }
}

/**
 * Throws unless `t` is a float32 0-d tensor (shape []).
 * @internal shared with siglip.ts
 */
export function checkScalar(fn: string, name: string, t: tf.Tensor): void {
  if (!isTensor(t)) {
    throw new TypeError(`${fn}: ${name} must be a scalar tf.Tensor (shape []), got ${typeof t}`);
  }
  if (t.rank !== 0) {
    throw new Error(`${fn}: ${name} must be a scalar (shape []), got shape ${fmtShape(t)}`);
  }
  if (t.dtype !== "float32") {
    throw new Error(`${fn}: ${name} must be float32, got ${t.dtype}`);
  }
}

/**
 * Throws unless image and text features are both [N, D] with the same N and D.
 * @internal shared with siglip.ts
 */
export function checkPairedFeatures(fn: string, imageFeatures: tf.Tensor2D, textFeatures: tf.Tensor2D): void {
  checkFeatures(fn, "imageFeatures", imageFeatures);
  checkFeatures(fn, "textFeatures", textFeatures);
  const [n, d] = imageFeatures.shape;
  const [m, e] = textFeatures.shape;
  if (n !== m || d !== e) {
    throw new Error(
      `${fn}: textFeatures shape ${fmtShape(textFeatures)} must equal ` +
        `imageFeatures shape ${fmtShape(imageFeatures)} (N matched pairs of dimension D)`,
    );
  }
}

/**
 * n(I) @ n(T)^T without scaling. The transpose is materialised and fed to a no-flag matMul:
 * on the WASM backend only the no-transpose matMul goes through XNNPACK. (This helps the forward
 * pass only: tf's matMul gradients are themselves transposed-flag matMuls.)
 * Not wrapped in tf.tidy: callers run it inside their own tidy.
 * @internal shared with siglip.ts
 */
export function cosineSimilarities(imageFeatures: tf.Tensor2D, textFeatures: tf.Tensor2D): tf.Tensor2D {
  const nI = l2NormalizeRows(imageFeatures); // [N_img, D]
  const nT = l2NormalizeRows(textFeatures); // [N_txt, D]
  const nTt = tf.transpose(nT) as tf.Tensor2D; // [D, N_txt]
  return tf.matMul(nI, nTt); // [N_img, N_txt]
}

/**
 * CLIP's logits, as `CLIP.forward` returns them: the features are normalised here, then
 * logitsPerImage = exp(logitScale) * n(I) @ n(T)^T and logitsPerText is its transpose.
 * Unlike the losses, the numbers of images and texts may differ (zero-shot use); D must match.
 */
export function clipLogits(
  imageFeatures: tf.Tensor2D,
  textFeatures: tf.Tensor2D,
  logitScale: tf.Scalar,
): ClipLogits {
  const fn = "clipLogits";
  checkFeatures(fn, "imageFeatures", imageFeatures);
  checkFeatures(fn, "textFeatures", textFeatures);
  if (imageFeatures.shape[1] !== textFeatures.shape[1]) {
    throw new Error(
      `${fn}: textFeatures shape ${fmtShape(textFeatures)} must have the same D as ` +
        `imageFeatures shape ${fmtShape(imageFeatures)}`,
    );
  }
  checkScalar(fn, "logitScale", logitScale);
  return tf.tidy(() => {
    const scale = tf.exp(logitScale); // []
    const logitsPerImage = tf.mul(scale, cosineSimilarities(imageFeatures, textFeatures)) as tf.Tensor2D; // [N_img, N_txt]
    const logitsPerText = tf.transpose(logitsPerImage) as tf.Tensor2D; // [N_txt, N_img]
    return { logitsPerImage, logitsPerText };
  });
}

/**
 * Both directions of the symmetric InfoNCE loss from square logits (logitsPerImage, row i =
 * image i, column j = text j, matched pairs on the diagonal). Only one logits matrix is used:
 * the text-to-image CE is a log-sum-exp over its columns, so there is no second matMul. (The cpu
 * and wasm reduce kernels still transpose internally for an axis-0 reduction: an O(N^2) copy,
 * small next to the O(N^2 D) matMul.)
 */
export function infoNceTermsFromLogits(logits: tf.Tensor2D): InfoNceTerms {
  const fn = "infoNceFromLogits";
  checkFeatures(fn, "logits", logits);
  if (logits.shape[0] !== logits.shape[1]) {
    throw new Error(`${fn}: logits must be square [N, N] (matched pairs on the diagonal), got shape ${fmtShape(logits)}`);
  }
  const n = logits.shape[0];
  return tf.tidy(() => {
    // The diagonal is read from the logits themselves (a 0/1 mask, exact in float32) rather than
    // recomputed as row dot products, so the N = 1 loss is exactly lse(x) - x = 0.
    const eye = tf.eye(n); // [N, N]
    const diag = tf.sum(tf.mul(logits, eye), 1); // [N]
    // tf.logSumExp subtracts the max along the reduced axis before exp: logits reach ~100 at
    // CLIP's maximal scale, where a plain float32 exp overflows (exp(88.7) = Inf).
    const lseRows = tf.logSumExp(logits, 1); // [N]  log sum_j exp(L_ij)
    const lseCols = tf.logSumExp(logits, 0); // [N]  log sum_i exp(L_ij) = row j of logits^T
    // -log softmax at the target = lse - target; subtracting per row before the mean keeps the
    // cancellation at the scale of one row.
    const lossImageToText = tf.mean(tf.sub(lseRows, diag)) as tf.Scalar; // []
    const lossTextToImage = tf.mean(tf.sub(lseCols, diag)) as tf.Scalar; // []
    const loss = tf.div(tf.add(lossImageToText, lossTextToImage), 2) as tf.Scalar; // []
    return { lossImageToText, lossTextToImage, loss };
  });
}

/** Symmetric InfoNCE loss from square logits [N, N] (see infoNceTermsFromLogits). */
export function infoNceFromLogits(logits: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => infoNceTermsFromLogits(logits).loss);
}

/** clipLoss together with its two directions (loss_i2t and loss_t2i of the reference). */
export function clipLossTerms(
  imageFeatures: tf.Tensor2D,
  textFeatures: tf.Tensor2D,
  logitScale: tf.Scalar,
): InfoNceTerms {
  const fn = "clipLoss";
  checkPairedFeatures(fn, imageFeatures, textFeatures);
  checkScalar(fn, "logitScale", logitScale);
  return tf.tidy(() => {
    const scale = tf.exp(logitScale); // []
    const logits = tf.mul(scale, cosineSimilarities(imageFeatures, textFeatures)) as tf.Tensor2D; // [N, N]
    return infoNceTermsFromLogits(logits);
  });
}

/**
 * CLIP's symmetric contrastive loss of N matched (image, text) pairs.
 * @param imageFeatures [N, D] projected image features, not yet normalised
 * @param textFeatures  [N, D] projected text features, row i paired with image i
 * @param logitScale    [] log of the logit multiplier (CLIP's `logit_scale` parameter)
 */
export function clipLoss(imageFeatures: tf.Tensor2D, textFeatures: tf.Tensor2D, logitScale: tf.Scalar): tf.Scalar {
  return tf.tidy(() => clipLossTerms(imageFeatures, textFeatures, logitScale).loss);
}

/**
 * Pairwise sigmoid loss of SigLIP.
 *
 * Zhai et al. 2023, "Sigmoid Loss for Language Image Pre-Training", https://arxiv.org/abs/2303.15343
 * (Algorithm 1). It replaces the softmax of CLIP's InfoNCE (https://arxiv.org/abs/2103.00020) by an
 * independent binary classification of every (image, text) pair:
 *
 *   n(x)   = x / ||x||_2                                  per row, no eps, as in info_nce.ts
 *   z_ij   = exp(t) * <n(I_i), n(T_j)> + b                [N, N]
 *   y_ij   = +1 if i = j (matched pair), -1 otherwise
 *   L      = -1/N * sum_ij log sigmoid(y_ij * z_ij)
 *
 * Note the 1/N, not 1/N^2: the paper normalises by the batch size. `logitScale` is t, the log
 * of the multiplier (the paper initialises t = log 10), and `logitBias` is b (initialised to -10).
 * log sigmoid is evaluated stably as -softplus(-x) (see the note in sigLipLoss).
 * Built from differentiable tf ops inside tf.tidy, so tf.grads / tf.variableGrads apply.
 */
import * as tf from "@tensorflow/tfjs";
import { checkPairedFeatures, checkScalar, cosineSimilarities } from "./info_nce";

/**
 * SigLIP loss of N matched (image, text) pairs.
 * @param imageFeatures [N, D] projected image features, not yet normalised
 * @param textFeatures  [N, D] projected text features, row i paired with image i
 * @param logitScale    [] log of the logit multiplier (t in the paper)
 * @param logitBias     [] additive logit bias (b in the paper)
 */
export function sigLipLoss(
  imageFeatures: tf.Tensor2D,
  textFeatures: tf.Tensor2D,
  logitScale: tf.Scalar,
  logitBias: tf.Scalar,
): tf.Scalar {
  const fn = "sigLipLoss";
  checkPairedFeatures(fn, imageFeatures, textFeatures);
  checkScalar(fn, "logitScale", logitScale);
  checkScalar(fn, "logitBias", logitBias);
  const n = imageFeatures.shape[0];
  return tf.tidy(() => {
    const scale = tf.exp(logitScale); // []
    const logits = tf.add(tf.mul(scale, cosineSimilarities(imageFeatures, textFeatures)), logitBias); // [N, N]
    // 2 * I - 1: +1 on the diagonal, -1 elsewhere.
    const labels = tf.sub(tf.mul(tf.eye(n), 2), 1); // [N, N]
    // log sigmoid(x) = -softplus(-x): finite for any |x| (the softplus kernels return x for large x
    // and exp(x) for very negative x), with the gradient sigmoid(-x). A plain log(sigmoid(x)) is
    // -Inf once sigmoid underflows float32 (x < -104), and a matched pair at cosine -1 with
    // t = log 100, b = -10 already sits at -110.
    // This is what tf.logSigmoid computes, but tf.logSigmoid is not usable here: in tfjs 4.22 its
    // custom gradient reads its input tensor directly instead of saving it, so tf.grads throws
    // ("Cannot read properties of undefined (reading 'backend')") whenever that input is an
    // intermediate disposed before the backward pass, as it is here and in any tf.grads closure.
    const logSig = tf.neg(tf.softplus(tf.neg(tf.mul(labels, logits)))); // [N, N]
    return tf.div(tf.neg(tf.sum(logSig)), n) as tf.Scalar; // []
  });
}

/**
 * How the modality gap and retrieval move with the temperature, defined precisely.
 *
 * The gap (Liang et al. 2022, "Mind the Gap", https://arxiv.org/abs/2203.02053) is
 * g = mean_i n(img_i) - mean_j n(txt_j), reported as ||g||.
 *
 * 1. Temperature sweep (`temperatureSweep`): the logits are s * cos(img_i, txt_j) with s the logit
 *    multiplier (exp(logitScale) in CLIP). Rescaling s after training changes NO cosine, so the gap,
 *    every ranking (Recall@K, median rank) and top-1 are exactly invariant; what moves is
 *    everything read from softmax(s * cos): the symmetric InfoNCE loss and the mean probability
 *    given to the matching item. The sweep reports both groups so the invariance is visible.
 * 2. Gap shift (`gapShiftSweep`, Liang et al. §4.2): move the embeddings along the gap and
 *    renormalise, img'_i = n(n(img_i) - (lambda/2) g), txt'_j = n(n(txt_j) + (lambda/2) g).
 *    lambda = 0 is the model; lambda = 1 makes the centroids of the unnormalised shifted sets
 *    coincide (the gap after renormalisation is close to 0); lambda < 0 widens the gap. Retrieval
 *    and the loss at the model's own temperature are re-measured at every lambda.
 * Pairs: image i matches text i (N images, N texts).
 */
import * as tf from "@tensorflow/tfjs";
import { l2NormalizeRows } from "../util/tensor";
import { checkMatrix } from "./checks";
import { retrievalMetrics } from "./retrieval";
import { modalityGap } from "./modality_gap";

export interface TemperatureRow {
  /** Logit multiplier s. */
  scale: number;
  /** Symmetric InfoNCE loss of s * cos. */
  loss: number;
  /** Mean softmax probability of the matching text (image->text) and image (text->image). */
  matchProbImageToText: number;
  matchProbTextToImage: number;
  /** Invariant in s (reported to show it). */
  gap: number;
  recallAt1ImageToText: number;
  recallAt1TextToImage: number;
}

export interface GapShiftRow {
  lambda: number;
  gap: number;
  recallAt1ImageToText: number;
  recallAt1TextToImage: number;
  recallAt5ImageToText: number;
  recallAt5TextToImage: number;
  medianRankImageToText: number;
  medianRankTextToImage: number;
  /** Symmetric InfoNCE loss at the given logit multiplier. */
  loss: number;
  /** Mean cosine of matching pairs. */
  meanPairCosine: number;
}

function checkPair(fn: string, imageEmb: tf.Tensor2D, textEmb: tf.Tensor2D): void {
  checkMatrix(fn, "imageEmb", imageEmb);
  checkMatrix(fn, "textEmb", textEmb);
  if (imageEmb.shape[0] !== textEmb.shape[0] || imageEmb.shape[1] !== textEmb.shape[1]) {
    throw new Error(`${fn}: imageEmb ${JSON.stringify(imageEmb.shape)} and textEmb ${JSON.stringify(textEmb.shape)} must be paired (same [N, D])`);
  }
}

/** loss and matching probabilities of s * cos, from the cosine matrix [N, N]. */
function softmaxStats(cos: tf.Tensor2D, scale: number): { loss: number; pI: number; pT: number } {
  return tf.tidy(() => {
    const logits = tf.mul(cos, scale) as tf.Tensor2D; // [N, N]
    const n = cos.shape[0];
    const eye = tf.eye(n);
    const lsI = tf.logSoftmax(logits); // rows: image -> text
    const lsT = tf.logSoftmax(tf.transpose(logits)); // rows: text -> image
    const diagI = tf.sum(tf.mul(lsI, eye), 1); // [N]
    const diagT = tf.sum(tf.mul(lsT, eye), 1); // [N]
    const loss = tf.neg(tf.div(tf.add(tf.mean(diagI), tf.mean(diagT)), 2));
    return { loss: loss.dataSync()[0], pI: tf.mean(tf.exp(diagI)).dataSync()[0], pT: tf.mean(tf.exp(diagT)).dataSync()[0] };
  });
}

/** The sweep over logit multipliers `scales` (see the module comment). */
export function temperatureSweep(imageEmb: tf.Tensor2D, textEmb: tf.Tensor2D, scales: readonly number[]): TemperatureRow[] {
  const fn = "temperatureSweep";
  checkPair(fn, imageEmb, textEmb);
  if (!Array.isArray(scales) || scales.length === 0) throw new Error(`${fn}: scales must be a non-empty array of positive numbers`);
  scales.forEach((s) => {
    if (!(Number.isFinite(s) && s > 0)) throw new RangeError(`${fn}: every scale must be a positive number, got ${String(s)}`);
  });
  const gap = modalityGap(imageEmb, textEmb);
  const r = retrievalMetrics(imageEmb, textEmb, [1]);
  const cos = tf.tidy(() => tf.matMul(l2NormalizeRows(imageEmb), tf.transpose(l2NormalizeRows(textEmb))) as tf.Tensor2D); // [N, N]
  try {
    return scales.map((scale) => {
      const s = softmaxStats(cos, scale);
      return {
        scale,
        loss: s.loss,
        matchProbImageToText: s.pI,
        matchProbTextToImage: s.pT,
        gap,
        recallAt1ImageToText: r.imageToText["R@1"],
        recallAt1TextToImage: r.textToImage["R@1"],
      };
    });
  } finally {
    cos.dispose();
  }
}

/** Retrieval, gap and loss after shifting along the gap by each lambda (see the module comment). */
export function gapShiftSweep(imageEmb: tf.Tensor2D, textEmb: tf.Tensor2D, lambdas: readonly number[], logitScale: number): GapShiftRow[] {
  const fn = "gapShiftSweep";
  checkPair(fn, imageEmb, textEmb);
  if (!Array.isArray(lambdas) || lambdas.length === 0) throw new Error(`${fn}: lambdas must be a non-empty array of numbers`);
  lambdas.forEach((l) => {
    if (!Number.isFinite(l)) throw new RangeError(`${fn}: every lambda must be a finite number, got ${String(l)}`);
  });
  if (!(Number.isFinite(logitScale) && logitScale > 0)) throw new RangeError(`${fn}: logitScale must be a positive number, got ${String(logitScale)}`);
  const [nImg, nTxt, g] = tf.tidy(() => {
    const a = l2NormalizeRows(imageEmb);
    const b = l2NormalizeRows(textEmb);
    return [a, b, tf.sub(tf.mean(a, 0), tf.mean(b, 0))]; // [N, D], [N, D], [D]
  });
  try {
    return lambdas.map((lambda) => {
      const [img, txt] = tf.tidy(() => [
        l2NormalizeRows(tf.sub(nImg, tf.mul(g, lambda / 2)) as tf.Tensor2D), // [N, D]
        l2NormalizeRows(tf.add(nTxt, tf.mul(g, lambda / 2)) as tf.Tensor2D), // [N, D]
      ]);
      try {
        const r = retrievalMetrics(img as tf.Tensor2D, txt as tf.Tensor2D, [1, 5]);
        const cos = tf.tidy(() => tf.matMul(img, tf.transpose(txt)) as tf.Tensor2D); // [N, N]
        try {
          const pair = tf.tidy(() => tf.mean(tf.sum(tf.mul(img, txt), 1)).dataSync()[0]);
          return {
            lambda,
            gap: modalityGap(img as tf.Tensor2D, txt as tf.Tensor2D),
            recallAt1ImageToText: r.imageToText["R@1"],
            recallAt1TextToImage: r.textToImage["R@1"],
            recallAt5ImageToText: r.imageToText["R@5"],
            recallAt5TextToImage: r.textToImage["R@5"],
            medianRankImageToText: r.imageToText.medianRank,
            medianRankTextToImage: r.textToImage.medianRank,
            loss: softmaxStats(cos, logitScale).loss,
            meanPairCosine: pair,
          };
        } finally {
          cos.dispose();
        }
      } finally {
        tf.dispose([img, txt]);
      }
    });
  } finally {
    tf.dispose([nImg, nTxt, g]);
  }
}

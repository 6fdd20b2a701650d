/**
 * The modality gap of a multimodal embedding space (Liang et al. 2022, "Mind the Gap: Understanding
 * the Modality Gap in Multi-modal Contrastive Representation Learning",
 * https://arxiv.org/abs/2203.02053, §3): the distance between the centroids of the L2-normalised
 * image and text embeddings,
 *
 *   gap = || mean_i n(img_i) - mean_j n(txt_j) ||_2         n(x) = x / ||x||_2
 *
 * Between 0 (same centroid) and 2 (antipodal unit centroids). The two sets need not be paired or
 * of the same size; only the dimension D must agree. Everything runs in tf.tidy.
 */
import * as tf from "@tensorflow/tfjs";
import { l2NormalizeRows } from "../util/tensor";
import { checkMatrix } from "./checks";

function check(fn: string, imageEmb: tf.Tensor2D, textEmb: tf.Tensor2D): void {
  checkMatrix(fn, "imageEmb", imageEmb);
  checkMatrix(fn, "textEmb", textEmb);
  if (imageEmb.shape[1] !== textEmb.shape[1]) {
    throw new Error(`${fn}: imageEmb has dimension ${imageEmb.shape[1]}, textEmb ${textEmb.shape[1]}`);
  }
}

/** mean(n(img)) - mean(n(txt)), [D]: the gap vector (Liang et al. shift embeddings along it). Caller disposes. */
export function modalityGapVector(imageEmb: tf.Tensor2D, textEmb: tf.Tensor2D): tf.Tensor1D {
  check("modalityGapVector", imageEmb, textEmb);
  return tf.tidy(() => tf.sub(tf.mean(l2NormalizeRows(imageEmb), 0), tf.mean(l2NormalizeRows(textEmb), 0)) as tf.Tensor1D);
}

/** || mean(n(img)) - mean(n(txt)) ||_2 for image [N, D] and text [M, D] embeddings (unnormalised). */
export function modalityGap(imageEmb: tf.Tensor2D, textEmb: tf.Tensor2D): number {
  check("modalityGap", imageEmb, textEmb);
  return tf.tidy(() => {
    const gap = tf.sub(tf.mean(l2NormalizeRows(imageEmb), 0), tf.mean(l2NormalizeRows(textEmb), 0)); // [D]
    return tf.norm(gap).dataSync()[0];
  });
}

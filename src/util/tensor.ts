/** Tensor helpers shared across layers (loss, eval, prompts, report). */
import * as tf from "@tensorflow/tfjs";

/**
 * x / ||x||_2 per row, with no eps, as the reference implementation (and the fixtures) do.
 * A zero row therefore gives NaN rather than a silently wrong finite value.
 * Not wrapped in tf.tidy: callers run it inside their own tidy.
 */
export function l2NormalizeRows(x: tf.Tensor2D): tf.Tensor2D {
  const norm = tf.sqrt(tf.sum(tf.square(x), 1, true)); // [N, 1]
  return tf.div(x, norm); // [N, D]
}

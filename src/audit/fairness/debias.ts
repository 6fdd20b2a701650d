/**
 * Debiasing by projection (Chuang, Jampani, Li, Torralba & Jegelka 2023, "Debiasing
 * Vision-Language Models via Biased Prompts", https://arxiv.org/abs/2302.00070): remove the span
 * of spurious directions A (rows, [K, D]) from text embeddings and renormalise,
 *
 *   P0 = I - A^T (A A^T)^-1 A        (the paper's I - A (A^T A)^-1 A^T with A as columns)
 *   z' = n(P0 z)
 *
 * computed as P0 z = z - Q^T (Q z) with Q an orthonormal basis of the rows of A (modified
 * Gram-Schmidt in float64), which is the same projection and also handles directions that are
 * linearly dependent. (The paper's calibrated variant, which also equalises the projections of
 * paired prompts, is not implemented.)
 */
import * as tf from "@tensorflow/tfjs";
import { encodeTexts, type TextFeatureModel } from "../../eval/encode";
import { checkEmbeddings } from "./checks";

/** A direction whose part outside the span of the previous ones is below this (relative) is dependent. */
const RANK_TOL = 1e-6;

/** Orthonormal basis [r, D] (float64 rows) of the row space of `directions` [K, D]. */
export function orthonormalBasis(values: Float32Array | Float64Array, k: number, d: number, fn = "orthonormalBasis"): Float64Array[] {
  const basis: Float64Array[] = [];
  for (let i = 0; i < k; i++) {
    const v = Float64Array.from(values.subarray(i * d, (i + 1) * d));
    const norm0 = Math.hypot(...v);
    if (norm0 === 0) continue;
    for (let pass = 0; pass < 2; pass++) {
      for (const q of basis) {
        let dot = 0;
        for (let j = 0; j < d; j++) dot += v[j] * q[j];
        for (let j = 0; j < d; j++) v[j] -= dot * q[j];
      }
    }
    const norm = Math.hypot(...v);
    if (norm <= RANK_TOL * norm0) continue;
    for (let j = 0; j < d; j++) v[j] /= norm;
    basis.push(v);
  }
  if (basis.length === 0) throw new Error(`${fn}: spuriousDirections are all zero (rank 0): there is nothing to project out`);
  return basis;
}

/** P0 = I - Q^T Q [D, D], the projection onto the orthogonal complement of the directions [K, D]. */
export function projectionMatrix(spuriousDirections: tf.Tensor2D): tf.Tensor2D {
  const fn = "projectionMatrix";
  const values = checkEmbeddings(fn, "spuriousDirections", spuriousDirections, "[K, D]");
  const [k, d] = spuriousDirections.shape;
  const basis = orthonormalBasis(values, k, d, fn);
  const p = new Float32Array(d * d);
  for (let a = 0; a < d; a++) {
    for (let b = 0; b < d; b++) {
      let s = a === b ? 1 : 0;
      for (const q of basis) s -= q[a] * q[b];
      p[a * d + b] = s;
    }
  }
  return tf.tensor2d(p, [d, d]); // [D, D]
}

/**
 * Text embeddings [N, D] with the span of `spuriousDirections` [K, D] removed, each row
 * renormalised to unit length. Inputs are not disposed; the caller disposes the result.
 */
export function projectionDebias(textEmbeddings: tf.Tensor2D, spuriousDirections: tf.Tensor2D): tf.Tensor2D {
  const fn = "projectionDebias";
  checkEmbeddings(fn, "textEmbeddings", textEmbeddings, "[N, D]");
  const values = checkEmbeddings(fn, "spuriousDirections", spuriousDirections, "[K, D]");
  const [k, d] = spuriousDirections.shape;
  if (textEmbeddings.shape[1] !== d) {
    throw new Error(`${fn}: textEmbeddings has dimension ${textEmbeddings.shape[1]}, spuriousDirections ${d} (mismatched embedding sizes)`);
  }
  const basis = orthonormalBasis(values, k, d, fn);
  const q = new Float32Array(basis.length * d);
  basis.forEach((row, i) => q.set(row, i * d));
  return tf.tidy(() => {
    const Q = tf.tensor2d(q, [basis.length, d]); // [r, D]
    const coords = tf.matMul(textEmbeddings, Q, false, true); // [N, r]
    const projected = tf.sub(textEmbeddings, tf.matMul(coords, Q)); // [N, D]
    const norms = tf.norm(projected, 2, 1, true); // [N, 1]
    const n = norms.dataSync();
    const scale = tf.norm(textEmbeddings, 2, 1).dataSync();
    for (let i = 0; i < n.length; i++) {
      if (!(n[i] > 1e-6 * scale[i])) throw new Error(`${fn}: textEmbeddings row ${i} lies in the span of spuriousDirections: nothing is left after the projection`);
    }
    return tf.div(projected, norms) as tf.Tensor2D; // [N, D]
  });
}

/** Unit-norm text embeddings [N, D] through the batched encoder. */
function unitTexts(model: TextFeatureModel, texts: string[], tokenizer?: (texts: string[]) => tf.Tensor2D): tf.Tensor2D {
  const f = encodeTexts(model, texts, { tokenizer, normalize: true });
  return tf.tensor2d(f.values, [f.n, f.dim]); // [N, D]
}

/**
 * Spurious directions [P, D] from prompt pairs that differ only in the spurious attribute
 * ("a photo of a counterfeit bag." vs "a photo of a bag."): row p = n(e(with_p)) - n(e(without_p)).
 */
export function spuriousDirectionsFromPrompts(
  model: TextFeatureModel,
  pairs: readonly (readonly [string, string])[],
  tokenizer?: (texts: string[]) => tf.Tensor2D,
): tf.Tensor2D {
  const fn = "spuriousDirectionsFromPrompts";
  if (!Array.isArray(pairs) || pairs.length === 0) throw new Error(`${fn}: pairs must be a non-empty array of [withAttribute, without] prompt pairs`);
  pairs.forEach((p, i) => {
    if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== "string" || typeof p[1] !== "string") {
      throw new TypeError(`${fn}: pairs[${i}] must be a pair of strings [withAttribute, without]`);
    }
  });
  return tf.tidy(() => {
    const a = unitTexts(model, pairs.map((p) => p[0]), tokenizer); // [P, D]
    const b = unitTexts(model, pairs.map((p) => p[1]), tokenizer); // [P, D]
    return tf.sub(a, b) as tf.Tensor2D; // [P, D]
  });
}

/**
 * The EmbeddingEngine on a cliplab Clip (TensorFlow.js, whatever backend is active): one
 * tf.tidy per batch, the features read back and every tensor freed before the call returns.
 * The Clip stays the caller's (dispose() leaves it alone).
 */
import * as tf from "@tensorflow/tfjs";
import type { Clip } from "../model/clip";
import type { EmbeddingEngine } from "./engine";
import { checkPixels, checkTokenIds } from "./inputs";

export class TfjsEngine implements EmbeddingEngine {
  readonly name = "tfjs";
  readonly embedDim: number;
  readonly imageSize: number;
  readonly contextLength: number;
  readonly vocabSize: number;

  constructor(private readonly clip: Clip) {
    if (clip.isDisposed) throw new Error("tfjs engine: the Clip has been disposed");
    this.embedDim = clip.config.embed_dim;
    this.imageSize = clip.config.vision_cfg.image_size;
    this.contextLength = clip.config.text_cfg.context_length;
    this.vocabSize = clip.config.text_cfg.vocab_size;
  }

  async embedImages(pixels: Float32Array, n: number): Promise<Float32Array> {
    checkPixels(this, pixels, n);
    if (n === 0) return new Float32Array(0);
    const s = this.imageSize;
    const features = tf.tidy(() => this.clip.encodeImage(tf.tensor4d(pixels, [n, s, s, 3]))); // [n, D]
    return read(features);
  }

  async embedTexts(ids: Int32Array, n: number, length: number): Promise<Float32Array> {
    checkTokenIds(this, ids, n, length);
    if (n === 0) return new Float32Array(0);
    const features = tf.tidy(() => this.clip.encodeText(tf.tensor2d(ids, [n, length], "int32"))); // [n, D]
    return read(features);
  }

  dispose(): void {
    // Nothing of its own: the Clip belongs to the caller.
  }
}

async function read(t: tf.Tensor): Promise<Float32Array> {
  try {
    return (await t.data()) as Float32Array;
  } finally {
    t.dispose();
  }
}

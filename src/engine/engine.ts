/**
 * An inference engine: what the batched encoder needs to turn preprocessed pixels and token ids
 * into (unnormalised) embeddings. The tfjs engine wraps a `Clip`; an onnxruntime engine runs an
 * exported graph. Gradients (training, attacks, prompt tuning) always go through the `Clip`.
 */

export interface EmbeddingEngine {
  /** "tfjs" or "onnx" (what the CLI reports). */
  readonly name: string;
  /** Width of the joint embedding space. */
  readonly embedDim: number;
  /** Side of the square NHWC images it takes. */
  readonly imageSize: number;
  /** Token context length. */
  readonly contextLength: number;
  /** Image features [n, D] (row-major) of CLIP-normalised NHWC float32 pixels [n, S, S, 3]. */
  embedImages(pixels: Float32Array, n: number): Promise<Float32Array>;
  /**
   * Text features [n, D] of token ids [n, length] (int32, zero-padded; length <= contextLength;
   * every row holds its end-of-text token).
   */
  embedTexts(ids: Int32Array, n: number, length: number): Promise<Float32Array>;
  /** Frees what the engine holds; the Clip it wraps (if any) stays the caller's. */
  dispose(): void;
}

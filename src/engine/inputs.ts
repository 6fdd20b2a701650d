/** Checks shared by every EmbeddingEngine: one-line errors naming the argument and what was expected. */

export interface EngineShape {
  name: string;
  imageSize: number;
  contextLength: number;
  vocabSize: number;
}

function checkCount(engine: string, method: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${engine} engine ${method}: n must be an integer >= 0, got ${n}`);
}

/** pixels: NHWC float32 [n, S, S, 3]. */
export function checkPixels(e: EngineShape, pixels: Float32Array, n: number): void {
  checkCount(e.name, "embedImages", n);
  if (!(pixels instanceof Float32Array)) throw new TypeError(`${e.name} engine embedImages: pixels must be a Float32Array (NHWC), got ${Object.prototype.toString.call(pixels)}`);
  const s = e.imageSize;
  if (pixels.length !== n * s * s * 3) {
    throw new RangeError(`${e.name} engine embedImages: pixels holds ${pixels.length} values, expected n * ${s} * ${s} * 3 = ${n * s * s * 3} (NHWC [${n}, ${s}, ${s}, 3])`);
  }
}

/** ids: int32 [n, length], 1 <= length <= contextLength, every id in [0, vocab). */
export function checkTokenIds(e: EngineShape, ids: Int32Array, n: number, length: number): void {
  checkCount(e.name, "embedTexts", n);
  if (!(ids instanceof Int32Array)) throw new TypeError(`${e.name} engine embedTexts: ids must be an Int32Array, got ${Object.prototype.toString.call(ids)}`);
  if (!Number.isInteger(length) || length < 1 || length > e.contextLength) {
    throw new RangeError(`${e.name} engine embedTexts: length must be an integer in [1, ${e.contextLength}] (the context length), got ${length}`);
  }
  if (ids.length !== n * length) throw new RangeError(`${e.name} engine embedTexts: ids holds ${ids.length} values, expected n * length = ${n * length}`);
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] < 0 || ids[i] >= e.vocabSize) {
      throw new RangeError(`${e.name} engine embedTexts: ids[${Math.floor(i / length)}, ${i % length}] = ${ids[i]} is outside the vocabulary [0, ${e.vocabSize})`);
    }
  }
}

/** NHWC [n, S, S, C] -> NCHW [n, C, S, S]. */
export function nhwcToNchw(pixels: Float32Array, n: number, size: number, channels = 3): Float32Array {
  const out = new Float32Array(pixels.length);
  const plane = size * size;
  for (let b = 0; b < n; b++) {
    const base = b * plane * channels;
    for (let p = 0; p < plane; p++) {
      const src = base + p * channels;
      for (let c = 0; c < channels; c++) out[base + c * plane + p] = pixels[src + c];
    }
  }
  return out;
}

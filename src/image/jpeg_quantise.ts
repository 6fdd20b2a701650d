/**
 * An in-process JPEG round trip for float RGB images (values in [0, 1], HWC), synchronous (sharp's
 * codec is async): baseline JPEG's lossy steps without the (lossless) entropy coding.
 * References: ITU-T T.81 (https://www.w3.org/Graphics/JPEG/itu-t81.pdf, Annex K tables), the IJG
 * libjpeg's quality scaling, colour conversion and chroma resampling.
 *
 *   RGB (8-bit) -> JFIF YCbCr -> [4:2:0: Cb, Cr averaged over 2x2 pixels] -> per 8x8 block of each
 *   plane: DCT-II, divide by the quality-scaled table (luminance for Y, chrominance for Cb/Cr),
 *   round, multiply back, inverse DCT -> [4:2:0: chroma enlarged by libjpeg's "fancy" triangle
 *   filter: 9/16 the nearest sample, 3/16 each of the next two, 1/16 the diagonal] -> RGB, 8-bit.
 *
 * Subsampling "4:2:0" is what Pillow (and so the ImageNet-C reference) writes by default; "4:4:4"
 * keeps full-resolution chroma. Edges are replicated to whole blocks. The DCT is computed in
 * floating point (libjpeg's default is a scaled integer DCT, a difference of at most a grey level
 * or so).
 */

/** The Annex K luminance table (quality 50), row-major. */
export const LUMA_TABLE = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22,
  37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
/** The Annex K chrominance table (quality 50), row-major. */
export const CHROMA_TABLE = [
  17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99, 99, 99,
  99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

export type ChromaSubsampling = "4:4:4" | "4:2:0";

/** libjpeg's `jpeg_quality_scaling` + `jpeg_add_quant_table` (baseline: entries clamped to 1..255). */
export function jpegQuantTable(base: readonly number[], quality: number): Float64Array {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const scale = q < 50 ? Math.floor(5000 / q) : 200 - 2 * q;
  return Float64Array.from(base, (v) => Math.min(255, Math.max(1, Math.floor((v * scale + 50) / 100))));
}

/** DCT_BASIS[u * 8 + x] = a(u) cos((2x + 1) u pi / 16), the orthonormal 8-point DCT-II. */
const DCT_BASIS = (() => {
  const m = new Float64Array(64);
  for (let u = 0; u < 8; u++) {
    const a = u === 0 ? Math.sqrt(1 / 8) : Math.sqrt(2 / 8);
    for (let x = 0; x < 8; x++) m[u * 8 + x] = a * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
  }
  return m;
})();

/** One plane (values 0-255) through DCT, quantisation with `table`, inverse DCT, in place; edges replicated to whole blocks. */
export function jpegPlane(p: Float64Array, h: number, w: number, table: Float64Array): void {
  const block = new Float64Array(64);
  const tmp = new Float64Array(64);
  const coef = new Float64Array(64);
  for (let by = 0; by < h; by += 8) {
    for (let bx = 0; bx < w; bx += 8) {
      for (let y = 0; y < 8; y++) {
        for (let x = 0; x < 8; x++) block[y * 8 + x] = p[Math.min(h - 1, by + y) * w + Math.min(w - 1, bx + x)] - 128;
      }
      // coef = D block D^T, quantised.
      for (let u = 0; u < 8; u++) {
        for (let x = 0; x < 8; x++) {
          let acc = 0;
          for (let y = 0; y < 8; y++) acc += DCT_BASIS[u * 8 + y] * block[y * 8 + x];
          tmp[u * 8 + x] = acc;
        }
      }
      for (let u = 0; u < 8; u++) {
        for (let v = 0; v < 8; v++) {
          let acc = 0;
          for (let x = 0; x < 8; x++) acc += tmp[u * 8 + x] * DCT_BASIS[v * 8 + x];
          const q = table[u * 8 + v];
          coef[u * 8 + v] = Math.round(acc / q) * q;
        }
      }
      // block = D^T coef D.
      for (let y = 0; y < 8; y++) {
        for (let v = 0; v < 8; v++) {
          let acc = 0;
          for (let u = 0; u < 8; u++) acc += DCT_BASIS[u * 8 + y] * coef[u * 8 + v];
          tmp[y * 8 + v] = acc;
        }
      }
      for (let y = 0; y < 8 && by + y < h; y++) {
        for (let x = 0; x < 8 && bx + x < w; x++) {
          let acc = 0;
          for (let v = 0; v < 8; v++) acc += tmp[y * 8 + v] * DCT_BASIS[v * 8 + x];
          p[(by + y) * w + bx + x] = acc + 128;
        }
      }
    }
  }
}

/** 2x2 averages of a plane (edges replicated), ceil(h/2) x ceil(w/2). */
function downsample2(p: Float64Array, h: number, w: number): Float64Array {
  const ch = Math.ceil(h / 2);
  const cw = Math.ceil(w / 2);
  const out = new Float64Array(ch * cw);
  for (let y = 0; y < ch; y++) {
    const y0 = 2 * y;
    const y1 = Math.min(h - 1, y0 + 1);
    for (let x = 0; x < cw; x++) {
      const x0 = 2 * x;
      const x1 = Math.min(w - 1, x0 + 1);
      out[y * cw + x] = (p[y0 * w + x0] + p[y0 * w + x1] + p[y1 * w + x0] + p[y1 * w + x1]) / 4;
    }
  }
  return out;
}

/** libjpeg's h2v2 "fancy" upsampling of a ch x cw plane back to h x w (triangle filter, edges replicated). */
function upsample2(c: Float64Array, ch: number, cw: number, h: number, w: number): Float64Array {
  const out = new Float64Array(h * w);
  const at = (y: number, x: number) => c[Math.min(ch - 1, Math.max(0, y)) * cw + Math.min(cw - 1, Math.max(0, x))];
  for (let y = 0; y < h; y++) {
    const cy = y >> 1;
    const ny = y % 2 === 0 ? cy - 1 : cy + 1; // the other chroma row this pixel lies between
    for (let x = 0; x < w; x++) {
      const cx = x >> 1;
      const nx = x % 2 === 0 ? cx - 1 : cx + 1;
      out[y * w + x] = (9 * at(cy, cx) + 3 * at(ny, cx) + 3 * at(cy, nx) + at(ny, nx)) / 16;
    }
  }
  return out;
}

export interface JpegOptions {
  /** Chroma resolution; default "4:4:4". */
  subsampling?: ChromaSubsampling;
  /**
   * Work in 8-bit samples between the stages as libjpeg does (default true): 8-bit RGB in, YCbCr
   * rounded, chroma averages rounded, the inverse DCT's samples rounded and clamped to 0-255
   * before upsampling and colour conversion. False keeps every stage in floating point (the
   * output is 8-bit either way).
   */
  eightBit?: boolean;
}

/** JPEG round trip (see the module comment) of every image of `d` ([b, h, w, 3] values in [0, 1]) in place. */
export function jpegRoundTrip(d: Float32Array, b: number, h: number, w: number, quality: number, opts: JpegOptions = {}): void {
  const subsampling = opts.subsampling ?? "4:4:4";
  const eightBit = opts.eightBit ?? true;
  const in8 = eightBit ? (v: number) => Math.round(255 * v) : (v: number) => 255 * v;
  const sample = eightBit ? (p: Float64Array) => p.forEach((v, i) => (p[i] = Math.min(255, Math.max(0, Math.round(v))))) : () => {};
  const luma = jpegQuantTable(LUMA_TABLE, quality);
  const chroma = jpegQuantTable(CHROMA_TABLE, quality);
  const hw = h * w;
  const n = hw * 3;
  const to8 = (v: number) => Math.min(255, Math.max(0, Math.round(v))) / 255;
  for (let k = 0; k < b; k++) {
    const o = k * n;
    const Y = new Float64Array(hw);
    let Cb: Float64Array = new Float64Array(hw);
    let Cr: Float64Array = new Float64Array(hw);
    for (let i = 0; i < hw; i++) {
      const r = in8(d[o + 3 * i]);
      const g = in8(d[o + 3 * i + 1]);
      const bl = in8(d[o + 3 * i + 2]);
      Y[i] = 0.299 * r + 0.587 * g + 0.114 * bl;
      Cb[i] = 128 - 0.168736 * r - 0.331264 * g + 0.5 * bl;
      Cr[i] = 128 + 0.5 * r - 0.418688 * g - 0.081312 * bl;
    }
    [Y, Cb, Cr].forEach(sample);
    jpegPlane(Y, h, w, luma);
    sample(Y);
    if (subsampling === "4:2:0") {
      const ch = Math.ceil(h / 2);
      const cw = Math.ceil(w / 2);
      const sb = downsample2(Cb, h, w);
      const sr = downsample2(Cr, h, w);
      [sb, sr].forEach(sample);
      jpegPlane(sb, ch, cw, chroma);
      jpegPlane(sr, ch, cw, chroma);
      [sb, sr].forEach(sample);
      Cb = upsample2(sb, ch, cw, h, w);
      Cr = upsample2(sr, ch, cw, h, w);
      [Cb, Cr].forEach(sample);
    } else {
      jpegPlane(Cb, h, w, chroma);
      jpegPlane(Cr, h, w, chroma);
      [Cb, Cr].forEach(sample);
    }
    for (let i = 0; i < hw; i++) {
      d[o + 3 * i] = to8(Y[i] + 1.402 * (Cr[i] - 128));
      d[o + 3 * i + 1] = to8(Y[i] - 0.344136 * (Cb[i] - 128) - 0.714136 * (Cr[i] - 128));
      d[o + 3 * i + 2] = to8(Y[i] + 1.772 * (Cb[i] - 128));
    }
  }
}

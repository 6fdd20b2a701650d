/**
 * Pillow's `Image.resize(size, Image.BOX)` of one 8-bit plane (Pillow 9.4
 * `libImaging/Resample.c`: precompute_coeffs with the box filter, the horizontal pass then the
 * vertical one, each rounded to 8 bits), on float values in [0, 1] that are multiples of 1/255
 * (what an 8-bit image gives). ImageNet-C's pixelate resizes down and back up with it
 * (https://arxiv.org/abs/1903.12261).
 *
 * Per output x of an axis scaled by s = in / out (support = 0.5 * max(s, 1)): centre
 * c = (x + 0.5) s; input pixels j in [int(c - support + 0.5), int(c + support + 0.5)) with
 * box((j - c + 0.5) / max(s, 1)) = 1 for arguments in (-0.5, 0.5], weights normalised. Shrinking
 * it averages the pixels whose centres fall in the output pixel; enlarging it copies the nearest.
 */

/** Pillow's box coefficients of one axis: for each output, the first input and its weights. */
function boxCoeffs(inSize: number, outSize: number): { start: Int32Array; weights: Float64Array[] } {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 0.5 * filterscale;
  const start = new Int32Array(outSize);
  const weights: Float64Array[] = [];
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5));
    const k = new Float64Array(Math.max(0, xmax - xmin));
    let total = 0;
    for (let j = 0; j < k.length; j++) {
      const u = (j + xmin - center + 0.5) / filterscale;
      total += k[j] = u > -0.5 && u <= 0.5 ? 1 : 0;
    }
    if (total > 0) for (let j = 0; j < k.length; j++) k[j] /= total;
    start[o] = xmin;
    weights.push(k);
  }
  return { start, weights };
}

const to8 = (v: number) => Math.min(255, Math.max(0, Math.round(v)));

/** Pillow's BOX resize of a plane (values in [0, 1]) to nh x nw, rounded to 8 bits after each pass. */
export function pilBoxResize(p: ArrayLike<number>, h: number, w: number, nh: number, nw: number): Float32Array {
  const cx = boxCoeffs(w, nw);
  const cy = boxCoeffs(h, nh);
  const tmp = new Float64Array(h * nw);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < nw; x++) {
      const k = cx.weights[x];
      let acc = 0;
      for (let j = 0; j < k.length; j++) acc += k[j] * 255 * p[y * w + cx.start[x] + j];
      tmp[y * nw + x] = to8(acc);
    }
  }
  const out = new Float32Array(nh * nw);
  for (let y = 0; y < nh; y++) {
    const k = cy.weights[y];
    for (let x = 0; x < nw; x++) {
      let acc = 0;
      for (let j = 0; j < k.length; j++) acc += k[j] * tmp[(cy.start[y] + j) * nw + x];
      out[y * nw + x] = to8(acc) / 255;
    }
  }
  return out;
}

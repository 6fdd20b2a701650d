/**
 * Histogram equalisation of an 8-bit plane as OpenCV's cv2.equalizeHist: with i0 the darkest
 * value present, value v maps to round(255 * (count(i0 < u <= v)) / (n - count(i0))), i0 to 0,
 * rounding halves to even (OpenCV's cvRound); a constant plane stays as it is.
 */

/** Round to the nearest integer, halves to even. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function equalizeHist(img: ArrayLike<number>): Uint8Array {
  const hist = new Float64Array(256);
  for (let i = 0; i < img.length; i++) hist[img[i]]++;
  let i0 = 0;
  while (i0 < 256 && hist[i0] === 0) i0++;
  const out = new Uint8Array(img.length);
  if (i0 === 256) return out;
  if (hist[i0] === img.length) {
    out.fill(i0);
    return out;
  }
  const scale = 255 / (img.length - hist[i0]);
  const lut = new Uint8Array(256);
  let sum = 0;
  for (let v = i0 + 1; v < 256; v++) {
    sum += hist[v];
    lut[v] = Math.min(255, Math.max(0, roundHalfEven(sum * scale)));
  }
  for (let i = 0; i < img.length; i++) out[i] = lut[img[i]];
  return out;
}

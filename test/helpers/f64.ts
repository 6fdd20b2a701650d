/** Float64 references written straight from the definitions, for checking float32 tensors. */

/** `exp(logitScale) * cos(img_i, txt_j)` for every pair, in float64. */
export function scaledCosines64(img: number[][], txt: number[][], logitScale: number): number[][] {
  const norm = (r: number[]) => {
    const s = Math.sqrt(r.reduce((a, x) => a + x * x, 0));
    return r.map((x) => x / s);
  };
  const nI = img.map(norm);
  const nT = txt.map(norm);
  const scale = Math.exp(logitScale);
  return nI.map((a) => nT.map((b) => scale * a.reduce((s, x, k) => s + x * b[k]!, 0)));
}

/**
 * im2col and col2im for NHWC convolutions (Chellapilla et al. 2006, "High Performance
 * Convolutional Neural Networks for Document Processing", https://hal.inria.fr/inria-00112631):
 * the patch matrix P [N*OH*OW, FH*FW*C] turns a convolution into one matrix product,
 * out [rows, CO] = P @ W [FH*FW*C, CO] (an HWIO filter is already that matrix).
 *
 * Row r = (n*OH + oh)*OW + ow, column (kh*FW + kw)*C + ci. Both work on views of one WASM heap
 * and move runs with `copyWithin` on a single view of the whole heap (no per-run objects): the
 * FW*C values of one filter row are contiguous in x whenever the row lies inside the image
 * horizontally (dilation 1), and move as one run.
 */

export interface ConvGeometry {
  H: number; W: number; C: number; OH: number; OW: number; FH: number; FW: number;
  SH: number; SW: number; DH: number; DW: number; PT: number; PL: number;
}

/** Rows [r0, r1) of the patch matrix of X (one image batch, NHWC) into P (rows r0.. at P[0]). */
export function im2col(X: Float32Array, P: Float32Array, r0: number, r1: number, g: ConvGeometry): void {
  const { H, W, C, OH, OW, FH, FW, SH, SW, DH, DW, PT, PL } = g;
  const K = FH * FW * C;
  const heap = new Float32Array(X.buffer);
  if (P.buffer !== X.buffer) throw new Error("im2col: X and P must be views of the same heap");
  const xBase = X.byteOffset >> 2;
  const pBase = P.byteOffset >> 2;
  const rowRun = DW === 1;
  for (let r = r0; r < r1; r++) {
    const ow = r % OW;
    const t = (r - ow) / OW;
    const oh = t % OH;
    const n = (t - oh) / OH;
    let dst = (r - r0) * K;
    const iw0 = ow * SW - PL;
    const inside = rowRun && iw0 >= 0 && iw0 + FW <= W;
    for (let kh = 0; kh < FH; kh++) {
      const ih = oh * SH - PT + kh * DH;
      if (ih < 0 || ih >= H) {
        P.fill(0, dst, dst + FW * C);
        dst += FW * C;
        continue;
      }
      const rowBase = (n * H + ih) * W;
      if (inside) {
        const src = xBase + (rowBase + iw0) * C;
        heap.copyWithin(pBase + dst, src, src + FW * C);
        dst += FW * C;
        continue;
      }
      for (let kw = 0; kw < FW; kw++) {
        const iw = iw0 + kw * DW;
        if (iw < 0 || iw >= W) {
          P.fill(0, dst, dst + C);
        } else {
          const src = xBase + (rowBase + iw) * C;
          heap.copyWithin(pBase + dst, src, src + C);
        }
        dst += C;
      }
    }
  }
}

/**
 * The adjoint of im2col: dX[n, ih, iw, ci] += Pd[r - r0, (kh*FW + kw)*C + ci] for every patch
 * position that reads it. dX must be zeroed by the caller before the first chunk.
 */
export function col2im(Pd: Float32Array, dX: Float32Array, r0: number, r1: number, g: ConvGeometry): void {
  const { H, W, C, OH, OW, FH, FW, SH, SW, DH, DW, PT, PL } = g;
  const K = FH * FW * C;
  for (let r = r0; r < r1; r++) {
    const ow = r % OW;
    const t = (r - ow) / OW;
    const oh = t % OH;
    const n = (t - oh) / OH;
    let src = (r - r0) * K;
    const iw0 = ow * SW - PL;
    for (let kh = 0; kh < FH; kh++) {
      const ih = oh * SH - PT + kh * DH;
      if (ih < 0 || ih >= H) {
        src += FW * C;
        continue;
      }
      const rowBase = (n * H + ih) * W;
      for (let kw = 0; kw < FW; kw++) {
        const iw = iw0 + kw * DW;
        if (iw >= 0 && iw < W) {
          let dst = (rowBase + iw) * C;
          const end = src + C;
          for (let s = src; s < end; s++) dX[dst++] += Pd[s];
        }
        src += C;
      }
    }
  }
}

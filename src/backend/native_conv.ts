/**
 * Convolutions for the tfjs wasm backend on a system BLAS (`cblas_sgemm`, ./blas): im2col +
 * GEMM (./im2col), NHWC, any stride, padding and dilation, on views of the WASM heap.
 *
 *   forward   out [rows, CO]  = P [rows, K] @ W [K, CO]               (Conv2D, FusedConv2D)
 *   dx        dP  [rows, K]   = dy [rows, CO] @ W^T, then col2im       (Conv2DBackpropInput)
 *   dW        dW  [K, CO]     = sum over row chunks of P^T @ dy        (Conv2DBackpropFilter)
 * with rows = N*OH*OW and K = FH*FW*C. A 1x1, stride-1, unpadded convolution needs no patch
 * matrix (P is x itself). The patch matrix is built in chunks of rows, each at most
 * `PATCH_CHUNK_ELEMENTS` floats, in a temporary WASM heap buffer freed before the kernel returns.
 *
 * The patch matrix and col2im are built by cliplab's C library when it is loaded (./fused_lib:
 * memcpy runs, threads), else in JS (./im2col). Without the C library, Conv2DBackpropInput at
 * stride 1 stays with ./kernels (a forward convolution of dy with the flipped filter, which then
 * runs on this forward kernel). Channels-first layouts and other dtypes go to the kernels that
 * were registered before.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import type { Blas } from "./blas";
import { activeFusedLib } from "./fused_lib";
import { ConvGeometry, col2im, im2col } from "./im2col";
import { KernelArgs, asKernelOutput, asTensor, f32, ownTensor, sizeOf } from "./kernel_util";

/** Patch-matrix chunk bound: 4M floats (16 MB). */
export const PATCH_CHUNK_ELEMENTS = 1 << 22;

/**
 * Below this many output channels a windowed convolution (and its stride-1 input gradient) stays
 * with the wasm kernel: XNNPACK's direct convolution beats materialising the patch matrix for a
 * GEMM only a few columns wide. Measured on 2 Zen 4 vCPUs, batch 128, 3x3 windows, CPU ms per call
 * (native / XNNPACK): 10->5 channels at 16x16 6.9 / 3.8, 3->5 at 32x32 10.8 / 8.8, but 20->20 at
 * 8x8 5.0 / 6.7 and 80->80 at 2x2 1.5 / 2.8. Filter gradients are always native (faster in every
 * case measured). Tests set `convTuning.smallChannels = 0` to run every case natively.
 */
export const SMALL_CONV_CHANNELS = 16;
export const convTuning = { smallChannels: SMALL_CONV_CHANNELS };

interface Conv {
  g: ConvGeometry;
  N: number;
  CO: number;
  K: number;
  rows: number;
  /** A 1x1, stride-1, unpadded convolution: the patch matrix is x itself. */
  pointwise: boolean;
}

type Pad = Parameters<typeof tf.backend_util.computeConv2DInfo>[4];

function convOf(xShape: number[], filterShape: number[], strides: number | [number, number], dilations: number | [number, number], pad: Pad | "valid" | "same", dimRoundingMode?: "floor" | "round" | "ceil"): Conv {
  const info = tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], filterShape as [number, number, number, number], strides, dilations, pad as Pad, dimRoundingMode, false, "channelsLast");
  const g: ConvGeometry = {
    H: info.inHeight, W: info.inWidth, C: info.inChannels, OH: info.outHeight, OW: info.outWidth,
    FH: info.filterHeight, FW: info.filterWidth, SH: info.strideHeight, SW: info.strideWidth,
    DH: info.dilationHeight, DW: info.dilationWidth, PT: info.padInfo.top, PL: info.padInfo.left,
  };
  const pointwise = g.FH === 1 && g.FW === 1 && g.SH === 1 && g.SW === 1 && g.PT === 0 && g.PL === 0 && g.OH === g.H && g.OW === g.W;
  return { g, N: info.batchSize, CO: info.outChannels, K: g.FH * g.FW * g.C, rows: info.batchSize * info.outHeight * info.outWidth, pointwise };
}

function channelsLast(dataFormat: string | undefined): boolean {
  return tf.backend_util.convertConv2DDataFormat((dataFormat ?? "NHWC") as "NHWC" | "NCHW") === "channelsLast";
}

function geometryArray(g: ConvGeometry): Int32Array {
  return Int32Array.of(g.H, g.W, g.C, g.OH, g.OW, g.FH, g.FW, g.SH, g.SW, g.DH, g.DW, g.PT, g.PL);
}

/** Patch rows [r0, r1) of x into P (a heap view), in C when the library is loaded. */
function patches(X: Float32Array, P: Float32Array, r0: number, r1: number, c: Conv): void {
  const lib = activeFusedLib();
  if (lib) lib.im2col(X, geometryArray(c.g), r0, r1, P);
  else im2col(X, P, r0, r1, c.g);
}

function scatterPatches(Pd: Float32Array, dX: Float32Array, r0: number, r1: number, c: Conv): void {
  const lib = activeFusedLib();
  if (lib) lib.col2im(Pd, geometryArray(c.g), r0, r1, dX);
  else col2im(Pd, dX, r0, r1, c.g);
}

function chunkRows(c: Conv): number {
  return Math.max(1, Math.min(c.rows, Math.floor(PATCH_CHUNK_ELEMENTS / Math.max(1, c.K))));
}

/** out [rows, CO] (+)= P @ W, building P chunk by chunk. `beta` 1 keeps what out holds (bias). */
function convForward(blas: Blas, b: BackendWasm, c: Conv, x: tf.TensorInfo, filter: tf.TensorInfo, out: tf.TensorInfo, beta: number): void {
  const { K, CO, rows } = c;
  if (K === 0) return;
  if (c.pointwise) {
    blas.sgemm(false, false, rows, CO, K, 1, f32(b, x), K, f32(b, filter), CO, beta, f32(b, out), CO);
    return;
  }
  const step = chunkRows(c);
  const tmp = b.makeOutput([step * K], "float32");
  try {
    for (let r0 = 0; r0 < rows; r0 += step) {
      const r1 = Math.min(rows, r0 + step);
      const P = f32(b, tmp);
      patches(f32(b, x), P, r0, r1, c);
      const O = f32(b, out);
      blas.sgemm(false, false, r1 - r0, CO, K, 1, P, K, f32(b, filter), CO, beta, O.subarray(r0 * CO, r1 * CO), CO);
    }
  } finally {
    b.disposeData(tmp.dataId);
  }
}

export function makeConv2D(blas: Blas, fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { inputs, attrs, backend } = args;
    const b = backend as BackendWasm;
    const x = inputs.x as tf.TensorInfo;
    const filter = inputs.filter as tf.TensorInfo;
    const { strides, pad, dataFormat, dilations, dimRoundingMode } = attrs as unknown as tf.Conv2DAttrs;
    if (!channelsLast(dataFormat) || x.dtype !== "float32" || filter.dtype !== "float32") {
      if (fallback) return fallback(args);
      throw new Error(`Conv2D: NHWC float32 only, got ${dataFormat} ${x.dtype}/${filter.dtype}`);
    }
    const c = convOf(x.shape, filter.shape, strides, dilations, pad, dimRoundingMode);
    if (fallback && c.CO < convTuning.smallChannels && !c.pointwise) return fallback(args);
    const out = b.makeOutput([c.N, c.g.OH, c.g.OW, c.CO], "float32");
    if (sizeOf(out.shape) === 0) return out;
    if (c.K === 0) {
      f32(b, out).fill(0);
      return out;
    }
    convForward(blas, b, c, x, filter, out, 0);
    return out;
  };
}

export function makeFusedConv2D(blas: Blas, fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { inputs, attrs, backend } = args;
    const b = backend as BackendWasm;
    const x = inputs.x as tf.TensorInfo;
    const filter = inputs.filter as tf.TensorInfo;
    const bias = inputs.bias as tf.TensorInfo | undefined;
    const prelu = inputs.preluActivationWeights as tf.TensorInfo | undefined;
    const { strides, pad, dataFormat, dilations, dimRoundingMode, activation, leakyreluAlpha } = attrs as unknown as tf.FusedConv2DAttrs;
    const act = activation ?? "linear";
    const c0 = channelsLast(dataFormat) && x.dtype === "float32" && filter.dtype === "float32";
    const c = c0 ? convOf(x.shape, filter.shape, strides, dilations, pad, dimRoundingMode) : undefined;
    const biasOk = !bias || (bias.dtype === "float32" && (sizeOf(bias.shape) === 1 || (c !== undefined && sizeOf(bias.shape) === c.CO)));
    const small = fallback !== undefined && c !== undefined && c.CO < convTuning.smallChannels && !c.pointwise;
    if (!c || !biasOk || small || !["linear", "relu", "relu6", "elu", "sigmoid", "leakyrelu", "prelu"].includes(act)) {
      if (fallback) return fallback(args);
      throw new Error(`FusedConv2D: unsupported case (${dataFormat}, ${x.dtype}/${filter.dtype}, bias [${bias?.shape}], activation ${act})`);
    }
    const out = b.makeOutput([c.N, c.g.OH, c.g.OW, c.CO], "float32");
    const total = sizeOf(out.shape);
    if (total === 0) return out;
    let beta = 0;
    const o = f32(b, out);
    if (bias) {
      const bv = f32(b, bias);
      if (bv.length === 1) o.fill(bv[0]);
      else for (let r = 0; r < total; r += c.CO) o.set(bv, r);
      beta = 1;
    } else if (c.K === 0) {
      o.fill(0);
    }
    convForward(blas, b, c, x, filter, out, beta);
    if (act === "linear") return out;
    const activated = tf.tidy(() => {
      const t = ownTensor(b, out);
      switch (act) {
        case "relu":
          return tf.relu(t);
        case "relu6":
          return tf.relu6(t);
        case "elu":
          return tf.elu(t);
        case "sigmoid":
          return tf.sigmoid(t);
        case "leakyrelu":
          return tf.leakyRelu(t, leakyreluAlpha ?? 0.2);
        default:
          return tf.prelu(t, asTensor(b, prelu as tf.TensorInfo));
      }
    });
    return asKernelOutput(b, activated);
  };
}

/** dx; without the C library, stride-1 windows go to `fallback` (see the header). */
export function makeConv2DBackpropInput(blas: Blas, fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { inputs, attrs, backend } = args;
    const b = backend as BackendWasm;
    const dy = inputs.dy as tf.TensorInfo;
    const filter = inputs.filter as tf.TensorInfo;
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
    const ok = channelsLast(dataFormat) && dy.dtype === "float32" && filter.dtype === "float32";
    const c = ok ? convOf(inputShape.slice(), filter.shape, strides, 1, pad, dimRoundingMode) : undefined;
    const stride1 = c !== undefined && c.g.SH === 1 && c.g.SW === 1 && !c.pointwise;
    if (!c || (stride1 && fallback && (!activeFusedLib() || c.CO < convTuning.smallChannels))) {
      if (fallback) return fallback(args);
      throw new Error(`Conv2DBackpropInput: NHWC float32 only, got ${dataFormat} ${dy.dtype}/${filter.dtype}`);
    }
    if (dy.shape[1] !== c.g.OH || dy.shape[2] !== c.g.OW || dy.shape[3] !== c.CO) {
      throw new Error(`Conv2DBackpropInput: dy shape [${dy.shape}] does not match the convolution output [${c.N},${c.g.OH},${c.g.OW},${c.CO}]`);
    }
    const dx = b.makeOutput(inputShape.slice(), "float32");
    if (sizeOf(dx.shape) === 0) return dx;
    const { K, CO, rows } = c;
    if (c.pointwise) {
      // dx [rows, C] = dy [rows, CO] @ W^T, W [C, CO].
      blas.sgemm(false, true, rows, K, CO, 1, f32(b, dy), CO, f32(b, filter), CO, 0, f32(b, dx), K);
      return dx;
    }
    f32(b, dx).fill(0);
    if (K === 0 || CO === 0 || rows === 0) return dx;
    const step = chunkRows(c);
    const tmp = b.makeOutput([step * K], "float32");
    try {
      for (let r0 = 0; r0 < rows; r0 += step) {
        const r1 = Math.min(rows, r0 + step);
        const Pd = f32(b, tmp);
        blas.sgemm(false, true, r1 - r0, K, CO, 1, f32(b, dy).subarray(r0 * CO, r1 * CO), CO, f32(b, filter), CO, 0, Pd, K);
        scatterPatches(Pd, f32(b, dx), r0, r1, c);
      }
    } finally {
      b.disposeData(tmp.dataId);
    }
    return dx;
  };
}

export function makeConv2DBackpropFilter(blas: Blas, fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { inputs, attrs, backend } = args;
    const b = backend as BackendWasm;
    const x = inputs.x as tf.TensorInfo;
    const dy = inputs.dy as tf.TensorInfo;
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    if (!channelsLast(dataFormat) || x.dtype !== "float32" || dy.dtype !== "float32") {
      if (fallback) return fallback(args);
      throw new Error(`Conv2DBackpropFilter: NHWC float32 only, got ${dataFormat} ${x.dtype}/${dy.dtype}`);
    }
    const c = convOf(x.shape, filterShape.slice(), strides, 1, pad, dimRoundingMode);
    if (dy.shape[1] !== c.g.OH || dy.shape[2] !== c.g.OW || dy.shape[3] !== c.CO) {
      throw new Error(`Conv2DBackpropFilter: dy shape [${dy.shape}] does not match the convolution output [${c.N},${c.g.OH},${c.g.OW},${c.CO}]`);
    }
    const dW = b.makeOutput(filterShape.slice(), "float32");
    const { K, CO, rows } = c;
    if (K * CO === 0) return dW;
    if (rows === 0) {
      f32(b, dW).fill(0);
      return dW;
    }
    if (c.pointwise) {
      // dW [C, CO] = x^T [C, rows] @ dy [rows, CO].
      blas.sgemm(true, false, K, CO, rows, 1, f32(b, x), K, f32(b, dy), CO, 0, f32(b, dW), CO);
      return dW;
    }
    const step = chunkRows(c);
    const tmp = b.makeOutput([step * K], "float32");
    try {
      for (let r0 = 0; r0 < rows; r0 += step) {
        const r1 = Math.min(rows, r0 + step);
        const P = f32(b, tmp);
        patches(f32(b, x), P, r0, r1, c);
        blas.sgemm(true, false, K, CO, r1 - r0, 1, P, K, f32(b, dy).subarray(r0 * CO, r1 * CO), CO, r0 === 0 ? 0 : 1, f32(b, dW), CO);
      }
    } finally {
      b.disposeData(tmp.dataId);
    }
    return dW;
  };
}

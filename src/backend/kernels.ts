/**
 * Training kernels the tfjs backends lack or run too slowly, registered by `initBackend`:
 *   - wasm UnsortedSegmentSum (the gradient of tf.gather, i.e. of every embedding lookup): one
 *     pass over the input on views of the WASM heap, O(N*D), written straight into the output's
 *     heap memory (tfjs' cpu kernel loops over segments: O(numSegments*N*D));
 *   - wasm Conv2DBackpropFilter (the gradient of conv2d weights): im2col in JS, written straight
 *     into WASM heap memory (chunks of <= 32 MB), then one untransposed matmul per chunk,
 *     dW^T = dy^T x patches, so the heavy part runs in XNNPACK (SIMD, threaded).
 *     tfjs-backend-wasm's BatchMatMul takes XNNPACK only without transpose flags and with batch 1;
 *     otherwise a naive single-threaded loop (about 12x slower for A x B^T, 60x for A^T x B at
 *     1024^3), which is also why src/model/matmul.ts avoids them;
 *   - wasm Conv2DBackpropInput (the gradient of conv2d inputs) for stride 1: a forward XNNPACK
 *     convolution of dy with the spatially flipped, in/out-swapped filter (tfjs' own kernel is a
 *     scalar loop, ~10x slower); other strides and dilations keep tfjs' kernel;
 *   - cpu UnsortedSegmentSum: the same one pass (tfjs' own loops over every segment).
 * A kernel a future tfjs registers for wasm is left alone.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { im2col } from "./im2col";
import { KernelArgs, asKernelOutput, asTensor, sizeOf } from "./kernel_util";

let wasmKernelsRegistered = false;

/** Registers the kernels above for wasm (idempotent: native kernels may sit on top later). */
export function registerWasmKernels(): void {
  if (wasmKernelsRegistered) return;
  wasmKernelsRegistered = true;
  const add = (kernelName: string, kernelFunc: tf.KernelFunc) => {
    if (!tf.getKernel(kernelName, "wasm")) tf.registerKernel({ kernelName, backendName: "wasm", kernelFunc });
  };
  add(tf.UnsortedSegmentSum, unsortedSegmentSumWasm);
  add(tf.Conv2DBackpropFilter, conv2DBackpropFilterWasm);
  replaceConv2DBackpropInputWasm();
}

let tfjsConv2DBackpropInput: tf.KernelFunc | undefined;

function replaceConv2DBackpropInputWasm(): void {
  const existing = tf.getKernel(tf.Conv2DBackpropInput, "wasm");
  if (existing?.kernelFunc === conv2DBackpropInputWasm) return;
  tfjsConv2DBackpropInput = existing?.kernelFunc;
  if (existing) tf.unregisterKernel(tf.Conv2DBackpropInput, "wasm");
  tf.registerKernel({ kernelName: tf.Conv2DBackpropInput, backendName: "wasm", kernelFunc: conv2DBackpropInputWasm, setupFunc: existing?.setupFunc });
}

/**
 * dx of a stride-1, dilation-1 NHWC convolution: dx = conv(dy, W'), W'[kh,kw,co,ci] =
 * W[FH-1-kh, FW-1-kw, ci, co], with padding FH-1-top above and whatever restores the input height
 * below (likewise for the width). Other cases go to tfjs' kernel.
 */
function conv2DBackpropInputWasm(args: KernelArgs): tf.TensorInfo {
  const { inputs, attrs, backend } = args;
  const b = backend as BackendWasm;
  const dyIn = inputs.dy as tf.TensorInfo;
  const filterIn = inputs.filter as tf.TensorInfo;
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const nhwc = tf.backend_util.convertConv2DDataFormat(dataFormat) === "channelsLast";
  const info = tf.backend_util.computeConv2DInfo(inputShape, filterIn.shape as [number, number, number, number], strides, 1, pad, dimRoundingMode, false, "channelsLast");
  if (!nhwc || info.strideHeight !== 1 || info.strideWidth !== 1 || dyIn.dtype !== "float32" || filterIn.dtype !== "float32") {
    if (!tfjsConv2DBackpropInput) throw new Error("Conv2DBackpropInput (wasm): no fallback kernel for this case");
    return tfjsConv2DBackpropInput(args) as tf.TensorInfo;
  }
  const { filterHeight: FH, filterWidth: FW, inHeight: H, inWidth: W, outHeight: OH, outWidth: OW } = info;
  const top = FH - 1 - info.padInfo.top;
  const left = FW - 1 - info.padInfo.left;
  const bottom = H - OH + FH - 1 - top;
  const right = W - OW + FW - 1 - left;
  const dx = tf.tidy(() => {
    const dy = asTensor(b, dyIn) as tf.Tensor4D; // [N, OH, OW, CO]
    const filter = asTensor(b, filterIn) as tf.Tensor4D; // [FH, FW, CI, CO]
    const flipped = FH === 1 && FW === 1 ? filter : tf.reverse(filter, [0, 1]);
    const swapped = tf.transpose(flipped, [0, 1, 3, 2]) as tf.Tensor4D; // [FH, FW, CO, CI]
    if (top < 0 || left < 0 || bottom < 0 || right < 0) {
      // Padding larger than the filter: crop the full correlation instead.
      const full = tf.conv2d(dy, swapped, 1, [[0, 0], [FH - 1, FH - 1], [FW - 1, FW - 1], [0, 0]]); // [N, OH+FH-1, OW+FW-1, CI]
      return tf.slice(full, [0, info.padInfo.top, info.padInfo.left, 0], [-1, H, W, -1]);
    }
    return tf.conv2d(dy, swapped, 1, [[0, 0], [top, bottom], [left, right], [0, 0]]); // [N, H, W, CI]
  });
  return asKernelOutput(b, dx);
}

/** out[segmentIds[i], ...] += x[i, ...], one pass; ids outside [0, numSegments) are dropped (as TF). */
function unsortedSegmentSumWasm({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo {
  const b = backend as BackendWasm;
  const x = inputs.x as tf.TensorInfo;
  const ids = inputs.segmentIds as tf.TensorInfo;
  const numSegments = Number((attrs as unknown as tf.UnsortedSegmentSumAttrs).numSegments);
  if (!Number.isInteger(numSegments) || numSegments < 0) throw new Error(`UnsortedSegmentSum: numSegments must be a non-negative integer, got ${numSegments}`);
  if (x.dtype !== "float32" && x.dtype !== "int32" && x.dtype !== "bool") throw new Error(`UnsortedSegmentSum (wasm): unsupported dtype ${x.dtype}`);
  if (ids.dtype !== "int32") throw new Error(`UnsortedSegmentSum (wasm): segmentIds must be int32, got ${ids.dtype}`);
  const r = ids.shape.length;
  if (r > x.shape.length || ids.shape.some((d, i) => d !== x.shape[i])) {
    throw new Error(`UnsortedSegmentSum: segmentIds shape [${ids.shape}] must be a prefix of x shape [${x.shape}]`);
  }
  const inner = x.shape.slice(r);
  const d = sizeOf(inner);
  const n = sizeOf(ids.shape);
  const out = b.makeOutput([numSegments, ...inner], x.dtype === "float32" ? "float32" : "int32");
  if (numSegments * d === 0) return out;
  // Views AFTER makeOutput: its malloc may grow (and replace) the WASM heap buffer.
  const o = b.typedArrayFromHeap(out) as Float32Array | Int32Array;
  const xv = b.typedArrayFromHeap(x) as Float32Array | Int32Array | Uint8Array;
  const sv = b.typedArrayFromHeap(ids) as Int32Array;
  o.fill(0);
  accumulateSegments(o, xv, sv, n, d, numSegments);
  return out;
}

/** o[ids[i] * d + k] += x[i * d + k]; ids outside [0, numSegments) are dropped. */
function accumulateSegments(
  o: Float32Array | Int32Array,
  xv: ArrayLike<number>,
  sv: ArrayLike<number>,
  n: number,
  d: number,
  numSegments: number,
): void {
  for (let i = 0; i < n; i++) {
    const s = sv[i];
    if (s < 0 || s >= numSegments) continue;
    let src = i * d;
    let dst = s * d;
    const end = src + d;
    while (src < end) o[dst++] += xv[src++];
  }
}

/**
 * The same one-pass segment sum for the pure-JS cpu backend, whose own kernel loops over every
 * segment and the whole input for each (for a 49,408-row embedding gradient, minutes per step).
 */
function unsortedSegmentSumCpu({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo {
  const b = backend as unknown as {
    readSync(dataId: object): ArrayLike<number>;
    makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array | Int32Array): tf.TensorInfo;
  };
  const x = inputs.x as tf.TensorInfo;
  const ids = inputs.segmentIds as tf.TensorInfo;
  const numSegments = Number((attrs as unknown as tf.UnsortedSegmentSumAttrs).numSegments);
  const r = ids.shape.length;
  if (r > x.shape.length || ids.shape.some((d, i) => d !== x.shape[i])) {
    throw new Error(`UnsortedSegmentSum: segmentIds shape [${ids.shape}] must be a prefix of x shape [${x.shape}]`);
  }
  const inner = x.shape.slice(r);
  const d = sizeOf(inner);
  const dtype = x.dtype === "float32" ? "float32" : "int32";
  const o = dtype === "float32" ? new Float32Array(numSegments * d) : new Int32Array(numSegments * d);
  accumulateSegments(o, b.readSync(x.dataId), b.readSync(ids.dataId), sizeOf(ids.shape), d, numSegments);
  return b.makeTensorInfo([numSegments, ...inner], dtype, o);
}

let cpuKernelsRegistered = false;

/** Replaces the cpu backend's quadratic UnsortedSegmentSum (idempotent). */
export function registerCpuKernels(): void {
  if (cpuKernelsRegistered) return;
  cpuKernelsRegistered = true;
  if (tf.getKernel(tf.UnsortedSegmentSum, "cpu")) tf.unregisterKernel(tf.UnsortedSegmentSum, "cpu");
  tf.registerKernel({ kernelName: tf.UnsortedSegmentSum, backendName: "cpu", kernelFunc: unsortedSegmentSumCpu });
}

/** im2col rows per matmul chunk are bounded so the patch matrix stays <= 32 MB. */
const IM2COL_MAX_ELEMENTS = 1 << 23;

/** dW[kh,kw,ci,co] = sum over (n,oh,ow) of x[n, oh*sh+kh-pt, ow*sw+kw-pl, ci] * dy[n,oh,ow,co]. */
function conv2DBackpropFilterWasm({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo {
  const b = backend as BackendWasm;
  const xIn = inputs.x as tf.TensorInfo;
  const dyIn = inputs.dy as tf.TensorInfo;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (xIn.dtype !== "float32" || dyIn.dtype !== "float32") throw new Error(`Conv2DBackpropFilter (wasm): float32 only, got ${xIn.dtype}/${dyIn.dtype}`);
  const nchw = tf.backend_util.convertConv2DDataFormat(dataFormat) === "channelsFirst";

  const dW = tf.tidy(() => {
    // Work in NHWC: x [N,H,W,Cin], dy [N,outH,outW,Cout].
    let xT = asTensor(b, xIn);
    let dyT = asTensor(b, dyIn);
    if (nchw) {
      xT = tf.transpose(xT, [0, 2, 3, 1]);
      dyT = tf.transpose(dyT, [0, 2, 3, 1]);
    }
    const info = tf.backend_util.computeConv2DInfo(xT.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false, "channelsLast");
    const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, outChannels: CO } = info;
    const { filterHeight: FH, filterWidth: FW, strideHeight: SH, strideWidth: SW, dilationHeight: DH, dilationWidth: DW } = info;
    const PT = info.padInfo.top;
    const PL = info.padInfo.left;
    if (dyT.shape[1] !== OH || dyT.shape[2] !== OW || dyT.shape[3] !== CO) {
      throw new Error(`Conv2DBackpropFilter: dy shape [${dyIn.shape}] does not match the convolution output [${N},${OH},${OW},${CO}]`);
    }
    const K = FH * FW * C;
    const rows = N * OH * OW;
    if (rows === 0 || K === 0 || CO === 0) return tf.zeros([FH, FW, C, CO]);
    if (SH === 1 && SW === 1 && DH === 1 && DW === 1 && (FH > 1 || FW > 1)) {
      // The batch becomes the contraction axis of a forward XNNPACK convolution (no im2col):
      // dW[kh,kw,ci,co] = conv(x as [C, H, W, N], dy as a [OH, OW, N, CO] filter)[ci, kh, kw, co].
      // Measured 1.1-2.2x faster than im2col + matmul for 8-64 channels.
      const xPadded = PT > 0 || PL > 0 || info.padInfo.bottom > 0 || info.padInfo.right > 0
        ? tf.pad(xT, [[0, 0], [PT, info.padInfo.bottom], [PL, info.padInfo.right], [0, 0]])
        : xT;
      const xc = tf.transpose(xPadded, [3, 1, 2, 0]) as tf.Tensor4D; // [C, H+pads, W+pads, N]
      const dyf = tf.transpose(dyT, [1, 2, 0, 3]) as tf.Tensor4D; // [OH, OW, N, CO]
      const out = tf.conv2d(xc, dyf, 1, "valid"); // [C, FH, FW, CO]
      return tf.transpose(out, [1, 2, 0, 3]); // [FH, FW, C, CO]
    }
    // dW^T [CO, K] = dy^T [CO, rows] x patches [rows, K]: both operands untransposed, because
    // the wasm BatchMatMul only takes its XNNPACK (SIMD, threaded) path for transposeA = transposeB
    // = false; any transposed matmul falls back to a naive single-threaded C++ loop.
    const dyCols = tf.transpose(tf.reshape(dyT, [rows, CO])); // [CO, rows]
    if (FH === 1 && FW === 1 && SH === 1 && SW === 1 && PT === 0 && PL === 0 && OH === H && OW === W) {
      // A 1x1 convolution's patch matrix is x itself.
      return tf.reshape(tf.transpose(tf.matMul(dyCols, tf.reshape(xT, [rows, C]))), [1, 1, C, CO]); // [1, 1, C, CO]
    }
    const chunk = Math.max(1, Math.min(rows, Math.floor(IM2COL_MAX_ELEMENTS / K)));
    let acc: tf.Tensor | undefined;
    for (let r0 = 0; r0 < rows; r0 += chunk) {
      const r1 = Math.min(rows, r0 + chunk);
      const next = tf.tidy(() => {
        const pInfo = b.makeOutput([r1 - r0, K], "float32");
        // Views AFTER makeOutput: its malloc may grow (and replace) the WASM heap buffer.
        const P = b.typedArrayFromHeap(pInfo) as Float32Array;
        const X = b.typedArrayFromHeap({ dataId: xT.dataId, shape: xT.shape, dtype: "float32" }) as Float32Array;
        im2col(X, P, r0, r1, { H, W, C, OH, OW, FH, FW, SH, SW, DH, DW, PT, PL });
        const patches = tf.engine().makeTensorFromTensorInfo(pInfo, b);
        const dyChunk = r0 === 0 && r1 === rows ? dyCols : tf.slice(dyCols, [0, r0], [CO, r1 - r0]);
        const part = tf.matMul(dyChunk, patches); // [CO, K]
        return acc ? tf.add(acc, part) : part;
      });
      acc?.dispose();
      acc = next;
    }
    return tf.reshape(tf.transpose(acc as tf.Tensor), [FH, FW, C, CO]);
  });
  return asKernelOutput(b, dW);
}

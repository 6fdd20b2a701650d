/**
 * `BatchMatMul` and `_FusedMatMul` for the tfjs wasm backend on a system BLAS (`cblas_sgemm`
 * through koffi, see ./blas), reading and writing the WASM heap in place (no copies).
 *
 * Every transpose combination goes straight to sgemm (BLAS takes op(A) and op(B) as flags), and
 * batch dimensions broadcast as in NumPy (https://numpy.org/doc/stable/user/basics.broadcasting.html):
 * out[..., M, N] = op(a)[..., M, K] @ op(b)[..., K, N] over the broadcast batch shape. When b has a
 * single batch and a is not transposed, the batches of a are one [batch*M, K] matrix and the
 * whole product is one call. `_FusedMatMul` (tf.fused.matMul) pre-fills the output rows with the
 * bias and accumulates into them (beta = 1); activations other than `linear` run as tf ops on the
 * product.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import type { Blas } from "./blas";
import { KernelArgs, asKernelOutput, asTensor, f32, ownTensor, sizeOf } from "./kernel_util";

export interface MatMulGeometry {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  /** Batch shapes of a and b (everything before the last two axes) and their broadcast. */
  aBatch: number[];
  bBatch: number[];
  outBatch: number[];
}

/** Checks the shapes of op(a) @ op(b) and returns the product's geometry (tfjs' error messages). */
export function matMulGeometry(aShape: readonly number[], bShape: readonly number[], transA: boolean, transB: boolean): MatMulGeometry {
  const ar = aShape.length;
  const br = bShape.length;
  if (ar < 2 || br < 2) throw new Error(`BatchMatMul: operands need rank >= 2, got a [${aShape}] and b [${bShape}]`);
  const k = transA ? aShape[ar - 2] : aShape[ar - 1];
  const kb = transB ? bShape[br - 1] : bShape[br - 2];
  const m = transA ? aShape[ar - 1] : aShape[ar - 2];
  const n = transB ? bShape[br - 2] : bShape[br - 1];
  if (k !== kb) {
    throw new Error(`Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${aShape} and ${bShape} and transposeA=${transA} and transposeB=${transB} must match.`);
  }
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(aBatch, bBatch);
  return { m, n, k, transA, transB, aBatch, bBatch, outBatch };
}

/** For each batch of `out` (row-major), the index of the batch of `inp` it reads (broadcasting). */
export function broadcastBatchIndex(out: readonly number[], inp: readonly number[]): Int32Array {
  const total = sizeOf(out);
  const idx = new Int32Array(total);
  const rank = out.length;
  const offset = rank - inp.length;
  // Strides of inp, aligned right, 0 where inp broadcasts (size 1 or absent).
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let d = inp.length - 1; d >= 0; d--) {
    strides[d + offset] = inp[d] === 1 ? 0 : s;
    s *= inp[d];
  }
  const coord = new Array<number>(rank).fill(0);
  for (let i = 0; i < total; i++) {
    let j = 0;
    for (let d = 0; d < rank; d++) j += coord[d] * strides[d];
    idx[i] = j;
    for (let d = rank - 1; d >= 0; d--) {
      if (++coord[d] < out[d]) break;
      coord[d] = 0;
    }
  }
  return idx;
}

/**
 * out = op(a) @ op(b) (+ beta * out) for views of row-major operands with the given geometry.
 * With beta = 1 the caller has pre-filled `out` (the bias).
 */
export function gemmBatched(blas: Blas, g: MatMulGeometry, a: Float32Array, b: Float32Array, out: Float32Array, beta = 0): void {
  const { m, n, k, transA, transB } = g;
  const batches = sizeOf(g.outBatch);
  if (batches * m * n === 0) return;
  if (k === 0) {
    if (beta === 0) out.fill(0);
    return;
  }
  const lda = transA ? m : k;
  const ldb = transB ? k : n;
  const aSize = m * k;
  const bSize = k * n;
  const cSize = m * n;
  const aCount = sizeOf(g.aBatch);
  const bCount = sizeOf(g.bBatch);
  if (bCount === 1 && !transA && aCount === batches) {
    // The batches of a stacked are one [batches * m, k] matrix.
    blas.sgemm(false, transB, batches * m, n, k, 1, a, lda, b, ldb, beta, out, n);
    return;
  }
  // An operand with as many batches as the output broadcasts nothing: batch i is its batch i.
  const ai = aCount === batches ? undefined : broadcastBatchIndex(g.outBatch, g.aBatch);
  const bi = bCount === batches ? undefined : broadcastBatchIndex(g.outBatch, g.bBatch);
  for (let i = 0; i < batches; i++) {
    const ao = (ai ? ai[i] : i) * aSize;
    const bo = (bi ? bi[i] : i) * bSize;
    const co = i * cSize;
    blas.sgemm(transA, transB, m, n, k, 1, a.subarray(ao, ao + aSize), lda, b.subarray(bo, bo + bSize), ldb, beta, out.subarray(co, co + cSize), n);
  }
}

export function makeBatchMatMul(blas: Blas, fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { inputs, attrs, backend } = args;
    const b = backend as BackendWasm;
    const x = inputs.a as tf.TensorInfo;
    const y = inputs.b as tf.TensorInfo;
    if (x.dtype !== "float32" || y.dtype !== "float32") {
      if (fallback) return fallback(args);
      throw new Error(`BatchMatMul: float32 only, got ${x.dtype} and ${y.dtype}`);
    }
    const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
    const g = matMulGeometry(x.shape, y.shape, Boolean(transposeA), Boolean(transposeB));
    const out = b.makeOutput([...g.outBatch, g.m, g.n], "float32");
    if (sizeOf(out.shape) === 0) return out;
    gemmBatched(blas, g, f32(b, x), f32(b, y), f32(b, out));
    return out;
  };
}

const NATIVE_ACTIVATIONS = ["linear", "relu", "relu6", "elu", "sigmoid", "leakyrelu", "prelu"];

export function makeFusedMatMul(blas: Blas, fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { inputs, attrs, backend } = args;
    const b = backend as BackendWasm;
    const x = inputs.a as tf.TensorInfo;
    const y = inputs.b as tf.TensorInfo;
    const bias = inputs.bias as tf.TensorInfo | undefined;
    const prelu = inputs.preluActivationWeights as tf.TensorInfo | undefined;
    const { transposeA, transposeB, activation, leakyreluAlpha } = attrs as unknown as tf._FusedMatMulAttrs;
    const act = activation ?? "linear";
    const g = matMulGeometry(x.shape, y.shape, Boolean(transposeA), Boolean(transposeB));
    const biasPerColumn = !bias || (bias.dtype === "float32" && sizeOf(bias.shape) === g.n && bias.shape[bias.shape.length - 1] === g.n) || (bias.dtype === "float32" && sizeOf(bias.shape) === 1);
    if (x.dtype !== "float32" || y.dtype !== "float32" || !biasPerColumn || !NATIVE_ACTIVATIONS.includes(act)) {
      if (fallback) return fallback(args);
      throw new Error(`_FusedMatMul: unsupported case (dtypes ${x.dtype}/${y.dtype}, bias [${bias?.shape}], activation ${act})`);
    }
    const out = b.makeOutput([...g.outBatch, g.m, g.n], "float32");
    const total = sizeOf(out.shape);
    if (total === 0) return out;
    const o = f32(b, out);
    let beta = 0;
    if (bias) {
      const bv = f32(b, bias);
      if (bv.length === 1) o.fill(bv[0]);
      else for (let r = 0; r < total; r += g.n) o.set(bv, r);
      beta = 1;
    }
    gemmBatched(blas, g, f32(b, x), f32(b, y), o, beta);
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

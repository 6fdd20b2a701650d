/**
 * Dynamic int8 quantisation of the linear layers in an ONNX export (Jacob et al. 2018,
 * https://arxiv.org/abs/1712.05877; the scheme of onnxruntime's `quantize_dynamic`): each weight
 * is stored as int8, symmetric per output column (scale = max|w| / 127, zero point 0), and the
 * activations are quantised to uint8 at run time, per tensor, by DynamicQuantizeLinear.
 *
 * The graph fragment is DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(a_scale * w_scale)
 * -> Add(bias), standard opset-17 operators (so onnxruntime-web and transformers.js run it), in
 * exactly the shape onnxruntime's optimiser fuses into one DynamicQuantizeMatMul node, whose
 * uint8 x int8 GEMM uses VNNI / AMX where the CPU has them. On x86 CPUs with AVX2 but no VNNI,
 * onnxruntime's u8 x s8 kernel can saturate (its docs say so); measure there before relying on it.
 */
import type { GraphBuilder } from "./graph";
import { attr } from "./graph";

export const QUANTIZATIONS = ["int8"] as const;
export type Quantization = (typeof QUANTIZATIONS)[number];

/** `value` as a Quantization (undefined stays undefined); a one-line error naming `what` otherwise. */
export function checkQuantization(value: unknown, what: string): Quantization | undefined {
  if (value === undefined) return undefined;
  if (!QUANTIZATIONS.includes(value as Quantization)) throw new RangeError(`${what} must be one of ${QUANTIZATIONS.join(", ")}, got ${JSON.stringify(value)}`);
  return value as Quantization;
}

/** A description of the scheme, for config.json and model metadata. */
export const INT8_SCHEME = "linear layers: int8 weights, symmetric per output column; uint8 activations, dynamic per tensor (DynamicQuantizeLinear + MatMulInteger)";

export interface QuantizedColumns {
  /** [rows, cols] row-major, like the input. */
  values: Int8Array;
  /** [cols]: w[r, c] ~ values[r, c] * scales[c]. */
  scales: Float32Array;
}

/** Symmetric int8 per column of a row-major [rows, cols] matrix (x @ w: a column is one output). */
export function quantizeColumns(w: Float32Array, rows: number, cols: number): QuantizedColumns {
  if (w.length !== rows * cols) throw new RangeError(`quantizeColumns: ${w.length} values for [${rows}, ${cols}]`);
  const scales = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    for (let c = 0; c < cols; c++) {
      const a = Math.abs(w[row + c]);
      if (a > scales[c]) scales[c] = a;
    }
  }
  for (let c = 0; c < cols; c++) scales[c] = scales[c] > 0 ? scales[c] / 127 : 1; // an all-zero column stays zero at any scale
  const values = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    for (let c = 0; c < cols; c++) values[row + c] = Math.max(-127, Math.min(127, Math.round(w[row + c] / scales[c])));
  }
  return { values, scales };
}

/**
 * `x @ W` with W int8 [in, out] (`weight`) and its per-column scales [out] (`scale`), x float32 of
 * any rank; returns the float32 product (the caller adds the bias, as onnxruntime's fusion expects).
 */
export function dynamicQuantizedMatMul(g: GraphBuilder, x: string, weight: string, scale: string): string {
  const [xq, xScale, xZero] = g.nodeN("DynamicQuantizeLinear", [x], 3); // uint8, scalar scale, scalar zero point
  const acc = g.node("MatMulInteger", [xq, weight, xZero]); // int32 [..., out]
  const multiplier = g.node("Mul", [xScale, scale]); // [out]
  return g.node("Mul", [g.node("Cast", [acc], { to: attr.int(1) }), multiplier]); // float32 [..., out]
}

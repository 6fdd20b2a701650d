/**
 * CLIP's building blocks as ONNX nodes, mirroring src/model/{layers,attention}.ts op for op
 * (pre-LN residual attention blocks of OpenAI's `ResidualAttentionBlock`,
 * https://github.com/openai/CLIP/blob/main/clip/model.py), with standard opset-17 operators
 * only: MatMul, Add, Mul, LayerNormalization, Sigmoid / Erf, Split, Reshape, Transpose, Softmax.
 *
 * Weights are read from a `TensorSource` in PyTorch's layout and OpenAI's names, each one only
 * when the model is written. Linear weights ([out, in]) are stored transposed ([in, out]) so
 * every projection is a plain MatMul, as in cliplab's own layout.
 */
import type { TensorSource } from "../../model/clip";
import { NORM_EPS } from "../../model/layers";
import { GraphBuilder, attr } from "./graph";
import { Quantization, dynamicQuantizedMatMul, quantizeColumns } from "./quantize";

export type OnnxActivation = "quick_gelu" | "gelu";

/**
 * Reads weights from a source into a graph's initializers, under their state_dict names; with
 * `quantize`, the transformer and attention-pool projections are stored as int8 (./quantize.ts).
 */
export class WeightReader {
  private readonly added = new Map<string, string>();
  /** Quantised weights made for one initializer and not yet taken by the other (values, scales). */
  private readonly pendingQuantized = new Map<string, { values?: Int8Array; scales?: Float32Array }>();

  constructor(
    readonly g: GraphBuilder,
    private readonly source: TensorSource,
    readonly quantize?: Quantization,
  ) {}

  private shapeOf(name: string): number[] {
    const shape = this.source.shape(name);
    if (!shape) throw new Error(`ONNX export: the weights have no tensor named ${name}`);
    return [...shape];
  }

  /** The tensor as stored, optionally under other dims with the same element count (e.g. [D] as [1, 1, D]). */
  raw(name: string, dims?: number[]): string {
    const known = this.added.get(name);
    if (known) return known;
    const shape = dims ?? this.shapeOf(name);
    const id = this.g.initializer(name, "float32", shape, () => this.source.read(name));
    this.added.set(name, id);
    return id;
  }

  /** A Linear weight [out, in] as [in, out], for `x @ W`. */
  linear(name: string): string {
    const key = `${name}.T`;
    const known = this.added.get(key);
    if (known) return known;
    const [rows, cols] = this.shapeOf(name);
    const id = this.g.initializer(key, "float32", [cols, rows], () => {
      const data = this.source.read(name);
      const out = new Float32Array(data.length);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
      return out;
    });
    this.added.set(key, id);
    return id;
  }

  /**
   * A Linear weight [out, in] as int8 [in, out] plus its per-column scales [out]; the weight is
   * read and quantised once, when the first of the two initializers is written.
   */
  linearInt8(name: string): { weight: string; scale: string } {
    const key = `${name}.T.int8`;
    const known = this.added.get(key);
    if (known) return { weight: known, scale: this.added.get(`${key}.scale`)! };
    const [rows, cols] = this.shapeOf(name);
    const quantized = () => {
      let pending = this.pendingQuantized.get(key);
      if (!pending) {
        const data = this.source.read(name);
        const transposed = new Float32Array(data.length); // [in, out]
        for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) transposed[c * rows + r] = data[r * cols + c];
        pending = quantizeColumns(transposed, cols, rows);
        this.pendingQuantized.set(key, pending);
      }
      return pending;
    };
    const done = (pending: { values?: Int8Array; scales?: Float32Array }) => {
      if (!pending.values && !pending.scales) this.pendingQuantized.delete(key);
    };
    const takeValues = () => {
      const pending = quantized();
      const values = pending.values!;
      pending.values = undefined;
      done(pending);
      return values;
    };
    const takeScales = () => {
      const pending = quantized();
      const scales = pending.scales!;
      pending.scales = undefined;
      done(pending);
      return scales;
    };
    const weight = this.g.initializer(key, "int8", [cols, rows], takeValues);
    const scale = this.g.initializer(`${key}.scale`, "float32", [rows], takeScales);
    this.added.set(key, weight);
    this.added.set(`${key}.scale`, scale);
    return { weight, scale };
  }
}

/** `x @ W^T + b` for the Linear weight `weight` and bias `bias`: int8 when the reader quantises, else as `fp32` builds it. */
function projection(w: WeightReader, x: string, weight: string, bias: string, fp32: () => string): string {
  if (!w.quantize) return fp32();
  const q = w.linearInt8(weight);
  return w.g.node("Add", [dynamicQuantizedMatMul(w.g, x, q.weight, q.scale), w.raw(bias)]);
}

/** `x @ W^T + b` for a torch Linear under `prefix` (weight [out, in], bias [out]), x of any rank. */
export function linear(w: WeightReader, x: string, prefix: string): string {
  const weight = `${prefix}.weight`;
  const bias = `${prefix}.bias`;
  return projection(w, x, weight, bias, () => w.g.node("Add", [w.g.node("MatMul", [x, w.linear(weight)]), w.raw(bias)]));
}

/** The same for a 2-D x [N, in], as one Gemm (the bias add fused into the product). */
export function gemm(w: WeightReader, x: string, prefix: string, weight = `${prefix}.weight`, bias = `${prefix}.bias`): string {
  return projection(w, x, weight, bias, () => w.g.node("Gemm", [x, w.linear(weight), w.raw(bias)]));
}

/** LayerNorm over the last axis, eps 1e-5 (opset 17 LayerNormalization). */
export function layerNorm(w: WeightReader, x: string, prefix: string): string {
  return w.g.node("LayerNormalization", [x, w.raw(`${prefix}.weight`), w.raw(`${prefix}.bias`)], {
    axis: attr.int(-1),
    epsilon: attr.float(NORM_EPS),
  });
}

/** QuickGELU `x * sigmoid(1.702 x)` or exact GELU `x/2 * (1 + erf(x / sqrt 2))`, in cliplab's order of operations. */
export function activate(g: GraphBuilder, x: string, kind: OnnxActivation): string {
  if (kind === "quick_gelu") return g.node("Mul", [x, g.node("Sigmoid", [g.node("Mul", [x, g.scalar(1.702)])])]);
  const half = g.node("Mul", [x, g.scalar(0.5)]);
  const erf = g.node("Erf", [g.node("Mul", [x, g.scalar(Math.SQRT1_2)])]);
  return g.node("Mul", [half, g.node("Add", [erf, g.scalar(1)])]);
}

/**
 * Scaled dot-product attention, `heads` heads, over projected q, k, v whose shapes as
 * [B, T, H, hd] are the shape tensors `qShape` and `kvShape` (q [B, Tq, ...], k and v [B, Tk, ...],
 * given 3-D or flattened 2-D); q is scaled before the product, as torch does. `mask`: additive
 * [Tq, Tk] of 0 / -inf. Returns [B, Tq, H, hd] reshaped to `outShape`.
 */
export function attend(
  g: GraphBuilder,
  q: string,
  k: string,
  v: string,
  heads: number,
  headDim: number,
  shapes: { q: string; kv: string; out: string },
  mask?: string,
): string {
  const toHeads = { perm: attr.ints([0, 2, 1, 3]) };
  const qh = g.node("Mul", [g.node("Transpose", [g.node("Reshape", [q, shapes.q])], toHeads), g.scalar(headDim ** -0.5)]); // [B, H, Tq, hd]
  const kt = g.node("Transpose", [g.node("Reshape", [k, shapes.kv])], { perm: attr.ints([0, 2, 3, 1]) }); // [B, H, hd, Tk]
  const vh = g.node("Transpose", [g.node("Reshape", [v, shapes.kv])], toHeads); // [B, H, Tk, hd]
  let scores = g.node("MatMul", [qh, kt]); // [B, H, Tq, Tk]
  if (mask) scores = g.node("Add", [scores, mask]);
  const probs = g.node("Softmax", [scores], { axis: attr.int(-1) });
  const out = g.node("Transpose", [g.node("MatMul", [probs, vh])], toHeads); // [B, Tq, H, hd]
  return g.node("Reshape", [out, shapes.out]);
}

/**
 * Self-attention on the sequence-major flat stream (q, k, v [T*B, D], as torch's
 * MultiheadAttention): heads as [T, B*H, hd] (`seqHeads`, a shape tensor), whose batch moves are
 * ones onnxruntime folds into its matmuls instead of copying. Returns [T*B, D].
 */
function attendSequenceMajor(g: GraphBuilder, q: string, k: string, v: string, width: number, heads: number, seqHeads: string, mask?: string): string {
  const headDim = width / heads;
  const toBatch = { perm: attr.ints([1, 0, 2]) };
  const qh = g.node("Mul", [g.node("Transpose", [g.node("Reshape", [q, seqHeads])], toBatch), g.scalar(headDim ** -0.5)]); // [B*H, T, hd]
  const kt = g.node("Transpose", [g.node("Reshape", [k, seqHeads])], { perm: attr.ints([1, 2, 0]) }); // [B*H, hd, T]
  const vh = g.node("Transpose", [g.node("Reshape", [v, seqHeads])], toBatch); // [B*H, T, hd]
  let scores = g.node("MatMul", [qh, kt]); // [B*H, T, T]
  if (mask) scores = g.node("Add", [scores, mask]);
  const probs = g.node("Softmax", [scores], { axis: attr.int(-1) });
  const out = g.node("Transpose", [g.node("MatMul", [probs, vh])], toBatch); // [T, B*H, hd]
  return g.node("Reshape", [out, g.ints([-1, width])]); // [T*B, D]
}

/**
 * The residual stream of a transformer, kept flat and sequence-major as [T*B, D], so that every
 * projection is one Gemm with its bias (as cliplab's `linear` flattens) and the attention heads
 * need no copies; `seqHeads` is the shape tensor [T, -1, hd].
 */
export interface FlatTokens {
  x: string;
  seqHeads: string;
}

/** torch.nn.MultiheadAttention self-attention with the fused q,k,v projection (`in_proj_*`), on [N, D]. */
export function selfAttention(w: WeightReader, t: FlatTokens, prefix: string, width: number, heads: number, mask?: string): string {
  const qkv = gemm(w, t.x, prefix, `${prefix}.in_proj_weight`, `${prefix}.in_proj_bias`); // [N, 3D]
  const [q, k, v] = w.g.nodeN("Split", [qkv], 3, { axis: attr.int(1) }); // equal thirds
  return gemm(w, attendSequenceMajor(w.g, q, k, v, width, heads, t.seqHeads, mask), `${prefix}.out_proj`); // [N, D]
}

/** x + attn(ln_1(x)), then x + mlp(ln_2(x)), on the flat stream [N, D]. */
export function residualBlock(w: WeightReader, t: FlatTokens, prefix: string, width: number, heads: number, act: OnnxActivation, mask?: string): string {
  return w.g.scope(prefix, () => {
    const h = w.g.node("Add", [t.x, selfAttention(w, { x: layerNorm(w, t.x, `${prefix}.ln_1`), seqHeads: t.seqHeads }, `${prefix}.attn`, width, heads, mask)]);
    const hidden = activate(w.g, gemm(w, layerNorm(w, h, `${prefix}.ln_2`), `${prefix}.mlp.c_fc`), act); // [N, hidden]
    return w.g.node("Add", [h, gemm(w, hidden, `${prefix}.mlp.c_proj`)]);
  });
}

/**
 * OpenAI's `Transformer`: `layers` residual blocks under `prefix.resblocks.{i}`, on x [B, T, D];
 * returns [B, T, D]. Inside, the stream is sequence-major like OpenAI's (`x.permute(1, 0, 2)`).
 */
export function transformer(w: WeightReader, x: string, prefix: string, layers: number, width: number, heads: number, act: OnnxActivation, mask?: string): string {
  const g = w.g;
  const seqFirst = g.node("Transpose", [x], { perm: attr.ints([1, 0, 2]) }); // [T, B, D]
  const tb = g.node("Shape", [seqFirst], { start: attr.int(0), end: attr.int(2) }); // [2]: T, B
  const seqHeads = g.node("Concat", [g.node("Shape", [seqFirst], { start: attr.int(0), end: attr.int(1) }), g.ints([-1, width / heads])], { axis: attr.int(0) });
  let h = g.node("Reshape", [seqFirst, g.ints([-1, width])]); // [T*B, D]
  for (let i = 0; i < layers; i++) h = residualBlock(w, { x: h, seqHeads }, `${prefix}.resblocks.${i}`, width, heads, act, mask);
  const tbd = g.node("Reshape", [h, g.node("Concat", [tb, g.ints([width])], { axis: attr.int(0) })]); // [T, B, D]
  return g.node("Transpose", [tbd], { perm: attr.ints([1, 0, 2]) }); // [B, T, D]
}

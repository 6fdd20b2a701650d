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

export type OnnxActivation = "quick_gelu" | "gelu";

/** Reads weights from a source into a graph's initializers, under their state_dict names. */
export class WeightReader {
  private readonly added = new Map<string, string>();

  constructor(
    readonly g: GraphBuilder,
    private readonly source: TensorSource,
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
}

/** `x @ W^T + b` for a torch Linear under `prefix` (weight [out, in], bias [out]). */
export function linear(w: WeightReader, x: string, prefix: string, bias = true): string {
  const y = w.g.node("MatMul", [x, w.linear(`${prefix}.weight`)]);
  return bias ? w.g.node("Add", [y, w.raw(`${prefix}.bias`)]) : y;
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
 * Scaled dot-product attention over projected q [B, Tq, D], k and v [B, Tk, D], `heads` heads;
 * q is scaled before the product (as torch does). `mask`: additive [Tq, Tk] of 0 / -inf.
 */
export function attend(g: GraphBuilder, q: string, k: string, v: string, width: number, heads: number, mask?: string): string {
  const headDim = width / heads;
  const split = g.ints([0, 0, heads, headDim]); // Reshape: 0 keeps B and T
  const qh = g.node("Mul", [g.node("Transpose", [g.node("Reshape", [q, split])], { perm: attr.ints([0, 2, 1, 3]) }), g.scalar(headDim ** -0.5)]); // [B, H, Tq, hd]
  const kt = g.node("Transpose", [g.node("Reshape", [k, split])], { perm: attr.ints([0, 2, 3, 1]) }); // [B, H, hd, Tk]
  const vh = g.node("Transpose", [g.node("Reshape", [v, split])], { perm: attr.ints([0, 2, 1, 3]) }); // [B, H, Tk, hd]
  let scores = g.node("MatMul", [qh, kt]); // [B, H, Tq, Tk]
  if (mask) scores = g.node("Add", [scores, mask]);
  const probs = g.node("Softmax", [scores], { axis: attr.int(-1) });
  const out = g.node("Transpose", [g.node("MatMul", [probs, vh])], { perm: attr.ints([0, 2, 1, 3]) }); // [B, Tq, H, hd]
  return g.node("Reshape", [out, g.ints([0, 0, width])]); // [B, Tq, D]
}

/** torch.nn.MultiheadAttention self-attention with the fused q,k,v projection (`in_proj_*`). */
export function selfAttention(w: WeightReader, x: string, prefix: string, width: number, heads: number, mask?: string): string {
  const qkv = w.g.node("Add", [w.g.node("MatMul", [x, w.linear(`${prefix}.in_proj_weight`)]), w.raw(`${prefix}.in_proj_bias`)]); // [B, T, 3D]
  const [q, k, v] = w.g.nodeN("Split", [qkv], 3, { axis: attr.int(2) }); // equal thirds
  return linear(w, attend(w.g, q, k, v, width, heads, mask), `${prefix}.out_proj`);
}

/** x + attn(ln_1(x)), then x + mlp(ln_2(x)). */
export function residualBlock(w: WeightReader, x: string, prefix: string, width: number, heads: number, act: OnnxActivation, mask?: string): string {
  return w.g.scope(prefix, () => {
    const h = w.g.node("Add", [x, selfAttention(w, layerNorm(w, x, `${prefix}.ln_1`), `${prefix}.attn`, width, heads, mask)]);
    const hidden = activate(w.g, linear(w, layerNorm(w, h, `${prefix}.ln_2`), `${prefix}.mlp.c_fc`), act);
    return w.g.node("Add", [h, linear(w, hidden, `${prefix}.mlp.c_proj`)]);
  });
}

/** OpenAI's `Transformer`: `layers` residual blocks under `prefix.resblocks.{i}`. */
export function transformer(w: WeightReader, x: string, prefix: string, layers: number, width: number, heads: number, act: OnnxActivation, mask?: string): string {
  let h = x;
  for (let i = 0; i < layers; i++) h = residualBlock(w, h, `${prefix}.resblocks.${i}`, width, heads, act, mask);
  return h;
}

/**
 * CLIP's text tower as an ONNX graph, mirroring src/model/text_transformer.ts: token and
 * position embeddings, the causal transformer, ln_final, the features at the first end-of-text
 * token (the first argmax of the ids; EOT has the largest id), `@ text_projection`.
 *
 * Input `input_ids` int64 [batch, sequence], 1 <= sequence <= context_length (a shorter row equals
 * its zero-padded context under the causal mask). Output `text_embeds` [batch, D], unnormalised
 * (OpenAI's `encode_text`). The names are those of Hugging Face's `text_model.onnx`.
 */
import { ClipConfig } from "../../model/config";
import { GraphBuilder, attr } from "./graph";
import { OnnxActivation, WeightReader, layerNorm, transformer } from "./clip_layers";

export const TEXT_INPUT = "input_ids";
export const TEXT_OUTPUT = "text_embeds";

/** Additive causal mask [T, T]: 0 on and below the diagonal, -inf above (as src/model/attention.ts). */
function causalMaskValues(length: number): Float32Array {
  const data = new Float32Array(length * length);
  for (let i = 0; i < length; i++) for (let j = i + 1; j < length; j++) data[i * length + j] = -Infinity;
  return data;
}

/** Adds the text tower to `g`: input `input_ids` [batch, sequence], output `text_embeds` [batch, D]. */
export function buildTextGraph(g: GraphBuilder, w: WeightReader, cfg: ClipConfig): void {
  const t = cfg.text_cfg;
  const ctx = t.context_length;
  const ids = g.input(TEXT_INPUT, "int64", ["batch", "sequence"]);
  const act: OnnxActivation = cfg.quick_gelu ? "quick_gelu" : "gelu";
  const length = g.node("Shape", [ids], { start: attr.int(1), end: attr.int(2) }); // [1]: T
  const embedded = g.node("Gather", [w.raw("token_embedding.weight"), ids], { axis: attr.int(0) }); // [B, T, width]
  const positions = g.node("Slice", [w.raw("positional_embedding"), g.ints([0]), length, g.ints([0])]); // [T, width]
  const maskFull = g.initializer("causal_mask", "float32", [ctx, ctx], causalMaskValues(ctx));
  const mask = g.node("Slice", [maskFull, g.ints([0, 0]), g.node("Concat", [length, length], { axis: attr.int(0) }), g.ints([0, 1])]); // [T, T]
  let x = g.node("Add", [embedded, positions]); // [B, T, width]
  x = transformer(w, x, "transformer", t.layers, t.width, t.heads, act, mask);
  const eot = g.node("ArgMax", [ids], { axis: attr.int(1), keepdims: attr.int(1), select_last_index: attr.int(0) }); // [B, 1]
  const pooled = g.node("GatherND", [x, eot], { batch_dims: attr.int(1) }); // [B, width]
  const features = g.node("MatMul", [layerNorm(w, pooled, "ln_final"), w.raw("text_projection")]); // [B, embed]
  g.output(features, TEXT_OUTPUT, "float32", ["batch", cfg.embed_dim]);
}

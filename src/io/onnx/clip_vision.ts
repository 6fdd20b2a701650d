/**
 * CLIP's image towers as ONNX graphs, mirroring src/model/vision_transformer.ts (ViT,
 * https://arxiv.org/abs/2010.11929) and src/model/modified_resnet.ts (ModifiedResNet with an
 * attention pool, https://arxiv.org/abs/2103.00020 §2.4), inference mode (BatchNorm uses the
 * running statistics).
 *
 * Input `pixel_values` is NCHW float32 [batch, 3, S, S], CLIP-normalised: the layout Hugging
 * Face's and transformers.js's CLIP image processors produce and their `vision_model.onnx`
 * takes, so an export drops into a browser pipeline unchanged. Output `image_embeds` [batch, D],
 * unnormalised (OpenAI's `encode_image`).
 */
import { ClipConfig, visionHeads, visionTower } from "../../model/config";
import { NORM_EPS } from "../../model/layers";
import { resnetPlan } from "../../model/params";
import { GraphBuilder, attr } from "./graph";
import { OnnxActivation, WeightReader, attend, layerNorm, linear, transformer } from "./clip_layers";

export const VISION_INPUT = "pixel_values";
export const VISION_OUTPUT = "image_embeds";

/** The ViT tower: patch conv, class token, positions, ln_pre, transformer, ln_post on the class token, `@ proj`. */
function visionTransformer(w: WeightReader, pixels: string, cfg: ClipConfig, act: OnnxActivation): string {
  const g = w.g;
  const v = cfg.vision_cfg;
  const patch = v.patch_size as number;
  const grid = v.image_size / patch;
  return g.scope("visual", () => {
    const conv = g.node("Conv", [pixels, w.raw("visual.conv1.weight")], {
      kernel_shape: attr.ints([patch, patch]),
      strides: attr.ints([patch, patch]),
    }); // [B, width, g, g]
    const tokens = g.node("Transpose", [g.node("Reshape", [conv, g.ints([0, v.width, grid * grid])])], { perm: attr.ints([0, 2, 1]) }); // [B, g*g, width]
    const batch = g.node("Shape", [pixels], { start: attr.int(0), end: attr.int(1) }); // [1]: B
    const clsShape = g.node("Concat", [batch, g.ints([1, v.width])], { axis: attr.int(0) });
    const cls = g.node("Expand", [w.raw("visual.class_embedding", [1, 1, v.width]), clsShape]); // [B, 1, width]
    let x = g.node("Add", [g.node("Concat", [cls, tokens], { axis: attr.int(1) }), w.raw("visual.positional_embedding")]); // [B, g*g+1, width]
    x = layerNorm(w, x, "visual.ln_pre");
    x = transformer(w, x, "visual.transformer", v.layers as number, v.width, visionHeads(cfg), act);
    const clsOut = g.node("Gather", [x, g.constant("int64", [], [0])], { axis: attr.int(1) }); // [B, width]
    return g.node("MatMul", [layerNorm(w, clsOut, "visual.ln_post"), w.raw("visual.proj")]); // [B, embed]
  });
}

/** Conv without bias, PyTorch's symmetric zero padding; the filter stays OIHW as stored. */
function conv(w: WeightReader, x: string, name: string, stride: number, padding: number): string {
  return w.g.node("Conv", [x, w.raw(name)], {
    strides: attr.ints([stride, stride]),
    pads: attr.ints([padding, padding, padding, padding]),
  });
}

function batchNorm(w: WeightReader, x: string, prefix: string): string {
  return w.g.node(
    "BatchNormalization",
    [x, w.raw(`${prefix}.weight`), w.raw(`${prefix}.bias`), w.raw(`${prefix}.running_mean`), w.raw(`${prefix}.running_var`)],
    { epsilon: attr.float(NORM_EPS) },
  );
}

function convBnRelu(w: WeightReader, x: string, convName: string, bn: string, stride: number, padding: number): string {
  return w.g.node("Relu", [batchNorm(w, conv(w, x, `${convName}.weight`, stride, padding), bn)]);
}

function avgPool(g: GraphBuilder, x: string, size: number): string {
  return size > 1 ? g.node("AveragePool", [x], { kernel_shape: attr.ints([size, size]), strides: attr.ints([size, size]) }) : x;
}

/** One bottleneck: 1x1 -> 3x3 -> avgpool(stride) -> 1x1 (x4), plus the (pooled, projected) shortcut. */
function bottleneck(w: WeightReader, x: string, prefix: string, stride: number, downsample: boolean): string {
  return w.g.scope(prefix, () => {
    let out = convBnRelu(w, x, `${prefix}.conv1`, `${prefix}.bn1`, 1, 0);
    out = convBnRelu(w, out, `${prefix}.conv2`, `${prefix}.bn2`, 1, 1);
    out = avgPool(w.g, out, stride);
    out = batchNorm(w, conv(w, out, `${prefix}.conv3.weight`, 1, 0), `${prefix}.bn3`);
    let identity = x;
    if (downsample) {
      identity = avgPool(w.g, x, stride);
      identity = batchNorm(w, conv(w, identity, `${prefix}.downsample.0.weight`, 1, 0), `${prefix}.downsample.1`);
    }
    return w.g.node("Relu", [w.g.node("Add", [out, identity])]);
  });
}

/** Attention pooling: the mean token (with learned positions) attends over itself and every spatial token. */
function attentionPool(w: WeightReader, x: string, cfg: ClipConfig): string {
  const g = w.g;
  const channels = cfg.vision_cfg.width * 32;
  return g.scope("visual.attnpool", () => {
    const flat = g.node("Transpose", [g.node("Reshape", [x, g.ints([0, channels, -1])])], { perm: attr.ints([0, 2, 1]) }); // [B, HW, C]
    const mean = g.node("ReduceMean", [flat], { axes: attr.ints([1]), keepdims: attr.int(1) }); // [B, 1, C]
    const tokens = g.node("Add", [g.node("Concat", [mean, flat], { axis: attr.int(1) }), w.raw("visual.attnpool.positional_embedding")]); // [B, HW+1, C]
    const query = g.node("Slice", [tokens, g.ints([0]), g.ints([1]), g.ints([1])]); // [B, 1, C]
    const q = linear(w, query, "visual.attnpool.q_proj");
    const k = linear(w, tokens, "visual.attnpool.k_proj");
    const v = linear(w, tokens, "visual.attnpool.v_proj");
    const heads = visionHeads(cfg);
    const headDim = channels / heads;
    const shapes = { q: g.ints([0, 1, heads, headDim]), kv: g.ints([0, -1, heads, headDim]), out: g.ints([0, 1, channels]) };
    const pooled = attend(g, q, k, v, heads, headDim, shapes); // [B, 1, C]
    return g.node("Reshape", [linear(w, pooled, "visual.attnpool.c_proj"), g.ints([0, -1])]); // [B, embed]
  });
}

function modifiedResNet(w: WeightReader, pixels: string, cfg: ClipConfig): string {
  let x = w.g.scope("visual.stem", () => {
    let s = convBnRelu(w, pixels, "visual.conv1", "visual.bn1", 2, 1); // [B, width/2, S/2, S/2]
    s = convBnRelu(w, s, "visual.conv2", "visual.bn2", 1, 1);
    s = convBnRelu(w, s, "visual.conv3", "visual.bn3", 1, 1); // [B, width, S/2, S/2]
    return avgPool(w.g, s, 2); // [B, width, S/4, S/4]
  });
  for (const block of resnetPlan(cfg)) x = bottleneck(w, x, block.prefix, block.stride, block.downsample);
  return attentionPool(w, x, cfg);
}

/** Adds the image tower to `g`: input `pixel_values` [batch, 3, S, S], output `image_embeds` [batch, D]. */
export function buildVisionGraph(g: GraphBuilder, w: WeightReader, cfg: ClipConfig): void {
  const size = cfg.vision_cfg.image_size;
  const pixels = g.input(VISION_INPUT, "float32", ["batch", 3, size, size]);
  const act: OnnxActivation = cfg.quick_gelu ? "quick_gelu" : "gelu";
  const features = visionTower(cfg) === "ModifiedResNet" ? modifiedResNet(w, pixels, cfg) : visionTransformer(w, pixels, cfg, act);
  g.output(features, VISION_OUTPUT, "float32", ["batch", cfg.embed_dim]);
}

/**
 * Locking towers for fine-tuning, as open_clip's `--lock-image` / `--lock-text` (LiT, Zhai et al.
 * 2022, https://arxiv.org/abs/2111.07991): a locked parameter gets no gradient and no optimizer
 * state, so it stays bit-identical. Towers are split into open_clip's layer groups
 * (`layer_groups()` in src/open_clip/transformer.py and modified_resnet.py), input to output:
 *
 * - ViT: `embeddings` (patch conv, class and position embeddings, ln_pre), `layer.i` (block i;
 *   the last block with ln_post), `proj`;
 * - ModifiedResNet: `embeddings` (the 3-conv stem and its BatchNorms), `layer.0`..`layer.3`
 *   (the four stages), `proj` (the attention pool);
 * - text: `embeddings` (token and position embeddings), `layer.i` (the last block with
 *   ln_final), `proj` (text_projection).
 *
 * `unlocked` leaves the last N groups trainable. BatchNorm layers in locked groups run in
 * inference mode (running statistics used and never updated), which open_clip does with
 * `--lock-image-freeze-bn-stats`; here it always holds, so a locked tower's state is unchanged.
 */
import type { ClipConfig } from "../model/config";
import { visionTower } from "../model/config";
import { clipParamSpecs } from "../model/params";

export interface LayerGroup {
  name: string;
  /** State-dict names (OpenAI's) of the group's tensors, BatchNorm statistics included. */
  params: string[];
}

export interface LockOptions {
  lockImage?: boolean;
  lockImageUnlockedGroups?: number;
  lockText?: boolean;
  lockTextUnlockedLayers?: number;
}

export interface LockPlan {
  /** Tensors that are not trained: no gradient, no optimizer state. */
  frozen: ReadonlySet<string>;
  /** BatchNorm prefixes (e.g. `visual.bn1`) kept in inference mode while training. */
  frozenBatchNorm: ReadonlySet<string>;
  /** The whole image tower is locked (its features need no gradient tape). */
  imageFrozen: boolean;
  /** The whole text tower is locked. */
  textFrozen: boolean;
}

const TEXT_TOP = new Set(["token_embedding.weight", "positional_embedding", "text_projection"]);

function isTextTensor(name: string): boolean {
  return TEXT_TOP.has(name) || name.startsWith("transformer.") || name.startsWith("ln_final.");
}

function groupsFrom(names: string[], order: string[], groupOf: (name: string) => string, tower: string): LayerGroup[] {
  const byGroup = new Map<string, string[]>(order.map((g) => [g, []]));
  for (const n of names) {
    const g = groupOf(n);
    const list = byGroup.get(g);
    if (!list) throw new Error(`lock: ${tower} tensor ${n} falls in no layer group (got ${g})`);
    list.push(n);
  }
  return order.map((name) => ({ name, params: byGroup.get(name)! }));
}

/** The image tower's layer groups, input to output (open_clip's `layer_groups()`). */
export function imageLayerGroups(cfg: ClipConfig): LayerGroup[] {
  const names = clipParamSpecs(cfg).map((s) => s.name).filter((n) => n.startsWith("visual."));
  if (visionTower(cfg) === "ModifiedResNet") {
    const order = ["embeddings", "layer.0", "layer.1", "layer.2", "layer.3", "proj"];
    return groupsFrom(names, order, (n) => {
      const stage = /^visual\.layer([1-4])\./.exec(n);
      if (stage) return `layer.${Number(stage[1]) - 1}`;
      if (n.startsWith("visual.attnpool.")) return "proj";
      return /^visual\.(conv|bn)[123]\./.test(n) ? "embeddings" : "?";
    }, "image");
  }
  const layers = cfg.vision_cfg.layers as number;
  const order = ["embeddings", ...Array.from({ length: layers }, (_, i) => `layer.${i}`), "proj"];
  return groupsFrom(names, order, (n) => {
    const block = /^visual\.transformer\.resblocks\.(\d+)\./.exec(n);
    if (block) return `layer.${block[1]}`;
    if (n.startsWith("visual.ln_post.")) return `layer.${layers - 1}`;
    if (n === "visual.proj") return "proj";
    return ["visual.conv1.weight", "visual.class_embedding", "visual.positional_embedding"].includes(n) || n.startsWith("visual.ln_pre.") ? "embeddings" : "?";
  }, "image");
}

/** The text tower's layer groups, input to output (open_clip's `_text_layer_groups`). */
export function textLayerGroups(cfg: ClipConfig): LayerGroup[] {
  const names = clipParamSpecs(cfg).map((s) => s.name).filter(isTextTensor);
  const layers = cfg.text_cfg.layers;
  const order = ["embeddings", ...Array.from({ length: layers }, (_, i) => `layer.${i}`), "proj"];
  return groupsFrom(names, order, (n) => {
    const block = /^transformer\.resblocks\.(\d+)\./.exec(n);
    if (block) return `layer.${block[1]}`;
    if (n.startsWith("ln_final.")) return `layer.${layers - 1}`;
    if (n === "text_projection") return "proj";
    return n === "token_embedding.weight" || n === "positional_embedding" ? "embeddings" : "?";
  }, "text");
}

/** The groups left locked when the last `unlocked` stay trainable; a one-line error past the count. */
function lockedGroups(groups: LayerGroup[], unlocked: number, option: string, tower: string): LayerGroup[] {
  if (!Number.isInteger(unlocked) || unlocked < 0 || unlocked > groups.length) {
    throw new RangeError(`train: ${option} must be an integer in [0, ${groups.length}] (the ${tower} tower's groups: ${groups.map((g) => g.name).join(", ")}), got ${unlocked}`);
  }
  return groups.slice(0, groups.length - unlocked);
}

/** What `opts` leaves untrained in a model of config `cfg`. */
export function lockPlan(cfg: ClipConfig, opts: LockOptions): LockPlan {
  const frozen = new Set<string>();
  let imageFrozen = false;
  let textFrozen = false;
  if (opts.lockImage) {
    const groups = imageLayerGroups(cfg);
    const locked = lockedGroups(groups, opts.lockImageUnlockedGroups ?? 0, "lockImageUnlockedGroups", "image");
    for (const g of locked) for (const n of g.params) frozen.add(n);
    imageFrozen = locked.length === groups.length;
  }
  if (opts.lockText) {
    const groups = textLayerGroups(cfg);
    const locked = lockedGroups(groups, opts.lockTextUnlockedLayers ?? 0, "lockTextUnlockedLayers", "text");
    for (const g of locked) for (const n of g.params) frozen.add(n);
    textFrozen = locked.length === groups.length;
  }
  const frozenBatchNorm = new Set<string>();
  for (const n of frozen) if (n.endsWith(".running_mean")) frozenBatchNorm.add(n.slice(0, -".running_mean".length));
  return { frozen, frozenBatchNorm, imageFrozen, textFrozen };
}

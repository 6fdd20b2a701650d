/**
 * State-dict naming schemes a CLIP checkpoint may use, mapped onto OpenAI's names (ours):
 * OpenAI / open_clip (`visual.transformer.resblocks.N.attn.in_proj_weight`, ...), open_clip's
 * CustomTextCLIP (`text.` prefix), DDP's `module.` prefix, and Hugging Face `CLIPModel`
 * (`vision_model.encoder.layers.N.self_attn.{q,k,v}_proj`, `pre_layrnorm` (sic), transposed
 * `visual_projection.weight`).
 * https://github.com/huggingface/transformers/blob/main/src/transformers/models/clip/convert_clip_original_pytorch_to_hf.py
 */
import type { StateTensor, TensorSource } from "../model/clip";

export type Naming = "openai" | "hf";

/** Tensors that checkpoints carry but a model does not need (buffers PyTorch can rebuild). */
const IGNORED = [/\.num_batches_tracked$/, /(^|\.)position_ids$/, /^(input_resolution|context_length|vocab_size)$/];

export function isIgnoredTensor(name: string): boolean {
  return IGNORED.some((re) => re.test(name));
}

/** A source over stored tensors: names, shapes, and one-at-a-time reads. */
export interface StoredTensors {
  names(): Iterable<string>;
  shape(name: string): readonly number[] | undefined;
  read(name: string): Float32Array;
  /** Optional streaming read (see `TensorSource.readChunks`); used for tensors that are only renamed. */
  readChunks?(name: string, onChunk: (values: Float32Array, start: number) => void, chunkElements: number): void;
}

export function detectNaming(names: Iterable<string>): Naming {
  for (const n of names) if (n.startsWith("text_model.") || n.startsWith("vision_model.")) return "hf";
  return "openai";
}

/** OpenAI / open_clip names with `module.` and CustomTextCLIP's `text.` prefixes removed. */
function openaiName(name: string): string {
  let n = name.startsWith("module.") ? name.slice("module.".length) : name;
  if (n.startsWith("text.")) n = n.slice("text.".length);
  return n;
}

/**
 * Name templates, Hugging Face first and ours second; `{p}` stands for `weight` or `bias`.
 * Both directions are derived from the same table.
 */
const HF_BLOCK_TEMPLATES: [string, string][] = [
  ["self_attn.out_proj.{p}", "attn.out_proj.{p}"],
  ["layer_norm1.{p}", "ln_1.{p}"],
  ["layer_norm2.{p}", "ln_2.{p}"],
  ["mlp.fc1.{p}", "mlp.c_fc.{p}"],
  ["mlp.fc2.{p}", "mlp.c_proj.{p}"],
];

const HF_TOP_TEMPLATES: [string, string][] = [
  ["text_model.embeddings.token_embedding.weight", "token_embedding.weight"],
  ["text_model.embeddings.position_embedding.weight", "positional_embedding"],
  ["text_model.final_layer_norm.{p}", "ln_final.{p}"],
  ["vision_model.embeddings.class_embedding", "visual.class_embedding"],
  ["vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight"],
  ["vision_model.embeddings.position_embedding.weight", "visual.positional_embedding"],
  ["vision_model.pre_layrnorm.{p}", "visual.ln_pre.{p}"],
  ["vision_model.post_layernorm.{p}", "visual.ln_post.{p}"],
  ["logit_scale", "logit_scale"],
];

/** Renames `name` from one side of a template table to the other, or undefined. */
function renameByTemplates(name: string, table: [string, string][], fromHf: boolean): string | undefined {
  for (const [hf, ours] of table) {
    const [from, to] = fromHf ? [hf, ours] : [ours, hf];
    const re = new RegExp(`^${from.replace(/\./g, "\\.").replace("{p}", "(weight|bias)")}$`);
    const m = re.exec(name);
    if (m) return to.replace("{p}", m[1] ?? "");
  }
  return undefined;
}

/** HF projections are Linear weights [embed, width]; OpenAI's are matrices [width, embed]. */
const HF_TRANSPOSED: Record<string, string> = {
  "text_projection.weight": "text_projection",
  "visual_projection.weight": "visual.proj",
};

type Recipe =
  | { kind: "rename"; from: string }
  | { kind: "transpose"; from: string }
  | { kind: "stack"; from: [string, string, string] };

function hfTowerPrefix(name: string): { tower: string; ours: string; rest: string; layer: string } | undefined {
  const m = /^(text_model|vision_model)\.encoder\.layers\.(\d+)\.(.+)$/.exec(name);
  if (!m) return undefined;
  const ours = m[1] === "text_model" ? "transformer" : "visual.transformer";
  return { tower: m[1], ours, layer: m[2], rest: m[3] };
}

function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/**
 * Presents stored tensors under OpenAI's names, whatever scheme they use. HF q/k/v projections
 * are stacked into `in_proj_*` on read; unknown names pass through unchanged so that the model's
 * own check reports them as unexpected.
 */
export function asOpenAISource(stored: StoredTensors): TensorSource {
  const naming = detectNaming(stored.names());
  const recipes = new Map<string, Recipe>();
  const shapes = new Map<string, number[]>();
  const pendingQkv = new Map<string, Partial<Record<"q" | "k" | "v", string>>>();
  for (const name of stored.names()) {
    if (isIgnoredTensor(name)) continue;
    const shape = [...stored.shape(name)!];
    if (naming === "openai") {
      const ours = openaiName(name);
      recipes.set(ours, { kind: "rename", from: name });
      shapes.set(ours, shape);
      continue;
    }
    if (HF_TRANSPOSED[name]) {
      const ours = HF_TRANSPOSED[name];
      recipes.set(ours, { kind: "transpose", from: name });
      shapes.set(ours, [shape[1], shape[0]]);
      continue;
    }
    const block = hfTowerPrefix(name);
    if (block) {
      const qkv = /^self_attn\.(q|k|v)_proj\.(weight|bias)$/.exec(block.rest);
      if (qkv) {
        const ours = `${block.ours}.resblocks.${block.layer}.attn.in_proj_${qkv[2]}`;
        const parts = pendingQkv.get(ours) ?? {};
        parts[qkv[1] as "q" | "k" | "v"] = name;
        pendingQkv.set(ours, parts);
        shapes.set(ours, qkv[2] === "weight" ? [3 * shape[0], shape[1]] : [3 * shape[0]]);
        continue;
      }
      const mapped = renameByTemplates(block.rest, HF_BLOCK_TEMPLATES, true);
      const ours = mapped ? `${block.ours}.resblocks.${block.layer}.${mapped}` : name;
      recipes.set(ours, { kind: "rename", from: name });
      shapes.set(ours, shape);
      continue;
    }
    const ours = renameByTemplates(name, HF_TOP_TEMPLATES, true) ?? name;
    recipes.set(ours, { kind: "rename", from: name });
    shapes.set(ours, shape);
  }
  for (const [ours, parts] of pendingQkv) {
    if (!parts.q || !parts.k || !parts.v) {
      const have = Object.keys(parts).join(", ");
      throw new Error(`${ours}: Hugging Face attention needs q_proj, k_proj and v_proj, found only ${have}`);
    }
    recipes.set(ours, { kind: "stack", from: [parts.q, parts.k, parts.v] });
  }
  const source: TensorSource = {
    names: () => recipes.keys(),
    shape: (name) => shapes.get(name),
    read: (name) => {
      const recipe = recipes.get(name);
      if (!recipe) throw new Error(`no tensor named ${name}`);
      if (recipe.kind === "rename") return stored.read(recipe.from);
      if (recipe.kind === "transpose") {
        const [rows, cols] = stored.shape(recipe.from)!;
        return transpose2d(stored.read(recipe.from), rows, cols);
      }
      const parts = recipe.from.map((n) => stored.read(n));
      const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
      let offset = 0;
      for (const p of parts) {
        out.set(p, offset);
        offset += p.length;
      }
      return out;
    },
    // Renamed tensors stream from the store; stacked or transposed ones (Hugging Face) are built whole.
    readChunks: stored.readChunks
      ? (name, onChunk, chunkElements) => {
          const recipe = recipes.get(name);
          if (recipe?.kind === "rename") stored.readChunks!(recipe.from, onChunk, chunkElements);
          else onChunk(source.read(name), 0);
        }
      : undefined,
  };
  return source;
}

/** OpenAI-named tensors renamed (and split / transposed) into Hugging Face CLIPModel names. */
export function toHfTensors(tensors: StateTensor[]): StateTensor[] {
  const out: StateTensor[] = [];
  for (const t of tensors) {
    const transposedHf = Object.entries(HF_TRANSPOSED).find(([, ours]) => ours === t.name)?.[0];
    if (transposedHf) {
      out.push({ name: transposedHf, shape: [t.shape[1], t.shape[0]], data: transpose2d(t.data, t.shape[0], t.shape[1]) });
      continue;
    }
    const block = /^(transformer|visual\.transformer)\.resblocks\.(\d+)\.(.+)$/.exec(t.name);
    if (block) {
      const hfPrefix = `${block[1] === "transformer" ? "text_model" : "vision_model"}.encoder.layers.${block[2]}`;
      const inProj = /^attn\.in_proj_(weight|bias)$/.exec(block[3]);
      if (inProj) {
        const width = t.shape[0] / 3;
        const chunk = t.data.length / 3;
        ["q", "k", "v"].forEach((part, i) => {
          out.push({
            name: `${hfPrefix}.self_attn.${part}_proj.${inProj[1]}`,
            shape: inProj[1] === "weight" ? [width, t.shape[1]] : [width],
            data: t.data.slice(i * chunk, (i + 1) * chunk),
          });
        });
        continue;
      }
      const mapped = renameByTemplates(block[3], HF_BLOCK_TEMPLATES, false);
      if (!mapped) throw new Error(`no Hugging Face name for ${t.name}`);
      out.push({ ...t, name: `${hfPrefix}.${mapped}` });
      continue;
    }
    const hfName = renameByTemplates(t.name, HF_TOP_TEMPLATES, false);
    if (!hfName) throw new Error(`no Hugging Face name for ${t.name} (Hugging Face CLIPModel has no ModifiedResNet tower)`);
    out.push({ ...t, name: hfName });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

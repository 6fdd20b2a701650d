/**
 * The parameter list of a CLIP model under OpenAI's state_dict names, with shapes, the layout
 * change between PyTorch and TensorFlow.js, and OpenAI's initialisation
 * (`CLIP.initialize_parameters` in https://github.com/openai/CLIP/blob/main/clip/model.py).
 *
 * Weights are kept in the layout the fast kernels want: Linear weights as [in, out] so every
 * projection is a plain `x @ W` (the WASM backend only uses XNNPACK without transpose flags), and
 * conv weights as HWIO. Checkpoints keep PyTorch's layout ([out, in], OIHW).
 *
 * Real-size models are built one tensor at a time, and each tensor a chunk at a time
 * (`writeInternalLayout`, `drawInitialValues`), so no whole second copy of a weight ever exists
 * on the JS side.
 */
import { ClipConfig, visionTower } from "./config";
import { Random } from "../util/random";

/** How a tensor's PyTorch layout maps to ours. */
export type ParamLayout = "same" | "linear" | "conv";

export type ParamInit =
  | { kind: "normal"; std: number }
  | { kind: "uniform"; bound: number }
  | { kind: "const"; value: number };

export interface ParamSpec {
  name: string;
  /** Shape in PyTorch's layout, as stored in checkpoints. */
  shape: number[];
  layout: ParamLayout;
  init: ParamInit;
  /** BatchNorm running statistics are state, not parameters. */
  trainable: boolean;
}

const ZEROS: ParamInit = { kind: "const", value: 0 };
const ONES: ParamInit = { kind: "const", value: 1 };
export const INIT_LOGIT_SCALE = Math.log(1 / 0.07);

function layerNormSpecs(prefix: string, width: number): ParamSpec[] {
  return [
    { name: `${prefix}.weight`, shape: [width], layout: "same", init: ONES, trainable: true },
    { name: `${prefix}.bias`, shape: [width], layout: "same", init: ZEROS, trainable: true },
  ];
}

function linearSpecs(prefix: string, inF: number, outF: number, std?: number): ParamSpec[] {
  const bound = 1 / Math.sqrt(inF);
  return [
    {
      name: `${prefix}.weight`,
      shape: [outF, inF],
      layout: "linear",
      init: std === undefined ? { kind: "uniform", bound } : { kind: "normal", std },
      trainable: true,
    },
    { name: `${prefix}.bias`, shape: [outF], layout: "same", init: { kind: "uniform", bound }, trainable: true },
  ];
}

export function mlpHidden(width: number, ratio: number): number {
  return Math.round(width * ratio);
}

/** A stack of residual attention blocks (`Transformer` in OpenAI's code). */
function transformerSpecs(prefix: string, width: number, layers: number, mlpRatio: number): ParamSpec[] {
  const hidden = mlpHidden(width, mlpRatio);
  const attnStd = width ** -0.5;
  const projStd = width ** -0.5 * (2 * layers) ** -0.5;
  const fcStd = (2 * width) ** -0.5;
  const specs: ParamSpec[] = [];
  for (let i = 0; i < layers; i++) {
    const p = `${prefix}.resblocks.${i}`;
    specs.push(
      { name: `${p}.attn.in_proj_weight`, shape: [3 * width, width], layout: "linear", init: { kind: "normal", std: attnStd }, trainable: true },
      { name: `${p}.attn.in_proj_bias`, shape: [3 * width], layout: "same", init: ZEROS, trainable: true },
      { name: `${p}.attn.out_proj.weight`, shape: [width, width], layout: "linear", init: { kind: "normal", std: projStd }, trainable: true },
      { name: `${p}.attn.out_proj.bias`, shape: [width], layout: "same", init: ZEROS, trainable: true },
      ...layerNormSpecs(`${p}.ln_1`, width),
      ...linearSpecs(`${p}.mlp.c_fc`, width, hidden, fcStd),
      ...linearSpecs(`${p}.mlp.c_proj`, hidden, width, projStd),
      ...layerNormSpecs(`${p}.ln_2`, width),
    );
  }
  return specs;
}

function convSpec(name: string, outC: number, inC: number, k: number): ParamSpec {
  return {
    name,
    shape: [outC, inC, k, k],
    layout: "conv",
    init: { kind: "uniform", bound: 1 / Math.sqrt(inC * k * k) },
    trainable: true,
  };
}

function batchNormSpecs(prefix: string, channels: number, zeroGamma = false): ParamSpec[] {
  return [
    { name: `${prefix}.weight`, shape: [channels], layout: "same", init: zeroGamma ? ZEROS : ONES, trainable: true },
    { name: `${prefix}.bias`, shape: [channels], layout: "same", init: ZEROS, trainable: true },
    { name: `${prefix}.running_mean`, shape: [channels], layout: "same", init: ZEROS, trainable: false },
    { name: `${prefix}.running_var`, shape: [channels], layout: "same", init: ONES, trainable: false },
  ];
}

/** The stages of a ModifiedResNet: planes and stride per stage, and which blocks downsample. */
export interface ResNetBlockPlan {
  prefix: string;
  inplanes: number;
  planes: number;
  stride: number;
  downsample: boolean;
}

export function resnetPlan(cfg: ClipConfig): ResNetBlockPlan[] {
  const v = cfg.vision_cfg;
  const layers = v.layers as number[];
  const plan: ResNetBlockPlan[] = [];
  let inplanes = v.width;
  for (let stage = 0; stage < 4; stage++) {
    const planes = v.width * 2 ** stage;
    for (let j = 0; j < layers[stage]; j++) {
      const stride = j === 0 && stage > 0 ? 2 : 1;
      plan.push({
        prefix: `visual.layer${stage + 1}.${j}`,
        inplanes,
        planes,
        stride,
        downsample: stride > 1 || inplanes !== planes * 4,
      });
      inplanes = planes * 4;
    }
  }
  return plan;
}

function visionTransformerSpecs(cfg: ClipConfig): ParamSpec[] {
  const v = cfg.vision_cfg;
  const patch = v.patch_size as number;
  const grid = v.image_size / patch;
  const scale = v.width ** -0.5;
  return [
    { name: "visual.class_embedding", shape: [v.width], layout: "same", init: { kind: "normal", std: scale }, trainable: true },
    { name: "visual.positional_embedding", shape: [grid * grid + 1, v.width], layout: "same", init: { kind: "normal", std: scale }, trainable: true },
    convSpec("visual.conv1.weight", v.width, 3, patch),
    ...layerNormSpecs("visual.ln_pre", v.width),
    ...transformerSpecs("visual.transformer", v.width, v.layers as number, v.mlp_ratio),
    ...layerNormSpecs("visual.ln_post", v.width),
    { name: "visual.proj", shape: [v.width, cfg.embed_dim], layout: "same", init: { kind: "normal", std: scale }, trainable: true },
  ];
}

function modifiedResNetSpecs(cfg: ClipConfig): ParamSpec[] {
  const v = cfg.vision_cfg;
  const half = v.width / 2;
  const specs: ParamSpec[] = [
    convSpec("visual.conv1.weight", half, 3, 3),
    ...batchNormSpecs("visual.bn1", half),
    convSpec("visual.conv2.weight", half, half, 3),
    ...batchNormSpecs("visual.bn2", half),
    convSpec("visual.conv3.weight", v.width, half, 3),
    ...batchNormSpecs("visual.bn3", v.width),
  ];
  for (const b of resnetPlan(cfg)) {
    specs.push(
      convSpec(`${b.prefix}.conv1.weight`, b.planes, b.inplanes, 1),
      ...batchNormSpecs(`${b.prefix}.bn1`, b.planes),
      convSpec(`${b.prefix}.conv2.weight`, b.planes, b.planes, 3),
      ...batchNormSpecs(`${b.prefix}.bn2`, b.planes),
      convSpec(`${b.prefix}.conv3.weight`, b.planes * 4, b.planes, 1),
      // Zero-initialised last BN gamma makes each block start as the identity (OpenAI does this).
      ...batchNormSpecs(`${b.prefix}.bn3`, b.planes * 4, true),
    );
    if (b.downsample) {
      specs.push(
        convSpec(`${b.prefix}.downsample.0.weight`, b.planes * 4, b.inplanes, 1),
        ...batchNormSpecs(`${b.prefix}.downsample.1`, b.planes * 4),
      );
    }
  }
  const poolDim = v.width * 32;
  const spatial = v.image_size / 32;
  const std = poolDim ** -0.5;
  specs.push(
    { name: "visual.attnpool.positional_embedding", shape: [spatial * spatial + 1, poolDim], layout: "same", init: { kind: "normal", std }, trainable: true },
    ...linearSpecs("visual.attnpool.k_proj", poolDim, poolDim, std),
    ...linearSpecs("visual.attnpool.q_proj", poolDim, poolDim, std),
    ...linearSpecs("visual.attnpool.v_proj", poolDim, poolDim, std),
    ...linearSpecs("visual.attnpool.c_proj", poolDim, cfg.embed_dim, std),
  );
  return specs;
}

function textSpecs(cfg: ClipConfig): ParamSpec[] {
  const t = cfg.text_cfg;
  return [
    { name: "token_embedding.weight", shape: [t.vocab_size, t.width], layout: "same", init: { kind: "normal", std: 0.02 }, trainable: true },
    { name: "positional_embedding", shape: [t.context_length, t.width], layout: "same", init: { kind: "normal", std: 0.01 }, trainable: true },
    ...transformerSpecs("transformer", t.width, t.layers, t.mlp_ratio),
    ...layerNormSpecs("ln_final", t.width),
    { name: "text_projection", shape: [t.width, cfg.embed_dim], layout: "same", init: { kind: "normal", std: t.width ** -0.5 }, trainable: true },
  ];
}

/** Every tensor of the model, in PyTorch's layout, sorted by name like a safetensors file. */
export function clipParamSpecs(cfg: ClipConfig): ParamSpec[] {
  const vision = visionTower(cfg) === "ModifiedResNet" ? modifiedResNetSpecs(cfg) : visionTransformerSpecs(cfg);
  const specs = [
    ...vision,
    ...textSpecs(cfg),
    { name: "logit_scale", shape: [], layout: "same", init: { kind: "const", value: INIT_LOGIT_SCALE }, trainable: true } as ParamSpec,
  ];
  return specs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function internalShape(spec: Pick<ParamSpec, "shape" | "layout">): number[] {
  const s = spec.shape;
  if (spec.layout === "linear") return [s[1], s[0]];
  if (spec.layout === "conv") return [s[2], s[3], s[1], s[0]];
  return s.slice();
}

export function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Elements of one outermost slice of a tensor in PyTorch's layout (a Linear row, a conv output
 * channel): chunks made of whole rows keep the layout change cache-friendly.
 */
export function rowLength(shape: readonly number[]): number {
  return shape.length > 1 ? numel(shape.slice(1)) : 1;
}

/** Rows at a time in the blocked transpose: 16 floats are one 64-byte cache line of the output. */
const TRANSPOSE_BLOCK = 16;

/** For OIHW -> HWIO: the position, inside one output channel's HWIO column, of each (i, h, w) element. */
function convColumnOrder(shape: readonly number[]): Int32Array {
  const [, I, H, W] = shape;
  const order = new Int32Array(I * H * W);
  for (let i = 0; i < I; i++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) order[(i * H + h) * W + w] = (h * W + w) * I + i;
  return order;
}

/**
 * Writes `chunk`, the elements [start, start + chunk.length) of a tensor in PyTorch's layout, into
 * `dst`, the whole tensor in ours ([out, in] -> [in, out]; OIHW -> HWIO; else unchanged). Chunks
 * may come in any order and need not be whole rows (whole rows are faster).
 */
export function writeInternalLayout(chunk: Float32Array, start: number, shape: readonly number[], layout: ParamLayout, dst: Float32Array): void {
  const total = numel(shape as number[]);
  if (dst.length !== total || !Number.isInteger(start) || start < 0 || start + chunk.length > total) {
    throw new RangeError(`writeInternalLayout: ${chunk.length} values at ${start} do not fit shape [${shape}] (${total} values) in a destination of ${dst.length}`);
  }
  if (layout === "same") {
    dst.set(chunk, start);
    return;
  }
  // Both changes are a transpose of [rows, cols] (rows = output features or channels), the
  // conv one with its columns reordered (i, h, w) -> (h, w, i).
  const rows = shape[0];
  const cols = total / rows;
  const order = layout === "conv" ? convColumnOrder(shape) : undefined;
  const end = start + chunk.length;
  let r = Math.floor(start / cols);
  // A partial row at either end goes element by element.
  const partial = (row: number, from: number, to: number) => {
    for (let c = from; c < to; c++) dst[(order ? order[c] : c) * rows + row] = chunk[row * cols + c - start];
  };
  if (start % cols !== 0) {
    partial(r, start - r * cols, Math.min(cols, end - r * cols));
    r += 1;
  }
  const lastWhole = Math.floor(end / cols);
  for (let r0 = r; r0 < lastWhole; r0 += TRANSPOSE_BLOCK) {
    const r1 = Math.min(lastWhole, r0 + TRANSPOSE_BLOCK);
    const base = r0 * cols - start;
    for (let c = 0; c < cols; c++) {
      const out = (order ? order[c] : c) * rows;
      for (let rr = r0, i = base + c; rr < r1; rr++, i += cols) dst[out + rr] = chunk[i];
    }
  }
  if (lastWhole >= r && end % cols !== 0) partial(lastWhole, 0, end - lastWhole * cols);
}

/** PyTorch layout -> ours ([out, in] -> [in, out]; OIHW -> HWIO). */
export function toInternalLayout(data: Float32Array, shape: number[], layout: ParamLayout): Float32Array {
  if (layout === "same") return data;
  const out = new Float32Array(data.length);
  if (layout === "linear") {
    const [rows, cols] = shape;
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
    return out;
  }
  const [O, I, H, W] = shape;
  for (let o = 0; o < O; o++)
    for (let i = 0; i < I; i++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) out[((h * W + w) * I + i) * O + o] = data[((o * I + i) * H + h) * W + w];
  return out;
}

/** Ours -> PyTorch layout; `shape` is the PyTorch shape. */
export function toExternalLayout(data: Float32Array, shape: number[], layout: ParamLayout): Float32Array {
  if (layout === "same") return data;
  const out = new Float32Array(data.length);
  if (layout === "linear") {
    const [rows, cols] = shape;
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = data[c * rows + r];
    return out;
  }
  const [O, I, H, W] = shape;
  for (let o = 0; o < O; o++)
    for (let i = 0; i < I; i++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) out[((o * I + i) * H + h) * W + w] = data[((h * W + w) * I + i) * O + o];
  return out;
}

/**
 * How `Clip.create` draws weights:
 * - "openai": OpenAI's initialisation (normal or uniform per tensor, `ParamSpec.init`); the default.
 * - "uniform": every normal(0, std) replaced by a uniform of the same standard deviation
 *   (±std·√3), about 8x cheaper to draw (no logarithm or sine per pair). Same scale of weights and
 *   activations, not OpenAI's distribution: for memory and speed probes of real-size models,
 *   never for training or reported numbers.
 */
export type InitScheme = "openai" | "uniform";

export const INIT_SCHEMES: readonly InitScheme[] = ["openai", "uniform"];

/** Draws a tensor's initial values (PyTorch layout) from the seeded generator. */
export function initialValues(spec: ParamSpec, rng: Random, scheme: InitScheme = "openai"): Float32Array {
  return drawInitialValues(spec, rng, new Float32Array(numel(spec.shape)), scheme);
}

/**
 * Draws the next `out.length` initial values of `spec` (PyTorch layout) into `out`. Drawing a
 * tensor in consecutive chunks consumes the generator exactly as drawing it whole, so the values
 * are the same bit for bit.
 */
export function drawInitialValues(spec: ParamSpec, rng: Random, out: Float32Array, scheme: InitScheme = "openai"): Float32Array {
  const init = spec.init;
  if (init.kind === "normal") {
    if (scheme === "uniform") rng.fillUniform(out, -init.std * Math.sqrt(3), init.std * Math.sqrt(3));
    else rng.fillNormal(out, init.std);
  } else if (init.kind === "uniform") rng.fillUniform(out, -init.bound, init.bound);
  else out.fill(init.value);
  return out;
}

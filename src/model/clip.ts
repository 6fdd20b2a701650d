/**
 * The CLIP model (Radford et al. 2021, https://arxiv.org/abs/2103.00020): an image tower (ViT or
 * ModifiedResNet), a causal text transformer, both projected into one `embed_dim` space, and a
 * learnable temperature `logit_scale` (log of the logit multiplier).
 * Weights live in tf.Variables keyed by OpenAI's state_dict names.
 */
import * as tf from "@tensorflow/tfjs";
import { ClipConfig, visionTower } from "./config";
import { presetNameOf, resolveModelConfig } from "./registry";
import { assertFitsInMemory, estimateMemory } from "./memory";
import { Activation, Weights } from "./layers";
import { causalMask } from "./attention";
import { encodeImageViT } from "./vision_transformer";
import { encodeImageResNet } from "./modified_resnet";
import { encodeTextFromEmbeddings, encodeTextTransformer } from "./text_transformer";
import {
  INIT_SCHEMES,
  InitScheme,
  ParamSpec,
  clipParamSpecs,
  drawInitialValues,
  initialValues,
  internalShape,
  numel,
  rowLength,
  toExternalLayout,
  writeInternalLayout,
} from "./params";
import { filledTensor } from "./filled_tensor";
import { withGradCheckpointing } from "./grad_checkpoint";
import { Random } from "../util/random";
import { argmaxRows } from "../util/argmax";

/** Values per chunk when a model is built from a streaming source (4 MiB of float32). */
const BUILD_CHUNK_ELEMENTS = 1 << 20;

/** A tensor in PyTorch's layout, as stored in a checkpoint. */
export interface StateTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface EncodeOptions {
  /** Training mode (batch statistics in BatchNorm, which also updates its running statistics); default false. */
  training?: boolean;
  /** In training mode, BatchNorm layers (prefixes such as `visual.bn1`) that stay in inference mode: a locked tower's. */
  frozenBatchNorm?: ReadonlySet<string>;
  /** Under a gradient tape, recompute each transformer block in the backward pass (src/model/grad_checkpoint.ts). */
  gradCheckpointing?: boolean;
}

export interface ClipOutput {
  logitsPerImage: tf.Tensor2D; // [B_img, B_txt]
  logitsPerText: tf.Tensor2D; // [B_txt, B_img]
}

let nextModelId = 0;

export class Clip {
  readonly config: ClipConfig;
  readonly specs: readonly ParamSpec[];
  /** Every weight and BatchNorm statistic, in our layout (Linear [in, out], conv HWIO). */
  readonly params: Map<string, tf.Variable>;
  private readonly activation: Activation;
  private readonly weights: Weights;
  private textMask: tf.Tensor2D | undefined;
  private disposed = false;

  private constructor(config: ClipConfig, params: Map<string, tf.Variable>) {
    this.config = config;
    this.specs = clipParamSpecs(config);
    this.params = params;
    this.activation = config.quick_gelu ? "quick_gelu" : "gelu";
    this.weights = (name) => {
      const p = this.params.get(name);
      if (!p) throw new Error(`model has no weight named ${name}`);
      return p;
    };
  }

  /**
   * A freshly initialised model (OpenAI's initialisation), reproducible from `seed`. Each tensor is
   * drawn chunk by chunk straight into its variable (one model's worth of memory, not two); the
   * values are those of drawing every tensor whole, in name order. `init: "uniform"` is a cheaper
   * stand-in for memory and speed probes (see `InitScheme`).
   */
  static create(model: ClipConfig | string | object, opts: { seed?: number; init?: InitScheme } = {}): Clip {
    const config = resolveModelConfig(model);
    const scheme = opts.init ?? "openai";
    if (!INIT_SCHEMES.includes(scheme)) {
      throw new Error(`Clip.create: init must be one of ${INIT_SCHEMES.join(", ")}, got ${JSON.stringify(opts.init)}`);
    }
    const rng = new Random(opts.seed ?? 0);
    const specs = new Map(clipParamSpecs(config).map((s) => [s.name, s]));
    // fromSource reads every tensor once, in the specs' (name) order: the generator's stream is
    // consumed exactly as when each tensor was drawn whole in that order.
    return Clip.fromSource(config, {
      names: () => specs.keys(),
      shape: (name) => specs.get(name)?.shape,
      read: (name) => initialValues(specs.get(name)!, rng, scheme),
      readChunks: (name, onChunk, chunkElements) => {
        const spec = specs.get(name)!;
        const total = numel(spec.shape);
        const buffer = new Float32Array(Math.max(1, Math.min(chunkElements, total)));
        for (let start = 0; start < total; start += buffer.length) {
          const chunk = buffer.subarray(0, Math.min(buffer.length, total - start));
          onChunk(drawInitialValues(spec, rng, chunk, scheme), start);
        }
      },
    });
  }

  /** Builds a model from tensors in PyTorch's layout (names and shapes checked against the config). */
  static fromTensors(config: ClipConfig, tensors: Iterable<StateTensor>): Clip {
    const byName = new Map<string, StateTensor>();
    for (const t of tensors) byName.set(t.name, t);
    return Clip.fromSource(config, {
      names: () => byName.keys(),
      shape: (name) => byName.get(name)?.shape,
      read: (name) => byName.get(name)!.data,
    });
  }

  /**
   * Builds a model from a source that reads one tensor at a time (a checkpoint on disk). Each
   * tensor is written, in our layout, straight into the memory of its variable (on wasm, the WASM
   * heap), chunk by chunk when the source streams (`readChunks`): a large file never sits in
   * memory twice, and the JS side holds one chunk. Every name and shape is checked before any
   * tensor is read; if reading fails half-way, the variables made so far are released.
   */
  static fromSource(config: ClipConfig, source: TensorSource): Clip {
    const specs = clipParamSpecs(config);
    checkSourceAgainstSpecs(source, specs);
    // A model that cannot even encode one item here is refused before any weight is allocated
    // (on wasm, running out of heap aborts the WASM module).
    assertFitsInMemory(estimateMemory(config, { mode: "inference", batch: 1 }), `building ${presetNameOf(config) ?? "this CLIP"}`);
    const params = new Map<string, tf.Variable>();
    // tfjs variable names are global, so each model gets its own namespace.
    const namespace = `clip${nextModelId++}`;
    try {
      for (const spec of specs) {
        const initial = filledTensor(internalShape(spec), (dst) => readInternal(source, spec, dst));
        params.set(spec.name, tf.variable(initial, spec.trainable, `${namespace}/${spec.name}`));
        initial.dispose();
      }
    } catch (err) {
      for (const p of params.values()) p.dispose();
      throw err;
    }
    return new Clip(config, params);
  }

  get tower(): "VisionTransformer" | "ModifiedResNet" {
    return visionTower(this.config);
  }

  get logitScale(): tf.Variable {
    return this.weights("logit_scale") as tf.Variable;
  }

  /** Parameters that training updates (BatchNorm running statistics excluded). */
  trainableVariables(): tf.Variable[] {
    return this.specs.filter((s) => s.trainable).map((s) => this.params.get(s.name) as tf.Variable);
  }

  numParams(): number {
    return this.specs.filter((s) => s.trainable).reduce((n, s) => n + numel(s.shape), 0);
  }

  /**
   * Image features before normalisation, like OpenAI's `encode_image`. pixels: [B, S, S, 3], normalised.
   * `training: true` is torch's `model.train()` for the image tower: a ModifiedResNet's BatchNorm
   * then uses batch statistics and updates its running statistics (once per call); the default,
   * inference, uses the running statistics. A ViT has no mode-dependent layers.
   */
  encodeImage(pixels: tf.Tensor4D, opts: EncodeOptions = {}): tf.Tensor2D {
    this.assertAlive();
    const size = this.config.vision_cfg.image_size;
    if (pixels.rank !== 4 || pixels.shape[1] !== size || pixels.shape[2] !== size || pixels.shape[3] !== 3) {
      throw new Error(`pixels must be [B, ${size}, ${size}, 3] (NHWC, normalised), got [${pixels.shape}]`);
    }
    if (pixels.dtype !== "float32") throw new Error(`pixels must be float32, got ${pixels.dtype}`);
    return tf.tidy(() =>
      this.tower === "ModifiedResNet"
        ? encodeImageResNet(pixels, this.weights, this.config, opts.training ?? false, opts.frozenBatchNorm)
        : withGradCheckpointing(opts.gradCheckpointing ?? false, () => encodeImageViT(pixels, this.weights, this.config, this.activation)),
    );
  }

  /** Text features before normalisation, like OpenAI's `encode_text`. tokens: [B, T] ids, T <= context_length. */
  encodeText(tokens: tf.Tensor2D, opts: Pick<EncodeOptions, "gradCheckpointing"> = {}): tf.Tensor2D {
    this.assertAlive();
    const ctx = this.config.text_cfg.context_length;
    if (tokens.rank !== 2 || tokens.shape[1] < 1 || tokens.shape[1] > ctx) {
      throw new Error(`tokens must be [B, T] with 1 <= T <= ${ctx} (the context length), got [${tokens.shape}]`);
    }
    if (tokens.dtype !== "int32") throw new Error(`tokens must be int32, got ${tokens.dtype}`);
    const [batch, length] = tokens.shape;
    const ids = tokens.dataSync() as Int32Array;
    const vocab = this.config.text_cfg.vocab_size;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= vocab) {
        throw new Error(
          `tokens[${Math.floor(i / length)}, ${i % length}] = ${ids[i]} is outside the vocabulary [0, ${vocab})`,
        );
      }
    }
    const eot = argmaxRows(ids, batch, length);
    const mask = this.causalMask(length);
    return tf.tidy(() => withGradCheckpointing(opts.gradCheckpointing ?? false, () => encodeTextTransformer(tokens, eot, this.weights, this.config, this.activation, mask)));
  }

  /**
   * Text features from token embeddings x [B, T, width] (T <= context_length) instead of ids,
   * pooled at `eotIndex[b]` (prompt tuning: learned vectors in place of some tokens). Differentiable in x.
   */
  encodeTextEmbeddings(x: tf.Tensor3D, eotIndex: Int32Array): tf.Tensor2D {
    this.assertAlive();
    const { context_length: ctx, width } = this.config.text_cfg;
    if (x.rank !== 3 || x.shape[1] < 1 || x.shape[1] > ctx || x.shape[2] !== width) {
      throw new Error(`encodeTextEmbeddings: x must be [B, T, ${width}] with 1 <= T <= ${ctx}, got [${x.shape}]`);
    }
    if (x.dtype !== "float32") throw new Error(`encodeTextEmbeddings: x must be float32, got ${x.dtype}`);
    const [batch, length] = x.shape;
    if (!(eotIndex instanceof Int32Array) || eotIndex.length !== batch || eotIndex.some((i) => i < 0 || i >= length)) {
      throw new Error(`encodeTextEmbeddings: eotIndex must be an Int32Array of ${batch} positions in [0, ${length})`);
    }
    const mask = this.causalMask(length);
    return tf.tidy(() => encodeTextFromEmbeddings(x, eotIndex, this.weights, this.config, this.activation, mask));
  }

  /** Scaled cosine similarities, like OpenAI's `CLIP.forward`. */
  forward(pixels: tf.Tensor4D, tokens: tf.Tensor2D): ClipOutput {
    const imageFeatures = this.encodeImage(pixels);
    const textFeatures = this.encodeText(tokens);
    return tf.tidy(() => {
      const img = tf.div(imageFeatures, tf.norm(imageFeatures, 2, 1, true)) as tf.Tensor2D; // [Bi, E]
      const txt = tf.div(textFeatures, tf.norm(textFeatures, 2, 1, true)) as tf.Tensor2D; // [Bt, E]
      imageFeatures.dispose();
      textFeatures.dispose();
      const logitsPerImage = tf.mul(tf.exp(this.logitScale), tf.matMul(img, txt, false, true)) as tf.Tensor2D; // [Bi, Bt]
      return { logitsPerImage, logitsPerText: tf.transpose(logitsPerImage) as tf.Tensor2D };
    });
  }

  /** Every tensor in PyTorch's layout and OpenAI's names, sorted by name. */
  stateDict(): StateTensor[] {
    this.assertAlive();
    return this.specs.map((spec) => ({ name: spec.name, shape: spec.shape.slice(), data: this.stateTensor(spec.name) }));
  }

  /** One tensor in PyTorch's layout (a fresh array): what a streaming checkpoint writer reads, one at a time. */
  stateTensor(name: string): Float32Array {
    this.assertAlive();
    const spec = this.specs.find((s) => s.name === name);
    if (!spec) throw new Error(`model has no weight named ${name}`);
    const values = this.params.get(name)!.dataSync() as Float32Array;
    // toExternalLayout makes a new array for a layout change; otherwise copy (the cpu backend's
    // dataSync is the tensor's own storage).
    return spec.layout === "same" ? new Float32Array(values) : toExternalLayout(values, spec.shape, spec.layout);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.params.values()) p.dispose();
    this.textMask?.dispose();
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  private causalMask(length: number): tf.Tensor2D {
    if (!this.textMask || this.textMask.shape[0] !== length) {
      this.textMask?.dispose();
      this.textMask = tf.keep(causalMask(length));
    }
    return this.textMask;
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error("this Clip model has been disposed");
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

/** Where a model's tensors come from, in PyTorch's layout and OpenAI's names. */
export interface TensorSource {
  names(): Iterable<string>;
  /** undefined when the tensor is absent. */
  shape(name: string): readonly number[] | undefined;
  read(name: string): Float32Array;
  /**
   * Optional streaming read (a file): calls `onChunk(values, start)` with consecutive pieces of
   * the tensor (PyTorch layout, flat, start = 0, then each piece's end), each at most
   * `chunkElements` long and valid during the call only. A model built from such a source never
   * holds a whole tensor outside the backend.
   */
  readChunks?(name: string, onChunk: (values: Float32Array, start: number) => void, chunkElements: number): void;
}

/** Writes one tensor of `source` into `dst` in our layout, chunk by chunk when the source streams. */
function readInternal(source: TensorSource, spec: ParamSpec, dst: Float32Array): void {
  const total = numel(spec.shape);
  if (!source.readChunks) {
    const data = source.read(spec.name);
    if (data.length !== total) throw new Error(`tensor ${spec.name} holds ${data.length} values, expected ${total}`);
    writeInternalLayout(data, 0, spec.shape, spec.layout, dst);
    return;
  }
  // Whole rows per chunk keep the layout change cache-friendly.
  const row = rowLength(spec.shape);
  const chunkElements = Math.max(1, Math.floor(BUILD_CHUNK_ELEMENTS / row)) * row;
  let got = 0;
  source.readChunks(
    spec.name,
    (values, start) => {
      if (start !== got || got + values.length > total) {
        throw new Error(`tensor ${spec.name}: a chunk of ${values.length} values at ${start} does not follow the ${got} read so far (${total} expected)`);
      }
      writeInternalLayout(values, start, spec.shape, spec.layout, dst);
      got += values.length;
    },
    chunkElements,
  );
  if (got !== total) throw new Error(`tensor ${spec.name} holds ${got} values, expected ${total}`);
}

function listNames(names: string[]): string {
  return names.slice(0, 5).join(", ") + (names.length > 5 ? ` (+${names.length - 5} more)` : "");
}

function checkSourceAgainstSpecs(source: TensorSource, specs: ParamSpec[]): void {
  const expected = new Set(specs.map((s) => s.name));
  const missing = specs.filter((s) => source.shape(s.name) === undefined).map((s) => s.name);
  if (missing.length) throw new Error(`missing tensor(s) for this config: ${listNames(missing)}`);
  const extra = [...source.names()].filter((n) => !expected.has(n));
  if (extra.length) throw new Error(`unexpected tensor(s) for this config: ${listNames(extra)}`);
  for (const spec of specs) {
    const shape = source.shape(spec.name)!;
    if (!sameShape(shape, spec.shape)) {
      throw new Error(`tensor ${spec.name} has shape [${shape}] but the config needs [${spec.shape}]`);
    }
  }
}

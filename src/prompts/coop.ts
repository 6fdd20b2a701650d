/**
 * CoOp, Context Optimization (Zhou, Yang, Loy & Liu 2022, "Learning to Prompt for Vision-Language
 * Models", https://arxiv.org/abs/2109.01134): the template words are replaced by M learnable
 * context vectors in token-embedding space, shared by all classes ("unified context", class token
 * at the end), and learnt from a few labelled images with both encoders frozen:
 *
 *   prompt_c = [SOT] [ctx_1] ... [ctx_M] [tokens of "<class name>."] [EOT]        (embeddings [T, W])
 *   w_c      = n(textEncoderFromEmbeddings(prompt_c))                             [C, D]
 *   loss     = CE(exp(logitScale) * n(f_i) @ W^T, y_i)                            the model's temperature
 *
 * Only the context [M, W] is a variable that gets gradients and updates; the image features are
 * computed once (the image encoder is frozen, so they never change). Optimiser: AdamW (default) or
 * SGD with momentum, cosine learning-rate decay, seeded mini-batches.
 * Context initialisation (the paper's two options): the token embeddings of a phrase such as
 * "a photo of a" (M = its number of BPE tokens), or "random": N(0, 0.02^2), seeded.
 */
import * as tf from "@tensorflow/tfjs";
import { Random } from "../util/random";
import { AdamW } from "../train/adamw";
import { l2NormalizeRows } from "../util/tensor";
import { defaultBpe, EOT_TOKEN, SOT_TOKEN } from "../text/tokenize";
import { checkScalar } from "../eval/checks";
import { checkPositiveInt } from "../util/checks";
import type { FeatureSet } from "./prompt_bank";
import { checkClassNames } from "../text/templates";

/** What CoOp needs of a model; `Clip` satisfies it. */
export interface CoOpModel {
  readonly config: { readonly text_cfg: { readonly context_length: number; readonly width: number } };
  readonly params: Map<string, tf.Variable>;
  readonly logitScale: tf.Tensor;
  /** Text features [B, D] from token embeddings [B, T, W], pooled at eotIndex (see Clip). */
  encodeTextEmbeddings(x: tf.Tensor3D, eotIndex: Int32Array): tf.Tensor2D;
}

export interface CoOpOptions {
  /** A phrase whose token embeddings start the context (M = its token count), or "random"; default "a photo of a". */
  init?: string;
  /** Number of context vectors M with init "random"; default 4. */
  nCtx?: number;
  /** Optimisation steps; default 100. */
  steps?: number;
  /** Peak learning rate (cosine decay to 0); default 2e-3 (adamw), 2e-3 (sgd, as the paper). */
  lr?: number;
  optimizer?: "adamw" | "sgd";
  /** Weight decay on the context; default 0. */
  weightDecay?: number;
  /** SGD momentum; default 0.9. */
  momentum?: number;
  /** Images per step; default all (full batch). */
  batchSize?: number;
  /** Seeds the random init and the mini-batch order; default 0. */
  seed?: number;
  /** Called after every step. */
  onStep?: (e: { step: number; loss: number; lr: number }) => void;
}

export interface CoOpResult {
  classNames: string[];
  /** Learnt context [M, W] row-major. */
  ctx: Float32Array;
  nCtx: number;
  width: number;
  /** Unit class embeddings [C, D] of the learnt prompts (a zero-shot-style classifier). */
  classWeights: Float32Array;
  dim: number;
  /** Training loss of every step. */
  losses: number[];
}

export const COOP_OPTIMIZERS = ["adamw", "sgd"] as const;

/** The token sequences: ids [C, T] with 0 at the context slots, and each row's EOT position. */
function promptLayout(model: CoOpModel, classNames: string[], nCtx: number): { ids: Int32Array; length: number; eot: Int32Array } {
  const fn = "trainCoOp";
  const ctxLen = model.config.text_cfg.context_length;
  const bpe = defaultBpe();
  const bodies = classNames.map((c) => bpe.encode(`${c}.`));
  const lengths = bodies.map((b) => 1 + nCtx + b.length + 1);
  lengths.forEach((n, c) => {
    if (n > ctxLen) {
      throw new Error(`${fn}: class name ${JSON.stringify(classNames[c])} with ${nCtx} context vectors needs ${n} tokens (with SOT/EOT), more than the model's context length ${ctxLen}`);
    }
  });
  const length = Math.max(...lengths);
  const ids = new Int32Array(classNames.length * length);
  const eot = new Int32Array(classNames.length);
  bodies.forEach((body, c) => {
    const row = c * length;
    ids[row] = SOT_TOKEN;
    body.forEach((t, j) => (ids[row + 1 + nCtx + j] = t));
    eot[c] = 1 + nCtx + body.length;
    ids[row + eot[c]] = EOT_TOKEN;
  });
  return { ids, length, eot };
}

function tokenEmbedding(model: CoOpModel): tf.Variable {
  const e = model.params.get("token_embedding.weight");
  if (!e) throw new Error("trainCoOp: the model has no token_embedding.weight");
  return e;
}

/** Initial context [M, W]: the phrase's token embeddings, or seeded N(0, 0.02^2). */
function initialContext(model: CoOpModel, init: string, nCtx: number | undefined, seed: number): Float32Array {
  const width = model.config.text_cfg.width;
  if (init === "random") {
    const m = checkPositiveInt("trainCoOp", "nCtx", nCtx ?? 4);
    return new Random(seed).fillNormal(new Float32Array(m * width), 0.02);
  }
  if (typeof init !== "string" || init.trim() === "") throw new Error(`trainCoOp: init must be "random" or a non-empty phrase, got ${JSON.stringify(init)}`);
  const tokens = defaultBpe().encode(init);
  if (nCtx !== undefined && nCtx !== tokens.length) {
    throw new Error(`trainCoOp: nCtx = ${nCtx} but init ${JSON.stringify(init)} has ${tokens.length} tokens; drop nCtx or use init "random"`);
  }
  return tf.tidy(() => tf.gather(tokenEmbedding(model), tf.tensor1d(tokens, "int32")).dataSync() as Float32Array).slice(); // [M, W]
}

/** [C, T, W] prompt embeddings with `ctx` [M, W] at positions 1..M. */
function promptEmbeddings(fixed: tf.Tensor3D, ctx: tf.Tensor2D): tf.Tensor3D {
  const [c, t, w] = fixed.shape;
  const m = ctx.shape[0];
  const head = tf.slice(fixed, [0, 0, 0], [c, 1, w]); // [C, 1, W]
  const tail = tf.slice(fixed, [0, 1 + m, 0], [c, t - 1 - m, w]); // [C, T-1-M, W]
  const shared = tf.tile(tf.expandDims(ctx, 0), [c, 1, 1]); // [C, M, W]
  return tf.concat([head, shared, tail], 1) as tf.Tensor3D; // [C, T, W]
}

/** Unit class embeddings [C, D] of the prompts with context `ctx` [M, W]. */
export function coopClassWeights(model: CoOpModel, classNames: readonly string[], ctx: Float32Array): { weights: Float32Array; dim: number } {
  const names = checkClassNames(classNames, "coopClassWeights");
  const width = model.config.text_cfg.width;
  if (ctx.length === 0 || ctx.length % width !== 0) throw new Error(`coopClassWeights: ctx holds ${ctx.length} values, not a positive multiple of the text width ${width}`);
  const m = ctx.length / width;
  const { ids, length, eot } = promptLayout(model, names, m);
  const out = tf.tidy(() => {
    const fixed = tf.reshape(tf.gather(tokenEmbedding(model), tf.tensor1d(ids, "int32")), [names.length, length, width]) as tf.Tensor3D; // [C, T, W]
    return l2NormalizeRows(model.encodeTextEmbeddings(promptEmbeddings(fixed, tf.tensor2d(ctx, [m, width])), eot)); // [C, D]
  });
  try {
    return { weights: out.dataSync() as Float32Array, dim: out.shape[1] };
  } finally {
    out.dispose();
  }
}

/** Learns the context on labelled unit image features (frozen image encoder). */
export function trainCoOp(model: CoOpModel, classNames: readonly string[], train: FeatureSet, opts: CoOpOptions = {}): CoOpResult {
  const fn = "trainCoOp";
  const names = checkClassNames(classNames, fn);
  const c = names.length;
  if (train.n < 1) throw new Error(`${fn}: no training images`);
  train.labels.forEach((y, i) => {
    if (y < 0 || y >= c) throw new RangeError(`${fn}: label of training image ${i} = ${y} outside [0, ${c})`);
  });
  const steps = checkPositiveInt(fn, "steps", opts.steps ?? 100);
  const optimizerName = opts.optimizer ?? "adamw";
  if (!COOP_OPTIMIZERS.includes(optimizerName)) throw new RangeError(`${fn}: optimizer must be one of ${COOP_OPTIMIZERS.join(", ")}, got ${JSON.stringify(optimizerName)}`);
  const lr = opts.lr ?? 2e-3;
  const weightDecay = opts.weightDecay ?? 0;
  const momentum = opts.momentum ?? 0.9;
  if (!(lr > 0) || !(weightDecay >= 0) || !(momentum >= 0 && momentum < 1)) {
    throw new RangeError(`${fn}: need lr > 0, weightDecay >= 0 and momentum in [0, 1), got ${lr}, ${weightDecay}, ${momentum}`);
  }
  const batchSize = Math.min(train.n, checkPositiveInt(fn, "batchSize", opts.batchSize ?? train.n));
  const seed = opts.seed ?? 0;
  checkScalar(fn, "model.logitScale", model.logitScale);
  const width = model.config.text_cfg.width;
  const ctx0 = initialContext(model, opts.init ?? "a photo of a", opts.nCtx, seed);
  const m = ctx0.length / width;
  const { ids, length, eot } = promptLayout(model, names, m);

  const fixed = tf.tidy(() => tf.reshape(tf.gather(tokenEmbedding(model), tf.tensor1d(ids, "int32")), [c, length, width]) as tf.Tensor3D); // [C, T, W]
  const images = tf.tensor2d(train.features, [train.n, train.dim]); // [N, D], unit rows
  const onehot = tf.tidy(() => tf.oneHot(tf.tensor1d(train.labels, "int32"), c)) as tf.Tensor2D; // [N, C]
  // Made inside tidy: tidy frees the initial values (tf.variable copies them), never variables.
  let ctx!: tf.Variable<tf.Rank.R2>; // [M, W]
  let adamw: AdamW | undefined;
  let velocity: tf.Variable | undefined; // [M, W]
  tf.tidy(() => {
    ctx = tf.variable(tf.tensor2d(ctx0, [m, width]), true);
    if (optimizerName === "adamw") adamw = new AdamW([{ name: ctx.name, variable: ctx, decay: weightDecay > 0 }], { weightDecay });
    else velocity = tf.variable(tf.zerosLike(ctx), false);
  });
  const rng = new Random(seed ^ 0x5bd1e995);
  const order = Int32Array.from({ length: train.n }, (_, i) => i);
  let cursor = train.n;
  const losses: number[] = [];
  try {
    for (let step = 0; step < steps; step++) {
      const lrNow = 0.5 * (1 + Math.cos((Math.PI * step) / steps)) * lr;
      let batch: Int32Array;
      if (batchSize === train.n) batch = order;
      else {
        if (cursor + batchSize > train.n) {
          rng.shuffle(order);
          cursor = 0;
        }
        batch = order.slice(cursor, cursor + batchSize);
        cursor += batchSize;
      }
      const { value, grads } = tf.variableGrads(
        () =>
          tf.tidy(() => {
            const idx = tf.tensor1d(batch, "int32");
            const img = batch === order ? images : (tf.gather(images, idx) as tf.Tensor2D); // [B, D]
            const y = batch === order ? onehot : (tf.gather(onehot, idx) as tf.Tensor2D); // [B, C]
            const text = l2NormalizeRows(model.encodeTextEmbeddings(promptEmbeddings(fixed, ctx), eot)); // [C, D]
            const logits = tf.mul(tf.exp(model.logitScale), tf.matMul(img, text, false, true)); // [B, C]
            return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
          }),
        [ctx],
      );
      try {
        const g = grads[ctx.name];
        if (adamw) adamw.apply({ [ctx.name]: g }, lrNow);
        else
          tf.tidy(() => {
            const grad = weightDecay > 0 ? tf.add(g, tf.mul(ctx, weightDecay)) : g;
            velocity!.assign(tf.add(tf.mul(velocity!, momentum), grad));
            ctx.assign(tf.sub(ctx, tf.mul(velocity!, lrNow)));
          });
        const loss = value.dataSync()[0];
        if (!Number.isFinite(loss)) throw new Error(`${fn}: the loss became ${loss} at step ${step}; lower lr (${lr})`);
        losses.push(loss);
        opts.onStep?.({ step, loss, lr: lrNow });
      } finally {
        value.dispose();
        tf.dispose(grads);
      }
    }
    const learnt = ctx.dataSync() as Float32Array;
    const { weights, dim } = coopClassWeights(model, names, learnt);
    return { classNames: names, ctx: learnt.slice(), nCtx: m, width, classWeights: weights, dim, losses };
  } finally {
    adamw?.dispose();
    tf.dispose([fixed, images, onehot, ctx]);
    velocity?.dispose();
  }
}

/** Cosine scores [N, C] of unit features against unit class weights [C, D]. */
export function classWeightScores(weights: Float32Array, numClasses: number, set: FeatureSet): Float32Array {
  if (weights.length !== numClasses * set.dim) throw new Error(`classWeightScores: weights hold ${weights.length} values, expected ${numClasses} x ${set.dim}`);
  const out = tf.tidy(() => tf.matMul(tf.tensor2d(set.features, [set.n, set.dim]), tf.transpose(tf.tensor2d(weights, [numClasses, set.dim])))); // [N, C]
  try {
    return out.dataSync() as Float32Array;
  } finally {
    out.dispose();
  }
}

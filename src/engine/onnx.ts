/**
 * An EmbeddingEngine on onnxruntime-node (https://onnxruntime.ai), the runtime under
 * transformers.js: the two graphs of a cliplab ONNX export (src/io/onnx/export_clip.ts), full
 * graph optimisation, intra-op threads = cores. Made from an export directory, or straight from
 * a Clip (exported in memory, no files). Inference only; gradients stay on tfjs.
 *
 * The vision graph takes NCHW (the layout transformers.js feeds it); cliplab's pixels are NHWC,
 * so this engine transposes them first (a copy, small next to the network).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { InferenceSession } from "onnxruntime-node";
import type { Clip } from "../model/clip";
import type { EmbeddingEngine } from "./engine";
import { checkPixels, checkTokenIds, nhwcToNchw } from "./inputs";
import { OnnxRuntime, loadOnnxRuntime } from "./onnxruntime";
import { ClipOnnxPair, buildClipOnnx, clipTensorSource, readOnnxExportConfig } from "../io/onnx/export_clip";
import { VISION_FILE, TEXT_FILE } from "../io/onnx/export_clip";
import { Quantization, checkQuantization } from "../io/onnx/quantize";
import { VISION_INPUT, VISION_OUTPUT } from "../io/onnx/clip_vision";
import { TEXT_INPUT, TEXT_OUTPUT } from "../io/onnx/clip_text";
import { DEFAULT_MAX_INLINE_BYTES, initializerBytes, serializeModel, writeModelFile } from "../io/onnx/model_file";

export interface OnnxEngineOptions {
  /** Intra-op threads (default: every core, `os.availableParallelism()`). */
  threads?: number;
  /**
   * Whether idle intra-op threads spin-wait for work (onnxruntime's default, true: fastest for
   * back-to-back calls); false frees the cores between calls on a shared machine.
   */
  spinning?: boolean;
  /**
   * "int8": the towers with int8 linear layers (dynamic quantisation, src/io/onnx/quantize.ts):
   * faster, approximate (embeddings within cosine ~0.99 of float32). Default: float32.
   */
  quantize?: Quantization;
  /** onnxruntime graph optimisation (default "all"). */
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
  /** An onnxruntime module to use instead of requiring one. */
  runtime?: OnnxRuntime;
  /** The package to require when `runtime` is not given (default "onnxruntime-node"). */
  runtimeModule?: string;
  /**
   * fromClip: largest model handed over as bytes (default just under protobuf's 2 GiB); a larger
   * one is written with external data to a temporary directory, loaded, and the directory removed.
   */
  maxInlineBytes?: number;
}

interface EngineInfo {
  embedDim: number;
  imageSize: number;
  contextLength: number;
  vocabSize: number;
}

function sessionOptions(opts: OnnxEngineOptions): InferenceSession.SessionOptions {
  const threads = opts.threads ?? os.availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`onnx engine: threads must be an integer >= 1, got ${threads}`);
  const level = opts.graphOptimizationLevel ?? "all";
  if (!["disabled", "basic", "extended", "all"].includes(level)) {
    throw new RangeError(`onnx engine: graphOptimizationLevel must be one of disabled, basic, extended, all, got ${JSON.stringify(level)}`);
  }
  const options: InferenceSession.SessionOptions = {
    executionProviders: ["cpu"],
    graphOptimizationLevel: level,
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
  };
  // The Node binding flattens `extra` into session config entries ("session.intra_op.allow_spinning").
  if (opts.spinning === false) return { ...options, extra: { session: { intra_op: { allow_spinning: "0" } } } };
  return options;
}

async function createSession(ort: OnnxRuntime, model: string | Uint8Array, options: InferenceSession.SessionOptions, what: string): Promise<InferenceSession> {
  try {
    return await ort.InferenceSession.create(model as never, options);
  } catch (err) {
    throw new Error(`onnx engine: onnxruntime could not load ${what}: ${((err as Error)?.message ?? String(err)).split("\n")[0]}`);
  }
}

export class OnnxEngine implements EmbeddingEngine {
  readonly name = "onnx";
  readonly embedDim: number;
  readonly imageSize: number;
  readonly contextLength: number;
  readonly vocabSize: number;
  /** Intra-op threads the sessions were made with. */
  readonly threads: number;
  /** The towers' linear layers: "float32", or the quantisation they were built with. */
  readonly precision: "float32" | Quantization;
  private released = false;

  private constructor(
    private readonly ort: OnnxRuntime,
    private readonly vision: InferenceSession,
    private readonly text: InferenceSession,
    info: EngineInfo,
    threads: number,
    precision: "float32" | Quantization,
  ) {
    this.precision = precision;
    this.embedDim = info.embedDim;
    this.imageSize = info.imageSize;
    this.contextLength = info.contextLength;
    this.vocabSize = info.vocabSize;
    this.threads = threads;
  }

  /** From a directory written by `cliplab export onnx` (external data files are found beside the models). */
  static async fromDirectory(dir: string, opts: OnnxEngineOptions = {}): Promise<OnnxEngine> {
    const { config } = readOnnxExportConfig(dir);
    const quantize = checkQuantization(opts.quantize, "onnx engine: quantize");
    if (quantize && config.quantized?.dtype !== quantize) {
      throw new Error(`${dir}: has no ${quantize} models (config.json has no "quantized" entry for it; export with cliplab export onnx --quantize ${quantize})`);
    }
    const [visionFile, textFile] = quantize ? [config.quantized!.vision, config.quantized!.text] : [VISION_FILE, TEXT_FILE];
    for (const file of [visionFile, textFile]) {
      if (!fs.existsSync(path.join(dir, file))) throw new Error(`${dir}: ${file} is missing (config.json says this is an export)`);
    }
    const ort = opts.runtime ?? loadOnnxRuntime(opts.runtimeModule);
    const options = sessionOptions(opts);
    const vision = await createSession(ort, path.join(dir, visionFile), options, path.join(dir, visionFile));
    const text = await createSession(ort, path.join(dir, textFile), options, path.join(dir, textFile));
    const info = { embedDim: config.embed_dim, imageSize: config.image_size, contextLength: config.context_length, vocabSize: config.vocab_size };
    return new OnnxEngine(ort, vision, text, info, options.intraOpNumThreads!, quantize ?? "float32");
  }

  /**
   * From a Clip: exported in memory and handed to onnxruntime as bytes. A model over protobuf's
   * 2 GiB limit goes through a temporary directory with external data, removed once loaded.
   */
  static async fromClip(clip: Clip, opts: OnnxEngineOptions = {}): Promise<OnnxEngine> {
    const quantize = checkQuantization(opts.quantize, "onnx engine: quantize");
    const ort = opts.runtime ?? loadOnnxRuntime(opts.runtimeModule);
    const options = sessionOptions(opts);
    const built = buildClipOnnx(clip.config, clipTensorSource(clip), { quantize });
    const models = built.quantized ?? built;
    const info = {
      embedDim: clip.config.embed_dim,
      imageSize: clip.config.vision_cfg.image_size,
      contextLength: clip.config.text_cfg.context_length,
      vocabSize: clip.config.text_cfg.vocab_size,
    };
    const [vision, text] = await sessionsFor(ort, models, options, opts.maxInlineBytes ?? DEFAULT_MAX_INLINE_BYTES);
    return new OnnxEngine(ort, vision, text, info, options.intraOpNumThreads!, quantize ?? "float32");
  }

  async embedImages(pixels: Float32Array, n: number): Promise<Float32Array> {
    this.assertAlive();
    checkPixels(this, pixels, n);
    if (n === 0) return new Float32Array(0);
    const s = this.imageSize;
    const input = new this.ort.Tensor("float32", nhwcToNchw(pixels, n, s), [n, 3, s, s]);
    return this.output(await this.vision.run({ [VISION_INPUT]: input }), VISION_OUTPUT, n);
  }

  async embedTexts(ids: Int32Array, n: number, length: number): Promise<Float32Array> {
    this.assertAlive();
    checkTokenIds(this, ids, n, length);
    if (n === 0) return new Float32Array(0);
    const wide = new BigInt64Array(ids.length);
    for (let i = 0; i < ids.length; i++) wide[i] = BigInt(ids[i]);
    const input = new this.ort.Tensor("int64", wide, [n, length]);
    return this.output(await this.text.run({ [TEXT_INPUT]: input }), TEXT_OUTPUT, n);
  }

  private output(result: InferenceSession.ReturnType, name: string, n: number): Float32Array {
    const t = result[name];
    const data = t?.data;
    if (!(data instanceof Float32Array) || data.length !== n * this.embedDim) {
      throw new Error(`onnx engine: output ${name} is not float32 [${n}, ${this.embedDim}] (got ${t ? `${t.type} [${t.dims}]` : "nothing"})`);
    }
    return data;
  }

  /** Releases both sessions (asynchronously; the engine is unusable at once). */
  dispose(): void {
    if (this.released) return;
    this.released = true;
    for (const s of [this.vision, this.text]) void s.release().catch(() => undefined);
  }

  private assertAlive(): void {
    if (this.released) throw new Error("onnx engine: this engine has been disposed");
  }
}

async function sessionsFor(
  ort: OnnxRuntime,
  models: ClipOnnxPair,
  options: InferenceSession.SessionOptions,
  maxInlineBytes: number,
): Promise<[InferenceSession, InferenceSession]> {
  const large = [models.vision, models.text].some((m) => initializerBytes(m) > maxInlineBytes);
  if (!large) {
    // One model's bytes at a time: the buffer is garbage once its session holds the weights.
    const vision = await createSession(ort, serializeModel(models.vision), options, "the exported vision model");
    const text = await createSession(ort, serializeModel(models.text), options, "the exported text model");
    return [vision, text];
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cliplab-onnx-"));
  try {
    const visionFile = writeModelFile(path.join(dir, VISION_FILE), models.vision, { maxInlineBytes }).file;
    const textFile = writeModelFile(path.join(dir, TEXT_FILE), models.text, { maxInlineBytes }).file;
    const vision = await createSession(ort, visionFile, options, "the exported vision model");
    const text = await createSession(ort, textFile, options, "the exported text model");
    return [vision, text];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

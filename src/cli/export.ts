/**
 * `cliplab export onnx`: a checkpoint as vision_model.onnx + text_model.onnx + config.json (the
 * split transformers.js and onnxruntime-web load), written atomically, read from the checkpoint
 * one tensor at a time; `--quantize int8` adds the int8 pair (`*_quantized.onnx`, transformers.js's
 * "q8" names). `--verify` then runs the models on onnxruntime-node against cliplab's own encoders
 * on fixed random inputs.
 */
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import * as path from "node:path";
import { exportCheckpointOnnx, ExportResult } from "../io/onnx/export_clip";
import { loadCheckpoint } from "../io/checkpoint";
import { OnnxEngine } from "../engine/onnx";
import { TfjsEngine } from "../engine/tfjs";
import type { EmbeddingEngine } from "../engine/engine";
import { Random } from "../util/random";
import { QUANTIZATIONS, type Quantization } from "../io/onnx/quantize";
import { CliIO, UsageError } from "./io";
import { startBackend } from "./backend";

export const EXPORT_USAGE =
   `usage: cliplab export onnx --checkpoint FILE --out DIR [--config CONFIG] [--external-data auto|always|never] [--quantize ${QUANTIZATIONS.join("|")}] [--verify] [--json]`;

/** Largest max|onnx - tfjs| / max|tfjs| that --verify accepts (the fixtures' fp32 tolerance). */
export const VERIFY_TOLERANCE = 1e-4;
/** Smallest cosine between an int8 tower's features and float32's that --verify accepts. */
export const VERIFY_MIN_COSINE_INT8 = 0.99;

function mb(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function relDiff(got: Float32Array, ref: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i] - ref[i]);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return diff / Math.max(scale, 1e-30);
}

/** Fixed random inputs (2 images, 2 texts of different lengths) through both engines. */
async function verify(onnx: EmbeddingEngine, tfjs: EmbeddingEngine, measureBy: "relative" | "cosine" = "relative"): Promise<{ image: number; text: number }> {
  const rng = new Random(0);
  const s = onnx.imageSize;
  const pixels = rng.fillNormal(new Float32Array(2 * s * s * 3));
  const ctx = onnx.contextLength;
  const vocab = (onnx as OnnxEngine).vocabSize;
  const ids = new Int32Array(2 * ctx);
  for (const [row, eot] of [[0, ctx - 1], [1, Math.max(1, Math.floor(ctx / 2))]]) {
    ids[row * ctx] = vocab - 2;
    for (let t = 1; t < eot; t++) ids[row * ctx + t] = 1 + rng.int(vocab - 3);
    ids[row * ctx + eot] = vocab - 1;
  }
  const measure = measureBy === "cosine" ? (a: Float32Array, b: Float32Array) => minCosine(a, b, onnx.embedDim) : relDiff;
  const image = measure(await onnx.embedImages(pixels, 2), await tfjs.embedImages(pixels, 2));
  const text = measure(await onnx.embedTexts(ids, 2, ctx), await tfjs.embedTexts(ids, 2, ctx));
  return { image, text };
}

function minCosine(a: Float32Array, b: Float32Array, d: number): number {
  let min = 1;
  for (let r = 0; r < a.length / d; r++) {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let i = r * d; i < (r + 1) * d; i++) {
      ab += a[i] * b[i];
      aa += a[i] * a[i];
      bb += b[i] * b[i];
    }
    min = Math.min(min, ab / Math.sqrt(aa * bb));
  }
  return Number.isNaN(min) ? -1 : min;
}

export async function exportCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: "string" },
      out: { type: "string" },
      config: { type: "string" },
      "external-data": { type: "string", default: "auto" },
      quantize: { type: "string" },
      verify: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: true,
  });
  const [format, ...extra] = positionals;
  if (format !== "onnx") throw new UsageError(`the export format must be "onnx", got ${format === undefined ? "nothing" : JSON.stringify(format)}`);
  if (extra.length) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  if (!values.checkpoint) throw new UsageError("--checkpoint is required");
  if (!values.out) throw new UsageError("--out is required");
  const externalData = values["external-data"] as string;
  if (!["auto", "always", "never"].includes(externalData)) {
    throw new UsageError(`--external-data must be auto, always or never, got ${JSON.stringify(externalData)}`);
  }
  const quantize = values.quantize as Quantization | undefined;
  if (quantize !== undefined && !QUANTIZATIONS.includes(quantize)) throw new UsageError(`--quantize must be one of ${QUANTIZATIONS.join(", ")}, got ${JSON.stringify(values.quantize)}`);
  if (!fs.existsSync(values.checkpoint)) throw new Error(`${values.checkpoint}: no such file`);
  if (fs.existsSync(values.out) && !fs.statSync(values.out).isDirectory()) throw new Error(`--out ${values.out} exists and is not a directory`);

  const t0 = performance.now();
  const result: ExportResult = exportCheckpointOnnx(values.checkpoint, values.out, {
    config: values.config,
    externalData: externalData as "auto" | "always" | "never",
    quantize,
  });
  const seconds = (performance.now() - t0) / 1000;
  const c = result.config;
  for (const m of [result.vision, result.text, ...(result.quantized ? [result.quantized.vision, result.quantized.text] : [])]) {
    io.out(`wrote ${m.file} (${mb(m.bytes)}${m.dataFile ? `, weights in ${path.basename(m.dataFile)}: ${mb(m.dataBytes!)}` : ""})`);
  }
  io.out(`wrote ${result.configFile}`);
  io.out(
    `${c.vision_tower}, embed ${c.embed_dim}, opset ${c.opset}: ${c.vision.input} NCHW float32 [batch, 3, ${c.image_size}, ${c.image_size}] -> ${c.vision.output}; ` +
      `${c.text.input} int64 [batch, sequence <= ${c.context_length}] -> ${c.text.output} (${seconds.toFixed(1)}s)`,
  );

  let verified: { image: number; text: number } | undefined;
  let verifiedQuantized: { image: number; text: number } | undefined;
  if (values.verify) {
    await startBackend(io);
    const clip = await loadCheckpoint(values.checkpoint, { config: values.config });
    const onnx = await OnnxEngine.fromDirectory(values.out);
    const int8 = quantize ? await OnnxEngine.fromDirectory(values.out, { quantize }) : undefined;
    try {
      verified = await verify(onnx, new TfjsEngine(clip));
      if (int8) verifiedQuantized = await verify(int8, new TfjsEngine(clip), "cosine");
    } finally {
      onnx.dispose();
      int8?.dispose();
      clip.dispose();
    }
    const line = `image max|Δ|/max|ref| ${verified.image.toExponential(2)}, text ${verified.text.toExponential(2)}`;
    if (!(verified.image <= VERIFY_TOLERANCE && verified.text <= VERIFY_TOLERANCE)) {
      throw new Error(`verify failed: onnxruntime and cliplab disagree (${line}; tolerance ${VERIFY_TOLERANCE})`);
    }
    io.out(`verify: onnxruntime-node matches cliplab on 2 random images and 2 texts (${line})`);
    if (verifiedQuantized) {
      const q = `min cosine image ${verifiedQuantized.image.toFixed(5)}, text ${verifiedQuantized.text.toFixed(5)}`;
      if (!(verifiedQuantized.image >= VERIFY_MIN_COSINE_INT8 && verifiedQuantized.text >= VERIFY_MIN_COSINE_INT8)) {
        throw new Error(`verify failed: the ${quantize} models drift from cliplab's float32 features (${q}; at least ${VERIFY_MIN_COSINE_INT8} expected)`);
      }
      io.out(`verify: the ${quantize} models agree with cliplab's float32 features (${q})`);
    }
  }
  if (values.json) {
    io.out(
      JSON.stringify({
        out: result.dir,
        vision: result.vision,
        text: result.text,
        config: result.configFile,
        seconds: Math.round(seconds * 100) / 100,
        ...(result.quantized ? { quantized: result.quantized } : {}),
        ...(verified ? { verify: verified } : {}),
        ...(verifiedQuantized ? { verifyQuantized: verifiedQuantized } : {}),
      }),
    );
  }
  return 0;
}

/**
 * One inference engine in its own process for bench/inference.ts (a process per engine: the tfjs
 * backend and its kernels are process-global, and peak RSS is per process). Prints one JSON line
 * when ready, then answers JSON-line commands on stdin, one at a time:
 *
 *   {"cmd": "time", "kind": "image"|"text", "batch": N} -> {"ok": true, "seconds": s, "cpu_seconds": c}
 *   {"cmd": "features"}            -> features of a fixed input (2 images, 2 texts), for parity between engines
 *   {"cmd": "parity_inputs", "dir"} -> (tfjs engines) our weights, the fixed inputs and features, for torch_peer.py
 *   {"cmd": "exit"}                -> {"ok": true, "peak_rss_mb": ...}, then exits
 *
 * node --import tsx bench/inference_worker.ts --engine=E --model=M --threads=N --seed=S [--vision=F --text=F]
 *   tfjs       cliplab on tfjs WASM with the native kernels (system BLAS, fused C kernels) where they load
 *   tfjs-wasm  cliplab on tfjs WASM with its own (XNNPACK) kernels: initBackend({blas: false})
 *   onnx       cliplab's ONNX export of the same weights (in memory) on onnxruntime-node
 *   ort        onnxruntime-node on the graphs PyTorch exported (--vision, --text), torch's own weights
 * Every engine is given --threads compute threads. Inputs are random (seeded), made once per
 * (kind, batch); a call includes reading the features back.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend/select";
import { Clip } from "../src/model/clip";
import { saveCheckpoint } from "../src/io/checkpoint";
import { OnnxEngine } from "../src/engine/onnx";
import { Random } from "../src/util/random";

type Kind = "image" | "text";
const PARITY_BATCH = 2;

function arg(name: string, fallback?: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  const v = hit ? hit.slice(name.length + 3) : fallback;
  if (v === undefined) throw new Error(`inference_worker: --${name}=... is required`);
  return v;
}

function reply(obj: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** Tokenised-looking ids: SOT, random ids, EOT (the largest id) at a random position, zeros after. */
export function randomTokens(batch: number, context: number, vocab: number, rng: Random): Int32Array {
  const sot = vocab - 2;
  const eot = vocab - 1;
  const ids = new Int32Array(batch * context);
  for (let b = 0; b < batch; b++) {
    const eotAt = Math.min(context - 1, 8 + rng.int(Math.max(1, context - 8)));
    ids[b * context] = sot;
    for (let t = 1; t < eotAt; t++) ids[b * context + t] = 1 + rng.int(sot - 1);
    ids[b * context + eotAt] = eot;
  }
  return ids;
}

function nhwcToNchw(x: Float32Array, n: number, s: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) for (let i = 0; i < s * s; i++) for (let c = 0; c < 3; c++) out[((b * 3 + c) * s * s) + i] = x[(b * s * s + i) * 3 + c];
  return out;
}

interface Engine {
  describe: Record<string, unknown>;
  imageSize: number;
  contextLength: number;
  vocab: number;
  image(pixelsNhwc: Float32Array, n: number): Promise<Float32Array>;
  text(ids: Int32Array, n: number): Promise<Float32Array>;
  /** The Clip behind a cliplab engine (for parity inputs), if any. */
  clip?: Clip;
}

async function tfjsEngine(model: string, threads: number, seed: number, blas: boolean): Promise<Engine> {
  const choice = await initBackend({ prefer: "wasm", threads, blas });
  const clip = Clip.create(model, { seed });
  const size = clip.config.vision_cfg.image_size;
  const ctx = clip.config.text_cfg.context_length;
  return {
    describe: { backend: choice.name, reason: choice.reason, threads: choice.threads, blas: choice.blas ?? null, fused: choice.fused ?? null, params: clip.numParams() },
    imageSize: size,
    contextLength: ctx,
    vocab: clip.config.text_cfg.vocab_size,
    clip,
    async image(p, n) {
      return tf.tidy(() => clip.encodeImage(tf.tensor4d(p, [n, size, size, 3])).dataSync() as Float32Array);
    },
    async text(ids, n) {
      return tf.tidy(() => clip.encodeText(tf.tensor2d(ids, [n, ids.length / n], "int32")).dataSync() as Float32Array);
    },
  };
}

async function onnxEngine(model: string, threads: number, seed: number, spinning: boolean, quantize?: "int8"): Promise<Engine> {
  // The weights are made on the cpu backend (no BLAS kernels or WASM heap in this process's RSS).
  await initBackend({ prefer: "cpu" });
  const clip = Clip.create(model, { seed });
  const engine = await OnnxEngine.fromClip(clip, { threads, spinning, quantize });
  const info = { imageSize: clip.config.vision_cfg.image_size, contextLength: clip.config.text_cfg.context_length, vocab: clip.config.text_cfg.vocab_size, params: clip.numParams() };
  clip.dispose();
  return {
    describe: { onnxruntime: require("onnxruntime-node/package.json").version, threads, spinning, precision: engine.precision, graphOptimizationLevel: "all", params: info.params },
    ...info,
    image: (p, n) => engine.embedImages(p, n),
    text: (ids, n) => engine.embedTexts(ids, n, ids.length / n),
  };
}

async function ortEngine(visionFile: string, textFile: string, threads: number, spinning: boolean, imageSize: number, contextLength: number, vocab: number): Promise<Engine> {
  const ort = require("onnxruntime-node") as typeof import("onnxruntime-node");
  const options: import("onnxruntime-node").InferenceSession.SessionOptions = {
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    ...(spinning ? {} : { extra: { session: { intra_op: { allow_spinning: "0" } } } }),
  };
  const vision = await ort.InferenceSession.create(visionFile, options);
  const text = await ort.InferenceSession.create(textFile, options);
  const first = async (s: import("onnxruntime-node").InferenceSession, feeds: Record<string, import("onnxruntime-node").Tensor>) => {
    const out = await s.run(feeds);
    return out[s.outputNames[0]].data as Float32Array;
  };
  return {
    describe: { onnxruntime: require("onnxruntime-node/package.json").version, threads, spinning, graphOptimizationLevel: "all", vision: path.basename(visionFile), text: path.basename(textFile) },
    imageSize,
    contextLength,
    vocab,
    image: (p, n) => first(vision, { [vision.inputNames[0]]: new ort.Tensor("float32", nhwcToNchw(p, n, imageSize), [n, 3, imageSize, imageSize]) }),
    text: (ids, n) => first(text, { [text.inputNames[0]]: new ort.Tensor("int64", BigInt64Array.from(ids, (v) => BigInt(v)), [n, ids.length / n]) }),
  };
}

async function writeParityInputs(clip: Clip, dir: string, inputs: { pixels: Float32Array; ids: Int32Array }, features: { image: Float32Array; text: Float32Array }): Promise<void> {
  const size = clip.config.vision_cfg.image_size;
  const ctx = clip.config.text_cfg.context_length;
  const raw = (file: string, data: Float32Array | Int32Array) => fs.writeFileSync(path.join(dir, file), Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  raw("pixels_nchw.f32", nhwcToNchw(inputs.pixels, PARITY_BATCH, size));
  raw("tokens.i32", inputs.ids);
  raw("image_features.f32", features.image);
  raw("text_features.f32", features.text);
  const dim = clip.config.embed_dim;
  const meta = {
    checkpoint: "weights.safetensors",
    pixels: { file: "pixels_nchw.f32", shape: [PARITY_BATCH, 3, size, size] },
    tokens: { file: "tokens.i32", shape: [PARITY_BATCH, ctx] },
    image_features: { file: "image_features.f32", shape: [PARITY_BATCH, dim] },
    text_features: { file: "text_features.f32", shape: [PARITY_BATCH, dim] },
  };
  await saveCheckpoint(clip, path.join(dir, meta.checkpoint));
  fs.writeFileSync(path.join(dir, "meta.json"), JSON.stringify(meta, null, 2));
}

async function main(): Promise<void> {
  const engineName = arg("engine");
  const model = arg("model", "ViT-B-32");
  const threads = Number(arg("threads", "2"));
  const seed = Number(arg("seed", "0"));
  const t0 = performance.now();
  let engine: Engine;
  if (engineName === "tfjs" || engineName === "tfjs-wasm") engine = await tfjsEngine(model, threads, seed, engineName === "tfjs");
  else if (engineName === "onnx" || engineName === "onnx-int8") {
    engine = await onnxEngine(model, threads, seed, arg("spinning", "1") === "1", engineName === "onnx-int8" ? "int8" : undefined);
  }
  else if (engineName === "ort") {
    engine = await ortEngine(arg("vision"), arg("text"), threads, arg("spinning", "1") === "1", Number(arg("image-size")), Number(arg("context")), Number(arg("vocab")));
  } else throw new Error(`inference_worker: unknown --engine=${engineName} (tfjs, tfjs-wasm, onnx, onnx-int8, ort)`);
  const rng = new Random(seed + 1);
  const cache = new Map<string, Float32Array | Int32Array>();
  const input = (kind: Kind, batch: number) => {
    const key = `${kind}/${batch}`;
    if (!cache.has(key)) {
      cache.set(key, kind === "image" ? rng.fillNormal(new Float32Array(batch * engine.imageSize * engine.imageSize * 3)) : randomTokens(batch, engine.contextLength, engine.vocab, rng));
    }
    return cache.get(key)!;
  };
  const fixed = (() => {
    const r = new Random(seed + 1000);
    return { pixels: r.fillNormal(new Float32Array(PARITY_BATCH * engine.imageSize * engine.imageSize * 3)), ids: randomTokens(PARITY_BATCH, engine.contextLength, engine.vocab, r) };
  })();
  reply({ ok: true, ready: true, engine: engineName, model, build_seconds: (performance.now() - t0) / 1000, peak_rss_mb_after_build: peakRssMb(), ...engine.describe });

  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    try {
      const cmd = JSON.parse(line);
      if (cmd.cmd === "time") {
        const kind = cmd.kind as Kind;
        const batch = Number(cmd.batch);
        const x = input(kind, batch);
        const c0 = process.cpuUsage();
        const w0 = performance.now();
        if (kind === "image") await engine.image(x as Float32Array, batch);
        else await engine.text(x as Int32Array, batch);
        const seconds = (performance.now() - w0) / 1000;
        const c = process.cpuUsage(c0);
        reply({ ok: true, seconds, cpu_seconds: (c.user + c.system) / 1e6 });
      } else if (cmd.cmd === "features") {
        const image = await engine.image(fixed.pixels, PARITY_BATCH);
        const text = await engine.text(fixed.ids, PARITY_BATCH);
        reply({ ok: true, image: Array.from(image), text: Array.from(text) });
      } else if (cmd.cmd === "parity_inputs") {
        if (!engine.clip) throw new Error(`${engineName} has no cliplab weights to write`);
        const features = { image: await engine.image(fixed.pixels, PARITY_BATCH), text: await engine.text(fixed.ids, PARITY_BATCH) };
        await writeParityInputs(engine.clip, String(cmd.dir), fixed, features);
        reply({ ok: true });
      } else if (cmd.cmd === "exit") {
        reply({ ok: true, peak_rss_mb: peakRssMb() });
        process.exit(0);
      } else {
        reply({ ok: false, error: `unknown command ${JSON.stringify(cmd.cmd)}` });
      }
    } catch (err) {
      reply({ ok: false, error: (err as Error).message.split("\n")[0] });
    }
  }
}

if (require.main === module) {
  main().catch((err) => {
    reply({ ok: false, error: (err as Error).message.split("\n")[0] });
    process.exit(1);
  });
}

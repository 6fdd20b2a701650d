/**
 * The tfjs side of bench/train.ts, one backend per process (tfjs backends and WASM thread counts
 * are process-global): `node --import tsx bench/train_worker.ts --backend=wasm|cpu --threads=N [--blas=0]`
 * (--blas=0: WASM without the native BLAS and fused kernels).
 *
 * Like `torch_peer.py train --serve`, it answers one JSON-line command at a time on stdin, so the
 * driver can alternate tfjs and PyTorch work (never concurrently). Replies go to stdout, one JSON
 * object a line; everything else (tfjs' own messages) is sent to stderr.
 *
 *   {"cmd": "load", "dir", "batch"}     fresh model (Clip.create, the run's seed) and optimizer,
 *                                        the batches bench/train.ts wrote for this batch size
 *   {"cmd": "steps", "n", "lr"}         n training steps (trainStep) -> seconds per step
 *   {"cmd": "profile", "steps"}         steps (default 3) under tf.profile -> kernel time per step, by kernel
 *   {"cmd": "accuracy", "evalSteps", "evalLimit", "outDir"}
 *                                        trainClip with the defaults, zero-shot top-1 on
 *                                        `evalLimit` test images after each step in evalSteps
 *   {"cmd": "exit"}                     -> peak RSS, then exits
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend, shutdownBackend, type BackendName } from "../src/backend/select";
import { Clip } from "../src/model/clip";
import { ClipOptimizer, trainStep } from "../src/train/step";
import { TRAIN_DEFAULTS } from "../src/train/options";
import { trainClip } from "../src/train/trainer";
import { Batcher } from "../src/data/batcher";
import { CaptionSet } from "../src/data/captions";
import { loadFashionMnist } from "../src/data/fashion_mnist";
import { zeroShotClassifier } from "../src/eval/zero_shot";
import { tokenize } from "../src/text/tokenize";

// Keep stdout for replies.
const toStderr = (...args: unknown[]) => process.stderr.write(args.map(String).join(" ") + "\n");
console.log = toStderr;
console.info = toStderr;
console.warn = toStderr;

function reply(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function arg(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? hit.slice(name.length + 3) : fallback;
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

interface SetMeta {
  pixels: string;
  tokens: string;
  count: number;
  lengths: number[];
}

interface Loaded {
  clip: Clip;
  opt: ClipOptimizer;
  batches: { pixels: Float32Array; tokens: Int32Array; length: number }[];
  batch: number;
  size: number;
  cursor: number;
}

let state: Loaded | undefined;
const seed = Number(arg("seed", "0"));

function readRaw<T extends Float32Array | Int32Array>(file: string, ctor: { new (b: ArrayBuffer): T }): T {
  const buf = fs.readFileSync(file);
  const copy = new ArrayBuffer(buf.byteLength);
  new Uint8Array(copy).set(buf);
  return new ctor(copy);
}

function unload(): void {
  if (!state) return;
  state.opt.dispose();
  state.clip.dispose();
  state = undefined;
}

function load(dir: string, batch: number): Record<string, unknown> {
  unload();
  const meta = JSON.parse(fs.readFileSync(path.join(dir, "meta.json"), "utf8"));
  const set: SetMeta = meta.sets[String(batch)];
  const size: number = meta.model.image_size;
  const ctx: number = meta.model.context_length;
  const pixels = readRaw(path.join(dir, set.pixels), Float32Array);
  const tokens = readRaw(path.join(dir, set.tokens), Int32Array);
  const perPixels = batch * size * size * 3;
  const batches = Array.from({ length: set.count }, (_, i) => {
    const length = set.lengths[i];
    const rows = new Int32Array(batch * length);
    for (let b = 0; b < batch; b++) rows.set(tokens.subarray((i * batch + b) * ctx, (i * batch + b) * ctx + length), b * length);
    return { pixels: pixels.slice(i * perPixels, (i + 1) * perPixels), tokens: rows, length };
  });
  const clip = Clip.create(TRAIN_DEFAULTS.model, { seed });
  const opt = new ClipOptimizer(clip, "infonce", {
    beta1: TRAIN_DEFAULTS.beta1,
    beta2: TRAIN_DEFAULTS.beta2,
    eps: TRAIN_DEFAULTS.eps,
    weightDecay: TRAIN_DEFAULTS.weightDecay,
  });
  state = { clip, opt, batches, batch, size, cursor: 0 };
  return { batches: set.count, params: clip.numParams() };
}

/** One step exactly as trainClip times it: tensors from the batch's arrays, trainStep, dispose. */
function oneStep(s: Loaded, lr: number): { seconds: number; loss: number } {
  const b = s.batches[s.cursor++ % s.batches.length];
  const t0 = performance.now();
  const pixels = tf.tensor4d(b.pixels, [s.batch, s.size, s.size, 3]);
  const tokens = tf.tensor2d(b.tokens, [s.batch, b.length], "int32");
  try {
    const r = trainStep(s.opt, pixels, tokens, lr, TRAIN_DEFAULTS.gradClipNorm);
    return { seconds: (performance.now() - t0) / 1000, loss: r.loss };
  } finally {
    tf.dispose([pixels, tokens]);
  }
}

function steps(n: number, lr: number): Record<string, unknown> {
  if (!state) throw new Error("no batches loaded");
  const c0 = process.cpuUsage();
  const seconds: number[] = [];
  const losses: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = oneStep(state, lr);
    seconds.push(r.seconds);
    losses.push(r.loss);
  }
  return { seconds, losses, cpu_seconds: cpuSeconds(c0), tensors: tf.memory().numTensors };
}

/** Kernel time of one step, by kernel; BatchMatMul split by whether it is batched (attention) or not (2-D). */
async function profile(lr: number, steps: number): Promise<Record<string, unknown>> {
  if (!state) throw new Error("no batches loaded");
  const s = state;
  const t0 = performance.now();
  const info = await tf.profile(() => {
    for (let i = 0; i < steps; i++) oneStep(s, lr);
  });
  const wallSeconds = (performance.now() - t0) / 1000 / steps;
  const byKernel = new Map<string, { ms: number; calls: number }>();
  let wrapperMs = 0;
  for (const k of info.kernels) {
    let name = k.name;
    k.kernelTimeMs = (Number(k.kernelTimeMs) || 0) / steps; // per step
    // tf.customGrad (matMul2d's and batchNormTrain's forward) shows up as an "unnamed scope" whose
    // time includes the kernels inside it, which are also listed: counted once, under those.
    if (name === "unnamed scope") {
      wrapperMs += Number(k.kernelTimeMs) || 0;
      continue;
    }
    if (name === "BatchMatMul") {
      // The kernel sees the op's inputs: rank 2 for x @ W (linear layers, patch embedding, logits), rank 4 for attention.
      name = (k.inputShapes[0] ?? []).length > 2 ? "BatchMatMul (batched: attention)" : "BatchMatMul (2-D: linear, patch embed, logits)";
    }
    const e = byKernel.get(name) ?? { ms: 0, calls: 0 };
    e.ms += Number(k.kernelTimeMs) || 0;
    e.calls += 1;
    byKernel.set(name, e);
  }
  const kernels = [...byKernel].map(([name, v]) => ({ name, ms: v.ms, calls: v.calls })).sort((a, b) => b.ms - a.ms);
  return { batch: s.batch, steps, wall_seconds: wallSeconds, kernel_ms_total: kernels.reduce((t, k) => t + k.ms, 0), custom_grad_wrapper_ms: wrapperMs, kernels };
}

async function accuracy(evalSteps: number[], evalLimit: number, outDir: string): Promise<Record<string, unknown>> {
  unload();
  const test = loadFashionMnist("test");
  const captions = CaptionSet.load();
  const wanted = new Set(evalSteps);
  const evals: { step: number; train_seconds: number; top1: number; images: number; eval_seconds: number }[] = [];
  const trainerEvals: { epoch: number; step: number; top1: number; train_seconds: number }[] = [];
  let model: Clip | undefined;
  let trainSeconds = 0;
  const losses: number[] = [];
  const c0 = process.cpuUsage();
  const result = await trainClip(
    { outDir },
    {
      onStart: (i) => (model = i.model),
      onStep: (e) => {
        trainSeconds += e.seconds;
        if (e.step % 50 === 0) losses.push(e.loss);
        const done = e.step + 1;
        if (!wanted.has(done) || !model) return;
        const t0 = performance.now();
        const top1 = zeroShotTop1(model, test, captions, evalLimit);
        evals.push({ step: done, train_seconds: trainSeconds, top1, images: evalLimit, eval_seconds: (performance.now() - t0) / 1000 });
      },
      onEpochEnd: (e) => trainerEvals.push({ epoch: e.epoch, step: e.step, top1: e.eval.zeroShotTop1, train_seconds: e.trainSeconds }),
    },
  );
  const out = {
    steps: result.steps,
    train_seconds: result.trainSeconds,
    wall_seconds: result.wallSeconds,
    cpu_seconds: cpuSeconds(c0),
    pairs_per_s: result.pairsPerSecond,
    final_top1: result.zeroShotTop1,
    final_images: result.final.images,
    final_loss: result.finalLoss,
    losses_every_50: losses,
    evals,
    trainer_evals: trainerEvals,
    logit_scale: result.model.logitScale.dataSync()[0],
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
  result.model.dispose();
  return out;
}

/** Zero-shot top-1 on the first `limit` test images, exactly as src/train/evaluate.ts does it. */
function zeroShotTop1(clip: Clip, test: ReturnType<typeof loadFashionMnist>, captions: CaptionSet, limit: number): number {
  const size = clip.config.vision_cfg.image_size;
  const n = Math.min(limit, test.count);
  const images = new Batcher(test, { batchSize: 1, seed: 0, imageSize: size, captions: null });
  const classifier = zeroShotClassifier(
    clip,
    captions.spec.classes.map((c) => c.canonical),
    captions.spec.evalTemplates,
    { tokenizer: (texts) => tokenize(texts, { contextLength: clip.config.text_cfg.context_length, truncate: true }) },
  );
  try {
    const pixels = (start: number, end: number) =>
      tf.tensor4d(images.pixelsFor(Int32Array.from({ length: end - start }, (_, i) => start + i)), [end - start, size, size, 3]);
    return classifier.evaluate({ pixels, labels: Int32Array.from(test.labels.subarray(0, n)) }, { batchSize: 500 }).top1;
  } finally {
    classifier.dispose();
  }
}

async function main(): Promise<void> {
  const backend = arg("backend", "wasm") as BackendName;
  const threads = Number(arg("threads", "1"));
  // --blas=0: the WASM (XNNPACK) kernels only, without the native BLAS and fused kernels.
  const blas = arg("blas", "1") !== "0";
  let choice;
  try {
    choice = await initBackend({ prefer: backend, threads, blas });
  } catch (err) {
    reply({ ok: false, error: `tfjs backend ${backend} (${threads} threads): ${err instanceof Error ? err.message : String(err)}` });
    return;
  }
  reply({ ok: true, ready: true, backend: { name: choice.name, threads: choice.threads, simd: choice.simd, reason: choice.reason, blas: choice.blas ?? null, fused: choice.fused ?? null } });
  const lines = (await import("node:readline")).createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    try {
      const cmd = JSON.parse(line);
      if (cmd.cmd === "load") reply({ ok: true, ...load(cmd.dir, cmd.batch) });
      else if (cmd.cmd === "steps") reply({ ok: true, ...steps(cmd.n, cmd.lr) });
      else if (cmd.cmd === "profile") reply({ ok: true, ...(await profile(cmd.lr ?? TRAIN_DEFAULTS.lr, cmd.steps ?? 3)) });
      else if (cmd.cmd === "accuracy") reply({ ok: true, ...(await accuracy(cmd.evalSteps, cmd.evalLimit, cmd.outDir)) });
      else if (cmd.cmd === "exit") {
        unload();
        reply({ ok: true, peak_rss_mb: process.resourceUsage().maxRSS / 1024 });
        break;
      } else reply({ ok: false, error: `unknown command ${JSON.stringify(cmd.cmd)}` });
    } catch (err) {
      reply({ ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    }
  }
  lines.close();
  await shutdownBackend();
  process.exit(0);
}

main().catch((err) => {
  reply({ ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) });
  process.exit(1);
});

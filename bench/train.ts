/**
 * Training benchmarks of the toolkit's default recipe (src/train/options.ts TRAIN_DEFAULTS: the
 * model preset there (RN-Micro-32, a ModifiedResNet with train-mode BatchNorm; the peer builds a
 * ViT or OpenAI's ModifiedResNet to match), symmetric InfoNCE, AdamW lr 3e-3 betas 0.9/0.98 eps
 * 1e-6 wd 0.05, grad-norm clip 1, warm-up 50 steps then cosine), against the same model, loss,
 * optimizer and data in PyTorch (`bench/torch_peer.py train --serve`), measured in the same run.
 *
 *   train           steady-state step throughput (image-text pairs/s) at batch 128 and 512, tfjs
 *                   WASM with 1 and with 2 threads, tfjs cpu (a couple of steps), PyTorch with 1 and
 *                   2 threads; plus a tf.profile of one step (where tfjs time goes).
 *   train-accuracy  the default recipe end to end (trainClip, TRAIN_DEFAULTS' epochs of batch 128)
 *                   and PyTorch training the same 936 batches with the same schedule: zero-shot
 *                   top-1 every 100 steps on 2000 test images, at the end on all 10,000; time to
 *                   85% / 88%; peak RSS.
 *
 * The tfjs side runs in child processes (bench/train_worker.ts), one per backend and thread count,
 * since both are fixed per process. The batches come from cliplab's Batcher (Fashion-MNIST, seed
 * 0, captions tokenised and cut to the longest caption as packTokens does) and are written to a
 * temporary directory that both sides read; the initial weights are cliplab's (Clip.create with
 * the seed), written as safetensors and loaded by the peer. tfjs and PyTorch take turns in chunks
 * of steps, never at the same time, and the CPU use of other processes is measured for each side.
 */
import { ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { Clip } from "../src/model/clip";
import { saveCheckpoint } from "../src/io/checkpoint";
import { Batcher } from "../src/data/batcher";
import { CaptionSet } from "../src/data/captions";
import { loadFashionMnist } from "../src/data/fashion_mnist";
import { CLIP_MEAN, CLIP_STD } from "../src/image/preprocess";
import { tokenizeToIds } from "../src/text/tokenize";
import { fillPrompt } from "../src/text/fill";
import { packTokens } from "../src/train/trainer";
import { cosineLr } from "../src/train/schedule";
import { TRAIN_DEFAULTS } from "../src/train/options";
import {
  BENCH_DIR,
  BenchContext,
  ContentionMeter,
  TORCH_INSTALL_HINT,
  TORCH_PEER,
  TORCH_PYTHON,
  fmt,
  formatTable,
  median,
  peakRssMb,
  probeTorch,
  round2,
  waitForQuiet,
  writeResult,
} from "./common";

export interface TrainBenchOptions {
  /** Batch sizes for the throughput measurement. */
  batches: number[];
  /** Untimed steps per side before timing (per batch size and thread count). */
  warmup: number;
  /** Timed steps per side, taken in `rounds` alternating chunks. */
  steps: number;
  rounds: number;
  /** Timed steps of the pure-JS cpu backend (batch 128 only). */
  cpuSteps: number;
  /** Give up on the cpu backend after this many seconds (a step in flight is then a lower bound). */
  cpuBudgetSeconds: number;
  /** WASM thread counts to measure (PyTorch gets the same counts). */
  threads: number[];
  /** Threads for the train-accuracy run, both sides. */
  accuracyThreads: number;
  /** Evaluate every this many steps in train-accuracy (plus the epoch ends). */
  evalEvery: number;
  quietWaitSeconds: number;
  torchOmpWait: "passive" | "active" | "inherit";
  seed: number;
  torch: boolean;
  profile: boolean;
}

export const DEFAULT_TRAIN_OPTIONS: TrainBenchOptions = {
  batches: [128, 512],
  warmup: 3,
  steps: 24,
  rounds: 4,
  cpuSteps: 2,
  cpuBudgetSeconds: 180,
  threads: [1, 2],
  accuracyThreads: 2,
  evalEvery: 100,
  quietWaitSeconds: 10,
  torchOmpWait: "passive",
  seed: 0,
  torch: true,
  profile: true,
};

/** Distinct batches written per batch size for the throughput runs (cycled). */
const THROUGHPUT_BATCHES = 6;
const ACCURACY_TARGETS = [0.85, 0.88];

// ---------------------------------------------------------------------------------------------
// A child process answering JSON-line commands (the tfjs worker or the PyTorch peer)
// ---------------------------------------------------------------------------------------------

class Session {
  private dead: string | undefined;
  private constructor(
    readonly label: string,
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterator<string>,
    readonly info: any,
  ) {
    child.on("exit", (code, signal) => (this.dead ??= `${label} exited (${signal ?? code})`));
    child.stdin.on("error", (err) => (this.dead ??= `${label} input closed (${err.message})`));
  }

  static async start(label: string, command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Session> {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"], env, cwd: path.dirname(BENCH_DIR) }) as unknown as ChildProcessWithoutNullStreams;
    let spawnError: string | undefined;
    child.on("error", (err) => (spawnError = `${command}: ${err.message}`));
    const raw = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    // Only JSON lines are answers; anything else a library prints goes to stderr.
    const lines: AsyncIterator<string> = {
      next: async () => {
        for (;;) {
          const n = await raw.next();
          if (n.done || n.value.startsWith("{")) return n;
          process.stderr.write(`[${label}] ${n.value}\n`);
        }
      },
    };
    const first = await lines.next();
    if (first.done) throw new Error(spawnError ?? `${label} exited before it was ready`);
    const info = JSON.parse(first.value);
    if (info?.ok !== true || info?.ready !== true) {
      child.kill();
      throw new Error(`${label} failed to start: ${info?.error ?? "not ready"}`);
    }
    return new Session(label, child, lines, info);
  }

  async request<T = any>(command: Record<string, unknown>): Promise<T> {
    if (this.dead) throw new Error(this.dead);
    this.child.stdin.write(JSON.stringify(command) + "\n");
    const next = await this.lines.next();
    if (next.done) throw new Error(this.dead ?? `${this.label} closed its output`);
    const answer = JSON.parse(next.value);
    if (answer?.ok !== true) throw new Error(`${this.label}: ${answer?.error ?? "failed"}`);
    return answer as T;
  }

  /** Like request, but gives up after `seconds`: undefined, and the process is killed (it is busy). */
  async requestWithin<T = any>(command: Record<string, unknown>, seconds: number): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), seconds * 1000)));
    try {
      const r = await Promise.race([this.request<T>(command), timeout]);
      if (r === undefined) this.kill();
      return r;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    this.dead ??= `${this.label} killed`;
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }

  async close(): Promise<any> {
    try {
      return this.dead ? undefined : await this.request({ cmd: "exit" });
    } catch {
      return undefined;
    } finally {
      this.child.stdin.end();
      if (this.child.exitCode === null) setTimeout(() => this.child.exitCode === null && this.child.kill(), 5000).unref();
    }
  }
}

/** `native`: WASM with the native BLAS and fused kernels (where they load); `xnnpack`: WASM kernels only. */
type WasmKernels = "native" | "xnnpack";

function startWorker(backend: "wasm" | "cpu", threads: number, seed: number, kernels: WasmKernels = "native"): Promise<Session> {
  const worker = path.join(BENCH_DIR, "train_worker.ts");
  const label = `tfjs ${backend}${backend === "wasm" ? `${kernels === "xnnpack" ? " (XNNPACK)" : ""} ${threads}t` : ""}`;
  return Session.start(label, process.execPath, ["--import", "tsx", worker, `--backend=${backend}`, `--threads=${threads}`, `--seed=${seed}`, `--blas=${kernels === "native" ? 1 : 0}`], process.env);
}

function torchEnv(opts: TrainBenchOptions): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (opts.torchOmpWait !== "inherit" && env.OMP_WAIT_POLICY === undefined) env.OMP_WAIT_POLICY = opts.torchOmpWait.toUpperCase();
  return env;
}

async function startPeer(threads: number, opts: TrainBenchOptions): Promise<Session> {
  return Session.start(`torch ${threads}t`, TORCH_PYTHON, [TORCH_PEER, "train", "--serve", `--threads=${threads}`, `--seed=${opts.seed}`], torchEnv(opts));
}

// ---------------------------------------------------------------------------------------------
// Data for both sides
// ---------------------------------------------------------------------------------------------

function writeRaw(file: string, data: Float32Array | Int32Array | Uint8Array): void {
  fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}

/** The model block of meta.json, for torch_peer.py's model_from_meta. */
function modelMeta(clip: Clip): Record<string, unknown> {
  const c = clip.config;
  const v = c.vision_cfg;
  const t = c.text_cfg;
  return {
    name: TRAIN_DEFAULTS.model,
    embed_dim: c.embed_dim,
    image_size: v.image_size,
    patch: v.patch_size,
    vision_width: v.width,
    vision_layers: v.layers,
    vision_head_width: v.head_width,
    context_length: t.context_length,
    vocab_size: t.vocab_size,
    text_width: t.width,
    text_heads: t.heads,
    text_layers: t.layers,
    activation: c.quick_gelu ? "quick_gelu" : "gelu",
  };
}

const ADAMW_META = {
  lr: TRAIN_DEFAULTS.lr,
  beta1: TRAIN_DEFAULTS.beta1,
  beta2: TRAIN_DEFAULTS.beta2,
  eps: TRAIN_DEFAULTS.eps,
  weight_decay: TRAIN_DEFAULTS.weightDecay,
};

/** Initial weights: exactly the model trainClip starts from (Clip.create(model, {seed})). */
async function writeInitialWeights(dir: string, seed: number): Promise<Record<string, unknown>> {
  const clip = Clip.create(TRAIN_DEFAULTS.model, { seed });
  try {
    await saveCheckpoint(clip, path.join(dir, "init.safetensors"));
    return modelMeta(clip);
  } finally {
    clip.dispose();
  }
}

interface TokenStats {
  meanTokens: number;
  minTokens: number;
  maxTokens: number;
  meanPackedLength: number;
}

function tokenRows(captions: string[], ctx: number): { rows: Int32Array[]; length: number; tokens: number[] } {
  const rows = tokenizeToIds(captions, { contextLength: ctx, truncate: true });
  const { length } = packTokens(rows);
  const tokens = rows.map((r) => r.indexOf(49407) + 1); // SOT ... EOT
  return { rows, length, tokens };
}

/** Throughput data: a few real batches per batch size, pixels NHWC and full-context token rows. */
async function writeThroughputData(dir: string, opts: TrainBenchOptions): Promise<{ tokenStats: Record<number, TokenStats> }> {
  const model = await writeInitialWeights(dir, opts.seed);
  const ctx = model.context_length as number;
  const size = model.image_size as number;
  const train = loadFashionMnist("train");
  const captions = CaptionSet.load();
  const sets: Record<string, unknown> = {};
  const tokenStats: Record<number, TokenStats> = {};
  for (const batch of opts.batches) {
    const batcher = new Batcher(train, { batchSize: batch, seed: opts.seed, imageSize: size, captions });
    const pixels = new Float32Array(THROUGHPUT_BATCHES * batch * size * size * 3);
    const tokens = new Int32Array(THROUGHPUT_BATCHES * batch * ctx);
    const lengths: number[] = [];
    const all: number[] = [];
    for (let i = 0; i < THROUGHPUT_BATCHES; i++) {
      const b = batcher.batchAt(0, i);
      pixels.set(b.pixels, i * b.pixels.length);
      const t = tokenRows(b.captions, ctx);
      t.rows.forEach((r, j) => tokens.set(r, (i * batch + j) * ctx));
      lengths.push(t.length);
      all.push(...t.tokens);
    }
    writeRaw(path.join(dir, `b${batch}.pixels.f32`), pixels);
    writeRaw(path.join(dir, `b${batch}.tokens.i32`), tokens);
    sets[String(batch)] = { pixels: `b${batch}.pixels.f32`, tokens: `b${batch}.tokens.i32`, count: THROUGHPUT_BATCHES, lengths };
    tokenStats[batch] = {
      meanTokens: round2(all.reduce((a, b) => a + b, 0) / all.length),
      minTokens: Math.min(...all),
      maxTokens: Math.max(...all),
      meanPackedLength: round2(lengths.reduce((a, b) => a + b, 0) / lengths.length),
    };
  }
  const meta = { model, weights: "init.safetensors", adamw: ADAMW_META, grad_clip: TRAIN_DEFAULTS.gradClipNorm, sets };
  fs.writeFileSync(path.join(dir, "meta.json"), JSON.stringify(meta, null, 2));
  return { tokenStats };
}

/** The float32 lookup table Batcher uses: ((v / 255) - mean[ch]) / std[ch], each step rounded. */
function normalisationTable(): Float32Array {
  const table = new Float32Array(3 * 256);
  for (let ch = 0; ch < 3; ch++) {
    const mean = Math.fround(CLIP_MEAN[ch]);
    const std = Math.fround(CLIP_STD[ch]);
    for (let v = 0; v < 256; v++) table[ch * 256 + v] = Math.fround(Math.fround(Math.fround(v / 255) - mean) / std);
  }
  return table;
}

/**
 * The whole default run for the peer: grey images, the batch order and captions (as token rows)
 * of every step from the Batcher trainClip uses, the learning rate of every step, the evaluation
 * prompts. Pixels are rebuilt in the peer from the grey levels through the same table (no
 * augmentation in the default recipe, so that is exactly what the trainer feeds).
 */
async function writeAccuracyData(dir: string, opts: TrainBenchOptions): Promise<{ steps: number; evalSteps: number[]; tokenStats: TokenStats }> {
  const model = await writeInitialWeights(dir, opts.seed);
  const ctx = model.context_length as number;
  const size = model.image_size as number;
  const train = loadFashionMnist("train");
  const test = loadFashionMnist("test");
  const captions = CaptionSet.load();
  const batch = TRAIN_DEFAULTS.batchSize;
  const batcher = new Batcher(train, { batchSize: batch, seed: opts.seed, imageSize: size, captions });
  const stepsPerEpoch = batcher.stepsPerEpoch;
  const steps = TRAIN_DEFAULTS.epochs * stepsPerEpoch;
  const schedule = { baseLr: TRAIN_DEFAULTS.lr, warmupSteps: Math.min(TRAIN_DEFAULTS.warmupSteps, steps), totalSteps: steps };
  const indices = new Int32Array(steps * batch);
  const tokens = new Int32Array(steps * batch * ctx);
  const lengths: number[] = [];
  const lrs: number[] = [];
  const all: number[] = [];
  for (let s = 0; s < steps; s++) {
    const b = batcher.batchAt(Math.floor(s / stepsPerEpoch), s % stepsPerEpoch);
    indices.set(b.indices, s * batch);
    const t = tokenRows(b.captions, ctx);
    t.rows.forEach((r, j) => tokens.set(r, (s * batch + j) * ctx));
    lengths.push(t.length);
    all.push(...t.tokens);
    lrs.push(cosineLr(s, schedule));
  }
  const classes = captions.spec.classes.map((c) => c.canonical);
  const templates = captions.spec.evalTemplates;
  const prompts = new Int32Array(classes.length * templates.length * ctx);
  tokenizeToIds(classes.flatMap((c) => templates.map((t) => fillPrompt(t, c))), { contextLength: ctx, truncate: true }).forEach((r, i) =>
    prompts.set(r, i * ctx),
  );
  const evalSteps = evaluationSteps(steps, stepsPerEpoch, opts.evalEvery);
  writeRaw(path.join(dir, "train.u8"), train.images);
  writeRaw(path.join(dir, "test.u8"), test.images);
  writeRaw(path.join(dir, "test_labels.u8"), test.labels);
  writeRaw(path.join(dir, "table.f32"), normalisationTable());
  writeRaw(path.join(dir, "indices.i32"), indices);
  writeRaw(path.join(dir, "tokens.i32"), tokens);
  writeRaw(path.join(dir, "prompts.i32"), prompts);
  const meta = {
    model,
    weights: "init.safetensors",
    adamw: ADAMW_META,
    grad_clip: TRAIN_DEFAULTS.gradClipNorm,
    // The stored grey images are the dataset's (28x28); the peer centres them on the model's
    // image_size canvas as the Batcher does.
    height: train.height,
    train_images: "train.u8",
    train_count: train.count,
    test_images: "test.u8",
    test_labels: "test_labels.u8",
    test_count: test.count,
    table: "table.f32",
    steps,
    batch,
    indices: "indices.i32",
    tokens: "tokens.i32",
    lengths,
    lrs,
    prompts: "prompts.i32",
    classes: classes.length,
    templates: templates.length,
    eval_steps: evalSteps,
    eval_limit: TRAIN_DEFAULTS.evalLimit,
    final_limit: TRAIN_DEFAULTS.finalEvalLimit,
  };
  fs.writeFileSync(path.join(dir, "meta.json"), JSON.stringify(meta));
  const tokenStats = {
    meanTokens: round2(all.reduce((a, b) => a + b, 0) / all.length),
    minTokens: Math.min(...all),
    maxTokens: Math.max(...all),
    meanPackedLength: round2(lengths.reduce((a, b) => a + b, 0) / lengths.length),
  };
  return { steps, evalSteps, tokenStats };
}

/** Every `every` steps, the epoch ends and the last step. */
function evaluationSteps(total: number, perEpoch: number, every: number): number[] {
  const s = new Set<number>();
  for (let i = every; i <= total; i += every) s.add(i);
  for (let i = perEpoch; i <= total; i += perEpoch) s.add(i);
  s.add(total);
  return [...s].sort((a, b) => a - b);
}

// ---------------------------------------------------------------------------------------------
// train: throughput
// ---------------------------------------------------------------------------------------------

interface SideTiming {
  steps: number;
  seconds: number[];
  medianStepSeconds: number;
  pairsPerSecMedian: number;
  /** Pairs over the total time of the timed steps. */
  pairsPerSecMean: number;
  othersCpus?: number;
  firstLoss?: number;
  lastLoss?: number;
}

interface ThroughputRow {
  config: string;
  backend: string;
  threads: number;
  batch: number;
  tfjs: SideTiming;
  torch?: SideTiming;
  /** tfjs / torch pairs/s (median step time). */
  ratio?: number;
  /** The tfjs figure is a bound: a step did not finish within the budget (pairs/s is at most this). */
  bound?: boolean;
  note?: string;
}

function timing(batch: number, seconds: number[], othersCpus: number | undefined, losses: number[]): SideTiming {
  const total = seconds.reduce((a, b) => a + b, 0);
  const med = median(seconds);
  return {
    steps: seconds.length,
    seconds: seconds.map((s) => Math.round(s * 1e4) / 1e4),
    medianStepSeconds: round2(med * 1000) / 1000,
    pairsPerSecMedian: batch / med,
    pairsPerSecMean: (batch * seconds.length) / total,
    othersCpus: othersCpus === undefined ? undefined : round2(othersCpus),
    firstLoss: losses[0],
    lastLoss: losses[losses.length - 1],
  };
}

/** Warm-up, then `rounds` alternating chunks: tfjs, torch, tfjs, torch... */
async function measurePair(
  batch: number,
  dir: string,
  tfjs: Session,
  torch: Session | undefined,
  opts: TrainBenchOptions,
  log: (m: string) => void,
): Promise<{ tfjs: SideTiming; torch?: SideTiming }> {
  await tfjs.request({ cmd: "load", dir, batch });
  if (torch) await torch.request({ cmd: "load", dir, batch });
  const lr = TRAIN_DEFAULTS.lr;
  await tfjs.request({ cmd: "steps", n: opts.warmup, lr });
  if (torch) await torch.request({ cmd: "steps", n: opts.warmup, lr });
  const quiet = await waitForQuiet(opts.quietWaitSeconds);
  if (quiet.othersCpus !== undefined && quiet.othersCpus > 0.3) log(`note: other processes use ${quiet.othersCpus} CPUs (waited ${quiet.waitedSeconds}s)`);
  const mT = new ContentionMeter();
  const mP = new ContentionMeter();
  const tSec: number[] = [];
  const pSec: number[] = [];
  const tLoss: number[] = [];
  const pLoss: number[] = [];
  const chunk = Math.max(1, Math.round(opts.steps / opts.rounds));
  for (let r = 0; r < opts.rounds; r++) {
    mT.start();
    const a = await tfjs.request({ cmd: "steps", n: chunk, lr });
    mT.stop(a.cpu_seconds);
    tSec.push(...a.seconds);
    tLoss.push(...a.losses);
    if (torch) {
      mP.start();
      const b = await torch.request({ cmd: "steps", n: chunk, lr });
      mP.stop(b.cpu_seconds);
      pSec.push(...b.seconds);
      pLoss.push(...b.losses);
    }
  }
  return { tfjs: timing(batch, tSec, mT.othersCpus(), tLoss), torch: torch ? timing(batch, pSec, mP.othersCpus(), pLoss) : undefined };
}

export async function runTrainBench(opts: TrainBenchOptions, ctx: BenchContext): Promise<unknown> {
  const started = performance.now();
  const log = (m: string) => console.log(m);
  const probe = opts.torch ? probeTorch() : { ok: false as const, reason: "--no-torch" };
  if (!probe.ok && opts.torch) log(`PyTorch peer unavailable: ${probe.reason}; ${TORCH_INSTALL_HINT}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cliplab-bench-train-"));
  const rows: ThroughputRow[] = [];
  const peaks: Record<string, number> = {};
  const profiles: any[] = [];
  let peerInfo: any;
  try {
    const { tokenStats } = await writeThroughputData(dir, opts);
    log(`data: ${opts.batches.map((b) => `batch ${b}: ${tokenStats[b].meanTokens} tokens per caption (${tokenStats[b].minTokens}-${tokenStats[b].maxTokens}), rows cut to ${tokenStats[b].meanPackedLength}`).join("; ")}`);
    // Every thread count with the native kernels; the XNNPACK-only baseline at the first count.
    const runs = opts.threads.flatMap((threads, i) => (i === 0 ? [[threads, "native"], [threads, "xnnpack"]] : [[threads, "native"]]) as [number, WasmKernels][]);
    for (const [threads, kernels] of runs) {
      const tfjs = await startWorker("wasm", threads, opts.seed, kernels);
      const info = tfjs.info.backend;
      const config = `WASM${kernels === "xnnpack" ? " (XNNPACK only)" : info.blas ? " + native" : ""} ${threads}t`;
      const note = info.threads !== threads ? `WASM started with ${info.threads} threads, not ${threads}` : undefined;
      if (note) log(`note: ${note}`);
      if (kernels === "native") log(`${config}: ${info.reason}`);
      let torch: Session | undefined;
      try {
        if (probe.ok) {
          try {
            torch = await startPeer(threads, opts);
            peerInfo ??= torch.info;
          } catch (err) {
            log(`PyTorch peer failed: ${(err as Error).message}; tfjs only`);
          }
        }
        for (const batch of opts.batches) {
          const r = await measurePair(batch, dir, tfjs, torch, opts, log);
          const row: ThroughputRow = {
            config,
            backend: "wasm",
            threads,
            batch,
            tfjs: r.tfjs,
            torch: r.torch,
            ratio: r.torch ? r.tfjs.pairsPerSecMedian / r.torch.pairsPerSecMedian : undefined,
            note,
          };
          rows.push(row);
          log(
            `${config} batch ${batch}: tfjs ${fmt(r.tfjs.pairsPerSecMedian, 0)} pairs/s, torch ${fmt(r.torch?.pairsPerSecMedian, 0)} pairs/s, ` +
              `ratio ${fmt(row.ratio, 3)}x; others' CPUs ${fmt(r.tfjs.othersCpus)}/${fmt(r.torch?.othersCpus)}`,
          );
        }
        if (opts.profile && threads === 1 && kernels === "native") {
          for (const batch of opts.batches) {
            await tfjs.request({ cmd: "load", dir, batch });
            await tfjs.request({ cmd: "steps", n: 2, lr: TRAIN_DEFAULTS.lr });
            profiles.push(await tfjs.request({ cmd: "profile", steps: 3 }));
          }
        }
      } finally {
        const t = await tfjs.close();
        if (t) peaks[`tfjs ${config}`] = round2(t.peak_rss_mb);
        const p = await torch?.close();
        if (p) peaks[`torch ${threads}t`] = Math.max(peaks[`torch ${threads}t`] ?? 0, round2(p.peak_rss_mb));
      }
    }
    if (opts.cpuSteps > 0) {
      // The pure-JS backend is two orders of magnitude slower: steps are timed one at a time
      // within a budget, and a step that does not finish in it is reported as a bound.
      const batch = TRAIN_DEFAULTS.batchSize;
      const torch1 = rows.find((r) => r.threads === 1 && r.batch === batch && r.torch)?.torch;
      const tfjs = await startWorker("cpu", 1, opts.seed);
      const seconds: number[] = [];
      const losses: number[] = [];
      const m = new ContentionMeter();
      const t0 = performance.now();
      let note = `timed from the first step (no warm-up: the cpu backend compiles nothing); budget ${opts.cpuBudgetSeconds} s; ratio against PyTorch 1 thread from the WASM 1t round`;
      try {
        await tfjs.request({ cmd: "load", dir, batch });
        while (seconds.length < opts.cpuSteps) {
          const left = opts.cpuBudgetSeconds - (performance.now() - t0) / 1000;
          if (left <= 0) break;
          m.start();
          const a = await tfjs.requestWithin<any>({ cmd: "steps", n: 1, lr: TRAIN_DEFAULTS.lr }, left);
          m.stop(a?.cpu_seconds ?? (performance.now() - t0) / 1000);
          if (!a) {
            note = `a step did not finish within the ${opts.cpuBudgetSeconds} s budget (stopped after ${fmt((performance.now() - t0) / 1000, 0)} s); ` + note;
            if (!seconds.length) seconds.push((performance.now() - t0) / 1000); // a lower bound on one step
            break;
          }
          seconds.push(...a.seconds);
          losses.push(...a.losses);
        }
        const t = timing(batch, seconds, m.othersCpus(), losses);
        const bound = note.startsWith("a step did not finish");
        const row: ThroughputRow = { config: "cpu", backend: "cpu", threads: 1, batch, tfjs: t, torch: torch1, ratio: torch1 ? t.pairsPerSecMedian / torch1.pairsPerSecMedian : undefined, bound, note };
        rows.push(row);
        log(`cpu batch ${batch}: tfjs ${fmt(t.pairsPerSecMedian, 2)} pairs/s (${fmt(t.medianStepSeconds, 1)} s/step), ratio vs torch 1t ${fmt(row.ratio, 4)}x; ${note}`);
      } finally {
        const t = await tfjs.close();
        if (t) peaks["tfjs cpu"] = round2(t.peak_rss_mb);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }

  console.log();
  console.log(
    formatTable(
      ["tfjs", "batch", "tfjs pairs/s", "torch pairs/s", "tfjs/torch", "tfjs s/step", "torch s/step", "others' CPUs tfjs/torch"],
      rows.map((r) => [
        r.config,
        String(r.batch),
        (r.bound ? "< " : "") + fmt(r.tfjs.pairsPerSecMedian, r.backend === "cpu" ? 2 : 0),
        fmt(r.torch?.pairsPerSecMedian, 0),
        r.ratio === undefined ? "—" : `${r.bound ? "< " : ""}${fmt(r.ratio, r.backend === "cpu" ? 4 : 3)}x`,
        (r.bound ? "> " : "") + fmt(r.tfjs.medianStepSeconds, 3),
        fmt(r.torch?.medianStepSeconds, 3),
        `${fmt(r.tfjs.othersCpus)}/${fmt(r.torch?.othersCpus)}`,
      ]),
    ),
  );
  for (const profile of profiles) {
    profile.groups = summariseProfile(profile);
    console.log(`\ntf.profile, WASM 1 thread, batch ${profile.batch}, per step over ${profile.steps} steps (kernel time ${fmt(profile.kernel_ms_total, 0)} ms, step wall ${fmt(profile.wall_seconds * 1000, 0)} ms under the profiler):`);
    console.log(formatTable(["kernels", "ms", "share"], profile.groups.map((g: any) => [g.group, fmt(g.ms, 1), `${fmt(g.share * 100, 1)}%`])));
    console.log(`(tf.customGrad scopes of the forward 2-D matmuls, ${fmt(profile.custom_grad_wrapper_ms, 1)} ms, overlap the 2-D matmul row and are left out)`);
  }
  const seconds = (performance.now() - started) / 1000;
  const file = writeResult("train", {
    suite: "train",
    date: new Date().toISOString(),
    machine: ctx.machine,
    model: TRAIN_DEFAULTS.model,
    recipe: "symmetric InfoNCE, AdamW lr 2e-3 (constant here) betas 0.9/0.98 eps 1e-6 wd 0.1 (matrices, not embeddings), grad-norm clip 1.0, logit_scale clamp",
    options: opts,
    torch: peerInfo ?? (probe.ok ? undefined : { unavailable: probe.reason }),
    rows,
    peakRssMb: { ...peaks, driver: round2(peakRssMb()) },
    profiles,
    seconds: round2(seconds),
  });
  console.log(`\ntrain suite: ${seconds.toFixed(0)} s; results in ${path.relative(process.cwd(), file)}`);
  return rows;
}

/** Kernel time grouped: attention matmuls, 2-D matmuls, convolutions, transposes, elementwise, reductions, the rest. */
function summariseProfile(p: { kernels: { name: string; ms: number; calls: number }[]; kernel_ms_total: number }): { group: string; ms: number; share: number; kernels: string[] }[] {
  const groupOf = (name: string): string => {
    if (name.startsWith("BatchMatMul (batched")) return "attention matmuls (rank-4 BatchMatMul, forward + backward)";
    if (name.startsWith("BatchMatMul")) return "2-D matmuls (linear layers, patch embedding, logits; fwd + bwd)";
    if (/^(Conv2D|Conv2DBackpropInput|Conv2DBackpropFilter|AvgPool|AvgPoolGrad|FusedConv2D)$/.test(name)) return "convolutions and pooling (forward, input and filter gradients)";
    if (name === "Transpose") return "Transpose (heads, matmul- and conv-gradient operands)";
    if (/^(Sum|Mean|Max|Min|Prod|Softmax|LogSoftmax|All|Any|ArgMax)$/.test(name)) return "reductions (Sum, Max, ...)";
    if (/^(Gather|GatherV2|GatherNd|ScatterNd|UnsortedSegmentSum|Slice|Concat|Pad|Tile|StridedSlice|SplitV|Reshape|Cast|Identity|Fill|OneHot|ZerosLike|OnesLike|BroadcastTo|PadV2)$/.test(name))
      return "gather / slice / concat / copies";
    if (/^(Add|AddN|Sub|Mul|Multiply|RealDiv|Div|Neg|Exp|Log|Sqrt|Rsqrt|Square|SquaredDifference|Erf|Sigmoid|Maximum|Minimum|ClipByValue|Pow|Step|Less|Greater|LessEqual|GreaterEqual|Equal|Select|IsFinite|Abs|Reciprocal|Tanh|Relu|Prelu|LogicalAnd|NotEqual)$/.test(name))
      return "elementwise (Add, Mul, Erf, Exp, Sqrt, ...)";
    return "other";
  };
  const groups = new Map<string, { ms: number; kernels: Set<string> }>();
  for (const k of p.kernels) {
    const g = groupOf(k.name);
    const e = groups.get(g) ?? { ms: 0, kernels: new Set<string>() };
    e.ms += k.ms;
    e.kernels.add(k.name);
    groups.set(g, e);
  }
  return [...groups]
    .map(([group, v]) => ({ group, ms: v.ms, share: v.ms / p.kernel_ms_total, kernels: [...v.kernels] }))
    .sort((a, b) => b.ms - a.ms);
}

// ---------------------------------------------------------------------------------------------
// train-accuracy: the default recipe end to end
// ---------------------------------------------------------------------------------------------

interface AccuracySide {
  steps: number;
  train_seconds: number;
  wall_seconds: number;
  cpu_seconds: number;
  pairs_per_s: number;
  final_top1: number;
  final_images: number;
  final_loss: number;
  evals: { step: number; train_seconds: number; top1: number; images: number }[];
  peak_rss_mb: number;
  othersCpus?: number;
  timeTo: Record<string, { step: number; trainSeconds: number } | null>;
}

function timeTo(evals: AccuracySide["evals"]): AccuracySide["timeTo"] {
  const out: AccuracySide["timeTo"] = {};
  for (const target of ACCURACY_TARGETS) {
    const hit = evals.find((e) => e.top1 >= target);
    out[`${Math.round(target * 100)}%`] = hit ? { step: hit.step, trainSeconds: round2(hit.train_seconds) } : null;
  }
  return out;
}

export async function runTrainAccuracyBench(opts: TrainBenchOptions, ctx: BenchContext): Promise<unknown> {
  const started = performance.now();
  const log = (m: string) => console.log(m);
  const probe = opts.torch ? probeTorch() : { ok: false as const, reason: "--no-torch" };
  if (!probe.ok && opts.torch) log(`PyTorch peer unavailable: ${probe.reason}; ${TORCH_INSTALL_HINT}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cliplab-bench-acc-"));
  const threads = opts.accuracyThreads;
  const sides: { tfjs?: AccuracySide; torch?: AccuracySide } = {};
  let backendInfo: any;
  let peerInfo: any;
  let data: Awaited<ReturnType<typeof writeAccuracyData>>;
  try {
    data = await writeAccuracyData(dir, opts);
    log(
      `default recipe: ${data.steps} steps of batch ${TRAIN_DEFAULTS.batchSize}; zero-shot top-1 on ${TRAIN_DEFAULTS.evalLimit} test images after steps ` +
        `${data.evalSteps.join(", ")}, on ${TRAIN_DEFAULTS.finalEvalLimit} at the end; ${data.tokenStats.meanTokens} tokens per caption, rows cut to ${data.tokenStats.meanPackedLength}`,
    );
    // PyTorch first: it is the shorter run, and a failure there costs little.
    if (probe.ok) {
      await waitForQuiet(opts.quietWaitSeconds);
      const torch = await startPeer(threads, opts);
      peerInfo = torch.info;
      try {
        const m = new ContentionMeter();
        m.start();
        const r = await torch.request({ cmd: "accuracy", dir });
        m.stop(r.cpu_seconds);
        sides.torch = { ...r, othersCpus: round2(m.othersCpus() ?? NaN), timeTo: timeTo(r.evals) };
        log(`PyTorch (${threads} threads): final top-1 ${fmt(r.final_top1 * 100, 2)}% in ${fmt(r.train_seconds, 0)} s of training (${fmt(r.wall_seconds, 0)} s wall)`);
      } finally {
        await torch.close();
      }
    }
    await waitForQuiet(opts.quietWaitSeconds);
    // tfjs: trainClip with the defaults, in its own process (its RSS is the training run's alone).
    const tfjs = await startWorker("wasm", threads, opts.seed);
    backendInfo = tfjs.info.backend;
    try {
      const m = new ContentionMeter();
      m.start();
      const r = await tfjs.request({ cmd: "accuracy", evalSteps: data.evalSteps, evalLimit: TRAIN_DEFAULTS.evalLimit, outDir: path.join(dir, "run") });
      m.stop(r.cpu_seconds);
      sides.tfjs = { ...r, othersCpus: round2(m.othersCpus() ?? NaN), timeTo: timeTo(r.evals) };
      log(`tfjs (WASM ${backendInfo.threads}t): final top-1 ${fmt(r.final_top1 * 100, 2)}% in ${fmt(r.train_seconds, 0)} s of training (${fmt(r.wall_seconds, 0)} s wall)`);
    } finally {
      await tfjs.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const names = Object.keys(sides.tfjs?.timeTo ?? sides.torch?.timeTo ?? {});
  const cell = (s: AccuracySide | undefined, k: string) => {
    if (!s) return "—";
    const t = s.timeTo[k];
    return t ? `${fmt(t.trainSeconds, 0)} s (step ${t.step})` : "not reached";
  };
  console.log();
  console.log(
    formatTable(
      ["side", "pairs/s", "train s", "wall s", ...names.map((n) => `time to ${n}`), "final top-1 (10k)", "peak RSS MiB", "others' CPUs"],
      (
        [
          [`tfjs WASM ${backendInfo?.threads ?? threads}t`, sides.tfjs],
          [`PyTorch ${threads}t`, sides.torch],
        ] as const
      ).map(([label, s]) => [
        label,
        fmt(s?.pairs_per_s, 0),
        fmt(s?.train_seconds, 0),
        fmt(s?.wall_seconds, 0),
        ...names.map((n) => cell(s, n)),
        s ? `${fmt(s.final_top1 * 100, 2)}%` : "—",
        fmt(s?.peak_rss_mb, 0),
        fmt(s?.othersCpus),
      ]),
    ),
  );
  const curve = (s?: AccuracySide) => (s ? s.evals.map((e) => `${e.step}:${fmt(e.top1 * 100, 1)}`).join(" ") : "—");
  console.log(`curve (step:top-1 % on ${TRAIN_DEFAULTS.evalLimit}): tfjs ${curve(sides.tfjs)}`);
  console.log(`                                 torch ${curve(sides.torch)}`);
  const seconds = (performance.now() - started) / 1000;
  const file = writeResult("train-accuracy", {
    suite: "train-accuracy",
    date: new Date().toISOString(),
    machine: ctx.machine,
    model: TRAIN_DEFAULTS.model,
    recipe: { ...TRAIN_DEFAULTS, steps: data!.steps },
    threads,
    tfjsBackend: backendInfo,
    torch: peerInfo ?? (probe.ok ? undefined : { unavailable: probe.reason }),
    tokenStats: data!.tokenStats,
    sides,
    seconds: round2(seconds),
  });
  console.log(`\ntrain-accuracy suite: ${seconds.toFixed(0)} s; results in ${path.relative(process.cwd(), file)}`);
  return sides;
}

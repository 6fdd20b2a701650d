/**
 * Encoder throughput: a ViT-B-32 CLIP with random weights, image and text encoders, in
 * TensorFlow.js (this repo) and in PyTorch (bench/torch_peer.py), measured in the same run.
 *
 * The PyTorch peer runs as a second process that answers one call at a time, and the two sides
 * take turns: a tfjs call, a torch call, a tfjs call... (never at the same time). Other people's
 * jobs on a shared machine then slow both sides alike, and the ratio stays meaningful even when
 * the absolute numbers do not; how many CPUs other processes used during the timed calls is
 * measured (/proc/stat) and reported next to the figures.
 *
 * Order: both models are built (concurrently), then per encoder: the batch is checked against
 * the WASM heap, one warm-up call per side, then alternating timed calls. Last, the feature
 * parity check: our weights go to a temporary safetensors that the peer loads, and both sides'
 * features for one fixed input are compared.
 *
 * A third column, the onnx engine (bench/onnx_side.ts): the same weights exported to ONNX in
 * memory and run by onnxruntime-node in this process with the peer's thread count; its calls come
 * right after each tfjs call, and its features are compared with tfjs' on the same fixed input.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { Clip } from "../src/model/clip";
import { saveCheckpoint } from "../src/io/checkpoint";
import { Random } from "../src/util/random";
import { OnnxParity, OnnxSide } from "./onnx_side";
import {
  BenchContext,
  ContentionMeter,
  TORCH_INSTALL_HINT,
  TORCH_PYTHON,
  Timing,
  TorchPeerSession,
  fmt,
  formatTable,
  peakRssMb,
  probeTorch,
  round2,
  summarise,
  waitForQuiet,
  writeResult,
} from "./common";

export interface EncoderBenchOptions {
  model: string;
  imageBatch: number;
  textBatch: number;
  imageIters: number;
  textIters: number;
  warmup: number;
  /** Timed rounds per encoder stop early once they (both sides) have taken this many seconds. */
  budgetSeconds: number;
  /** Before each encoder's timed rounds, wait up to this long for other processes to go quiet. */
  quietWaitSeconds: number;
  /** torch.set_num_threads (tfjs threads are the backend's, see BenchContext). */
  threads: number;
  /**
   * OMP_WAIT_POLICY for the PyTorch peer, unless the environment sets it. "passive" by default:
   * with GOMP's default spin-waiting, 2 torch threads collapse when another process holds a core
   * (see RESULTS.md); "inherit" leaves OpenMP's default.
   */
  torchOmpWait: "passive" | "active" | "inherit";
  seed: number;
  torch: boolean;
  /** Also measure the onnx engine (onnxruntime-node on the exported weights). */
  onnx: boolean;
  parity: boolean;
}

export const DEFAULT_ENCODER_OPTIONS: EncoderBenchOptions = {
  model: "ViT-B-32",
  imageBatch: 8,
  textBatch: 16,
  imageIters: 5,
  textIters: 5,
  warmup: 1,
  budgetSeconds: 40,
  quietWaitSeconds: 10,
  threads: 2,
  torchOmpWait: "passive",
  seed: 0,
  torch: true,
  onnx: true,
  parity: true,
};

const PARITY_BATCH = 2;
/** Headroom under WebAssembly's 4 GiB (wasm32) heap: the allocator fragments, and growth fails before the cap. */
const WASM_HEAP_BUDGET_BYTES = 3.25 * 2 ** 30;

type Kind = "image" | "text";

interface PeerInfo {
  torch: string;
  python: string;
  threads: number;
  inference_mode: boolean;
  blas: string | null;
  build_seconds: number;
  peak_rss_mb_after_build: number;
}

interface ParityStats {
  max_abs_diff: number;
  max_rel_diff: number;
  min_cosine: number;
}

interface EncoderUnderTest {
  input: (batch: number) => tf.Tensor;
  encode: (x: tf.Tensor) => tf.Tensor;
}

interface EncoderMeasurement {
  tfjs: Timing;
  torch?: Timing;
  onnx?: Timing;
  /** Average CPUs kept busy by other processes during the timed tfjs, torch and onnx calls. */
  othersCpus: { tfjs?: number; torch?: number; onnx?: number };
  quietWait: { waitedSeconds: number; othersCpus?: number };
  /** tfjs' predicted peak tensor memory per call (WASM only). */
  peakTensorMb?: number;
  note?: string;
  leakedTensors: number;
}

/** Tokenised-looking ids: SOT, random ids, EOT (the largest id) at a random position, zeros after. */
export function randomTokens(batch: number, context: number, vocab: number, rng: Random): Int32Array {
  const sot = vocab - 2;
  const eot = vocab - 1;
  const ids = new Int32Array(batch * context);
  for (let b = 0; b < batch; b++) {
    const eotAt = 8 + rng.int(context - 8);
    ids[b * context] = sot;
    for (let t = 1; t < eotAt; t++) ids[b * context + t] = 1 + rng.int(sot - 1);
    ids[b * context + eotAt] = eot;
  }
  return ids;
}

function randomPixels(batch: number, size: number, rng: Random): tf.Tensor4D {
  return tf.tensor4d(rng.fillNormal(new Float32Array(batch * size * size * 3)), [batch, size, size, 3]);
}

function writeRaw(file: string, data: Float32Array | Int32Array): void {
  fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}

/** tfjs features for a fixed input, our weights and the inputs, for torch_peer.py to compare. */
async function writeParityInputs(clip: Clip, dir: string, seed: number): Promise<void> {
  const rng = new Random(seed + 1000);
  const size = clip.config.vision_cfg.image_size;
  const ctx = clip.config.text_cfg.context_length;
  const pixels = randomPixels(PARITY_BATCH, size, rng);
  const tokens = tf.tensor2d(randomTokens(PARITY_BATCH, ctx, clip.config.text_cfg.vocab_size, rng), [PARITY_BATCH, ctx], "int32");
  const imageFeatures = clip.encodeImage(pixels);
  const textFeatures = clip.encodeText(tokens);
  const nchw = tf.transpose(pixels, [0, 3, 1, 2]);
  writeRaw(path.join(dir, "pixels_nchw.f32"), nchw.dataSync() as Float32Array);
  writeRaw(path.join(dir, "tokens.i32"), tokens.dataSync() as Int32Array);
  writeRaw(path.join(dir, "image_features.f32"), imageFeatures.dataSync() as Float32Array);
  writeRaw(path.join(dir, "text_features.f32"), textFeatures.dataSync() as Float32Array);
  const meta = {
    checkpoint: "weights.safetensors",
    pixels: { file: "pixels_nchw.f32", shape: [PARITY_BATCH, 3, size, size] },
    tokens: { file: "tokens.i32", shape: [PARITY_BATCH, ctx] },
    image_features: { file: "image_features.f32", shape: imageFeatures.shape },
    text_features: { file: "text_features.f32", shape: textFeatures.shape },
  };
  tf.dispose([pixels, tokens, imageFeatures, textFeatures, nchw]);
  await saveCheckpoint(clip, path.join(dir, meta.checkpoint));
  fs.writeFileSync(path.join(dir, "meta.json"), JSON.stringify(meta, null, 2));
}

function wasmHeapBytes(): number {
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8;
  return heap ? heap.buffer.byteLength : NaN;
}

/** Peak bytes held by tensors during one call (tfjs' own accounting); inputs made and freed here. */
async function peakBytesAt(batch: number, encoder: EncoderUnderTest): Promise<number> {
  const x = encoder.input(batch);
  try {
    const info = await tf.profile(() => {
      const out = encoder.encode(x);
      out.dataSync();
      return out;
    });
    tf.dispose(info.result as tf.Tensor);
    return info.peakBytes;
  } finally {
    x.dispose();
  }
}

/**
 * On WASM, predicts a call's peak tensor memory from batches of 1 and 2 (it grows linearly with
 * the batch: every intermediate of every layer stays alive until the encoder's tf.tidy scope
 * ends) and halves the batch while it would not fit the 4 GiB heap. Past that the WASM module
 * aborts, or with threads hangs. The probe calls also warm tfjs up.
 */
async function fitBatch(kind: Kind, requested: number, encoder: EncoderUnderTest): Promise<{ batch: number; peakTensorMb?: number; note?: string }> {
  if (tf.getBackend() !== "wasm") return { batch: requested };
  const p1 = await peakBytesAt(1, encoder);
  const perItem = requested > 1 ? Math.max(0, (await peakBytesAt(2, encoder)) - p1) : 0;
  const predict = (b: number) => p1 + (b - 1) * perItem;
  let batch = requested;
  while (batch > 1 && predict(batch) > WASM_HEAP_BUDGET_BYTES) batch = Math.max(1, Math.floor(batch / 2));
  const note =
    batch === requested
      ? undefined
      : `${kind} batch ${requested} would hold ~${(predict(requested) / 2 ** 30).toFixed(1)} GiB of tensors at once, over the ` +
        `${(WASM_HEAP_BUDGET_BYTES / 2 ** 30).toFixed(2)} GiB WASM heap budget; batch ${batch} measured on both sides`;
  return { batch, peakTensorMb: round2(predict(batch) / 2 ** 20), note };
}

/** A peer that failed once is not asked again; the reason is kept. */
class PeerHandle {
  failure: string | undefined;
  constructor(readonly session: TorchPeerSession<PeerInfo> | undefined, reason?: string) {
    this.failure = session ? undefined : reason;
  }

  get alive(): boolean {
    return this.session !== undefined && this.failure === undefined;
  }

  async call(kind: Kind, batch: number): Promise<{ seconds: number; cpu_seconds: number } | undefined> {
    if (!this.alive) return undefined;
    try {
      return await this.session!.request({ cmd: "time", kind, batch });
    } catch (err) {
      this.failure = (err as Error).message;
      console.log(`PyTorch peer failed: ${this.failure}; continuing with tfjs only`);
      return undefined;
    }
  }
}

async function measureEncoder(
  kind: Kind,
  requested: number,
  iters: number,
  opts: EncoderBenchOptions,
  encoder: EncoderUnderTest,
  peer: PeerHandle,
  log: (msg: string) => void,
  onnx?: { side: OnnxSide; prepare: (batch: number) => void },
): Promise<EncoderMeasurement> {
  const { batch, peakTensorMb, note } = await fitBatch(kind, requested, encoder);
  if (note) log(`note: ${note}`);
  onnx?.prepare(batch);
  const x = encoder.input(batch);
  // dataSync() makes sure the work is done before the clock stops (WASM is synchronous anyway).
  const tfjsCall = () => {
    const t0 = performance.now();
    const out = encoder.encode(x);
    out.dataSync();
    out.dispose();
    return (performance.now() - t0) / 1000;
  };
  try {
    log(
      `${kind} encoder, batch ${batch}: ${opts.warmup} warm-up + up to ${iters} timed calls per side, alternating` +
        (peakTensorMb ? ` (tfjs holds ~${peakTensorMb.toFixed(0)} MiB of tensors per call)` : ""),
    );
    for (let i = 0; i < opts.warmup; i++) {
      tfjsCall();
      await onnx?.side.call(kind, batch);
      await peer.call(kind, batch);
    }
    const quietWait = await waitForQuiet(opts.quietWaitSeconds);
    if (quietWait.waitedSeconds > 1.5) {
      log(`  waited ${quietWait.waitedSeconds.toFixed(0)}s for other processes to quiet down (now ${fmt(quietWait.othersCpus)} CPUs)`);
    }
    const tensorsBefore = tf.memory().numTensors;
    const tfjsMeter = new ContentionMeter();
    const torchMeter = new ContentionMeter();
    const onnxMeter = new ContentionMeter();
    const tfjsSeconds: number[] = [];
    const torchSeconds: number[] = [];
    const onnxSeconds: number[] = [];
    const roundsStart = performance.now();
    for (let i = 0; i < iters && (i === 0 || (performance.now() - roundsStart) / 1000 < opts.budgetSeconds); i++) {
      // Alternate who goes first, so neither side always follows the other.
      const torchFirst = i % 2 === 1;
      if (torchFirst) await timeTorch();
      tfjsMeter.start();
      tfjsSeconds.push(tfjsCall());
      tfjsMeter.stop();
      if (onnx?.side.alive) {
        onnxMeter.start();
        const s = await onnx.side.call(kind, batch);
        onnxMeter.stop();
        if (s !== undefined) onnxSeconds.push(s);
      }
      if (!torchFirst) await timeTorch();
    }
    const othersCpus = {
      tfjs: tfjsMeter.othersCpus(),
      torch: torchSeconds.length ? torchMeter.othersCpus() : undefined,
      onnx: onnxSeconds.length ? onnxMeter.othersCpus() : undefined,
    };
    const tfjs = summarise(batch, tfjsSeconds);
    const torch = peer.alive && torchSeconds.length ? summarise(batch, torchSeconds) : undefined;
    const onnxTiming = onnx?.side.alive && onnxSeconds.length ? summarise(batch, onnxSeconds) : undefined;
    log(`  tfjs  ${tfjs.seconds.join(", ")} s per call -> best ${fmt(tfjs.itemsPerSecBest)} ${kind}s/s`);
    if (torch) log(`  torch ${torch.seconds.join(", ")} s per call -> best ${fmt(torch.itemsPerSecBest)} ${kind}s/s`);
    if (onnxTiming) log(`  onnx  ${onnxTiming.seconds.join(", ")} s per call -> best ${fmt(onnxTiming.itemsPerSecBest)} ${kind}s/s`);
    log(
      `  other processes kept ${fmt(othersCpus.tfjs)} CPUs busy during the tfjs calls, ${fmt(othersCpus.torch)} during the torch calls` +
        (onnxTiming ? `, ${fmt(othersCpus.onnx)} during the onnx calls` : ""),
    );
    return { tfjs, torch, onnx: onnxTiming, othersCpus, quietWait, peakTensorMb, note, leakedTensors: tf.memory().numTensors - tensorsBefore };

    async function timeTorch(): Promise<void> {
      torchMeter.start();
      const r = await peer.call(kind, batch);
      torchMeter.stop(r?.cpu_seconds ?? 0);
      if (r) torchSeconds.push(r.seconds);
    }
  } finally {
    x.dispose();
  }
}

export async function runEncoderBench(opts: EncoderBenchOptions, bench: BenchContext): Promise<Record<string, unknown>> {
  const { machine, backend: choice } = bench;
  const started = performance.now();
  const log = (msg: string) => console.log(`[encoders ${((performance.now() - started) / 1000).toFixed(0).padStart(3)}s] ${msg}`);
  if (choice.name !== "wasm") log(`note: measuring the ${choice.name} backend, not wasm`);

  // The peer builds its model while we build ours (model building is not measured).
  let peerStart: Promise<Awaited<ReturnType<typeof TorchPeerSession.start<PeerInfo>>>> | undefined;
  let peerReason: string | undefined;
  let ompWaitPolicy: string | undefined;
  if (!opts.torch) peerReason = "skipped (--no-torch)";
  else {
    const probe = probeTorch();
    if (probe.ok) {
      const env = { ...process.env };
      if (opts.torchOmpWait !== "inherit" && env.OMP_WAIT_POLICY === undefined) env.OMP_WAIT_POLICY = opts.torchOmpWait.toUpperCase();
      ompWaitPolicy = env.OMP_WAIT_POLICY ?? "(OpenMP default)";
      peerStart = TorchPeerSession.start<PeerInfo>("encoders", [`--threads=${opts.threads}`, `--seed=${opts.seed}`], env);
    } else {
      peerReason = probe.reason;
    }
  }

  let t0 = performance.now();
  const clip = Clip.create(opts.model, { seed: opts.seed });
  const createSeconds = (performance.now() - t0) / 1000;
  log(`${opts.model}: ${(clip.numParams() / 1e6).toFixed(1)}M parameters, built in ${createSeconds.toFixed(1)}s`);
  const rssAfterBuild = peakRssMb();

  let onnxSide: OnnxSide | undefined;
  let onnxReason: string | undefined;
  if (!opts.onnx) onnxReason = "skipped (--no-onnx)";
  else {
    const started = await OnnxSide.start(clip, opts.threads);
    if (started.ok) {
      onnxSide = started.side;
      log(`onnx engine ready: exported in memory and loaded by onnxruntime-node in ${started.side.buildSeconds.toFixed(1)}s (${opts.threads} intra-op threads, graph optimisation "all")`);
    } else {
      onnxReason = started.reason;
      console.log(`onnx engine unavailable: ${onnxReason}`);
    }
  }

  const started_ = peerStart ? await peerStart : undefined;
  if (started_ && !started_.ok) peerReason = started_.reason;
  const peer = new PeerHandle(started_?.ok ? started_.session : undefined, peerReason);
  if (peer.session) log(`PyTorch ${peer.session.info.torch} peer ready (${TORCH_PYTHON}, ${peer.session.info.threads} threads, OMP_WAIT_POLICY ${ompWaitPolicy})`);
  else if (opts.torch) console.log(`PyTorch peer unavailable: ${peerReason}; ${TORCH_INSTALL_HINT}`);

  let image: EncoderMeasurement | undefined;
  let text: EncoderMeasurement | undefined;
  let rssAfterImage = NaN;
  let parity: { image: ParityStats; text: ParityStats } | { error: string } | { skipped: string };
  let onnxParity: { image: OnnxParity; text: OnnxParity } | { error: string } | { skipped: string } = { skipped: "no onnx engine" };
  let peerFinal: { peak_rss_mb?: number; peak_rss_mb_with_parity?: number } | undefined;
  try {
    const rng = new Random(opts.seed);
    const size = clip.config.vision_cfg.image_size;
    const ctx = clip.config.text_cfg.context_length;
    const vocab = clip.config.text_cfg.vocab_size;
    const onnxFor = (kind: Kind) =>
      onnxSide ? { side: onnxSide, prepare: (b: number) => onnxSide!.prepare(kind, b, rng, (n) => randomTokens(n, ctx, vocab, rng)) } : undefined;
    image = await measureEncoder("image", opts.imageBatch, opts.imageIters, opts, {
      input: (b) => randomPixels(b, size, rng),
      encode: (x) => clip.encodeImage(x as tf.Tensor4D),
    }, peer, log, onnxFor("image"));
    rssAfterImage = peakRssMb();
    text = await measureEncoder("text", opts.textBatch, opts.textIters, opts, {
      input: (b) => tf.tensor2d(randomTokens(b, ctx, vocab, rng), [b, ctx], "int32"),
      encode: (x) => clip.encodeText(x as tf.Tensor2D),
    }, peer, log, onnxFor("text"));
    if (onnxSide?.alive) onnxParity = await compareOnnx(clip, onnxSide, opts.seed);

    if (!opts.parity) parity = { skipped: "--no-parity" };
    else if (!peer.alive) parity = { skipped: `PyTorch peer unavailable: ${peer.failure}` };
    else {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cliplab-bench-"));
      try {
        t0 = performance.now();
        await writeParityInputs(clip, dir, opts.seed);
        log(`parity: fixed inputs, our features and weights written in ${((performance.now() - t0) / 1000).toFixed(1)}s; PyTorch loads and compares`);
        parity = (await peer.session!.request<{ parity: { image: ParityStats; text: ParityStats } }>({ cmd: "parity", dir })).parity;
      } catch (err) {
        parity = { error: (err as Error).message };
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    onnxSide?.dispose();
    clip.dispose();
    peerFinal = await peer.session?.close();
  }
  const rssAfterText = peakRssMb();

  const torchOk = peer.alive && image.torch !== undefined && text.torch !== undefined;
  const info = peer.session?.info;
  const ratio = (m: EncoderMeasurement) =>
    m.torch ? { best: m.tfjs.itemsPerSecBest / m.torch.itemsPerSecBest, median: m.tfjs.itemsPerSecMedian / m.torch.itemsPerSecMedian } : undefined;
  const onnxRatio = (m: EncoderMeasurement) =>
    m.onnx ? { best: m.tfjs.itemsPerSecBest / m.onnx.itemsPerSecBest, median: m.tfjs.itemsPerSecMedian / m.onnx.itemsPerSecMedian } : undefined;

  const result = {
    suite: "encoders",
    date: new Date().toISOString(),
    model: opts.model,
    weights: `random (Clip.create seed ${opts.seed}); the PyTorch peer uses its own random init for timing, then loads ours for parity`,
    method:
      "tfjs and PyTorch calls alternate (never concurrent); items/s = batch / seconds of one call (encoder forward plus reading the features back); best and median over the timed calls",
    options: opts,
    machine,
    backend: choice,
    tfjs: {
      tfjs: tf.version.tfjs,
      createSeconds: round2(createSeconds),
      image: image.tfjs,
      text: text.tfjs,
      peakRssMb: { afterBuild: round2(rssAfterBuild), afterImage: round2(rssAfterImage), atEnd: round2(rssAfterText) },
      wasmHeapMb: choice.name === "wasm" ? round2(wasmHeapBytes() / 2 ** 20) : undefined,
      peakTensorMb: { image: image.peakTensorMb, text: text.peakTensorMb },
      leakedTensors: image.leakedTensors + text.leakedTensors,
    },
    torch: torchOk
      ? {
          available: true,
          python: TORCH_PYTHON,
          version: info!.torch,
          threads: info!.threads,
          inferenceMode: info!.inference_mode,
          ompWaitPolicy,
          blas: info!.blas,
          buildSeconds: info!.build_seconds,
          image: image.torch,
          text: text.torch,
          peakRssMb: { afterBuild: round2(info!.peak_rss_mb_after_build), beforeParity: round2(peerFinal?.peak_rss_mb ?? NaN) },
        }
      : { available: false, reason: peer.failure ?? peerReason },
    othersCpus: { image: roundAll(image.othersCpus), text: roundAll(text.othersCpus) },
    quietWait: { image: image.quietWait, text: text.quietWait },
    ratioTfjsOverTorch: { image: ratio(image), text: ratio(text) },
    onnx: onnxSide && image.onnx && text.onnx
      ? {
          available: true,
          onnxruntime: require("onnxruntime-node/package.json").version as string,
          threads: opts.threads,
          graphOptimizationLevel: "all",
          buildSeconds: round2(onnxSide.buildSeconds),
          image: image.onnx,
          text: text.onnx,
          parity: onnxParity,
        }
      : { available: false, reason: onnxSide?.failure ?? onnxReason },
    ratioTfjsOverOnnx: { image: onnxRatio(image), text: onnxRatio(text) },
    batchNotes: [image.note, text.note].filter(Boolean),
    parity,
    loadAvgAtEnd: os.loadavg().map(round2),
    runtimeSeconds: round2((performance.now() - started) / 1000),
  };

  const file = writeResult("encoders", result);
  console.log("");
  console.log(`Encoder throughput, ${opts.model}, random weights, float32, inference. items/s = batch / seconds per call;`);
  console.log(
    `best and median of up to ${opts.imageIters} timed calls per side after ${opts.warmup} warm-up, tfjs and PyTorch calls alternating` +
      ` (made: image ${image.tfjs.iters}, text ${text.tfjs.iters}; fewer when the ${opts.budgetSeconds}s budget ran out).`,
  );
  console.log(
    `tfjs ${tf.version.tfjs} ${choice.name} (threads ${choice.threads}, simd ${choice.simd})` +
      (torchOk ? ` vs PyTorch ${info!.torch} CPU (threads ${info!.threads}, OMP_WAIT_POLICY ${ompWaitPolicy})` : "") +
      ` on ${machine.cpuModel}, ${machine.logicalCpus} CPUs.`,
  );
  console.log("");
  console.log(encoderTable(result).text);
  console.log("");
  for (const n of result.batchNotes) console.log(`note: ${n}`);
  console.log(
    `peak RSS: tfjs ${fmt(rssAfterText, 0)} MiB (WASM heap ${fmt(result.tfjs.wasmHeapMb, 0)} MiB)` +
      (torchOk ? `, PyTorch ${fmt(peerFinal?.peak_rss_mb, 0)} MiB (before the parity load)` : ""),
  );
  console.log(parityLine(result.parity));
  console.log(onnxParityLine(result.onnx));
  const busiest = Math.max(...[image, text].flatMap((m) => [m.othersCpus.tfjs ?? 0, m.othersCpus.torch ?? 0]));
  if (busiest > 0.3) {
    console.log(
      `warning: other processes kept up to ${busiest.toFixed(2)} of ${machine.logicalCpus} CPUs busy during the timed calls; ` +
        `absolute figures are depressed` + (torchOk ? ` and the two sides need not suffer alike, so the ratio may differ from a quiet machine's` : ""),
    );
  }
  if (!torchOk) {
    console.log(
      peer.session
        ? `PyTorch peer failed: ${result.torch.reason}`
        : opts.torch
          ? `PyTorch peer unavailable: ${result.torch.reason}; ${TORCH_INSTALL_HINT}`
          : `PyTorch peer skipped (--no-torch)`,
    );
  }
  if (result.tfjs.leakedTensors !== 0) console.log(`warning: ${result.tfjs.leakedTensors} tfjs tensors leaked during the timed calls`);
  console.log(`written ${path.relative(process.cwd(), file)}; encoders took ${result.runtimeSeconds.toFixed(0)}s`);
  return result;
}

function roundAll(o: Record<string, number | undefined>): Record<string, number | undefined> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v === undefined ? undefined : round2(v)]));
}

/** onnx and tfjs features for one fixed input (batch 2 of each kind). */
async function compareOnnx(clip: Clip, side: OnnxSide, seed: number): Promise<{ image: OnnxParity; text: OnnxParity } | { error: string }> {
  try {
    const rng = new Random(seed + 2000);
    const size = clip.config.vision_cfg.image_size;
    const ctx = clip.config.text_cfg.context_length;
    const pixels = rng.fillNormal(new Float32Array(PARITY_BATCH * size * size * 3));
    const ids = randomTokens(PARITY_BATCH, ctx, clip.config.text_cfg.vocab_size, rng);
    const image = tf.tidy(() => clip.encodeImage(tf.tensor4d(pixels, [PARITY_BATCH, size, size, 3])));
    const text = tf.tidy(() => clip.encodeText(tf.tensor2d(ids, [PARITY_BATCH, ctx], "int32")));
    const dim = clip.config.embed_dim;
    const result = {
      image: OnnxSide.compare(await side.engine.embedImages(pixels, PARITY_BATCH), image.dataSync() as Float32Array, dim),
      text: OnnxSide.compare(await side.engine.embedTexts(ids, PARITY_BATCH, ctx), text.dataSync() as Float32Array, dim),
    };
    tf.dispose([image, text]);
    return result;
  } catch (err) {
    return { error: (err as Error).message };
  }
}

function onnxParityLine(onnx: any): string {
  if (!onnx.available) return `onnx engine: unavailable (${onnx.reason})`;
  const p = onnx.parity;
  if (p.skipped || p.error) return `onnx vs tfjs features: ${p.skipped ? `skipped (${p.skipped})` : `failed: ${p.error}`}`;
  const part = (k: string) => `${k} max|Δ|/max|tfjs| ${p[k].max_rel_diff.toExponential(2)} (min cosine ${p[k].min_cosine.toFixed(7)})`;
  return `onnx vs tfjs features (same weights, batch ${PARITY_BATCH}): ${part("image")}; ${part("text")}`;
}

function parityLine(parity: any): string {
  if (!parity || parity.skipped) return `feature parity: skipped (${parity?.skipped ?? "no result"})`;
  if (parity.error) return `feature parity: failed: ${parity.error}`;
  const part = (k: string) =>
    `${k} max|Δ|/max|torch| ${parity[k].max_rel_diff.toExponential(2)} (min cosine ${parity[k].min_cosine.toFixed(7)})`;
  return `feature parity (our weights in PyTorch, batch ${PARITY_BATCH}): ${part("image")}; ${part("text")}`;
}

/** The summary table (RESULTS.md shows it as Markdown). */
export function encoderTable(result: any): { header: string[]; rows: string[][]; text: string } {
  const header = [
    "encoder", "batch", "tfjs items/s best", "median", "torch items/s best", "median", "tfjs/torch best", "median",
    "onnx items/s best", "median", "tfjs/onnx best", "median", "others' CPUs tfjs/torch/onnx",
  ];
  const rows = (["image", "text"] as const).map((k) => {
    const tfjs: Timing = result.tfjs[k];
    const torch: Timing | undefined = result.torch.available ? result.torch[k] : undefined;
    const ratio = result.ratioTfjsOverTorch[k];
    const onnx: Timing | undefined = result.onnx?.available ? result.onnx[k] : undefined;
    const onnxRatio = result.ratioTfjsOverOnnx?.[k];
    return [
      k,
      String(tfjs.batch),
      fmt(tfjs.itemsPerSecBest),
      fmt(tfjs.itemsPerSecMedian),
      fmt(torch?.itemsPerSecBest),
      fmt(torch?.itemsPerSecMedian),
      ratio ? `${fmt(ratio.best, 3)}x` : "—",
      ratio ? `${fmt(ratio.median, 3)}x` : "—",
      fmt(onnx?.itemsPerSecBest),
      fmt(onnx?.itemsPerSecMedian),
      onnxRatio ? `${fmt(onnxRatio.best, 3)}x` : "—",
      onnxRatio ? `${fmt(onnxRatio.median, 3)}x` : "—",
      `${fmt(result.othersCpus[k].tfjs)}/${fmt(result.othersCpus[k].torch)}/${fmt(result.othersCpus[k].onnx)}`,
    ];
  });
  return { header, rows, text: formatTable(header, rows) };
}

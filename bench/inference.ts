/**
 * Inference throughput of real-size CLIPs (ViT-B-32 and RN50 at 224 px by default, random
 * weights, float32): every cliplab engine, PyTorch, and onnxruntime on the graph PyTorch exports,
 * measured in the same run, taking turns.
 *
 * Sides, each its own process (backends are process-global; peak RSS is per process):
 *   tfjs       cliplab on tfjs WASM with the native kernels (system BLAS + fused C kernels)
 *   tfjs-wasm  cliplab on tfjs WASM with XNNPACK only (initBackend({blas: false}))
 *   onnx       cliplab's own ONNX export of the same weights on onnxruntime-node
 *   torch      PyTorch (bench/torch_peer.py encoders --serve): the same architecture, eval mode,
 *              inference_mode, torch.set_num_threads(threads)
 *   ort        onnxruntime-node on torch.onnx.export of the torch peer's model (opset 14), graph
 *              optimisation "all": the runtime transformers.js uses, on PyTorch's graph
 * The node sides run bench/inference_worker.ts. Every side gets the same thread count.
 *
 * Method: per model and encoder, one warm-up call per side, then rounds in which every side makes
 * one call, the order rotating each round, until `iters` rounds or the time budget; items/s =
 * batch / seconds of one call (features read back), best and median. The CPU time other processes
 * used during each side's calls is measured (/proc/stat minus the side's own CPU time) and
 * reported with the figures. The three cliplab engines share weights (Clip.create with the seed);
 * their features are compared on a fixed input, and PyTorch loads cliplab's weights at the end and
 * compares its features too. PyTorch's export is cached in bench/out/onnx-torch/.
 */
import { ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { getModelConfig } from "../src/model/registry";
import type { ClipConfig } from "../src/model/config";
import {
  BENCH_DIR,
  BenchContext,
  ContentionMeter,
  OUT_DIR,
  TORCH_INSTALL_HINT,
  TORCH_PYTHON,
  Timing,
  TorchPeerSession,
  fmt,
  formatTable,
  probeTorch,
  round2,
  summarise,
  waitForQuiet,
  writeResult,
} from "./common";

export type SideName = "tfjs" | "tfjs-wasm" | "onnx" | "onnx-int8" | "torch" | "ort";
export const ALL_SIDES: readonly SideName[] = ["tfjs", "tfjs-wasm", "onnx", "onnx-int8", "torch", "ort"];
type Kind = "image" | "text";

export interface InferenceBenchOptions {
  models: string[];
  sides: SideName[];
  imageBatch: number;
  textBatch: number;
  iters: number;
  warmup: number;
  /** Stop an encoder's rounds after this many seconds (all sides together). */
  budgetSeconds: number;
  quietWaitSeconds: number;
  threads: number;
  /** OMP_WAIT_POLICY for the PyTorch peer unless the environment sets it (see RESULTS.md). */
  torchOmpWait: "passive" | "active" | "inherit";
  /** onnxruntime's idle intra-op threads spin (its default) or sleep. */
  ortSpinning: boolean;
  seed: number;
  parity: boolean;
}

export const DEFAULT_INFERENCE_OPTIONS: InferenceBenchOptions = {
  models: ["ViT-B-32", "RN50"],
  sides: [...ALL_SIDES],
  imageBatch: 8,
  textBatch: 16,
  iters: 5,
  warmup: 1,
  budgetSeconds: 60,
  quietWaitSeconds: 10,
  threads: 2,
  torchOmpWait: "passive",
  ortSpinning: false,
  seed: 0,
  parity: true,
};

const LABELS: Record<SideName, string> = {
  tfjs: "cliplab tfjs + native kernels",
  "tfjs-wasm": "cliplab tfjs WASM (XNNPACK)",
  onnx: "cliplab ONNX export on onnxruntime",
  "onnx-int8": "cliplab ONNX export, int8 linear layers",
  torch: "PyTorch",
  ort: "onnxruntime on PyTorch's export",
};

const WORKER = path.join(BENCH_DIR, "inference_worker.ts");

/** A bench/inference_worker.ts process answering one JSON-line command at a time. */
class WorkerSession {
  private readonly lines: AsyncIterator<string>;
  private dead: string | undefined;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    lines: AsyncIterator<string>,
    readonly info: Record<string, any>,
  ) {
    this.lines = lines;
    child.on("exit", (code, signal) => (this.dead ??= `worker exited (${signal ?? code})`));
    child.stdin.on("error", (err) => (this.dead ??= `worker input closed (${err.message})`));
  }

  static async start(args: string[]): Promise<{ ok: true; session: WorkerSession } | { ok: false; reason: string }> {
    const child = spawn(process.execPath, ["--import", "tsx", WORKER, ...args], { stdio: ["pipe", "pipe", "inherit"], cwd: path.resolve(BENCH_DIR, "..") }) as unknown as ChildProcessWithoutNullStreams;
    const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done) return { ok: false, reason: "the worker exited before it was ready" };
    let info: any;
    try {
      info = JSON.parse(first.value);
    } catch {
      child.kill();
      return { ok: false, reason: `the worker printed ${JSON.stringify(first.value.slice(0, 200))}` };
    }
    if (info?.ok !== true) {
      child.kill();
      return { ok: false, reason: String(info?.error ?? "not ready") };
    }
    return { ok: true, session: new WorkerSession(child, lines, info) };
  }

  async request<T = any>(command: Record<string, unknown>): Promise<T> {
    if (this.dead) throw new Error(this.dead);
    this.child.stdin.write(JSON.stringify(command) + "\n");
    const next = await this.lines.next();
    if (next.done) throw new Error(this.dead ?? "the worker closed its output");
    const answer = JSON.parse(next.value);
    if (answer?.ok !== true) throw new Error(String(answer?.error ?? "failed"));
    return answer as T;
  }

  async close(): Promise<any> {
    if (this.dead) return undefined;
    try {
      return await this.request({ cmd: "exit" });
    } catch {
      return undefined;
    } finally {
      this.child.stdin.end();
      setTimeout(() => this.child.exitCode === null && this.child.kill(), 5000).unref();
    }
  }
}

interface Side {
  name: SideName;
  /** A session answering {"cmd": "time"} (a node worker or the torch peer). */
  session: { request<T = any>(c: Record<string, unknown>): Promise<T>; close(): Promise<any> };
  info: Record<string, unknown>;
  failure?: string;
}

interface SideResult {
  name: SideName;
  label: string;
  available: boolean;
  reason?: string;
  info?: Record<string, unknown>;
  image?: Timing;
  text?: Timing;
  othersCpus: { image?: number; text?: number };
  peakRssMb?: number;
}

/** torch_peer.py's model_from_meta fields for a cliplab config. */
function torchModelMeta(cfg: ClipConfig): Record<string, unknown> {
  const v = cfg.vision_cfg;
  const t = cfg.text_cfg;
  return {
    embed_dim: cfg.embed_dim,
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
    activation: cfg.quick_gelu ? "quick_gelu" : "gelu",
  };
}

async function startSides(model: string, opts: InferenceBenchOptions, log: (m: string) => void): Promise<{ sides: Side[]; missing: SideResult[]; torchPeer?: TorchPeerSession }> {
  const cfg = getModelConfig(model);
  const common = [`--model=${model}`, `--threads=${opts.threads}`, `--seed=${opts.seed}`];
  const missing: SideResult[] = [];
  const unavailable = (name: SideName, reason: string) => {
    missing.push({ name, label: LABELS[name], available: false, reason, othersCpus: {} });
    log(`${LABELS[name]}: unavailable (${reason})`);
  };
  const wanted = (n: SideName) => opts.sides.includes(n);
  // Node workers build their models concurrently with the torch peer.
  // cliplab's onnxruntime sides spin (or not) like the onnxruntime peer, so only the graphs differ.
  const spin = `--spinning=${opts.ortSpinning ? 1 : 0}`;
  const workerStarts = (["tfjs", "tfjs-wasm", "onnx", "onnx-int8"] as const)
    .filter(wanted)
    .map(async (name) => ({ name, r: await WorkerSession.start([`--engine=${name}`, ...common, ...(name.startsWith("onnx") ? [spin] : [])]) }));
  let torch: TorchPeerSession | undefined;
  if (wanted("torch") || wanted("ort")) {
    const probe = probeTorch();
    if (!probe.ok) {
      for (const n of ["torch", "ort"] as const) if (wanted(n)) unavailable(n, `${probe.reason}; ${TORCH_INSTALL_HINT}`);
    } else {
      const env = { ...process.env };
      if (opts.torchOmpWait !== "inherit" && env.OMP_WAIT_POLICY === undefined) env.OMP_WAIT_POLICY = opts.torchOmpWait.toUpperCase();
      const r = await TorchPeerSession.start<Record<string, unknown>>("encoders", [`--threads=${opts.threads}`, `--seed=${opts.seed}`, `--model-json=${JSON.stringify(torchModelMeta(cfg))}`], env);
      if (r.ok) torch = r.session;
      else for (const n of ["torch", "ort"] as const) if (wanted(n)) unavailable(n, r.reason);
    }
  }
  const sides: Side[] = [];
  for (const { name, r } of await Promise.all(workerStarts)) {
    if (r.ok) {
      sides.push({ name, session: r.session, info: r.session.info });
      log(`${LABELS[name]}: ready in ${fmt(r.session.info.build_seconds, 1)}s${r.session.info.reason ? ` (${r.session.info.reason})` : ""}`);
    } else unavailable(name, r.reason);
  }
  if (torch && wanted("torch")) {
    sides.push({ name: "torch", session: torch, info: torch.info as Record<string, unknown> });
    log(`${LABELS.torch} ${(torch.info as any).torch}: ready (${(torch.info as any).threads} threads, OMP_WAIT_POLICY ${process.env.OMP_WAIT_POLICY ?? (opts.torchOmpWait === "inherit" ? "(OpenMP default)" : opts.torchOmpWait.toUpperCase())})`);
  }
  if (torch && wanted("ort")) {
    const torchVersion = String((torch.info as any).torch);
    const dir = path.join(OUT_DIR, "onnx-torch", `${model}-seed${opts.seed}-torch${torchVersion}`);
    try {
      let files = { vision: path.join(dir, "vision.onnx"), text: path.join(dir, "text.onnx") };
      if (!fs.existsSync(files.vision) || !fs.existsSync(files.text)) {
        log(`exporting PyTorch's ${model} to ONNX (torch.onnx.export, cached in ${path.relative(process.cwd(), dir)})`);
        const r = await torch.request<{ vision: string; text: string; seconds: number }>({ cmd: "export_onnx", dir });
        files = { vision: r.vision, text: r.text };
        log(`  exported in ${fmt(r.seconds, 0)}s`);
      }
      const t = cfg.text_cfg;
      const r = await WorkerSession.start([
        "--engine=ort", ...common, `--vision=${files.vision}`, `--text=${files.text}`, `--spinning=${opts.ortSpinning ? 1 : 0}`,
        `--image-size=${cfg.vision_cfg.image_size}`, `--context=${t.context_length}`, `--vocab=${t.vocab_size}`,
      ]);
      if (r.ok) {
        sides.push({ name: "ort", session: r.session, info: r.session.info });
        log(`${LABELS.ort}: ready (onnxruntime-node ${r.session.info.onnxruntime}, spinning ${opts.ortSpinning ? "on" : "off"})`);
      } else unavailable("ort", r.reason);
    } catch (err) {
      unavailable("ort", (err as Error).message);
    }
  }
  if (torch && !wanted("torch")) {
    // Kept only for the export: closed now so it does not sit in memory.
    await torch.close();
    torch = undefined;
  }
  return { sides, missing, torchPeer: torch };
}

async function measure(kind: Kind, batch: number, sides: Side[], opts: InferenceBenchOptions, log: (m: string) => void): Promise<Map<SideName, { timing?: Timing; othersCpus?: number }>> {
  const call = async (s: Side) => {
    if (s.failure) return undefined;
    try {
      return await s.session.request<{ seconds: number; cpu_seconds: number }>({ cmd: "time", kind, batch });
    } catch (err) {
      s.failure = (err as Error).message;
      log(`${LABELS[s.name]} failed: ${s.failure}`);
      return undefined;
    }
  };
  for (let w = 0; w < opts.warmup; w++) for (const s of sides) await call(s);
  const quiet = await waitForQuiet(opts.quietWaitSeconds);
  if (quiet.waitedSeconds > 1.5) log(`  waited ${quiet.waitedSeconds.toFixed(0)}s for other processes to quiet down (now ${fmt(quiet.othersCpus)} CPUs)`);
  const seconds = new Map<SideName, number[]>(sides.map((s) => [s.name, []]));
  const meters = new Map<SideName, ContentionMeter>(sides.map((s) => [s.name, new ContentionMeter()]));
  const t0 = performance.now();
  for (let round = 0; round < opts.iters && (round === 0 || (performance.now() - t0) / 1000 < opts.budgetSeconds); round++) {
    for (let i = 0; i < sides.length; i++) {
      const s = sides[(i + round) % sides.length];
      const meter = meters.get(s.name)!;
      meter.start();
      const r = await call(s);
      meter.stop(r?.cpu_seconds ?? 0);
      if (r) seconds.get(s.name)!.push(r.seconds);
    }
  }
  const out = new Map<SideName, { timing?: Timing; othersCpus?: number }>();
  for (const s of sides) {
    const xs = seconds.get(s.name)!;
    const timing = xs.length ? summarise(batch, xs) : undefined;
    out.set(s.name, { timing, othersCpus: meters.get(s.name)!.othersCpus() });
    if (timing) log(`  ${LABELS[s.name].padEnd(36)} ${xs.map((x) => x.toFixed(3)).join(", ")} s -> best ${fmt(timing.itemsPerSecBest)} ${kind}s/s`);
  }
  return out;
}

function compare(a: number[], ref: number[], dim: number): { max_rel_diff: number; min_cosine: number } {
  let d = 0;
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    d = Math.max(d, Math.abs(a[i] - ref[i]));
    m = Math.max(m, Math.abs(ref[i]));
  }
  let minCos = 1;
  for (let r = 0; r < ref.length / dim; r++) {
    let ab = 0, aa = 0, bb = 0;
    for (let k = r * dim; k < (r + 1) * dim; k++) {
      ab += a[k] * ref[k];
      aa += a[k] * a[k];
      bb += ref[k] * ref[k];
    }
    minCos = Math.min(minCos, ab / Math.sqrt(aa * bb));
  }
  return { max_rel_diff: d / m, min_cosine: minCos };
}

async function parityChecks(model: string, sides: Side[], torch: TorchPeerSession | undefined, opts: InferenceBenchOptions): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const dim = getModelConfig(model).embed_dim;
  const ref = sides.find((s) => s.name === "tfjs" && !s.failure);
  if (!ref) return { skipped: "no tfjs side" };
  try {
    const r = await ref.session.request<{ image: number[]; text: number[] }>({ cmd: "features" });
    for (const s of sides) {
      if ((s.name !== "tfjs-wasm" && s.name !== "onnx" && s.name !== "onnx-int8") || s.failure) continue;
      const f = await s.session.request<{ image: number[]; text: number[] }>({ cmd: "features" });
      out[`${s.name} vs tfjs`] = { image: compare(f.image, r.image, dim), text: compare(f.text, r.text, dim) };
    }
    if (torch && !opts.parity) out["torch vs tfjs"] = { skipped: "--no-parity" };
    else if (torch) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cliplab-bench-"));
      try {
        await ref.session.request({ cmd: "parity_inputs", dir });
        const p = (await torch.request<{ parity: Record<string, { max_rel_diff: number; min_cosine: number }> }>({ cmd: "parity", dir })).parity;
        out["torch vs tfjs"] = { image: p.image, text: p.text, note: "PyTorch with cliplab's weights; relative to PyTorch's features" };
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  } catch (err) {
    out.error = (err as Error).message;
  }
  return out;
}

async function benchModel(model: string, opts: InferenceBenchOptions, log: (m: string) => void): Promise<Record<string, unknown>> {
  log(`== ${model}: image batch ${opts.imageBatch}, text batch ${opts.textBatch}, ${opts.threads} threads per side`);
  const { sides, missing, torchPeer } = await startSides(model, opts, log);
  const results = new Map<SideName, SideResult>();
  for (const s of sides) results.set(s.name, { name: s.name, label: LABELS[s.name], available: true, info: s.info, othersCpus: {} });
  let parity: Record<string, unknown> = {};
  try {
    for (const [kind, batch] of [["image", opts.imageBatch], ["text", opts.textBatch]] as const) {
      log(`${kind} encoder, batch ${batch}: ${opts.warmup} warm-up call(s) per side, then up to ${opts.iters} rounds (order rotating)`);
      const m = await measure(kind, batch, sides, opts, log);
      for (const [name, v] of m) {
        const r = results.get(name)!;
        r[kind] = v.timing;
        r.othersCpus[kind] = v.othersCpus === undefined ? undefined : round2(v.othersCpus);
      }
    }
    parity = await parityChecks(model, sides, torchPeer, opts);
  } finally {
    for (const s of sides) {
      const bye = await s.session.close();
      const r = results.get(s.name)!;
      r.peakRssMb = round2(Number(bye?.peak_rss_mb_with_parity ?? bye?.peak_rss_mb ?? NaN));
      if (s.name === "torch") r.peakRssMb = round2(Number(bye?.peak_rss_mb ?? NaN));
      if (s.failure) {
        r.available = false;
        r.reason = s.failure;
      }
    }
    if (torchPeer && !sides.some((s) => s.session === torchPeer)) await torchPeer.close();
  }
  const all = [...ALL_SIDES].filter((n) => opts.sides.includes(n)).map((n) => results.get(n) ?? missing.find((x) => x.name === n)!).filter(Boolean);
  return { model, sides: all, parity };
}

function ratio(a?: Timing, b?: Timing): number | undefined {
  return a && b ? a.itemsPerSecBest / b.itemsPerSecBest : undefined;
}

/** The per-model table (RESULTS.md shows it as Markdown). */
export function inferenceTable(m: any): { header: string[]; rows: string[][]; text: string } {
  const header = ["engine", "images/s best", "median", "texts/s best", "median", "vs ort (img/txt)", "vs torch (img/txt)", "peak RSS MiB", "others' CPUs img/txt"];
  const sides = m.sides as SideResult[];
  const ort = sides.find((s) => s.name === "ort");
  const torch = sides.find((s) => s.name === "torch");
  const x = (v: number | undefined) => (v === undefined ? "—" : `${v.toFixed(2)}x`);
  const rows = sides.map((s) =>
    s.available
      ? [
          s.label,
          fmt(s.image?.itemsPerSecBest),
          fmt(s.image?.itemsPerSecMedian),
          fmt(s.text?.itemsPerSecBest),
          fmt(s.text?.itemsPerSecMedian),
          `${x(ratio(s.image, ort?.image))} / ${x(ratio(s.text, ort?.text))}`,
          `${x(ratio(s.image, torch?.image))} / ${x(ratio(s.text, torch?.text))}`,
          fmt(s.peakRssMb, 0),
          `${fmt(s.othersCpus.image)}/${fmt(s.othersCpus.text)}`,
        ]
      : [s.label, `unavailable: ${s.reason}`, "", "", "", "", "", "", ""],
  );
  return { header, rows, text: formatTable(header, rows) };
}

export async function runInferenceBench(opts: InferenceBenchOptions, ctx: BenchContext): Promise<Record<string, unknown>> {
  const started = performance.now();
  const log = (msg: string) => console.log(`[inference ${((performance.now() - started) / 1000).toFixed(0).padStart(4)}s] ${msg}`);
  const models: Record<string, unknown>[] = [];
  for (const model of opts.models) models.push(await benchModel(model, opts, log));
  const result = {
    suite: "inference",
    date: new Date().toISOString(),
    method: "each side its own process, calls in rotating order (never concurrent); items/s = batch / seconds of one call (features read back); best and median",
    options: opts,
    machine: ctx.machine,
    models,
    loadAvgAtEnd: os.loadavg().map(round2),
    runtimeSeconds: round2((performance.now() - started) / 1000),
  };
  const file = writeResult("inference", result);
  for (const m of models as any[]) {
    console.log("");
    console.log(`${m.model}, random weights, float32, 224 px: image batch ${opts.imageBatch}, text batch ${opts.textBatch}, ${opts.threads} threads per side`);
    console.log(inferenceTable(m).text);
    for (const [k, v] of Object.entries(m.parity ?? {})) {
      const p = v as any;
      if (p?.image) console.log(`features ${k}: image max|Δ|/max ${p.image.max_rel_diff.toExponential(2)} (min cosine ${p.image.min_cosine.toFixed(7)}), text ${p.text.max_rel_diff.toExponential(2)} (min cosine ${p.text.min_cosine.toFixed(7)})`);
      else console.log(`features ${k}: ${JSON.stringify(v)}`);
    }
  }
  console.log(`\nwritten ${path.relative(process.cwd(), file)}; inference took ${result.runtimeSeconds.toFixed(0)}s`);
  return result;
}

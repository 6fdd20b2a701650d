/**
 * Shared pieces of `npm run bench`: machine information, timing statistics, peak memory, the
 * PyTorch peer process (bench/torch_peer.py), result files and plain-text tables.
 */
import { ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import * as readline from "node:readline";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { BackendChoice } from "../src/backend/select";

export const BENCH_DIR = __dirname;
export const OUT_DIR = path.join(BENCH_DIR, "out");
export const TORCH_PEER = path.join(BENCH_DIR, "torch_peer.py");

/**
 * The interpreter with Debian's python3-torch. Not the first python3 on PATH (pyenv's has no
 * torch); override with CLIPLAB_TORCH_PYTHON.
 */
export const TORCH_PYTHON = process.env.CLIPLAB_TORCH_PYTHON || "/usr/bin/python3";
export const TORCH_INSTALL_HINT = "install python3-torch libopenblas0-openmp";

export interface MachineInfo {
  cpuModel: string;
  /** The vector extensions that matter for float32 GEMM speed, as /proc/cpuinfo lists them. */
  cpuVectorFlags: string[];
  logicalCpus: number;
  totalMemGb: number;
  os: string;
  node: string;
  loadAvgAtStart: number[];
}

/** What every suite gets from bench/run.ts. */
export interface BenchContext {
  machine: MachineInfo;
  /** The tfjs backend, started once for all suites by `initBackend` (src/backend/select.ts). */
  backend: BackendChoice & { requestedThreads: number; note?: string };
}

export function machineInfo(): MachineInfo {
  let cpuModel = os.cpus()[0]?.model ?? "unknown";
  let cpuVectorFlags: string[] = [];
  try {
    const info = fs.readFileSync("/proc/cpuinfo", "utf8");
    const match = /^model name\s*:\s*(.+)$/m.exec(info);
    if (match) cpuModel = match[1].trim();
    const family = /^cpu family\s*:\s*(\d+)$/m.exec(info)?.[1];
    const model = /^model\s*:\s*(\d+)$/m.exec(info)?.[1];
    if (family && model) cpuModel += ` (family ${family} model ${model})`;
    const flags = new Set((/^flags\s*:\s*(.+)$/m.exec(info)?.[1] ?? "").split(/\s+/));
    cpuVectorFlags = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"].filter((f) => flags.has(f));
  } catch {
    // not Linux: keep os.cpus()
  }
  return {
    cpuModel,
    cpuVectorFlags,
    logicalCpus: os.cpus().length,
    totalMemGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    loadAvgAtStart: os.loadavg().map(round2),
  };
}

export function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Peak resident set size of this process so far, in MiB (the kernel's high-water mark). */
export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
}

export interface Timing {
  batch: number;
  iters: number;
  seconds: number[];
  itemsPerSecBest: number;
  itemsPerSecMedian: number;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function summarise(batch: number, seconds: number[]): Timing {
  return {
    batch,
    iters: seconds.length,
    seconds: seconds.map((s) => Math.round(s * 1e4) / 1e4),
    itemsPerSecBest: batch / Math.min(...seconds),
    itemsPerSecMedian: batch / median(seconds),
  };
}

/** Whether the PyTorch peer can run at all: the torch version, or why not. */
export function probeTorch(): { ok: true; version: string } | { ok: false; reason: string } {
  const r = spawnSync(TORCH_PYTHON, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8", timeout: 60_000 });
  if (r.error) return { ok: false, reason: `${TORCH_PYTHON}: ${r.error.message}` };
  if (r.status !== 0) {
    const last = (r.stderr || "").trim().split("\n").pop() || `exit status ${r.status}`;
    return { ok: false, reason: `${TORCH_PYTHON} -c "import torch" failed: ${last}` };
  }
  return { ok: true, version: r.stdout.trim() };
}

export function writeResult(name: string, value: unknown): string {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const file = path.join(OUT_DIR, `${name}.json`);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + "\n");
  fs.renameSync(tmp, file);
  return file;
}

/** A plain-text table; numeric-looking cells are right-aligned. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const numeric = /^[-+]?[\d.,]+[x%]?$|^—$/;
  const line = (cells: string[]) =>
    cells.map((c, i) => (numeric.test(c) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

export function fmt(x: number | undefined, digits = 2): string {
  return x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(digits);
}

/**
 * A long-lived `torch_peer.py <suite> --serve` process answering one JSON-line command at a time,
 * so that a suite can interleave PyTorch and tfjs calls.
 */
export class TorchPeerSession<Info = Record<string, unknown>> {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  private dead: string | undefined;
  readonly info: Info;

  private constructor(child: ChildProcessWithoutNullStreams, lines: AsyncIterator<string>, info: Info) {
    this.child = child;
    this.lines = lines;
    this.info = info;
    child.on("exit", (code, signal) => (this.dead ??= `torch_peer.py exited (${signal ?? code})`));
    // A peer that died makes our writes fail with EPIPE; the next read then reports it.
    child.stdin.on("error", (err) => (this.dead ??= `torch_peer.py input closed (${err.message})`));
  }

  /** Starts the peer and waits for its "ready" line; failures come back as a reason. */
  static async start<Info>(
    suite: string,
    args: string[],
    env: NodeJS.ProcessEnv = process.env,
  ): Promise<{ ok: true; session: TorchPeerSession<Info> } | { ok: false; reason: string }> {
    const child = spawn(TORCH_PYTHON, [TORCH_PEER, suite, "--serve", ...args], { stdio: ["pipe", "pipe", "inherit"], env }) as unknown as ChildProcessWithoutNullStreams;
    let spawnError: string | undefined;
    child.on("error", (err) => (spawnError = `${TORCH_PYTHON}: ${err.message}`));
    const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done) return { ok: false, reason: spawnError ?? "torch_peer.py exited before it was ready" };
    let info: any;
    try {
      info = JSON.parse(first.value);
    } catch {
      child.kill();
      return { ok: false, reason: `torch_peer.py printed ${JSON.stringify(first.value.slice(0, 200))} instead of JSON` };
    }
    if (info?.ok !== true || info?.ready !== true) {
      child.kill();
      return { ok: false, reason: `torch_peer.py failed: ${info?.error ?? "not ready"}` };
    }
    return { ok: true, session: new TorchPeerSession<Info>(child, lines, info as Info) };
  }

  /** Sends one command and waits for its answer; throws on a failed command or a dead peer. */
  async request<T = any>(command: Record<string, unknown>): Promise<T> {
    if (this.dead) throw new Error(this.dead);
    this.child.stdin.write(JSON.stringify(command) + "\n");
    const next = await this.lines.next();
    if (next.done) throw new Error(this.dead ?? "torch_peer.py closed its output");
    const answer = JSON.parse(next.value);
    if (answer?.ok !== true) throw new Error(`torch_peer.py: ${answer?.error ?? "failed"}`);
    return answer as T;
  }

  /** Asks the peer to exit (its final answer is returned), or kills it if it does not answer. */
  async close(): Promise<any> {
    if (this.dead) return undefined;
    try {
      return await this.request({ cmd: "exit" });
    } catch {
      return undefined;
    } finally {
      this.child.stdin.end();
      if (this.child.exitCode === null) setTimeout(() => this.child.exitCode === null && this.child.kill(), 5000).unref();
    }
  }
}

/** Busy and total CPU time of the whole machine so far, in jiffies (Linux /proc/stat); undefined elsewhere. */
export function machineCpuTicks(): { busy: number; total: number } | undefined {
  try {
    const first = fs.readFileSync("/proc/stat", "utf8").split("\n", 1)[0];
    const f = first.trim().split(/\s+/).slice(1).map(Number); // user nice system idle iowait irq softirq steal ...
    const idle = f[3] + (f[4] || 0);
    const busy = f[0] + f[1] + f[2] + (f[5] || 0) + (f[6] || 0) + (f[7] || 0);
    return { busy, total: busy + idle };
  } catch {
    return undefined;
  }
}

/**
 * Measures how many CPUs other processes kept busy during stretches of work: the machine's busy
 * CPUs (from /proc/stat) minus our own CPU time (this process, all threads) and the CPU time a
 * helper process (the PyTorch peer) reports for itself. Accumulates over `start()`/`stop()`
 * segments, e.g. only the tfjs calls, or only the torch calls.
 */
export class ContentionMeter {
  private busyCpuSeconds = 0;
  private ownCpuSeconds = 0;
  private wallSeconds = 0;
  private valid = true;
  private open: { ticks?: { busy: number; total: number }; own: NodeJS.CpuUsage; t0: number } | undefined;

  start(): void {
    this.open = { ticks: machineCpuTicks(), own: process.cpuUsage(), t0: performance.now() };
  }

  /** Ends a segment; `helperCpuSeconds` is CPU time our helper process spent in it. */
  stop(helperCpuSeconds = 0): void {
    const seg = this.open;
    if (!seg) throw new Error("ContentionMeter.stop() without start()");
    this.open = undefined;
    const ticks = machineCpuTicks();
    const wall = (performance.now() - seg.t0) / 1000;
    if (!seg.ticks || !ticks || ticks.total <= seg.ticks.total) {
      this.valid = false;
      return;
    }
    const busyFraction = (ticks.busy - seg.ticks.busy) / (ticks.total - seg.ticks.total);
    const own = process.cpuUsage(seg.own);
    this.busyCpuSeconds += busyFraction * os.cpus().length * wall;
    this.ownCpuSeconds += (own.user + own.system) / 1e6 + helperCpuSeconds;
    this.wallSeconds += wall;
  }

  /** Average CPUs used by other processes over the segments; undefined without /proc/stat. */
  othersCpus(): number | undefined {
    if (!this.valid || this.wallSeconds === 0) return undefined;
    return Math.max(0, (this.busyCpuSeconds - this.ownCpuSeconds) / this.wallSeconds);
  }
}

/** Others' CPU use over one short window (for waiting until the machine is quiet). */
export async function sampleOthersCpus(windowMs = 1000): Promise<number | undefined> {
  const m = new ContentionMeter();
  m.start();
  await new Promise((r) => setTimeout(r, windowMs));
  m.stop();
  return m.othersCpus();
}

/**
 * Waits, up to `maxSeconds`, until other processes use at most `threshold` CPUs over a
 * 1 s window. Returns how long it waited and the last sample.
 */
export async function waitForQuiet(maxSeconds: number, threshold = 0.3): Promise<{ waitedSeconds: number; othersCpus?: number }> {
  const t0 = performance.now();
  let last: number | undefined;
  do {
    last = await sampleOthersCpus();
    if (last === undefined || last <= threshold) break;
  } while ((performance.now() - t0) / 1000 < maxSeconds);
  return { waitedSeconds: round2((performance.now() - t0) / 1000), othersCpus: last === undefined ? undefined : round2(last) };
}

/**
 * `npm run bench -- --only=data`: decoded-and-preprocessed 224 px images per second on this
 * machine, main thread against the worker-thread pipeline (src/data/pipeline.ts), and peak memory.
 *
 * Inputs: photo-like images generated here (smooth colour fields, shapes, sensor-like noise;
 * seeded), 500x375, written to a temporary folder as JPEG (quality 90, 4:2:0) and PNG (RGB), read
 * back from disk by the source, as an image folder would be. Every configuration runs in its own
 * Node process (so peak RSS is its own): the source yields `--data-images` items (cycling over 48
 * distinct files), OpenAI's transform at 224 px (bicubic short-side resize, centre crop) turns each
 * into `[224, 224, 3]` uint8, and the consumer takes them one by one. libvips' operation cache is
 * off in every process (`sharp.cache(false)`), so repeated files are decoded again.
 *
 * Configurations: `prepareItem` awaited one at a time on the main thread; the pipeline with
 * `workers: 0` (main thread, two images in flight so sharp's decode on libuv's threads overlaps the
 * JavaScript resize); the pipeline with 1, 2 and 3 worker threads; 2 workers with
 * `sharpThreads: 1`; and 1 or 2 workers feeding a consumer that keeps the main thread busy for
 * 1/`--data-consumer-rate` s per image (a model at the target ~28 images/s), where what counts is
 * how long the consumer waits for the next item.
 *
 *   --data-images=N         items per configuration (default 240)
 *   --data-consumer-rate=R  images/s of the simulated busy consumer (default 28)
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BenchContext, ContentionMeter, fmt, formatTable, round2, writeResult } from "./common";

export interface DataBenchOptions {
  images: number;
  consumerRate: number;
  seed: number;
}

export const DEFAULT_DATA_OPTIONS: DataBenchOptions = { images: 240, consumerRate: 28, seed: 0 };

const WIDTH = 500;
const HEIGHT = 375;
const DISTINCT = 48;
const SIZE = 224;

interface Config {
  name: string;
  mode: "sequential" | "pipeline";
  workers?: number;
  inflight?: number;
  sharpThreads?: number;
  /** Simulated consumer: ms of synchronous main-thread work per image. */
  busyMs?: number;
}

interface ChildResult {
  imagesPerSecond: number;
  /** CPU seconds of the child, all threads. */
  cpuSeconds: number;
  /** CPUs other processes kept busy meanwhile (machine busy time minus ours). */
  othersCpus?: number;
  firstItemSeconds: number;
  seconds: number;
  cpuCores: number;
  peakRssMb: number;
  waitFraction?: number;
  waitMsPerImage?: number;
}

/** A photo-like 500x375 RGB image: low-frequency colour, a few hard-edged shapes, noise. */
export async function photo(seed: number): Promise<Uint8Array> {
  const { Random } = await import("../src/util/random");
  const rng = new Random(seed);
  const data = new Uint8Array(WIDTH * HEIGHT * 3);
  const waves = Array.from({ length: 3 }, () => Array.from({ length: 3 }, () => ({ fx: rng.next() * 0.03, fy: rng.next() * 0.03, ph: rng.next() * 6.28, a: 40 + rng.next() * 40 })));
  const shapes = Array.from({ length: 6 }, () => ({ x: rng.int(WIDTH), y: rng.int(HEIGHT), r: 20 + rng.int(80), c: [rng.int(256), rng.int(256), rng.int(256)], disc: rng.next() < 0.5 }));
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) {
      const o = (y * WIDTH + x) * 3;
      for (let c = 0; c < 3; c++) {
        let v = 128;
        for (const w of waves[c]) v += w.a * Math.sin(w.fx * x + w.fy * y + w.ph);
        data[o + c] = Math.max(0, Math.min(255, v + (rng.next() - 0.5) * 16));
      }
      for (const s of shapes) {
        const inside = s.disc ? (x - s.x) ** 2 + (y - s.y) ** 2 < s.r * s.r : Math.abs(x - s.x) < s.r && Math.abs(y - s.y) < s.r / 2;
        if (inside) for (let c = 0; c < 3; c++) data[o + c] = Math.max(0, Math.min(255, s.c[c] + (rng.next() - 0.5) * 16));
      }
    }
  }
  return data;
}

async function writeInputs(dir: string, seed: number): Promise<{ jpeg: number; png: number }> {
  const sharp = (await import("sharp")).default;
  let jpeg = 0;
  let png = 0;
  for (let i = 0; i < DISTINCT; i++) {
    const raw = await photo(seed * 1000 + i);
    const img = () => sharp(raw, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } });
    const j = await img().jpeg({ quality: 90 }).toBuffer();
    const p = await img().png().toBuffer();
    fs.writeFileSync(path.join(dir, `${i}.jpg`), j);
    fs.writeFileSync(path.join(dir, `${i}.png`), p);
    jpeg += j.length;
    png += p.length;
  }
  return { jpeg: Math.round(jpeg / DISTINCT), png: Math.round(png / DISTINCT) };
}

/** The child side: one configuration on one format, result as a JSON line on stdout. */
async function child(args: { dir: string; ext: string; images: number; config: Config }): Promise<void> {
  const sharp = (await import("sharp")).default;
  sharp.cache(false);
  const { prepareItem, prepareItems } = await import("../src/data/pipeline");
  const { resolveTransform } = await import("../src/image/transform");
  const t = resolveTransform(SIZE, {});
  const { dir, ext, images, config } = args;
  async function* source() {
    for (let i = 0; i < images; i++) {
      const file = path.join(dir, `${i % DISTINCT}${ext}`);
      const bytes = new Uint8Array(await fs.promises.readFile(file));
      yield { key: file, index: i, image: { kind: "encoded" as const, bytes }, captions: [] };
    }
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let first = 0;
  let n = 0;
  let waited = 0;
  let checksum = 0;
  if (config.mode === "sequential") {
    for await (const item of source()) {
      const p = await prepareItem(item, t);
      checksum += p.pixels[n % p.pixels.length];
      if (n++ === 0) first = performance.now();
    }
  } else {
    const it = prepareItems(source(), t, { workers: config.workers, inflight: config.inflight, sharpThreads: config.sharpThreads });
    for (;;) {
      const w0 = performance.now();
      const r = await it.next();
      if (n > 0) waited += performance.now() - w0;
      if (r.done) break;
      checksum += r.value.pixels[n % r.value.pixels.length];
      if (n++ === 0) first = performance.now();
      if (config.busyMs) {
        const until = performance.now() + config.busyMs;
        while (performance.now() < until); // a model step: the main thread is not free
      }
    }
  }
  const end = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const result: ChildResult & { checksum: number } = {
    imagesPerSecond: (n - 1) / ((end - first) / 1000),
    firstItemSeconds: (first - t0) / 1000,
    seconds: (end - t0) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    cpuCores: (cpu.user + cpu.system) / 1e6 / ((end - t0) / 1000),
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    checksum,
  };
  if (config.busyMs) {
    const busyTotal = (n - 1) * config.busyMs;
    result.waitFraction = waited / (waited + busyTotal);
    result.waitMsPerImage = waited / (n - 1);
  }
  process.stdout.write(JSON.stringify(result) + "\n");
}

function runChild(payload: object): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", "tsx", __filename, "--data-child", JSON.stringify(payload)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("exit", (code) => {
      const line = out.trim().split("\n").pop() ?? "";
      if (code === 0 && line.startsWith("{")) resolve(JSON.parse(line));
      else reject(new Error(`data bench child failed (exit ${code}): ${err.trim().split("\n").slice(-3).join(" | ")}`));
    });
  });
}

export async function runDataPipelineBench(opts: DataBenchOptions, ctx: BenchContext): Promise<unknown> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cliplab-data-bench-"));
  try {
    const sizes = await writeInputs(dir, opts.seed);
    const busyMs = 1000 / opts.consumerRate;
    const configs: Config[] = [
      { name: "main thread, prepareItem one at a time", mode: "sequential" },
      { name: "pipeline, workers: 0 (main thread, 2 in flight)", mode: "pipeline", workers: 0 },
      { name: "pipeline, 1 worker", mode: "pipeline", workers: 1 },
      { name: "pipeline, 2 workers (default)", mode: "pipeline", workers: 2 },
      { name: "pipeline, 2 workers, sharpThreads 1", mode: "pipeline", workers: 2, sharpThreads: 1 },
      { name: "pipeline, 3 workers", mode: "pipeline", workers: 3 },
      { name: `pipeline, 1 worker, consumer busy ${fmt(busyMs, 1)} ms/image`, mode: "pipeline", workers: 1, busyMs },
      { name: `pipeline, 2 workers, consumer busy ${fmt(busyMs, 1)} ms/image`, mode: "pipeline", workers: 2, busyMs },
    ];
    const results: { config: Config; format: string; result: ChildResult }[] = [];
    for (const ext of [".jpg", ".png"]) {
      for (const config of configs) {
        const meter = new ContentionMeter();
        meter.start();
        const result = await runChild({ dir, ext, images: opts.images, config });
        meter.stop(result.cpuSeconds);
        result.othersCpus = meter.othersCpus();
        results.push({ config, format: ext === ".jpg" ? "JPEG" : "PNG", result });
      }
    }
    const rows = results.map(({ config, format, result: r }) => [
      config.name,
      format,
      fmt(r.imagesPerSecond, 1),
      fmt(r.imagesPerSecond / r.cpuCores, 1),
      fmt(r.firstItemSeconds, 2),
      fmt(r.cpuCores, 2),
      fmt(r.othersCpus, 2),
      fmt(r.peakRssMb, 0),
      r.waitMsPerImage === undefined ? "—" : `${fmt(r.waitMsPerImage, 1)} (${fmt(100 * (r.waitFraction ?? 0), 1)}%)`,
    ]);
    console.log(`${opts.images} images per run, ${WIDTH}x${HEIGHT} -> ${SIZE} px (OpenAI transform); JPEG q90 ~${Math.round(sizes.jpeg / 1024)} KiB, PNG ~${Math.round(sizes.png / 1024)} KiB; ${ctx.machine.logicalCpus} CPUs, load ${os.loadavg()[0].toFixed(1)}`);
    console.log(formatTable(["configuration", "input", "images/s", "per CPU-s", "first item s", "CPUs used", "others' CPUs", "peak RSS MiB", "consumer wait ms/image"], rows));
    const file = writeResult("data", { options: opts, machine: ctx.machine, inputBytes: sizes, results: results.map((r) => ({ ...r, result: { ...r.result, imagesPerSecond: round2(r.result.imagesPerSecond) } })) });
    console.log(`wrote ${file}`);
    return results;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const i = process.argv.indexOf("--data-child");
  if (i < 0) {
    process.stderr.write("bench/data_pipeline.ts runs through bench/run.ts: npm run bench -- --only=data\n");
    process.exitCode = 2;
  } else {
    child(JSON.parse(process.argv[i + 1])).catch((err) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    });
  }
}

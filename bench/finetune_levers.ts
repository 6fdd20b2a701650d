/**
 * open_clip's memory levers measured on WASM, one configuration per process (peak RSS is per
 * process and the WASM heap never shrinks): AdamW training steps of a real-size model on
 * synthetic pixels and 20-token captions, with and without --grad-checkpointing, --lock-image and
 * --accum-freq. Per configuration: median seconds per optimizer step, pairs/s, the peak of the
 * tensors tfjs holds during one step (tf.profile's peakBytes), and the process's peak RSS.
 *
 *   npx tsx bench/finetune_levers.ts                       # the table in bench/RESULTS.md
 *   npx tsx bench/finetune_levers.ts one MODEL BATCH [lock] [ckpt] [accum=K] [steps=N]   # one configuration, one JSON line
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend/select";
import { Clip } from "../src/model/clip";
import { ClipOptimizer, trainStep } from "../src/train/step";
import { lockPlan } from "../src/train/lock";
import { MemoryRefusedError, assertTrainingFits } from "../src/model/memory";
import { formatTable, median, writeResult } from "./common";

function kib(key: string): number {
  return Number(new RegExp(`${key}:\\s+(\\d+)`).exec(fs.readFileSync("/proc/self/status", "utf8"))![1]);
}

interface Failure {
  config: string;
  failure: string;
}

/** A configuration that ran out of memory anyway would otherwise be able to hang the run. */
const CONFIG_TIMEOUT_MS = 15 * 60_000;

interface One {
  model: string;
  batch: number;
  lockImage: boolean;
  gradCheckpointing: boolean;
  accumFreq: number;
  secondsPerStep: number;
  pairsPerSecond: number;
  peakTensorMiB: number;
  peakRssMiB: number;
  trainedParams: number;
  threads: string;
}

async function one(args: string[]): Promise<void> {
  const [model, batchArg, ...flags] = args;
  const batch = Number(batchArg);
  const lockImage = flags.includes("lock");
  const gradCheckpointing = flags.includes("ckpt");
  const accumFreq = Number(flags.find((f) => f.startsWith("accum="))?.slice(6) ?? 1);
  const steps = Number(flags.find((f) => f.startsWith("steps="))?.slice(6) ?? 4);
  const backend = await initBackend({ prefer: "wasm" });
  const clip = Clip.create(model, { seed: 0, init: "uniform" });
  // The trainer's own check first: a configuration it refuses is reported, not run (past the
  // WASM heap a run aborts, or with 2 threads can hang at 100% CPU).
  try {
    assertTrainingFits(clip.config, { batchSize: batch, lockImage, gradCheckpointing, accumFreq }, model, { modelLoaded: true });
  } catch (err) {
    if (!(err instanceof MemoryRefusedError)) throw err;
    process.stdout.write(JSON.stringify({ refused: err.message }) + "\n");
    process.exit(0);
  }
  const opt = new ClipOptimizer(clip, "infonce", {}, { lock: lockPlan(clip.config, { lockImage }), gradCheckpointing });
  const size = clip.config.vision_cfg.image_size;
  const pixels = tf.randomNormal([batch * accumFreq, size, size, 3], 0, 1, "float32", 1) as tf.Tensor4D;
  const t = 20;
  const ids = Int32Array.from({ length: batch * accumFreq * t }, (_, i) => (i % t === 0 ? 49406 : i % t === t - 1 ? 49407 : 300 + ((i * 7919) % 40000)));
  const tokens = tf.tensor2d(ids, [batch * accumFreq, t], "int32");
  const times: number[] = [];
  let peakBytes = 0;
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    if (s === 0) {
      // The first step under tf.profile: the peak of live tensor bytes during the step.
      const info = await tf.profile(() => {
        trainStep(opt, pixels, tokens, 1e-5, 1, undefined, accumFreq);
      });
      peakBytes = info.peakBytes;
    } else {
      trainStep(opt, pixels, tokens, 1e-5, 1, undefined, accumFreq);
      times.push((performance.now() - t0) / 1000);
    }
    process.stderr.write(`step ${s + 1} done\n`);
  }
  const sec = median(times);
  const out: One = {
    model,
    batch: batch * accumFreq,
    lockImage,
    gradCheckpointing,
    accumFreq,
    secondsPerStep: +sec.toFixed(2),
    pairsPerSecond: +((batch * accumFreq) / sec).toFixed(1),
    peakTensorMiB: Math.round(peakBytes / 2 ** 20),
    peakRssMiB: Math.round(kib("VmHWM") / 1024),
    trainedParams: opt.params.reduce((n, p) => n + p.variable.size, 0),
    threads: `${backend.threads ?? "?"}`,
  };
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
}

const CONFIGS: string[][] = [
  // Gradient checkpointing on a mid-size transformer CLIP: the whole model trains.
  ["ViT-B-32", "4"],
  ["ViT-B-32", "4", "ckpt"],
  ["ViT-B-32", "8"],
  ["ViT-B-32", "8", "ckpt"],
  // The target: --lock-image fine-tuning of a 224 px ViT-B-32 at batch 64.
  ["ViT-B-32", "64", "lock"],
  ["ViT-B-32", "64", "lock", "ckpt"],
  ["ViT-B-32", "16", "lock", "accum=4"],
  ["ViT-B-32", "16", "lock", "ckpt", "accum=4"],
  ["ViT-B-32", "32", "lock"],
];

function all(): void {
  const rows: One[] = [];
  const failures: Failure[] = [];
  const refusals: Failure[] = [];
  for (const cfg of CONFIGS) {
    const r = spawnSync(process.execPath, ["--import", "tsx", __filename, "one", ...cfg], { encoding: "utf8", maxBuffer: 1 << 24, timeout: CONFIG_TIMEOUT_MS });
    const line = r.stdout.trim().split("\n").pop() ?? "";
    if (line.startsWith('{"refused"')) {
      const refused = (JSON.parse(line) as { refused: string }).refused;
      refusals.push({ config: cfg.join(" "), failure: refused });
      process.stderr.write(`${cfg.join(" ")}: refused before it started: ${refused}\n`);
      continue;
    }
    if (r.status !== 0 || !line.startsWith("{")) {
      const err = r.stderr || "";
      const done = (err.match(/^step \d+ done$/gm) ?? []).length;
      const why = r.error ? `killed after ${CONFIG_TIMEOUT_MS / 1000} s` : /memory access out of bounds|Out of memory|Cannot enlarge memory/i.exec(err)?.[0] ?? err.trim().split("\n").pop();
      failures.push({ config: cfg.join(" "), failure: `${why} in step ${done + 1}` });
      process.stderr.write(`${cfg.join(" ")}: failed in step ${done + 1}: ${why}\n`);
      continue;
    }
    const one = JSON.parse(line) as One;
    rows.push(one);
    process.stderr.write(`${cfg.join(" ")}: ${line}\n`);
  }
  writeResult("finetune_levers", { loadAverage: fs.readFileSync("/proc/loadavg", "utf8").trim(), rows, failures, refusals });
  process.stdout.write(
    formatTable(
      ["model", "batch", "lock-image", "grad-ckpt", "accum", "trained params", "s/step", "pairs/s", "peak tensors MiB", "peak RSS MiB"],
      rows.map((r) => [r.model, String(r.batch), r.lockImage ? "yes" : "", r.gradCheckpointing ? "yes" : "", String(r.accumFreq), r.trainedParams.toLocaleString("en"), String(r.secondsPerStep), String(r.pairsPerSecond), String(r.peakTensorMiB), String(r.peakRssMiB)]),
    ) + "\n",
  );
  for (const f of failures) process.stdout.write(`${f.config}: failed: ${f.failure}\n`);
  for (const f of refusals) process.stdout.write(`${f.config}: refused: ${f.failure}\n`);
}

if (process.argv[2] === "one") one(process.argv.slice(3)).catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
else all();

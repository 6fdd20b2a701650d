/**
 * `--only=embed`: `cliplab embed --data imagefolder:DIR` end to end, as a researcher runs it, on a
 * folder of 500x375 JPEGs with a ViT-B-32 (random weights, seeded) at 224 px: decode, preprocess
 * in the pipeline's workers, encode, write Arrow. Each engine (tfjs with whatever native kernels
 * load, onnxruntime on the in-memory export) runs as its own `cliplab embed` process, one after
 * the other, so images/s and peak RSS are the command's own; onnx is the peer the ratio is
 * against.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { BenchContext, OUT_DIR, fmt, formatTable, writeResult } from "./common";
import { photo } from "./data_pipeline";

export interface EmbedFolderOptions {
  images: number;
  engines: string[];
  seed: number;
}

export const DEFAULT_EMBED_FOLDER_OPTIONS: EmbedFolderOptions = { images: 64, engines: ["tfjs", "onnx", "onnx-int8"], seed: 0 };

/** An engine name here as `cliplab embed` flags ("onnx-int8": the onnx engine with --quantize int8). */
function engineFlags(engine: string): string[] {
  return engine === "onnx-int8" ? ["--engine", "onnx", "--quantize", "int8"] : ["--engine", engine];
}

const ROOT = path.join(__dirname, "..");

export async function runEmbedFolderBench(opts: EmbedFolderOptions, ctx: BenchContext): Promise<unknown> {
  const sharp = (await import("sharp")).default;
  const { Clip } = await import("../src/model/clip");
  const { saveCheckpoint } = await import("../src/io/checkpoint");
  const dir = path.join(OUT_DIR, "embed-folder");
  const folder = path.join(dir, "photos");
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(folder, { recursive: true });
  for (let i = 0; i < opts.images; i++) {
    const raw = await photo(opts.seed * 1000 + i);
    fs.writeFileSync(path.join(folder, `${String(i).padStart(4, "0")}.jpg`), await sharp(raw, { raw: { width: 500, height: 375, channels: 3 } }).jpeg({ quality: 90 }).toBuffer());
  }
  const checkpoint = path.join(dir, "ViT-B-32.safetensors");
  const clip = Clip.create("ViT-B-32", { seed: opts.seed });
  await saveCheckpoint(clip, checkpoint, { dtype: "F16" });
  clip.dispose();
  const rows: Record<string, unknown>[] = [];
  for (const engine of opts.engines) {
    const out = execFileSync(process.execPath, [path.join(ROOT, "bin", "cliplab.js"), "embed", "--checkpoint", checkpoint, "--data", `imagefolder:${folder}`, "--out", path.join(dir, `${engine}.arrow`), ...engineFlags(engine), "--json"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      maxBuffer: 64 * 2 ** 20,
    });
    const j = JSON.parse(out.trim().split("\n").pop()!);
    rows.push({ engine, images: j.images, imagesPerSecond: j.imagesPerSecond, seconds: j.seconds, peakRssMiB: j.peakRssMiB });
  }
  const peer = rows.find((r) => r.engine === "onnx") as { imagesPerSecond: number } | undefined;
  for (const r of rows) if (peer) r.ratioToOnnx = (r.imagesPerSecond as number) / peer.imagesPerSecond;
  const result = { suite: "embed", date: new Date().toISOString(), machine: ctx.machine, backend: ctx.backend.name, images: opts.images, rows };
  const file = writeResult("embed", result);
  const fixed = (v: unknown, digits: number) => fmt(v as number | undefined, digits);
  console.log(`${opts.images} 500x375 JPEGs, ViT-B-32 (random weights, seed ${opts.seed}) at 224 px, default threads`);
  console.log(formatTable(["engine", "images/s", "seconds", "peak RSS MiB", "vs --engine onnx"], rows.map((r) => [String(r.engine), fixed(r.imagesPerSecond, 2), fixed(r.seconds, 1), fixed(r.peakRssMiB, 0), `${fixed(r.ratioToOnnx, 2)}x`])));
  console.log(`wrote ${file}`);
  return result;
}

/**
 * A second real recipe (issue 13): fine-tune the Fashion-MNIST CLIP trained here onto a captioned
 * image folder this script generates, and measure zero-shot and retrieval before and after,
 * with --lock-image and without. Every step is a `cliplab` command (printed, and listed in
 * bench/RESULTS.md), so the numbers come from what a user would run.
 *
 * The data: Fashion-MNIST items tinted one of six colours (the grey image times the colour), in
 * an image folder with one class per (colour, garment) pair (`classnames.txt`: "red trouser"),
 * each image with three captions beside it ("a red trouser", "a photo of a red trouser.", "a
 * trouser in red"). The base model never saw colour (its training images are grey), so colour is
 * what fine-tuning has to add.
 *
 *   npx tsx bench/finetune_recipe.ts [--base runs/fm] [--out bench/out/finetune_recipe] [--epochs 8]
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { FASHION_MNIST_CLASSES, loadFashionMnist, type LabelledImages } from "../src/data/fashion_mnist";
import { formatTable, writeResult } from "./common";

const COLOURS: Record<string, [number, number, number]> = {
  red: [230, 40, 40],
  green: [40, 200, 60],
  blue: [50, 80, 235],
  yellow: [235, 215, 40],
  purple: [155, 60, 205],
  orange: [245, 140, 30],
};
/** Readable garment names (classnames.txt style). */
const GARMENTS = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"];

const CLI = path.join(__dirname, "..", "bin", "cliplab.js");

function run(args: string[]): string {
  process.stderr.write(`$ cliplab ${args.join(" ")}\n`);
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`cliplab ${args.join(" ")} exited ${r.status}`);
  return r.stdout.trim().split("\n").pop()!;
}

/** Writes `count` tinted items of `split` (image i of the split, colour from a seeded cycle) as an image folder. */
async function writeTinted(dir: string, split: LabelledImages, count: number, offset: number): Promise<void> {
  if (fs.existsSync(path.join(dir, "classnames.txt"))) return;
  const colours = Object.keys(COLOURS);
  const folders: string[] = [];
  const names: string[] = [];
  for (const c of colours) for (let g = 0; g < GARMENTS.length; g++) {
    folders.push(`${c}_${g}`);
    names.push(`${c} ${GARMENTS[g]}`);
  }
  // Folders sort as strings: write classnames in that order.
  const order = folders.map((f, i) => [f, names[i]] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  for (const [f] of order) fs.mkdirSync(path.join(dir, f), { recursive: true });
  const { height: h, width: w } = split;
  for (let i = 0; i < count; i++) {
    const src = offset + i;
    const garment = split.labels[src];
    const colour = colours[(src * 7 + Math.floor(src / 6)) % colours.length];
    const tint = COLOURS[colour];
    const px = new Uint8Array(h * w * 3);
    for (let p = 0; p < h * w; p++) {
      const grey = split.images[src * h * w + p];
      for (let ch = 0; ch < 3; ch++) px[p * 3 + ch] = Math.round((grey * tint[ch]) / 255);
    }
    const base = path.join(dir, `${colour}_${garment}`, `${String(src).padStart(5, "0")}`);
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(`${base}.png`);
    const g = GARMENTS[garment];
    fs.writeFileSync(`${base}.txt`, `a ${colour} ${g}\na photo of a ${colour} ${g}.\na ${g} in ${colour}\n`);
  }
  fs.writeFileSync(path.join(dir, "classnames.txt"), order.map(([, n]) => n).join("\n") + "\n");
}

interface Measures {
  acc1: number;
  mean_per_class_recall: number;
  "image_retrieval_recall@1": number;
  "image_retrieval_recall@5": number;
  "text_retrieval_recall@1": number;
  "text_retrieval_recall@5": number;
}

function evaluate(checkpoint: string, val: string): Measures {
  const cls = JSON.parse(run(["eval", "--checkpoint", checkpoint, "--data", `imagefolder:${val}`, "--json"])).metrics;
  const ret = JSON.parse(run(["eval", "--checkpoint", checkpoint, "--data", `imagefolder:${val}`, "--task", "zeroshot_retrieval", "--json"])).metrics;
  return { ...cls, ...ret };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { base: { type: "string", default: "runs/fm" }, out: { type: "string", default: path.join(__dirname, "out", "finetune_recipe") }, epochs: { type: "string", default: "8" }, lr: { type: "string", default: "5e-4" } },
  });
  const out = values.out!;
  const train = path.join(out, "data", "train");
  const val = path.join(out, "data", "val");
  await writeTinted(train, loadFashionMnist("train"), 6000, 0);
  await writeTinted(val, loadFashionMnist("test"), 1000, 0);
  const baseModel = path.join(values.base!, "model.safetensors");
  if (!fs.existsSync(baseModel)) run(["train", "--max-steps", "600", "--out", values.base!, "--json"]);
  const rows: { run: string; command: string; measures: Measures; trainSeconds?: number; pairsPerSecond?: number }[] = [];
  rows.push({ run: "before (the Fashion-MNIST checkpoint)", command: `cliplab eval --checkpoint ${baseModel} --data imagefolder:${val} [--task zeroshot_retrieval]`, measures: evaluate(baseModel, val) });
  for (const lock of [false, true]) {
    const dir = path.join(out, lock ? "ft-lock-image" : "ft-full");
    const args = [
      "train", "--init", values.base!, "--data", `imagefolder:${train}`, "--val-data", `imagefolder:${val}`,
      "--epochs", values.epochs!, "--batch-size", "128", "--lr", values.lr!, "--warmup", "10", "--wd", "0.05", ...(lock ? ["--lock-image"] : []), "--out", dir, "--json",
    ];
    const summary = JSON.parse(run(args));
    rows.push({ run: lock ? "fine-tuned, --lock-image" : "fine-tuned, all weights", command: `cliplab ${args.join(" ")}`, measures: evaluate(path.join(dir, "model.safetensors"), val), trainSeconds: summary.trainSeconds, pairsPerSecond: summary.pairsPerSecond });
  }
  writeResult("finetune_recipe", { loadAverage: fs.readFileSync("/proc/loadavg", "utf8").trim(), classes: FASHION_MNIST_CLASSES.length * Object.keys(COLOURS).length, rows });
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  process.stdout.write(
    formatTable(
      ["run", "acc1 (60 colour x garment classes)", "mean per-class recall", "image R@1", "image R@5", "text R@1", "text R@5", "train s"],
      rows.map((r) => [r.run, pct(r.measures.acc1), pct(r.measures.mean_per_class_recall), pct(r.measures["image_retrieval_recall@1"]), pct(r.measures["image_retrieval_recall@5"]), pct(r.measures["text_retrieval_recall@1"]), pct(r.measures["text_retrieval_recall@5"]), r.trainSeconds === undefined ? "" : r.trainSeconds.toFixed(0)]),
    ) + "\n",
  );
  for (const r of rows) process.stdout.write(`${r.run}: ${r.command}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});

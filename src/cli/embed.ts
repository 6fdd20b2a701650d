/**
 * `cliplab embed`: embeddings from a checkpoint into an Arrow IPC file, one row per image and
 * per caption: `kind` ("image" | "text"), `key` (path, row or shard key; the text itself for
 * --text), `index` (position in the source, so shards' files concatenate back to the whole),
 * `label` (class name or null), `caption` (text rows), `embedding` (float32, not unit-normed).
 *
 * Two inputs: `--data SPEC` (any source, streamed batch by batch, `--shard I/N` for one task of an
 * array job), or `--image PATH ... --text STRING ...` (a few inputs; the image-text cosine
 * matrix is printed). With --json the last line of stdout is one JSON object.
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { loadCheckpoint } from "../io/checkpoint";
import { ArrowFileStream, vectorColumn } from "../io/arrow";
import { loadImages } from "../image/preprocess";
import { modelTransform } from "../model/config";
import type { Clip } from "../model/clip";
import { tokenize } from "../text/tokenize";
import { preparedStream } from "../data/stream";
import { encodeImageBatches, encodeTexts, encodeTextsWith } from "../eval/encode";
import { CliIO, UsageError, intOption } from "./io";
import { startBackend } from "./backend";
import { DATA_OPTIONS, DATA_USAGE, ENGINE_OPTION, ENGINE_USAGE, SHARD_OPTION, SkipLog, checkEngineFlags, engineFromFlags, openDataFromFlags, shardFromFlags } from "./data_options";
import type { EmbeddingEngine } from "../engine/engine";
import { ProgressLine } from "./progress";

export const EMBED_USAGE =
  `usage: cliplab embed --checkpoint FILE [--config CONFIG] (--data SPEC | --image PATH ... --text STRING ...) --out FILE.arrow [--shard I/N] [--limit N] ${ENGINE_USAGE} [--truncate] [--json]\n` +
  `  data flags: ${DATA_USAGE}`;

function formatMatrix(rows: string[], cols: string[], values: Float32Array): string[] {
  const short = (s: string) => (s.length > 24 ? s.slice(0, 21) + "..." : s);
  const width = Math.max(8, ...cols.map((c) => short(c).length));
  const rowWidth = Math.max(...rows.map((r) => short(r).length));
  const lines = [" ".repeat(rowWidth) + "  " + cols.map((c) => short(c).padStart(width)).join("  ")];
  rows.forEach((r, i) => {
    const cells = cols.map((_, j) => values[i * cols.length + j].toFixed(4).padStart(width));
    lines.push(short(r).padEnd(rowWidth) + "  " + cells.join("  "));
  });
  return lines;
}

type Row = { kind: string; key: string; index: number; label: string | null; caption: string | null };

function writeRows(out: ArrowFileStream, rows: Row[], embeddings: Float32Array, dim: number): void {
  if (rows.length === 0) return;
  out.write({
    kind: rows.map((r) => r.kind),
    key: rows.map((r) => r.key),
    index: Int32Array.from(rows, (r) => r.index),
    label: rows.map((r) => r.label),
    caption: rows.map((r) => r.caption),
    embedding: vectorColumn(embeddings, dim),
  });
}

export async function embedCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: "string" },
      config: { type: "string" },
      image: { type: "string", multiple: true },
      text: { type: "string", multiple: true },
      out: { type: "string" },
      limit: { type: "string" },
      truncate: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      ...DATA_OPTIONS,
      ...SHARD_OPTION,
      ...ENGINE_OPTION,
    },
    strict: true,
    allowPositionals: false,
  });
  if (!values.checkpoint) throw new UsageError(`--checkpoint is required\n${EMBED_USAGE}`);
  if (!values.out) throw new UsageError(`--out is required\n${EMBED_USAGE}`);
  if (!values.out.endsWith(".arrow")) throw new UsageError(`--out must name a .arrow file, got ${values.out}`);
  const images = values.image ?? [];
  const texts = values.text ?? [];
  const fromData = values.data !== undefined || values["data-dir"] !== undefined;
  if (fromData && images.length + texts.length > 0) throw new UsageError("give --data or --image/--text, not both");
  if (!fromData && images.length + texts.length === 0) throw new UsageError(`give --data SPEC, or at least one --image or --text\n${EMBED_USAGE}`);
  if (!fromData && (values.shard !== undefined || values.limit !== undefined || values.engine !== undefined || values.quantize !== undefined)) throw new UsageError("--shard, --limit, --engine and --quantize apply to --data");

  if (fromData) checkEngineFlags(values);
  const ds = fromData ? await openDataFromFlags(values, { split: "test" }) : undefined;
  await startBackend(io);
  const clip = await loadCheckpoint(values.checkpoint, { config: values.config });
  try {
    if (!ds) return await embedInputs(clip, images, texts, values, io);
    const engine = await engineFromFlags(clip, values, io);
    try {
      return await embedDataset(clip, engine, ds, values, io);
    } finally {
      engine.dispose();
    }
  } finally {
    clip.dispose();
  }
}

async function embedDataset(
  clip: Clip,
  engine: EmbeddingEngine,
  ds: Awaited<ReturnType<typeof openDataFromFlags>>,
  values: { out?: string; limit?: string; shard?: string; json?: boolean; "skip-bad-images"?: boolean },
  io: CliIO,
): Promise<number> {
  const shard = shardFromFlags(values.shard);
  const limit = intOption("limit", values.limit);
  const transform = modelTransform(clip.config);
  const skips = new SkipLog();
  const progress = new ProgressLine(io, Boolean(process.stderr.isTTY));
  const out = new ArrowFileStream(values.out!);
  const names = ds.classNames;
  const started = performance.now();
  let imageSeconds = 0;
  let textSeconds = 0;
  let nImages = 0;
  let nTexts = 0;
  let dim = clip.config.embed_dim;
  try {
    const stream = preparedStream(ds, transform, {
      shard,
      limit,
      skipBadImages: values["skip-bad-images"],
      onSkip: (s) => {
        skips.onSkip(s);
        io.err(`skipped ${s.key}: ${s.reason}`);
      },
    });
    // tfjs batches come from the config's memory budget; other engines take the image batch size they are fastest at.
    const target = engine.name === "tfjs" ? clip : engine;
    const batches = encodeImageBatches(target, stream, { mean: transform.mean, std: transform.std })[Symbol.asyncIterator]();
    for (;;) {
      const t0 = performance.now();
      const next = await batches.next();
      imageSeconds += (performance.now() - t0) / 1000;
      if (next.done) break;
      const { features, rows, size } = next.value;
      dim = features.length / size;
      const labelOf = (i: number) => (rows.labels[i] >= 0 && names ? names[rows.labels[i]] : null);
      writeRows(out, rows.keys.map((key, i) => ({ kind: "image", key, index: rows.indices[i], label: labelOf(i), caption: null })), features, dim);
      const captionRows: Row[] = [];
      rows.captions.forEach((list, i) => list.forEach((caption) => captionRows.push({ kind: "text", key: rows.keys[i], index: rows.indices[i], label: labelOf(i), caption })));
      if (captionRows.length) {
        const t1 = performance.now();
        const captions = captionRows.map((r) => r.caption!);
        const f = engine.name === "tfjs" ? encodeTexts(clip, captions) : await encodeTextsWith(engine, captions, { batchSize: 16 });
        textSeconds += (performance.now() - t1) / 1000;
        writeRows(out, captionRows, f.values, f.dim);
      }
      nImages += size;
      nTexts += captionRows.length;
      progress.update(`embedded ${nImages} images, ${nTexts} captions of ${ds.spec}${ds.size ? ` (${ds.size} items)` : ""}`);
    }
    if (nImages === 0) throw new Error(`${ds.spec}: no images to embed${shard ? ` in shard ${shard.index}/${shard.count}` : ""}`);
    await out.close();
  } catch (err) {
    await out.abort();
    throw err;
  }
  progress.done();
  const seconds = (performance.now() - started) / 1000;
  io.out(`wrote ${nImages} image and ${nTexts} caption embeddings of dimension ${dim} to ${values.out}${skips.count ? `; skipped ${skips.count} unreadable images` : ""}`);
  if (values.json) {
    io.out(
      JSON.stringify({
        out: values.out,
        images: nImages,
        texts: nTexts,
        dim,
        engine: engine.name,
        imagesPerSecond: nImages / imageSeconds,
        textsPerSecond: nTexts ? nTexts / textSeconds : 0,
        seconds,
        peakRssMiB: process.resourceUsage().maxRSS / 1024,
        skipped: skips.count,
        skippedItems: skips.items,
      }),
    );
  }
  return 0;
}

async function embedInputs(clip: Clip, images: string[], texts: string[], values: { out?: string; truncate?: boolean; json?: boolean }, io: CliIO): Promise<number> {
  const dim = clip.config.embed_dim;
  let imageFeatures: Float32Array = new Float32Array(0);
  let textFeatures: Float32Array = new Float32Array(0);
  if (images.length) {
    const pixels = await loadImages(images, clip.config.vision_cfg.image_size, modelTransform(clip.config));
    try {
      imageFeatures = tf.tidy(() => clip.encodeImage(pixels).dataSync() as Float32Array); // [I, D]
    } finally {
      pixels.dispose();
    }
  }
  if (texts.length) {
    const ctx = clip.config.text_cfg.context_length;
    textFeatures = encodeTexts(clip, texts, { tokenizer: (t) => tokenize(t, { contextLength: ctx, truncate: values.truncate }) }).values; // [T, D]
  }
  const out = new ArrowFileStream(values.out!);
  try {
    const rows: Row[] = [
      ...images.map((key, index) => ({ kind: "image", key, index, label: null, caption: null })),
      ...texts.map((caption, index) => ({ kind: "text", key: caption, index, label: null, caption })),
    ];
    const all = new Float32Array((images.length + texts.length) * dim);
    all.set(imageFeatures, 0);
    all.set(textFeatures, images.length * dim);
    writeRows(out, rows, all, dim);
    await out.close();
  } catch (err) {
    await out.abort();
    throw err;
  }
  let cosine: Float32Array | undefined;
  if (images.length && texts.length) {
    cosine = tf.tidy(() => {
      const a = tf.tensor2d(imageFeatures, [images.length, dim]);
      const b = tf.tensor2d(textFeatures, [texts.length, dim]);
      const n = (x: tf.Tensor2D) => tf.div(x, tf.norm(x, 2, 1, true));
      return tf.matMul(n(a), n(b), false, true).dataSync() as Float32Array; // [I, T]
    });
    io.out("cosine similarity (rows: images, columns: texts)");
    for (const line of formatMatrix(images, texts, cosine)) io.out(line);
  }
  io.out(`wrote ${images.length + texts.length} embeddings of dimension ${dim} to ${values.out}`);
  if (values.json) {
    const matrix = cosine ? images.map((_, i) => Array.from(cosine!.subarray(i * texts.length, (i + 1) * texts.length))) : [];
    io.out(JSON.stringify({ out: values.out, rows: images.length + texts.length, dim, cosine: matrix }));
  }
  return 0;
}

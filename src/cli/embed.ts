/**
 * `cliplab embed`: image and text embeddings from a checkpoint, written to an Arrow IPC file
 * (kind, source, embedding), with the image-text cosine matrix printed.
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { loadCheckpoint } from "../io/checkpoint";
import { makeTable, vectorColumn, writeArrowFile } from "../io/arrow";
import { loadImages } from "../image/preprocess";
import { tokenize } from "../text/tokenize";
import { CliIO, UsageError } from "./io";
import { startBackend } from "./backend";

export const EMBED_USAGE = `usage: cliplab embed --checkpoint FILE [--config CONFIG] [--image PATH ...] [--text STRING ...] --out FILE.arrow [--truncate] [--json]`;

function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.div(x, tf.norm(x, 2, 1, true)));
}

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

export async function embedCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: "string" },
      config: { type: "string" },
      image: { type: "string", multiple: true },
      text: { type: "string", multiple: true },
      out: { type: "string" },
      truncate: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (!values.checkpoint) throw new UsageError(`--checkpoint is required\n${EMBED_USAGE}`);
  if (!values.out) throw new UsageError(`--out is required\n${EMBED_USAGE}`);
  if (!values.out.endsWith(".arrow")) throw new UsageError(`--out must name a .arrow file, got ${values.out}`);
  const images = values.image ?? [];
  const texts = values.text ?? [];
  if (images.length + texts.length === 0) throw new UsageError(`give at least one --image or --text\n${EMBED_USAGE}`);

  await startBackend(io);
  const clip = await loadCheckpoint(values.checkpoint, { config: values.config });
  try {
    const dim = clip.config.embed_dim;
    let imageEmb: tf.Tensor2D | undefined;
    let textEmb: tf.Tensor2D | undefined;
    if (images.length) {
      const pixels = await loadImages(images, clip.config.vision_cfg.image_size);
      imageEmb = clip.encodeImage(pixels);
      pixels.dispose();
    }
    if (texts.length) {
      const tokens = tokenize(texts, { contextLength: clip.config.text_cfg.context_length, truncate: values.truncate });
      textEmb = clip.encodeText(tokens);
      tokens.dispose();
    }
    const all = new Float32Array((images.length + texts.length) * dim);
    if (imageEmb) all.set(imageEmb.dataSync(), 0);
    if (textEmb) all.set(textEmb.dataSync(), images.length * dim);
    const table = makeTable({
      kind: [...images.map(() => "image"), ...texts.map(() => "text")],
      source: [...images, ...texts],
      embedding: vectorColumn(all, dim),
    });
    writeArrowFile(values.out, table);

    let cosine: Float32Array | undefined;
    if (imageEmb && textEmb) {
      cosine = tf.tidy(() => tf.matMul(l2Normalize(imageEmb!), l2Normalize(textEmb!), false, true).dataSync() as Float32Array);
      io.out("cosine similarity (rows: images, columns: texts)");
      for (const line of formatMatrix(images, texts, cosine)) io.out(line);
    }
    io.out(`wrote ${images.length + texts.length} embeddings of dimension ${dim} to ${values.out}`);
    if (values.json) {
      const matrix = cosine ? images.map((_, i) => Array.from(cosine!.subarray(i * texts.length, (i + 1) * texts.length))) : [];
      io.out(JSON.stringify({ out: values.out, rows: images.length + texts.length, dim, cosine: matrix }));
    }
    tf.dispose([imageEmb, textEmb].filter((t): t is tf.Tensor2D => t !== undefined));
    return 0;
  } finally {
    clip.dispose();
  }
}

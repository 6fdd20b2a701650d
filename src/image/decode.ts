/**
 * Image decoding: `decodeStored` to the stored mode Pillow opens a file in (what CLIP's
 * preprocessing resizes), and `decodeImage` straight to 8-bit RGB (kept for callers that want RGB).
 *
 * CLIP (`_transform` in https://github.com/openai/CLIP/blob/main/clip/clip.py) and open_clip
 * open images with PIL and call `convert("RGB")` after Resize/CenterCrop, so Pillow resizes the
 * image in its stored mode: palette images with NEAREST, RGBA premultiplied, 16-bit grey in 32-bit
 * integers. `decodeStored` decodes with sharp (libvips) and returns the mode Pillow 9.4 would:
 *
 * | file | Pillow 9.4 mode | `StoredImage.mode` |
 * | --- | --- | --- |
 * | grey PNG (2/4/8-bit), grey JPEG | L | "L" |
 * | grey + alpha PNG (8-bit) | LA | "LA" |
 * | 16-bit grey PNG | I (32-bit) | "I;16" (16-bit data; resized as Pillow's "I", clipped at RGB) |
 * | 16-bit grey + alpha PNG | RGBA (high bytes) | "RGBA" |
 * | RGB PNG (8/16-bit: high byte), RGB JPEG, WebP | RGB | "RGB" |
 * | RGBA PNG (8/16-bit), WebP with alpha | RGBA | "RGBA" |
 * | palette PNG (any depth), GIF (first frame) | P | "P" (palette applied) |
 * | 1-bit grey PNG | 1 | "P" with 0/255 grey: "1" is resized with NEAREST, like "P" |
 * | GIF whose colour table is the grey ramp | L | "L" |
 * | CMYK JPEG | CMYK | "RGB" by Pillow's `cmyk2rgb` (Pillow resizes in CMYK, then converts) |
 * | TIFF, AVIF | by bands and depth | "L", "LA", "I;16", "RGB", "RGBA" or "P" |
 *
 * Transparency of palette images (tRNS, a GIF's transparent index) is not applied: Pillow's
 * `convert("RGB")` ignores it, so transparent pixels keep their palette colour (for a GIF's first
 * frame, the transparent index's colour, as Pillow fills the canvas with it).
 *
 * Differences from PIL kept on purpose, and why:
 * - Embedded ICC profiles are ignored (`ignoreIcc`), because PIL's `convert("RGB")` ignores them
 *   too; letting sharp colour-manage would shift pixel values away from what CLIP saw.
 * - EXIF orientation is not applied, because PIL's `Image.open` does not apply it either.
 * - JPEG decoders differ (libjpeg-turbo in both, but builds and IDCT settings vary), so JPEG
 *   pixels may differ from PIL's by a level or so; PNG, GIF and lossless WebP pixels are exact.
 * - Pillow 9.4 opens a 16-bit grey TIFF as "I;16", which its bicubic resize rejects; here it is
 *   resized as "I", like a 16-bit PNG.
 *
 * `decodeImage` (RGB straight away) matches CLIP for RGB and greyscale images (resizing "L" then
 * replicating equals replicating then resizing), not for RGBA, palette or 16-bit files.
 */
import { promises as fs } from "node:fs";
import sharp, { type Metadata } from "sharp";
import { readGifFirstFrame, readPngHeader } from "./sniff";
import type { ImageMode, StoredImage } from "./stored";

/** An 8-bit RGB image: `data` is HWC `[height, width, 3]`, row-major, interleaved. */
export interface RGBImage {
  width: number;
  height: number;
  data: Uint8Array; // [height * width * 3]
}

const FORMATS = "PNG/JPEG/WebP/GIF/TIFF/AVIF";

/**
 * Decode an image file (by path) or encoded bytes to 8-bit RGB.
 * Errors are one line and name the file: a missing file, or data that is not an image.
 */
export async function decodeImage(pathOrBuffer: string | Uint8Array): Promise<RGBImage> {
  let bytes: Uint8Array;
  let name: string;
  if (typeof pathOrBuffer === "string") {
    name = pathOrBuffer;
    bytes = await readImageFile(pathOrBuffer);
  } else if (pathOrBuffer instanceof Uint8Array) {
    name = `<buffer of ${pathOrBuffer.length} bytes>`;
    bytes = pathOrBuffer;
  } else {
    throw new TypeError("decodeImage: expected a file path (string) or encoded bytes (Uint8Array)");
  }
  if (bytes.length === 0) {
    throw new Error(`decodeImage: ${name} is empty, not a ${FORMATS} image`);
  }

  const out = await sharp(bytes, {
    ignoreIcc: true,
    // The default ("warning") rejects files that only trigger decoder warnings, such as PNGs
    // with a slightly wrong sRGB chunk, which PIL opens; still fail on real errors/truncation.
    failOn: "error",
  })
    .removeAlpha()
    .toColourspace("srgb") // greyscale -> 3 equal bands
    .raw({ depth: "uchar" })
    .toUint8Array()
    .catch((err: unknown) => {
      throw new Error(`decodeImage: ${name} is not a ${FORMATS} image or is corrupt (${oneLine(err)})`);
    });

  // sharp may still hand back a Buffer; expose a plain Uint8Array view (no copy) so callers get
  // the documented type and deep-equality against Uint8Arrays works.
  const data = new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength);
  const { width, height, channels } = out.info;
  if (channels !== 3 || data.length !== width * height * 3) {
    // Should not happen after removeAlpha + srgb; guard so callers never get a mis-shaped buffer.
    throw new Error(`decodeImage: ${name} decoded to ${channels} channels, expected 3 (RGB)`);
  }
  return { width, height, data };
}

/**
 * An image that cannot be decoded: `source` is the name given to `decodeStored` (a path, a
 * `shard.tar:key`, a `file#row`), `detail` what was wrong; the message is `source: detail`.
 */
export class ImageDecodeError extends Error {
  override name = "ImageDecodeError";
  constructor(
    readonly source: string,
    readonly detail: string,
  ) {
    super(`${source}: ${detail}`);
  }
}

/** sharp's format names that decodeStored accepts (heif covers AVIF). */
const STORED_FORMATS = ["png", "jpeg", "webp", "gif", "tiff", "heif"];

/** How to get one mode out of sharp: its colourspace and depth, then which bands to keep. */
type Plan =
  | { kind: "L" } // 8-bit grey
  | { kind: "LA" } // 8-bit grey + alpha
  | { kind: "I;16" } // 16-bit grey
  | { kind: "LA16" } // 16-bit grey + alpha -> RGBA, high bytes
  | { kind: "RGB"; wide: boolean } // wide: 16-bit samples, high byte kept
  | { kind: "RGBA"; wide: boolean }
  | { kind: "P" } // palette applied, alpha ignored
  | { kind: "1" } // 1-bit grey -> "P" with 0/255 grey
  | { kind: "GIF"; palette: Uint8Array | null; transparency: number | null; grey: boolean }
  | { kind: "CMYK" };

/**
 * Decodes encoded bytes (PNG, JPEG, WebP, GIF's first frame, TIFF, AVIF) to the mode Pillow 9.4
 * opens the file in (table in the header). `name` only labels errors: empty, truncated, corrupt or
 * non-image bytes reject with a one-line ImageDecodeError `name: what was wrong`.
 */
export async function decodeStored(bytes: Uint8Array, name: string): Promise<StoredImage> {
  if (typeof name !== "string" || name === "") throw new TypeError("decodeStored: name must be a non-empty string (the file, row or key, for errors)");
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`decodeStored: ${name}: bytes must be a Uint8Array of an encoded image`);
  if (bytes.length === 0) throw new ImageDecodeError(name, `empty, not a ${FORMATS} image`);
  const notImage = (err: unknown) => new ImageDecodeError(name, `not a ${FORMATS} image, or corrupt (${oneLine(err)})`);
  const meta = await sharp(bytes, { failOn: "error" })
    .metadata()
    .catch((err: unknown) => {
      throw notImage(err);
    });
  if (!STORED_FORMATS.includes(meta.format)) {
    throw new ImageDecodeError(name, `is ${meta.format}, not one of ${FORMATS}`);
  }
  const plan = planFor(bytes, meta);
  try {
    return await decodeWith(bytes, plan);
  } catch (err) {
    if (err instanceof ImageDecodeError) throw err;
    throw notImage(err);
  }
}

function planFor(bytes: Uint8Array, meta: Metadata): Plan {
  if (meta.format === "png") {
    const h = readPngHeader(bytes);
    if (h) {
      const wide = h.bitDepth === 16;
      switch (h.colourType) {
        case 0:
          return h.bitDepth === 1 ? { kind: "1" } : wide ? { kind: "I;16" } : { kind: "L" };
        case 2:
          return { kind: "RGB", wide };
        case 3:
          return { kind: "P" };
        case 4:
          return wide ? { kind: "LA16" } : { kind: "LA" };
        case 6:
          return { kind: "RGBA", wide };
      }
    }
  }
  if (meta.format === "gif") {
    const g = readGifFirstFrame(bytes);
    return { kind: "GIF", palette: g?.palette ?? null, transparency: g?.transparency ?? null, grey: g?.greyRamp ?? false };
  }
  if (meta.space === "cmyk") return { kind: "CMYK" };
  const wide = meta.depth === "ushort";
  if (meta.isPalette) return { kind: "P" };
  if (meta.space === "b-w" || meta.space === "grey16") {
    if (meta.hasAlpha) return wide ? { kind: "LA16" } : { kind: "LA" };
    return wide ? { kind: "I;16" } : { kind: "L" };
  }
  return meta.hasAlpha ? { kind: "RGBA", wide } : { kind: "RGB", wide };
}

/** Decoded samples with their band count, 8- or 16-bit. */
interface Raw {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array | Uint16Array;
}

async function raw(bytes: Uint8Array, space: "b-w" | "grey16" | "srgb" | "rgb16" | "cmyk"): Promise<Raw> {
  const wide = space === "grey16" || space === "rgb16";
  let pipeline = sharp(bytes, { failOn: "error", ignoreIcc: true });
  // CMYK stays CMYK only if the pipeline never leaves it (else libvips goes through sRGB).
  if (space === "cmyk") pipeline = pipeline.pipelineColourspace("cmyk");
  const { data, info } = await pipeline
    .toColourspace(space)
    .raw({ depth: wide ? "ushort" : "uchar" })
    .toBuffer({ resolveWithObject: true });
  const samples = wide ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { width: info.width, height: info.height, channels: info.channels, data: samples };
}

/** Bands `pick` of every pixel (8-bit, or 16-bit shifted down to its high byte). */
function bands(r: Raw, pick: number[]): Uint8Array {
  const n = r.width * r.height;
  const k = pick.length;
  const out = new Uint8Array(n * k);
  const shift = r.data instanceof Uint16Array ? 8 : 0;
  for (const b of pick) if (b >= r.channels) throw new Error(`decoded ${r.channels} bands, expected at least ${b + 1}`);
  if (shift === 0 && k === r.channels && pick.every((b, j) => b === j)) return (r.data as Uint8Array).slice(); // all bands, in order
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) out[i * k + j] = r.data[i * r.channels + pick[j]] >> shift;
  return out;
}

function stored(r: Raw, mode: ImageMode, data: Uint8Array | Uint16Array): StoredImage {
  return { width: r.width, height: r.height, mode, data };
}

async function decodeWith(bytes: Uint8Array, plan: Plan): Promise<StoredImage> {
  switch (plan.kind) {
    case "L": {
      const r = await raw(bytes, "b-w");
      return stored(r, "L", bands(r, [0]));
    }
    case "LA": {
      const r = await raw(bytes, "srgb"); // b-w output would drop the alpha band
      return stored(r, "LA", bands(r, [0, r.channels - 1]));
    }
    case "I;16": {
      const r = await raw(bytes, "grey16");
      const n = r.width * r.height;
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = r.data[i * r.channels];
      return stored(r, "I;16", out);
    }
    case "LA16": {
      const r = await raw(bytes, "grey16");
      const a = r.channels - 1;
      return stored(r, "RGBA", bands(r, [0, 0, 0, a]));
    }
    case "RGB": {
      const r = await raw(bytes, plan.wide ? "rgb16" : "srgb");
      return stored(r, "RGB", bands(r, [0, 1, 2]));
    }
    case "RGBA": {
      const r = await raw(bytes, plan.wide ? "rgb16" : "srgb");
      return stored(r, "RGBA", bands(r, [0, 1, 2, 3]));
    }
    case "P": {
      const r = await raw(bytes, "srgb");
      return stored(r, "P", bands(r, [0, 1, 2]));
    }
    case "1": {
      const r = await raw(bytes, "b-w");
      return stored(r, "P", bands(r, [0, 0, 0]));
    }
    case "GIF":
      return decodeGif(bytes, plan);
    case "CMYK": {
      const r = await raw(bytes, "cmyk");
      const c = bands(r, [0, 1, 2, 3]);
      const out = new Uint8Array(r.width * r.height * 3);
      for (let i = 0, o = 0; i < c.length; i += 4, o += 3) {
        const nk = 255 - c[i + 3];
        for (let j = 0; j < 3; j++) {
          const t = c[i + j] * nk + 128;
          const v = nk - (((t >> 8) + t) >> 8); // Pillow's cmyk2rgb: nk - MULDIV255(c, nk)
          out[o + j] = v < 0 ? 0 : v;
        }
      }
      return stored(r, "RGB", out);
    }
  }
}

/**
 * A GIF's first frame. libvips hands back RGBA with transparent pixels (and any canvas the frame
 * does not cover) at alpha 0; Pillow fills the canvas with the transparent index (else index 0)
 * before decoding, so those pixels take that palette entry's colour.
 */
async function decodeGif(bytes: Uint8Array, plan: Extract<Plan, { kind: "GIF" }>): Promise<StoredImage> {
  const r = await raw(bytes, "srgb");
  const rgb = bands(r, [0, 1, 2]);
  if (r.channels === 4 || r.channels === 2) {
    const fillIndex = plan.transparency ?? 0;
    const p = plan.palette;
    const fill = p && fillIndex * 3 + 2 < p.length ? [p[fillIndex * 3], p[fillIndex * 3 + 1], p[fillIndex * 3 + 2]] : [fillIndex, fillIndex, fillIndex];
    const a = r.channels - 1;
    for (let i = 0, n = r.width * r.height; i < n; i++) {
      if (r.data[i * r.channels + a] === 0) rgb.set(fill, i * 3);
    }
  }
  if (plan.grey) {
    const l = new Uint8Array(r.width * r.height);
    for (let i = 0; i < l.length; i++) l[i] = rgb[i * 3];
    return stored(r, "L", l);
  }
  return stored(r, "P", rgb);
}

/** Read a file, turning the common failures into one-line messages that name it. */
async function readImageFile(path: string): Promise<Uint8Array> {
  try {
    const buf = await fs.readFile(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength); // view, no copy
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new Error(`decodeImage: file not found: ${path}`);
    if (code === "EISDIR") throw new Error(`decodeImage: ${path} is a directory, not an image file`);
    if (code === "EACCES") throw new Error(`decodeImage: permission denied reading ${path}`);
    throw new Error(`decodeImage: cannot read ${path}: ${oneLine(err)}`);
  }
}

function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/\s*[\r\n]+\s*/g, "; ").replace(/[:;\s]+$/, "").trim();
}

/**
 * A small PNG encoder (8-bit grey, RGB or RGBA, no interlace, filter 0, zlib from node:zlib), so
 * pixels become data URLs synchronously: thumbnails in figures, image blocks in reports.
 * PNG specification: https://www.w3.org/TR/png/
 */
import * as zlib from "node:zlib";

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "ascii");
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const COLOR_TYPE: Record<number, number> = { 1: 0, 3: 2, 4: 6 };

/**
 * Pixels as 8-bit values: a Uint8Array is taken as 0-255; a Float32Array as [0, 1] (clamped,
 * rounded). NaN becomes 0.
 */
export function toBytePixels(pixels: Float32Array | Uint8Array): Uint8Array {
  if (pixels instanceof Uint8Array) return pixels;
  if (!(pixels instanceof Float32Array)) throw new TypeError("toBytePixels: pixels must be a Float32Array in [0, 1] or a Uint8Array in 0-255");
  const out = new Uint8Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    const v = pixels[i];
    out[i] = v > 0 ? (v >= 1 ? 255 : Math.round(v * 255)) : 0;
  }
  return out;
}

/** Encodes row-major HWC pixels (1 = grey, 3 = RGB, 4 = RGBA channels) as a PNG file. */
export function encodePng(pixels: Float32Array | Uint8Array, width: number, height: number, channels: 1 | 3 | 4): Buffer {
  const fn = "encodePng";
  for (const [name, v] of [["width", width], ["height", height]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${fn}: ${name} must be a positive integer, got ${v}`);
  }
  if (!(channels in COLOR_TYPE)) throw new RangeError(`${fn}: channels must be 1, 3 or 4, got ${channels}`);
  const bytes = toBytePixels(pixels);
  const rowBytes = width * channels;
  if (bytes.length !== rowBytes * height) {
    throw new RangeError(`${fn}: pixels has ${bytes.length} values, expected height*width*channels = ${height}*${width}*${channels} = ${rowBytes * height}`);
  }
  const raw = Buffer.alloc((rowBytes + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (rowBytes + 1)] = 0; // filter: none
    raw.set(bytes.subarray(y * rowBytes, (y + 1) * rowBytes), y * (rowBytes + 1) + 1);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = COLOR_TYPE[channels];
  header[10] = 0; // compression
  header[11] = 0; // filter method
  header[12] = 0; // no interlace
  return Buffer.concat([SIGNATURE, chunk("IHDR", header), chunk("IDAT", zlib.deflateSync(raw, { level: 9 })), chunk("IEND", new Uint8Array(0))]);
}

/** `data:image/png;base64,...` of the pixels (see `encodePng`). */
export function pngDataUrl(pixels: Float32Array | Uint8Array, width: number, height: number, channels: 1 | 3 | 4): string {
  return `data:image/png;base64,${encodePng(pixels, width, height, channels).toString("base64")}`;
}

export interface ThumbnailOptions {
  /**
   * Longest side of a thumbnail in pixels: larger images are shrunk by the smallest integer
   * factor that fits, averaging each factor x factor block (a 224 px model input becomes 56 px).
   * Default 64.
   */
  maxSide?: number;
}

/** Averages `factor` x `factor` blocks of one HWC image (edge blocks average what they hold). */
function shrink(src: Uint8Array, height: number, width: number, channels: number, factor: number): { pixels: Uint8Array; height: number; width: number } {
  if (factor === 1) return { pixels: src, height, width };
  const h = Math.ceil(height / factor);
  const w = Math.ceil(width / factor);
  const out = new Uint8Array(h * w * channels);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const y1 = Math.min(height, (y + 1) * factor);
      const x1 = Math.min(width, (x + 1) * factor);
      const count = (y1 - y * factor) * (x1 - x * factor);
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let yy = y * factor; yy < y1; yy++) for (let xx = x * factor; xx < x1; xx++) sum += src[(yy * width + xx) * channels + c];
        out[(y * w + x) * channels + c] = Math.round(sum / count);
      }
    }
  }
  return { pixels: out, height: h, width: w };
}

/**
 * Data URLs of images stored one after another as 8-bit HWC pixels (`height*width*channels`
 * values each: Fashion-MNIST's grey `images`, or a prepared set's RGB model inputs), the ones at
 * `indices`: thumbnails for hover. Images wider than `maxSide` are shrunk (see ThumbnailOptions).
 */
export function imageThumbnails(
  images: Uint8Array,
  height: number,
  width: number,
  channels: 1 | 3,
  indices: ArrayLike<number>,
  opts: ThumbnailOptions = {},
  fn = "imageThumbnails",
): string[] {
  for (const [name, v] of [["height", height], ["width", width]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${fn}: ${name} must be a positive integer, got ${v}`);
  }
  if (channels !== 1 && channels !== 3) throw new RangeError(`${fn}: channels must be 1 (grey) or 3 (RGB), got ${channels}`);
  const maxSide = opts.maxSide ?? 64;
  if (!Number.isInteger(maxSide) || maxSide < 1) throw new RangeError(`${fn}: maxSide must be a positive integer, got ${opts.maxSide}`);
  const factor = Math.ceil(Math.max(height, width) / maxSide);
  const size = height * width * channels;
  const out: string[] = [];
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || (i + 1) * size > images.length) {
      throw new RangeError(`${fn}: image index ${i} is outside the ${Math.floor(images.length / size)} images given`);
    }
    const t = shrink(images.subarray(i * size, (i + 1) * size), height, width, channels, factor);
    out.push(pngDataUrl(t.pixels, t.width, t.height, channels));
  }
  return out;
}

/** `imageThumbnails` of grey images (e.g. Fashion-MNIST's `images`), kept at their size up to 64 px. */
export function greyThumbnails(images: Uint8Array, height: number, width: number, indices: ArrayLike<number>): string[] {
  return imageThumbnails(images, height, width, 1, indices, {}, "greyThumbnails");
}

/**
 * Image decoding to 8-bit RGB, the input format of CLIP's preprocessing.
 *
 * CLIP (`_transform` in https://github.com/openai/CLIP/blob/main/clip/clip.py) opens images with
 * PIL and calls `image.convert("RGB")`. That conversion drops an alpha channel without blending it
 * onto any background, and expands greyscale to three equal channels. We decode with sharp
 * (libvips) and do the same: remove alpha, convert to sRGB band layout, 8 bits per channel.
 *
 * Differences from PIL kept on purpose, and why:
 * - Embedded ICC profiles are ignored (`ignoreIcc`), because PIL's `convert("RGB")` ignores them
 *   too; letting sharp colour-manage would shift pixel values away from what CLIP saw.
 * - EXIF orientation is not applied, because PIL's `Image.open` does not apply it either.
 * - JPEG decoders differ (libjpeg-turbo in both, but builds and IDCT settings vary), so JPEG
 *   pixels may differ from PIL's by a level or so; PNG pixels are exact.
 * - CLIP converts to RGB AFTER Resize/CenterCrop, so PIL resizes RGBA images premultiplied and
 *   palette images with NEAREST. Decoding straight to RGB matches CLIP for RGB and greyscale
 *   images (resizing "L" then replicating equals replicating then resizing), not for those.
 * - 16-bit images are scaled to 8 bits by libvips; PIL's handling of 16-bit modes differs.
 */
import { promises as fs } from "node:fs";
import sharp from "sharp";

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

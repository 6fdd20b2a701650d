/**
 * What a PNG or GIF header says about the mode Pillow opens it in, read from the bytes
 * (libvips' metadata does not carry these distinctions).
 *
 * - PNG (https://www.w3.org/TR/png/#11IHDR): bit depth and colour type from IHDR; Pillow 9.4's
 *   `PngImagePlugin._MODES` maps them to a mode ("I" for 16-bit grey, "RGBA" for 16-bit grey +
 *   alpha, "1" for 1-bit grey, "P" for every palette depth).
 * - GIF (https://www.w3.org/Graphics/GIF/spec-gif89a.txt): the first frame's colour table (local,
 *   else global) and its transparent index (the Graphic Control Extension before the first image).
 *   Pillow 9.4's `GifImagePlugin` opens the frame as "L" when that table is the grey ramp
 *   (entry i = (i, i, i) for every entry), as "P" otherwise, and fills the canvas with the
 *   transparent index (or 0) before decoding, so transparent pixels take that entry's colour.
 */

export interface PngHeader {
  bitDepth: number;
  colourType: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** IHDR's bit depth and colour type, or null when `bytes` does not start like a PNG. */
export function readPngHeader(bytes: Uint8Array): PngHeader | null {
  if (bytes.length < 33) return null;
  for (let i = 0; i < 8; i++) if (bytes[i] !== PNG_SIGNATURE[i]) return null;
  // length (4) + "IHDR" at 12..15, then width (4), height (4), bit depth, colour type.
  if (bytes[12] !== 0x49 || bytes[13] !== 0x48 || bytes[14] !== 0x44 || bytes[15] !== 0x52) return null;
  return { bitDepth: bytes[24], colourType: bytes[25] };
}

export interface GifFirstFrame {
  /** The first frame's colour table (RGB triples), or null when the file has none. */
  palette: Uint8Array | null;
  /** True when that table is the grey ramp, so Pillow opens the frame as "L". */
  greyRamp: boolean;
  /** Transparent colour index of the first frame, if any. */
  transparency: number | null;
}

/** The first frame's palette facts, or null when the header cannot be walked to the first image. */
export function readGifFirstFrame(bytes: Uint8Array): GifFirstFrame | null {
  if (bytes.length < 13 || bytes[0] !== 0x47 || bytes[1] !== 0x49 || bytes[2] !== 0x46) return null; // "GIF"
  const flags = bytes[10];
  let pos = 13;
  let global: Uint8Array | null = null;
  if (flags & 0x80) {
    const size = 3 << ((flags & 7) + 1);
    global = bytes.subarray(pos, pos + size);
    pos += size;
  }
  let transparency: number | null = null;
  while (pos < bytes.length) {
    const block = bytes[pos];
    if (block === 0x21) {
      // Extension: label, then sub-blocks until a zero length.
      const label = bytes[pos + 1];
      if (label === 0xf9 && bytes[pos + 2] >= 4) {
        const packed = bytes[pos + 3];
        transparency = packed & 1 ? bytes[pos + 6] : null;
      }
      let p = pos + 2;
      while (p < bytes.length && bytes[p] !== 0) p += bytes[p] + 1;
      pos = p + 1;
    } else if (block === 0x2c) {
      const imageFlags = bytes[pos + 9];
      let palette = global;
      if (imageFlags & 0x80) palette = bytes.subarray(pos + 10, pos + 10 + (3 << ((imageFlags & 7) + 1)));
      return { palette, greyRamp: palette === null || isGreyRamp(palette), transparency };
    } else {
      return null;
    }
  }
  return null;
}

/** Pillow's `_is_palette_needed` negated: every entry i is (i, i, i). */
function isGreyRamp(p: Uint8Array): boolean {
  for (let i = 0; i + 2 < p.length; i += 3) {
    const idx = i / 3;
    if (p[i] !== idx || p[i + 1] !== idx || p[i + 2] !== idx) return false;
  }
  return true;
}

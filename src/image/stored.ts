/**
 * An image as Pillow opens it: in its stored mode, before any conversion to RGB.
 *
 * OpenAI's and open_clip's transforms resize and crop the image in that mode and convert to RGB
 * last (`_convert_image_to_rgb` after `CenterCrop`), so the mode decides how pixels are resampled:
 * palette images with nearest neighbour, images with alpha premultiplied (transparent pixels go
 * black), 16-bit grey in 32-bit integers and clipped to 255 at the conversion. Keeping the mode
 * lets `preprocessStored` match Pillow on exactly those files.
 */

/** Pillow's mode names for the layouts we keep. */
export type ImageMode = "L" | "LA" | "RGB" | "RGBA" | "P" | "I;16";

/** Interleaved channels per mode. A palette image ("P") is stored with its palette applied (RGB). */
export const MODE_CHANNELS: Readonly<Record<ImageMode, number>> = Object.freeze({
  L: 1,
  LA: 2,
  RGB: 3,
  RGBA: 4,
  P: 3,
  "I;16": 1,
});

export interface StoredImage {
  width: number;
  height: number;
  mode: ImageMode;
  /**
   * HWC, row-major, `height * width * MODE_CHANNELS[mode]` values: 8-bit (`Uint8Array`) for every
   * mode but "I;16", which holds 16-bit grey in a `Uint16Array`.
   */
  data: Uint8Array | Uint16Array;
}

/** Throws (one line, prefixed by `what`) unless `img` is a well-formed StoredImage. */
export function checkStoredImage(img: StoredImage, what = "image"): void {
  if (img === null || typeof img !== "object") throw new TypeError(`${what}: expected {width, height, mode, data}`);
  const { width, height, mode, data } = img;
  if (!Number.isInteger(width) || width < 1 || !Number.isInteger(height) || height < 1) {
    throw new RangeError(`${what}: size must be positive integers, got ${String(width)}x${String(height)}`);
  }
  const channels = MODE_CHANNELS[mode];
  if (channels === undefined) throw new RangeError(`${what}: mode ${JSON.stringify(mode)} is not one of ${Object.keys(MODE_CHANNELS).join(", ")}`);
  const want = mode === "I;16" ? "Uint16Array" : "Uint8Array";
  const ok = mode === "I;16" ? data instanceof Uint16Array : data instanceof Uint8Array;
  if (!ok || data.length !== width * height * channels) {
    throw new RangeError(`${what}: data must be a ${want} of ${width}*${height}*${channels} values for mode ${mode}, got ${data?.length}`);
  }
}

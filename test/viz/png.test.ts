/** The PNG encoder: sharp decodes what it writes back to the same pixels. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import sharp from "sharp";
import { encodePng, greyThumbnails, pngDataUrl, toBytePixels } from "../../src/viz/png";
import { assertThrowsOneLine } from "../helpers/errors";

/** Decoded pixels with the channel count the file declares (sharp's raw output of grey is RGB). */
async function decode(png: Buffer): Promise<{ data: Buffer; info: { width: number; height: number; channels: number } }> {
  const meta = await sharp(png).metadata();
  const img = meta.channels === 1 ? sharp(png).extractChannel(0) : sharp(png);
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  return { data, info: { width: info.width, height: info.height, channels: meta.channels! } };
}

describe("encodePng", () => {
  it("round-trips grey and RGB pixels through sharp", async () => {
    const grey = Uint8Array.from({ length: 5 * 7 }, (_, i) => (i * 37) % 256);
    const g = await decode(encodePng(grey, 7, 5, 1));
    assert.deepEqual([g.info.width, g.info.height, g.info.channels], [7, 5, 1]);
    assert.deepEqual([...g.data], [...grey]);

    const rgb = Uint8Array.from({ length: 3 * 4 * 3 }, (_, i) => (i * 53 + 11) % 256);
    const c = await decode(encodePng(rgb, 4, 3, 3));
    assert.deepEqual([c.info.width, c.info.height, c.info.channels], [4, 3, 3]);
    assert.deepEqual([...c.data], [...rgb]);
  });

  it("maps [0, 1] floats to bytes, clamping and rounding", async () => {
    assert.deepEqual([...toBytePixels(new Float32Array([-1, 0, 0.5, 1, 2, NaN]))], [0, 0, 128, 255, 255, 0]);
    const png = encodePng(new Float32Array([0, 0.25, 0.75, 1]), 2, 2, 1);
    assert.deepEqual([...(await decode(png)).data], [0, 64, 191, 255]);
  });

  it("makes data URLs and thumbnails", async () => {
    const url = pngDataUrl(new Uint8Array([1, 2, 3, 4]), 2, 2, 1);
    assert.match(url, /^data:image\/png;base64,[A-Za-z0-9+/=]+$/);
    const images = Uint8Array.from({ length: 3 * 4 }, (_, i) => i * 10); // three 2x2 images
    const [second] = greyThumbnails(images, 2, 2, [1]);
    const back = await decode(Buffer.from(second.split(",")[1], "base64"));
    assert.deepEqual([...back.data], [40, 50, 60, 70]);
    assertThrowsOneLine(() => greyThumbnails(images, 2, 2, [3]), /^greyThumbnails: image index 3 is outside the 3 images given$/);
  });

  it("rejects wrong sizes in one line", () => {
    assertThrowsOneLine(() => encodePng(new Uint8Array(5), 2, 2, 1), /^encodePng: pixels has 5 values, expected .* = 4$/);
    assertThrowsOneLine(() => encodePng(new Uint8Array(4), 0, 2, 1), /^encodePng: width must be a positive integer, got 0$/);
    assertThrowsOneLine(() => encodePng(new Uint8Array(4), 2, 2, 2 as 1), /^encodePng: channels must be 1, 3 or 4, got 2$/);
  });
});

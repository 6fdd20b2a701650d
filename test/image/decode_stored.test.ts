/**
 * decodeStored on files written by sharp in the test (16-bit PNG, TIFF, AVIF, SVG, broken bytes);
 * the Pillow-made fixture files are covered by pillow_fixture.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import sharp from "sharp";
import { decodeStored, ImageDecodeError } from "../../src/image/decode";

const ramp = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

test("16-bit RGB PNG -> 'RGB' with the high byte of each sample (Pillow's RGB;16B)", async () => {
  const w = 3, h = 2;
  const raw = Uint16Array.from(ramp(w * h * 3, (i) => i * 3001 + 255));
  const png = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).toColourspace("rgb16").png().toBuffer();
  assert.equal(png[24], 16, "the file is 16-bit");
  const img = await decodeStored(new Uint8Array(png), "rgb16.png");
  assert.equal(img.mode, "RGB");
  assert.deepEqual([...img.data], [...raw].map((v) => v >> 8));
});

test("16-bit grey PNG -> 'I;16' with every bit; 16-bit grey + alpha -> 'RGBA' high bytes (Pillow's LA;16B)", async () => {
  const grey = Uint16Array.from([0, 1, 255, 256, 40000, 65535]);
  const png = await sharp(grey, { raw: { width: 3, height: 2, channels: 1 } }).toColourspace("grey16").png().toBuffer();
  const img = await decodeStored(new Uint8Array(png), "g16.png");
  assert.equal(img.mode, "I;16");
  assert.ok(img.data instanceof Uint16Array);
  assert.deepEqual([...img.data], [...grey]);

  const la = Uint16Array.from([1000, 65535, 30000, 0, 65535, 32768, 513, 256]);
  const png2 = await sharp(la, { raw: { width: 2, height: 2, channels: 2 } }).toColourspace("grey16").png().toBuffer();
  assert.deepEqual([png2[24], png2[25]], [16, 4], "16-bit grey + alpha");
  const img2 = await decodeStored(new Uint8Array(png2), "la16.png");
  assert.equal(img2.mode, "RGBA");
  const want: number[] = [];
  for (let i = 0; i < 4; i++) want.push(la[2 * i] >> 8, la[2 * i] >> 8, la[2 * i] >> 8, la[2 * i + 1] >> 8);
  assert.deepEqual([...img2.data], want);
});

test("palette PNG -> 'P' with the palette applied; 8-bit grey + alpha -> 'LA'", async () => {
  const rgb = Uint8Array.from(ramp(8 * 8 * 3, (i) => [0, 255, 128][((i / 3) | 0) % 3]));
  const png = await sharp(rgb, { raw: { width: 8, height: 8, channels: 3 } }).png({ palette: true, colours: 4, dither: 0 }).toBuffer();
  assert.equal(png[25], 3, "colour type 3 (palette)");
  const img = await decodeStored(new Uint8Array(png), "pal.png");
  assert.equal(img.mode, "P");
  assert.deepEqual([...img.data], [...rgb]);
  const la = Uint8Array.from([10, 0, 20, 128, 30, 255, 40, 7]);
  const png2 = await sharp(la, { raw: { width: 2, height: 2, channels: 2 } }).toColourspace("b-w").png().toBuffer();
  const img2 = await decodeStored(new Uint8Array(png2), "la.png");
  assert.equal(img2.mode, "LA");
  assert.deepEqual([...img2.data], [...la]);
});

test("TIFF (16-bit grey, RGB) and AVIF decode by their bands", async () => {
  const grey = Uint16Array.from([5, 500, 50000, 65535]);
  const tif = await sharp(grey, { raw: { width: 2, height: 2, channels: 1 } }).toColourspace("grey16").tiff({ compression: "lzw" }).toBuffer();
  const t16 = await decodeStored(new Uint8Array(tif), "g16.tif");
  assert.equal(t16.mode, "I;16");
  assert.deepEqual([...t16.data], [...grey]);
  const rgb = Uint8Array.from(ramp(4 * 4 * 3, (i) => (i * 17) % 256));
  const tif2 = await sharp(rgb, { raw: { width: 4, height: 4, channels: 3 } }).tiff({ compression: "lzw" }).toBuffer();
  const trgb = await decodeStored(new Uint8Array(tif2), "rgb.tif");
  assert.equal(trgb.mode, "RGB");
  assert.deepEqual([...trgb.data], [...rgb]);
  const avif = await sharp(rgb, { raw: { width: 4, height: 4, channels: 3 } }).avif({ lossless: true }).toBuffer();
  const a = await decodeStored(new Uint8Array(avif), "rgb.avif");
  assert.equal(a.mode, "RGB");
  assert.equal(a.data.length, 48);
});

async function rejectsOneLine(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ImageDecodeError, String(err));
    assert.ok(!err.message.includes("\n"), `one line: ${err.message}`);
    assert.match(err.message, re);
    assert.equal(err.message, `${err.source}: ${err.detail}`);
    return true;
  });
}

test("empty, text, truncated and SVG bytes: one-line ImageDecodeError naming the item", async () => {
  await rejectsOneLine(decodeStored(new Uint8Array(0), "shard-0.tar:000017"), /^shard-0\.tar:000017: empty, not a PNG\/JPEG\/WebP\/GIF\/TIFF\/AVIF image$/);
  await rejectsOneLine(decodeStored(new TextEncoder().encode("hello, not an image\n"), "data.csv:3"), /^data\.csv:3: not a PNG\/JPEG\/WebP\/GIF\/TIFF\/AVIF image, or corrupt \(.+\)$/);
  const png = await sharp(Uint8Array.from(ramp(64 * 64 * 3, (i) => (i * 31) % 256)), { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
  await rejectsOneLine(decodeStored(new Uint8Array(png.subarray(0, png.length >> 1)), "photos/cat.png"), /^photos\/cat\.png: not a PNG\/JPEG.* image, or corrupt/);
  const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>');
  await rejectsOneLine(decodeStored(svg, "icon.svg"), /^icon\.svg: is svg, not one of PNG\/JPEG\/WebP\/GIF\/TIFF\/AVIF$/);
  await assert.rejects(decodeStored("x.png" as never, "x.png"), /decodeStored: x\.png: bytes must be a Uint8Array/);
});

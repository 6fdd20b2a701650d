/**
 * decodeImage: PNGs written with sharp into a temp dir, decoded back to RGB HWC uint8.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { decodeImage } from "../../src/image/decode";

let dir = "";
before(() => {
  dir = mkdtempSync(join(tmpdir(), "cliplab-decode-"));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function pixels(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 37 + seed * 11 + ((i * i) >> 3)) & 255);
}

test("RGB PNG: pixels round-trip exactly, width and height right for non-square", async () => {
  const w = 7, h = 5;
  const rgb = pixels(w * h * 3, 1);
  const path = join(dir, "rgb.png");
  await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path);
  const img = await decodeImage(path);
  assert.equal(img.width, w);
  assert.equal(img.height, h);
  assert.ok(img.data instanceof Uint8Array && !Buffer.isBuffer(img.data), "plain Uint8Array");
  assert.deepEqual(img.data, rgb);
  // Encoded bytes decode the same as the file.
  const fromBytes = await decodeImage(new Uint8Array(readFileSync(path)));
  assert.deepEqual(fromBytes, img);
});

test("greyscale PNG: three equal channels", async () => {
  const w = 4, h = 3;
  const grey = pixels(w * h, 2);
  const path = join(dir, "grey.png");
  await sharp(grey, { raw: { width: w, height: h, channels: 1 } }).toColourspace("b-w").png().toFile(path);
  assert.equal((await sharp(path).metadata()).channels, 1, "the file really is single-channel");
  const img = await decodeImage(path);
  assert.equal(img.data.length, w * h * 3);
  for (let i = 0; i < w * h; i++) assert.deepEqual([...img.data.subarray(i * 3, i * 3 + 3)], [grey[i], grey[i], grey[i]]);
});

test("RGBA PNG: alpha dropped without blending (PIL convert('RGB'))", async () => {
  const w = 3, h = 2;
  const rgba = pixels(w * h * 4, 3);
  for (let i = 0; i < w * h; i++) rgba[i * 4 + 3] = [0, 1, 128, 255, 17, 0][i]; // incl. fully transparent
  const path = join(dir, "rgba.png");
  await sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).png().toFile(path);
  assert.equal((await sharp(path).metadata()).channels, 4);
  const img = await decodeImage(path);
  const want = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) want.set(rgba.subarray(i * 4, i * 4 + 3), i * 3);
  assert.deepEqual(img.data, want);
});

test("greyscale + alpha PNG: grey replicated, alpha dropped", async () => {
  const ga = new Uint8Array([0, 0, 90, 10, 200, 255, 255, 0]);
  const path = join(dir, "ga.png");
  await sharp(ga, { raw: { width: 2, height: 2, channels: 2 } }).toColourspace("b-w").png().toFile(path);
  assert.equal((await sharp(path).metadata()).channels, 2);
  const img = await decodeImage(path);
  assert.deepEqual([...img.data], [0, 0, 0, 90, 90, 90, 200, 200, 200, 255, 255, 255]);
});

test("a text file: one-line error naming the file and saying it is not an image", async () => {
  const path = join(dir, "notes.txt");
  writeFileSync(path, "hello\nthis is not an image\n");
  await assert.rejects(decodeImage(path), (err: Error) => {
    assert.ok(err.message.includes(path), err.message);
    assert.match(err.message, /is not a PNG\/JPEG\/.* image/);
    assert.ok(!err.message.includes("\n"), "one line");
    return true;
  });
  await assert.rejects(decodeImage(new Uint8Array([1, 2, 3])), /<buffer of 3 bytes> is not a PNG\/JPEG/);
  await assert.rejects(decodeImage(new Uint8Array(0)), /empty, not a PNG\/JPEG/);
});

test("a truncated PNG is rejected", async () => {
  const png = await sharp(pixels(64 * 64 * 3, 4), { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
  const path = join(dir, "truncated.png");
  writeFileSync(path, png.subarray(0, Math.floor(png.length / 2)));
  await assert.rejects(decodeImage(path), (err: Error) => err.message.includes(path) && !err.message.includes("\n"));
});

test("missing file and directory: one-line errors naming them", async () => {
  const missing = join(dir, "nope", "missing.png");
  await assert.rejects(decodeImage(missing), (err: Error) => {
    assert.equal(err.message, `decodeImage: file not found: ${missing}`);
    return true;
  });
  const sub = join(dir, "adir");
  mkdirSync(sub);
  await assert.rejects(decodeImage(sub), /is a directory/);
});

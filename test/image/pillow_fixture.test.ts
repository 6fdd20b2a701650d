/**
 * decodeStored + preprocessStored (and the augmentation's crop and colour functions) against
 * Pillow 9.4 + torchvision 0.14 on the committed fixture test/fixtures/pillow (made by
 * scripts/fixtures/pillow_preprocess.py; see its README).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import { decodeImage, decodeStored } from "../../src/image/decode";
import { preprocessImage, preprocessStored } from "../../src/image/preprocess";
import { resolveTransform, type Interpolation, type ResizeMode } from "../../src/image/transform";
import { resizedCrop } from "../../src/image/augment";
import { adjustBrightness, adjustContrast, adjustHue, adjustSaturation, toGrayscale } from "../../src/image/colour";
import type { StoredImage } from "../../src/image/stored";

const DIR = path.join(__dirname, "..", "fixtures", "pillow");
interface Case {
  name: string;
  input: string;
  opened_mode: string;
  op: { kind: string; size?: number; interpolation?: Interpolation; fill?: number; top?: number; left?: number; height?: number; width?: number; factor?: number; base?: string };
  height: number;
  width: number;
  offset: number;
  length: number;
}
const meta = JSON.parse(fs.readFileSync(path.join(DIR, "expected.json"), "utf8")) as { inputs: Record<string, { opened_mode: string; sha256: string; width: number; height: number }>; expected_sha256: string; cases: Case[] };
const blob = new Uint8Array(gunzipSync(fs.readFileSync(path.join(DIR, "expected.bin.gz"))));
const expected = (c: Case): Uint8Array => blob.subarray(c.offset, c.offset + c.length);

/** Lossy decoders may differ between libjpeg-turbo builds; CMYK is converted before the resize here. */
function tolerance(input: string): number {
  if (input === "cmyk.jpg") return 1; // Pillow resizes in CMYK and converts after; we convert at decode
  if (input.endsWith(".jpg")) return 2; // sharp's libjpeg-turbo vs Debian's: IDCT/upsampling code paths may differ
  return 0;
}

const decoded = new Map<string, StoredImage>();
async function stored(name: string): Promise<StoredImage> {
  let img = decoded.get(name);
  if (!img) {
    img = await decodeStored(new Uint8Array(fs.readFileSync(path.join(DIR, name))), name);
    decoded.set(name, img);
  }
  return img;
}

function maxDiff(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length, "length");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test("fixture files are the ones expected.json describes", () => {
  assert.equal(createHash("sha256").update(blob).digest("hex"), meta.expected_sha256);
  for (const [name, info] of Object.entries(meta.inputs)) {
    assert.equal(createHash("sha256").update(fs.readFileSync(path.join(DIR, name))).digest("hex"), info.sha256, name);
  }
  assert.ok(meta.cases.length >= 60);
});

const MODE_FOR: Record<string, string> = { L: "L", LA: "LA", RGB: "RGB", RGBA: "RGBA", P: "P", I: "I;16", "1": "P", CMYK: "RGB" };

test("decodeStored opens every fixture in the mode Pillow did (I -> I;16, 1 -> P, CMYK -> RGB)", async () => {
  for (const [name, info] of Object.entries(meta.inputs)) {
    const img = await stored(name);
    assert.equal(img.mode, MODE_FOR[info.opened_mode], `${name}: Pillow opened ${info.opened_mode}`);
    assert.deepEqual([img.width, img.height], [info.width, info.height], name);
  }
});

for (const c of meta.cases.filter((c) => ["shortest", "squash", "longest"].includes(c.op.kind))) {
  test(`preprocessStored = Pillow: ${c.name}${tolerance(c.input) ? ` (within ${tolerance(c.input)})` : " (exact)"}`, async () => {
    const t = resolveTransform(c.op.size!, { interpolation: c.op.interpolation, resize_mode: c.op.kind as ResizeMode, fill_color: c.op.fill ?? 0 });
    const got = preprocessStored(await stored(c.input), t);
    assert.equal(got.length, c.height * c.width * 3);
    const d = maxDiff(got, expected(c));
    assert.ok(d <= tolerance(c.input), `max |diff| ${d}`);
  });
}

for (const c of meta.cases.filter((c) => c.op.kind === "resized_crop")) {
  test(`resizedCrop (RandomResizedCrop's resampling) = torchvision F.resized_crop: ${c.name}`, async () => {
    const { top, left, height, width, size } = c.op as Required<Case["op"]>;
    const got = resizedCrop(await stored(c.input), { top, left, height, width }, size);
    assert.equal(maxDiff(got, expected(c)), 0);
  });
}

const COLOUR: Record<string, (rgb: Uint8Array, f: number) => Uint8Array> = {
  brightness: adjustBrightness,
  contrast: adjustContrast,
  saturation: adjustSaturation,
  hue: adjustHue,
  grayscale: (rgb) => toGrayscale(rgb),
};
for (const c of meta.cases.filter((c) => c.op.kind in COLOUR)) {
  test(`colour: ${c.op.kind}${c.op.factor === undefined ? "" : ` ${c.op.factor}`} = torchvision on PIL`, () => {
    const base = meta.cases.find((b) => b.name === c.op.base)!;
    const got = COLOUR[c.op.kind](expected(base).slice(), c.op.factor ?? 0);
    assert.equal(maxDiff(got, expected(c)), 0);
  });
}

test("the fixture tells the orders apart: convert-first (decodeImage + preprocessImage) differs on RGBA, palette and 16-bit files", async () => {
  const t = resolveTransform(24, {});
  for (const name of ["rgba.png", "grey16.png", "palette.png"]) {
    const c = meta.cases.find((x) => x.name === `${name} shortest bicubic 24`)!;
    const rgbFirst = preprocessImage(await decodeImage(new Uint8Array(fs.readFileSync(path.join(DIR, name)))), 24, { mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] });
    const storedFirst = preprocessStored(await stored(name), t);
    assert.equal(maxDiff(storedFirst, expected(c)), 0, name);
    const asU8 = Uint8Array.from(rgbFirst, (v) => Math.round(v));
    assert.ok(maxDiff(asU8, expected(c)) > 10, `${name}: converting to RGB first should differ visibly`);
  }
});

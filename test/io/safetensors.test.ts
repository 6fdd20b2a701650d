// Tests for src/io/safetensors.ts and src/io/float16.ts.
// Format: https://github.com/huggingface/safetensors#format
//
// Bad files are built byte by byte here (not with the writer) so every validation rule is
// exercised on exactly the malformed input it guards against.

import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import {
  DEFAULT_CHUNK_ELEMENTS,
  SafetensorsError,
  openSafetensors,
  parseSafetensorsBytes,
  writeSafetensors,
  type TensorToWrite,
} from "../../src/io/safetensors";
import {
  f32ToF16,
  f16ToF32,
  f32ToBf16,
  bf16ToF32,
  float32Bits,
  float32FromBits,
  float32ToFloat16Bits,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  bfloat16BitsToFloat32,
  float16BitsToFloat32Into,
  bfloat16BitsToFloat32Into,
} from "../../src/io/float16";

const FIXTURE = path.join(__dirname, "..", "fixtures", "tiny_vit.safetensors");

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "cliplab-safetensors-"));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

let fileCounter = 0;
function tmpPath(name = "t"): string {
  return path.join(dir, `${name}-${fileCounter++}.safetensors`);
}

/** Raw file: u64 LE header length (overridable), header text, data bytes. */
function rawFile(header: string | object, data: Uint8Array | number[] = [], headerLen?: bigint): Uint8Array {
  const text = typeof header === "string" ? header : JSON.stringify(header);
  const json = new TextEncoder().encode(text);
  const d = data instanceof Uint8Array ? data : Uint8Array.from(data);
  const out = new Uint8Array(8 + json.length + d.length);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(d, 8 + json.length);
  return out;
}

function writeRaw(bytes: Uint8Array): string {
  const p = tmpPath("bad");
  fs.writeFileSync(p, bytes);
  return p;
}

/** Asserts that opening `bytes` (as a file and in memory) fails with a one-line message matching `re`. */
function assertBad(bytes: Uint8Array, re: RegExp): void {
  const p = writeRaw(bytes);
  assert.throws(
    () => openSafetensors(p),
    (e: unknown) => {
      assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${String(e)}`);
      assert.match(e.message, re);
      assert.ok(e.message.includes(p), `message should name the file: ${e.message}`);
      assert.ok(!/[\r\n]/.test(e.message), `message should be one line: ${e.message}`);
      return true;
    },
  );
  assert.throws(
    () => parseSafetensorsBytes(bytes, "mem.safetensors"),
    (e: unknown) => e instanceof SafetensorsError && re.test(e.message) && e.message.startsWith("mem.safetensors: "),
  );
}

function f32Bytes(values: number[]): number[] {
  return [...new Uint8Array(new Float32Array(values).buffer)];
}

function leftovers(): string[] {
  return fs.readdirSync(dir).filter((f) => f.includes(".tmp-"));
}

// ---------------------------------------------------------------------------------------------

describe("float16", () => {
  test("f16 encode edge values", () => {
    const cases: Array<[number, number]> = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.5, 0x3800],
      [65504, 0x7bff], // max finite
      [65519, 0x7bff], // below the midpoint to infinity
      [65520, 0x7c00], // tie between 0x7bff (odd) and "0x7c00": rounds to even = Infinity
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [1023 * 2 ** -24, 0x03ff], // largest subnormal
      [1023.5 * 2 ** -24, 0x0400], // tie, rounds up to even (0x400) = smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // tie between 0 and 1: even -> 0
      [-(2 ** -25), 0x8000],
      [3 * 2 ** -25, 0x0002], // tie between 1 and 2: even -> 2
      [1e-10, 0x0000],
      [-1e-10, 0x8000],
      [1 + 2 ** -11, 0x3c00], // tie, stays even
      [1 + 3 * 2 ** -11, 0x3c02], // tie, rounds up to even
      [1 + 2 ** -11 + 2 ** -23, 0x3c01], // just above the tie
      [float32FromBits(0x00000001), 0x0000], // float32 subnormal
    ];
    for (const [x, h] of cases) {
      assert.equal(f32ToF16(x), h, `f32ToF16(${x}) = 0x${f32ToF16(x).toString(16)}, want 0x${h.toString(16)}`);
    }
    // Just above 2^-25 must round up to the smallest subnormal, not to zero.
    assert.equal(f32ToF16(float32FromBits(float32Bits(2 ** -25) + 1)), 0x0001);
  });

  test("f16 NaN stays NaN, including payloads only in the low bits", () => {
    for (const bits of [0x7fc00000, 0x7f800001, 0xff800001, 0x7fffffff]) {
      const h = f32ToF16(float32FromBits(bits));
      assert.equal(h & 0x7c00, 0x7c00);
      assert.notEqual(h & 0x3ff, 0, `0x${bits.toString(16)} -> 0x${h.toString(16)} became infinity`);
      assert.ok(Number.isNaN(f16ToF32(h)));
    }
  });

  test("f16 decode exact values", () => {
    assert.equal(f16ToF32(0x0001), 2 ** -24);
    assert.equal(f16ToF32(0x03ff), 1023 * 2 ** -24);
    assert.equal(f16ToF32(0x0400), 2 ** -14);
    assert.equal(f16ToF32(0x7bff), 65504);
    assert.equal(f16ToF32(0x3555), 0.333251953125);
    assert.equal(f16ToF32(0x7c00), Infinity);
    assert.equal(f16ToF32(0xfc00), -Infinity);
    assert.ok(Object.is(f16ToF32(0x8000), -0));
    assert.ok(Number.isNaN(f16ToF32(0x7e00)));
  });

  test("f16: every bit pattern round-trips, and rounding is correct at every midpoint", () => {
    for (let h = 0; h < 0x10000; h++) {
      const x = f16ToF32(h);
      if (Number.isNaN(x)) continue;
      assert.equal(f32ToF16(x), h);
    }
    // Between each pair of adjacent finite positive halves, the midpoint (exact in float32, as it
    // needs only 12 significant bits) goes to the even one and its float32 neighbours go to the
    // nearer one.
    for (let h = 0; h < 0x7bff; h++) {
      const mid = (f16ToF32(h) + f16ToF32(h + 1)) / 2;
      assert.equal(Math.fround(mid), mid);
      const even = h % 2 === 0 ? h : h + 1;
      assert.equal(f32ToF16(mid), even);
      assert.equal(f32ToF16(-mid), even | 0x8000);
      assert.equal(f32ToF16(float32FromBits(float32Bits(mid) - 1)), h);
      assert.equal(f32ToF16(float32FromBits(float32Bits(mid) + 1)), h + 1);
    }
  });

  test("bf16 encode/decode edge values", () => {
    const cases: Array<[number, number]> = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3f80],
      [-2, 0xc000],
      [1 + 2 ** -8, 0x3f80], // tie, stays even
      [1 + 3 * 2 ** -8, 0x3f82], // tie, rounds up to even
      [1 + 2 ** -8 + 2 ** -23, 0x3f81],
      [float32FromBits(0x7f7fffff), 0x7f80], // float32 max rounds past bf16 max to Infinity
      [float32FromBits(0x7f7f7fff), 0x7f7f], // stays at bf16 max
      [Infinity, 0x7f80],
      [-Infinity, 0xff80],
      [float32FromBits(0x00000001), 0x0000], // smallest float32 subnormal
      [float32FromBits(0x00008000), 0x0000], // tie -> even
      [float32FromBits(0x00018000), 0x0002], // tie -> even (up)
      [float32FromBits(0x00008001), 0x0001],
    ];
    for (const [x, h] of cases) {
      assert.equal(f32ToBf16(x), h, `f32ToBf16(${x}) = 0x${f32ToBf16(x).toString(16)}, want 0x${h.toString(16)}`);
    }
    assert.equal(bf16ToF32(0x0001), 2 ** -133);
    assert.equal(bf16ToF32(0x7f7f), float32FromBits(0x7f7f0000));
    assert.ok(Object.is(bf16ToF32(0x8000), -0));
    for (const bits of [0x7fc00000, 0x7f800001, 0xff800001]) {
      const h = f32ToBf16(float32FromBits(bits));
      assert.ok(Number.isNaN(bf16ToF32(h)), `0x${bits.toString(16)} -> 0x${h.toString(16)} is not NaN`);
    }
  });

  test("bf16: every bit pattern round-trips, and rounding is correct at every midpoint", () => {
    for (let h = 0; h < 0x10000; h++) {
      const x = bf16ToF32(h);
      if (Number.isNaN(x)) continue;
      assert.equal(f32ToBf16(x), h);
    }
    for (let h = 0; h < 0x7f7f; h++) {
      const midBits = (h << 16) + 0x8000; // exact midpoint as a float32 bit pattern
      const even = h % 2 === 0 ? h : h + 1;
      assert.equal(f32ToBf16(float32FromBits(midBits)), even);
      assert.equal(f32ToBf16(float32FromBits(midBits - 1)), h);
      assert.equal(f32ToBf16(float32FromBits(midBits + 1)), h + 1);
    }
  });

  test("array helpers agree with the scalar ones", () => {
    const xs = new Float32Array([0, -0, 1, -1.5, 65520, 1e-8, 3.14159, -Infinity, NaN, 2 ** -24, 1e30]);
    const h = float32ToFloat16Bits(xs);
    const b = float32ToBfloat16Bits(xs);
    const hd = float16BitsToFloat32(h);
    const bd = bfloat16BitsToFloat32(b);
    for (let i = 0; i < xs.length; i++) {
      assert.equal(h[i], f32ToF16(xs[i]));
      assert.equal(b[i], f32ToBf16(xs[i]));
      assert.ok(Object.is(hd[i], Math.fround(f16ToF32(h[i]))));
      assert.ok(Object.is(bd[i], bf16ToF32(b[i])));
    }
    // A subarray view (non-zero byteOffset) must be read from the right place.
    const sub = xs.subarray(2, 4);
    assert.deepEqual([...float32ToFloat16Bits(sub)], [0x3c00, 0xbe00]);
  });
});

// ---------------------------------------------------------------------------------------------

describe("safetensors round trip", () => {
  const a = new Float32Array([1, -2.5, 3.25, 1e-3, 65504, -0, 7, 8]);
  const b = new Float32Array([Math.PI]);
  const tensors: TensorToWrite[] = [
    { name: "z.last", shape: [2, 4], data: a },
    { name: "a.first", shape: [], data: b },
    { name: "empty", shape: [0, 3], data: new Float32Array(0) },
  ];
  const metadata = { format: "pt", vision_heads: "2", note: "multi\nline ok in metadata" };

  for (const dtype of ["F32", "F16", "BF16"] as const) {
    test(`${dtype} with metadata`, () => {
      const p = tmpPath(dtype);
      writeSafetensors(p, tensors.map((t) => ({ ...t, dtype })), metadata);
      assert.deepEqual(leftovers(), []);

      const bytes = fs.readFileSync(p);
      const headerLen = Number(bytes.readBigUInt64LE(0));
      assert.equal(headerLen % 8, 0, "header padded to a multiple of 8");

      const r = openSafetensors(p);
      try {
        assert.equal(r.path, p);
        assert.deepEqual(r.metadata, metadata);
        // Stored in name order, contiguous from the start of the data section.
        assert.deepEqual([...r.entries.keys()], ["a.first", "empty", "z.last"]);
        const size = dtype === "F32" ? 4 : 2;
        const first = r.entries.get("a.first")!;
        assert.equal(first.byteOffset, 8 + headerLen);
        assert.equal(first.byteLength, size);
        assert.deepEqual(first.shape, []);
        assert.equal(r.entries.get("z.last")!.byteOffset, 8 + headerLen + size);
        assert.equal(r.entries.get("z.last")!.dtype, dtype);
        assert.equal(r.entries.get("empty")!.byteLength, 0);

        const round = (x: number) => (dtype === "F32" ? Math.fround(x) : dtype === "F16" ? f16ToF32(f32ToF16(x)) : bf16ToF32(f32ToBf16(x)));
        assert.deepEqual([...r.readFloat32("z.last")], [...a].map(round));
        assert.deepEqual([...r.readFloat32("a.first")], [round(Math.PI)]);
        assert.equal(r.readFloat32("empty").length, 0);
      } finally {
        r.close();
      }

      // The in-memory parser sees the same thing.
      const m = parseSafetensorsBytes(new Uint8Array(bytes));
      assert.deepEqual(m.metadata, metadata);
      assert.deepEqual([...m.entries.values()], [...openAndList(p)]);
      assert.equal(m.read("z.last").length, 8);
    });
  }

  test("no metadata -> {} and overwriting an existing file works", () => {
    const p = tmpPath();
    fs.writeFileSync(p, "old contents");
    writeSafetensors(p, [{ name: "x", shape: [1], data: new Float32Array([5]) }]);
    const r = openSafetensors(p);
    assert.deepEqual(r.metadata, {});
    assert.deepEqual([...r.readFloat32("x")], [5]);
    r.close();
    r.close(); // idempotent
    assert.throws(() => r.readFloat32("x"), (e: unknown) => e instanceof SafetensorsError && /closed/.test(e.message));
    assert.deepEqual(leftovers(), []);
  });

  test("integer-like and odd names survive", () => {
    const p = tmpPath();
    const names = ["10", "2", "__proto__", "with \"quotes\"", "ünï"];
    // JSON.parse makes "__proto__" an own key, which an object literal would not.
    const metadata = JSON.parse('{"__proto__":"kept","0":"zero"}') as Record<string, string>;
    writeSafetensors(
      p,
      names.map((name, i) => ({ name, shape: [1], data: new Float32Array([i]) })),
      metadata,
    );
    const r = openSafetensors(p);
    assert.deepEqual(Object.entries(r.metadata), [["0", "zero"], ["__proto__", "kept"]]);
    for (const [i, name] of names.entries()) assert.deepEqual([...r.readFloat32(name)], [i]);
    r.close();
  });
});

function openAndList(p: string) {
  const r = openSafetensors(p);
  try {
    return [...r.entries.values()];
  } finally {
    r.close();
  }
}

// ---------------------------------------------------------------------------------------------

describe("reference fixture tiny_vit.safetensors", () => {
  test("62 tensors, logit_scale, metadata", () => {
    const r = openSafetensors(FIXTURE);
    try {
      assert.equal(r.entries.size, 62);
      assert.equal(r.metadata.vision_heads, "2");
      assert.equal(r.metadata.vision_tower, '"VisionTransformer"');
      const ls = r.entries.get("logit_scale")!;
      assert.deepEqual(ls.shape, []);
      assert.equal(ls.dtype, "F32");
      const v = r.readFloat32("logit_scale");
      assert.equal(v.length, 1);
      assert.ok(Math.abs(v[0] - (Math.log(1 / 0.07) + 0.6)) < 1e-6, `logit_scale = ${v[0]}`);
      assert.ok(Math.abs(v[0] - 3.2592) < 1e-4);

      // Shapes agree with the fixture's config.
      const config = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "fixtures", "tiny_vit.config.json"), "utf8"));
      const want = config.tensors as Record<string, number[]>;
      assert.equal(Object.keys(want).length, 62);
      for (const [name, shape] of Object.entries(want)) assert.deepEqual(r.entries.get(name)?.shape, shape, name);
      assert.equal(r.readFloat32("token_embedding.weight").length, 49408 * 32);
    } finally {
      r.close();
    }
  });

  test("rewriting the fixture with the writer reproduces it byte for byte", () => {
    const r = openSafetensors(FIXTURE);
    const tensors = [...r.entries.values()].map((e) => ({ name: e.name, shape: e.shape, data: r.readFloat32(e.name) }));
    const metadata = r.metadata;
    r.close();
    const p = tmpPath("rewrite");
    writeSafetensors(p, tensors, metadata);
    // Same sha256 as the fixture's MANIFEST entry: same header bytes, padding, order and data.
    const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "fixtures", "MANIFEST.json"), "utf8"));
    const sha = crypto.createHash("sha256").update(new Uint8Array(fs.readFileSync(p))).digest("hex");
    assert.equal(sha, manifest["tiny_vit.safetensors"].sha256);
  });
});

// ---------------------------------------------------------------------------------------------

describe("reading other dtypes", () => {
  test("F64, I32, I64, F16, BF16 decode to float32", () => {
    const data = new Uint8Array(8 * 2 + 4 * 2 + 8 * 2 + 2 * 2 + 2 * 2);
    const v = new DataView(data.buffer);
    v.setFloat64(0, 1.5, true);
    v.setFloat64(8, -1e-40, true); // underflows float32 range to a subnormal
    v.setInt32(16, -7, true);
    v.setInt32(20, 2 ** 30, true);
    v.setBigInt64(24, -(2n ** 53n - 1n), true);
    v.setBigInt64(32, 42n, true);
    v.setUint16(40, 0x3c00, true);
    v.setUint16(42, 0xc000, true);
    v.setUint16(44, 0x3f80, true);
    v.setUint16(46, 0x4049, true);
    const header = {
      d: { dtype: "F64", shape: [2], data_offsets: [0, 16] },
      i: { dtype: "I32", shape: [2], data_offsets: [16, 24] },
      l: { dtype: "I64", shape: [1, 2], data_offsets: [24, 40] },
      h: { dtype: "F16", shape: [2], data_offsets: [40, 44] },
      b: { dtype: "BF16", shape: [2], data_offsets: [44, 48] },
    };
    const p = writeRaw(rawFile(header, data));
    const r = openSafetensors(p);
    assert.deepEqual([...r.readFloat32("d")], [1.5, Math.fround(-1e-40)]);
    assert.deepEqual([...r.readFloat32("i")], [-7, 2 ** 30]);
    assert.deepEqual([...r.readFloat32("l")], [Math.fround(-(2 ** 53 - 1)), 42]);
    assert.deepEqual([...r.readFloat32("h")], [1, -2]);
    assert.deepEqual([...r.readFloat32("b")], [1, 3.140625]);
    assert.deepEqual([...r.entries.keys()], ["d", "i", "l", "h", "b"]);
    r.close();
  });

  test("I64 values outside the safe range are refused", () => {
    const data = new Uint8Array(16);
    new DataView(data.buffer).setBigInt64(8, 2n ** 53n, true);
    const p = writeRaw(rawFile({ n: { dtype: "I64", shape: [2], data_offsets: [0, 16] } }, data));
    const r = openSafetensors(p);
    assert.throws(
      () => r.readFloat32("n"),
      (e: unknown) => e instanceof SafetensorsError && /"n".*I64 element 1.*safe/.test(e.message) && e.message.includes(p),
    );
    r.close();
  });

  test("unknown tensor name", () => {
    const p = writeRaw(rawFile({ x: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, f32Bytes([1])));
    const r = openSafetensors(p);
    assert.throws(
      () => r.readFloat32("nope"),
      (e: unknown) => e instanceof SafetensorsError && /no tensor named "nope"/.test(e.message) && e.message.includes(p),
    );
    r.close();
    const m = parseSafetensorsBytes(new Uint8Array(fs.readFileSync(p)), "mem");
    assert.throws(() => m.read("nope"), (e: unknown) => e instanceof SafetensorsError && /^mem: no tensor named "nope"/.test(e.message));
  });

  test("missing file", () => {
    const p = path.join(dir, "does-not-exist.safetensors");
    assert.throws(
      () => openSafetensors(p),
      (e: unknown) => e instanceof SafetensorsError && e.message.includes(p) && /cannot open/.test(e.message),
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe("validation of bad files", () => {
  const ok = { dtype: "F32", shape: [2], data_offsets: [0, 8] };
  const two = f32Bytes([1, 2]);

  test("shorter than 8 bytes", () => {
    assertBad(new Uint8Array([1, 2, 3, 4, 5]), /5 bytes, shorter than the 8-byte/);
    assertBad(new Uint8Array(0), /0 bytes, shorter than the 8-byte/);
  });
  test("header length larger than the file", () => {
    assertBad(rawFile({ x: ok }, two, 1000n), /header length 1000 bytes is larger than the file/);
  });
  test("absurd header length", () => {
    assertBad(rawFile({ x: ok }, two, 2n ** 62n), /header length \d+ bytes is absurd \(limit 104857600\)/);
    assertBad(rawFile({ x: ok }, two, 100n * 1024n * 1024n + 1n), /absurd/);
  });
  test("header not valid JSON", () => {
    assertBad(rawFile('{"x": {', two), /header is not valid JSON/);
    assertBad(rawFile("", two), /header is not valid JSON/);
  });
  test("header not valid UTF-8", () => {
    const bytes = rawFile('{"x":1}');
    bytes[10] = 0xff;
    assertBad(bytes, /header is not valid UTF-8/);
  });
  test("header not an object", () => {
    assertBad(rawFile("[1,2]"), /header must be a JSON object.*got array/);
    assertBad(rawFile("null"), /header must be a JSON object.*got null/);
    assertBad(rawFile("42"), /header must be a JSON object.*got number/);
  });
  test("entry not an object", () => {
    assertBad(rawFile({ x: 3 }), /tensor "x": entry must be an object/);
  });
  test("entry missing dtype / shape / data_offsets", () => {
    for (const field of ["dtype", "shape", "data_offsets"]) {
      const entry: Record<string, unknown> = { ...ok };
      delete entry[field];
      assertBad(rawFile({ x: entry }, two), new RegExp(`tensor "x": entry is missing "${field}"`));
    }
  });
  test("unknown dtype lists the supported ones", () => {
    assertBad(
      rawFile({ x: { ...ok, dtype: "U8" } }, two),
      /tensor "x": unknown dtype "U8" \(supported: F32, F16, BF16, F64, I32, I64\)/,
    );
    assertBad(rawFile({ x: { ...ok, dtype: 4 } }, two), /tensor "x": unknown dtype 4/);
  });
  test("shape not an array of non-negative integers", () => {
    for (const shape of [-1, [-1], [1.5], "3", [2, "a"], null, [2 ** 60, 2 ** 60]]) {
      assertBad(rawFile({ x: { ...ok, shape } }, two), /tensor "x": shape /);
    }
  });
  test("bad data_offsets", () => {
    for (const data_offsets of [[0], [0, 8, 9], [-1, 8], [0, "8"], "0,8", [0.5, 8]]) {
      assertBad(rawFile({ x: { ...ok, data_offsets } }, two), /tensor "x": data_offsets must be \[begin, end\]/);
    }
    assertBad(rawFile({ x: { ...ok, data_offsets: [8, 0] } }, two), /tensor "x": data_offsets \[8, 0\] has begin after end/);
  });
  test("byte length != product(shape) * dtype size", () => {
    assertBad(
      rawFile({ x: { dtype: "F32", shape: [2, 2], data_offsets: [0, 12] } }, f32Bytes([1, 2, 3])),
      /tensor "x": data_offsets \[0, 12\] span 12 bytes but F32 shape \[2,2\] needs 16/,
    );
    assertBad(
      rawFile({ x: { dtype: "F16", shape: [2], data_offsets: [0, 8] } }, two),
      /tensor "x".*F16 shape \[2\] needs 4/,
    );
  });
  test("offsets out of range of the data section", () => {
    assertBad(
      rawFile({ x: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, two),
      /tensor "x": data_offsets \[0, 16\] are out of range of the 8-byte data section/,
    );
  });
  test("overlapping tensors", () => {
    assertBad(
      rawFile(
        { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } },
        f32Bytes([1, 2, 3]),
      ),
      /tensor "b": data_offsets \[4, 12\] overlap tensor "a"/,
    );
    // A zero-length tensor inside another one overlaps it too.
    assertBad(
      rawFile({ a: ok, z: { dtype: "F32", shape: [0], data_offsets: [4, 4] } }, two),
      /tensor "z".*overlap tensor "a"/,
    );
  });
  test("holes between, before and after tensors", () => {
    assertBad(
      rawFile(
        { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [8, 12] } },
        f32Bytes([1, 2, 3]),
      ),
      /tensor "b": data_offsets \[8, 12\] leave a hole of 4 bytes \(4\.\.8\) after tensor "a"/,
    );
    assertBad(
      rawFile({ b: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, two),
      /hole of 4 bytes \(0\.\.4\) after the start of the data section/,
    );
    assertBad(rawFile({ a: ok }, f32Bytes([1, 2, 3])), /data section has 4 trailing bytes \(8\.\.12\) not covered/);
  });
  test("metadata values not strings", () => {
    assertBad(rawFile({ __metadata__: { k: 1 }, x: ok }, two), /__metadata__ field "k" must be a string, got number/);
    assertBad(rawFile({ __metadata__: ["a"], x: ok }, two), /__metadata__ must be an object/);
  });
  test("names with newlines still give one-line messages", () => {
    assertBad(rawFile({ "bad\nname": { ...ok, dtype: "X" } }, two), /tensor "bad\\nname": unknown dtype/);
  });
  test("valid hand-built file with a zero-length tensor and an empty header", () => {
    const p = writeRaw(rawFile({ z: { dtype: "F32", shape: [0], data_offsets: [8, 8] }, a: ok }, two));
    const r = openSafetensors(p);
    assert.deepEqual([...r.entries.keys()], ["a", "z"]);
    r.close();
    const empty = parseSafetensorsBytes(rawFile("{}"));
    assert.equal(empty.entries.size, 0);
  });
});

// ---------------------------------------------------------------------------------------------

describe("writer", () => {
  const one = (name: string, over: Partial<TensorToWrite> = {}): TensorToWrite => ({
    name,
    shape: [2],
    data: new Float32Array([1, 2]),
    ...over,
  });

  function assertWriteFails(p: string, tensors: TensorToWrite[], re: RegExp, metadata?: Record<string, string>) {
    assert.throws(
      () => writeSafetensors(p, tensors, metadata),
      (e: unknown) => {
        assert.ok(e instanceof SafetensorsError, String(e));
        assert.match(e.message, re);
        assert.ok(e.message.includes(p));
        assert.ok(!/[\r\n]/.test(e.message));
        return true;
      },
    );
    assert.equal(fs.existsSync(p), false, "no output file");
    assert.deepEqual(leftovers(), [], "no temp file");
  }

  test("validation errors leave nothing behind", () => {
    const p = tmpPath("w");
    assertWriteFails(p, [one("a", { shape: [3] })], /tensor "a": data has 2 elements but shape \[3\] needs 3/);
    assertWriteFails(p, [one("a"), one("b"), one("a")], /tensor "a": duplicate tensor name/);
    assertWriteFails(p, [one("a", { shape: [-2] })], /tensor "a": shape must be an array of non-negative integers/);
    assertWriteFails(p, [one("a", { data: [1, 2] as unknown as Float32Array })], /tensor "a": data must be a Float32Array/);
    assertWriteFails(p, [one("a", { dtype: "F64" as "F32" })], /tensor "a": cannot write dtype "F64"/);
    assertWriteFails(p, [one("__metadata__")], /not allowed/);
    assertWriteFails(p, [one("a")], /metadata field "k" must be a string/, { k: 3 as unknown as string });
  });

  test("an I/O failure after the temp file was created removes it", () => {
    // The target is a non-empty directory, so the final rename fails after the data is written.
    const p = tmpPath("dir");
    fs.mkdirSync(p);
    fs.writeFileSync(path.join(p, "keep"), "x");
    assert.throws(
      () => writeSafetensors(p, [one("a")]),
      (e: unknown) => e instanceof SafetensorsError && /write failed/.test(e.message) && e.message.includes(p),
    );
    assert.deepEqual(leftovers(), []);
    assert.ok(fs.statSync(p).isDirectory());
  });

  test("a failure to create the temp file is reported", () => {
    const p = path.join(dir, "no-such-dir", "x.safetensors");
    assert.throws(
      () => writeSafetensors(p, [one("a")]),
      (e: unknown) => e instanceof SafetensorsError && /write failed/.test(e.message),
    );
    assert.deepEqual(leftovers(), []);
  });

  test("success leaves only the target file", () => {
    const p = tmpPath("ok");
    writeSafetensors(p, [one("b"), one("a", { dtype: "BF16" })], { m: "v" });
    assert.ok(fs.existsSync(p));
    assert.deepEqual(leftovers(), []);
    const m = parseSafetensorsBytes(new Uint8Array(fs.readFileSync(p)));
    assert.deepEqual([...m.entries.keys()], ["a", "b"]);
    assert.deepEqual([...m.read("a")], [1, 2]);

    // A Node Buffer at an odd offset (as from a pooled allocation) parses too, without aliasing.
    const file = new Uint8Array(fs.readFileSync(p));
    const backing = new Uint8Array(file.length + 1);
    backing.set(file, 1);
    const odd = Buffer.from(backing.buffer, 1, file.length);
    const mo = parseSafetensorsBytes(odd as unknown as Uint8Array);
    const got = mo.read("b");
    assert.deepEqual([...got], [1, 2]);
    got[0] = 99;
    assert.deepEqual([...mo.read("b")], [1, 2]);
  });
});

// ---------------------------------------------------------------------------------------------

describe("streaming reads and lazily written tensors", () => {
  /** Deterministic values with exact F16/BF16 representations (multiples of 1/8 in [-16, 16)). */
  function values(n: number): Float32Array {
    return Float32Array.from({ length: n }, (_, i) => ((i * 37) % 256) / 8 - 16);
  }

  test("readFloat32Chunks gives readFloat32's values in consecutive chunks, for every dtype and chunk size", () => {
    const p = tmpPath("chunks");
    const data = values(1001);
    writeSafetensors(p, [
      { name: "f32", shape: [7, 143], data },
      { name: "f16", shape: [1001], data, dtype: "F16" },
      { name: "bf16", shape: [11, 91], data, dtype: "BF16" },
      { name: "empty", shape: [0, 4], data: new Float32Array(0) },
    ]);
    const r = openSafetensors(p);
    for (const name of ["f32", "f16", "bf16"]) {
      const whole = r.readFloat32(name);
      assert.deepEqual(whole, data, `${name} round trip`);
      for (const chunk of [1, 3, 143, 1000, 1001, 5000]) {
        const got = new Float32Array(1001);
        const starts: number[] = [];
        r.readFloat32Chunks(name, (v, start) => {
          assert.ok(v.length <= chunk, `${name}: chunk of ${v.length} > ${chunk}`);
          got.set(v, start);
          starts.push(start);
        }, chunk);
        assert.deepEqual(got, whole, `${name} in chunks of ${chunk}`);
        assert.deepEqual(starts, Array.from({ length: Math.ceil(1001 / chunk) }, (_, i) => i * chunk), `${name}: consecutive starts`);
      }
    }
    let calls = 0;
    r.readFloat32Chunks("empty", () => calls++);
    assert.equal(calls, 0, "an empty tensor has no chunks");
    assert.throws(() => r.readFloat32Chunks("f32", () => {}, 0), (e: unknown) => e instanceof SafetensorsError && /chunkElements must be a positive integer, got 0/.test(e.message) && e.message.includes(p));
    assert.throws(() => r.readFloat32Chunks("nope", () => {}), (e: unknown) => e instanceof SafetensorsError && /no tensor named "nope"/.test(e.message));
    r.close();
    assert.throws(() => r.readFloat32Chunks("f32", () => {}), (e: unknown) => e instanceof SafetensorsError && /reader is closed/.test(e.message));
  });

  test("readFloat32Chunks reuses one buffer (memory: one chunk, however large the tensor)", () => {
    const p = tmpPath("reuse");
    const n = 2 * DEFAULT_CHUNK_ELEMENTS + 5;
    writeSafetensors(p, [{ name: "big", shape: [n], data: values(n), dtype: "F16" }]);
    const r = openSafetensors(p);
    const buffers = new Set<ArrayBufferLike>();
    let total = 0;
    r.readFloat32Chunks("big", (v) => {
      buffers.add(v.buffer);
      total += v.length;
    });
    r.close();
    assert.equal(total, n);
    assert.equal(buffers.size, 1, "every chunk is a view of the same buffer");
    assert.ok([...buffers][0].byteLength <= 4 * DEFAULT_CHUNK_ELEMENTS, "the buffer holds one default chunk");
  });

  test("the F16 and BF16 decoders write into a destination at an offset, and refuse what does not fit", () => {
    const src = float32ToFloat16Bits(new Float32Array([1, -2, 0.5]));
    const dst = new Float32Array(5).fill(9);
    float16BitsToFloat32Into(src, dst, 1);
    assert.deepEqual([...dst], [9, 1, -2, 0.5, 9]);
    assert.throws(() => float16BitsToFloat32Into(src, dst, 3), /3 values from offset 3 do not fit in a destination of 5/);
    const bsrc = float32ToBfloat16Bits(new Float32Array([3, -0.25]));
    const bdst = new Float32Array(4);
    bfloat16BitsToFloat32Into(bsrc, bdst.subarray(1), 1);
    assert.deepEqual([...bdst], [0, 0, 3, -0.25]);
    assert.throws(() => bfloat16BitsToFloat32Into(bsrc, bdst, -1), /RangeError|do not fit/);
  });

  test("tensors given as functions are read one at a time, when written, and checked then", () => {
    const p = tmpPath("lazy");
    const order: string[] = [];
    const lazy = (name: string, data: Float32Array): TensorToWrite => ({ name, shape: [data.length], data: () => (order.push(name), data), dtype: "F16" });
    writeSafetensors(p, [lazy("b", new Float32Array([1, 2])), lazy("a", new Float32Array([3]))]);
    assert.deepEqual(order, ["a", "b"], "each function called once, in file order");
    const m = parseSafetensorsBytes(new Uint8Array(fs.readFileSync(p)));
    assert.deepEqual([...m.read("a")], [3]);
    assert.deepEqual([...m.read("b")], [1, 2]);

    const bad = tmpPath("lazy-bad");
    assert.throws(
      () => writeSafetensors(bad, [{ name: "x", shape: [3], data: () => new Float32Array(2) }]),
      (e: unknown) => e instanceof SafetensorsError && e.message === `${bad}: tensor "x": data has 2 elements but shape [3] needs 3`,
    );
    assert.equal(fs.existsSync(bad), false, "no output file");
    assert.deepEqual(leftovers(), [], "no temp file");
  });
});

/**
 * Tests for the native BLAS kernels (src/backend/native*.ts, blas.ts): every kernel against tfjs'
 * own cpu backend on seeded random shapes (every transpose combination, batch broadcasting, odd
 * and empty sizes; convolutions of random geometry, forward and both gradients), memory left as
 * it was, registration and restoring of the wasm kernels, and how the BLAS is found or refused.
 *
 * The kernel tests need a BLAS: where none loads (or CLIPLAB_BLAS=off), they are skipped and say
 * why; the loader's tests run everywhere. No timings are asserted.
 */
import { after, describe, test, before } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend, type BackendChoice } from "../../src/backend/select";
import { blasCandidates, loadBlas } from "../../src/backend/blas";
import { nativeBlas, registerNativeKernels, unregisterNativeKernels } from "../../src/backend/native";
import { broadcastBatchIndex } from "../../src/backend/native_matmul";
import { PATCH_CHUNK_ELEMENTS, SMALL_CONV_CHANNELS, convTuning } from "../../src/backend/native_conv";
import { registerFusedKernels, unregisterFusedKernels } from "../../src/backend/fused";
import { activeFusedLib, type FusedLib } from "../../src/backend/fused_lib";
import { Random } from "../../src/util/random";

const ROOT = path.resolve(__dirname, "../..");

let choice: BackendChoice;
let skip: string | false = false;

before(async () => {
  choice = await initBackend({ prefer: "wasm" });
  if (!choice.blas) skip = `no native BLAS here: ${choice.blasReason}`;
});

function randomArray(rng: Random, n: number): Float32Array {
  return rng.fillUniform(new Float32Array(n), -1, 1);
}

/** Runs `f` on the cpu backend with copies of the given data, returns the values and shape. */
async function onCpu(f: () => tf.Tensor): Promise<{ values: Float32Array; shape: number[] }> {
  await tf.setBackend("cpu");
  try {
    const t = tf.tidy(f);
    const out = { values: t.dataSync() as Float32Array, shape: t.shape };
    t.dispose();
    return out;
  } finally {
    await tf.setBackend("wasm");
  }
}

function onWasm(f: () => tf.Tensor): { values: Float32Array; shape: number[] } {
  assert.equal(tf.getBackend(), "wasm");
  const t = tf.tidy(f);
  const out = { values: t.dataSync() as Float32Array, shape: t.shape };
  t.dispose();
  return out;
}

function assertClose(actual: { values: Float32Array; shape: number[] }, expected: { values: Float32Array; shape: number[] }, what: string, tol = 2e-5): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  let scale = 1;
  for (const v of expected.values) scale = Math.max(scale, Math.abs(v));
  let d = 0;
  for (let i = 0; i < expected.values.length; i++) {
    const e = Math.abs(actual.values[i] - expected.values[i]);
    if (!(e <= d)) d = Number.isNaN(e) ? Infinity : e;
  }
  assert.ok(d <= tol * scale, `${what}: max |native - cpu| ${d} > ${tol} x ${scale}`);
}

/** A uses tfjs' cpu matMul on batches broadcast explicitly (its own broadcasting is wrong for [4,1] x [3]). */
function referenceMatMul(a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean): tf.Tensor {
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const out = tf.broadcast_util.assertAndGetBroadcastShape(aBatch, bBatch);
  const aFull = tf.broadcastTo(a, [...out, ...a.shape.slice(-2)]);
  const bFull = tf.broadcastTo(b, [...out, ...b.shape.slice(-2)]);
  return tf.matMul(aFull, bFull, ta, tb);
}

describe("native matmul (BatchMatMul) against tfjs cpu", () => {
  test("2-D, every transpose combination, odd sizes from 1 to 130", async (t) => {
    if (skip) return t.skip(skip);
    const rng = new Random(1);
    const sizes = [[1, 1, 1], [1, 7, 1], [5, 1, 3], [17, 33, 9], [64, 64, 64], [130, 67, 97], [3, 129, 2]];
    for (const [m, k, n] of sizes) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const aShape = ta ? [k, m] : [m, k];
          const bShape = tb ? [n, k] : [k, n];
          const av = randomArray(rng, m * k);
          const bv = randomArray(rng, k * n);
          const got = onWasm(() => tf.matMul(tf.tensor(av, aShape), tf.tensor(bv, bShape), ta, tb));
          const want = await onCpu(() => tf.matMul(tf.tensor(av, aShape), tf.tensor(bv, bShape), ta, tb));
          assertClose(got, want, `[${m},${k}]x[${k},${n}] transposeA=${ta} transposeB=${tb}`);
        }
      }
    }
  });

  test("batched and broadcast batch shapes, every transpose combination", async (t) => {
    if (skip) return t.skip(skip);
    const rng = new Random(2);
    const batchPairs: [number[], number[]][] = [
      [[3], [3]],
      [[2, 3], [3]],
      [[4, 1], [3]],
      [[1], [5]],
      [[2, 1, 3], [4, 1]],
      [[6], []],
      [[], [6]],
      [[1, 1], [1]],
    ];
    for (const [ab, bb] of batchPairs) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const m = 1 + rng.int(9), k = 1 + rng.int(9), n = 1 + rng.int(9);
          const aShape = [...ab, ...(ta ? [k, m] : [m, k])];
          const bShape = [...bb, ...(tb ? [n, k] : [k, n])];
          const av = randomArray(rng, aShape.reduce((x, y) => x * y, 1));
          const bv = randomArray(rng, bShape.reduce((x, y) => x * y, 1));
          const got = onWasm(() => tf.matMul(tf.tensor(av, aShape), tf.tensor(bv, bShape), ta, tb));
          const want = await onCpu(() => referenceMatMul(tf.tensor(av, aShape), tf.tensor(bv, bShape), ta, tb));
          assertClose(got, want, `[${aShape}] x [${bShape}] transposeA=${ta} transposeB=${tb}`);
        }
      }
    }
  });

  test("empty dimensions: M, N, K or a batch of 0", async (t) => {
    if (skip) return t.skip(skip);
    const cases: [number[], number[], number[]][] = [
      [[0, 4], [4, 3], [0, 3]],
      [[2, 4], [4, 0], [2, 0]],
      [[2, 0], [0, 3], [2, 3]],
      [[0, 2, 4], [4, 3], [0, 2, 3]],
    ];
    for (const [as, bs, outShape] of cases) {
      const got = onWasm(() => tf.matMul(tf.ones(as), tf.ones(bs)));
      assert.deepEqual(got.shape, outShape);
      assert.ok(got.values.every((v) => v === 0), `[${as}] x [${bs}]: an empty contraction gives zeros`);
    }
  });

  test("broadcastBatchIndex maps output batches to operand batches", () => {
    assert.deepEqual(Array.from(broadcastBatchIndex([4, 3], [4, 1])), [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
    assert.deepEqual(Array.from(broadcastBatchIndex([4, 3], [3])), [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
    assert.deepEqual(Array.from(broadcastBatchIndex([2, 2], [])), [0, 0, 0, 0]);
  });

  test("a shape mismatch is tfjs' one-line error", (t) => {
    if (skip) return t.skip(skip);
    assert.throws(() => tf.matMul(tf.ones([2, 3]), tf.ones([4, 2])), /inner shapes \(3\) and \(4\)/);
  });
});

describe("native fused matmul (_FusedMatMul) against tfjs cpu", () => {
  const acts = ["linear", "relu", "relu6", "elu", "sigmoid", "leakyrelu", "prelu"] as const;
  test("bias [N] or scalar, every activation, with transposes and batches", async (t) => {
    if (skip) return t.skip(skip);
    const rng = new Random(3);
    for (const act of acts) {
      for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
        const batch = 1 + rng.int(3), m = 1 + rng.int(11), k = 1 + rng.int(11), n = 1 + rng.int(11);
        const aShape = [batch, ...(ta ? [k, m] : [m, k])];
        const bShape = [batch, ...(tb ? [n, k] : [k, n])];
        const av = randomArray(rng, batch * m * k), bv = randomArray(rng, batch * k * n);
        const biasV = randomArray(rng, n), preluV = randomArray(rng, n);
        const scalarBias = rng.int(2) === 0;
        const run = () =>
          tf.fused.matMul({
            a: tf.tensor3d(av, aShape as [number, number, number]),
            b: tf.tensor3d(bv, bShape as [number, number, number]),
            transposeA: ta,
            transposeB: tb,
            bias: scalarBias ? tf.scalar(biasV[0]) : tf.tensor1d(biasV),
            activation: act,
            preluActivationWeights: act === "prelu" ? tf.tensor1d(preluV) : undefined,
            leakyreluAlpha: 0.3,
          });
        assertClose(onWasm(run), await onCpu(run), `${act} transposeA=${ta} transposeB=${tb} bias ${scalarBias ? "scalar" : "[N]"}`);
      }
    }
  });

  test("gradients through a fused matmul with bias match cpu", async (t) => {
    if (skip) return t.skip(skip);
    const rng = new Random(4);
    const av = randomArray(rng, 6 * 5), bv = randomArray(rng, 5 * 7), biasV = randomArray(rng, 7);
    for (const which of [0, 1, 2]) {
      const run = () => {
        const inputs = [tf.tensor2d(av, [6, 5]), tf.tensor2d(bv, [5, 7]), tf.tensor1d(biasV)];
        const f = (x: tf.Tensor) => {
          const args = inputs.map((v, i) => (i === which ? x : v));
          return tf.sum(tf.square(tf.fused.matMul({ a: args[0] as tf.Tensor2D, b: args[1] as tf.Tensor2D, bias: args[2], activation: "relu" })));
        };
        return tf.grad(f)(inputs[which]);
      };
      assertClose(onWasm(run), await onCpu(run), `gradient of input ${which}`);
    }
  });
});

interface ConvCase {
  x: number[];
  f: number[];
  stride: [number, number];
  dilation: [number, number];
  pad: "same" | "valid" | number;
}

function randomConvCases(rng: Random, count: number): ConvCase[] {
  const cases: ConvCase[] = [];
  while (cases.length < count) {
    const fh = 1 + rng.int(4), fw = 1 + rng.int(4);
    const dilated = rng.int(4) === 0;
    const stride: [number, number] = dilated ? [1, 1] : [1 + rng.int(3), 1 + rng.int(3)];
    const dilation: [number, number] = dilated ? [1 + rng.int(2), 2] : [1, 1];
    const pads = ["same", "valid", rng.int(3)] as const;
    const pad = pads[rng.int(3)];
    const h = 1 + rng.int(12), w = 1 + rng.int(12);
    const effH = (fh - 1) * dilation[0] + 1, effW = (fw - 1) * dilation[1] + 1;
    if (pad === "valid" && (h < effH || w < effW)) continue;
    if (typeof pad === "number" && (h + 2 * pad < effH || w + 2 * pad < effW)) continue;
    cases.push({ x: [1 + rng.int(3), h, w, 1 + rng.int(7)], f: [fh, fw, 0, 1 + rng.int(9)], stride, dilation, pad });
  }
  return cases.map((c) => ({ ...c, f: [c.f[0], c.f[1], c.x[3], c.f[3]] }));
}

function describeConv(c: ConvCase): string {
  return `x [${c.x}] filter [${c.f}] stride ${c.stride} dilation ${c.dilation} pad ${c.pad}`;
}

for (const im2colIn of ["C", "JS"] as const) describe(`native convolutions against tfjs cpu (im2col in ${im2colIn}, every size native)`, () => {
  let lib: FusedLib | undefined;
  before(() => {
    lib = activeFusedLib();
    convTuning.smallChannels = 0;
    if (im2colIn === "JS") unregisterFusedKernels();
  });
  after(() => {
    convTuning.smallChannels = SMALL_CONV_CHANNELS;
    if (lib) registerFusedKernels(lib);
  });
  const skipFor = () => skip || (im2colIn === "C" && !lib ? "the C library is not loaded" : false);
  test("forward: 40 random geometries (1x1 to 4x4, strides 1-3, dilation, same/valid/explicit padding)", async (t) => {
    const why = skipFor();
    if (why) return t.skip(why);
    const rng = new Random(5);
    for (const c of randomConvCases(rng, 40)) {
      const xv = randomArray(rng, c.x.reduce((a, b) => a * b, 1)), fv = randomArray(rng, c.f.reduce((a, b) => a * b, 1));
      const run = () => tf.conv2d(tf.tensor4d(xv, c.x as [number, number, number, number]), tf.tensor4d(fv, c.f as [number, number, number, number]), c.stride, c.pad, "NHWC", c.dilation);
      assertClose(onWasm(run), await onCpu(run), `conv2d ${describeConv(c)}`);
    }
  });

  test("gradients for the input and the filter: 30 random geometries", async (t) => {
    const why = skipFor();
    if (why) return t.skip(why);
    const rng = new Random(6);
    for (const c of randomConvCases(rng, 40).filter((cc) => cc.dilation[0] === 1 && cc.dilation[1] === 1).slice(0, 30)) {
      const xv = randomArray(rng, c.x.reduce((a, b) => a * b, 1)), fv = randomArray(rng, c.f.reduce((a, b) => a * b, 1));
      const seedW = rng.int(1000);
      const loss = (x: tf.Tensor4D, f: tf.Tensor4D) => {
        const y = tf.conv2d(x, f, c.stride, c.pad);
        return tf.sum(tf.mul(y, tf.randomUniform(y.shape, -1, 1, "float32", seedW)));
      };
      const grads = () => {
        const x = tf.tensor4d(xv, c.x as [number, number, number, number]);
        const f = tf.tensor4d(fv, c.f as [number, number, number, number]);
        const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) => loss(a as tf.Tensor4D, b as tf.Tensor4D))([x, f]);
        return tf.concat([tf.reshape(dx, [-1]), tf.reshape(df, [-1])]);
      };
      assertClose(onWasm(grads), await onCpu(grads), `conv2d gradients ${describeConv(c)}`);
    }
  });

  test("fused conv2d with bias and relu matches cpu", async (t) => {
    const why = skipFor();
    if (why) return t.skip(why);
    const rng = new Random(7);
    for (const c of randomConvCases(rng, 8)) {
      const xv = randomArray(rng, c.x.reduce((a, b) => a * b, 1)), fv = randomArray(rng, c.f.reduce((a, b) => a * b, 1)), bv = randomArray(rng, c.f[3]);
      const run = () =>
        tf.fused.conv2d({ x: tf.tensor4d(xv, c.x as [number, number, number, number]), filter: tf.tensor4d(fv, c.f as [number, number, number, number]), strides: c.stride, pad: c.pad, dilations: c.dilation, bias: tf.tensor1d(bv), activation: "relu" });
      assertClose(onWasm(run), await onCpu(run), `fused conv2d ${describeConv(c)}`);
    }
  });

  test("a convolution larger than one patch-matrix chunk, forward and filter gradient", async (t) => {
    const why = skipFor();
    if (why) return t.skip(why);
    const rng = new Random(8);
    const xShape: [number, number, number, number] = [16, 48, 48, 16];
    const fShape: [number, number, number, number] = [3, 3, 16, 8];
    assert.ok(16 * 48 * 48 * 3 * 3 * 16 > PATCH_CHUNK_ELEMENTS, "needs several chunks");
    const xv = randomArray(rng, 16 * 48 * 48 * 16), fv = randomArray(rng, 3 * 3 * 16 * 8);
    const run = () => {
      const x = tf.tensor4d(xv, xShape), f = tf.tensor4d(fv, fShape);
      const y = tf.conv2d(x, f, 1, "same");
      const df = tf.grad((ff: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, ff as tf.Tensor4D, 1, "same"), 0.5)))(f);
      return tf.concat([tf.reshape(y, [-1]), tf.reshape(df, [-1])]);
    };
    assertClose(onWasm(run), await onCpu(run), "chunked conv2d", 5e-5);
  });
});

describe("native kernels: memory and registration", () => {
  test("no tensors or heap bytes are left behind (temporary patch buffers are freed)", (t) => {
    if (skip) return t.skip(skip);
    const x = tf.randomUniform([2, 9, 9, 3], -1, 1, "float32", 1) as tf.Tensor4D;
    const f = tf.randomUniform([3, 3, 3, 4], -1, 1, "float32", 2) as tf.Tensor4D;
    const a = tf.randomUniform([2, 5, 6], -1, 1, "float32", 3);
    const b = tf.randomUniform([6, 7], -1, 1, "float32", 4);
    const before = tf.memory();
    const dataIds = tf.backend().numDataIds();
    const outs = tf.tidy(() => [
      tf.matMul(a, b),
      tf.matMul(a, a, true, false),
      tf.fused.matMul({ a: a as tf.Tensor3D, b: tf.broadcastTo(b, [2, 6, 7]) as tf.Tensor3D, bias: tf.ones([7]), activation: "relu" }),
      tf.conv2d(x, f, 2, "same"),
      tf.grad((xx: tf.Tensor) => tf.sum(tf.conv2d(xx as tf.Tensor4D, f, 2, "same")))(x),
      tf.grad((ff: tf.Tensor) => tf.sum(tf.conv2d(x, ff as tf.Tensor4D, 2, "same")))(f),
    ]);
    tf.dispose(outs);
    assert.equal(tf.memory().numTensors, before.numTensors);
    assert.equal(tf.memory().numBytes, before.numBytes);
    assert.equal(tf.backend().numDataIds(), dataIds, "backend buffers (the patch matrices) are all freed");
    tf.dispose([x, f, a, b]);
  });

  test("unregisterNativeKernels puts the wasm kernels back, registerNativeKernels again replaces them", (t) => {
    if (skip) return t.skip(skip);
    const blas = nativeBlas();
    assert.ok(blas, "initBackend registered the native kernels");
    const nativeFn = tf.getKernel(tf.BatchMatMul, "wasm")!.kernelFunc;
    unregisterNativeKernels();
    try {
      assert.equal(nativeBlas(), undefined);
      const wasmFn = tf.getKernel(tf.BatchMatMul, "wasm")!.kernelFunc;
      assert.notEqual(wasmFn, nativeFn);
      // The wasm kernel still works (and agrees).
      const x = tf.tensor2d([1, 2, 3, 4], [2, 2]);
      assert.deepEqual(Array.from(tf.matMul(x, x).dataSync()), [7, 10, 15, 22]);
      x.dispose();
    } finally {
      registerNativeKernels(blas);
    }
    assert.notEqual(tf.getKernel(tf.BatchMatMul, "wasm")!.kernelFunc, undefined);
    assert.equal(nativeBlas(), blas);
    assert.throws(() => registerNativeKernels({ ...blas, name: "another" }), /already run on/);
  });

  test("the CLI's backend line says which matrix kernels run", async () => {
    const { startBackend } = await import("../../src/cli/backend");
    const err: string[] = [];
    await startBackend({ out: () => undefined, err: (l: string) => err.push(l) } as never);
    assert.equal(err.length, 1);
    if (choice.blas) assert.match(err[0], new RegExp(`^backend: wasm \\(SIMD on, \\d threads?; matrix kernels ${choice.blas.name.replace(/[()]/g, "\\$&")}, \\d threads?; fused kernels (on|off)\\): `));
    else assert.match(err[0], /matrix kernels wasm, no native BLAS/);
  });

  test("the backend choice names the BLAS and its threads", (t) => {
    if (skip) return t.skip(skip);
    assert.ok(choice.blas);
    assert.match(choice.reason, /matrix kernels: /);
    assert.ok(choice.reason.includes(choice.blas.name));
    assert.equal(choice.blas.threads, choice.threads);
    assert.ok(!choice.blasReason.includes("\n"));
  });
});

// ---------------------------------------------------------------------------------------------

function childChoice(env: Record<string, string>, opts = "{ prefer: 'wasm' }"): Promise<{ choice?: BackendChoice; error?: string; stderr: string }> {
  const code = `
const b = require(${JSON.stringify(path.join(ROOT, "src/backend/select.ts"))});
const tf = require("@tensorflow/tfjs");
b.initBackend(${opts}).then((c) => {
  const x = tf.tensor2d([1, 2, 3, 4], [2, 2]);
  process.stdout.write("RESULT " + JSON.stringify({ ...c, product: Array.from(tf.matMul(x, x, false, true).dataSync()) }) + "\\n");
}, (e) => process.stdout.write("ERROR " + JSON.stringify(String(e.message)) + "\\n"));
`;
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv.CLIPLAB_BACKEND;
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", "-e", code], { cwd: ROOT, env: childEnv, timeout: 120_000 }, (_err, stdout, stderr) => {
      const lines = String(stdout).split("\n");
      const res = lines.find((l) => l.startsWith("RESULT "));
      const err = lines.find((l) => l.startsWith("ERROR "));
      resolve({ choice: res ? JSON.parse(res.slice(7)) : undefined, error: err ? JSON.parse(err.slice(6)) : undefined, stderr: String(stderr) });
    });
  });
}

describe("finding the BLAS", { concurrency: 3 }, () => {
  test("search order: Debian's OpenMP build before the pthreads one on Linux, Accelerate first on macOS", () => {
    const linux = blasCandidates("linux", "x64");
    assert.equal(linux[0], "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0");
    assert.equal(linux[1], "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0");
    assert.ok(linux.includes("libopenblas.so.0"));
    assert.match(blasCandidates("darwin", "arm64")[0], /Accelerate\.framework/);
    assert.deepEqual(blasCandidates("win32", "x64"), []);
  });

  test("loadBlas rejects a bad thread count with a one-line error", () => {
    assert.throws(() => loadBlas(0), /threads must be a positive integer, got 0/);
  });

  test("CLIPLAB_BLAS=off keeps the wasm kernels and says so", async () => {
    const r = await childChoice({ CLIPLAB_BLAS: "off" });
    assert.ok(r.choice, r.error ?? r.stderr);
    assert.equal(r.choice.blas, undefined);
    assert.match(r.choice.blasReason, /CLIPLAB_BLAS=off/);
    assert.match(r.choice.reason, /matrix kernels: wasm/);
    assert.deepEqual((r.choice as unknown as { product: number[] }).product, [5, 11, 11, 25]);
  });

  test("initBackend({blas: false}) keeps the wasm kernels", async () => {
    const r = await childChoice({}, "{ prefer: 'wasm', blas: false }");
    assert.ok(r.choice, r.error ?? r.stderr);
    assert.equal(r.choice.blas, undefined);
    assert.match(r.choice.blasReason, /blas: false/);
  });

  test("a CLIPLAB_BLAS path that does not exist fails initBackend with a one-line error naming it", async () => {
    const r = await childChoice({ CLIPLAB_BLAS: "/nonexistent/libopenblas.so.0" });
    assert.equal(r.choice, undefined);
    assert.ok(r.error && !r.error.includes("\n"));
    assert.match(r.error, /CLIPLAB_BLAS=\/nonexistent\/libopenblas\.so\.0: not present/);
  });

  test("a library without cblas_sgemm is refused with the reason", async (t) => {
    const libc = process.platform === "linux" ? "libc.so.6" : undefined;
    if (!libc) return t.skip("Linux only");
    const r = await childChoice({ CLIPLAB_BLAS: libc });
    assert.equal(r.choice, undefined);
    assert.match(r.error ?? "", /CLIPLAB_BLAS=libc\.so\.6: has no cblas_sgemm/);
  });

  test("on the cpu backend there is no BLAS and no reason", async () => {
    const r = await childChoice({}, "{ prefer: 'cpu' }");
    assert.ok(r.choice, r.error ?? r.stderr);
    assert.equal(r.choice.blas, undefined);
    assert.equal(r.choice.blasReason, "");
  });
});

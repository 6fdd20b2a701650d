/**
 * Tests for the backend start-up in src/backend/ (select, request, node_probe, wasm, wasm_threads,
 * kernels): backend selection, its env/option overrides and error messages, the multi-threaded
 * WASM start-up, and the two kernels we add to the wasm backend for training.
 *
 * tfjs backends are process-global and the selection is idempotent, so every case that needs its
 * own selection (forced backends, the automatic order, thread counts) runs in a child process
 * (`process.execPath --import tsx -e ...`) and reports its BackendChoice as JSON. Those children
 * never call process.exit: a child that finishes also proves that WASM pthread workers do not keep
 * a process alive. The kernel tests run in this process on the wasm backend and compare with tfjs'
 * own cpu backend (switching with tf.setBackend; both backends stay registered). No timings are
 * asserted anywhere; timeouts only guard against hangs.
 */
import { describe, test, before } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { currentBackend, initBackend, type BackendChoice } from "../../src/backend/select";
import { registerCpuKernels } from "../../src/backend/kernels";

const ROOT = path.resolve(__dirname, "../..");
const BACKEND_TS = path.join(ROOT, "src/backend/select.ts");
const CHILD_TIMEOUT_MS = 180_000;

interface ChildResult {
  exitCode: number | null;
  choice?: BackendChoice & { active: string; extra?: Record<string, unknown> };
  error?: string;
  stderr: string;
}

/**
 * Runs `initBackend(<optsJs>)` in a fresh Node process with the given env. `afterJs` is the body of
 * an async function (tf, b, c) whose return value is reported as `extra`.
 */
function child(env: Record<string, string | undefined>, optsJs = "undefined", afterJs = "return undefined;"): Promise<ChildResult> {
  const code = `
const b = require(${JSON.stringify(BACKEND_TS)});
const tf = require("@tensorflow/tfjs");
(async () => {
  let c;
  try { c = await b.initBackend(${optsJs}); }
  catch (e) { process.stdout.write("ERROR " + JSON.stringify(String(e && e.message)) + "\\n"); process.exitCode = 3; return; }
  const extra = await (async (tf, b, c) => { ${afterJs} })(tf, b, c);
  process.stdout.write("RESULT " + JSON.stringify({ ...c, active: tf.getBackend(), extra }) + "\\n");
})();
`;
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  delete childEnv.CLIPLAB_BACKEND;
  delete childEnv.CLIPLAB_THREADS;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", "-e", code], { cwd: ROOT, env: childEnv, timeout: CHILD_TIMEOUT_MS, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const lines = String(stdout).split("\n");
      const res = lines.find((l) => l.startsWith("RESULT "));
      const errLine = lines.find((l) => l.startsWith("ERROR "));
      resolve({
        exitCode: err ? (typeof err.code === "number" ? err.code : null) : 0,
        choice: res ? JSON.parse(res.slice(7)) : undefined,
        error: errLine ? JSON.parse(errLine.slice(6)) : undefined,
        stderr: String(stderr),
      });
    });
  });
}

function installed(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}
const TF_NATIVE_PRESENT = installed("@tensorflow/tfjs-node-gpu") || installed("@tensorflow/tfjs-node");

function assertOneLine(msg: string | undefined): asserts msg is string {
  assert.equal(typeof msg, "string");
  assert.ok(!(msg as string).includes("\n"), `expected a one-line message, got ${JSON.stringify(msg)}`);
}

/** Deterministic values in [-1, 1) (LCG), so children and this process can rebuild the same data. */
function lcg(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}
const LCG_JS = `(n, seed) => { const a = new Float32Array(n); let s = seed >>> 0; for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; a[i] = s / 2 ** 31 - 1; } return a; }`;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "length mismatch");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol = 1e-5): void {
  let scale = 1;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  const d = maxAbsDiff(actual, expected);
  assert.ok(d <= tol * scale, `${what}: max |diff| ${d} > ${tol} x max(1, max|expected|) = ${tol * scale}`);
}

// ---------------------------------------------------------------------------------------------

describe("argument and env validation (no backend is started)", () => {
  test("invalid CLIPLAB_BACKEND gives a one-line error listing the valid values", async () => {
    const saved = process.env.CLIPLAB_BACKEND;
    process.env.CLIPLAB_BACKEND = "gpu";
    try {
      await assert.rejects(initBackend(), (e: Error) => {
        assertOneLine(e.message);
        assert.match(e.message, /CLIPLAB_BACKEND="gpu"/);
        assert.match(e.message, /tensorflow, wasm, cpu/);
        return true;
      });
    } finally {
      if (saved === undefined) delete process.env.CLIPLAB_BACKEND;
      else process.env.CLIPLAB_BACKEND = saved;
    }
  });

  test("invalid prefer option gives a one-line error listing the valid values", async () => {
    await assert.rejects(initBackend({ prefer: "webgl" as never }), (e: Error) => {
      assertOneLine(e.message);
      assert.match(e.message, /tensorflow, wasm, cpu/);
      return true;
    });
  });

  test("invalid thread counts are rejected with the valid range", async () => {
    await assert.rejects(initBackend({ threads: 0 }), /integers 1\.\.8/);
    await assert.rejects(initBackend({ threads: 2.5 }), /integers 1\.\.8/);
    const saved = process.env.CLIPLAB_THREADS;
    process.env.CLIPLAB_THREADS = "two";
    try {
      await assert.rejects(initBackend(), (e: Error) => {
        assertOneLine(e.message);
        assert.match(e.message, /CLIPLAB_THREADS="two".*integers 1\.\.8/);
        return true;
      });
    } finally {
      if (saved === undefined) delete process.env.CLIPLAB_THREADS;
      else process.env.CLIPLAB_THREADS = saved;
    }
  });
});

describe("selection in child processes", { concurrency: 3, timeout: CHILD_TIMEOUT_MS * 2 }, () => {
  test("CLIPLAB_BACKEND=cpu forces cpu", async () => {
    const r = await child({ CLIPLAB_BACKEND: "cpu" });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.choice?.name, "cpu");
    assert.equal(r.choice?.active, "cpu");
    assert.equal(r.choice?.threads, 1);
    assert.equal(r.choice?.simd, false);
    assert.match(r.choice!.reason, /CLIPLAB_BACKEND=cpu/);
    assert.deepEqual(r.choice?.tried.map((t) => [t.name, t.ok]), [["cpu", true]]);
    assert.equal(r.stderr, "", "the library (and the cpu banner) must not print");
  });

  test("CLIPLAB_BACKEND=wasm forces wasm, with SIMD", async () => {
    const r = await child({ CLIPLAB_BACKEND: "wasm" });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.choice?.name, "wasm");
    assert.equal(r.choice?.active, "wasm");
    assert.equal(r.choice?.simd, true);
    assert.ok(r.choice!.threads >= 1);
    assertOneLine(r.choice?.reason);
    assert.match(r.choice!.reason, /SIMD.*CLIPLAB_BACKEND=wasm/);
  });

  test("CLIPLAB_BACKEND=tensorflow: starts tfjs-node(-gpu), or fails with a one-line reason (no fallback)", async () => {
    const r = await child({ CLIPLAB_BACKEND: "tensorflow" });
    if (!TF_NATIVE_PRESENT) {
      assert.equal(r.choice, undefined, "must not fall back to another backend");
      assert.equal(r.exitCode, 3);
      assertOneLine(r.error);
      assert.match(r.error, /CLIPLAB_BACKEND=tensorflow/);
      assert.match(r.error, /@tensorflow\/tfjs-node-gpu: not installed/);
      assert.match(r.error, /@tensorflow\/tfjs-node: not installed/);
    } else if (r.choice) {
      assert.equal(r.choice.name, "tensorflow");
      assert.equal(r.choice.active, "tensorflow");
    } else {
      assertOneLine(r.error);
      assert.match(r.error, /tfjs-node/);
    }
  });

  test("prefer option wins over CLIPLAB_BACKEND", async () => {
    const r = await child({ CLIPLAB_BACKEND: "wasm" }, `{ prefer: "cpu" }`);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.choice?.name, "cpu");
    assert.match(r.choice!.reason, /initBackend\(\{prefer: "cpu"\}\)/);
  });

  test("automatic order: tfjs-node-gpu, tfjs-node, wasm, cpu; failures are reported with reasons", async () => {
    const r = await child({});
    assert.equal(r.exitCode, 0, r.stderr);
    const c = r.choice!;
    const order = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node", "wasm", "cpu"];
    const names = c.tried.map((t) => t.name);
    assert.deepEqual(names, order.slice(0, names.length), "attempts follow the documented order");
    for (const t of c.tried.slice(0, -1)) {
      assert.equal(t.ok, false, `${t.name} failed, so the next one was tried`);
      assertOneLine(t.reason);
      assert.ok(t.reason.length > 0);
    }
    assert.equal(c.tried[c.tried.length - 1].ok, true);
    assert.equal(c.active, c.name);
    assert.match(c.reason, /first backend that started/);
    if (!installed("@tensorflow/tfjs-node-gpu")) {
      assert.deepEqual([c.tried[0].name, c.tried[0].ok], ["@tensorflow/tfjs-node-gpu", false]);
      assert.match(c.tried[0].reason, /not installed/);
    }
    if (!TF_NATIVE_PRESENT) {
      assert.equal(c.name, "wasm");
      assert.equal(c.simd, true);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe("WASM threads (child processes)", { timeout: CHILD_TIMEOUT_MS * 3 }, () => {
  // A matmul big enough for XNNPACK to split across threads, a conv2d (XNNPACK convolution) and
  // the gradients through our kernels; results are returned as plain arrays.
  const work = `
const lcg = ${LCG_JS};
const a = tf.tensor2d(lcg(192 * 320, 1), [192, 320]), w = tf.tensor2d(lcg(320 * 256, 2), [320, 256]);
const mm = Array.from(tf.matMul(a, w).dataSync());
const x = tf.tensor4d(lcg(2 * 17 * 19 * 8, 3), [2, 17, 19, 8]), f = tf.tensor4d(lcg(3 * 3 * 8 * 16, 4), [3, 3, 8, 16]);
const conv = Array.from(tf.conv2d(x, f, 1, "same").dataSync());
const dW = Array.from(tf.grad((ff) => tf.sum(tf.mul(tf.conv2d(x, ff, 2, "same"), 0.5)))(f).dataSync());
const table = tf.tensor2d(lcg(500 * 64, 5), [500, 64]);
const ids = tf.tensor1d(Array.from({ length: 300 }, (_, i) => (i * 37) % 500), "int32");
const dEmb = Array.from(tf.grad((t) => tf.sum(tf.square(tf.gather(t, ids))))(table).dataSync());
return { threadsReported: require("@tensorflow/tfjs-backend-wasm").getThreadsCount(), mm, conv, dW, dEmb };
`;
  let one: ChildResult;
  let two: ChildResult;
  before(async () => {
    [one, two] = await Promise.all([
      child({ CLIPLAB_BACKEND: "wasm", CLIPLAB_THREADS: "1" }, "undefined", work),
      child({ CLIPLAB_BACKEND: "wasm", CLIPLAB_THREADS: "2" }, "undefined", work),
    ]);
  });

  test("CLIPLAB_THREADS=2 starts a 2-thread XNNPACK pool and the process exits on its own", () => {
    assert.equal(two.exitCode, 0, two.stderr || two.error);
    assert.equal(two.choice?.name, "wasm");
    assert.equal(two.choice?.threads, 2);
    assert.equal(two.choice?.extra?.threadsReported, 2);
    assert.match(two.choice!.reason, /2 threads/);
    assert.equal(two.stderr, "");
  });

  test("with no thread request the wasm backend runs 1 thread (the measured default)", async () => {
    const r = await child({ CLIPLAB_BACKEND: "wasm" });
    assert.equal(r.exitCode, 0, r.stderr || r.error);
    assert.equal(r.choice?.threads, 1);
  });

  test("CLIPLAB_THREADS=1 gives one thread", () => {
    assert.equal(one.exitCode, 0, one.stderr || one.error);
    assert.equal(one.choice?.threads, 1);
    assert.equal(one.choice?.extra?.threadsReported, 1);
  });

  test("results on 2 threads equal 1 thread", () => {
    const e1 = one.choice!.extra as Record<string, number[]>;
    const e2 = two.choice!.extra as Record<string, number[]>;
    for (const k of ["mm", "conv", "dW", "dEmb"]) assertClose(e2[k], e1[k], `${k} (2 threads vs 1)`);
  });

  test("shutdownBackend stops the workers, and a new initBackend starts afresh", async () => {
    const r = await child({ CLIPLAB_BACKEND: "wasm" }, "{ threads: 2 }", `
const first = c.threads;
const v1 = tf.matMul(tf.ones([64, 64]), tf.ones([64, 64])).dataSync()[0];
await b.shutdownBackend();
const afterShutdown = b.currentBackend() === undefined;
const c2 = await b.initBackend({ threads: 1 });
const v2 = tf.matMul(tf.ones([64, 64]), tf.ones([64, 64])).dataSync()[0];
return { first, v1, afterShutdown, second: c2.threads, v2 };
`);
    assert.equal(r.exitCode, 0, r.stderr || r.error);
    assert.deepEqual(r.choice?.extra, { first: 2, v1: 64, afterShutdown: true, second: 1, v2: 64 });
  });
});

// ---------------------------------------------------------------------------------------------

describe("initBackend in this process, and the wasm training kernels", () => {
  let wasmChoice: BackendChoice;
  before(async () => {
    wasmChoice = await initBackend({ prefer: "wasm", threads: 1 });
  });

  test("is idempotent: same choice object, also for concurrent calls", async () => {
    assert.equal(wasmChoice.name, "wasm");
    assert.equal(wasmChoice.simd, true);
    assert.equal(currentBackend(), wasmChoice);
    const [a, b] = await Promise.all([initBackend(), initBackend({ prefer: "wasm" })]);
    assert.equal(a, wasmChoice);
    assert.equal(b, wasmChoice);
    assert.equal(tf.getBackend(), "wasm");
  });

  test("asking for a different backend or thread count afterwards is a one-line error", async () => {
    await assert.rejects(initBackend({ prefer: "cpu" }), (e: Error) => {
      assertOneLine(e.message);
      assert.match(e.message, /already running/);
      return true;
    });
    await assert.rejects(initBackend({ threads: 2 }), /already runs with 1/);
    assert.equal(tf.getBackend(), "wasm");
  });

  /** Runs `f` on the given backend and returns plain arrays (tensors are disposed). */
  async function on(backend: "wasm" | "cpu", f: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
    assert.ok(await tf.setBackend(backend));
    if (backend === "cpu") {
      const b = tf.backend() as unknown as { firstUse?: boolean };
      if (b.firstUse !== undefined) b.firstUse = false; // no "install tfjs-node" banner in test output
    }
    try {
      return tf.tidy(() => {
        const r = f();
        return (Array.isArray(r) ? r : [r]).map((t) => t.dataSync() as Float32Array);
      });
    } finally {
      assert.ok(await tf.setBackend("wasm"));
    }
  }

  async function compare(what: string, f: () => tf.Tensor | tf.Tensor[]): Promise<void> {
    const before = tf.memory().numTensors;
    const w = await on("wasm", f);
    const c = await on("cpu", f);
    assert.equal(w.length, c.length);
    w.forEach((arr, i) => assertClose(arr, c[i], `${what} [output ${i}]`));
    assert.equal(tf.memory().numTensors, before, `${what}: leaked tensors`);
  }

  test("the training kernels are registered for wasm", () => {
    assert.ok(tf.getKernel("UnsortedSegmentSum", "wasm"));
    assert.ok(tf.getKernel("Conv2DBackpropFilter", "wasm"));
    assert.ok(tf.getKernel("Conv2DBackpropInput", "wasm"));
  });

  test("UnsortedSegmentSum matches cpu (2-D, 1-D, out-of-range ids dropped, empty segments)", async () => {
    const x = lcg(400 * 24, 11);
    const ids = Int32Array.from({ length: 400 }, (_, i) => ((i * 7919) % 67) - 3); // some < 0, some >= 60
    await compare("segment sum 2-D", () => tf.unsortedSegmentSum(tf.tensor2d(x, [400, 24]), tf.tensor1d(ids, "int32"), 60));
    await compare("segment sum 1-D", () => tf.unsortedSegmentSum(tf.tensor1d(x.subarray(0, 400)), tf.tensor1d(ids, "int32"), 70));
    await compare("segment sum 3-D", () => tf.unsortedSegmentSum(tf.tensor3d(x, [400, 6, 4]), tf.tensor1d(ids, "int32"), 64));
  });

  test("UnsortedSegmentSum on int32 data sums exactly", async () => {
    const out = (await on("wasm", () => tf.unsortedSegmentSum(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], "int32"), tf.tensor1d([1, 0, 1], "int32"), 3)))[0];
    assert.deepEqual(Array.from(out), [3, 4, 6, 8, 0, 0]);
  });

  test("gradient of tf.gather (embedding lookup) matches cpu", async () => {
    const table = lcg(300 * 32, 12);
    const ids = Int32Array.from({ length: 250 }, (_, i) => (i * 101) % 300);
    const weights = lcg(250 * 32, 13);
    await compare("grad of gather axis 0", () =>
      tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, tf.tensor1d(ids, "int32")), tf.tensor2d(weights, [250, 32]))))(tf.tensor2d(table, [300, 32])),
    );
    // axis 1 goes through transposes around UnsortedSegmentSum
    await compare("grad of gather axis 1", () =>
      tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.gather(t, tf.tensor1d([3, 0, 3, 5], "int32"), 1))))(tf.tensor3d(lcg(4 * 6 * 5, 14), [4, 6, 5])),
    );
  });

  const convCases: { name: string; x: [number, number, number, number]; f: [number, number, number, number]; strides: number | [number, number]; pad: "same" | "valid" | number }[] = [
    { name: "3x3 same stride 1", x: [2, 9, 11, 3], f: [3, 3, 3, 5], strides: 1, pad: "same" },
    { name: "3x2 valid stride 2", x: [2, 10, 10, 4], f: [3, 2, 4, 6], strides: 2, pad: "valid" },
    { name: "3x3 same stride [2,3]", x: [1, 13, 14, 20], f: [3, 3, 20, 7], strides: [2, 3], pad: "same" },
    { name: "numeric pad 1 stride 2", x: [2, 8, 9, 5], f: [3, 3, 5, 4], strides: 2, pad: 1 },
    { name: "patch embedding 4x4 stride 4", x: [3, 16, 16, 3], f: [4, 4, 3, 8], strides: 4, pad: "valid" },
    { name: "1x1 conv", x: [2, 5, 6, 16], f: [1, 1, 16, 12], strides: 1, pad: "valid" },
    // Stride 1 takes the forward-convolution paths of our Conv2DBackpropInput / Conv2DBackpropFilter.
    { name: "3x3 numeric pad 1 stride 1", x: [3, 8, 8, 8], f: [3, 3, 8, 16], strides: 1, pad: 1 },
    { name: "3x3 valid stride 1 (pre-padded, as the ResNet does)", x: [2, 10, 10, 6], f: [3, 3, 6, 5], strides: 1, pad: "valid" },
    { name: "2x4 same stride 1 (asymmetric padding)", x: [2, 7, 9, 3], f: [2, 4, 3, 4], strides: 1, pad: "same" },
    { name: "3x3 pad 3 stride 1 (padding beyond the filter)", x: [1, 5, 6, 4], f: [3, 3, 4, 3], strides: 1, pad: 3 },
  ];
  for (const cc of convCases) {
    test(`gradient of tf.conv2d (${cc.name}) matches cpu, filter and input`, async () => {
      const xv = lcg(cc.x.reduce((a, b) => a * b), 21);
      const fv = lcg(cc.f.reduce((a, b) => a * b), 22);
      await compare(`conv2d grads, ${cc.name}`, () => {
        const x = tf.tensor4d(xv, cc.x);
        const f = tf.tensor4d(fv, cc.f);
        const y = tf.conv2d(x, f, cc.strides, cc.pad);
        const w = tf.tensor(lcg(y.size, 23), y.shape);
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, cc.strides, cc.pad), w)));
        return g([x, f]);
      });
    });
  }

  test("Conv2DBackpropFilter kernel directly: NCHW and a large strided input that needs several im2col chunks", async () => {
    // NCHW (the wasm conv2d itself is NHWC-only, so only the kernel can be exercised).
    const x = lcg(2 * 3 * 9 * 10, 31);
    const dy = lcg(2 * 4 * 5 * 5, 32);
    await compare("Conv2DBackpropFilter NCHW", () =>
      tf.engine().runKernel("Conv2DBackpropFilter", { x: tf.tensor4d(x, [2, 3, 9, 10]), dy: tf.tensor4d(dy, [2, 4, 5, 5]) }, { strides: [2, 2], pad: "same", dataFormat: "NCHW", filterShape: [3, 3, 3, 4] }) as tf.Tensor,
    );
    // Stride 2 (stride 1 takes the forward-convolution path): rows = 36*30 = 1080, K = 3*3*900 =
    // 8100: 8.7M patch elements > the 8M-element chunk bound, so two im2col chunks are accumulated.
    // tfjs' cpu kernel needs seconds for this, so the reference here is a direct loop.
    const xs: [number, number, number, number] = [1, 72, 60, 900];
    const big = lcg(xs.reduce((a, b) => a * b), 33);
    const [OH, OW] = [36, 30];
    const dyBig = lcg(OH * OW * 2, 34);
    const got = (
      await on("wasm", () => tf.engine().runKernel("Conv2DBackpropFilter", { x: tf.tensor4d(big, xs), dy: tf.tensor4d(dyBig, [1, OH, OW, 2]) }, { strides: [2, 2], pad: "same", dataFormat: "NHWC", filterShape: [3, 3, 900, 2] }) as tf.Tensor)
    )[0];
    const [, H, W, C] = xs;
    const want = new Float64Array(3 * 3 * C * 2);
    // "same" with stride 2 over an even side pads 0 before and 1 after.
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++)
        for (let kh = 0; kh < 3; kh++)
          for (let kw = 0; kw < 3; kw++) {
            const ih = oh * 2 + kh;
            const iw = ow * 2 + kw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            for (let c = 0; c < C; c++) {
              const xv = big[(ih * W + iw) * C + c];
              for (let o = 0; o < 2; o++) want[((kh * 3 + kw) * C + c) * 2 + o] += xv * dyBig[(oh * OW + ow) * 2 + o];
            }
          }
    assertClose(got, want, "Conv2DBackpropFilter chunked");
  });
});

describe("cpu training kernel", () => {
  test("the one-pass UnsortedSegmentSum gives the embedding gradient on the cpu backend", async () => {
    registerCpuKernels();
    const previous = tf.getBackend();
    await tf.setBackend("cpu");
    try {
      const vocab = 49408;
      const width = 8;
      const table = tf.randomNormal([vocab, width], 0, 1, "float32", 4);
      const ids = tf.tensor1d([5, 49407, 5, 0, 123, 49407], "int32");
      const weights = tf.randomNormal([6, width], 0, 1, "float32", 5);
      const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids), weights)))(table);
      assert.deepEqual(grad.shape, [vocab, width]);
      const g = grad.dataSync();
      const w = weights.dataSync();
      const expected = new Float32Array(vocab * width);
      Array.from(ids.dataSync()).forEach((id, i) => {
        for (let k = 0; k < width; k++) expected[id * width + k] += w[i * width + k];
      });
      for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(g[i] - expected[i]) < 1e-6, `index ${i}`);
      tf.dispose([table, ids, weights, grad]);
    } finally {
      await tf.setBackend(previous);
    }
  });
});

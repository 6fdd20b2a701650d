/**
 * Tests for the fused C kernels (src/backend/fused*.ts, csrc/cliplab_kernels.c) and the native
 * linear layer: each op on the wasm backend against the tfjs composite it replaces, run on tfjs'
 * cpu backend, on seeded random shapes (odd sizes, one token, one head, empty batches), forward
 * and gradients; nothing left in memory; the ops refuse to run when inactive; how the library is
 * found. Skipped (saying why) where no BLAS or no built library is present.
 */
import { describe, test, before } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend, type BackendChoice } from "../../src/backend";
import { fusedLib } from "../../src/backend/fused";
import { fusedAttention } from "../../src/backend/fused_attention";
import { fusedLayerNorm } from "../../src/backend/fused_layernorm";
import { fusedBiasActivation } from "../../src/backend/fused_activation";
import { defaultFusedLibPath } from "../../src/backend/fused_lib";
import { nativeLinear } from "../../src/backend/native_linear";
import { attend, causalMask } from "../../src/model/attention";
import { activate } from "../../src/model/layers";
import { Random } from "../../src/util/random";

const ROOT = path.resolve(__dirname, "../..");
let choice: BackendChoice;
let skip: string | false = false;

before(async () => {
  choice = await initBackend({ prefer: "wasm" });
  if (!choice.blas) skip = `no native BLAS here: ${choice.blasReason}`;
  else if (!choice.fused) skip = `no fused-kernel library: ${choice.fusedReason}`;
});

type Result = { values: Float32Array; shape: number[] }[];

function collect(ts: tf.Tensor | tf.Tensor[]): Result {
  return (Array.isArray(ts) ? ts : [ts]).map((t) => ({ values: t.dataSync() as Float32Array, shape: t.shape }));
}

function onWasm(f: () => tf.Tensor | tf.Tensor[]): Result {
  assert.equal(tf.getBackend(), "wasm");
  const before = tf.memory().numTensors;
  const out = tf.tidy(f);
  const r = collect(out);
  tf.dispose(out);
  assert.equal(tf.memory().numTensors, before, "no tensors left behind");
  return r;
}

async function onCpu(f: () => tf.Tensor | tf.Tensor[]): Promise<Result> {
  await tf.setBackend("cpu");
  try {
    const out = tf.tidy(f);
    const r = collect(out);
    tf.dispose(out);
    return r;
  } finally {
    await tf.setBackend("wasm");
  }
}

function assertClose(got: Result, want: Result, what: string, tol = 5e-5): void {
  assert.equal(got.length, want.length, `${what}: number of outputs`);
  got.forEach((g, i) => {
    assert.deepEqual(g.shape, want[i].shape, `${what} output ${i}: shape`);
    let scale = 1;
    for (const v of want[i].values) scale = Math.max(scale, Math.abs(v));
    let d = 0;
    for (let j = 0; j < g.values.length; j++) {
      const e = Math.abs(g.values[j] - want[i].values[j]);
      if (!(e <= d)) d = Number.isNaN(e) ? Infinity : e;
    }
    assert.ok(d <= tol * scale, `${what} output ${i}: max |fused - tfjs| ${d} > ${tol} x ${scale}`);
  });
}

function rand(rng: Random, shape: number[], scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(rng.fillUniform(new Float32Array(n), -scale, scale), shape);
}

/** Data made once and rebuilt as tensors on whichever backend runs the closure. */
function data(rng: Random, shape: number[], scale = 1): () => tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = rng.fillUniform(new Float32Array(n), -scale, scale);
  return () => tf.tensor(v, shape);
}

describe("fused attention against tfjs' split/transpose/matMul/softmax", () => {
  const cases: [number, number, number, number, boolean][] = [
    // B, T, D, heads, causal mask
    [2, 7, 12, 3, true],
    [3, 5, 8, 1, false],
    [1, 1, 16, 4, true],
    [2, 50, 64, 4, false],
    [4, 77, 32, 2, true],
    [1, 13, 24, 6, false],
  ];
  for (const [B, T, D, H, masked] of cases) {
    test(`B=${B} T=${T} D=${D} heads=${H}${masked ? " causal" : ""}: forward and d(qkv)`, async (t) => {
      if (skip) return t.skip(skip);
      const rng = new Random(B * 1000 + T * 10 + H);
      const qkv = data(rng, [B, T, 3 * D], 2);
      const w = data(rng, [B, T, D]);
      const reference = (x: tf.Tensor) => {
        const [q, k, v] = tf.split(x, 3, 2) as tf.Tensor3D[];
        return attend(q, k, v, H, masked ? causalMask(T) : undefined);
      };
      const fused = (x: tf.Tensor) => fusedAttention(x as tf.Tensor3D, H, masked ? causalMask(T) : undefined);
      const run = (f: (x: tf.Tensor) => tf.Tensor) => () => {
        const x = qkv();
        const y = f(x);
        const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(f(xx), w())))(x);
        return [y, g];
      };
      assert.ok(fusedLib());
      assertClose(onWasm(run(fused)), await onCpu(run(reference)), "attention");
    });
  }

  test("an empty batch gives an empty result", (t) => {
    if (skip) return t.skip(skip);
    const r = onWasm(() => fusedAttention(tf.zeros([0, 4, 6]) as tf.Tensor3D, 2));
    assert.deepEqual(r[0].shape, [0, 4, 2]);
  });

  test("bad shapes are one-line errors naming the kernel", (t) => {
    if (skip) return t.skip(skip);
    assert.throws(() => tf.tidy(() => fusedAttention(tf.zeros([1, 4, 9]) as tf.Tensor3D, 2)), /CliplabAttention: heads must divide the width 3, got 2/);
    assert.throws(() => tf.tidy(() => fusedAttention(tf.zeros([1, 4, 12]) as tf.Tensor3D, 2, causalMask(3))), /mask must be float32 \[4, 4\]/);
  });
});

describe("fused LayerNorm, bias + activation and the native linear layer against tfjs", () => {
  test("LayerNorm: rank 2 and 3, odd widths; dx, dgamma, dbeta", async (t) => {
    if (skip) return t.skip(skip);
    const rng = new Random(11);
    for (const shape of [[5, 7], [2, 9, 33], [1, 1], [3, 4, 768]]) {
      const d = shape[shape.length - 1];
      const x = data(rng, shape, 3), g = data(rng, [d]), b = data(rng, [d]), w = data(rng, shape);
      const run = (f: (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor) => () => {
        const [xi, gi, bi] = [x(), g(), b()];
        const y = f(xi, gi, bi);
        const grads = tf.grads((a: tf.Tensor, c: tf.Tensor, e: tf.Tensor) => tf.sum(tf.mul(f(a, c, e), w())))([xi, gi, bi]);
        return [y, ...grads];
      };
      const reference = (xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => {
        const mean = tf.mean(xi, -1, true);
        const c = tf.sub(xi, mean);
        return tf.add(tf.mul(tf.mul(c, tf.rsqrt(tf.add(tf.mean(tf.square(c), -1, true), 1e-5))), gi), bi);
      };
      assertClose(onWasm(run((a, c, e) => fusedLayerNorm(a, c, e, 1e-5))), await onCpu(run(reference)), `LayerNorm [${shape}]`);
    }
  });

  for (const kind of ["quick_gelu", "gelu"] as const) {
    test(`bias + ${kind}: with and without bias, over [-6, 6]; dx and dbias`, async (t) => {
      if (skip) return t.skip(skip);
      const rng = new Random(kind === "gelu" ? 12 : 13);
      for (const [shape, withBias] of [[[7, 13], true], [[2, 5, 9], false], [[3, 3072], true]] as [number[], boolean][]) {
        const c = shape[shape.length - 1];
        const x = data(rng, shape, 6), b = data(rng, [c]), w = data(rng, shape);
        const run = (f: (x: tf.Tensor, b?: tf.Tensor) => tf.Tensor) => () => {
          const xi = x();
          if (!withBias) return [f(xi), tf.grad((a: tf.Tensor) => tf.sum(tf.mul(f(a), w())))(xi)];
          const bi = b();
          return [f(xi, bi), ...tf.grads((a: tf.Tensor, e: tf.Tensor) => tf.sum(tf.mul(f(a, e), w())))([xi, bi])];
        };
        const reference = (xi: tf.Tensor, bi?: tf.Tensor) => activate(bi ? tf.add(xi, bi) : xi, kind);
        assertClose(onWasm(run((xi, bi) => fusedBiasActivation(xi, bi, kind))), await onCpu(run(reference)), `${kind} [${shape}] bias=${withBias}`, 2e-5);
      }
    });
  }

  test("the native linear layer: with and without bias; dx, dW, db", async (t) => {
    if (skip) return t.skip(skip);
    const rng = new Random(14);
    for (const [n, i, o, withBias] of [[9, 5, 7, true], [1, 33, 3, false], [64, 48, 80, true]] as [number, number, number, boolean][]) {
      const x = data(rng, [n, i]), wt = data(rng, [i, o]), b = data(rng, [o]), w = data(rng, [n, o]);
      const run = (f: (x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D) => tf.Tensor) => () => {
        const inputs = withBias ? [x(), wt(), b()] : [x(), wt()];
        const loss = (...a: tf.Tensor[]) => tf.sum(tf.mul(f(a[0] as tf.Tensor2D, a[1] as tf.Tensor2D, a[2] as tf.Tensor1D | undefined), w()));
        return [f(inputs[0] as tf.Tensor2D, inputs[1] as tf.Tensor2D, inputs[2] as tf.Tensor1D | undefined), ...tf.grads(loss)(inputs)];
      };
      const reference = (xi: tf.Tensor2D, wi: tf.Tensor2D, bi?: tf.Tensor1D) => (bi ? tf.add(tf.matMul(xi, wi), bi) : tf.matMul(xi, wi));
      assertClose(onWasm(run(nativeLinear)), await onCpu(run(reference)), `linear [${n},${i}]x[${i},${o}] bias=${withBias}`);
    }
  });

  test("inference leaves no backend buffers behind", (t) => {
    if (skip) return t.skip(skip);
    const rng = new Random(15);
    const qkv = rand(rng, [2, 9, 24]), x = rand(rng, [2, 9, 8]), g = rand(rng, [8]), b = rand(rng, [8]);
    const ids = tf.backend().numDataIds();
    tf.dispose([fusedAttention(qkv as tf.Tensor3D, 2, causalMask(9)), fusedLayerNorm(x, g, b, 1e-5), fusedBiasActivation(x, b, "gelu")]);
    assert.equal(tf.backend().numDataIds(), ids + 1, "only the causal mask made here remains");
    tf.dispose([qkv, x, g, b]);
  });
});

describe("fused ops when inactive, and finding the library", () => {
  test("on the cpu backend fusedLib() is undefined and the ops refuse to run", async (t) => {
    if (skip) return t.skip(skip);
    await tf.setBackend("cpu");
    try {
      assert.equal(fusedLib(), undefined);
      assert.throws(() => fusedLayerNorm(tf.ones([2, 2]), tf.ones([2]), tf.zeros([2]), 1e-5), /not active \(check fusedLib\(\) first\)/);
      assert.throws(() => nativeLinear(tf.ones([2, 2]) as tf.Tensor2D, tf.ones([2, 2]) as tf.Tensor2D), /native BLAS kernels are not active/);
    } finally {
      await tf.setBackend("wasm");
    }
  });

  test("the default library path is build/native in the repository", () => {
    assert.equal(defaultFusedLibPath("linux"), path.join(ROOT, "build", "native", "libcliplab_kernels.so"));
    assert.equal(defaultFusedLibPath("darwin"), path.join(ROOT, "build", "native", "libcliplab_kernels.dylib"));
  });

  test("the backend choice names the library, or says why there is none", (t) => {
    if (!choice.blas) return t.skip(`no BLAS: ${choice.blasReason}`);
    assert.ok(!choice.fusedReason.includes("\n"));
    assert.match(choice.reason, /fused kernels: /);
    if (choice.fused) assert.ok(choice.reason.includes(choice.fused.path));
    else assert.match(choice.fusedReason, /not built|older than|CLIPLAB_NATIVE_LIB|cannot/);
  });

  test("CLIPLAB_NATIVE_LIB=off and a missing path are reported, and the BLAS kernels still run", async () => {
    const run = (value: string) =>
      new Promise<BackendChoice>((resolve, reject) => {
        const code = `require(${JSON.stringify(path.join(ROOT, "src/backend.ts"))}).initBackend({ prefer: "wasm" }).then((c) => process.stdout.write("RESULT " + JSON.stringify(c) + "\\n"), (e) => process.stdout.write("ERROR " + e.message + "\\n"));`;
        execFile(process.execPath, ["--import", "tsx", "-e", code], { cwd: ROOT, env: { ...process.env, CLIPLAB_NATIVE_LIB: value }, timeout: 120_000 }, (err, stdout) => {
          const line = String(stdout).split("\n").find((l) => l.startsWith("RESULT "));
          if (!line) return reject(new Error(`no result: ${err?.message ?? ""} ${stdout}`));
          resolve(JSON.parse(line.slice(7)));
        });
      });
    const [off, missing] = await Promise.all([run("off"), run("/nonexistent/libcliplab_kernels.so")]);
    assert.equal(off.fused, undefined);
    assert.equal(missing.fused, undefined);
    if (off.blas) {
      assert.match(off.fusedReason, /CLIPLAB_NATIVE_LIB=off/);
      assert.match(missing.fusedReason, /CLIPLAB_NATIVE_LIB=\/nonexistent\/libcliplab_kernels\.so: not present/);
    }
  });
});

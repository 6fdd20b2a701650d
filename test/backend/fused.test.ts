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
import { initBackend, type BackendChoice } from "../../src/backend/select";
import { fusedLib, registerFusedKernels, unregisterFusedKernels } from "../../src/backend/fused";
import { activeFusedLib } from "../../src/backend/fused_lib";
import { AdamW } from "../../src/train/adamw";
import { fusedAttention } from "../../src/backend/fused_attention";
import { fusedLayerNorm } from "../../src/backend/fused_layernorm";
import { fusedBiasActivation } from "../../src/backend/fused_activation";
import { defaultFusedLibPath } from "../../src/backend/fused_lib";
import { nativeLinear } from "../../src/backend/native_linear";
import { fusedBatchNormTrain } from "../../src/backend/fused_batchnorm";
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

describe("fused BatchNorm (training mode, + ReLU) and the average-pool gradient against tfjs", () => {
  for (const relu of [false, true]) {
    test(`BatchNorm${relu ? " + ReLU" : ""}: output, running statistics, dx, dgamma, dbeta on odd shapes`, async (t) => {
      if (skip) return t.skip(skip);
      const rng = new Random(relu ? 31 : 32);
      for (const shape of [[3, 5, 7, 6], [2, 1, 2, 3], [128, 4, 4, 40]]) {
        const c = shape[3];
        const n = shape[0] * shape[1] * shape[2];
        const x = data(rng, shape, 2), g = data(rng, [c]), b = data(rng, [c]), w = data(rng, shape), rm = data(rng, [c]), rv = data(rng, [c]);
        const reference = (xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor, running?: { mean: tf.Variable; variance: tf.Variable }) => {
          const { mean, variance } = tf.moments(xi, [0, 1, 2]);
          if (running) {
            running.mean.assign(tf.add(tf.mul(running.mean, 0.9), tf.mul(mean, 0.1)));
            running.variance.assign(tf.add(tf.mul(running.variance, 0.9), tf.mul(variance, (0.1 * n) / (n - 1))));
          }
          const y = tf.add(tf.mul(tf.div(tf.sub(xi, mean), tf.sqrt(tf.add(variance, 1e-5))), gi), bi);
          return relu ? tf.relu(y) : y;
        };
        const fused = (xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor, running?: { mean: tf.Variable; variance: tf.Variable }) =>
          fusedBatchNormTrain(xi, gi, bi, 1e-5, relu, running ? { ...running, momentum: 0.1 } : undefined);
        const run = (f: typeof reference) => () => {
          const [xi, gi, bi] = [x(), g(), b()];
          const running = { mean: tf.variable(rm(), false), variance: tf.variable(rv(), false) };
          const y = f(xi, gi, bi, running);
          const stats = [running.mean.clone(), running.variance.clone()];
          tf.dispose([running.mean, running.variance]);
          const grads = tf.grads((a: tf.Tensor, e: tf.Tensor, h: tf.Tensor) => tf.sum(tf.mul(f(a, e, h), w())))([xi, gi, bi]);
          return [y, ...stats, ...grads];
        };
        assertClose(onWasm(run(fused)), await onCpu(run(reference)), `BatchNorm [${shape}] relu=${relu}`, 1e-4);
      }
    });
  }

  test("AvgPoolGrad of 'valid' pools (2x2/2, 3x3/2, 2x3/1) matches cpu; 'same' padding falls back", async (t) => {
    if (skip) return t.skip(skip);
    const rng = new Random(33);
    for (const [shape, size, stride, pad] of [[[2, 8, 8, 5], 2, 2, "valid"], [[1, 9, 7, 3], 3, 2, "valid"], [[2, 5, 6, 4], [2, 3], 1, "valid"], [[2, 5, 5, 3], 3, 2, "same"]] as [number[], number | [number, number], number, "valid" | "same"][]) {
      const x = data(rng, shape);
      const probe = tf.tidy(() => tf.avgPool(x() as tf.Tensor4D, size, stride, pad));
      const w = data(rng, probe.shape);
      probe.dispose();
      const run = () => tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(tf.avgPool(xi as tf.Tensor4D, size, stride, pad), w())))(x());
      assertClose(onWasm(run), await onCpu(run), `avgPool grad [${shape}] size ${size} stride ${stride} ${pad}`);
    }
  });
});

describe("fused AdamW (in place) against the tfjs AdamW", () => {
  /** Five steps of a fused-group AdamW (decayed and undecayed parameters), with or without clipping. */
  function train(useC: boolean, clip: number | null): Float32Array[] {
    const lib = activeFusedLib()!;
    if (useC) registerFusedKernels(lib);
    else unregisterFusedKernels();
    try {
      const rng = new Random(21);
      const params = [[17, 5], [9], [3, 4, 2]].map((shape, i) => ({ name: `p${i}`, variable: tf.variable(rand(rng, shape)), decay: shape.length > 1 }));
      const opt = new AdamW(params, { weightDecay: 0.1 }, { fuse: true });
      for (let s = 0; s < 5; s++) {
        const grads: Record<string, tf.Tensor> = {};
        for (const p of params) grads[p.name] = rand(rng, p.variable.shape, 3);
        if (clip === null) opt.apply(grads, 0.01);
        else opt.clipAndApply(grads, 0.01, clip);
        tf.dispose(Object.values(grads));
      }
      const out = params.map((p) => p.variable.dataSync() as Float32Array);
      const st = opt.getState();
      out.push(...params.flatMap((p) => [st.m.get(p.name)!, st.v.get(p.name)!]));
      opt.dispose();
      tf.dispose(params.map((p) => p.variable));
      return out;
    } finally {
      registerFusedKernels(lib);
    }
  }

  test("without clipping: the same bits as the tfjs update, weights and moments", (t) => {
    if (skip) return t.skip(skip);
    const c = train(true, null);
    const js = train(false, null);
    c.forEach((a, i) => assert.deepEqual(Array.from(a), Array.from(js[i]), `array ${i}`));
  });

  test("with clipping (norm summed in double): within float rounding of the tfjs update", (t) => {
    if (skip) return t.skip(skip);
    const c = train(true, 1.0);
    const js = train(false, 1.0);
    c.forEach((a, i) => assertClose([{ values: a, shape: [a.length] }], [{ values: js[i], shape: [a.length] }], `array ${i}`, 1e-5));
  });

  test("a convolution filter updated by the optimizer is seen by the next convolution (XNNPACK caches packed filters)", (t) => {
    if (skip) return t.skip(skip);
    const rng = new Random(22);
    const x = rand(rng, [2, 6, 6, 3]) as tf.Tensor4D;
    const filter = tf.variable(rand(rng, [3, 3, 3, 4])); // 4 output channels: the wasm (XNNPACK) convolution
    const opt = new AdamW([{ name: "f", variable: filter, decay: true }], { weightDecay: 0.1 });
    for (let s = 0; s < 3; s++) {
      tf.tidy(() => tf.conv2d(x, filter as tf.Tensor4D, 1, "same").dataSync()); // builds and caches the operator
      const g = rand(rng, [3, 3, 3, 4]);
      opt.apply({ f: g }, 0.05);
      g.dispose();
      const got = tf.tidy(() => tf.conv2d(x, filter as tf.Tensor4D, 1, "same").dataSync());
      const fresh = tf.tidy(() => tf.conv2d(x, tf.tensor4d(filter.dataSync() as Float32Array, [3, 3, 3, 4]), 1, "same").dataSync());
      assert.deepEqual(Array.from(got), Array.from(fresh), `step ${s + 1}`);
    }
    opt.dispose();
    tf.dispose([x, filter]);
  });

  test("a parameter whose storage is shared (a clone) gets its own copy; the clone keeps its values", (t) => {
    if (skip) return t.skip(skip);
    const v = tf.variable(tf.tensor1d([1, 2, 3]));
    const snapshot = v.clone();
    const opt = new AdamW([{ name: "v", variable: v, decay: false }], {});
    opt.apply({ v: tf.tensor1d([1, 1, 1]) }, 0.1);
    assert.deepEqual(Array.from(snapshot.dataSync()), [1, 2, 3]);
    assert.ok(Array.from(v.dataSync()).every((x, i) => x < [1, 2, 3][i]), "the variable moved");
    opt.dispose();
    tf.dispose([v, snapshot]);
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
        const code = `require(${JSON.stringify(path.join(ROOT, "src/backend/select.ts"))}).initBackend({ prefer: "wasm" }).then((c) => process.stdout.write("RESULT " + JSON.stringify(c) + "\\n"), (e) => process.stdout.write("ERROR " + e.message + "\\n"));`;
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

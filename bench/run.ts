/**
 * `npm run bench [-- options]`: cliplab's benchmarks next to PyTorch on this machine.
 *
 * Each suite is a module (bench/<suite>.ts) with a PyTorch counterpart subcommand in
 * bench/torch_peer.py; results go to bench/out/<suite>.json. Suites run one after another.
 *
 *   --only=a,b          run only these suites (default: all)
 *   --models=a,b        inference: model presets (default ViT-B-32,RN50)
 *   --sides=a,b         inference: tfjs, tfjs-wasm, onnx, onnx-int8, torch, ort (default all; see bench/inference.ts)
 *   --ort-spinning      inference: let onnxruntime's idle threads spin (its default; off here, see RESULTS.md)
 *   --image-batch=N     inference: images per call (default 8)
 *   --text-batch=N      inference: texts per call (default 16)
 *   --iters=N           inference: timed rounds per encoder (default 5)
 *   --warmup=N          inference: untimed calls first (default 1)
 *   --budget=S          inference: stop an encoder's timed rounds after S seconds, all sides (default 60)
 *   --quiet-wait=S      inference, train: wait up to S s for other processes to go quiet before timing (default 10)
 *   --threads=N         threads requested from tfjs WASM and given to torch (default 2)
 *   --torch-omp-wait=W  passive (default), active or inherit: OMP_WAIT_POLICY for the PyTorch peer
 *                       (an OMP_WAIT_POLICY already in the environment wins)
 *   --seed=N            model and input seed (default 0)
 *   --no-torch          skip the PyTorch peer
 *   --no-parity         skip the feature comparison on our weights
 *   --train-batches=a,b train: batch sizes (default 128,512)
 *   --train-steps=N     train: timed steps per side per configuration (default 24, in 4 alternating chunks)
 *   --train-warmup=N    train: untimed steps per side first (default 3)
 *   --train-threads=a,b train: WASM thread counts, each in its own worker process; torch gets the same (default 1,2)
 *   --cpu-steps=N       train: timed steps of the pure-JS cpu backend at batch 128 (default 2; 0 skips it)
 *   --cpu-budget=S      train: stop the cpu backend after S seconds, a step in flight then counts as a bound (default 180)
 *   --no-profile        train: skip the tf.profile of one step
 *   --accuracy-threads=N train-accuracy: threads for both sides (default 2)
 *   --umap-points=N, --umap-dim=D, --umap-epochs=E, --umap-nndescent: umap (see bench/umap.ts)
 *   --data-images=N, --data-consumer-rate=R: data (see bench/data_pipeline.ts)
 *   --embed-images=N, --embed-engines=tfjs,onnx,onnx-int8: embed (see bench/embed_folder.ts)
 */
import { ALL_SIDES, DEFAULT_INFERENCE_OPTIONS, InferenceBenchOptions, SideName, runInferenceBench } from "./inference";
import { initBackend, shutdownBackend } from "../src/backend/select";
import { BenchContext, machineInfo } from "./common";
import { DEFAULT_TRAIN_OPTIONS, TrainBenchOptions, runTrainAccuracyBench, runTrainBench } from "./train";
import { DEFAULT_UMAP_OPTIONS, runUmapBench } from "./umap";
import { DEFAULT_DATA_OPTIONS, runDataPipelineBench } from "./data_pipeline";
import { DEFAULT_EMBED_FOLDER_OPTIONS, runEmbedFolderBench } from "./embed_folder";

/** Bad command-line use: reported as one line, without a stack. */
class UsageError extends Error {}

interface Suite {
  name: string;
  describe: string;
  run: (args: Map<string, string>, ctx: BenchContext) => Promise<unknown>;
}

const SUITES: Suite[] = [
  {
    name: "inference",
    describe: "ViT-B-32 and RN50 image and text throughput and peak RSS: cliplab's engines, PyTorch and onnxruntime (PyTorch's export)",
    run: (args, ctx) => runInferenceBench(inferenceOptions(args), ctx),
  },
  {
    name: "train",
    describe: "training throughput of the default recipe (TRAIN_DEFAULTS: RN-Micro-32), tfjs WASM + native kernels 1/2 threads, XNNPACK only, and cpu vs PyTorch",
    run: (args, ctx) => runTrainBench(trainOptions(args), ctx),
  },
  {
    name: "train-accuracy",
    describe: "the default training recipe end to end (~6-7 min): time to 85%/88% zero-shot, tfjs vs PyTorch",
    run: (args, ctx) => runTrainAccuracyBench(trainOptions(args), ctx),
  },
  {
    name: "umap",
    describe: "UMAP of 10,000 x 512 embeddings to 2-D (exact tfjs kNN + umap-js), target under a minute",
    run: (args, ctx) =>
      runUmapBench(
        {
          points: intArg(args, "umap-points", DEFAULT_UMAP_OPTIONS.points, 20),
          dim: intArg(args, "umap-dim", DEFAULT_UMAP_OPTIONS.dim),
          epochs: args.has("umap-epochs") ? intArg(args, "umap-epochs", 200) : undefined,
          nnDescent: boolArg(args, "umap-nndescent", DEFAULT_UMAP_OPTIONS.nnDescent),
          seed: intArg(args, "seed", DEFAULT_UMAP_OPTIONS.seed, 0),
        },
        ctx,
      ),
  },
  {
    name: "data",
    describe: "decoded-and-preprocessed 224 px images/s (JPEG, PNG), main thread vs the worker pipeline, peak RSS",
    run: (args, ctx) =>
      runDataPipelineBench(
        {
          images: intArg(args, "data-images", DEFAULT_DATA_OPTIONS.images, 10),
          consumerRate: intArg(args, "data-consumer-rate", DEFAULT_DATA_OPTIONS.consumerRate),
          seed: intArg(args, "seed", DEFAULT_DATA_OPTIONS.seed, 0),
        },
        ctx,
      ),
  },
  {
    name: "embed",
    describe: "cliplab embed --data imagefolder:DIR end to end: ViT-B-32 at 224 px on 500x375 JPEGs, tfjs vs onnx engine, images/s and peak RSS",
    run: (args, ctx) =>
      runEmbedFolderBench(
        {
          images: intArg(args, "embed-images", DEFAULT_EMBED_FOLDER_OPTIONS.images, 8),
          engines: args.get("embed-engines")?.split(",") ?? DEFAULT_EMBED_FOLDER_OPTIONS.engines,
          seed: intArg(args, "seed", DEFAULT_EMBED_FOLDER_OPTIONS.seed, 0),
        },
        ctx,
      ),
  },
];

function parseArgs(argv: string[]): Map<string, string> {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new UsageError(`unexpected argument ${JSON.stringify(a)} (options look like --name=value)`);
    const eq = a.indexOf("=");
    if (eq > 0) args.set(a.slice(2, eq), a.slice(eq + 1));
    else if (a.startsWith("--no-")) args.set(a.slice(5), "false");
    else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) args.set(a.slice(2), argv[++i]);
    else args.set(a.slice(2), "true");
  }
  return args;
}

function intArg(args: Map<string, string>, name: string, fallback: number, min = 1): number {
  const raw = args.get(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

function boolArg(args: Map<string, string>, name: string, fallback: boolean): boolean {
  const raw = args.get(name);
  if (raw === undefined) return fallback;
  if (raw === "true" || raw === "false") return raw === "true";
  throw new UsageError(`--${name} takes no value (or use --no-${name})`);
}

function choiceArg<T extends string>(args: Map<string, string>, name: string, choices: readonly T[], fallback: T): T {
  const raw = args.get(name);
  if (raw === undefined) return fallback;
  if ((choices as readonly string[]).includes(raw)) return raw as T;
  throw new UsageError(`--${name} must be one of ${choices.join(", ")}, got ${JSON.stringify(raw)}`);
}

function inferenceOptions(args: Map<string, string>): InferenceBenchOptions {
  const d = DEFAULT_INFERENCE_OPTIONS;
  const list = (name: string, fallback: string[]) => args.get(name)?.split(",").map((x) => x.trim()).filter(Boolean) ?? fallback;
  const sides = list("sides", d.sides);
  const bad = sides.filter((x) => !(ALL_SIDES as readonly string[]).includes(x));
  if (bad.length) throw new UsageError(`--sides: unknown ${bad.join(", ")}; valid: ${ALL_SIDES.join(", ")}`);
  // --no-torch / --no-onnx drop those sides (the old options of the encoder suite).
  const dropped = new Set<string>([...(boolArg(args, "torch", true) ? [] : ["torch", "ort"]), ...(boolArg(args, "onnx", true) ? [] : ["onnx"])]);
  return {
    ...d,
    models: list("models", d.models),
    sides: sides.filter((x) => !dropped.has(x)) as SideName[],
    imageBatch: intArg(args, "image-batch", d.imageBatch),
    textBatch: intArg(args, "text-batch", d.textBatch),
    iters: intArg(args, "iters", d.iters),
    warmup: intArg(args, "warmup", d.warmup, 0),
    budgetSeconds: intArg(args, "budget", d.budgetSeconds),
    quietWaitSeconds: intArg(args, "quiet-wait", d.quietWaitSeconds, 0),
    torchOmpWait: choiceArg(args, "torch-omp-wait", ["passive", "active", "inherit"] as const, d.torchOmpWait),
    ortSpinning: boolArg(args, "ort-spinning", d.ortSpinning),
    threads: intArg(args, "threads", d.threads),
    seed: intArg(args, "seed", d.seed, 0),
    parity: boolArg(args, "parity", d.parity),
  };
}

function intListArg(args: Map<string, string>, name: string, fallback: number[]): number[] {
  const raw = args.get(name);
  if (raw === undefined) return fallback;
  const list = raw.split(",").map(Number);
  if (!list.length || list.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError(`--${name} must be a comma-separated list of positive integers, got ${JSON.stringify(raw)}`);
  return list;
}

function trainOptions(args: Map<string, string>): TrainBenchOptions {
  const d = DEFAULT_TRAIN_OPTIONS;
  return {
    ...d,
    batches: intListArg(args, "train-batches", d.batches),
    steps: intArg(args, "train-steps", d.steps),
    warmup: intArg(args, "train-warmup", d.warmup, 0),
    threads: intListArg(args, "train-threads", d.threads),
    cpuSteps: intArg(args, "cpu-steps", d.cpuSteps, 0),
    cpuBudgetSeconds: intArg(args, "cpu-budget", d.cpuBudgetSeconds),
    accuracyThreads: intArg(args, "accuracy-threads", d.accuracyThreads),
    quietWaitSeconds: intArg(args, "quiet-wait", d.quietWaitSeconds, 0),
    torchOmpWait: choiceArg(args, "torch-omp-wait", ["passive", "active", "inherit"] as const, d.torchOmpWait),
    seed: intArg(args, "seed", d.seed, 0),
    torch: boolArg(args, "torch", d.torch),
    profile: boolArg(args, "profile", d.profile),
  };
}

const KNOWN = new Set([
  "only", "models", "sides", "ort-spinning", "image-batch", "text-batch", "iters", "warmup", "budget", "quiet-wait", "torch-omp-wait", "threads", "seed", "torch", "onnx", "parity", "help",
  "train-batches", "train-steps", "train-warmup", "train-threads", "cpu-steps", "cpu-budget", "profile", "accuracy-threads",
  "umap-points", "umap-dim", "umap-epochs", "umap-nndescent",
  "data-images", "data-consumer-rate",
]);

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.has("help")) {
    console.log("npm run bench [-- --only=<suites>] [options]; suites:");
    for (const s of SUITES) console.log(`  ${s.name.padEnd(15)} ${s.describe}`);
    console.log("options: see the header of bench/run.ts");
    return;
  }
  for (const k of args.keys()) if (!KNOWN.has(k)) throw new UsageError(`unknown option --${k} (see bench/run.ts)`);
  const only = args.get("only")?.split(",").filter(Boolean).map((n) => (n === "encoders" ? "inference" : n));
  const unknown = only?.filter((n) => !SUITES.some((s) => s.name === n)) ?? [];
  if (unknown.length) throw new UsageError(`unknown suite(s) ${unknown.join(", ")}; known: ${SUITES.map((s) => s.name).join(", ")}`);
  const selected = SUITES.filter((s) => !only || only.includes(s.name));

  const machine = machineInfo();
  console.log(`cliplab bench: ${machine.cpuModel}, ${machine.logicalCpus} CPUs, ${machine.totalMemGb} GB, Node ${machine.node}`);
  const started = performance.now();
  const backend = await startBackend(intArg(args, "threads", DEFAULT_INFERENCE_OPTIONS.threads));
  console.log(`tfjs backend: ${backend.reason}${backend.note ? `; ${backend.note}` : ""}`);
  try {
    for (const suite of selected) {
      console.log(`\n== ${suite.name}: ${suite.describe}`);
      await suite.run(args, { machine, backend });
    }
  } finally {
    await shutdownBackend();
  }
  console.log(`\nbench finished in ${((performance.now() - started) / 1000).toFixed(0)}s`);
}

/**
 * The WASM backend with the requested threads, the same count PyTorch gets. If multi-threaded
 * WASM cannot start here, measure single-threaded and say so rather than not at all.
 */
async function startBackend(threads: number): Promise<BenchContext["backend"]> {
  try {
    return { ...(await initBackend({ prefer: "wasm", threads })), requestedThreads: threads };
  } catch (err) {
    if (threads === 1) throw err;
    const note = `${threads} threads requested but unavailable (${err instanceof Error ? err.message : String(err)}); measured with 1`;
    await shutdownBackend();
    return { ...(await initBackend({ prefer: "wasm", threads: 1 })), requestedThreads: threads, note };
  }
}

main().catch((err) => {
  const usage = err instanceof UsageError;
  console.error(`bench failed: ${usage ? err.message : err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exitCode = 1;
});

/**
 * The preprocessing pipeline: a dataset's items in, model inputs out, in source order, decoded and
 * preprocessed off the main thread and ahead of the consumer, so a consumer busy in tfjs finds the
 * next items ready. The role of PyTorch's DataLoader workers in open_clip's training
 * (https://github.com/mlfoundations/open_clip, src/open_clip_train/data.py), on Node's
 * worker_threads.
 *
 *   for await (const item of prepareItems(dataset.items(), modelTransform(config))) {
 *     item.pixels; // [S, S, 3] uint8 RGB; normalizeBatch(batch, transform) -> float32 NHWC
 *   }
 *
 * - Workers: a `PreparePool` of worker threads (default one per core), each running
 *   `preparePixels` (prepare.ts: sharp decode in the stored mode, Pillow-exact resize in JS) on
 *   up to two images at once; images go in as copies of their bytes and pixels come back
 *   transferred. `workers: 0` prepares on the main thread (sharp still decodes on libuv's threads).
 * - Prefetch: up to `prefetch` items (default 64) and `maxBytes` (default 256 MiB: input bytes plus
 *   output pixels) are read from the source and in flight or ready at once; the source is read
 *   further whenever the consumer takes an item, and while the consumer awaits anything.
 * - Order: items come out in source order whatever order the workers finish in.
 * - Bad images: an image that cannot be decoded rejects with a one-line DataError naming the
 *   item's key and what was wrong; with `skipBadImages` it is reported through
 *   `onSkip({key, reason})` (in source order) and left out.
 * - Shutdown: when the loop ends, throws, or is left early (`break`), the source is closed. Workers
 *   live in pools shared by every call with the same spec (started once per process, see
 *   `sharedPool`), or in the caller's `pool`; idle workers never keep the process alive.
 * - Augmentation: with `augment`, every item needs `seedFor(item)`; the item's pixels depend only on
 *   that seed, not on which worker prepared it.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import type { AugmentationCfg, Augmentation } from "../image/augment";
import { normalizePixels } from "../image/preprocess";
import type { ImageTransform } from "../image/transform";
import { DataError, type DataItem, type ImageRef, type SkippedItem } from "./dataset";
import { preparePixels, toAugmentation, withPixels, type PrepareSpec, type PreparedItem } from "./prepare";

export { prepareItem, type PreparedItem, type PrepareItemOptions } from "./prepare";

export interface PoolOptions {
  /** Worker threads; default `os.availableParallelism()`. */
  workers?: number;
  /** Images each worker prepares at once (one decoding while another resizes); default 2. */
  inflight?: number;
  /** libvips threads per image (`sharp.concurrency`, process-wide); default: sharp's own. */
  sharpThreads?: number;
}

interface Pending {
  resolve: (pixels: Uint8Array) => void;
  reject: (err: Error) => void;
  worker: WorkerSlot;
}

interface WorkerSlot {
  worker: Worker;
  outstanding: number;
}

const POOL_KEYS = ["workers", "inflight", "sharpThreads"];

/**
 * Worker threads that prepare images for one spec (transform + optional augmentation). Reusable
 * across `prepareItems` calls (e.g. one per epoch); `close()` when done.
 */
export class PreparePool {
  readonly size: number;
  readonly spec: PrepareSpec;
  private readonly slots: WorkerSlot[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: Error | null = null;
  private closed = false;

  constructor(transform: ImageTransform, opts: PoolOptions & { augment?: AugmentationCfg | Augmentation | null } = {}) {
    checkKeys(opts, [...POOL_KEYS, "augment"], "PreparePool");
    this.size = intOption(opts.workers, os.availableParallelism(), 1, "PreparePool: workers");
    const inflight = intOption(opts.inflight, 2, 1, "PreparePool: inflight");
    const sharpThreads = opts.sharpThreads === undefined ? null : intOption(opts.sharpThreads, 1, 1, "PreparePool: sharpThreads");
    this.spec = { transform, augment: toAugmentation(opts.augment, "PreparePool: augment") };
    // sharp is already loaded on this thread (prepare.ts imports it), as sharp requires before
    // worker threads load it: its shared libraries then outlive every worker.
    // The entry is this folder's pipeline_worker with this file's extension (.ts under tsx); the
    // TypeScript one (loaded with tsx) when no such file exists, as under tslab, which compiles
    // the .ts sources in memory and names them .js.
    const ext = path.extname(__filename);
    const own = path.join(__dirname, `pipeline_worker${ext}`);
    const entry = fs.existsSync(own) ? own : path.join(__dirname, "pipeline_worker.ts");
    const tsx = entry.endsWith(".ts") ? require.resolve("tsx/cjs") : null;
    for (let i = 0; i < this.size; i++) {
      const worker = new Worker(BOOTSTRAP, { eval: true, workerData: { entry, tsx, spec: this.spec, inflight, sharpThreads } });
      const slot: WorkerSlot = { worker, outstanding: 0 };
      worker.unref();
      worker.on("message", (msg: { id: number; pixels?: Uint8Array; bad?: string; fatal?: string }) => this.settle(msg));
      worker.on("error", (err) => this.fail(new Error(`preprocessing worker failed: ${err.message}`)));
      worker.on("exit", (code) => {
        if (!this.closed) this.fail(new Error(`preprocessing worker exited with code ${code}`));
      });
      this.slots.push(slot);
    }
  }

  /**
   * Prepares one image in the least busy worker: its pixels, a DataError naming `key` when it
   * cannot be decoded, or an Error for anything else.
   */
  run(key: string, image: ImageRef, seed?: number): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new Error("PreparePool: the pool is closed"));
    if (this.failure) return Promise.reject(this.failure);
    let slot = this.slots[0];
    for (const s of this.slots) if (s.outstanding < slot.outstanding) slot = s;
    const id = this.nextId++;
    // Copy exactly the image's bytes (a view may sit in a larger shared buffer) and hand the copy over.
    const copy = image.kind === "encoded" ? { kind: "encoded" as const, bytes: image.bytes.slice() } : { kind: "decoded" as const, image: { ...image.image, data: image.image.data.slice() } };
    const buffer = copy.kind === "encoded" ? copy.bytes.buffer : copy.image.data.buffer;
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker: slot });
      if (slot.outstanding++ === 0) slot.worker.ref(); // busy workers keep the process alive
      slot.worker.postMessage({ id, key, image: copy, seed }, [buffer as ArrayBuffer]);
    });
  }

  /** False once a worker has failed or the pool is closed: it then refuses all work. */
  get usable(): boolean {
    return !this.closed && !this.failure;
  }

  /** Terminates the workers; outstanding `run`s reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new Error("PreparePool: closed while images were in flight");
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private settle(msg: { id: number; pixels?: Uint8Array; bad?: string; fatal?: string }): void {
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (--p.worker.outstanding === 0) p.worker.worker.unref();
    if (msg.pixels) p.resolve(msg.pixels);
    else if (msg.bad !== undefined) p.reject(new DataError("", msg.bad));
    else p.reject(new Error(msg.fatal ?? "preprocessing worker sent an empty reply"));
  }

  private fail(err: Error): void {
    if (this.closed || this.failure) return;
    this.failure = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const s of this.slots) {
      s.outstanding = 0;
      s.worker.unref();
    }
  }
}

/** Registers tsx's require hook when the worker entry is TypeScript, then loads it. */
const BOOTSTRAP = `
const { workerData } = require("node:worker_threads");
if (workerData.tsx) require(workerData.tsx);
require(workerData.entry);
`;

export interface PipelineOptions extends PoolOptions {
  /** Training augmentation (open_clip AugmentationCfg or resolved); needs `seedFor`. */
  augment?: AugmentationCfg | Augmentation | null;
  /** The seed of an item's augmentation draws, e.g. `mixSeed(seed, epoch, item.index)`. */
  seedFor?: (item: DataItem) => number;
  /** Most items read ahead of the consumer (in flight or ready); default 64. */
  prefetch?: number;
  /** Most bytes read ahead (input bytes + output pixels); default 256 MiB. At least one item always. */
  maxBytes?: number;
  /** Leave out images that cannot be decoded, reporting each through `onSkip`. */
  skipBadImages?: boolean;
  onSkip?: (item: SkippedItem) => void;
  /** A pool to use (not closed at the end); its transform and augmentation are used. */
  pool?: PreparePool;
}

const PIPELINE_KEYS = [...POOL_KEYS, "augment", "seedFor", "prefetch", "maxBytes", "skipBadImages", "onSkip", "pool"];

/** Stands in for an image already handed to a worker. */
const DROPPED: ImageRef = { kind: "encoded", bytes: new Uint8Array(0) };

type Entry = { kind: "item"; item: DataItem; result: Promise<Uint8Array>; cost: number } | { kind: "error"; error: unknown };

/**
 * The items of `source`, prepared for a model with `transform`, in source order (see the header).
 * `workers: 0` prepares on the main thread.
 */
export async function* prepareItems(source: AsyncIterable<DataItem>, transform: ImageTransform, opts: PipelineOptions = {}): AsyncGenerator<PreparedItem> {
  checkKeys(opts, PIPELINE_KEYS, "prepareItems");
  if (!source || typeof (source as AsyncIterable<DataItem>)[Symbol.asyncIterator] !== "function") {
    throw new TypeError("prepareItems: source must be an AsyncIterable of DataItems (e.g. dataset.items())");
  }
  const prefetch = intOption(opts.prefetch, 64, 1, "prepareItems: prefetch");
  const maxBytes = intOption(opts.maxBytes, 256 * 2 ** 20, 1, "prepareItems: maxBytes");
  const augment = opts.pool ? opts.pool.spec.augment ?? null : toAugmentation(opts.augment, "prepareItems: augment");
  if (augment && typeof opts.seedFor !== "function") throw new TypeError("prepareItems: augment needs seedFor(item) -> seed, e.g. item => mixSeed(seed, epoch, item.index)");
  const spec: PrepareSpec = opts.pool ? opts.pool.spec : { transform, augment };
  if (opts.pool && opts.pool.spec.transform !== transform && JSON.stringify(opts.pool.spec.transform) !== JSON.stringify(transform)) {
    throw new RangeError("prepareItems: the pool was made for another transform");
  }
  const workers = opts.pool ? opts.pool.size : intOption(opts.workers, os.availableParallelism(), 0, "prepareItems: workers");
  const pool = opts.pool ?? (workers > 0 ? sharedPool(transform, { workers, inflight: opts.inflight, sharpThreads: opts.sharpThreads, augment }) : null);
  const outBytes = spec.transform.size * spec.transform.size * 3;
  const run = pool
    ? (item: DataItem, seed?: number) => pool.run(item.key, item.image, seed)
    : localRunner(spec, intOption(opts.inflight, 2, 1, "prepareItems: inflight"));

  const it = source[Symbol.asyncIterator]();
  const queue: Entry[] = [];
  let bytes = 0;
  let sourceDone = false;
  let pumping: Promise<void> | null = null;
  let stopped = false;
  let notify: (() => void) | null = null;

  const pump = (): Promise<void> => {
    if (pumping) return pumping;
    pumping = (async () => {
      // Yield once first: a pump with nothing to do would otherwise finish (and clear `pumping`)
      // before the assignment above, leaving a settled promise there that stops every later pump.
      await undefined;
      try {
        while (!sourceDone && !stopped && queue.length < prefetch && (bytes < maxBytes || queue.length === 0)) {
          let r: IteratorResult<DataItem>;
          try {
            r = await it.next();
          } catch (error) {
            sourceDone = true;
            queue.push({ kind: "error", error });
            break;
          }
          if (r.done) {
            sourceDone = true;
            break;
          }
          if (stopped) break;
          const item = r.value;
          const seed = augment ? opts.seedFor!(item) : undefined;
          const result = run(item, seed);
          result.catch(() => undefined); // awaited in order below; never an unhandled rejection
          const cost = imageBytes(item.image) + outBytes;
          // A worker has its own copy of the image now: keep only the metadata, so the source's
          // bytes can be collected while the item waits its turn.
          queue.push({ kind: "item", item: pool ? { ...item, image: DROPPED } : item, result, cost });
          bytes += cost;
          notify?.();
        }
      } finally {
        pumping = null;
        notify?.();
      }
    })();
    return pumping;
  };

  try {
    for (;;) {
      void pump();
      if (queue.length === 0) {
        if (sourceDone) {
          if (pumping) await pumping;
          if (queue.length === 0) break;
          continue;
        }
        await new Promise<void>((resolve) => (notify = resolve));
        notify = null;
        continue;
      }
      const head = queue[0];
      if (head.kind === "error") throw head.error;
      let pixels: Uint8Array | null = null;
      try {
        pixels = await head.result;
      } catch (err) {
        if (!(err instanceof DataError)) throw err;
        const reason = err.message.slice(err.where.length + 2); // the detail, without the "where: " prefix
        if (!opts.skipBadImages) throw new DataError(head.item.key, reason);
        opts.onSkip?.({ key: head.item.key, reason });
      }
      queue.shift();
      bytes -= head.cost;
      if (pixels) yield withPixels(head.item, pixels);
    }
  } finally {
    stopped = true;
    if (pumping !== null) await (pumping as Promise<void>).catch(() => undefined);
    if (!sourceDone) await it.return?.().catch(() => undefined);
  }
}

/**
 * Worker pools shared by every `prepareItems` call without a `pool` of its own, one per spec: a
 * study that reads the same data several times (an audit, a report) starts its workers once.
 * Idle workers are unref'd, so a shared pool never keeps the process alive; the least recently
 * used pool is closed when a fifth spec arrives, and a failed pool is replaced.
 */
const SHARED_POOLS = new Map<string, PreparePool>();
const SHARED_POOL_LIMIT = 4;

function sharedPool(transform: ImageTransform, opts: PoolOptions & { augment: Augmentation | null }): PreparePool {
  const key = JSON.stringify([transform, opts.augment, opts.workers, opts.inflight ?? null, opts.sharpThreads ?? null]);
  let pool = SHARED_POOLS.get(key);
  if (pool && !pool.usable) {
    SHARED_POOLS.delete(key);
    pool = undefined;
  }
  if (!pool) {
    pool = new PreparePool(transform, opts);
    if (SHARED_POOLS.size >= SHARED_POOL_LIMIT) {
      const [oldestKey, oldest] = SHARED_POOLS.entries().next().value!;
      SHARED_POOLS.delete(oldestKey);
      void oldest.close();
    }
  } else {
    SHARED_POOLS.delete(key); // re-inserted below: the map's order is least recently used first
  }
  SHARED_POOLS.set(key, pool);
  return pool;
}

/** Closes the shared pools (tests, or a host that wants its threads back now). */
export async function closeSharedPools(): Promise<void> {
  const pools = [...SHARED_POOLS.values()];
  SHARED_POOLS.clear();
  await Promise.all(pools.map((p) => p.close()));
}

/** Prepares on the calling thread, at most `inflight` at once (sharp decodes on libuv's threads). */
function localRunner(spec: PrepareSpec, inflight: number): (item: DataItem, seed?: number) => Promise<Uint8Array> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (item, seed) => {
    if (running >= inflight) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await preparePixels(item.image, item.key, spec, seed);
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

function imageBytes(image: ImageRef): number {
  return image.kind === "encoded" ? image.bytes.byteLength : image.image.data.byteLength;
}

/**
 * A batch's model input: the items' pixels normalised with the transform's mean/std, `[B, S, S, 3]`
 * float32 (NHWC), ready for `tf.tensor4d`.
 */
export function normalizeBatch(items: readonly PreparedItem[], transform: ImageTransform): Float32Array {
  const per = transform.size * transform.size * 3;
  const all = new Uint8Array(items.length * per);
  items.forEach((item, i) => {
    if (item.pixels.length !== per) throw new RangeError(`normalizeBatch: ${item.key} has ${item.pixels.length} pixel values, expected ${transform.size}*${transform.size}*3`);
    all.set(item.pixels, i * per);
  });
  return normalizePixels(all, transform.mean, transform.std);
}

function checkKeys(opts: object, valid: string[], what: string): void {
  if (opts === null || typeof opts !== "object") throw new TypeError(`${what}: options must be an object with keys ${valid.join(", ")}`);
  for (const k of Object.keys(opts)) {
    if (!valid.includes(k)) throw new RangeError(`${what}: unknown option ${JSON.stringify(k)}; valid options: ${valid.join(", ")}`);
  }
}

function intOption(v: unknown, fallback: number, min: number, what: string): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) throw new RangeError(`${what} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return v;
}

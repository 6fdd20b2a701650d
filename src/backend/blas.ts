/**
 * A system BLAS, found at run time and called through koffi (an FFI package with prebuilt
 * binaries): only `cblas_sgemm` (row-major single-precision GEMM, the BLAS level-3 routine,
 * https://netlib.org/blas/), plus the library's thread-count setter.
 *
 * Where it looks, first that loads and computes correctly wins:
 *   - `CLIPLAB_BLAS=/path/to/lib` (any library exporting cblas_sgemm) or `CLIPLAB_BLAS=off`;
 *   - Linux: Debian/Ubuntu's OpenBLAS builds (`libopenblas0-openmp` before `libopenblas0-pthread`,
 *     under /usr/lib/<multiarch>/openblas-{openmp,pthread}/), then `libopenblas.so.0` from the
 *     loader's search path (Fedora, Arch, a conda env on LD_LIBRARY_PATH). The OpenMP build comes
 *     first because cliplab's fused C kernels use OpenMP too: one thread pool, whose idle threads
 *     sleep (below). With the pthreads build beside it, two pools of spinning threads fought over
 *     the cores: a 2-thread training step took 390-460 ms of CPU against 240-370 ms (2 busy vCPUs);
 *   - macOS: Accelerate (vecLib), then Homebrew's OpenBLAS.
 * A library found by the search must identify itself as OpenBLAS (`openblas_get_config`) or be
 * Accelerate: Debian's reference BLAS (`libblas.so.3`) also exports cblas_sgemm but runs ~6
 * GFLOP/s, five times slower than the WASM kernels it would replace. An explicit path is taken
 * as given.
 *
 * Every candidate must pass a check before it is used: four small products (each transpose
 * combination, with leading dimensions larger than the rows) against a plain JS loop.
 *
 * OpenMP builds of OpenBLAS spin-wait between calls by default, which steals the core another
 * thread (ours, the WASM pool's, another process's) needs; so OMP_WAIT_POLICY is set to PASSIVE
 * before the library loads, unless the environment already sets it. It is read once, when libgomp
 * starts, so it must happen before the first load.
 */
import * as fs from "node:fs";
import koffi, { type LibraryHandle } from "koffi";

type KoffiFunction = ReturnType<LibraryHandle["func"]>;

/** Row-major single-precision GEMM: C = alpha * op(A) @ op(B) + beta * C, C [m, n]. */
export type Sgemm = (
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  lda: number,
  b: Float32Array,
  ldb: number,
  beta: number,
  c: Float32Array,
  ldc: number,
) => void;

export interface Blas {
  /** e.g. "OpenBLAS 0.3.21 (openmp, Zen)" or "Accelerate". */
  name: string;
  /** The file that was loaded. */
  path: string;
  /** Threads the library runs its products with. */
  threads: number;
  sgemm: Sgemm;
}

export interface BlasAttempt {
  path: string;
  ok: boolean;
  reason: string;
}

export interface BlasLoad {
  blas?: Blas;
  /** One line: what is used, or why none is. */
  reason: string;
  tried: BlasAttempt[];
}

const CBLAS_ROW_MAJOR = 101;
const CBLAS_NO_TRANS = 111;
const CBLAS_TRANS = 112;
const SGEMM_SIGNATURE = "void cblas_sgemm(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int)";

interface Candidate {
  path: string;
  /** Found by the search (must be a known fast BLAS), or named by the user (taken as given). */
  explicit: boolean;
}

/** Library names and folders where a system BLAS lives, per platform, in order of preference. */
export function blasCandidates(platform = process.platform, arch = process.arch): string[] {
  if (platform === "darwin") {
    return [
      "/System/Library/Frameworks/Accelerate.framework/Accelerate",
      "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
      "/usr/local/opt/openblas/lib/libopenblas.dylib",
    ];
  }
  if (platform === "linux") {
    const multiarch = { x64: "x86_64-linux-gnu", arm64: "aarch64-linux-gnu", arm: "arm-linux-gnueabihf", ppc64: "powerpc64le-linux-gnu", s390x: "s390x-linux-gnu", riscv64: "riscv64-linux-gnu" }[arch as string];
    const debian = multiarch
      ? [`/usr/lib/${multiarch}/openblas-openmp/libopenblas.so.0`, `/usr/lib/${multiarch}/openblas-pthread/libopenblas.so.0`]
      : [];
    return [...debian, "libopenblas.so.0", "libopenblasp.so.0", "libopenblas.so"];
  }
  return [];
}

let loaded: BlasLoad | undefined;
let loadedThreads: number | undefined;

/**
 * Finds, loads and checks a BLAS, set to `threads` threads. The library stays loaded for the life
 * of the process; later calls return the same library (re-set to the new thread count).
 * Never throws for a missing library: `blas` is then undefined and `reason` says why.
 * A `CLIPLAB_BLAS` path that does not work is an Error (asked for explicitly).
 */
export function loadBlas(threads: number): BlasLoad {
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`loadBlas: threads must be a positive integer, got ${threads}`);
  if (loaded?.blas) {
    if (loadedThreads !== threads) setThreads(loaded.blas, threads);
    loadedThreads = threads;
    return loaded;
  }
  const env = process.env.CLIPLAB_BLAS?.trim();
  if (env && env.toLowerCase() === "off") return { reason: "turned off by CLIPLAB_BLAS=off", tried: [] };
  const candidates: Candidate[] = env && env.toLowerCase() !== "auto" ? [{ path: env, explicit: true }] : blasCandidates().map((path) => ({ path, explicit: false }));
  if (!candidates.length) return { reason: `no BLAS search path for platform ${process.platform}; set CLIPLAB_BLAS=/path/to/libblas`, tried: [] };
  process.env.OMP_WAIT_POLICY ??= "PASSIVE";
  const tried: BlasAttempt[] = [];
  for (const c of candidates) {
    const r = tryLoad(c, threads);
    tried.push({ path: c.path, ok: Boolean(r.blas), reason: r.blas ? r.blas.name : r.reason });
    if (r.blas) {
      loaded = { blas: r.blas, reason: `${r.blas.name}, ${r.blas.threads} thread${r.blas.threads === 1 ? "" : "s"}, from ${r.blas.path}`, tried };
      loadedThreads = threads;
      return loaded;
    }
    if (c.explicit) throw new Error(`CLIPLAB_BLAS=${c.path}: ${r.reason}`);
  }
  const hint = process.platform === "linux" ? " (Debian/Ubuntu: apt-get install libopenblas0-openmp)" : "";
  return { reason: `no usable BLAS found${hint}: ${tried.map((t) => `${t.path}: ${t.reason}`).join("; ")}`, tried };
}

function tryLoad(c: Candidate, threads: number): { blas?: Blas; reason: string } {
  if (c.path.includes("/") && !fs.existsSync(c.path)) return { reason: "not present" };
  let lib: LibraryHandle;
  try {
    lib = koffi.load(c.path);
  } catch (e) {
    return { reason: `cannot load: ${firstLine(e)}` };
  }
  let raw: KoffiFunction;
  try {
    raw = lib.func(SGEMM_SIGNATURE);
  } catch {
    return { reason: "has no cblas_sgemm" };
  }
  const openblas = optionalFunc(lib, "const char *openblas_get_config()");
  const accelerate = c.path.includes("Accelerate.framework") || c.path.includes("vecLib");
  if (!c.explicit && !openblas && !accelerate) return { reason: "not OpenBLAS or Accelerate (a reference BLAS would be slower than the WASM kernels)" };
  const sgemm: Sgemm = (transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc) =>
    raw(CBLAS_ROW_MAJOR, transA ? CBLAS_TRANS : CBLAS_NO_TRANS, transB ? CBLAS_TRANS : CBLAS_NO_TRANS, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc);
  let name = accelerate ? "Accelerate" : "BLAS";
  if (openblas) {
    const config = String(openblas() ?? "");
    name = describeOpenblas(config);
  }
  const blas: Blas = { name, path: c.path, threads: 1, sgemm };
  const set = optionalFunc(lib, "void openblas_set_num_threads(int)");
  const get = optionalFunc(lib, "int openblas_get_num_threads()");
  setters.set(blas, { set, get });
  setThreads(blas, threads);
  const bad = checkSgemm(sgemm);
  if (bad) return { reason: `cblas_sgemm gives wrong results: ${bad}` };
  return { blas, reason: "ok" };
}

const setters = new WeakMap<Blas, { set?: KoffiFunction; get?: KoffiFunction }>();

function setThreads(blas: Blas, threads: number): void {
  const s = setters.get(blas);
  if (s?.set) {
    s.set(threads);
    blas.threads = s.get ? Number(s.get()) : threads;
  } else {
    // Accelerate sizes its own pool; a library without a setter runs as it was built.
    blas.threads = threads;
  }
}

/** "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64" -> "OpenBLAS 0.3.21 (openmp, Zen)". */
function describeOpenblas(config: string): string {
  const version = /OpenBLAS\s+([0-9][0-9.]*)/.exec(config)?.[1];
  const words = config.split(/\s+/);
  const core = words.find((w) => /^[A-Z][a-zA-Z0-9]+$/.test(w) && !["OpenBLAS", "DYNAMIC_ARCH", "NO_AFFINITY", "USE_OPENMP", "NO_LAPACK", "NO_LAPACKE", "SMP"].includes(w));
  const flavour = /USE_OPENMP/.test(config) ? "openmp" : "pthreads";
  return `OpenBLAS${version ? ` ${version}` : ""} (${[flavour, core].filter(Boolean).join(", ")})`;
}

function optionalFunc(lib: LibraryHandle, signature: string): KoffiFunction | undefined {
  try {
    return lib.func(signature);
  } catch {
    return undefined;
  }
}

/**
 * Four small products, one per transpose combination, with padded leading dimensions, against a
 * JS loop; returns what went wrong, or undefined.
 */
function checkSgemm(sgemm: Sgemm): string | undefined {
  const m = 3, n = 5, k = 4, pad = 2;
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const aRows = transA ? k : m, aCols = transA ? m : k;
      const bRows = transB ? n : k, bCols = transB ? k : n;
      const lda = aCols + pad, ldb = bCols + pad, ldc = n + pad;
      const a = new Float32Array(aRows * lda).map((_, i) => ((i * 7) % 11) - 5);
      const b = new Float32Array(bRows * ldb).map((_, i) => ((i * 5) % 13) - 6);
      const c = new Float32Array(m * ldc).fill(1);
      sgemm(transA, transB, m, n, k, 2, a, lda, b, ldb, 0.5, c, ldc);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let p = 0; p < k; p++) s += (transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j]);
          const want = 2 * s + 0.5;
          if (Math.abs(c[i * ldc + j] - want) > 1e-4 * Math.max(1, Math.abs(want))) {
            return `transA=${transA} transB=${transB}: C[${i},${j}] = ${c[i * ldc + j]}, expected ${want}`;
          }
        }
      }
    }
  }
  return undefined;
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n")[0].trim().slice(0, 200);
}

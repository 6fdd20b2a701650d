/**
 * cliplab's optional C library of fused kernels (src/backend/csrc/cliplab_kernels.c, built by
 * `bash scripts/build-native.sh`, which scripts/setup.sh runs), loaded through koffi.
 *
 * Where it looks: `CLIPLAB_NATIVE_LIB=/path/lib.so` or `=off`, else
 * `build/native/libcliplab_kernels.{so,dylib}` in this repository. A library older than its
 * source, or of another interface version, is refused (rebuild). It needs the BLAS the matrix
 * kernels use (it calls the same cblas_sgemm for attention). Without it every fused op runs as
 * tfjs kernels; nothing else changes.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import koffi from "koffi";
import type { Blas } from "./blas";

/** Interface version this TypeScript expects (`cl_version()` in the C file). */
const EXPECTED_VERSION = 5;

export const ACTIVATION_KIND = { quick_gelu: 0, gelu: 1 } as const;

type F = Float32Array;

export interface FusedLib {
  path: string;
  openmp: boolean;
  setThreads(n: number): void;
  actFwd(x: F, bias: F | null, rows: number, cols: number, kind: number, y: F): void;
  actBwd(x: F, bias: F | null, dy: F, rows: number, cols: number, kind: number, dx: F, dbias: F | null): void;
  colsum(x: F, rows: number, cols: number, out: F): void;
  layerNormFwd(x: F, gamma: F, beta: F, rows: number, d: number, eps: number, y: F, mean: F | null, rstd: F | null): void;
  layerNormBwd(dy: F, x: F, mean: F, rstd: F, gamma: F, rows: number, d: number, dx: F, dgamma: F, dbeta: F): void;
  attentionFwd(qkv: F, b: number, t: number, d: number, h: number, mask: F | null, scale: number, out: F, probs: F | null): void;
  attentionBwd(qkv: F, probs: F, dout: F, b: number, t: number, d: number, h: number, scale: number, dqkv: F): void;
  /** g: H, W, C, OH, OW, FH, FW, SH, SW, DH, DW, PT, PL (see ./im2col). */
  im2col(x: F, g: Int32Array, r0: number, r1: number, p: F): void;
  col2im(p: F, g: Int32Array, r0: number, r1: number, dx: F): void;
  adamw(p: F, pOut: F, m: F, v: F, g: F, n: number, gscale: number, b1: number, omb1: number, b2: number, omb2: number, decay: number, step: number, sqrtBc2: number, eps: number): void;
  sumsq(x: F, n: number): number;
  adamwRows(p: F, m: F, v: F, g: F, rows: Int32Array, nrows: number, d: number, gscale: number, b1: number, omb1: number, b2: number, omb2: number, step: number, sqrtBc2: number, eps: number): void;
  sumsqRows(x: F, rows: Int32Array, nrows: number, d: number): number;
  bnTrainFwd(x: F, rows: number, c: number, gamma: F, beta: F, eps: number, relu: number, y: F, mean: F, variance: F, rstd: F): void;
  bnTrainBwd(dy: F, x: F, y: F | null, mean: F, rstd: F, gamma: F, rows: number, c: number, relu: number, dx: F, dgamma: F, dbeta: F): void;
  avgPoolGrad(dy: F, n: number, h: number, w: number, c: number, oh: number, ow: number, fh: number, fw: number, sh: number, sw: number, dx: F): void;
}

export interface FusedLibLoad {
  lib?: FusedLib;
  /** One line: the file in use, or why there is none. */
  reason: string;
}

const ROOT = path.resolve(__dirname, "..", "..");
export const FUSED_SOURCE = path.join(ROOT, "src", "backend", "csrc", "cliplab_kernels.c");

export function defaultFusedLibPath(platform = process.platform): string {
  return path.join(ROOT, "build", "native", `libcliplab_kernels.${platform === "darwin" ? "dylib" : "so"}`);
}

let loaded: FusedLib | undefined;
let active: FusedLib | undefined;

/**
 * The library whose kernels are registered (set by ./fused), for kernels that use it as a helper
 * when present (the convolutions' im2col); undefined when the fused kernels are off.
 */
export function activeFusedLib(): FusedLib | undefined {
  return active;
}

export function setActiveFusedLib(lib: FusedLib | undefined): void {
  active = lib;
}

/** Loads the library for `blas` (cached for the process), set to `threads` threads. */
export function loadFusedLib(blas: Blas, threads: number): FusedLibLoad {
  if (loaded) {
    loaded.setThreads(threads);
    return { lib: loaded, reason: `${loaded.path}${loaded.openmp ? " (OpenMP)" : ""}` };
  }
  const env = process.env.CLIPLAB_NATIVE_LIB?.trim();
  if (env && env.toLowerCase() === "off") return { reason: "turned off by CLIPLAB_NATIVE_LIB=off" };
  const explicit = Boolean(env && env.toLowerCase() !== "auto");
  const file = explicit ? (env as string) : defaultFusedLibPath();
  const rebuild = "run: bash scripts/build-native.sh";
  if (!fs.existsSync(file)) return { reason: explicit ? `CLIPLAB_NATIVE_LIB=${file}: not present` : `not built (${rebuild})` };
  if (!explicit && fs.existsSync(FUSED_SOURCE) && fs.statSync(FUSED_SOURCE).mtimeMs > fs.statSync(file).mtimeMs + 1000) {
    return { reason: `${file} is older than ${path.relative(ROOT, FUSED_SOURCE)} (${rebuild})` };
  }
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load(file);
  } catch (e) {
    return { reason: `cannot load ${file}: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}` };
  }
  try {
    const version = Number(lib.func("int cl_version()")());
    if (version !== EXPECTED_VERSION) return { reason: `${file} has interface version ${version}, expected ${EXPECTED_VERSION} (${rebuild})` };
    const init = lib.func("int cl_init(const char *)");
    const error = lib.func("const char *cl_error()");
    if (Number(init(blas.path)) !== 0) return { reason: `${file} cannot use the BLAS ${blas.path}: ${String(error())}` };
    const fp = "float *";
    const fl: FusedLib = {
      path: file,
      openmp: Number(lib.func("int cl_openmp()")()) === 1,
      setThreads: lib.func("void cl_set_threads(int)"),
      actFwd: lib.func(`void cl_act_fwd(const ${fp}, const ${fp}, int64_t, int64_t, int, ${fp})`),
      actBwd: lib.func(`void cl_act_bwd(const ${fp}, const ${fp}, const ${fp}, int64_t, int64_t, int, ${fp}, ${fp})`),
      colsum: lib.func(`void cl_colsum(const ${fp}, int64_t, int64_t, ${fp})`),
      layerNormFwd: lib.func(`void cl_layernorm_fwd(const ${fp}, const ${fp}, const ${fp}, int64_t, int64_t, float, ${fp}, ${fp}, ${fp})`),
      layerNormBwd: lib.func(`void cl_layernorm_bwd(const ${fp}, const ${fp}, const ${fp}, const ${fp}, const ${fp}, int64_t, int64_t, ${fp}, ${fp}, ${fp})`),
      attentionFwd: lib.func(`void cl_attention_fwd(const ${fp}, int, int, int, int, const ${fp}, float, ${fp}, ${fp})`),
      attentionBwd: lib.func(`void cl_attention_bwd(const ${fp}, const ${fp}, const ${fp}, int, int, int, int, float, ${fp})`),
      im2col: lib.func(`void cl_im2col(const ${fp}, const int *, int64_t, int64_t, ${fp})`),
      col2im: lib.func(`void cl_col2im(const ${fp}, const int *, int64_t, int64_t, ${fp})`),
      adamw: lib.func(`void cl_adamw(const ${fp}, ${fp}, ${fp}, ${fp}, const ${fp}, int64_t, float, float, float, float, float, float, float, float, float)`),
      sumsq: lib.func(`double cl_sumsq(const ${fp}, int64_t)`),
      adamwRows: lib.func(`void cl_adamw_rows(${fp}, ${fp}, ${fp}, const ${fp}, const int32_t *, int64_t, int64_t, float, float, float, float, float, float, float, float)`),
      sumsqRows: lib.func(`double cl_sumsq_rows(const ${fp}, const int32_t *, int64_t, int64_t)`),
      bnTrainFwd: lib.func(`void cl_bn_train_fwd(const ${fp}, int64_t, int, const ${fp}, const ${fp}, float, int, ${fp}, ${fp}, ${fp}, ${fp})`),
      bnTrainBwd: lib.func(`void cl_bn_train_bwd(const ${fp}, const ${fp}, const ${fp}, const ${fp}, const ${fp}, const ${fp}, int64_t, int, int, ${fp}, ${fp}, ${fp})`),
      avgPoolGrad: lib.func(`void cl_avgpool_grad(const ${fp}, int, int, int, int, int, int, int, int, int, int, ${fp})`),
    };
    fl.setThreads(threads);
    loaded = fl;
    return { lib: fl, reason: `${file}${fl.openmp ? " (OpenMP)" : ""}` };
  } catch (e) {
    return { reason: `${file} lacks a kernel (${(e instanceof Error ? e.message : String(e)).split("\n")[0]}; ${rebuild})` };
  }
}

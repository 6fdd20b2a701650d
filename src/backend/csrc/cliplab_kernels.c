/*
 * cliplab's fused CPU kernels, called from src/backend/fused_lib.ts through koffi on views of the
 * tfjs WASM heap (plain float pointers, row-major). Built by scripts/build-native.sh; everything
 * here is optional: without this library the same ops run as tfjs kernels.
 *
 *   attention   multi-head scaled dot-product attention (Vaswani et al. 2017,
 *               https://arxiv.org/abs/1706.03762) straight from the packed q,k,v projection
 *               [B, T, 3D] to [B, T, D]: per (batch, head) two GEMMs on strided views, so the
 *               head split/merge transposes and copies never happen; softmax in between; the
 *               backward pass returns d(qkv) in the same packed layout.
 *   layernorm   over the last axis (Ba et al. 2016, https://arxiv.org/abs/1607.06450), forward
 *               saving mean and 1/std per row, backward giving dx, dgamma, dbeta.
 *   activations QuickGELU x*sigmoid(1.702x) (OpenAI CLIP) and exact GELU 0.5x(1+erf(x/sqrt 2))
 *               (Hendrycks & Gimpel 2016, https://arxiv.org/abs/1606.08415), with an optional
 *               bias added first, forward and backward.
 *   batchnorm   BatchNorm in training mode (batch statistics), optionally fused with the ReLU after
 *               it, forward and backward; and the gradient of a 'valid' average pool.
 *   im2col      the patch matrix of an NHWC convolution and its adjoint col2im (for the GEMM
 *               convolutions of src/backend/native_conv.ts).
 *   adamw       one fused AdamW step (Loshchilov & Hutter 2019, https://arxiv.org/abs/1711.05101),
 *               and a sum of squares for the gradient norm.
 *
 * GEMMs go to the system BLAS that cliplab already loaded (cl_init opens the same file). exp and
 * erf are vectorisable polynomial forms (Cephes expf, max rel. error ~2e-7; Abramowitz & Stegun
 * 7.1.26 erf, abs. error <= 1.5e-7). Threads: OpenMP when built with it, sized by cl_set_threads.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define CL_VERSION 5

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
typedef void (*set_threads_fn)(int);

static sgemm_fn g_sgemm = 0;
static set_threads_fn g_blas_set_threads = 0;
static int g_threads = 1;
static char g_error[256] = "";

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

int cl_version(void) { return CL_VERSION; }

const char *cl_error(void) { return g_error; }

/* Opens the BLAS at `blas_path` (already loaded by the caller, so this only takes a reference). */
int cl_init(const char *blas_path) {
  void *h = dlopen(blas_path, RTLD_NOW | RTLD_GLOBAL);
  if (!h) {
    const char *e = dlerror();
    strncpy(g_error, e ? e : "dlopen failed", sizeof g_error - 1);
    return 1;
  }
  g_sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
  if (!g_sgemm) {
    strncpy(g_error, "no cblas_sgemm in the BLAS library", sizeof g_error - 1);
    return 2;
  }
  g_blas_set_threads = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
  return 0;
}

void cl_set_threads(int n) { g_threads = n < 1 ? 1 : n; }

int cl_openmp(void) {
#ifdef _OPENMP
  return 1;
#else
  return 0;
#endif
}

/* ------------------------------------------------------------------------------------------ */
/* Vectorisable math */

/* e^x, Cephes' single-precision algorithm; x below -87.3 gives 0 (so -inf -> 0), above 88.7 inf. */
static inline float cl_exp(float x) {
  const float hi = 88.7228317f, lo = -87.3365479f;
  float xc = x > hi ? hi : (x < lo ? lo : x);
  float fx = xc * 1.44269504088896341f;
  /* round to nearest via the 1.5*2^23 trick (vectorises, unlike roundf) */
  fx = (fx + 12582912.0f) - 12582912.0f;
  float r = xc - fx * 0.693359375f + fx * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;
  int32_t e = ((int32_t)fx + 127) << 23;
  float s;
  memcpy(&s, &e, sizeof s);
  float out = y * s;
  out = x < lo ? 0.0f : out;
  return x > hi ? INFINITY : out;
}

/* erf(x), Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7), odd extension. */
static inline float cl_erf(float x) {
  float ax = fabsf(x);
  float t = 1.0f / (1.0f + 0.3275911f * ax);
  float y = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
  float r = 1.0f - y * cl_exp(-ax * ax);
  return x < 0 ? -r : r;
}

/* ------------------------------------------------------------------------------------------ */
/* Activations: y = act(x + bias[col]); bias may be NULL; kind 0 = QuickGELU, 1 = GELU (erf). */

static inline float quick_gelu(float v) { return v / (1.0f + cl_exp(-1.702f * v)); }
static inline float gelu(float v) { return 0.5f * v * (1.0f + cl_erf(v * 0.70710678118654752f)); }
static inline float quick_gelu_grad(float v) {
  float s = 1.0f / (1.0f + cl_exp(-1.702f * v));
  return s + 1.702f * v * s * (1.0f - s);
}
static inline float gelu_grad(float v) {
  float cdf = 0.5f * (1.0f + cl_erf(v * 0.70710678118654752f));
  float pdf = 0.3989422804014327f * cl_exp(-0.5f * v * v);
  return cdf + v * pdf;
}

/* One row, each case its own branch-free loop so that it vectorises. */
static void act_row(const float *restrict x, const float *restrict bias, int64_t n, int kind, float *y) {
  int64_t c;
  if (kind == 0 && bias) {
#pragma omp simd
    for (c = 0; c < n; c++) y[c] = quick_gelu(x[c] + bias[c]);
  } else if (kind == 0) {
#pragma omp simd
    for (c = 0; c < n; c++) y[c] = quick_gelu(x[c]);
  } else if (bias) {
#pragma omp simd
    for (c = 0; c < n; c++) y[c] = gelu(x[c] + bias[c]);
  } else {
#pragma omp simd
    for (c = 0; c < n; c++) y[c] = gelu(x[c]);
  }
}

static void act_grad_row(const float *restrict x, const float *restrict bias, const float *restrict dy, int64_t n, int kind, float *restrict dx) {
  int64_t c;
  if (kind == 0 && bias) {
#pragma omp simd
    for (c = 0; c < n; c++) dx[c] = dy[c] * quick_gelu_grad(x[c] + bias[c]);
  } else if (kind == 0) {
#pragma omp simd
    for (c = 0; c < n; c++) dx[c] = dy[c] * quick_gelu_grad(x[c]);
  } else if (bias) {
#pragma omp simd
    for (c = 0; c < n; c++) dx[c] = dy[c] * gelu_grad(x[c] + bias[c]);
  } else {
#pragma omp simd
    for (c = 0; c < n; c++) dx[c] = dy[c] * gelu_grad(x[c]);
  }
}

/* y may equal x (in place). */
void cl_act_fwd(const float *x, const float *bias, int64_t rows, int64_t cols, int kind, float *y) {
  int64_t r;
#pragma omp parallel for num_threads(g_threads) schedule(static) if (rows * cols > 32768)
  for (r = 0; r < rows; r++) act_row(x + r * cols, bias, cols, kind, y + r * cols);
}

/* dx = dy * act'(x + bias); dbias (may be NULL) = column sums of dx. */
void cl_act_bwd(const float *x, const float *bias, const float *dy, int64_t rows, int64_t cols, int kind, float *dx, float *dbias) {
  int64_t r;
#pragma omp parallel for num_threads(g_threads) schedule(static) if (rows * cols > 32768)
  for (r = 0; r < rows; r++) act_grad_row(x + r * cols, bias, dy + r * cols, cols, kind, dx + r * cols);
  if (dbias) {
    memset(dbias, 0, (size_t)cols * sizeof(float));
    for (r = 0; r < rows; r++) {
      const float *dxr = dx + r * cols;
      int64_t c;
#pragma omp simd
      for (c = 0; c < cols; c++) dbias[c] += dxr[c];
    }
  }
}

/* Column sums of x [rows, cols] into out [cols] (a bias gradient). */
void cl_colsum(const float *x, int64_t rows, int64_t cols, float *out) {
  memset(out, 0, (size_t)cols * sizeof(float));
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; c++) out[c] += xr[c];
  }
}

/* ------------------------------------------------------------------------------------------ */
/* LayerNorm over the last axis: y = (x - mean) * rstd * gamma + beta, biased variance. */

void cl_layernorm_fwd(const float *x, const float *gamma, const float *beta, int64_t rows, int64_t d, float eps, float *y, float *mean, float *rstd) {
  int64_t r;
#pragma omp parallel for num_threads(g_threads) schedule(static) if (rows * d > 32768)
  for (r = 0; r < rows; r++) {
    const float *xr = x + r * d;
    float *yr = y + r * d;
    double s = 0.0;
    int64_t c;
    for (c = 0; c < d; c++) s += xr[c];
    float mu = (float)(s / (double)d);
    float v = 0.0f;
#pragma omp simd reduction(+ : v)
    for (c = 0; c < d; c++) {
      float t = xr[c] - mu;
      v += t * t;
    }
    float rs = 1.0f / sqrtf(v / (float)d + eps);
#pragma omp simd
    for (c = 0; c < d; c++) yr[c] = (xr[c] - mu) * rs * gamma[c] + beta[c];
    if (mean) mean[r] = mu;
    if (rstd) rstd[r] = rs;
  }
}

/*
 * xhat = (x - mean) * rstd, g = dy * gamma:
 *   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  dgamma = sum_rows dy * xhat,  dbeta = sum_rows dy.
 */
void cl_layernorm_bwd(const float *dy, const float *x, const float *mean, const float *rstd, const float *gamma, int64_t rows, int64_t d, float *dx, float *dgamma, float *dbeta) {
  int nt = g_threads;
  if (rows * d <= 32768) nt = 1;
  float *partial = (float *)calloc((size_t)nt * 2 * (size_t)d, sizeof(float));
#pragma omp parallel num_threads(nt)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    float *pg = partial + (size_t)tid * 2 * (size_t)d;
    float *pb = pg + d;
    int64_t r;
#pragma omp for schedule(static)
    for (r = 0; r < rows; r++) {
      const float *xr = x + r * d;
      const float *dyr = dy + r * d;
      float *dxr = dx + r * d;
      float mu = mean[r], rs = rstd[r];
      float sg = 0.0f, sgx = 0.0f;
      int64_t c;
#pragma omp simd reduction(+ : sg, sgx)
      for (c = 0; c < d; c++) {
        float xh = (xr[c] - mu) * rs;
        float g = dyr[c] * gamma[c];
        sg += g;
        sgx += g * xh;
        pg[c] += dyr[c] * xh;
        pb[c] += dyr[c];
      }
      float mg = sg / (float)d, mgx = sgx / (float)d;
#pragma omp simd
      for (c = 0; c < d; c++) {
        float xh = (xr[c] - mu) * rs;
        dxr[c] = rs * (dyr[c] * gamma[c] - mg - xh * mgx);
      }
    }
  }
  for (int64_t c = 0; c < d; c++) {
    float g = 0.0f, b = 0.0f;
    for (int t = 0; t < nt; t++) {
      g += partial[(size_t)t * 2 * (size_t)d + c];
      b += partial[(size_t)t * 2 * (size_t)d + d + c];
    }
    dgamma[c] = g;
    dbeta[c] = b;
  }
  free(partial);
}

/* ------------------------------------------------------------------------------------------ */
/* Attention on packed q,k,v: qkv [B, T, 3D] (q | k | v along the last axis), H heads of D/H. */

/* Row softmax of s [T, T] in place, after adding mask [T, T] (may be NULL; -inf entries give 0). */
static void softmax_rows(float *s, const float *mask, int t) {
  for (int i = 0; i < t; i++) {
    float *row = s + (int64_t)i * t;
    const float *mrow = mask ? mask + (int64_t)i * t : 0;
    float mx = -INFINITY;
    for (int j = 0; j < t; j++) {
      float v = mrow ? row[j] + mrow[j] : row[j];
      row[j] = v;
      mx = v > mx ? v : mx;
    }
    if (mx == -INFINITY) {
      /* A fully masked row: torch gives NaN; keep its convention. */
      for (int j = 0; j < t; j++) row[j] = NAN;
      continue;
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < t; j++) {
      float e = cl_exp(row[j] - mx);
      row[j] = e;
      sum += e;
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < t; j++) row[j] *= inv;
  }
}

/* BLAS threads off inside our own parallel regions (each thread runs its own small GEMMs). */
static int blas_single(int nt) {
  if (nt > 1 && g_blas_set_threads) {
    g_blas_set_threads(1);
    return 1;
  }
  return 0;
}

static void blas_restore(int changed) {
  if (changed) g_blas_set_threads(g_threads);
}

/*
 * out [B, T, D] = concat_h softmax(scale * Q_h K_h^T + mask) V_h; probs [B, H, T, T] receives the
 * softmax when not NULL (saved for the backward pass).
 */
void cl_attention_fwd(const float *qkv, int b, int t, int d, int h, const float *mask, float scale, float *out, float *probs) {
  const int hd = d / h;
  const int ld = 3 * d;
  const int64_t pairs = (int64_t)b * h;
  int nt = g_threads < pairs ? g_threads : (int)pairs;
  if (nt < 1) nt = 1;
  int changed = blas_single(nt);
#pragma omp parallel num_threads(nt)
  {
    float *scratch = probs ? 0 : (float *)malloc((size_t)t * (size_t)t * sizeof(float));
    int64_t p;
#pragma omp for schedule(static)
    for (p = 0; p < pairs; p++) {
      int bi = (int)(p / h), hi = (int)(p % h);
      const float *q = qkv + (int64_t)bi * t * ld + (int64_t)hi * hd;
      const float *k = q + d;
      const float *v = q + 2 * d;
      float *s = probs ? probs + p * (int64_t)t * t : scratch;
      g_sgemm(ROW_MAJOR, NO_TRANS, TRANS, t, t, hd, scale, q, ld, k, ld, 0.0f, s, t);
      softmax_rows(s, mask, t);
      g_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, t, hd, t, 1.0f, s, t, v, ld, 0.0f, out + (int64_t)bi * t * d + (int64_t)hi * hd, d);
    }
    free(scratch);
  }
  blas_restore(changed);
}

/*
 * Given probs P (from the forward pass) and dout [B, T, D]:
 *   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(dP * P)),  dQ = scale dS K,  dK = scale dS^T Q
 * written into dqkv [B, T, 3D] (every element is written).
 */
void cl_attention_bwd(const float *qkv, const float *probs, const float *dout, int b, int t, int d, int h, float scale, float *dqkv) {
  const int hd = d / h;
  const int ld = 3 * d;
  const int64_t pairs = (int64_t)b * h;
  int nt = g_threads < pairs ? g_threads : (int)pairs;
  if (nt < 1) nt = 1;
  int changed = blas_single(nt);
#pragma omp parallel num_threads(nt)
  {
    float *ds = (float *)malloc((size_t)t * (size_t)t * sizeof(float));
    int64_t p;
#pragma omp for schedule(static)
    for (p = 0; p < pairs; p++) {
      int bi = (int)(p / h), hi = (int)(p % h);
      const int64_t base = (int64_t)bi * t * ld + (int64_t)hi * hd;
      const float *q = qkv + base, *k = q + d, *v = q + 2 * d;
      float *dq = dqkv + base, *dk = dq + d, *dv = dq + 2 * d;
      const float *P = probs + p * (int64_t)t * t;
      const float *dO = dout + (int64_t)bi * t * d + (int64_t)hi * hd;
      g_sgemm(ROW_MAJOR, TRANS, NO_TRANS, t, hd, t, 1.0f, P, t, dO, d, 0.0f, dv, ld);
      g_sgemm(ROW_MAJOR, NO_TRANS, TRANS, t, t, hd, 1.0f, dO, d, v, ld, 0.0f, ds, t);
      for (int i = 0; i < t; i++) {
        const float *pr = P + (int64_t)i * t;
        float *dr = ds + (int64_t)i * t;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < t; j++) dot += pr[j] * dr[j];
#pragma omp simd
        for (int j = 0; j < t; j++) dr[j] = pr[j] * (dr[j] - dot);
      }
      g_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, t, hd, t, scale, ds, t, k, ld, 0.0f, dq, ld);
      g_sgemm(ROW_MAJOR, TRANS, NO_TRANS, t, hd, t, scale, ds, t, q, ld, 0.0f, dk, ld);
    }
    free(ds);
  }
  blas_restore(changed);
}

/* ------------------------------------------------------------------------------------------ */
/* BatchNorm in training mode over x [rows, C] (NHWC flattened), optionally followed by ReLU
 * (Ioffe & Szegedy 2015, https://arxiv.org/abs/1502.03167): batch mean and biased variance per
 * channel (two passes, accumulated in double), y = (x - mean) * rstd * gamma + beta.            */

/* Per-channel sums over rows of f(row, channel), with per-thread partials. */
#define CHANNEL_REDUCE(ROWS, C, ACC, EXPR)                                                       \
  do {                                                                                           \
    int nt_ = (ROWS) * (C) > 65536 ? g_threads : 1;                                              \
    double *part_ = (double *)calloc((size_t)nt_ * (size_t)(C), sizeof(double));                 \
    _Pragma("omp parallel num_threads(nt_)") {                                                   \
      int tid_ = 0;                                                                              \
      OMP_TID(tid_);                                                                             \
      double *acc_ = part_ + (size_t)tid_ * (size_t)(C);                                         \
      int64_t r;                                                                                 \
      _Pragma("omp for schedule(static)") for (r = 0; r < (ROWS); r++) {                         \
        for (int ch = 0; ch < (C); ch++) acc_[ch] += (double)(EXPR);                             \
      }                                                                                          \
    }                                                                                            \
    for (int ch = 0; ch < (C); ch++) {                                                           \
      double t_ = 0.0;                                                                           \
      for (int k_ = 0; k_ < nt_; k_++) t_ += part_[(size_t)k_ * (size_t)(C) + ch];               \
      (ACC)[ch] = t_;                                                                            \
    }                                                                                            \
    free(part_);                                                                                 \
  } while (0)

#ifdef _OPENMP
#define OMP_TID(v) (v) = omp_get_thread_num()
#else
#define OMP_TID(v) (void)(v)
#endif

/* mean, var (biased) and rstd [C] out; y may not alias x. */
void cl_bn_train_fwd(const float *x, int64_t rows, int c, const float *gamma, const float *beta, float eps, int relu, float *y, float *mean, float *var, float *rstd) {
  double *acc = (double *)malloc((size_t)c * sizeof(double));
  CHANNEL_REDUCE(rows, c, acc, x[r * c + ch]);
  for (int ch = 0; ch < c; ch++) mean[ch] = (float)(acc[ch] / (double)rows);
  CHANNEL_REDUCE(rows, c, acc, ((double)x[r * c + ch] - (double)mean[ch]) * ((double)x[r * c + ch] - (double)mean[ch]));
  float *scale = (float *)malloc((size_t)c * sizeof(float));
  float *shift = (float *)malloc((size_t)c * sizeof(float));
  for (int ch = 0; ch < c; ch++) {
    var[ch] = (float)(acc[ch] / (double)rows);
    rstd[ch] = 1.0f / sqrtf(var[ch] + eps);
    scale[ch] = rstd[ch] * gamma[ch];
    shift[ch] = beta[ch] - mean[ch] * scale[ch];
  }
  int64_t r;
#pragma omp parallel for num_threads(g_threads) schedule(static) if (rows * c > 65536)
  for (r = 0; r < rows; r++) {
    const float *xr = x + r * c;
    float *yr = y + r * c;
    if (relu) {
#pragma omp simd
      for (int ch = 0; ch < c; ch++) {
        float v = xr[ch] * scale[ch] + shift[ch];
        yr[ch] = v > 0.0f ? v : 0.0f;
      }
    } else {
#pragma omp simd
      for (int ch = 0; ch < c; ch++) yr[ch] = xr[ch] * scale[ch] + shift[ch];
    }
  }
  free(acc);
  free(scale);
  free(shift);
}

/*
 * With g = dy (times 1[y > 0] after a ReLU) and xhat = (x - mean) * rstd:
 *   dbeta = sum g,  dgamma = sum g * xhat,  dx = gamma * rstd * (g - dbeta/N - xhat * dgamma/N).
 */
void cl_bn_train_bwd(const float *dy, const float *x, const float *y, const float *mean, const float *rstd, const float *gamma, int64_t rows, int c, int relu, float *dx, float *dgamma, float *dbeta) {
  double *sb = (double *)malloc((size_t)c * sizeof(double));
  double *sg = (double *)malloc((size_t)c * sizeof(double));
#define GRAD_IN(r, ch) (relu ? (y[(r) * c + (ch)] > 0.0f ? dy[(r) * c + (ch)] : 0.0f) : dy[(r) * c + (ch)])
  CHANNEL_REDUCE(rows, c, sb, GRAD_IN(r, ch));
  CHANNEL_REDUCE(rows, c, sg, GRAD_IN(r, ch) * ((x[r * c + ch] - mean[ch]) * rstd[ch]));
  float *k1 = (float *)malloc((size_t)c * sizeof(float));
  float *k2 = (float *)malloc((size_t)c * sizeof(float));
  float *k3 = (float *)malloc((size_t)c * sizeof(float));
  for (int ch = 0; ch < c; ch++) {
    dbeta[ch] = (float)sb[ch];
    dgamma[ch] = (float)sg[ch];
    k1[ch] = gamma[ch] * rstd[ch];
    k2[ch] = (float)(sb[ch] / (double)rows);
    k3[ch] = (float)(sg[ch] / (double)rows);
  }
  int64_t r;
#pragma omp parallel for num_threads(g_threads) schedule(static) if (rows * c > 65536)
  for (r = 0; r < rows; r++) {
    const float *xr = x + r * c;
    float *dxr = dx + r * c;
#pragma omp simd
    for (int ch = 0; ch < c; ch++) {
      float g = GRAD_IN(r, ch);
      float xh = (xr[ch] - mean[ch]) * rstd[ch];
      dxr[ch] = k1[ch] * (g - k2[ch] - xh * k3[ch]);
    }
  }
#undef GRAD_IN
  free(sb);
  free(sg);
  free(k1);
  free(k2);
  free(k3);
}

/* ------------------------------------------------------------------------------------------ */
/* Gradient of a 'valid' average pool over NHWC (windows fh x fw, strides sh x sw, divisor
 * fh*fw): dx = 0, then each dy value spread evenly over its window.                            */

void cl_avgpool_grad(const float *dy, int n, int h, int w, int c, int oh, int ow, int fh, int fw, int sh, int sw, float *dx) {
  const float inv = 1.0f / (float)(fh * fw);
  memset(dx, 0, (size_t)n * h * w * c * sizeof(float));
  int64_t img;
#pragma omp parallel for num_threads(g_threads) schedule(static) if ((int64_t)n * h * w * c > 65536)
  for (img = 0; img < n; img++) {
    for (int i = 0; i < oh; i++) {
      for (int j = 0; j < ow; j++) {
        const float *g = dy + ((img * oh + i) * ow + j) * (int64_t)c;
        for (int a = 0; a < fh; a++) {
          float *row = dx + ((img * h + (int64_t)i * sh + a) * w + (int64_t)j * sw) * c;
          for (int b = 0; b < fw; b++) {
            float *d = row + (int64_t)b * c;
#pragma omp simd
            for (int ch = 0; ch < c; ch++) d[ch] += g[ch] * inv;
          }
        }
      }
    }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* im2col / col2im for NHWC convolutions (see src/backend/im2col.ts for the layout): rows [r0, r1)
 * of the patch matrix P [rows, FH*FW*C], row (n*OH + oh)*OW + ow, column (kh*FW + kw)*C + ci.   */

typedef struct {
  int h, w, c, oh, ow, fh, fw, sh, sw, dh, dw, pt, pl;
} conv_geom;

static conv_geom geom(const int *g) {
  conv_geom r = {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12]};
  return r;
}

/* g: H, W, C, OH, OW, FH, FW, SH, SW, DH, DW, PT, PL. P row r - r0 receives patch row r. */
void cl_im2col(const float *x, const int *gp, int64_t r0, int64_t r1, float *p) {
  const conv_geom g = geom(gp);
  const int64_t k = (int64_t)g.fh * g.fw * g.c;
  int64_t r;
#pragma omp parallel for num_threads(g_threads) schedule(static) if ((r1 - r0) * k > 262144)
  for (r = r0; r < r1; r++) {
    const int ow = (int)(r % g.ow);
    const int64_t t = r / g.ow;
    const int oh = (int)(t % g.oh);
    const int64_t n = t / g.oh;
    float *dst = p + (r - r0) * k;
    const int iw0 = ow * g.sw - g.pl;
    const int inside = g.dw == 1 && iw0 >= 0 && iw0 + g.fw <= g.w;
    for (int kh = 0; kh < g.fh; kh++) {
      const int ih = oh * g.sh - g.pt + kh * g.dh;
      if (ih < 0 || ih >= g.h) {
        memset(dst, 0, (size_t)g.fw * g.c * sizeof(float));
        dst += (int64_t)g.fw * g.c;
        continue;
      }
      const float *row = x + ((n * g.h + ih) * g.w) * (int64_t)g.c;
      if (inside) {
        memcpy(dst, row + (int64_t)iw0 * g.c, (size_t)g.fw * g.c * sizeof(float));
        dst += (int64_t)g.fw * g.c;
        continue;
      }
      for (int kw = 0; kw < g.fw; kw++) {
        const int iw = iw0 + kw * g.dw;
        if (iw < 0 || iw >= g.w) memset(dst, 0, (size_t)g.c * sizeof(float));
        else memcpy(dst, row + (int64_t)iw * g.c, (size_t)g.c * sizeof(float));
        dst += g.c;
      }
    }
  }
}

/* dx[n, ih, iw, ci] += P[r - r0, (kh*FW + kw)*C + ci] for rows [r0, r1); dx zeroed by the caller. */
void cl_col2im(const float *p, const int *gp, int64_t r0, int64_t r1, float *dx) {
  const conv_geom g = geom(gp);
  const int64_t k = (int64_t)g.fh * g.fw * g.c;
  for (int64_t r = r0; r < r1; r++) {
    const int ow = (int)(r % g.ow);
    const int64_t t = r / g.ow;
    const int oh = (int)(t % g.oh);
    const int64_t n = t / g.oh;
    const float *src = p + (r - r0) * k;
    const int iw0 = ow * g.sw - g.pl;
    for (int kh = 0; kh < g.fh; kh++) {
      const int ih = oh * g.sh - g.pt + kh * g.dh;
      if (ih < 0 || ih >= g.h) {
        src += (int64_t)g.fw * g.c;
        continue;
      }
      float *row = dx + ((n * g.h + ih) * g.w) * (int64_t)g.c;
      for (int kw = 0; kw < g.fw; kw++) {
        const int iw = iw0 + kw * g.dw;
        if (iw >= 0 && iw < g.w) {
          float *d = row + (int64_t)iw * g.c;
#pragma omp simd
          for (int ci = 0; ci < g.c; ci++) d[ci] += src[ci];
        }
        src += g.c;
      }
    }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* AdamW, in place on m and v, p read from p and written to p_out (which may be p), with the exact operation order of src/train/adamw.ts' tfjs path
 * (each step a separately rounded float operation, no fused multiply-add), so that both give the
 * same bits; the constants come precomputed (and rounded to float) from the caller:
 *   g = g0 * gscale;  m = m*b1 + g*omb1;  v = v*b2 + (g*g)*omb2;
 *   p = p*decay - (m / (sqrt(v)/sqrt_bc2 + eps)) * step                                      */

#if defined(__clang__)
#define NO_CONTRACT _Pragma("STDC FP_CONTRACT OFF")
#define NO_CONTRACT_ATTR
#else
#define NO_CONTRACT
#define NO_CONTRACT_ATTR __attribute__((optimize("fp-contract=off")))
#endif

NO_CONTRACT_ATTR void cl_adamw(const float *p, float *p_out, float *m, float *v, const float *g, int64_t n, float gscale, float b1, float omb1, float b2, float omb2, float decay, float step, float sqrt_bc2, float eps) {
  NO_CONTRACT
  int64_t i;
#pragma omp parallel for simd num_threads(g_threads) schedule(static) if (n > 65536)
  for (i = 0; i < n; i++) {
    float gi = g[i] * gscale;
    float mi = m[i] * b1 + gi * omb1;
    float vi = v[i] * b2 + (gi * gi) * omb2;
    m[i] = mi;
    v[i] = vi;
    float denom = sqrtf(vi) / sqrt_bc2 + eps;
    p_out[i] = p[i] * decay - (mi / denom) * step;
  }
}

/* The same AdamW step (no weight decay) on rows of a [*, d] parameter: row rows[i] of p and g,
 * row i of the compact moments m, v [nrows, d].                                               */
NO_CONTRACT_ATTR void cl_adamw_rows(float *p, float *m, float *v, const float *g, const int32_t *rows, int64_t nrows, int64_t d, float gscale, float b1, float omb1, float b2, float omb2, float step, float sqrt_bc2, float eps) {
  NO_CONTRACT
  int64_t i;
#pragma omp parallel for num_threads(g_threads) schedule(static) if (nrows * d > 65536)
  for (i = 0; i < nrows; i++) {
    float *pr = p + (int64_t)rows[i] * d;
    const float *gr = g + (int64_t)rows[i] * d;
    float *mr = m + i * d;
    float *vr = v + i * d;
    for (int64_t k = 0; k < d; k++) {
      float gi = gr[k] * gscale;
      float mi = mr[k] * b1 + gi * omb1;
      float vi = vr[k] * b2 + (gi * gi) * omb2;
      mr[k] = mi;
      vr[k] = vi;
      float denom = sqrtf(vi) / sqrt_bc2 + eps;
      pr[k] = pr[k] - (mi / denom) * step;
    }
  }
}

/* Sum of squares of rows rows[0..nrows) of x [*, d], in double. */
double cl_sumsq_rows(const float *x, const int32_t *rows, int64_t nrows, int64_t d) {
  double s = 0.0;
  for (int64_t i = 0; i < nrows; i++) {
    const float *xr = x + (int64_t)rows[i] * d;
    for (int64_t k = 0; k < d; k++) s += (double)xr[k] * (double)xr[k];
  }
  return s;
}

/* Sum of squares (a gradient-norm term), accumulated in double. */
double cl_sumsq(const float *x, int64_t n) {
  double s = 0.0;
  int64_t i;
#pragma omp parallel for simd num_threads(g_threads) reduction(+ : s) schedule(static) if (n > 65536)
  for (i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
  return s;
}

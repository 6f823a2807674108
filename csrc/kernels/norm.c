/*
 * norm.c — batch normalisation (PyTorch's batch_norm, training and eval) and softmax /
 * log_softmax over one dimension, forward and backward.
 *
 * Dimension legend: batch norm sees its input as (N,C,S), N batch, C channels, S the
 * product of the trailing sizes (1 for an (N,C) input); a channel's m = N*S values are
 * strided runs of S floats.  Softmax sees its input as (outer, dim, inner) and reduces dim.
 */
#include "core/nv.h"
#include "core/mathfn.h"
#include "kernels/nn_kernels.h"

#include <math.h>

/* ---- batch_norm ------------------------------------------------------------------------ */

/* Sums over one run of n floats, in double but fast: 16 float partial sums, which vectorise
 * where a double accumulator chain does not, moved into the double every 1024 values so that
 * they stay short.  what: SUM_X sums x, SUM_SQ (x - c)^2, SUM_DOT y * (x - c). */
enum { SUM_X, SUM_SQ, SUM_DOT };
static inline double run_sum(int what, const float *x, const float *y, float c, int64_t n) {
  double acc = 0;
  for (int64_t i0 = 0; i0 < n; i0 += 1024) {
    int64_t i1 = n - i0 < 1024 ? n : i0 + 1024, i = i0;
    float l[16] = {0};
    for (; i < i1; i += 16) {
      int nb = i1 - i < 16 ? (int)(i1 - i) : 16;
      for (int k = 0; k < nb; k++) {
        float v = x[i + k] - c;
        l[k] += what == SUM_X ? x[i + k] : what == SUM_SQ ? v * v : y[i + k] * v;
      }
    }
    for (int k = 0; k < 16; k++) acc += l[k];
  }
  return acc;
}

int nv_batch_norm_check(int n, int c, int64_t s, int training, int have_running) {
  if (n < 0 || c < 1 || s < 1)
    return nv_seterr("batch_norm: bad input size (%d,%d,%lld)", n, c, (long long)s);
  if (training && (int64_t)n * s <= 1)
    return nv_seterr("batch_norm: expected more than 1 value per channel when training, got "
                     "input (%d,%d,%lld)", n, c, (long long)s);
  if (!training && !have_running)
    return nv_seterr("batch_norm: running_mean and running_var are required in evaluation "
                     "mode");
  return 1;
}

void nv_batch_norm_forward(float *out, float *save_mean, float *save_invstd, const float *in,
                           const float *weight, const float *bias, float *running_mean,
                           float *running_var, int n, int c, int64_t s, int training,
                           float momentum, float eps) {
  const int64_t m = (int64_t)n * s;
#pragma omp parallel for if (m * c >= NV_PAR_MIN) schedule(static)
  for (int ch = 0; ch < c; ch++) {   /* channels are independent: shared among threads */
    double mean, var;
    if (training) {
      /* two passes: mean = sum x / m, var = sum (x - mean)^2 / m (biased) */
      double sum = 0, sq = 0;
      for (int i = 0; i < n; i++) sum += run_sum(SUM_X, in + ((int64_t)i * c + ch) * s, NULL, 0, s);
      mean = sum / m;
      for (int i = 0; i < n; i++)
        sq += run_sum(SUM_SQ, in + ((int64_t)i * c + ch) * s, NULL, (float)mean, s);
      var = sq / m;
      /* running stats track the unbiased variance sum / (m - 1), as PyTorch does */
      if (running_mean)
        running_mean[ch] = (float)((1 - momentum) * running_mean[ch] + momentum * mean);
      if (running_var)
        running_var[ch] = (float)((1 - momentum) * running_var[ch] + momentum * sq / (m - 1));
    } else {
      mean = running_mean[ch];
      var = running_var[ch];
    }
    double invstd = 1.0 / sqrt(var + eps);
    if (save_mean) save_mean[ch] = (float)mean;
    if (save_invstd) save_invstd[ch] = (float)invstd;
    /* out = x * scale + shift, scale = w * invstd, shift = b - mean * scale */
    float scale = (float)((weight ? weight[ch] : 1.0) * invstd);
    float shift = (float)((bias ? bias[ch] : 0.0) - mean * scale);
    for (int i = 0; i < n; i++) {
      const float *x = in + ((int64_t)i * c + ch) * s;
      float *y = out + ((int64_t)i * c + ch) * s;
      for (int64_t k = 0; k < s; k++) y[k] = x[k] * scale + shift;
    }
  }
}

void nv_batch_norm_backward(float *din, float *dweight, float *dbias, const float *dout,
                            const float *in, const float *weight, const float *save_mean,
                            const float *save_invstd, int n, int c, int64_t s, int training) {
  const int64_t m = (int64_t)n * s;
#pragma omp parallel for if (m * c >= NV_PAR_MIN) schedule(static)
  for (int ch = 0; ch < c; ch++) {
    const float mean = save_mean[ch], invstd = save_invstd[ch];
    double sdy = 0, sdyx = 0; /* sum dout, sum dout * (x - mean) */
    for (int i = 0; i < n; i++) {
      const float *x = in + ((int64_t)i * c + ch) * s, *dy = dout + ((int64_t)i * c + ch) * s;
      sdy += run_sum(SUM_X, dy, NULL, 0, s);
      sdyx += run_sum(SUM_DOT, x, dy, mean, s);
    }
    if (dbias) dbias[ch] += (float)sdy;
    if (dweight) dweight[ch] += (float)(sdyx * invstd); /* sum dout * xhat */
    if (!din) continue;
    const float w = weight ? weight[ch] : 1.0f;
    /* training: the batch mean and var depend on x, giving the two correction terms
     *   din = w * invstd * (dy - mean(dy) - (x - mean) * invstd^2 * mean(dy * (x - mean))) */
    const float gmean = training ? (float)(sdy / m) : 0.0f;
    const float k2 = training ? (float)(sdyx / m * invstd * invstd) : 0.0f;
    const float a = w * invstd;
    for (int i = 0; i < n; i++) {
      const float *x = in + ((int64_t)i * c + ch) * s, *dy = dout + ((int64_t)i * c + ch) * s;
      float *dx = din + ((int64_t)i * c + ch) * s;
      for (int64_t k = 0; k < s; k++) dx[k] += a * (dy[k] - gmean - (x[k] - mean) * k2);
    }
  }
}

/* ---- layer norm (inference) ---------------------------------------------------------------
 * One row at a time: the mean, then the variance of x - mean in double (two passes, no
 * cancellation), then one pass that scales and shifts. */
void nv_layer_norm_forward(float *out, const float *in, const float *weight, const float *bias, int64_t rows,
                           int64_t d, float eps) {
  const int parts = rows > 1 ? nv_parts(rows * d) : 1;
#pragma omp parallel for if (parts > 1) schedule(static)
  for (int k = 0; k < parts; k++) {
    int64_t lo, hi;
    nv_part(rows, k, parts, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
      const float *x = in + r * d;
      float *y = out + r * d;
      float s = 0.0f;
      for (int64_t j = 0; j < d; j++) s += x[j];
      const float mean = s / (float)d;
      float v = 0.0f;
      for (int64_t j = 0; j < d; j++) { float c = x[j] - mean; v += c * c; }
      const float rstd = 1.0f / sqrtf(v / (float)d + eps);
      for (int64_t j = 0; j < d; j++) {
        float t = (x[j] - mean) * rstd;
        if (weight) t *= weight[j];
        if (bias) t += bias[j];
        y[j] = t;
      }
    }
  }
}

/* ---- softmax and log_softmax ------------------------------------------------------------
 * The dim values of one (outer, inner) position are inner floats apart.  Blocks of up to
 * BLK inner positions are reduced together so every loop walks memory contiguously
 * (inner = 1, the common last-dim case, is a block of one). */
#define BLK 64

/* mx[j] = max over dim and sm[j] = sum exp(x - mx[j]) for a block of nb positions; when e
 * is not NULL it receives exp(x - mx) (e may be x itself). */
static inline void max_sum(float *e, const float *x, int64_t dim, int64_t inner, int nb, float *mx,
                    float *sm) {
  /* A NaN never wins the max, but it still makes the sum, and so the whole softmax, NaN. */
  for (int j = 0; j < nb; j++) mx[j] = -INFINITY, sm[j] = 0.0f;
  if (inner == 1) { /* one contiguous row: a 16-lane max and 16-lane sums, which vectorise */
    float l[16];
    int64_t d = 0;
    for (int k = 0; k < 16; k++) l[k] = -INFINITY;
    for (; d + 16 <= dim; d += 16)
      for (int k = 0; k < 16; k++) l[k] = x[d + k] > l[k] ? x[d + k] : l[k];
    for (; d < dim; d++) mx[0] = x[d] > mx[0] ? x[d] : mx[0];
    for (int k = 0; k < 16; k++) mx[0] = l[k] > mx[0] ? l[k] : mx[0];
    const float m = mx[0];
    for (int k = 0; k < 16; k++) l[k] = 0.0f;
    for (d = 0; d + 16 <= dim; d += 16)
      for (int k = 0; k < 16; k++) {
        float v = nv_expf(x[d + k] - m);
        l[k] += v;
        if (e) e[d + k] = v;
      }
    float s = 0.0f;
    for (; d < dim; d++) {
      float v = nv_expf(x[d] - m);
      s += v;
      if (e) e[d] = v;
    }
    for (int k = 0; k < 16; k++) s += l[k];
    sm[0] = s;
    return;
  } else {
    for (int64_t d = 0; d < dim; d++)
      for (int j = 0; j < nb; j++) mx[j] = x[d * inner + j] > mx[j] ? x[d * inner + j] : mx[j];
  }
  for (int64_t d = 0; d < dim; d++)
    for (int j = 0; j < nb; j++) {
      float v = nv_expf(x[d * inner + j] - mx[j]);
      sm[j] += v;
      if (e) e[d * inner + j] = v;
    }
}

/* The usual last-dim case calls fn with a literal inner = 1, so that its inlined loops
 * vectorise; other layouts pass inner through. */
#define BY_INNER(fn, ...) \
  do { if (inner == 1) fn(__VA_ARGS__, 1); else fn(__VA_ARGS__, inner); } while (0)

static int block(int64_t inner, int64_t j0) { return inner - j0 < BLK ? (int)(inner - j0) : BLK; }

static inline void softmax_forward(float *out, const float *in, int64_t outer, int64_t dim, int64_t inner) {
  float mx[BLK], sm[BLK];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j0 = 0; j0 < inner; j0 += BLK) {
      const int nb = block(inner, j0);
      float *y = out + o * dim * inner + j0;
      max_sum(y, in + o * dim * inner + j0, dim, inner, nb, mx, sm);
      for (int j = 0; j < nb; j++) sm[j] = 1.0f / sm[j];
      for (int64_t d = 0; d < dim; d++)
        for (int j = 0; j < nb; j++) y[d * inner + j] *= sm[j];
    }
}

void nv_softmax_forward(float *out, const float *in, int64_t outer, int64_t dim, int64_t inner) {
  /* the outer positions in parts, one per thread when there is enough work */
  const int parts = outer > 1 ? nv_parts(outer * dim * inner) : 1;
#pragma omp parallel for if (parts > 1) schedule(static)
  for (int k = 0; k < parts; k++) {
    int64_t lo, hi;
    nv_part(outer, k, parts, &lo, &hi);
    const int64_t off = lo * dim * inner;
    BY_INNER(softmax_forward, out + off, in + off, hi - lo, dim);
  }
}

static inline void softmax_backward(float *din, const float *dout, const float *out, int64_t outer, int64_t dim, int64_t inner) {
  float dot[BLK];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j0 = 0; j0 < inner; j0 += BLK) {
      const int nb = block(inner, j0);
      const int64_t base = o * dim * inner + j0;
      const float *y = out + base, *dy = dout + base;
      float *dx = din + base;
      for (int j = 0; j < nb; j++) dot[j] = 0.0f;
      for (int64_t d = 0; d < dim; d++)
        for (int j = 0; j < nb; j++) dot[j] += dy[d * inner + j] * y[d * inner + j];
      for (int64_t d = 0; d < dim; d++)
        for (int j = 0; j < nb; j++) {
          int64_t k = d * inner + j;
          dx[k] += y[k] * (dy[k] - dot[j]);
        }
    }
}

void nv_softmax_backward(float *din, const float *dout, const float *out, int64_t outer,
                         int64_t dim, int64_t inner) {
  BY_INNER(softmax_backward, din, dout, out, outer, dim);
}

static inline void log_softmax_forward(float *out, const float *in, int64_t outer, int64_t dim, int64_t inner) {
  float mx[BLK], sm[BLK];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j0 = 0; j0 < inner; j0 += BLK) {
      const int nb = block(inner, j0);
      const float *x = in + o * dim * inner + j0;
      float *y = out + o * dim * inner + j0;
      max_sum(NULL, x, dim, inner, nb, mx, sm);
      /* (x - max) - log sum: adding max and log sum first would lose log sum's digits */
      for (int j = 0; j < nb; j++) sm[j] = logf(sm[j]);
      for (int64_t d = 0; d < dim; d++)
        for (int j = 0; j < nb; j++) y[d * inner + j] = (x[d * inner + j] - mx[j]) - sm[j];
    }
}

void nv_log_softmax_forward(float *out, const float *in, int64_t outer, int64_t dim,
                            int64_t inner) {
  BY_INNER(log_softmax_forward, out, in, outer, dim);
}

static inline void log_softmax_backward(float *din, const float *dout, const float *out, int64_t outer, int64_t dim, int64_t inner) {
  float sum[BLK];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j0 = 0; j0 < inner; j0 += BLK) {
      const int nb = block(inner, j0);
      const int64_t base = o * dim * inner + j0;
      const float *y = out + base, *dy = dout + base;
      float *dx = din + base;
      for (int j = 0; j < nb; j++) sum[j] = 0.0f;
      for (int64_t d = 0; d < dim; d++)
        for (int j = 0; j < nb; j++) sum[j] += dy[d * inner + j];
      for (int64_t d = 0; d < dim; d++)
        for (int j = 0; j < nb; j++) {
          int64_t k = d * inner + j;
          dx[k] += dy[k] - nv_expf(y[k]) * sum[j];
        }
    }
}

void nv_log_softmax_backward(float *din, const float *dout, const float *out, int64_t outer,
                             int64_t dim, int64_t inner) {
  BY_INNER(log_softmax_backward, din, dout, out, outer, dim);
}

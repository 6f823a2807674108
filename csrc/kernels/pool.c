/*
 * pool.c — 2-d pooling with PyTorch's rules: max_pool2d (padding, dilation, ceil_mode,
 * argmax indices), avg_pool2d (ceil_mode, count_include_pad) and adaptive_avg_pool2d,
 * forward and backward, and the output-size helper shared with conv.c.
 *
 * Dimension legend: N batch, C channels, H,W input, OH,OW output, KH,KW window.  Each of
 * the N*C planes is pooled on its own; planes are contiguous H*W floats.
 */
#include "core/nv.h"
#include "kernels/nn_kernels.h"

#include <math.h>

/* floor(a / b) for b > 0 (C's / truncates toward zero). */
static int64_t floordiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

int64_t nv_pool_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil,
                         int ceil_mode) {
  int64_t span = in + 2 * pad - dil * (k - 1) - 1; /* last start of a full window */
  int64_t out = floordiv(span + (ceil_mode ? stride - 1 : 0), stride) + 1;
  /* ceil mode may add a window hanging off the right edge, but only if it starts inside
   * the input or the left padding: one starting in the right padding would see nothing */
  if (ceil_mode && (out - 1) * stride >= in + pad) out--;
  return out;
}

int nv_pool2d_init(nv_pool2d_shape *s, const char *op) {
  int avg = op[0] == 'a';
  if (s->n < 0 || s->c < 1 || s->h < 1 || s->w < 1)
    return nv_seterr("%s: bad input size (%d,%d,%d,%d)", op, s->n, s->c, s->h, s->w);
  if ((int64_t)s->h * s->w > INT32_MAX) /* indices are int32 positions in a plane */
    return nv_seterr("%s: input plane (%d,%d) too large", op, s->h, s->w);
  if (s->kh < 1 || s->kw < 1 || s->sh < 1 || s->sw < 1 || s->dh < 1 || s->dw < 1)
    return nv_seterr("%s: kernel (%d,%d), stride (%d,%d) and dilation (%d,%d) must be "
                     "positive", op, s->kh, s->kw, s->sh, s->sw, s->dh, s->dw);
  if (avg && (s->dh != 1 || s->dw != 1))
    return nv_seterr("%s: dilation must be 1", op);
  if (s->ph < 0 || s->pw < 0 || s->ph > s->kh / 2 || s->pw > s->kw / 2)
    return nv_seterr("%s: padding (%d,%d) must be at most half the kernel size (%d,%d)", op,
                     s->ph, s->pw, s->kh, s->kw);
  int64_t oh = nv_pool_out_size(s->h, s->kh, s->sh, s->ph, s->dh, s->ceil_mode);
  int64_t ow = nv_pool_out_size(s->w, s->kw, s->sw, s->pw, s->dw, s->ceil_mode);
  if (oh < 1 || ow < 1)
    return nv_seterr("%s: input (%d,%d,%d,%d) gives output size (%lld,%lld), which is too "
                     "small", op, s->n, s->c, s->h, s->w, (long long)oh, (long long)ow);
  s->oh = (int)oh;
  s->ow = (int)ow;
  return 1;
}

/* Both pools run one output row at a time, tap by tap: for each window tap (i,j), in the
 * row-major order PyTorch visits them, one pass over the output columns it is valid for.
 * The inner loops then walk memory with a fixed stride and vectorise, where looping over
 * each output's own window does not (a 2x2 window is too short a loop).
 *
 * Output columns [lo, hi) are those whose tap at offset x = j*d - pad lands inside the
 * input row: 0 <= o*stride + x < n. */
static void valid_cols(int64_t x, int stride, int n, int nout, int *lo, int *hi) {
  int64_t a, b;
  if (stride == 1) /* no division: this runs once per tap and output row */
    a = x >= 0 ? 0 : -x, b = n - x < 0 ? 0 : n - x;
  else
    a = x >= 0 ? 0 : (-x + stride - 1) / stride, b = n - 1 - x < 0 ? 0 : (n - 1 - x) / stride + 1;
  if (b > nout) b = nout;
  if (a > nout) a = nout;
  *lo = (int)a, *hi = (int)(a > b ? a : b);
}

/* The taps t in [0, k) with lo <= base + t*d <= hi (d >= 1), as [*t0, *t1).  The pooling
 * loops visit only these, so their cost is bounded by the input, not by the kernel size (a
 * 2^31-wide window over a 2x6 input visits a handful of taps, not 2^31). */
static void tap_span(int64_t base, int64_t d, int64_t k, int64_t lo, int64_t hi, int *t0, int *t1) {
  int64_t a = base >= lo ? 0 : (lo - base + d - 1) / d;
  int64_t b = base > hi ? 0 : (hi - base) / d + 1;
  if (b > k) b = k;
  if (a > b) a = b;
  *t0 = (int)a, *t1 = (int)b;
}

/* window rows of output row oh inside the input; window columns that reach some input column */
static void row_taps(const nv_pool2d_shape *s, int oh, int dil, int *i0, int *i1) {
  tap_span((int64_t)oh * s->sh - s->ph, dil, s->kh, 0, s->h - 1, i0, i1);
}
static void col_taps(const nv_pool2d_shape *s, int dil, int *j0, int *j1) {
  tap_span(-(int64_t)s->pw, dil, s->kw, -(int64_t)(s->ow - 1) * s->sw, s->w - 1, j0, j1);
}

/* ---- max_pool2d ------------------------------------------------------------------------ */

/* One tap for output columns [lo, hi): the first valid tap always counts (PyTorch starts
 * from it), then strict >, so ties keep the first max, and NaN wins.  Selects rather than
 * branches, on restrict pointers, so that it vectorises. */
static void max_tap(float *restrict o, int32_t *restrict ix, const float *restrict row, int lo,
                    int hi, int stride, int64_t x, int32_t base) {
  for (int ow = lo; ow < hi; ow++) {
    int iw = (int)((int64_t)ow * stride + x);
    float v = row[iw], m = o[ow];
    int32_t k = ix[ow];
    int take = (v > m) | (v != v) | (k < 0);
    o[ow] = take ? v : m;
    ix[ow] = take ? base + iw : k;
  }
}

/* Value only (no gradient wanted): the same rule without the indices. */
static void max_tap_value(float *restrict o, const float *restrict row, int lo, int hi, int stride, int64_t x) {
  for (int ow = lo; ow < hi; ow++) {
    float v = row[(int64_t)ow * stride + x], m = o[ow];
    o[ow] = (v > m) | (v != v) ? v : m;
  }
}

/* The common 2x2 window at stride 2 with no padding, each window inside the input: rows r0
 * and r1 (r1 = r0 + W), taps in the general loop's order (0,0), (0,1), (1,0), (1,1). */
NV_HOT static void max_row_2x2(float *restrict o, int32_t *restrict ix, const float *restrict r0,
                               const float *restrict r1, int n, int32_t base, int32_t w) {
  for (int k = 0; k < n; k++) {
    float a = r0[2 * k], b = r0[2 * k + 1], c = r1[2 * k], d = r1[2 * k + 1];
    float m = a;
    int32_t i = 0;
    int t = (b > m) | (b != b); m = t ? b : m; i = t ? 1 : i;
    t = (c > m) | (c != c); m = t ? c : m; i = t ? 2 : i;
    t = (d > m) | (d != d); m = t ? d : m; i = t ? 3 : i;
    o[k] = m;
    if (ix) ix[k] = base + (i >> 1) * w + 2 * k + (i & 1);
  }
}

void nv_max_pool2d_forward(float *out, int32_t *indices, const float *in,
                           const nv_pool2d_shape *s) {
  const int64_t planes = (int64_t)s->n * s->c;
  const int fast = s->kh == 2 && s->kw == 2 && s->sh == 2 && s->sw == 2 && s->ph == 0 && s->pw == 0 &&
                   2 * s->oh <= s->h && 2 * s->ow <= s->w;
#pragma omp parallel for if (planes * s->h * s->w >= NV_PAR_MIN) schedule(static)
  for (int64_t pl = 0; pl < planes; pl++) {   /* planes are independent */
    const float *p = in + pl * s->h * s->w;
    for (int oh = 0; oh < s->oh; oh++) {
      float *o = out + (pl * s->oh + oh) * s->ow;
      int32_t *ix = indices ? indices + (pl * s->oh + oh) * s->ow : NULL;
      if (fast) {
        const float *r0 = p + (int64_t)2 * oh * s->w;
        max_row_2x2(o, ix, r0, r0 + s->w, s->ow, 2 * oh * s->w, s->w);
        continue;
      }
      /* padding is -inf; a dilated window that misses the input entirely keeps -inf and
       * index -1, which backward skips */
      for (int ow = 0; ow < s->ow; ow++) o[ow] = -INFINITY;
      if (ix)
        for (int ow = 0; ow < s->ow; ow++) ix[ow] = -1;
      int i0, i1, j0, j1;
      row_taps(s, oh, s->dh, &i0, &i1);
      col_taps(s, s->dw, &j0, &j1);
      for (int i = i0; i < i1; i++) {
        int ih = (int)((int64_t)oh * s->sh - s->ph + (int64_t)i * s->dh);
        const float *row = p + (int64_t)ih * s->w;
        for (int j = j0; j < j1; j++) {
          int64_t x = (int64_t)j * s->dw - s->pw;
          int lo, hi;
          valid_cols(x, s->sw, s->w, s->ow, &lo, &hi);
          if (ix) max_tap(o, ix, row, lo, hi, s->sw, x, ih * s->w);
          else max_tap_value(o, row, lo, hi, s->sw, x);
        }
      }
    }
  }
}

/* Channels-last, value only: input and output (N,H,W,C) in memory.  Each output pixel is
 * the running maximum of its window's taps, C floats at a time (a contiguous, vectorised
 * loop), with the rule above: the first valid tap, then strict > (NaN wins). */
NV_HOT static void max_pixel_nhwc(float *restrict o, const float *restrict in, const nv_pool2d_shape *s, int n,
                                  int oh, int ow) {
  const int C = s->c;
  int i0, i1, j0, j1;
  row_taps(s, oh, s->dh, &i0, &i1);
  tap_span((int64_t)ow * s->sw - s->pw, s->dw, s->kw, 0, s->w - 1, &j0, &j1);
  for (int c = 0; c < C; c++) o[c] = -INFINITY;
  for (int i = i0; i < i1; i++) {
    int64_t ih = (int64_t)oh * s->sh - s->ph + (int64_t)i * s->dh;
    for (int j = j0; j < j1; j++) {
      int64_t iw = (int64_t)ow * s->sw - s->pw + (int64_t)j * s->dw;
      const float *restrict p = in + (((int64_t)n * s->h + ih) * s->w + iw) * C;
      for (int c = 0; c < C; c++) {
        float v = p[c], m = o[c];
        o[c] = (v > m) | (v != v) ? v : m;
      }
    }
  }
}

void nv_max_pool2d_forward_nhwc(float *out, const float *in, const nv_pool2d_shape *s) {
  const int64_t rows = (int64_t)s->n * s->oh;
#pragma omp parallel for if (rows * s->ow * s->c >= NV_PAR_MIN) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const int n = (int)(r / s->oh), oh = (int)(r % s->oh);
    for (int ow = 0; ow < s->ow; ow++) max_pixel_nhwc(out + (r * s->ow + ow) * s->c, in, s, n, oh, ow);
  }
}

void nv_max_pool2d_backward(float *din, const float *dout, const int32_t *indices,
                            const nv_pool2d_shape *s) {
  const int64_t planes = (int64_t)s->n * s->c, np = (int64_t)s->oh * s->ow;
  for (int64_t pl = 0; pl < planes; pl++) {
    float *d = din + pl * s->h * s->w;
    for (int64_t k = pl * np; k < (pl + 1) * np; k++)
      if (indices[k] >= 0) d[indices[k]] += dout[k];
  }
}

/* ---- avg_pool2d ------------------------------------------------------------------------ */

/* PyTorch's divisor is a product of a row and a column factor: along each axis the window
 * [o*stride - pad, +k) is first cut at the far edge of the padding (in ceil mode it may hang
 * past it, and that part never counts), giving the count_include_pad length; then cut to
 * the input, giving the other.  Returns <= 0 when the window misses the input. */
static int avg_len(int o, int stride, int pad, int k, int n, int include_pad) {
  int64_t a = (int64_t)o * stride - pad, c = a + k < (int64_t)n + pad ? a + k : (int64_t)n + pad;
  int64_t a1 = a < 0 ? 0 : a, c1 = c > n ? n : c;
  int64_t len = include_pad ? c - a : c1 - a1;
  return c1 > a1 ? (int)(len < INT32_MAX ? len : INT32_MAX) : 0; /* no input cell: PyTorch outputs 0 */
}

static float edge_div(int ow, const nv_pool2d_shape *s, int rl) {
  double div = (double)rl * avg_len(ow, s->sw, s->pw, s->kw, s->w, s->count_include_pad);
  return (float)(div > 0 ? div : 1);
}

/* dst[k] = src[k] / divisor of output column b0 + k, k < nb, in a row whose row factor is
 * rl (dst may be src).  Windows inside the input all have rl * KW: those get one vectorised
 * loop, the few at the edges the general rule.  A window with no input cell is divided by 1:
 * its sum is 0 (PyTorch outputs 0) and its gradient reaches no cell. */
static void divide_cols(float *dst, const float *src, int b0, int nb, const nv_pool2d_shape *s,
                        int rl) {
  int lo, hi, lo1, hi1;
  valid_cols(-s->pw, s->sw, s->w, s->ow, &lo, &hi);                /* first tap inside */
  valid_cols((int64_t)s->kw - 1 - s->pw, s->sw, s->w, s->ow, &lo1, &hi1);   /* last tap inside */
  lo = lo < b0 ? b0 : lo > b0 + nb ? b0 + nb : lo;
  hi = hi1 < lo ? lo : hi1 > b0 + nb ? b0 + nb : hi1;
  float full = (float)(rl > 0 ? (double)rl * s->kw : 1);
  for (int k = lo - b0; k < hi - b0; k++) dst[k] = src[k] / full;
  for (int k = 0; k < lo - b0; k++) dst[k] = src[k] / edge_div(b0 + k, s, rl);
  for (int k = hi - b0; k < nb; k++) dst[k] = src[k] / edge_div(b0 + k, s, rl);
}

/* o[ow] += row[ow*stride + x] for ow in [lo, hi): one tap of avg_pool2d's forward. */
static void add_tap(float *restrict o, const float *restrict row, int lo, int hi, int stride,
                    int64_t x) {
  if (stride == 1) /* the common case, spelled out so it vectorises with plain loads */
    for (int ow = lo; ow < hi; ow++) o[ow] += row[ow + x];
  else
    for (int ow = lo; ow < hi; ow++) o[ow] += row[(int64_t)ow * stride + x];
}

/* row[ow*stride + x] += g[ow]: the mirror of add_tap, for backward. */
static void scatter_tap(float *restrict row, const float *restrict g, int lo, int hi,
                        int stride, int64_t x) {
  if (stride == 1)
    for (int ow = lo; ow < hi; ow++) row[ow + x] += g[ow];
  else
    for (int ow = lo; ow < hi; ow++) row[(int64_t)ow * stride + x] += g[ow];
}

void nv_avg_pool2d_forward(float *out, const float *in, const nv_pool2d_shape *s) {
  const int64_t planes = (int64_t)s->n * s->c;
  const int cip = s->count_include_pad;
  for (int64_t pl = 0; pl < planes; pl++) {
    const float *p = in + pl * s->h * s->w;
    for (int oh = 0; oh < s->oh; oh++) {
      float *o = out + (pl * s->oh + oh) * s->ow;
      for (int ow = 0; ow < s->ow; ow++) o[ow] = 0.0f;
      int i0, i1, j0, j1;
      row_taps(s, oh, 1, &i0, &i1);
      col_taps(s, 1, &j0, &j1);
      for (int i = i0; i < i1; i++) {
        int ih = (int)((int64_t)oh * s->sh - s->ph + i);
        for (int j = j0; j < j1; j++) {
          int64_t x = (int64_t)j - s->pw;
          int lo, hi;
          valid_cols(x, s->sw, s->w, s->ow, &lo, &hi);
          add_tap(o, p + (int64_t)ih * s->w, lo, hi, s->sw, x);
        }
      }
      divide_cols(o, o, 0, s->ow, s, avg_len(oh, s->sh, s->ph, s->kh, s->h, cip));
    }
  }
}

/* Output columns are done in blocks of BLK, whose gradients divided by their divisors
 * (d out / d x = 1 / divisor for each cell of the window) wait in a small buffer. */
#define BLK 256

void nv_avg_pool2d_backward(float *din, const float *dout, const nv_pool2d_shape *s) {
  const int64_t planes = (int64_t)s->n * s->c;
  const int cip = s->count_include_pad;
  float gs[BLK];
  for (int64_t pl = 0; pl < planes; pl++) {
    float *d = din + pl * s->h * s->w;
    for (int oh = 0; oh < s->oh; oh++) {
      const float *g = dout + (pl * s->oh + oh) * s->ow;
      int rl = avg_len(oh, s->sh, s->ph, s->kh, s->h, cip);
      if (rl <= 0) continue;
      for (int b0 = 0; b0 < s->ow; b0 += BLK) {
        int nb = s->ow - b0 < BLK ? s->ow - b0 : BLK;
        divide_cols(gs, g + b0, b0, nb, s, rl);
        int i0, i1, j0, j1;
        row_taps(s, oh, 1, &i0, &i1);
        col_taps(s, 1, &j0, &j1);
        for (int i = i0; i < i1; i++) {
          int ih = (int)((int64_t)oh * s->sh - s->ph + i);
          for (int j = j0; j < j1; j++) {
            int64_t x = (int64_t)j - s->pw;
            int lo, hi;
            valid_cols(x, s->sw, s->w, s->ow, &lo, &hi);
            lo = lo > b0 ? lo : b0;
            hi = hi < b0 + nb ? hi : b0 + nb;
            /* block-relative: column ow = b0 + k reads cell (b0 + k)*stride + x */
            scatter_tap(d + (int64_t)ih * s->w, gs - b0, lo, hi, s->sw, x);
          }
        }
      }
    }
  }
}

/* ---- adaptive_avg_pool2d --------------------------------------------------------------- */

/* floor(i*in/out) and ceil((i+1)*in/out), without forming i*in (PyTorch's formulas). */
static int astart(int i, int out, int in) {
  return (int)((int64_t)(i / out) * in + (int64_t)(i % out) * in / out);
}
static int aend(int i, int out, int in) { return (int)(1 + ((int64_t)(i + 1) * in - 1) / out); }

void nv_adaptive_avg_pool2d_forward(float *out, const float *in, int64_t planes, int h, int w,
                                    int oh, int ow) {
  for (int64_t pl = 0; pl < planes; pl++) {
    const float *p = in + pl * h * w;
    float *o = out + pl * oh * ow;
    for (int i = 0; i < oh; i++) {
      int h0 = astart(i, oh, h), h1 = aend(i, oh, h);
      for (int j = 0; j < ow; j++) {
        int w0 = astart(j, ow, w), w1 = aend(j, ow, w);
        float sum = 0.0f;
        for (int ih = h0; ih < h1; ih++)
          for (int iw = w0; iw < w1; iw++) sum += p[ih * w + iw];
        o[i * ow + j] = sum / (float)((h1 - h0) * (w1 - w0));
      }
    }
  }
}

void nv_adaptive_avg_pool2d_backward(float *din, const float *dout, int64_t planes, int h,
                                     int w, int oh, int ow) {
  for (int64_t pl = 0; pl < planes; pl++) {
    float *d = din + pl * h * w;
    const float *g = dout + pl * oh * ow;
    for (int i = 0; i < oh; i++) {
      int h0 = astart(i, oh, h), h1 = aend(i, oh, h);
      for (int j = 0; j < ow; j++) {
        int w0 = astart(j, ow, w), w1 = aend(j, ow, w);
        float v = g[i * ow + j] / (float)((h1 - h0) * (w1 - w0));
        for (int ih = h0; ih < h1; ih++)
          for (int iw = w0; iw < w1; iw++) d[ih * w + iw] += v;
      }
    }
  }
}

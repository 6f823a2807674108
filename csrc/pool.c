/*
 * pool.c — 2-d pooling with PyTorch's rules: max_pool2d (padding, dilation, ceil_mode,
 * argmax indices), avg_pool2d (ceil_mode, count_include_pad) and adaptive_avg_pool2d,
 * forward and backward, and the output-size helper shared with conv.c.
 *
 * Dimension legend: N batch, C channels, H,W input, OH,OW output, KH,KW window.  Each of
 * the N*C planes is pooled on its own; planes are contiguous H*W floats.
 */
#include "nv.h"
#include "nn_kernels.h"

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

/* ---- max_pool2d ------------------------------------------------------------------------ */

/* First in-range tap of a window starting at x0 (taps x0 + k*d), and the end of its range. */
static void taps(int x0, int k, int d, int n, int *lo, int *hi) {
  int end = x0 + (k - 1) * d + 1;
  while (x0 < 0) x0 += d;
  *lo = x0;
  *hi = end < n ? end : n;
}

void nv_max_pool2d_forward(float *out, int32_t *indices, const float *in,
                           const nv_pool2d_shape *s) {
  const int64_t planes = (int64_t)s->n * s->c;
  for (int64_t pl = 0; pl < planes; pl++) {
    const float *p = in + pl * s->h * s->w;
    float *o = out + pl * s->oh * s->ow;
    int32_t *ix = indices + pl * s->oh * s->ow;
    for (int oh = 0; oh < s->oh; oh++) {
      int h0, h1;
      taps(oh * s->sh - s->ph, s->kh, s->dh, s->h, &h0, &h1);
      for (int ow = 0; ow < s->ow; ow++) {
        int w0, w1;
        taps(ow * s->sw - s->pw, s->kw, s->dw, s->w, &w0, &w1);
        /* padding is -inf; a (dilated) window that misses the input entirely gets -inf
         * and index -1, which backward skips */
        float m = -INFINITY;
        int32_t mi = h0 < h1 && w0 < w1 ? h0 * s->w + w0 : -1;
        for (int ih = h0; ih < h1; ih += s->dh)
          for (int iw = w0; iw < w1; iw += s->dw) {
            /* strict >: the first max wins; written as selects, not a branch, since on
             * real data the branch is a coin flip */
            float v = p[ih * s->w + iw];
            int take = (v > m) | (v != v);
            m = take ? v : m;
            mi = take ? ih * s->w + iw : mi;
          }
        o[oh * s->ow + ow] = m;
        ix[oh * s->ow + ow] = mi;
      }
    }
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

/* The window of output (oh,ow) clipped to the input, and PyTorch's divisor for it: the window
 * is first cut at the far edge of the padding (in ceil mode it may hang past it, and that part
 * never counts), giving the count_include_pad divisor; then cut to the input, giving the
 * other.  Returns 0 for a window with no input cell (its output is 0). */
static int avg_window(const nv_pool2d_shape *s, int oh, int ow, int *h0, int *h1, int *w0,
                      int *w1, float *div) {
  int a = oh * s->sh - s->ph, b = ow * s->sw - s->pw;
  int c = a + s->kh < s->h + s->ph ? a + s->kh : s->h + s->ph;
  int d = b + s->kw < s->w + s->pw ? b + s->kw : s->w + s->pw;
  int padded = (c - a) * (d - b);
  a = a < 0 ? 0 : a, b = b < 0 ? 0 : b;
  c = c > s->h ? s->h : c, d = d > s->w ? s->w : d;
  if (a >= c || b >= d) return 0;
  *h0 = a, *h1 = c, *w0 = b, *w1 = d;
  *div = (float)(s->count_include_pad ? padded : (c - a) * (d - b));
  return 1;
}

void nv_avg_pool2d_forward(float *out, const float *in, const nv_pool2d_shape *s) {
  const int64_t planes = (int64_t)s->n * s->c;
  for (int64_t pl = 0; pl < planes; pl++) {
    const float *p = in + pl * s->h * s->w;
    float *o = out + pl * s->oh * s->ow;
    for (int oh = 0; oh < s->oh; oh++)
      for (int ow = 0; ow < s->ow; ow++) {
        int h0, h1, w0, w1;
        float div, sum = 0.0f;
        if (avg_window(s, oh, ow, &h0, &h1, &w0, &w1, &div)) {
          for (int ih = h0; ih < h1; ih++)
            for (int iw = w0; iw < w1; iw++) sum += p[ih * s->w + iw];
          sum /= div;
        }
        o[oh * s->ow + ow] = sum;
      }
  }
}

void nv_avg_pool2d_backward(float *din, const float *dout, const nv_pool2d_shape *s) {
  const int64_t planes = (int64_t)s->n * s->c;
  for (int64_t pl = 0; pl < planes; pl++) {
    float *d = din + pl * s->h * s->w;
    const float *g = dout + pl * s->oh * s->ow;
    for (int oh = 0; oh < s->oh; oh++)
      for (int ow = 0; ow < s->ow; ow++) {
        int h0, h1, w0, w1;
        float div;
        if (!avg_window(s, oh, ow, &h0, &h1, &w0, &w1, &div)) continue;
        float v = g[oh * s->ow + ow] / div; /* d out / d x = 1/div for each cell */
        for (int ih = h0; ih < h1; ih++)
          for (int iw = w0; iw < w1; iw++) d[ih * s->w + iw] += v;
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

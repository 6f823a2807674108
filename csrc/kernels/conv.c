/*
 * conv.c — 2-d convolution (PyTorch's conv2d: stride, zero padding, dilation, groups) as
 * im2col + gemm, forward and backward.
 *
 * Dimension legend: N batch, Cin/Cout channels, H,W input, OH,OW output, KH,KW kernel,
 * G groups, Cg = Cin/G and COg = Cout/G channels per group, K = Cg*KH*KW the reduction
 * size of one group, P = OH*OW output positions.
 *
 * The column matrix of one sample is (Cin*KH*KW, P): row (c,i,j) holds the input cell each
 * output position sees through kernel tap (i,j) of channel c.  Its rows are ordered by
 * channel, so group g's (K, P) block is contiguous and one im2col serves all groups.
 * Per sample and group:
 *   forward:  out_g (COg,P)  = W_g (COg,K) @ col_g (K,P)          (+ bias)
 *   dweight:  dW_g  (COg,K) += dout_g (COg,P) @ col_g^T (P,K)
 *   dinput:   dcol_g (K,P)   = W_g^T (K,COg) @ dout_g (COg,P),  then col2im adds it into din
 * The whole column matrix of a large layer is big (VGG16's 64 -> 64 3x3 at 224x224: 115 MB),
 * and writing it out and reading it back cost a fifth of the gemm's time there.  So it is
 * built in tiles of whole output rows, about COL_TILE floats each, which stay in cache
 * between im2col and the gemm that consumes them (and keep the scratch small).  A 1x1 stride-1 unpadded convolution needs no
 * im2col at all: the input plane stack (Cin, H*W) already is the column matrix.
 */
#include "core/nv.h"
#include "kernels/nn_kernels.h"

#include <stdlib.h>
#include <pthread.h>
#include <string.h>

/* Floats per column tile (scratch slots 0 and 1): 1 Mi floats = 4 MiB.  On VGG16's 3x3
 * layers (batch 1, 2 OpenBLAS threads) conv forward ran at 0.86-1.0 of the rate of one gemm
 * of the same size with it; 256 Ki floats gave 0.5-0.9 (the gemms get too thin), 16 Mi
 * 0.81-0.95 (the tile leaves the cache), the whole matrix 0.81 on the 224x224 layer. */
#ifndef COL_TILE
#define COL_TILE (1 << 20)
#endif

enum { SLOT_COL = 0, SLOT_DCOL = 1, SLOT_BLOCK = 2 };

int nv_conv2d_init(nv_conv2d_shape *s) {
  if (s->n < 0 || s->cin < 1 || s->h < 1 || s->w < 1 || s->cout < 1 || s->kh < 1 || s->kw < 1)
    return nv_seterr("conv2d: bad sizes: input (%d,%d,%d,%d), weight (%d,_,%d,%d)", s->n,
                     s->cin, s->h, s->w, s->cout, s->kh, s->kw);
  if (s->sh < 1 || s->sw < 1 || s->dh < 1 || s->dw < 1 || s->ph < 0 || s->pw < 0)
    return nv_seterr("conv2d: stride (%d,%d) and dilation (%d,%d) must be positive and "
                     "padding (%d,%d) non-negative", s->sh, s->sw, s->dh, s->dw, s->ph, s->pw);
  if (s->groups < 1 || s->cin % s->groups || s->cout % s->groups)
    return nv_seterr("conv2d: groups %d must divide the input channels %d and output "
                     "channels %d", s->groups, s->cin, s->cout);
  int64_t oh = nv_pool_out_size(s->h, s->kh, s->sh, s->ph, s->dh, 0);
  int64_t ow = nv_pool_out_size(s->w, s->kw, s->sw, s->pw, s->dw, 0);
  if (oh < 1 || ow < 1)
    return nv_seterr("conv2d: padded input (%lld,%lld) is smaller than the dilated kernel (%lld,%lld)",
                     (long long)s->h + 2LL * s->ph, (long long)s->w + 2LL * s->pw,
                     (long long)s->dh * (s->kh - 1) + 1, (long long)s->dw * (s->kw - 1) + 1);
  /* each factor is below 2^32 first, so the products cannot overflow */
  if (oh > INT32_MAX || ow > INT32_MAX || oh * ow > INT32_MAX ||
      (int64_t)s->kh * s->kw > INT32_MAX || (int64_t)s->cin * ((int64_t)s->kh * s->kw) > INT32_MAX)
    return nv_seterr("conv2d: output (%lld,%lld) or kernel (%d,%d) x %d channels too large", (long long)oh,
                     (long long)ow, s->kh, s->kw, s->cin);
  /* one column tile and the batched scratch must stay addressable as int */
  if ((int64_t)s->cin * s->kh * s->kw * oh * ow > ((int64_t)1 << 40))
    return nv_seterr("conv2d: the column matrix (%lld x %lld) is too large",
                     (long long)s->cin * s->kh * s->kw, (long long)oh * ow);
  s->oh = (int)oh;
  s->ow = (int)ow;
  return 1;
}

static int is_pointwise(const nv_conv2d_shape *s) {
  return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->ph == 0 && s->pw == 0;
}

#ifndef MIN_COLS
#define MIN_COLS 512
#endif

/* Output rows per column tile: as many as fit in COL_TILE floats, but enough for MIN_COLS
 * output positions (narrower gemms run slowly), and at least one. */
static int tile_rows(const nv_conv2d_shape *s) {
  int64_t per_row = (int64_t)s->cin * s->kh * s->kw * s->ow;
  int64_t r = COL_TILE / per_row, rmin = (MIN_COLS + s->ow - 1) / s->ow;
  if (r < rmin) r = rmin;
  return r < 1 ? 1 : r > s->oh ? s->oh : (int)r;
}

static size_t col_floats(const nv_conv2d_shape *s) {
  return is_pointwise(s) ? 0 : (size_t)s->cin * s->kh * s->kw * s->ow * tile_rows(s);
}

/* Small feature maps (fewer than MIN_COLS output positions) make narrow, slow gemms: then
 * the columns of `batch_of(s)` samples sit side by side, (K, B*P), and one gemm serves them
 * all; the (Cout, B*P) result is copied out to (B, Cout, P) through scratch slot 2. */
static int batch_of(const nv_conv2d_shape *s) {
  const int P = s->oh * s->ow;
  if (is_pointwise(s) || s->n < 2 || P >= MIN_COLS) return 1;
  int64_t per = (int64_t)s->cin * s->kh * s->kw * P;
  int64_t b = COL_TILE / (per ? per : 1);
  if (b * P > 8192) b = 8192 / P;
  if (b > s->n) b = s->n;
  return b < 1 ? 1 : (int)b;
}

int nv_conv2d_scratch(const nv_conv2d_shape *s, int backward) {
  if (nv_winograd_eligible(s)) {
    if (!nv_winograd_scratch(s, backward)) return 0;
    if (!backward) return 1;   /* the weight gradient still takes im2col's columns */
  }
  int B = batch_of(s);
  if (B > 1) {
    size_t ld = (size_t)B * s->oh * s->ow, n = (size_t)s->cin * s->kh * s->kw * ld;
    return nv_scratch(SLOT_COL, n) && nv_scratch(SLOT_BLOCK, (size_t)s->cout * ld) &&
           (!backward || nv_scratch(SLOT_DCOL, n));
  }
  size_t n = col_floats(s);
  if (!n) return 1;
  return nv_scratch(SLOT_COL, n) && (!backward || nv_scratch(SLOT_DCOL, n));
}

/* Output columns [lo, hi) are those whose tap j lands inside the input row: 0 <= o*sw + x0 < W
 * with x0 = j*dw - pw.  The same range holds for every output row, so the inner loops of
 * im2col and col2im are branch-free. */
static void valid_cols(const nv_conv2d_shape *s, int j, int *x0, int *lo, int *hi) {
  /* in 64 bits: a padding near INT_MAX with a 1x1 kernel would wrap -x + sw */
  int64_t x = (int64_t)j * s->dw - s->pw;
  int64_t a = x >= 0 ? 0 : (-x + s->sw - 1) / s->sw;
  int64_t b = s->w - 1 - x < 0 ? 0 : (s->w - 1 - x) / s->sw + 1;
  if (b > s->ow) b = s->ow;
  if (a > b) a = b;
  *x0 = (int)x, *lo = (int)a, *hi = (int)b;
}

/* dst[o] = src[o * stride], o < n: the strided copy of im2col (stride 2 in most networks'
 * downsampling layers), on restrict pointers so that it vectorizes. */
NV_HOT static void gather(float *restrict dst, const float *restrict src, int n, int stride) {
  if (stride == 2)
    for (int o = 0; o < n; o++) dst[o] = src[2 * o];
  else
    for (int o = 0; o < n; o++) dst[o] = src[(size_t)o * stride];
}

/* col (Cin*KH*KW, rows*OW), rows ld floats apart = the column matrix of output rows
 * [oh0, oh0+rows) of one sample in (Cin,H,W); cells that fall in the padding are 0. */
static void im2col_range(float *col, size_t nt, const float *in, const nv_conv2d_shape *s, int oh0, int rows,
                         int c0, int c1) {
  for (int c = c0; c < c1; c++)
    for (int i = 0; i < s->kh; i++)
      for (int j = 0; j < s->kw; j++) {
        float *dst = col + ((size_t)(c * s->kh + i) * s->kw + j) * nt;
        int x0, lo, hi;
        valid_cols(s, j, &x0, &lo, &hi);
        for (int r = 0; r < rows; r++, dst += s->ow) {
          int64_t ih = (int64_t)(oh0 + r) * s->sh - s->ph + (int64_t)i * s->dh;
          if (ih < 0 || ih >= s->h) {
            memset(dst, 0, sizeof(float) * s->ow);
            continue;
          }
          const float *src = in + ((size_t)c * s->h + ih) * s->w; /* cell o*sw + x0 */
          memset(dst, 0, sizeof(float) * lo);
          if (s->sw == 1)
            memcpy(dst + lo, src + lo + x0, sizeof(float) * (hi - lo));
          else
            gather(dst + lo, src + (ptrdiff_t)lo * s->sw + x0, hi - lo, s->sw);
          memset(dst + hi, 0, sizeof(float) * (s->ow - hi));
        }
      }
}

/* The mirror of im2col: din (Cin,H,W) += each column cell added back to the input cell it
 * was copied from; padding cells are dropped. */
static void col2im_range(float *din, const float *col, size_t nt, const nv_conv2d_shape *s, int oh0, int rows,
                         int c0, int c1) {
  for (int c = c0; c < c1; c++)
    for (int i = 0; i < s->kh; i++)
      for (int j = 0; j < s->kw; j++) {
        const float *src = col + ((size_t)(c * s->kh + i) * s->kw + j) * nt;
        int x0, lo, hi;
        valid_cols(s, j, &x0, &lo, &hi);
        for (int r = 0; r < rows; r++, src += s->ow) {
          int64_t ih = (int64_t)(oh0 + r) * s->sh - s->ph + (int64_t)i * s->dh;
          if (ih < 0 || ih >= s->h) continue;
          float *dst = din + ((size_t)c * s->h + ih) * s->w; /* cell o*sw + x0 */
          if (s->sw == 1)
            for (int o = lo; o < hi; o++) dst[o + x0] += src[o];
          else
            for (int o = lo; o < hi; o++) dst[o * s->sw + x0] += src[o];
        }
      }
}

/* im2col and col2im over the input channels in two halves, the second on a helper thread,
 * when the copy is large enough to pay for starting one (about 20 us) and BLAS runs more
 * than one thread (so the machine has a second core).  The halves touch disjoint rows of
 * col and disjoint channels of din. */
typedef struct {
  float *col; float *din; const float *in; size_t nt; const nv_conv2d_shape *s; int oh0, rows, c0, c1, back;
} colwork;

static void *colwork_run(void *p) {
  colwork *w = p;
  if (w->back) col2im_range(w->din, w->col, w->nt, w->s, w->oh0, w->rows, w->c0, w->c1);
  else im2col_range(w->col, w->nt, w->in, w->s, w->oh0, w->rows, w->c0, w->c1);
  return NULL;
}

static void col_split(colwork w) {
  const nv_conv2d_shape *s = w.s;
  size_t cells = (size_t)s->cin * s->kh * s->kw * w.rows * s->ow;
  pthread_t t;
  if (s->cin >= 2 && cells >= ((size_t)1 << 17) && nv_blas_threads() > 1) {
    colwork hi = w;
    hi.c0 = s->cin / 2, hi.c1 = s->cin;
    w.c0 = 0, w.c1 = s->cin / 2;
    if (pthread_create(&t, NULL, colwork_run, &hi) == 0) {
      colwork_run(&w);
      pthread_join(t, NULL);
      return;
    }
    w.c1 = s->cin;            /* no thread: all of it here */
  }
  colwork_run(&w);
}

static void im2col(float *col, size_t nt, const float *in, const nv_conv2d_shape *s, int oh0, int rows) {
  col_split((colwork){.col = col, .in = in, .nt = nt, .s = s, .oh0 = oh0, .rows = rows, .c0 = 0, .c1 = s->cin});
}

static void col2im(float *din, const float *col, size_t nt, const nv_conv2d_shape *s, int oh0, int rows) {
  col_split((colwork){.col = (float *)col, .din = din, .nt = nt, .s = s, .oh0 = oh0, .rows = rows, .c0 = 0,
                      .c1 = s->cin, .back = 1});
}

/* sum x[0..n), P can be 50k: 16 float partial sums (a double chain would not vectorise),
 * moved into a double every 1024 values so that they stay short. */
static double sum(const float *x, int n) {
  double acc = 0;
  for (int i0 = 0; i0 < n; i0 += 1024) {
    int i1 = n - i0 < 1024 ? n : i0 + 1024, i = i0;
    float l[16] = {0};
    for (; i + 16 <= i1; i += 16)
      for (int k = 0; k < 16; k++) l[k] += x[i + k];
    for (; i < i1; i++) l[0] += x[i];
    for (int k = 0; k < 16; k++) acc += l[k];
  }
  return acc;
}

static void conv_forward_batched(float *out, const float *in, const float *weight, const float *bias,
                                 const nv_conv2d_shape *s, int B) {
  const int G = s->groups, cg = s->cin / G, cog = s->cout / G, P = s->oh * s->ow;
  const int K = cg * s->kh * s->kw;
  const size_t ld = (size_t)B * P, insz = (size_t)s->cin * s->h * s->w;
  float *col = nv_scratch_or_die(SLOT_COL, (size_t)s->cin * s->kh * s->kw * ld, "conv2d");
  float *blk = nv_scratch_or_die(SLOT_BLOCK, (size_t)s->cout * ld, "conv2d");
  for (int n0 = 0; n0 < s->n; n0 += B) {
    int nb = s->n - n0 < B ? s->n - n0 : B;
    size_t w = (size_t)nb * P;
    for (int b = 0; b < nb; b++) im2col(col + (size_t)b * P, w, in + (size_t)(n0 + b) * insz, s, 0, s->oh);
    for (int g = 0; g < G; g++)
      nv_gemm(0, 0, cog, (int)w, K, 1.0f, weight + (size_t)g * cog * K, K, col + (size_t)g * K * w, (int)w, 0.0f,
              blk + (size_t)g * cog * w, (int)w);
    for (int b = 0; b < nb; b++)
      for (int co = 0; co < s->cout; co++) {
        float *o = out + ((size_t)(n0 + b) * s->cout + co) * P;
        const float *src = blk + (size_t)co * w + (size_t)b * P;
        float bv = bias ? bias[co] : 0.0f;
        for (int p = 0; p < P; p++) o[p] = src[p] + bv;
      }
  }
}

static void conv_backward_batched(float *din, float *dweight, const float *dout, const float *in,
                                  const float *weight, const nv_conv2d_shape *s, int B) {
  const int G = s->groups, cg = s->cin / G, cog = s->cout / G, P = s->oh * s->ow;
  const int K = cg * s->kh * s->kw;
  const size_t ld = (size_t)B * P, insz = (size_t)s->cin * s->h * s->w;
  float *col = dweight ? nv_scratch_or_die(SLOT_COL, (size_t)s->cin * s->kh * s->kw * ld, "conv2d") : NULL;
  float *dcol = din ? nv_scratch_or_die(SLOT_DCOL, (size_t)s->cin * s->kh * s->kw * ld, "conv2d") : NULL;
  float *blk = nv_scratch_or_die(SLOT_BLOCK, (size_t)s->cout * ld, "conv2d");
  for (int n0 = 0; n0 < s->n; n0 += B) {
    int nb = s->n - n0 < B ? s->n - n0 : B;
    size_t w = (size_t)nb * P;
    for (int b = 0; b < nb; b++)           /* dout (B, Cout, P) -> (Cout, B*P) */
      for (int co = 0; co < s->cout; co++)
        memcpy(blk + (size_t)co * w + (size_t)b * P, dout + ((size_t)(n0 + b) * s->cout + co) * P, sizeof(float) * P);
    if (dweight) {
      for (int b = 0; b < nb; b++) im2col(col + (size_t)b * P, w, in + (size_t)(n0 + b) * insz, s, 0, s->oh);
      for (int g = 0; g < G; g++)
        nv_gemm(0, 1, cog, K, (int)w, 1.0f, blk + (size_t)g * cog * w, (int)w, col + (size_t)g * K * w, (int)w, 1.0f,
                dweight + (size_t)g * cog * K, K);
    }
    if (din) {
      for (int g = 0; g < G; g++)
        nv_gemm(1, 0, K, (int)w, cog, 1.0f, weight + (size_t)g * cog * K, K, blk + (size_t)g * cog * w, (int)w, 0.0f,
                dcol + (size_t)g * K * w, (int)w);
      for (int b = 0; b < nb; b++) col2im(din + (size_t)(n0 + b) * insz, dcol + (size_t)b * P, w, s, 0, s->oh);
    }
  }
}



/* rows x n floats, ld apart: fill with b[row] / clamp at 0 (the epilogue of one tile) */
NV_HOT static void fill_rows(float *restrict o, int rows, int n, size_t ld, const float *restrict b) {
  for (int r = 0; r < rows; r++, o += ld)
    for (int i = 0; i < n; i++) o[i] = b[r];
}
NV_HOT static void relu_rows(float *restrict o, int rows, size_t n, size_t ld) {
  for (int r = 0; r < rows; r++, o += ld)
    for (size_t i = 0; i < n; i++) o[i] = o[i] > 0.0f ? o[i] : 0.0f;
}

void nv_im2col_forward(float *out, const float *in, const float *weight, const float *bias,
                       const nv_conv2d_shape *s, int relu) {
  int B = batch_of(s);
  if (B > 1) {
    conv_forward_batched(out, in, weight, bias, s, B);
    if (relu) relu_rows(out, 1, (size_t)s->n * s->cout * s->oh * s->ow, 0);
    return;
  }
  const int G = s->groups, cg = s->cin / G, cog = s->cout / G, P = s->oh * s->ow;
  const int K = cg * s->kh * s->kw;
  const float beta = bias ? 1.0f : 0.0f; /* with a bias the gemm adds onto it */
  const int pointwise = is_pointwise(s), rmax = tile_rows(s);
  float *col = pointwise ? NULL : nv_scratch_or_die(SLOT_COL, col_floats(s), "conv2d");
  for (int n = 0; n < s->n; n++) {
    const float *in_n = in + (size_t)n * s->cin * s->h * s->w;
    float *out_n = out + (size_t)n * s->cout * P;
    if (pointwise) {
      if (bias) fill_rows(out_n, s->cout, P, P, bias);
      for (int g = 0; g < G; g++)
        nv_gemm(0, 0, cog, P, K, 1.0f, weight + (size_t)g * cog * K, K,
                in_n + (size_t)g * cg * P, P, beta, out_n + (size_t)g * cog * P, P);
      if (relu) relu_rows(out_n, s->cout, P, P);
      continue;
    }
    for (int oh0 = 0; oh0 < s->oh; oh0 += rmax) {   /* bias, gemm and ReLU tile by tile, in cache */
      int rows = s->oh - oh0 < rmax ? s->oh - oh0 : rmax, nt = rows * s->ow;
      float *out_t = out_n + (size_t)oh0 * s->ow;
      if (bias) fill_rows(out_t, s->cout, nt, P, bias);
      im2col(col, nt, in_n, s, oh0, rows);
      for (int g = 0; g < G; g++)
        nv_gemm(0, 0, cog, nt, K, 1.0f, weight + (size_t)g * cog * K, K,
                col + (size_t)g * K * nt, nt, beta, out_t + (size_t)g * cog * P, P);
      if (relu) relu_rows(out_t, s->cout, nt, P);
    }
  }
}

void nv_im2col_backward(float *din, float *dweight, float *dbias, const float *dout,
                        const float *in, const float *weight, const nv_conv2d_shape *s) {
  if (!din && !dweight && !dbias) return;
  const int G = s->groups, cg = s->cin / G, cog = s->cout / G, P = s->oh * s->ow;
  const int K = cg * s->kh * s->kw;
  const int pointwise = is_pointwise(s), rmax = tile_rows(s);
  float *col = NULL, *dcol = NULL;
  int B = batch_of(s);
  if (B > 1) {
    if (dbias)
      for (int n = 0; n < s->n; n++)
        for (int co = 0; co < s->cout; co++) dbias[co] += (float)sum(dout + ((size_t)n * s->cout + co) * P, P);
    conv_backward_batched(din, dweight, dout, in, weight, s, B);
    return;
  }
  if (!pointwise && dweight) col = nv_scratch_or_die(SLOT_COL, col_floats(s), "conv2d");
  if (!pointwise && din) dcol = nv_scratch_or_die(SLOT_DCOL, col_floats(s), "conv2d");
  for (int n = 0; n < s->n; n++) {
    const float *in_n = in ? in + (size_t)n * s->cin * s->h * s->w : NULL;
    float *din_n = din ? din + (size_t)n * s->cin * s->h * s->w : NULL;
    const float *dout_n = dout + (size_t)n * s->cout * P;
    if (dbias) /* dbias[co] += sum_p dout[n,co,p] */
      for (int co = 0; co < s->cout; co++) dbias[co] += (float)sum(dout_n + (size_t)co * P, P);
    if (pointwise) {
      for (int g = 0; g < G; g++) {
        const float *dout_g = dout_n + (size_t)g * cog * P;
        if (dweight) /* dW_g (COg,Cg) += dout_g (COg,P) @ in_g^T (P,Cg) */
          nv_gemm(0, 1, cog, K, P, 1.0f, dout_g, P, in_n + (size_t)g * cg * P, P, 1.0f,
                  dweight + (size_t)g * cog * K, K);
        if (din) /* din_g (Cg,P) += W_g^T (Cg,COg) @ dout_g (COg,P) */
          nv_gemm(1, 0, K, P, cog, 1.0f, weight + (size_t)g * cog * K, K, dout_g, P, 1.0f,
                  din_n + (size_t)g * cg * P, P);
      }
      continue;
    }
    for (int oh0 = 0; oh0 < s->oh; oh0 += rmax) {
      int rows = s->oh - oh0 < rmax ? s->oh - oh0 : rmax, nt = rows * s->ow;
      const float *dout_t = dout_n + (size_t)oh0 * s->ow; /* this tile's columns, ld P */
      if (dweight) {
        im2col(col, nt, in_n, s, oh0, rows);
        for (int g = 0; g < G; g++)
          nv_gemm(0, 1, cog, K, nt, 1.0f, dout_t + (size_t)g * cog * P, P,
                  col + (size_t)g * K * nt, nt, 1.0f, dweight + (size_t)g * cog * K, K);
      }
      if (din) {
        for (int g = 0; g < G; g++)
          nv_gemm(1, 0, K, nt, cog, 1.0f, weight + (size_t)g * cog * K, K,
                  dout_t + (size_t)g * cog * P, P, 0.0f, dcol + (size_t)g * K * nt, nt);
        col2im(din_n, dcol, nt, s, oh0, rows);
      }
    }
  }
}

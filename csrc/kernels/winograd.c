/*
 * winograd.c — 3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3)
 * (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
 *
 * Each 2x2 block of output ("tile") is computed from the 4x4 input patch under it:
 *     Y = A^T [ (G g G^T) .* (B^T d B) ] A
 * g the 3x3 kernel, d the patch, .* elementwise over the 16 positions k of a 4x4 grid.
 * Summed over the input channels, position k of every tile of a block is one product
 *     M_k (Cout, T) = U_k (Cout, Cin) @ V_k (Cin, T)
 * with U_k the transformed kernels and V_k the transformed patches of T tiles.  The 16 gemms
 * do 16 multiplications per 4 outputs where im2col's one gemm does 36: 2.25 times fewer.
 * The transforms are additions only, so the result differs from the direct sum by rounding
 * (relative error about 1e-6; the F(4x4, 3x3) variant would save more and round far worse).
 *
 * The tiles are taken in blocks of whole tile rows (of one or more samples), small enough
 * that V and M of a block stay in cache; the blocks are shared among threads, each of which
 * transforms its block, runs its 16 gemms on one BLAS thread, and writes its output.
 *
 * The gradient of the input is the same kind of convolution of dout with the kernels flipped
 * and transposed, padded 2 - p, so it runs here as well (winograd_run's `flip`).
 */
#include "core/nv.h"
#include "kernels/nn_kernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_U = 4, SLOT_WORK = 5, MAX_THREADS = 8 };

/* U[k][a][b] = (G g G^T)[k] for the kernel g of output channel a, input channel b.
 * Plain: g = w[a][b] (w is (Cout,Cin,3,3)); flipped: g(i,j) = w[b][a][2-i][2-j]. */
static void transform_weights(float *U, const float *w, int cout, int cin, int flip) {
  int A = flip ? cin : cout, Bn = flip ? cout : cin;
  size_t plane = (size_t)A * Bn;
  for (int a = 0; a < A; a++)
    for (int b = 0; b < Bn; b++) {
      float g[3][3];
      const float *src = flip ? w + ((size_t)b * cin + a) * 9 : w + ((size_t)a * cin + b) * 9;
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) g[i][j] = flip ? src[(2 - i) * 3 + (2 - j)] : src[i * 3 + j];
      float t[4][3];   /* G g */
      for (int j = 0; j < 3; j++) {
        t[0][j] = g[0][j];
        t[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
        t[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
        t[3][j] = g[2][j];
      }
      for (int i = 0; i < 4; i++) {   /* (G g) G^T */
        float *u = U + (size_t)(i * 4) * plane + (size_t)a * Bn + b;
        u[0] = t[i][0];
        u[plane] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
        u[2 * plane] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
        u[3 * plane] = t[i][2];
      }
    }
}

typedef struct {
  const float *in;            /* (N, C, H, W) */
  float *out;                 /* (N, CO, OH, OW) */
  const float *U;             /* (16, CO, C) */
  const float *bias;          /* CO or NULL */
  int n, c, h, w, co, oh, ow, ph, pw;
  int th, tw;                 /* tile rows and columns per sample */
  int rows_per_block, nblocks, threads, relu, accumulate;
  float *work;                /* per thread: V, M and a row buffer */
  size_t work_floats;
  int next_block;             /* shared */
  pthread_mutex_t lock;
} wjob;

static int take_block(wjob *j) {
  pthread_mutex_lock(&j->lock);
  int b = j->next_block < j->nblocks ? j->next_block++ : -1;
  pthread_mutex_unlock(&j->lock);
  return b;
}

/* The transforms are separable: B^T d B is the 1-d transform of d's columns, then of its
 * rows.  Done a whole tile row at a time, each step is a loop over the tiles with no
 * dependence between them, which the compiler vectorizes (8 tiles to an AVX2 register).
 * The 1-d input transform of (d0, d1, d2, d3) is (d0 - d2, d1 + d2, d2 - d1, d1 - d3). */
NV_HOT static void input_row(float *restrict v, size_t P, const float *restrict buf, int W4, int tw,
                             float *restrict e) {
  /* e[4q + p][x]: row q of the patch under tile x, transformed along its columns */
  for (int q = 0; q < 4; q++) {
    const float *d = buf + (size_t)q * W4;
    float *e0 = e + (size_t)(4 * q) * tw, *e1 = e0 + tw, *e2 = e1 + tw, *e3 = e2 + tw;
    for (int x = 0; x < tw; x++) {
      float a = d[2 * x], b = d[2 * x + 1], c = d[2 * x + 2], f = d[2 * x + 3];
      e0[x] = a - c;
      e1[x] = b + c;
      e2[x] = c - b;
      e3[x] = b - f;
    }
  }
  for (int p = 0; p < 4; p++) {   /* then along the rows: v[4r + p] */
    const float *a = e + (size_t)p * tw, *b = e + (size_t)(4 + p) * tw;
    const float *c = e + (size_t)(8 + p) * tw, *f = e + (size_t)(12 + p) * tw;
    float *v0 = v + (size_t)p * P, *v1 = v + (size_t)(4 + p) * P, *v2 = v + (size_t)(8 + p) * P,
          *v3 = v + (size_t)(12 + p) * P;
    for (int x = 0; x < tw; x++) {
      v0[x] = a[x] - c[x];
      v1[x] = b[x] + c[x];
      v2[x] = c[x] - b[x];
      v3[x] = b[x] - f[x];
    }
  }
}

/* V[k][c][t] for the tiles of rows [r0, r1) of the flattened (N * th) tile rows.  buf holds
 * 4 zero-padded input rows, e 16 tile rows of scratch. */
static void input_transform(const wjob *j, float *V, float *buf, float *e, int r0, int r1, int T) {
  const int W4 = 2 * j->tw + 2;     /* padded row: input columns -pw .. 2tw+1-pw */
  const size_t P = (size_t)j->c * T;  /* distance between positions k */
  for (int c = 0; c < j->c; c++) {
    int t = 0;
    for (int r = r0; r < r1; r++, t += j->tw) {
      int nn = r / j->th, ty = r % j->th;
      const float *plane = j->in + ((size_t)nn * j->c + c) * j->h * j->w;
      for (int q = 0; q < 4; q++) {   /* the 4 input rows of this tile row, zero-padded */
        float *dst = buf + (size_t)q * W4;
        int ih = 2 * ty - j->ph + q;
        if (ih < 0 || ih >= j->h) { memset(dst, 0, sizeof(float) * W4); continue; }
        const float *src = plane + (size_t)ih * j->w;
        int lo = j->pw, hi = j->pw + j->w;          /* dst[x] = src[x - pw] for x in [lo, hi) */
        if (hi > W4) hi = W4;
        memset(dst, 0, sizeof(float) * lo);
        memcpy(dst + lo, src, sizeof(float) * (hi - lo));
        if (hi < W4) memset(dst + hi, 0, sizeof(float) * (W4 - hi));
      }
      input_row(V + (size_t)c * T + t, P, buf, W4, j->tw, e);
    }
  }
}

/* The 1-d output transform of (m0, m1, m2, m3) is (m0 + m1 + m2, m1 - m2 - m3).  m: the 16
 * positions of a tile row's tiles, P apart; y: the 2 output rows, 2 tw wide. */
NV_HOT static void output_row(float *restrict y, const float *restrict m, size_t P, int tw, float bias,
                              float *restrict e) {
  for (int q = 0; q < 4; q++) {     /* along the columns of the 4x4: e[q], e[4 + q] */
    const float *m0 = m + (size_t)q * P, *m1 = m + (size_t)(4 + q) * P, *m2 = m + (size_t)(8 + q) * P,
                *m3 = m + (size_t)(12 + q) * P;
    float *s0 = e + (size_t)q * tw, *s1 = e + (size_t)(4 + q) * tw;
    for (int x = 0; x < tw; x++) {
      s0[x] = m0[x] + m1[x] + m2[x];
      s1[x] = m1[x] - m2[x] - m3[x];
    }
  }
  for (int p = 0; p < 2; p++) {     /* then along the rows, interleaved into the output row */
    const float *a = e + (size_t)(4 * p) * tw, *b = a + tw, *c = b + tw, *f = c + tw;
    float *yr = y + (size_t)p * 2 * tw;
    for (int x = 0; x < tw; x++) {
      yr[2 * x] = a[x] + b[x] + c[x] + bias;
      yr[2 * x + 1] = b[x] - c[x] - f[x] + bias;
    }
  }
}

NV_HOT static void store_row(float *restrict dst, const float *restrict y, int n, int relu, int accumulate) {
  if (accumulate)
    for (int i = 0; i < n; i++) dst[i] += y[i];
  else if (relu)
    for (int i = 0; i < n; i++) dst[i] = y[i] > 0.0f ? y[i] : 0.0f;
  else
    memcpy(dst, y, sizeof(float) * n);
}

static void output_transform(const wjob *j, const float *M, float *y, float *e, int r0, int r1, int T) {
  const size_t P = (size_t)j->co * T;
  for (int co = 0; co < j->co; co++) {
    const float bv = j->bias ? j->bias[co] : 0.0f;
    int t = 0;
    for (int r = r0; r < r1; r++, t += j->tw) {
      int nn = r / j->th, ty = r % j->th, y0 = 2 * ty;
      output_row(y, M + (size_t)co * T + t, P, j->tw, bv, e);
      float *o = j->out + (((size_t)nn * j->co + co) * j->oh + y0) * j->ow;
      store_row(o, y, j->ow, j->relu, j->accumulate);
      if (y0 + 1 < j->oh) store_row(o + j->ow, y + 2 * j->tw, j->ow, j->relu, j->accumulate);
    }
  }
}

typedef struct { wjob *job; int id; } wthread;

static void *worker(void *p) {
  wthread *th = p;
  wjob *j = th->job;
  const int rb = j->rows_per_block, Tmax = rb * j->tw;
  float *V = j->work + (size_t)th->id * j->work_floats;
  float *M = V + (size_t)16 * j->c * Tmax;
  float *buf = M + (size_t)16 * j->co * Tmax;       /* 4 padded input rows or 2 output rows */
  float *e = buf + 4 * (size_t)(2 * j->tw + 2);     /* 16 tile rows */
  const int R = j->n * j->th;
  for (int b; (b = take_block(j)) >= 0;) {
    int r0 = b * rb, r1 = r0 + rb < R ? r0 + rb : R, T = (r1 - r0) * j->tw;
    input_transform(j, V, buf, e, r0, r1, T);
    for (int k = 0; k < 16; k++)
      nv_gemm(0, 0, j->co, T, j->c, 1.0f, j->U + (size_t)k * j->co * j->c, j->c, V + (size_t)k * j->c * T, T, 0.0f,
              M + (size_t)k * j->co * T, T);
    output_transform(j, M, buf, e, r0, r1, T);
  }
  return NULL;
}

/* Tile rows per block: about BLOCK_TILES tiles (fewer tiles repack U_k too often: at 28
 * tiles a block, OpenBLAS' packing took half the gemms' time). */
#ifndef BLOCK_TILES
#define BLOCK_TILES 256
#endif

/* From n, c, co, oh, ow: the tiles, the threads (BLAS' count, at most one per block) and the
 * blocks they share, and each thread's workspace. */
static void plan(wjob *j) {
  int blas = nv_blas_threads(), threads = blas < 1 ? 1 : blas > MAX_THREADS ? MAX_THREADS : blas;
  j->th = (j->oh + 1) / 2;
  j->tw = (j->ow + 1) / 2;
  int R = j->n * j->th;
  int rb = (BLOCK_TILES + j->tw - 1) / j->tw;
  int per_thread = (R + threads - 1) / threads;   /* every thread gets a block */
  if (rb > per_thread) rb = per_thread;
  j->rows_per_block = rb;
  j->nblocks = (R + rb - 1) / rb;
  j->threads = threads > j->nblocks ? j->nblocks : threads;
  j->work_floats = ((size_t)16 * (j->c + j->co) * rb * j->tw + 4 * (size_t)(2 * j->tw + 2) + 16 * (size_t)j->tw +
                    15) & ~(size_t)15;
}

/* out (N, CO, OH, OW) (=|+=) conv3x3(in (N, C, H, W)), padding (ph, pw), with the kernels U
 * already transformed; bias and relu as given. */
static void winograd_run(float *out, const float *in, const float *U, const float *bias, int n, int c, int h,
                         int w, int co, int ph, int pw, int relu, int accumulate) {
  wjob j = {.in = in, .out = out, .U = U, .bias = bias, .n = n, .c = c, .h = h, .w = w, .co = co,
            .oh = h + 2 * ph - 2, .ow = w + 2 * pw - 2, .ph = ph, .pw = pw, .relu = relu,
            .accumulate = accumulate};
  plan(&j);
  const int blas = nv_blas_threads(), threads = j.threads;
  j.work = nv_scratch_or_die(SLOT_WORK, j.work_floats * threads, "conv2d (winograd)");
  pthread_mutex_init(&j.lock, NULL);
  wthread ts[MAX_THREADS];
  pthread_t tid[MAX_THREADS];
  int started = 0;
  if (threads > 1) nv_blas_set_threads(1);
  for (int i = 1; i < threads; i++) {
    ts[i] = (wthread){&j, i};
    if (pthread_create(&tid[i], NULL, worker, &ts[i]) != 0) break;
    started = i;
  }
  ts[0] = (wthread){&j, 0};
  worker(&ts[0]);
  for (int i = 1; i <= started; i++) pthread_join(tid[i], NULL);
  if (threads > 1) nv_blas_set_threads(blas);
  pthread_mutex_destroy(&j.lock);
}

/* ---- the kept transformed kernels --------------------------------------------------------
 * A model's weights stay the same over many forwards (inference, maximization, Score-CAM's
 * masks), and transforming them costs about as much as a whole small-map convolution.  So
 * the U of a named weight is kept, least recently used first out, and dropped when its
 * storage is freed.  A weight whose version moved on (a training step) gets its entry's
 * buffer rewritten in place: training allocates nothing here. */
typedef struct {
  nv_weight_id id;
  int flip, cout, cin;
  float *U;
  uint64_t used;
} uentry;
enum { CACHE_MAX = 256 };
static uentry cache[CACHE_MAX];
static int ncache;
static size_t cache_bytes, tick;
size_t nv_winograd_cache_limit = (size_t)256 << 20;

static size_t ubytes(const uentry *e) { return (size_t)16 * e->cout * e->cin * sizeof(float); }

static void drop(int i) {
  cache_bytes -= ubytes(&cache[i]);
  free(cache[i].U);
  cache[i] = cache[--ncache];
}

void nv_winograd_forget(uint64_t uid) {
  for (int i = ncache - 1; i >= 0; i--)
    if (uid == 0 || cache[i].id.uid == uid) drop(i);
}

size_t nv_winograd_cache_bytes(void) { return cache_bytes; }

static const float *kernels(const float *w, int cout, int cin, int flip, const nv_weight_id *wid) {
  const size_t n = (size_t)16 * cout * cin, bytes = n * sizeof(float);
  if (wid && wid->uid && bytes <= nv_winograd_cache_limit) {
    for (int i = 0; i < ncache; i++) {
      uentry *e = &cache[i];
      if (e->id.uid != wid->uid || e->id.off != wid->off || e->flip != flip || e->cout != cout || e->cin != cin)
        continue;
      e->used = ++tick;
      if (e->id.version != wid->version) {     /* the same weight, changed: rewrite */
        transform_weights(e->U, w, cout, cin, flip);
        e->id.version = wid->version;
      }
      return e->U;
    }
    while (ncache && (ncache == CACHE_MAX || cache_bytes + bytes > nv_winograd_cache_limit)) {
      int lru = 0;
      for (int i = 1; i < ncache; i++)
        if (cache[i].used < cache[lru].used) lru = i;
      drop(lru);
    }
    float *U = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (U) {
      transform_weights(U, w, cout, cin, flip);
      cache[ncache++] = (uentry){.id = *wid, .flip = flip, .cout = cout, .cin = cin, .U = U, .used = ++tick};
      cache_bytes += bytes;
      nv_add_storage_free_hook(nv_winograd_forget);
      return U;
    }
  }
  float *U = nv_scratch_or_die(SLOT_U, n, "conv2d (winograd)");    /* unnamed, too big to keep, or out of memory */
  transform_weights(U, w, cout, cin, flip);
  return U;
}

void nv_winograd_forward(float *out, const float *in, const float *weight, const float *bias,
                         const nv_conv2d_shape *s, const nv_conv2d_extra *ex) {
  const float *U = kernels(weight, s->cout, s->cin, 0, ex ? &ex->wid : NULL);
  winograd_run(out, in, U, bias, s->n, s->cin, s->h, s->w, s->cout, s->ph, s->pw, ex && ex->relu, 0);
}

void nv_winograd_backward_input(float *din, const float *dout, const float *weight, const nv_conv2d_shape *s,
                                const nv_weight_id *wid) {
  const float *U = kernels(weight, s->cout, s->cin, 1, wid);
  winograd_run(din, dout, U, NULL, s->n, s->cout, s->oh, s->ow, s->cin, 2 - s->ph, 2 - s->pw, 0, 1);
}

/* Scratch the Winograd path needs, reserved before anything else is allocated. */
int nv_winograd_scratch(const nv_conv2d_shape *s, int backward) {
  if (!nv_scratch(SLOT_U, (size_t)16 * s->cout * s->cin)) return 0;
  for (int pass = 0; pass < 1 + !!backward; pass++) {   /* the forward, then the input gradient */
    wjob j = {.n = s->n, .c = pass ? s->cout : s->cin, .co = pass ? s->cin : s->cout,
              .oh = pass ? s->h : s->oh, .ow = pass ? s->w : s->ow};
    plan(&j);
    if (!nv_scratch(SLOT_WORK, j.work_floats * j.threads)) return 0;
  }
  return 1;
}

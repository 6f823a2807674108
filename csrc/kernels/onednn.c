/*
 * onednn.c — convolutions on oneDNN (Debian's libdnnl), forward and backward.
 *
 * oneDNN's convolutions are JIT-compiled for the CPU they run on (AVX-512, AVX2, SSE4.1:
 * chosen at run time, so a portable build is fast everywhere), direct rather than im2col,
 * and they fuse the bias and the ReLU.  They want their own blocked layouts (channels in
 * groups of 16 or 8), so each call reorders its NCHW input into the layout the primitive
 * chose and its output back: on ResNet-18 at batch 8 the reorders cost about a tenth of the
 * convolution time, and the convolutions run about twice as fast as im2col + OpenBLAS.
 *
 * Each convolution geometry gets one entry (its primitive, the reorders around it and the
 * memory objects they use, re-pointed at the buffers of each call), kept while it is among
 * the ENTRIES_MAX most recently used.  A primitive has two inputs and one output:
 *   FWD       src, weights        -> dst            (bias, ReLU fused; overwrites)
 *   BWD_DATA  diff_dst, weights   -> diff_src       (accumulated into the caller's din)
 *   BWD_W     src, diff_dst       -> diff_weights   (and diff_bias; both accumulated)
 * Accumulating is the reorder's job: its sum post-op adds into the NCHW gradient.
 * Weights reordered into a primitive's layout are kept like the Winograd kernels, keyed by
 * the weight's name (storage uid, version, offset) and the layout, rewritten in place when
 * the version moves on, dropped when the storage is freed.
 *
 * Nothing here fails the caller: when oneDNN has no primitive for a geometry (or cannot be
 * set up at all) the functions return 0 and conv.c computes the convolution itself.
 */
#define _GNU_SOURCE
#include "core/config.h"
#include "core/nv.h"
#include "kernels/nn_kernels.h"

#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* scratch slots (conv.c's 0-2 and winograd.c's 4-5 are not in use while oneDNN works) */
enum { SLOT_IN0 = 3, SLOT_IN1 = 6, SLOT_OUT = 7, SLOT_BIAS = 2, SLOT_FLIP = 2 };
enum { FWD, BWD_DATA, BWD_W, KINDS };
enum { ENTRIES_MAX = 512, WCACHE_MAX = 256 };

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static int state; /* 0 untried, 1 ready, -1 unavailable */

typedef struct {
  int kind, bias, relu, add;
  int in_nhwc, out_nhwc, add_nhwc;  /* channels-last buffers (forward only) */
  int flip;                         /* weights transposed and flipped: an input gradient as a forward */
  nv_conv2d_shape s;
} pkey;

typedef struct {
  pkey key;
  dnnl_primitive_t prim;
  int arg[3];                       /* the oneDNN argument of in0, in1, out */
  dnnl_memory_desc_t plain[3], internal[3];
  dnnl_primitive_t reorder[3];      /* in0, in1: plain -> internal; out: internal -> plain */
  dnnl_primitive_t reorder_add;     /* the residual, its layout -> the output's (NULL: the same) */
  dnnl_memory_desc_t add_md;        /* the residual's layout */
  dnnl_memory_t user[3], mem[3];    /* plain and internal memory objects, no buffers of their own */
  dnnl_memory_t bias, dbias;
  uint64_t used;
  int refused;                      /* oneDNN has only its reference kernel for this: not used */
  char impl[48];
} pentry;

static pentry *entries[ENTRIES_MAX];
static int nentries;
static uint64_t tick;

/* reordered weights */
typedef struct {
  nv_weight_id id;
  int flip;
  dnnl_memory_desc_t md;
  float *buf;
  size_t bytes;
  uint64_t used;
} wentry;
static wentry wcache[WCACHE_MAX];
static int nw;
static size_t wbytes;
size_t nv_onednn_cache_limit = (size_t)256 << 20;

void omp_set_num_threads(int n); /* libgomp, oneDNN's thread pool */
static int threads;

void nv_onednn_set_threads(int n) {
  if (n < 1) return;
  threads = n;
  omp_set_num_threads(n);
}

static int init(void) {
  if (state) return state > 0;
  state = -1;
  /* oneDNN's OpenMP threads outlive every call, parked inside libgomp: when Lua unloads the
   * core (at lua_close), libgomp and libdnnl stay mapped under them */
  static const char *const pinned[] = {"libgomp.so.1", "libdnnl.so.2"};
  for (int i = 0; i < 2; i++) dlopen(pinned[i], RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) return 0;
  if (dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) {
    dnnl_engine_destroy(engine);
    engine = NULL;
    return 0;
  }
  state = 1;
  nv_onednn_set_threads(threads ? threads : nv_blas_threads());
  nv_add_storage_free_hook(nv_onednn_forget);
  return 1;
}

static void entry_free(pentry *e) {
  if (!e) return;
  if (e->prim) dnnl_primitive_destroy(e->prim);
  if (e->reorder_add) dnnl_primitive_destroy(e->reorder_add);
  for (int i = 0; i < 3; i++) {
    if (e->reorder[i]) dnnl_primitive_destroy(e->reorder[i]);
    if (e->user[i]) dnnl_memory_destroy(e->user[i]);
    if (e->mem[i]) dnnl_memory_destroy(e->mem[i]);
  }
  if (e->bias) dnnl_memory_destroy(e->bias);
  if (e->dbias) dnnl_memory_destroy(e->dbias);
  free(e);
}

static void wdrop(int i) {
  wbytes -= wcache[i].bytes;
  free(wcache[i].buf);
  wcache[i] = wcache[--nw];
}

/* Drops the reordered weights of storage uid; uid 0 drops everything, primitives, stream
 * and engine too (set up again on next use). */
void nv_onednn_forget(uint64_t uid) {
  for (int i = nw - 1; i >= 0; i--)
    if (uid == 0 || wcache[i].id.uid == uid) wdrop(i);
  if (uid) return;
  for (int i = 0; i < nentries; i++) entry_free(entries[i]);
  nentries = 0;
  if (stream) dnnl_stream_destroy(stream);
  if (engine) dnnl_engine_destroy(engine);
  stream = NULL;
  engine = NULL;
  if (state > 0) state = 0;
}

size_t nv_onednn_cache_bytes(void) { return wbytes; }

static int key_eq(const pkey *a, const pkey *b) {
  const nv_conv2d_shape *x = &a->s, *y = &b->s;
  return a->kind == b->kind && a->bias == b->bias && a->relu == b->relu && a->add == b->add &&
         a->in_nhwc == b->in_nhwc && a->out_nhwc == b->out_nhwc && a->add_nhwc == b->add_nhwc &&
         a->flip == b->flip && x->n == y->n && x->cin == y->cin &&
         x->h == y->h && x->w == y->w && x->cout == y->cout && x->kh == y->kh && x->kw == y->kw && x->sh == y->sh &&
         x->sw == y->sw && x->ph == y->ph && x->pw == y->pw && x->dh == y->dh && x->dw == y->dw &&
         x->groups == y->groups;
}

#define OK(call) ((call) == dnnl_success)

/* The plain descriptors of a geometry: src (N,Cin,H,W), weights (G,COg,Cg,KH,KW) or
 * (Cout,Cin,KH,KW), bias (Cout), dst (N,Cout,OH,OW); `tag` any for the primitive's choice. */
static int descs(const pkey *k, int any, dnnl_memory_desc_t *src, dnnl_memory_desc_t *wei,
                 dnnl_memory_desc_t *bias, dnnl_memory_desc_t *dst) {
  const nv_conv2d_shape *s = &k->s;
  const int G = s->groups;
  dnnl_dims_t sd = {s->n, s->cin, s->h, s->w}, dd = {s->n, s->cout, s->oh, s->ow}, bd = {s->cout};
  dnnl_dims_t wd = {s->cout, s->cin, s->kh, s->kw}, gd = {G, s->cout / G, s->cin / G, s->kh, s->kw};
  /* a channels-last activation is taken as it is; an NCHW one is reordered into the
   * primitive's choice */
  dnnl_format_tag_t act = any ? dnnl_format_tag_any : dnnl_nchw;
  /* with one side channels-last, the primitive works channels-last on both: given one side
   * only, oneDNN 2.6 found nothing but its reference kernel */
  if (any && (k->in_nhwc || k->out_nhwc)) act = dnnl_nhwc;
  if (!OK(dnnl_memory_desc_init_by_tag(src, 4, sd, dnnl_f32, k->in_nhwc ? dnnl_nhwc : act))) return 0;
  if (!OK(dnnl_memory_desc_init_by_tag(dst, 4, dd, dnnl_f32, k->out_nhwc ? dnnl_nhwc : act))) return 0;
  if (!OK(dnnl_memory_desc_init_by_tag(bias, 1, bd, dnnl_f32, dnnl_x))) return 0;
  if (G > 1) return OK(dnnl_memory_desc_init_by_tag(wei, 5, gd, dnnl_f32, any ? dnnl_format_tag_any : dnnl_goihw));
  return OK(dnnl_memory_desc_init_by_tag(wei, 4, wd, dnnl_f32, any ? dnnl_format_tag_any : dnnl_oihw));
}

static int conv_desc(dnnl_convolution_desc_t *cd, int kind, const nv_conv2d_shape *s, int bias,
                     const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *wei, const dnnl_memory_desc_t *b,
                     const dnnl_memory_desc_t *dst) {
  dnnl_dims_t st = {s->sh, s->sw}, dil = {s->dh - 1, s->dw - 1}, pl = {s->ph, s->pw};
  /* PyTorch's floor rule can leave input rows unread: oneDNN wants the right padding that
   * makes its size formula exact, which can be negative */
  dnnl_dims_t pr = {(int64_t)(s->oh - 1) * s->sh + (int64_t)(s->kh - 1) * s->dh + 1 - s->h - s->ph,
                    (int64_t)(s->ow - 1) * s->sw + (int64_t)(s->kw - 1) * s->dw + 1 - s->w - s->pw};
  const dnnl_alg_kind_t alg = dnnl_convolution_direct;
  if (kind == FWD)
    return OK(dnnl_dilated_convolution_forward_desc_init(cd, dnnl_forward_training, alg, src, wei, bias ? b : NULL,
                                                         dst, st, dil, pl, pr));
  if (kind == BWD_DATA)
    return OK(dnnl_dilated_convolution_backward_data_desc_init(cd, alg, src, wei, dst, st, dil, pl, pr));
  return OK(dnnl_dilated_convolution_backward_weights_desc_init(cd, alg, src, wei, bias ? b : NULL, dst, st, dil,
                                                                pl, pr));
}

static int reorder_prim(dnnl_primitive_t *p, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                        int accumulate) {
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  dnnl_primitive_desc_t pd = NULL;
  int ok = 1;
  if (accumulate)
    ok = OK(dnnl_primitive_attr_create(&attr)) && OK(dnnl_post_ops_create(&po)) &&
         OK(dnnl_post_ops_append_sum(po, 1.0f)) && OK(dnnl_primitive_attr_set_post_ops(attr, po));
  ok = ok && OK(dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, attr)) &&
       OK(dnnl_primitive_create(p, pd));
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (po) dnnl_post_ops_destroy(po);
  if (attr) dnnl_primitive_attr_destroy(attr);
  return ok;
}

static int mem(dnnl_memory_t *m, const dnnl_memory_desc_t *md) {
  return OK(dnnl_memory_create(m, md, engine, DNNL_MEMORY_NONE));
}

static pentry *build(const pkey *k) {
  const nv_conv2d_shape *s = &k->s;
  dnnl_memory_desc_t psrc, pwei, pb, pdst, asrc, awei, ab, adst;
  if (!descs(k, 0, &psrc, &pwei, &pb, &pdst) || !descs(k, 1, &asrc, &awei, &ab, &adst)) return NULL;
  pentry *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->key = *k;
  dnnl_convolution_desc_t cd, fd;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  dnnl_primitive_desc_t pd = NULL, hint = NULL;
  int ok = conv_desc(&cd, k->kind, s, k->bias, &asrc, &awei, &ab, &adst) && OK(dnnl_primitive_attr_create(&attr));
  /* the residual as a sum post-op (the output buffer holds it beforehand), then the ReLU */
  if (ok && (k->relu || k->add))
    ok = OK(dnnl_post_ops_create(&po)) && (!k->add || OK(dnnl_post_ops_append_sum(po, 1.0f))) &&
         (!k->relu || OK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f))) &&
         OK(dnnl_primitive_attr_set_post_ops(attr, po));
  if (ok && k->kind != FWD) /* the backward primitives take a forward one as a hint */
    ok = conv_desc(&fd, FWD, s, k->kind == BWD_W && k->bias, &asrc, &awei, &ab, &adst) &&
         OK(dnnl_primitive_desc_create(&hint, &fd, NULL, engine, NULL));
  ok = ok && OK(dnnl_primitive_desc_create(&pd, &cd, attr, engine, hint)) && OK(dnnl_primitive_create(&e->prim, pd));
  if (ok) {
    const char *impl = NULL;
    if (OK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl)) && impl)
      snprintf(e->impl, sizeof e->impl, "%s", impl);
    /* oneDNN's reference kernels are plain loops, far slower than the built-in ones: the
     * entry is kept, refused, so that the geometry is not tried again */
    if (strncmp(e->impl, "ref", 3) == 0) {
      if (pd) dnnl_primitive_desc_destroy(pd);
      if (hint) dnnl_primitive_desc_destroy(hint);
      if (po) dnnl_post_ops_destroy(po);
      if (attr) dnnl_primitive_attr_destroy(attr);
      dnnl_primitive_destroy(e->prim);
      e->prim = NULL;
      e->refused = 1;
      return e;
    }
    /* in0, in1, out, with their plain descriptors and the queries of the primitive's own */
    static const int args[KINDS][3] = {{DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
                                       {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC},
                                       {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS}};
    static const dnnl_query_t q[KINDS][3] = {{dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md},
                                             {dnnl_query_diff_dst_md, dnnl_query_weights_md, dnnl_query_diff_src_md},
                                             {dnnl_query_src_md, dnnl_query_diff_dst_md, dnnl_query_diff_weights_md}};
    const dnnl_memory_desc_t *plain[KINDS][3] = {{&psrc, &pwei, &pdst}, {&pdst, &pwei, &psrc}, {&psrc, &pdst, &pwei}};
    const int accumulate = k->kind != FWD;
    for (int i = 0; i < 3 && ok; i++) {
      e->arg[i] = args[k->kind][i];
      e->plain[i] = *plain[k->kind][i];
      const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, q[k->kind][i], 0);
      ok = md != NULL;
      if (!ok) break;
      e->internal[i] = *md;
      ok = mem(&e->user[i], &e->plain[i]) && mem(&e->mem[i], md);
      /* an output is always reordered when it accumulates (the sum post-op adds it) */
      if (ok && (i == 2 ? accumulate || !dnnl_memory_desc_equal(md, &e->plain[i])
                        : !dnnl_memory_desc_equal(md, &e->plain[i])))
        ok = i == 2 ? reorder_prim(&e->reorder[i], md, &e->plain[i], accumulate)
                    : reorder_prim(&e->reorder[i], &e->plain[i], md, 0);
    }
    if (ok && k->add) {   /* the residual goes where the convolution writes, in its layout */
      dnnl_dims_t dd = {s->n, s->cout, s->oh, s->ow};
      const dnnl_memory_desc_t *to = e->reorder[2] ? &e->internal[2] : &e->plain[2];
      ok = OK(dnnl_memory_desc_init_by_tag(&e->add_md, 4, dd, dnnl_f32, k->add_nhwc ? dnnl_nhwc : dnnl_nchw));
      if (ok && !dnnl_memory_desc_equal(&e->add_md, to)) ok = reorder_prim(&e->reorder_add, &e->add_md, to, 0);
    }
    if (ok && k->bias) ok = k->kind == BWD_W ? mem(&e->dbias, &pb) : k->kind == FWD ? mem(&e->bias, &pb) : 1;
  }
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (hint) dnnl_primitive_desc_destroy(hint);
  if (po) dnnl_post_ops_destroy(po);
  if (attr) dnnl_primitive_attr_destroy(attr);
  if (!ok) {
    entry_free(e);
    return NULL;
  }
  return e;
}

/* The entry of a geometry, built on first use; NULL when oneDNN cannot do it. */
static pentry *entry(int kind, const nv_conv2d_shape *s, int bias, int relu, int add, int layout, int flip) {
  if (!init() || s->n < 1) return NULL;
  pkey k = {.kind = kind, .bias = bias, .relu = relu, .add = add, .s = *s, .flip = flip, .in_nhwc = !!(layout & NV_IN_NHWC),
            .out_nhwc = !!(layout & NV_OUT_NHWC), .add_nhwc = add && (layout & NV_ADD_NHWC)};
  for (int i = 0; i < nentries; i++)
    if (key_eq(&entries[i]->key, &k)) {
      entries[i]->used = ++tick;
      return entries[i]->refused ? NULL : entries[i];
    }
  pentry *e = build(&k);
  if (!e) return NULL;
  if (nentries == ENTRIES_MAX) {
    int lru = 0;
    for (int i = 1; i < nentries; i++)
      if (entries[i]->used < entries[lru]->used) lru = i;
    entry_free(entries[lru]);
    entries[lru] = entries[--nentries];
  }
  e->used = ++tick;
  entries[nentries++] = e;
  return e->refused ? NULL : e;
}

static size_t bytes_of(const dnnl_memory_desc_t *md) { return dnnl_memory_desc_get_size(md); }

static int run_reorder(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
  dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
  return OK(dnnl_primitive_execute(r, stream, 2, a));
}

/* The kept copy of input i's weights in e's layout (made, unfilled, when `make`), or NULL
 * when the input is no named weight, too big to keep, or memory is short. */
static wentry *kept(pentry *e, int i, const nv_weight_id *wid, int make) {
  const dnnl_memory_desc_t *md = &e->internal[i];
  const size_t bytes = bytes_of(md);
  const int flip = e->key.flip;
  if (e->arg[i] != DNNL_ARG_WEIGHTS || !wid || !wid->uid || bytes > nv_onednn_cache_limit) return NULL;
  for (int j = 0; j < nw; j++)
    if (wcache[j].id.uid == wid->uid && wcache[j].id.off == wid->off && wcache[j].flip == flip &&
        dnnl_memory_desc_equal(&wcache[j].md, md))
      return &wcache[j];
  if (!make) return NULL;
  while (nw && (nw == WCACHE_MAX || wbytes + bytes > nv_onednn_cache_limit)) {
    int lru = 0;
    for (int j = 1; j < nw; j++)
      if (wcache[j].used < wcache[lru].used) lru = j;
    wdrop(lru);
  }
  float *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
  if (!p) return NULL;
  wcache[nw] = (wentry){.id = *wid, .flip = flip, .md = *md, .buf = p, .bytes = bytes};
  wcache[nw].id.version = wid->version - 1;   /* not filled yet */
  wbytes += bytes;
  return &wcache[nw++];
}

static int kept_fresh(pentry *e, int i, const nv_weight_id *wid) {
  wentry *w = kept(e, i, wid, 0);
  return w && w->id.version == wid->version;
}

/* Points input i of e at `data` (plain), reordered into the primitive's layout when needed:
 * weights of a named weight through the kept copies, the rest into scratch. */
/* (Cin, Cout, KH, KW) = w (Cout, Cin, KH, KW) transposed, each kernel turned by 180 degrees */
static void flip_weights(float *restrict t, const float *restrict w, const nv_conv2d_shape *s) {
  /* the geometry of the forward e runs: its cin is the original cout */
  const int co = s->cin, ci = s->cout, kk = s->kh * s->kw;
  for (int o = 0; o < co; o++)
    for (int c = 0; c < ci; c++) {
      const float *src = w + ((size_t)o * ci + c) * kk;
      float *dst = t + ((size_t)c * co + o) * kk;
      for (int k = 0; k < kk; k++) dst[k] = src[kk - 1 - k];
    }
}

static dnnl_memory_t input(pentry *e, int i, const float *data, const nv_weight_id *wid, int slot) {
  /* the plain weights a flipped primitive reads are made from the weight when needed */
  const int flip = e->key.flip && e->arg[i] == DNNL_ARG_WEIGHTS;
  if (flip && (!e->reorder[i] || !kept_fresh(e, i, wid))) {
    float *t = nv_scratch(SLOT_FLIP, (size_t)e->key.s.cin * e->key.s.cout * e->key.s.kh * e->key.s.kw);
    if (!t) return NULL;
    flip_weights(t, data, &e->key.s);
    data = t;
  }
  if (!OK(dnnl_memory_set_data_handle(e->user[i], (void *)data))) return NULL;
  if (!e->reorder[i]) return e->user[i];
  const dnnl_memory_desc_t *md = &e->internal[i];
  const size_t bytes = bytes_of(md);
  void *buf = NULL;
  int fresh = 1;
  wentry *w = kept(e, i, wid, 1);
  if (w) {
    fresh = w->id.version != wid->version;
    w->used = ++tick;
    buf = w->buf;
  }
  if (!buf) buf = nv_scratch(slot, bytes / sizeof(float) + 1);
  int ok = buf && OK(dnnl_memory_set_data_handle(e->mem[i], buf)) &&
           (!fresh || (run_reorder(e->reorder[i], e->user[i], e->mem[i]) && OK(dnnl_stream_wait(stream))));
  if (w) {   /* a kept copy holds this version only once it is written */
    if (ok) w->id.version = wid->version;
    else wdrop((int)(w - wcache));
  }
  return ok ? e->mem[i] : NULL;
}

/* to[0, n) = from[0, n), the parts on OpenMP's threads (a residual copied where the sum
 * post-op adds it: 6 MB at batch 8, on one thread the other waited for it) */
static void par_copy(float *to, const float *from, int64_t n) {
  const int parts = nv_parts(n);
#pragma omp parallel for if (parts > 1) schedule(static)
  for (int k = 0; k < parts; k++) {
    int64_t lo, hi;
    nv_part(n, k, parts, &lo, &hi);
    memcpy(to + lo, from + lo, (size_t)(hi - lo) * sizeof(float));
  }
}

/* Runs e on in0, in1 into out (overwritten for FWD, plus add when given; accumulated
 * otherwise). */
static int run(pentry *e, const float *in0, const float *in1, float *out, const float *bias, float *dbias,
               const float *add, const nv_weight_id *wid) {
  dnnl_memory_t m0 = input(e, 0, in0, wid, SLOT_IN0), m1 = input(e, 1, in1, wid, SLOT_IN1), mo;
  if (!m0 || !m1 || !OK(dnnl_memory_set_data_handle(e->user[2], out))) return 0;
  if (e->reorder[2]) {
    float *buf = nv_scratch(SLOT_OUT, bytes_of(&e->internal[2]) / sizeof(float) + 1);
    if (!buf || !OK(dnnl_memory_set_data_handle(e->mem[2], buf))) return 0;
    mo = e->mem[2];
  } else {
    mo = e->user[2];
  }
  if (add) {   /* the sum post-op adds onto what the output holds */
    if (e->reorder_add) {
      dnnl_memory_t from = NULL;
      int ok = OK(dnnl_memory_create(&from, &e->add_md, engine, (void *)add)) && run_reorder(e->reorder_add, from, mo);
      if (from) dnnl_memory_destroy(from);
      if (!ok) return 0;
    } else {
      void *to = NULL;
      if (!OK(dnnl_memory_get_data_handle(mo, &to))) return 0;
      if (to != add) par_copy(to, add, bytes_of(&e->add_md) / sizeof(float));
    }
  }
  dnnl_exec_arg_t a[4] = {{e->arg[0], m0}, {e->arg[1], m1}, {e->arg[2], mo}};
  int na = 3;
  float *db = NULL;
  if (e->bias) {
    if (!OK(dnnl_memory_set_data_handle(e->bias, (void *)bias))) return 0;
    a[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, e->bias};
  }
  if (e->dbias) {
    db = nv_scratch(SLOT_BIAS, (size_t)e->key.s.cout);
    if (!db || !OK(dnnl_memory_set_data_handle(e->dbias, db))) return 0;
    a[na++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, e->dbias};
  }
  if (!OK(dnnl_primitive_execute(e->prim, stream, na, a))) return 0;
  if (e->reorder[2] && !run_reorder(e->reorder[2], mo, e->user[2])) return 0;
  if (!OK(dnnl_stream_wait(stream))) return 0;
  if (db)
    for (int c = 0; c < e->key.s.cout; c++) dbias[c] += db[c];
  return 1;
}

/* The primitive of an input gradient.  A stride-1 undilated dense convolution's is the
 * forward convolution of dout with the transposed, flipped kernels and padding k-1-p, which
 * oneDNN runs 10-30% faster than its backward-data kernels (*flipped = 1: the output is
 * added through the residual, din itself). */
static pentry *bwd_data_entry(const nv_conv2d_shape *s, int *flipped) {
  *flipped = 0;
  if (s->sh == 1 && s->sw == 1 && s->dh == 1 && s->dw == 1 && s->groups == 1 && s->ph < s->kh && s->pw < s->kw) {
    nv_conv2d_shape t = {.n = s->n, .cin = s->cout, .h = s->oh, .w = s->ow, .cout = s->cin, .kh = s->kh,
                         .kw = s->kw, .sh = 1, .sw = 1, .ph = s->kh - 1 - s->ph, .pw = s->kw - 1 - s->pw,
                         .dh = 1, .dw = 1, .groups = 1};
    if (nv_conv2d_init(&t) && t.oh == s->h && t.ow == s->w) {
      pentry *f = entry(FWD, &t, 0, 0, 1, 0, 1);
      if (f) {
        *flipped = 1;
        return f;
      }
    }
  }
  return entry(BWD_DATA, s, 0, 0, 0, 0, 0);
}

int nv_onednn_forward(float *out, const float *in, const float *weight, const float *bias,
                      const nv_conv2d_shape *s, const nv_conv2d_extra *ex) {
  pentry *e = entry(FWD, s, bias != NULL, ex && ex->relu, ex && ex->add, ex ? ex->layout : 0, 0);
  return e && run(e, in, weight, out, bias, NULL, ex ? ex->add : NULL, ex ? &ex->wid : NULL);
}

int nv_onednn_backward_data(float *din, const float *dout, const float *weight, const nv_conv2d_shape *s,
                            const nv_weight_id *wid) {
  int flipped;
  pentry *e = bwd_data_entry(s, &flipped);
  return e && run(e, dout, weight, din, NULL, NULL, flipped ? din : NULL, wid);
}

int nv_onednn_backward_weights(float *dweight, float *dbias, const float *dout, const float *in,
                               const nv_conv2d_shape *s) {
  pentry *e = entry(BWD_W, s, dbias != NULL, 0, 0, 0, 0);
  return e && run(e, in, dout, dweight, NULL, dbias, NULL, NULL);
}

const char *nv_onednn_impl(const nv_conv2d_shape *s, int kind) {
  if (!nv_config_get()->conv_onednn) return NULL;
  int flipped;
  pentry *e = kind == BWD_DATA ? bwd_data_entry(s, &flipped)
            : kind >= 0 && kind < KINDS ? entry(kind, s, kind != BWD_DATA, 0, 0, 0, 0) : NULL;
  return e ? e->impl : NULL;
}

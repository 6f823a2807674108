/*
 * nn.c — neural-network ops on tensors, each family with its shape check, forward, graph
 * recording and backward together, over
 * the raw kernels of conv.c, pool.c, norm.c and resample.c (nn_kernels.h).
 * Image ops take (N,C,H,W) or unbatched (C,H,W) input; the latter is viewed as N = 1.
 */
#include "kernels/nn_kernels.h"
#include "ops/nn_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int conv2d_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin);
static int pool2d_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin);
static int adaptive_pool2d_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin);
static int batch_norm_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin);
static int softmax_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin);
static int interpolate_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin);
static int pad_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin);

static char *shp(char *buf, size_t n, const nv_tensor *t) { return nv_shape_str(buf, n, t->ndim, t->size); }

/* (C,H,W) -> (1,C,H,W) view (recorded); (N,C,H,W) retained; anything else an error. */
static nv_tensor *batched(const char *fname, nv_tensor *x, int *unbatched) {
  char a[200];
  *unbatched = x->ndim == 3;
  if (x->ndim == 4) return nv_retain(x);
  if (x->ndim == 3) return nv_unsqueeze(x, 0);
  nv_seterr("%s: expected input (N,C,H,W) or (C,H,W), got %s", fname, shp(a, sizeof a, x));
  return NULL;
}

/* undoes batched(): steals o */
static nv_tensor *unbatch(nv_tensor *o, int unbatched) {
  if (!o || !unbatched) return o;
  nv_tensor *s = nv_squeeze(o, 0);
  nv_release(o);
  return s;
}

/* a zero gradient for input k when the pass wants it, else NULL */
static nv_tensor *zeros_if(nv_node *n, int k) {
  return k < n->nin && n->in[k] && nv_need(n, k) ? nv_zeros_like(n->in[k]) : NULL;
}

/* Image ops index with int: every size of t must fit one (a view expanded past 2^31 must not
 * wrap to a small or negative size). */
static int int_sized(const char *fname, const char *what, const nv_tensor *t) {
  char a[200];
  for (int i = 0; i < t->ndim; i++)
    if (t->size[i] > INT32_MAX)
      return nv_seterr("%s: %s %s has a size over 2^31-1", fname, what, shp(a, sizeof a, t));
  return 1;
}

/* ---- conv2d ------------------------------------------------------------------------------ */
/* The name of w's values for the kernels' caches, when wc (its contiguous data) is w itself;
 * a copy is unnamed (uid 0). */
static nv_weight_id weight_id(const nv_tensor *w, const nv_tensor *wc) {
  return wc == w ? (nv_weight_id){w->st->uid, w->st->version, w->off} : (nv_weight_id){0};
}

/* (N,C,H,W) laid out as (N,H,W,C) in memory */
static int is_nhwc(const nv_tensor *t) {
  if (t->ndim != 4) return 0;
  const int64_t *z = t->size, *st = t->stride;
  return st[1] == 1 && st[3] == z[1] && st[2] == z[3] * z[1] && st[0] == z[2] * z[3] * z[1];
}

/* a convolution's output, (N,Cout,OH,OW), NCHW or channels-last in memory */
static nv_tensor *conv_out(const nv_conv2d_shape *s, int nhwc) {
  if (!nhwc) return nv_empty(4, (int64_t[4]){s->n, s->cout, s->oh, s->ow});
  nv_tensor *t = nv_empty(4, (int64_t[4]){s->n, s->oh, s->ow, s->cout});
  nv_tensor *v = t ? nv_permute(t, (int[4]){0, 3, 1, 2}) : NULL;
  nv_release(t);
  return v;
}

nv_tensor *nv_conv2d(nv_tensor *x0, nv_tensor *w, nv_tensor *b, const int stride[2], const int pad[2],
                     const int dil[2], int groups, int relu, nv_tensor *add, int channels_last) {
  char a[200], c[200];
  int ub;
  if (w->ndim != 4)
    return nv_seterr("conv2d: weight must be (Cout, Cin/groups, KH, KW), got %s", shp(a, sizeof a, w)), NULL;
  if (x0->ndim != 3 && x0->ndim != 4)
    return nv_seterr("conv2d: expected input (N,C,H,W) or (C,H,W), got %s", shp(a, sizeof a, x0)), NULL;
  if (!int_sized("conv2d", "input", x0) || !int_sized("conv2d", "weight", w)) return NULL;
  int64_t cin = x0->size[x0->ndim - 3];
  if (groups < 1) return nv_seterr("conv2d: groups must be >= 1, got %d", groups), NULL;
  if (w->size[1] * groups != cin)
    return nv_seterr("conv2d: weight %s expects %lld input channels, input has %lld %s", shp(a, sizeof a, w),
                     (long long)(w->size[1] * groups), (long long)cin, shp(c, sizeof c, x0)), NULL;
  if (w->size[0] % groups)
    return nv_seterr("conv2d: %lld output channels are not divisible by groups = %d", (long long)w->size[0], groups), NULL;
  if (b && (b->ndim != 1 || b->size[0] != w->size[0]))
    return nv_seterr("conv2d: bias %s does not match weight %s (expected (%lld))", shp(a, sizeof a, b),
                     shp(c, sizeof c, w), (long long)w->size[0]), NULL;
  nv_conv2d_shape s = {.n = (int)(x0->ndim == 4 ? x0->size[0] : 1), .cin = (int)cin,
                       .h = (int)x0->size[x0->ndim - 2], .w = (int)x0->size[x0->ndim - 1],
                       .cout = (int)w->size[0], .kh = (int)w->size[2], .kw = (int)w->size[3],
                       .sh = stride[0], .sw = stride[1], .ph = pad[0], .pw = pad[1],
                       .dh = dil[0], .dw = dil[1], .groups = groups};
  nv_tensor *in0[4] = {x0, w, b, add};
  if ((relu || add) && nv_needs_grad(4, in0))   /* the graph would need the plain output */
    return nv_seterr("conv2d: %s is for inference; call it under nv.no_grad", relu ? "relu = true" : "add"), NULL;
  if (!nv_conv2d_init(&s) || !nv_conv2d_scratch(&s, 0)) return NULL;
  if (add) {   /* the residual: the output's own shape */
    int ok = add->ndim == x0->ndim && add->size[add->ndim - 3] == s.cout && add->size[add->ndim - 2] == s.oh &&
             add->size[add->ndim - 1] == s.ow && (add->ndim == 3 || add->size[0] == s.n);
    if (!ok)
      return nv_seterr("conv2d: add %s must have the output's shape (%d,%d,%d,%d)", shp(a, sizeof a, add), s.n,
                       s.cout, s.oh, s.ow), NULL;
  }
  nv_tensor *x = batched("conv2d", x0, &ub);
  if (!x) return NULL;
  /* channels-last activations go to oneDNN as they are (inference only); the output is
   * channels-last when asked for */
  const int direct = !nv_needs_grad(4, in0) && nv_conv2d_onednn_first(&s);
  const int layout = (direct && is_nhwc(x) ? NV_IN_NHWC : 0) | (direct && channels_last ? NV_OUT_NHWC : 0) |
                     (direct && add && is_nhwc(add) ? NV_ADD_NHWC : 0);
  nv_tensor *xc = layout & NV_IN_NHWC ? nv_retain(x) : nv_contiguous_data(x), *wc = xc ? nv_contiguous_data(w) : NULL;
  nv_tensor *bc = wc && b ? nv_contiguous_data(b) : NULL;
  nv_tensor *ac = wc && (bc || !b) && add ? (layout & NV_ADD_NHWC ? nv_retain(add) : nv_contiguous_data(add)) : NULL;
  nv_tensor *o = wc && (bc || !b) && (ac || !add) ? conv_out(&s, layout & NV_OUT_NHWC) : NULL;
  nv_conv2d_extra ex = {.wid = weight_id(w, wc), .relu = relu, .add = ac ? nv_data(ac) : NULL, .layout = layout};
  if (o && !(layout && nv_onednn_forward(nv_data(o), nv_data(xc), nv_data(wc), bc ? nv_data(bc) : NULL, &s, &ex))) {
    /* the built-in kernels, on NCHW copies */
    nv_tensor *xn = layout & NV_IN_NHWC ? nv_contiguous(xc) : nv_retain(xc);
    nv_tensor *an = ac && (layout & NV_ADD_NHWC) ? nv_contiguous(ac) : nv_retain(ac);
    nv_tensor *on = layout & NV_OUT_NHWC ? conv_out(&s, 0) : nv_retain(o);
    ex.layout = 0;
    ex.add = an ? nv_data(an) : NULL;
    if (xn && (an || !ac) && on) {
      nv_conv2d_forward(nv_data(on), nv_data(xn), nv_data(wc), bc ? nv_data(bc) : NULL, &s, &ex);
      if (on != o) nv_copy_into(o, on);
    } else {
      nv_release(o);
      o = NULL;
    }
    nv_release(xn); nv_release(an); nv_release(on);
  }
  nv_release(xc); nv_release(wc); nv_release(bc); nv_release(ac);
  nv_tensor *in[3] = {x, w, b};
  if (o && nv_needs_grad(3, in)) {
    nv_node *n = nv_op_node(NV_OP_CONV2D, conv2d_backward, b ? 3 : 2, in);
    if (!n) { nv_release(o); o = NULL; }
    else {
      memcpy(n->i, &s, sizeof s < sizeof n->i ? sizeof s : sizeof n->i);
      nv_attach(o, n);
    }
  }
  nv_release(x);
  return unbatch(o, ub);
}
_Static_assert(sizeof(nv_conv2d_shape) <= sizeof(((nv_node *)0)->i), "conv geometry fits a node");

static int conv2d_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin) {
  nv_tensor *x = n->in[0];
  nv_conv2d_shape s;
  memcpy(&s, n->i, sizeof s);
  nv_tensor *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
  if (!nv_conv2d_scratch(&s, 1)) return 0;
  nv_tensor *dx = zeros_if(n, 0), *dw = zeros_if(n, 1), *db = zeros_if(n, 2);
  nv_tensor *xc = nv_contiguous_data(x), *wc = nv_contiguous_data(w);
  nv_weight_id wid = weight_id(w, wc);
  if (xc && wc)
    nv_conv2d_backward(dx ? nv_data(dx) : NULL, dw ? nv_data(dw) : NULL, db ? nv_data(db) : NULL,
                       nv_data(gout), nv_data(xc), nv_data(wc), &s, &wid);
  nv_release(xc); nv_release(wc);
  gin[0] = dx; gin[1] = dw; if (b) gin[2] = db;
  return 1;
}

/* ---- pooling ------------------------------------------------------------------------------ */
static int pool_setup(const char *fname, nv_tensor *x, nv_pool2d_shape *s) {
  char a[200];
  if (x->ndim != 3 && x->ndim != 4)
    return nv_seterr("%s: expected input (N,C,H,W) or (C,H,W), got %s", fname, shp(a, sizeof a, x));
  if (!int_sized(fname, "input", x)) return 0;
  s->n = (int)(x->ndim == 4 ? x->size[0] : 1);
  s->c = (int)x->size[x->ndim - 3];
  s->h = (int)x->size[x->ndim - 2];
  s->w = (int)x->size[x->ndim - 1];
  return nv_pool2d_init(s, fname);
}

static nv_tensor *pool_out(nv_tensor *x, const nv_pool2d_shape *s) {
  int64_t sz[4] = {s->n, s->c, s->oh, s->ow};
  return nv_empty(4, sz);
}

nv_tensor *nv_max_pool2d(nv_tensor *x0, const int k[2], const int stride[2], const int pad[2],
                         const int dil[2], int ceil_mode) {
  nv_pool2d_shape s = {.kh = k[0], .kw = k[1], .sh = stride[0], .sw = stride[1], .ph = pad[0],
                       .pw = pad[1], .dh = dil[0], .dw = dil[1], .ceil_mode = ceil_mode};
  if (!pool_setup("max_pool2d", x0, &s)) return NULL;
  int ub;
  nv_tensor *x = batched("max_pool2d", x0, &ub);
  /* a channels-last input that no gradient will reach is pooled as it is, into a
   * channels-last output (a ResNet's stem hands it to the first block's convolution) */
  if (x && is_nhwc(x) && !nv_needs_grad(1, &x)) {
    nv_tensor *t = nv_empty(4, (int64_t[4]){s.n, s.oh, s.ow, s.c});
    nv_tensor *o = t ? nv_permute(t, (int[4]){0, 3, 1, 2}) : NULL;
    nv_release(t);
    if (o) nv_max_pool2d_forward_nhwc(nv_data(o), nv_data(x), &s);
    nv_release(x);
    return unbatch(o, ub);
  }
  nv_tensor *xc = x ? nv_contiguous_data(x) : NULL;
  nv_tensor *o = xc ? pool_out(x, &s) : NULL;
  /* the argmax positions are int32 kept in a float-sized buffer of the same shape, made only
   * when a gradient will need them */
  int grad = x && nv_needs_grad(1, &x);
  nv_tensor *ix = o && grad ? pool_out(x, &s) : NULL;
  if (o && (ix || !grad)) nv_max_pool2d_forward(nv_data(o), ix ? (int32_t *)(void *)nv_data(ix) : NULL, nv_data(xc), &s);
  else { nv_release(o); o = NULL; }
  nv_release(xc);
  if (o && grad) {
    nv_node *n = nv_op_node(NV_OP_MAX_POOL2D, pool2d_backward, 1, &x);
    if (!n) { nv_release(o); o = NULL; }
    else {
      memcpy(n->i, &s, sizeof s);
      nv_save(n, 0, ix);
      nv_attach(o, n);
    }
  }
  nv_release(ix);
  nv_release(x);
  return unbatch(o, ub);
}
_Static_assert(sizeof(nv_pool2d_shape) <= sizeof(((nv_node *)0)->i), "pool geometry fits a node");

nv_tensor *nv_avg_pool2d(nv_tensor *x0, const int k[2], const int stride[2], const int pad[2],
                         int ceil_mode, int count_include_pad) {
  nv_pool2d_shape s = {.kh = k[0], .kw = k[1], .sh = stride[0], .sw = stride[1], .ph = pad[0],
                       .pw = pad[1], .dh = 1, .dw = 1, .ceil_mode = ceil_mode,
                       .count_include_pad = count_include_pad};
  if (!pool_setup("avg_pool2d", x0, &s)) return NULL;
  int ub;
  nv_tensor *x = batched("avg_pool2d", x0, &ub);
  nv_tensor *xc = x ? nv_contiguous_data(x) : NULL;
  nv_tensor *o = xc ? pool_out(x, &s) : NULL;
  if (o) nv_avg_pool2d_forward(nv_data(o), nv_data(xc), &s);
  nv_release(xc);
  if (o && nv_needs_grad(1, &x)) {
    nv_node *n = nv_op_node(NV_OP_AVG_POOL2D, pool2d_backward, 1, &x);
    if (!n) { nv_release(o); o = NULL; }
    else { memcpy(n->i, &s, sizeof s); nv_attach(o, n); }
  }
  nv_release(x);
  return unbatch(o, ub);
}

static int pool2d_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin) {
  nv_pool2d_shape s;
  memcpy(&s, n->i, sizeof s);
  nv_tensor *dx = zeros_if(n, 0);
  if (!dx) return nv_need(n, 0) ? 0 : 1;
  if (n->op == NV_OP_MAX_POOL2D)
    nv_max_pool2d_backward(nv_data(dx), nv_data(gout), (const int32_t *)(const void *)nv_data(n->saved[0]), &s);
  else nv_avg_pool2d_backward(nv_data(dx), nv_data(gout), &s);
  gin[0] = dx;
  return 1;
}

/* planes of an (..., H, W) tensor with at least 2 dims */
static int64_t planes_of(const nv_tensor *x) {
  int64_t p = 1;
  for (int i = 0; i < x->ndim - 2; i++) p *= x->size[i];
  return p;
}

/* Shared by ops that resize the last two dims of (N,C,H,W) or (C,H,W) input to (oh, ow):
 * checks, then returns the output and a contiguous copy of x in *xc (both new refs). */
static nv_tensor *resized(const char *fname, nv_tensor *x, int oh, int ow, int *h, int *w, nv_tensor **xc) {
  char a[200];
  *xc = NULL;
  if (x->ndim != 3 && x->ndim != 4)
    return nv_seterr("%s: expected input (N,C,H,W) or (C,H,W), got %s", fname, shp(a, sizeof a, x)), NULL;
  if (oh < 1 || ow < 1) return nv_seterr("%s: output size must be positive, got (%d,%d)", fname, oh, ow), NULL;
  if (!int_sized(fname, "input", x)) return NULL;
  *h = (int)x->size[x->ndim - 2];
  *w = (int)x->size[x->ndim - 1];
  if (*h < 1 || *w < 1) return nv_seterr("%s: input %s is empty", fname, shp(a, sizeof a, x)), NULL;
  int64_t sz[NV_MAXDIM];
  memcpy(sz, x->size, sizeof sz);
  sz[x->ndim - 2] = oh;
  sz[x->ndim - 1] = ow;
  *xc = nv_contiguous_data(x);
  return *xc ? nv_empty(x->ndim, sz) : NULL;
}

nv_tensor *nv_adaptive_avg_pool2d(nv_tensor *x, int oh, int ow) {
  int h, w;
  nv_tensor *xc, *o = resized("adaptive_avg_pool2d", x, oh, ow, &h, &w, &xc);
  if (o) nv_adaptive_avg_pool2d_forward(nv_data(o), nv_data(xc), planes_of(x), h, w, oh, ow);
  nv_release(xc);
  if (o && nv_needs_grad(1, &x)) {
    nv_node *n = nv_op_node(NV_OP_ADAPTIVE_AVG_POOL2D, adaptive_pool2d_backward, 1, &x);
    if (!n) { nv_release(o); return NULL; }
    n->i[0] = oh; n->i[1] = ow;
    nv_attach(o, n);
  }
  return o;
}

static int adaptive_pool2d_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin) {
  nv_tensor *x = n->in[0];
  nv_tensor *dx = zeros_if(n, 0);
  if (!dx) return nv_need(n, 0) ? 0 : 1;
  nv_adaptive_avg_pool2d_backward(nv_data(dx), nv_data(gout), planes_of(x), (int)x->size[x->ndim - 2],
                                  (int)x->size[x->ndim - 1], (int)n->i[0], (int)n->i[1]);
  gin[0] = dx;
  return 1;
}

/* ---- batch norm ---------------------------------------------------------------------------- */
nv_tensor *nv_batch_norm(nv_tensor *x, nv_tensor *rm, nv_tensor *rv, nv_tensor *w, nv_tensor *b,
                         int training, double momentum, double eps) {
  char a[200], c[200];
  if (x->ndim < 2) return nv_seterr("batch_norm: expected input (N,C) or (N,C,...), got %s", shp(a, sizeof a, x)), NULL;
  if (!int_sized("batch_norm", "input", x)) return NULL;
  int64_t n = x->size[0], ch = x->size[1], s = 1;
  for (int i = 2; i < x->ndim; i++) s *= x->size[i];
  nv_tensor *vecs[4] = {rm, rv, w, b};
  const char *names[4] = {"running_mean", "running_var", "weight", "bias"};
  for (int k = 0; k < 4; k++) {
    nv_tensor *v = vecs[k];
    if (v && (nv_numel(v) != ch || !nv_is_contiguous(v)))
      return nv_seterr("batch_norm: %s %s does not match %lld channels of input %s", names[k], shp(a, sizeof a, v),
                       (long long)ch, shp(c, sizeof c, x)), NULL;
  }
  if ((rm && rm->requires_grad && nv_grad_enabled() && training) || (rv && rv->requires_grad && nv_grad_enabled() && training))
    return nv_seterr("batch_norm: running statistics must not require grad"), NULL;
  if (!nv_batch_norm_check((int)n, (int)ch, s, training, rm && rv)) return NULL;
  nv_tensor *xc = nv_contiguous_data(x);
  nv_tensor *o = xc ? nv_empty_like(x) : NULL;
  nv_tensor *mean = o ? nv_empty(1, &ch) : NULL, *invstd = mean ? nv_empty(1, &ch) : NULL;
  if (!invstd) { nv_release(xc); nv_release(o); nv_release(mean); return NULL; }
  nv_batch_norm_forward(nv_data(o), nv_data(mean), nv_data(invstd), nv_data(xc), w ? nv_data(w) : NULL,
                        b ? nv_data(b) : NULL, rm ? nv_data(rm) : NULL, rv ? nv_data(rv) : NULL, (int)n,
                        (int)ch, s, training, (float)momentum, (float)eps);
  nv_release(xc);
  nv_tensor *in[3] = {x, w, b};
  if (nv_needs_grad(3, in)) {
    nv_node *nd = nv_op_node(NV_OP_BATCH_NORM, batch_norm_backward, 3, in);
    if (!nd) { nv_release(o); o = NULL; }
    else {
      nd->i[0] = training;
      nv_save(nd, 0, mean);
      nv_save(nd, 1, invstd);
      nv_attach(o, nd);
    }
  }
  nv_release(mean);
  nv_release(invstd);
  return o;
}

static int batch_norm_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin) {
  nv_tensor *x = n->in[0];
  nv_tensor *w = n->in[1];
  int64_t nb = x->size[0], ch = x->size[1], s = 1;
  for (int i = 2; i < x->ndim; i++) s *= x->size[i];
  nv_tensor *dx = zeros_if(n, 0), *dw = zeros_if(n, 1), *db = zeros_if(n, 2);
  nv_tensor *xc = nv_contiguous_data(x);
  if (!xc) return 0;
  nv_batch_norm_backward(dx ? nv_data(dx) : NULL, dw ? nv_data(dw) : NULL, db ? nv_data(db) : NULL,
                         nv_data(gout), nv_data(xc), w ? nv_data(w) : NULL, nv_data(n->saved[0]),
                         nv_data(n->saved[1]), (int)nb, (int)ch, s, (int)n->i[0]);
  nv_release(xc);
  gin[0] = dx; gin[1] = dw; gin[2] = db;
  return 1;
}

/* ---- softmax ------------------------------------------------------------------------------- */
static void split_dims(const nv_tensor *x, int d, int64_t *outer, int64_t *dim, int64_t *inner) {
  *outer = 1; *inner = 1; *dim = x->ndim ? x->size[d] : 1;
  for (int i = 0; i < d; i++) *outer *= x->size[i];
  for (int i = d + 1; i < x->ndim; i++) *inner *= x->size[i];
}

nv_tensor *nv_softmax(nv_tensor *x, int d, int log) {
  int dd = 0;
  if (x->ndim > 0 && !nv_wrap_dim(log ? "log_softmax" : "softmax", "dim", d, x->ndim, &dd)) return NULL;
  int64_t outer, dim, inner;
  split_dims(x, dd, &outer, &dim, &inner);
  nv_tensor *xc = nv_contiguous_data(x);
  nv_tensor *o = xc ? nv_empty_like(x) : NULL;
  if (o && nv_numel(o) > 0) {
    if (log) nv_log_softmax_forward(nv_data(o), nv_data(xc), outer, dim, inner);
    else nv_softmax_forward(nv_data(o), nv_data(xc), outer, dim, inner);
  }
  nv_release(xc);
  if (o && nv_needs_grad(1, &x)) {
    nv_node *n = nv_op_node(log ? NV_OP_LOG_SOFTMAX : NV_OP_SOFTMAX, softmax_backward, 1, &x);
    if (!n) { nv_release(o); return NULL; }
    n->i[0] = dd;
    nv_attach(o, n);
  }
  return o;
}

static int softmax_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin) {
  nv_tensor *x = n->in[0];
  nv_tensor *dx = zeros_if(n, 0);
  if (!dx) return nv_need(n, 0) ? 0 : 1;
  int64_t outer, dim, inner;
  split_dims(x, (int)n->i[0], &outer, &dim, &inner);
  nv_tensor *oc = nv_contiguous_data(out);
  if (!oc) { nv_release(dx); return 0; }
  if (n->op == NV_OP_SOFTMAX) nv_softmax_backward(nv_data(dx), nv_data(gout), nv_data(oc), outer, dim, inner);
  else nv_log_softmax_backward(nv_data(dx), nv_data(gout), nv_data(oc), outer, dim, inner);
  nv_release(oc);
  gin[0] = dx;
  return 1;
}

/* ---- interpolate and pad ------------------------------------------------------------------- */
nv_tensor *nv_interpolate(nv_tensor *x, int oh, int ow, int bilinear, int align_corners, float rh, float rw) {
  int h, w;
  nv_tensor *xc, *o = resized("interpolate", x, oh, ow, &h, &w, &xc);
  if (o) {
    if (bilinear) nv_interpolate_bilinear_forward(nv_data(o), nv_data(xc), planes_of(x), h, w, oh, ow, align_corners, rh, rw);
    else nv_interpolate_nearest_forward(nv_data(o), nv_data(xc), planes_of(x), h, w, oh, ow, rh, rw);
  }
  nv_release(xc);
  if (o && nv_needs_grad(1, &x)) {
    nv_node *n = nv_op_node(NV_OP_INTERPOLATE, interpolate_backward, 1, &x);
    if (!n) { nv_release(o); return NULL; }
    n->i[0] = oh; n->i[1] = ow; n->i[2] = bilinear; n->i[3] = align_corners;
    n->f[0] = rh; n->f[1] = rw;
    nv_attach(o, n);
  }
  return o;
}

static int interpolate_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin) {
  nv_tensor *x = n->in[0];
  nv_tensor *dx = zeros_if(n, 0);
  if (!dx) return nv_need(n, 0) ? 0 : 1;
  int h = (int)x->size[x->ndim - 2], w = (int)x->size[x->ndim - 1];
  if (n->i[2]) nv_interpolate_bilinear_backward(nv_data(dx), nv_data(gout), planes_of(x), h, w, (int)n->i[0], (int)n->i[1], (int)n->i[3],
                                               (float)n->f[0], (float)n->f[1]);
  else nv_interpolate_nearest_backward(nv_data(dx), nv_data(gout), planes_of(x), h, w, (int)n->i[0], (int)n->i[1],
                                       (float)n->f[0], (float)n->f[1]);
  gin[0] = dx;
  return 1;
}

nv_tensor *nv_pad(nv_tensor *x, const int pad4[4], int npad, int mode, float value) {
  char a[200];
  if (npad != 2 && npad != 4) return nv_seterr("pad: expected {left, right} or {left, right, top, bottom}"), NULL;
  if (x->ndim < (npad == 4 ? 2 : 1))
    return nv_seterr("pad: %d paddings need an input of at least %d dimensions, got %s", npad, npad / 2,
                     shp(a, sizeof a, x)), NULL;
  int pad[4] = {pad4[0], pad4[1], npad == 4 ? pad4[2] : 0, npad == 4 ? pad4[3] : 0};
  for (int k = 0; k < 4; k++) if (pad[k] < 0) return nv_seterr("pad: negative padding %d is not supported", pad[k]), NULL;
  int64_t h64 = npad == 4 ? x->size[x->ndim - 2] : 1, w64 = x->size[x->ndim - 1];
  int64_t oh = h64 + pad[2] + pad[3], ow = w64 + pad[0] + pad[1];   /* 64-bit: int pads cannot wrap */
  if (oh > INT32_MAX || ow > INT32_MAX)
    return nv_seterr("pad: padded size (%lld,%lld) of %s is too large", (long long)oh, (long long)ow,
                     shp(a, sizeof a, x)), NULL;
  int h = (int)h64, w = (int)w64;
  if (!nv_pad_check(h, w, pad, (nv_pad_mode)mode)) return NULL;
  int64_t sz[NV_MAXDIM];
  memcpy(sz, x->size, sizeof sz);
  sz[x->ndim - 1] = ow;
  if (npad == 4) sz[x->ndim - 2] = oh;
  int64_t hw = (int64_t)h * w;
  int64_t planes = hw > 0 ? nv_numel(x) / hw : 0;
  nv_tensor *xc = nv_contiguous_data(x);
  nv_tensor *o = xc ? nv_empty(x->ndim, sz) : NULL;
  if (o) nv_pad_forward(nv_data(o), nv_data(xc), planes, h, w, pad, (nv_pad_mode)mode, value);
  nv_release(xc);
  if (o && nv_needs_grad(1, &x)) {
    nv_node *n = nv_op_node(NV_OP_PAD, pad_backward, 1, &x);
    if (!n) { nv_release(o); return NULL; }
    for (int k = 0; k < 4; k++) n->i[k] = pad[k];
    n->i[4] = mode; n->i[5] = h; n->i[6] = w; n->i[7] = planes;
    nv_attach(o, n);
  }
  return o;
}

static int pad_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin) {
  nv_tensor *dx = zeros_if(n, 0);
  if (!dx) return nv_need(n, 0) ? 0 : 1;
  int pad[4] = {(int)n->i[0], (int)n->i[1], (int)n->i[2], (int)n->i[3]};
  nv_pad_backward(nv_data(dx), nv_data(gout), n->i[7], (int)n->i[5], (int)n->i[6], pad, (nv_pad_mode)n->i[4]);
  gin[0] = dx;
  return 1;
}

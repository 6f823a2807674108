/*
 * reduce.c — sum, mean, max/min with indices, var and logsumexp, with backward.
 * Sums run over whole innermost runs; a run that collapses to one output element is
 * accumulated in double.
 */
#include "ops/ops.h"
#include "core/walk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int reduce_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin);

int nv_wrap_dim(const char *fname, const char *arg, int d, int ndim, int *out) {
  int n = ndim > 0 ? ndim : 1;
  int r = d < 0 ? d + n : d;
  if (r < 0 || r >= n)
    return nv_seterr("%s: %s %d is out of range for a tensor of %d dimension%s", fname, arg,
                     d < 0 ? d : d + 1, ndim, ndim == 1 ? "" : "s");
  *out = r;
  return 1;
}

/* dst (already holding a start value) += src summed over the dims where dst broadcasts. */
NV_HOT static void acc_reduce(nv_tensor *dst, const nv_tensor *src) {
  nv_walk w;
  nv_walk_init(&w, src->ndim, src->size, 2);
  nv_walk_operand(&w, 0, dst);
  nv_walk_operand(&w, 1, src);
  if (!nv_walk_start(&w)) return;
  float *d = nv_data(dst);
  const float *s = nv_data(src);
  int64_t n = w.inner, sd = w.is[0], ss = w.is[1];
  do {
    float *dp = d + w.off[0];
    const float *sp = s + w.off[1];
    if (sd == 0) {
      double acc = 0.0;
      if (ss == 1) {
        /* 8 independent partial sums: no serial dependency, and the compiler vectorizes */
        double lane[8] = {0};
        int64_t j = 0;
        for (; j + 8 <= n; j += 8)
          for (int k = 0; k < 8; k++) lane[k] += sp[j + k];
        for (; j < n; j++) acc += sp[j];
        for (int k = 0; k < 8; k++) acc += lane[k];
      } else for (int64_t j = 0; j < n; j++) acc += sp[j * ss];
      *dp += (float)acc;
    } else if (sd == 1 && ss == 1) {
      for (int64_t j = 0; j < n; j++) dp[j] += sp[j];
    } else {
      for (int64_t j = 0; j < n; j++) dp[j * sd] += sp[j * ss];
    }
  } while (nv_walk_next(&w));
}

nv_tensor *nv_sum_to(nv_tensor *x, int ndim, const int64_t *size) {
  nv_tensor *o = nv_zeros(ndim, size);
  if (o) acc_reduce(o, x);
  return o;
}

/* shape of x reduced over dim, with the reduced dim kept as 1 */
static void keep_shape(const nv_tensor *x, int dim, int64_t *size) {
  for (int i = 0; i < x->ndim; i++) size[i] = i == dim ? 1 : x->size[i];
}

static nv_tensor *drop_dim(nv_tensor *t, int dim) {
  int64_t size[NV_MAXDIM];
  int k = 0;
  for (int i = 0; i < t->ndim; i++) if (i != dim) size[k++] = t->size[i];
  int64_t stride[NV_MAXDIM];
  k = 0;
  for (int i = 0; i < t->ndim; i++) if (i != dim) stride[k++] = t->stride[i];
  nv_tensor *v = nv_from_storage(t->st, t->off, t->ndim - 1, size, stride);
  nv_release(t);
  return v;
}

static nv_tensor *sum_mean(int op, nv_tensor *x, int dim, int keepdim) {
  const char *fname = op == NV_OP_SUM ? "sum" : "mean";
  int d = -1;
  if (dim >= 0 || dim < -1) {
    if (x->ndim == 0) dim = -1; /* a scalar reduces to itself */
    else if (!nv_wrap_dim(fname, "dim", dim, x->ndim, &d)) return NULL;
  }
  if (dim == -1 && d < 0) d = -1;
  nv_tensor *o;
  int64_t count;
  if (d < 0) {
    o = nv_zeros(0, NULL);
    count = nv_numel(x);
  } else {
    int64_t size[NV_MAXDIM];
    keep_shape(x, d, size);
    o = nv_zeros(x->ndim, size);
    count = x->size[d];
  }
  if (!o) return NULL;
  acc_reduce(o, x);
  if (op == NV_OP_MEAN) nv_scale_(o, count ? 1.0f / (float)count : NAN);
  if (d >= 0 && !keepdim && !(o = drop_dim(o, d))) return NULL;
  if (nv_needs_grad(1, &x)) {
    nv_node *n = nv_op_node(op, reduce_backward, 1, &x);
    if (!n) { nv_release(o); return NULL; }
    n->i[0] = d;
    n->i[1] = keepdim;
    n->f[0] = (double)count;
    nv_attach(o, n);
  }
  return o;
}

/* Special value: dim == -1 means "all" at this level (the binding passes -1 for none and
 * wraps user dims itself), so reductions over the last dim arrive here as ndim-1. */
nv_tensor *nv_sum(nv_tensor *x, int dim, int keepdim) { return sum_mean(NV_OP_SUM, x, dim, keepdim); }
nv_tensor *nv_mean(nv_tensor *x, int dim, int keepdim) { return sum_mean(NV_OP_MEAN, x, dim, keepdim); }

/* ---- max / min ---------------------------------------------------------------------------- */
int nv_maxmin(nv_tensor *x, int dim, int keepdim, int ismin, nv_tensor **vals, nv_tensor **idx) {
  const char *fname = ismin ? "min" : "max";
  *vals = *idx = NULL;
  if (nv_numel(x) == 0) return nv_seterr("%s: the tensor is empty", fname);
  int d = -1;
  if (dim != -1 && x->ndim > 0 && !nv_wrap_dim(fname, "dim", dim, x->ndim, &d)) return 0;
  int64_t outer = 1, len, inner = 1;
  int64_t size[NV_MAXDIM];
  int ond;
  /* positions are returned as float32, exact up to 2^24 (over all elements the backward
   * keeps the exact position itself) */
  if (d >= 0 && x->size[d] > ((int64_t)1 << 24))
    return nv_seterr("%s: dim %d has %lld elements, too many to index exactly in float32 (at most 2^24)",
                     fname, d + 1, (long long)x->size[d]);
  int64_t exact = 0;
  if (d < 0) {
    len = nv_numel(x);
    ond = 0;
  } else {
    for (int i = 0; i < d; i++) outer *= x->size[i];
    for (int i = d + 1; i < x->ndim; i++) inner *= x->size[i];
    len = x->size[d];
    keep_shape(x, d, size);
    ond = x->ndim;
  }
  nv_tensor *xc = nv_contiguous_data(x);
  if (!xc) return 0;
  nv_tensor *v = nv_empty(ond, size), *ix = v ? nv_empty(ond, size) : NULL;
  if (!ix) { nv_release(xc); nv_release(v); return 0; }
  const float *px = nv_data(xc);
  float *pv = nv_data(v), *pi = nv_data(ix);
  float sign = ismin ? -1.0f : 1.0f;
  for (int64_t o = 0; o < outer && inner == 1; o++) {
    /* a contiguous row: a branch-free (vectorizable) pass for the extremum and any NaN,
     * then a short scan for its first position */
    const float *row = px + o * len;
    float lane[16];
    int nanl[16];
    for (int k = 0; k < 16; k++) { lane[k] = row[0]; nanl[k] = 0; }
    int64_t j = 0;
    if (ismin) {
      for (; j + 16 <= len; j += 16)
        for (int k = 0; k < 16; k++) { float r = row[j + k]; lane[k] = r < lane[k] ? r : lane[k]; nanl[k] |= r != r; }
    } else {
      for (; j + 16 <= len; j += 16)
        for (int k = 0; k < 16; k++) { float r = row[j + k]; lane[k] = r > lane[k] ? r : lane[k]; nanl[k] |= r != r; }
    }
    float m = lane[0];
    int nan = 0;
    for (int k = 0; k < 16; k++) { m = ismin ? (lane[k] < m ? lane[k] : m) : (lane[k] > m ? lane[k] : m); nan |= nanl[k]; }
    for (; j < len; j++) { float r = row[j]; m = ismin ? (r < m ? r : m) : (r > m ? r : m); nan |= r != r; }
    nan |= row[0] != row[0];
    int64_t at = 0;
    if (nan) { while (row[at] == row[at]) at++; m = row[at]; }
    else while (row[at] != m) at++;
    pv[o] = m;
    pi[o] = (float)(at + 1);
    exact = at;
  }
  for (int64_t o = 0; o < outer && inner != 1; o++) {
    const float *base = px + o * len * inner;
    float *bv = pv + o * inner, *bi = pi + o * inner;
    for (int64_t i = 0; i < inner; i++) { bv[i] = base[i]; bi[i] = 1.0f; }
    for (int64_t j = 1; j < len; j++) {
      const float *row = base + j * inner;
      for (int64_t i = 0; i < inner; i++) {
        float r = row[i];
        /* NaN wins, as in PyTorch; the first extremum wins ties */
        if ((sign * r > sign * bv[i] || r != r) && bv[i] == bv[i]) { bv[i] = r; bi[i] = (float)(j + 1); }
      }
    }
  }
  nv_release(xc);
  if (d >= 0 && !keepdim) {
    if (!(v = drop_dim(v, d)) || !(ix = drop_dim(ix, d))) { nv_release(v); nv_release(ix); return 0; }
  }
  if (nv_needs_grad(1, &x)) {
    /* backward reads a private copy of the positions: the caller may change ix */
    nv_tensor *own = nv_empty_like(ix);
    nv_node *n = own ? nv_op_node(d < 0 ? NV_OP_MAXALL : NV_OP_MAXDIM, reduce_backward, 1, &x) : NULL;
    if (!n) { nv_release(own); nv_release(v); nv_release(ix); return 0; }
    nv_copy_into(own, ix);
    n->i[0] = d;
    n->i[1] = keepdim;
    n->i[2] = exact;                 /* the exact flat position, for a reduction over all */
    nv_save(n, 0, own);
    nv_release(own);
    nv_attach(v, n);
  }
  *vals = v;
  *idx = ix;
  return 1;
}

/* ---- sort / top-k positions ---------------------------------------------------------------- */
typedef struct { float v; int64_t i; } sort_item;

/* ascending, NaN last; ties by position (qsort is not stable: the position makes it so) */
static int cmp_up(const void *pa, const void *pb) {
  const sort_item *a = pa, *b = pb;
  int an = a->v != a->v, bn = b->v != b->v;
  if (an != bn) return an - bn;
  if (!an && a->v != b->v) return a->v < b->v ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}
/* descending, NaN first (the largest); ties by position */
static int cmp_down(const void *pa, const void *pb) {
  const sort_item *a = pa, *b = pb;
  int an = a->v != a->v, bn = b->v != b->v;
  if (an != bn) return bn - an;
  if (!an && a->v != b->v) return a->v > b->v ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}

nv_tensor *nv_argsort(nv_tensor *x, int dim, int descending, int64_t k) {
  const char *fname = "sort";
  if (x->ndim == 0) { nv_seterr("%s: a scalar has no dimension to sort", fname); return NULL; }
  int d;
  if (!nv_wrap_dim(fname, "dim", dim, x->ndim, &d)) return NULL;
  int64_t len = x->size[d], outer = 1, inner = 1;
  if (len > ((int64_t)1 << 24)) {
    nv_seterr("%s: dim %d has %lld elements, too many to index exactly in float32 (at most 2^24)", fname, d + 1,
              (long long)len);
    return NULL;
  }
  if (k < 0 || k > len) {
    nv_seterr("topk: k = %lld is not between 0 and the %lld elements of dim %d", (long long)k, (long long)len, d + 1);
    return NULL;
  }
  for (int i = 0; i < d; i++) outer *= x->size[i];
  for (int i = d + 1; i < x->ndim; i++) inner *= x->size[i];
  int64_t size[NV_MAXDIM];
  for (int i = 0; i < x->ndim; i++) size[i] = x->size[i];
  size[d] = k;
  nv_tensor *xc = nv_contiguous_data(x);
  if (!xc) return NULL;
  nv_tensor *ix = nv_empty(x->ndim, size);
  sort_item *items = ix && len ? malloc(sizeof *items * (size_t)len) : NULL;
  if (!ix || (len && !items)) {
    nv_release(xc);
    nv_release(ix);
    if (len && !items) nv_seterr("%s: out of memory", fname);
    return NULL;
  }
  const float *px = nv_data(xc);
  float *pi = nv_data(ix);
  for (int64_t o = 0; o < outer && len > 0; o++)   /* an empty dim: nothing to sort (qsort of NULL) */
    for (int64_t in = 0; in < inner; in++) {
      const float *src = px + o * len * inner + in;
      for (int64_t j = 0; j < len; j++) items[j].v = src[j * inner], items[j].i = j;
      qsort(items, (size_t)len, sizeof *items, descending ? cmp_down : cmp_up);
      float *dst = pi + o * k * inner + in;
      for (int64_t j = 0; j < k; j++) dst[j * inner] = (float)(items[j].i + 1);
    }
  free(items);
  nv_release(xc);
  return ix;
}

/* The writes of a scatter as picks: positions (any shape, float, 0-based, each in [0, n))
 * lists where write m (0-based, in order) goes.  Row r (0-based) of the (rounds, n) result
 * holds, per position, 1 + the write that reached it r-th (0: fewer writes), so that a
 * scatter is a gather of its sources; rounds is the most writes any position got (at least
 * 1).  The last row a position has is its last write: *last gets, per position, 1 + its last
 * write (0: none), (n).  No gradient (indices). */
nv_tensor *nv_scatter_picks(int64_t n, nv_tensor *positions, nv_tensor **last) {
  const char *fname = "scatter_picks";
  *last = NULL;
  int64_t m = nv_numel(positions);
  if (n < 0 || n > ((int64_t)1 << 24) || m > ((int64_t)1 << 24)) {
    nv_seterr("%s: %lld positions and %lld writes: at most 2^24 each (exact in float32)", fname, (long long)n, (long long)m);
    return NULL;
  }
  nv_tensor *pc = nv_contiguous_data(positions);
  if (!pc) return NULL;
  const float *p = nv_data(pc);
  int32_t *count = calloc((size_t)(n ? n : 1), sizeof *count);
  if (!count) { nv_release(pc); nv_seterr("%s: out of memory", fname); return NULL; }
  int64_t rounds = 1;
  for (int64_t j = 0; j < m; j++) {
    float v = p[j];
    if (!(v >= 0 && v < (float)n) || v != (float)(int64_t)v) {
      nv_seterr("%s: write %lld goes to position %g, not a whole number in [0, %lld)", fname, (long long)j + 1, (double)v,
                (long long)n);
      free(count); nv_release(pc);
      return NULL;
    }
    int64_t c = ++count[(int64_t)v];
    if (c > rounds) rounds = c;
  }
  if (rounds * n > ((int64_t)1 << 28)) {
    nv_seterr("%s: %lld writes to one position over %lld positions is too many", fname, (long long)rounds, (long long)n);
    free(count); nv_release(pc);
    return NULL;
  }
  int64_t size[2] = {rounds, n};
  nv_tensor *out = nv_zeros(2, size);
  nv_tensor *lt = out ? nv_zeros(1, &n) : NULL;
  if (!lt) { free(count); nv_release(pc); nv_release(out); return NULL; }
  float *po = nv_data(out), *pl = nv_data(lt);
  memset(count, 0, sizeof *count * (size_t)(n ? n : 1));
  for (int64_t j = 0; j < m; j++) {
    int64_t q = (int64_t)p[j];
    po[count[q]++ * n + q] = (float)(j + 1);
    pl[q] = (float)(j + 1);
  }
  free(count);
  nv_release(pc);
  *last = lt;
  return out;
}

/* var = sum((x - mean)^2) / (n - unbiased), composed of recorded ops so its gradient
 * comes from theirs. */
nv_tensor *nv_var(nv_tensor *x, int dim, int keepdim, int unbiased) {
  nv_tensor *m = nv_mean(x, dim, 1);
  if (!m) return NULL;
  int64_t count = nv_numel(x) / (nv_numel(m) ? nv_numel(m) : 1);
  nv_tensor *dlt = nv_binary(NV_OP_SUB, x, m);
  nv_tensor *sq = dlt ? nv_unary(NV_OP_SQUARE, dlt, 0, 0) : NULL;
  nv_tensor *s = sq ? nv_sum(sq, dim, keepdim) : NULL;
  nv_tensor *den = s ? nv_full(0, NULL, (float)(count - (unbiased ? 1 : 0))) : NULL;
  nv_tensor *v = den ? nv_binary(NV_OP_DIV, s, den) : NULL;
  nv_release(m); nv_release(dlt); nv_release(sq); nv_release(s); nv_release(den);
  return v;
}

/* logsumexp = m + log(sum(exp(x - m))), m the (constant) maximum, for stability. */
nv_tensor *nv_logsumexp(nv_tensor *x, int dim, int keepdim) {
  nv_tensor *m, *mi;
  int was = nv_set_grad_enabled(0);
  int ok = nv_maxmin(x, dim, 1, 0, &m, &mi);
  nv_set_grad_enabled(was);
  if (!ok) return NULL;
  nv_release(mi);
  /* an all -inf row would give nan: use 0 there instead */
  float *pm = nv_data(m);
  for (int64_t i = 0; i < nv_numel(m); i++) if (isinf(pm[i])) pm[i] = 0.0f;
  nv_tensor *dlt = nv_binary(NV_OP_SUB, x, m);
  nv_tensor *e = dlt ? nv_unary(NV_OP_EXP, dlt, 0, 0) : NULL;
  nv_tensor *s = e ? nv_sum(e, dim, 1) : NULL;
  nv_tensor *l = s ? nv_unary(NV_OP_LOG, s, 0, 0) : NULL;
  nv_tensor *r = l ? nv_binary(NV_OP_ADD, l, m) : NULL;
  nv_release(m); nv_release(dlt); nv_release(e); nv_release(s); nv_release(l);
  if (r && !keepdim && dim != -1) {
    nv_tensor *q = nv_squeeze(r, dim < 0 ? dim + x->ndim : dim);
    nv_release(r);
    r = q;
  } else if (r && dim == -1) {
    nv_tensor *q = nv_reshape(r, 0, NULL);
    nv_release(r);
    r = q;
  }
  return r;
}

static int reduce_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin) {
  nv_tensor *x = n->in[0];
  if (!nv_need(n, 0)) return 1;
  switch (n->op) {
  case NV_OP_SUM: case NV_OP_MEAN: {
    int d = (int)n->i[0];
    nv_tensor *g = nv_empty_like(x);
    if (!g) return 0;
    /* broadcast gout back over the reduced dim (re-inserting it when it was dropped) */
    nv_tensor gv = *gout;
    if (d >= 0 && !n->i[1]) {
      gv.ndim = x->ndim;
      for (int i = 0, k = 0; i < x->ndim; i++) {
        if (i == d) { gv.size[i] = 1; gv.stride[i] = 0; }
        else { gv.size[i] = gout->size[k]; gv.stride[i] = gout->stride[k]; k++; }
      }
    }
    nv_copy_into(g, &gv);
    if (n->op == NV_OP_MEAN) nv_scale_(g, 1.0f / (float)n->f[0]);
    gin[0] = g;
    return 1;
  }
  case NV_OP_MAXALL: {
    nv_tensor *g = nv_zeros_like(x);
    if (!g) return 0;
    nv_data(g)[n->i[2]] = nv_data(gout)[0];
    gin[0] = g;
    return 1;
  }
  case NV_OP_MAXDIM: {
    int d = (int)n->i[0];
    int64_t outer = 1, len = x->size[d], inner = 1;
    for (int i = 0; i < d; i++) outer *= x->size[i];
    for (int i = d + 1; i < x->ndim; i++) inner *= x->size[i];
    nv_tensor *g = nv_zeros_like(x);
    nv_tensor *gc = g ? nv_contiguous_data(gout) : NULL;
    nv_tensor *ic = gc ? nv_contiguous_data(n->saved[0]) : NULL;
    if (!ic) { nv_release(g); nv_release(gc); return 0; }
    float *pg = nv_data(g);
    const float *po = nv_data(gc), *pi = nv_data(ic);
    for (int64_t o = 0; o < outer; o++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t j = (int64_t)pi[o * inner + i] - 1;
        pg[(o * len + j) * inner + i] += po[o * inner + i];
      }
    nv_release(gc);
    nv_release(ic);
    gin[0] = g;
    return 1;
  }
  }
  return nv_seterr("reduce backward: unexpected op %s", n->name);
}

/* histc: counts of x's finite values in `bins` equal bins over [lo, hi] (values outside are
 * ignored; hi itself falls in the last bin), as torch.histc.  lo == hi: x's own range. */
nv_tensor *nv_histc(nv_tensor *x, int64_t bins, double lo, double hi) {
  if (bins < 1) return nv_seterr("histc: bins must be >= 1, got %lld", (long long)bins), NULL;
  if (!isfinite(lo) || !isfinite(hi)) return nv_seterr("histc: min and max must be finite"), NULL;
  nv_tensor *xc = nv_contiguous_data(x);
  if (!xc) return NULL;
  const float *p = nv_data(xc);
  int64_t n = nv_numel(xc);
  if (lo == hi) {
    double a = INFINITY, b = -INFINITY;
    for (int64_t i = 0; i < n; i++) if (isfinite(p[i])) { if (p[i] < a) a = p[i]; if (p[i] > b) b = p[i]; }
    if (a > b) { a = 0; b = 0; }
    lo = a; hi = b;
    if (lo == hi) { lo -= 1; hi += 1; }
  }
  if (!(lo < hi)) { nv_release(xc); return nv_seterr("histc: min %g must be below max %g", lo, hi), NULL; }
  nv_tensor *o = nv_zeros(1, &bins);
  if (o) {
    float *c = nv_data(o);
    double scale = (double)bins / (hi - lo);
    for (int64_t i = 0; i < n; i++) {
      double v = p[i];
      if (!(v >= lo && v <= hi)) continue;
      int64_t b = (int64_t)((v - lo) * scale);
      if (b >= bins) b = bins - 1;
      c[b] += 1.0f;
    }
  }
  nv_release(xc);
  return o;
}

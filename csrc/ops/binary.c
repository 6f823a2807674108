/*
 * binary.c — binary ops with numpy broadcasting (the NV_BINARY ops of ops.def), comparisons
 * and where, each with its backward.  Kernels run over whole innermost runs (see walk.h)
 * with the op chosen once per run, never per element.
 */
#include "ops/ops.h"
#include "core/walk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int binary_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin);

int nv_broadcast_shape(const char *fname, const nv_tensor *a, const nv_tensor *b, int *ndim,
                       int64_t *size) {
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  for (int i = 0; i < nd; i++) {
    int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
    int64_t sa = ia >= 0 ? a->size[ia] : 1, sb = ib >= 0 ? b->size[ib] : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      char x[200], y[200];
      return nv_seterr("%s: shapes %s and %s cannot be broadcast together (dimension %d: %lld vs %lld)",
                       fname, nv_shape_str(x, sizeof x, a->ndim, a->size),
                       nv_shape_str(y, sizeof y, b->ndim, b->size), i + 1, (long long)sa,
                       (long long)sb);
    }
    size[i] = sa == 1 ? sb : sa;
  }
  *ndim = nd;
  return 1;
}

/* ---- binary kernels over one run: o (stride 1) = f(a[j*sa], b[j*sb]) ------------------- */
#define BINARY_KERNEL(name, expr)                                                            \
  NV_HOT static void name(float *restrict o, const float *restrict a, const float *restrict b, \
                   int64_t n, int64_t sa, int64_t sb) {                                     \
    if (sa == 1 && sb == 1) for (int64_t j = 0; j < n; j++) { float x = a[j], y = b[j]; o[j] = (expr); } \
    else if (sa == 1 && sb == 0) { float y = b[0]; for (int64_t j = 0; j < n; j++) { float x = a[j]; o[j] = (expr); } } \
    else if (sa == 0 && sb == 1) { float x = a[0]; for (int64_t j = 0; j < n; j++) { float y = b[j]; o[j] = (expr); } } \
    else for (int64_t j = 0; j < n; j++) { float x = a[j * sa], y = b[j * sb]; o[j] = (expr); } \
  }

BINARY_KERNEL(k_add, x + y)
BINARY_KERNEL(k_sub, x - y)
BINARY_KERNEL(k_mul, x * y)
BINARY_KERNEL(k_div, x / y)
BINARY_KERNEL(k_pow, powf(x, y))
BINARY_KERNEL(k_maximum, (x != x || x >= y) ? x : y)
BINARY_KERNEL(k_minimum, (x != x || x <= y) ? x : y)
BINARY_KERNEL(k_eq, (float)(x == y))
BINARY_KERNEL(k_ne, (float)(x != y))
BINARY_KERNEL(k_lt, (float)(x < y))
BINARY_KERNEL(k_le, (float)(x <= y))
BINARY_KERNEL(k_gt, (float)(x > y))
BINARY_KERNEL(k_ge, (float)(x >= y))

typedef void (*binary_kernel)(float *, const float *, const float *, int64_t, int64_t, int64_t);

static nv_tensor *binary_raw(const char *fname, binary_kernel k, nv_tensor *a, nv_tensor *b) {
  int nd;
  int64_t size[NV_MAXDIM];
  if (!nv_broadcast_shape(fname, a, b, &nd, size)) return NULL;
  nv_tensor *o = nv_empty(nd, size);
  if (!o) return NULL;
  nv_walk w;
  nv_walk_init(&w, nd, size, 3);
  nv_walk_operand(&w, 0, o);
  nv_walk_operand(&w, 1, a);
  nv_walk_operand(&w, 2, b);
  if (nv_walk_start(&w)) {
    float *po = nv_data(o);
    const float *pa = nv_data(a), *pb = nv_data(b);
    const int parts = w.inner == nv_numel(o) ? nv_parts(w.inner) : 1;
    if (parts > 1) {   /* one long run (same shapes, or a scalar): shared among threads */
      const int64_t n = w.inner, sa = w.is[1], sb = w.is[2];
      pa += w.off[1];
      pb += w.off[2];
#pragma omp parallel for schedule(static)
      for (int q = 0; q < parts; q++) {
        int64_t lo, hi;
        nv_part(n, q, parts, &lo, &hi);
        k(po + lo, pa + lo * sa, pb + lo * sb, hi - lo, sa, sb);
      }
    } else {
      do k(po + w.off[0], pa + w.off[1], pb + w.off[2], w.inner, w.is[1], w.is[2]);
      while (nv_walk_next(&w));
    }
  }
  return o;
}

nv_tensor *nv_binary(int op, nv_tensor *a, nv_tensor *b) {
  static const binary_kernel ks[NV_OP_COUNT] = {
    [NV_OP_ADD] = k_add, [NV_OP_SUB] = k_sub, [NV_OP_MUL] = k_mul, [NV_OP_DIV] = k_div,
    [NV_OP_POW] = k_pow, [NV_OP_MAXIMUM] = k_maximum, [NV_OP_MINIMUM] = k_minimum};
  if (op < 0 || op >= NV_OP_COUNT || nv_op_kinds[op] != NV_BINARY || !ks[op]) { nv_seterr("binary: bad op"); return NULL; }
  nv_tensor *o = binary_raw(nv_op_names[op], ks[op], a, b);
  nv_tensor *in[2] = {a, b};
  if (o && nv_needs_grad(2, in)) {
    nv_node *n = nv_op_node(op, binary_backward, 2, in);
    if (!n) { nv_release(o); return NULL; }
    nv_attach(o, n);
  }
  return o;
}

nv_tensor *nv_compare(int cmp, nv_tensor *a, nv_tensor *b) {
  static const binary_kernel ks[] = {k_eq, k_ne, k_lt, k_le, k_gt, k_ge};
  static const char *names[] = {"eq", "ne", "lt", "le", "gt", "ge"};
  if (cmp < 0 || cmp > NV_CMP_GE) { nv_seterr("compare: bad comparison"); return NULL; }
  return binary_raw(names[cmp], ks[cmp], a, b);
}


void nv_scale_(nv_tensor *t, float s) {
  nv_walk w;
  nv_walk_init(&w, t->ndim, t->size, 1);
  nv_walk_operand(&w, 0, t);
  if (!nv_walk_start(&w)) return;
  float *d = nv_data(t);
  do {
    float *p = d + w.off[0];
    for (int64_t j = 0; j < w.inner; j++) p[j * w.is[0]] *= s;
  } while (nv_walk_next(&w));
}

/* where(cond, a, b) = cond != 0 ? a : b, all three broadcast together. */
nv_tensor *nv_where(nv_tensor *c, nv_tensor *a, nv_tensor *b) {
  int nd1, nd;
  int64_t s1[NV_MAXDIM], size[NV_MAXDIM];
  if (!nv_broadcast_shape("where", a, b, &nd1, s1)) return NULL;
  nv_tensor tmp = {.ndim = nd1};
  memcpy(tmp.size, s1, sizeof s1);
  if (!nv_broadcast_shape("where", c, &tmp, &nd, size)) return NULL;
  nv_tensor *o = nv_empty(nd, size);
  if (!o) return NULL;
  /* two passes of the 3-operand walk: copy b, then overwrite from a where c holds */
  if (!nv_copy_into(o, b)) { nv_release(o); return NULL; }
  {
    nv_walk w;
    nv_walk_init(&w, nd, size, 3);
    nv_walk_operand(&w, 0, o);
    nv_walk_operand(&w, 1, c);
    nv_walk_operand(&w, 2, a);
    if (nv_walk_start(&w)) {
      float *po = nv_data(o);
      const float *pc = nv_data(c), *pa = nv_data(a);
      do {
        float *op = po + w.off[0];
        const float *cp = pc + w.off[1], *ap = pa + w.off[2];
        for (int64_t j = 0; j < w.inner; j++)
          if (cp[j * w.is[1]] != 0.0f) op[j * w.is[0]] = ap[j * w.is[2]];
      } while (nv_walk_next(&w));
    }
  }
  nv_tensor *in[3] = {c, a, b};
  if (nv_needs_grad(2, in + 1)) {
    nv_node *n = nv_op_node(NV_OP_WHERE, binary_backward, 3, in);
    if (!n) { nv_release(o); return NULL; }
    nv_attach(o, n);
  }
  return o;
}

/* gradient of a broadcast operand: g summed down to t's shape */
static nv_tensor *reduce_for(nv_tensor *g, nv_tensor *t) {
  if (nv_same_shape(g, t)) return nv_contiguous_data(g);
  return nv_sum_to(g, t->ndim, t->size);
}

static nv_tensor *mul_raw(nv_tensor *a, nv_tensor *b) { return binary_raw("mul", k_mul, a, b); }
static nv_tensor *div_raw(nv_tensor *a, nv_tensor *b) { return binary_raw("div", k_div, a, b); }

static int binary_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin) {
  nv_tensor *a = n->in[0], *b = n->nin > 1 ? n->in[1] : NULL;
  int op = n->op;
  nv_tensor *ta = NULL, *tb = NULL;   /* full-shape gradients before reduction */
  switch (op) {
  case NV_OP_ADD:
    if (nv_need(n, 0)) ta = nv_retain(gout);
    if (nv_need(n, 1)) tb = nv_retain(gout);
    break;
  case NV_OP_SUB:
    if (nv_need(n, 0)) ta = nv_retain(gout);
    if (nv_need(n, 1)) tb = nv_unary(NV_OP_NEG, gout, 0, 0);
    break;
  case NV_OP_MUL:
    if (nv_need(n, 0)) ta = mul_raw(gout, b);
    if (nv_need(n, 1)) tb = mul_raw(gout, a);
    break;
  case NV_OP_DIV:   /* d(a/b) = da/b - a/b^2 db = da/b - out/b db */
    if (nv_need(n, 0)) ta = div_raw(gout, b);
    if (nv_need(n, 1)) {
      nv_tensor *q = div_raw(out, b);
      tb = q ? mul_raw(gout, q) : NULL;
      if (tb) nv_scale_(tb, -1.0f);
      nv_release(q);
    }
    break;
  case NV_OP_POW: {  /* d(a^b) = b a^(b-1) da + a^b log(a) db */
    if (nv_need(n, 0)) {
      nv_tensor *one = nv_full(0, NULL, 1.0f);
      nv_tensor *bm1 = one ? binary_raw("pow", k_sub, b, one) : NULL;
      nv_tensor *p = bm1 ? binary_raw("pow", k_pow, a, bm1) : NULL;
      nv_tensor *q = p ? mul_raw(p, b) : NULL;
      ta = q ? mul_raw(gout, q) : NULL;
      nv_release(one); nv_release(bm1); nv_release(p); nv_release(q);
    }
    if (nv_need(n, 1)) {
      nv_tensor *la = nv_unary(NV_OP_LOG, a, 0, 0);
      nv_tensor *q = la ? mul_raw(out, la) : NULL;
      tb = q ? mul_raw(gout, q) : NULL;
      nv_release(la); nv_release(q);
    }
    break;
  }
  case NV_OP_MAXIMUM: case NV_OP_MINIMUM: {
    /* the gradient goes to the larger (smaller) operand; ties split it evenly */
    nv_tensor *gt = binary_raw("max", op == NV_OP_MAXIMUM ? k_gt : k_lt, a, b);
    nv_tensor *eq = gt ? binary_raw("max", k_eq, a, b) : NULL;
    if (eq) nv_scale_(eq, 0.5f);
    nv_tensor *wa = eq ? binary_raw("max", k_add, gt, eq) : NULL;
    if (wa && nv_need(n, 0)) ta = mul_raw(gout, wa);
    if (wa && nv_need(n, 1)) {
      nv_tensor *one = nv_full(0, NULL, 1.0f);
      nv_tensor *wb = one ? binary_raw("max", k_sub, one, wa) : NULL;
      tb = wb ? mul_raw(gout, wb) : NULL;
      nv_release(one); nv_release(wb);
    }
    nv_release(gt); nv_release(eq); nv_release(wa);
    break;
  }
  case NV_OP_WHERE: {
    nv_tensor *c = n->in[0], *x = n->in[1], *y = n->in[2];
    nv_tensor *zero = nv_full(0, NULL, 0.0f);
    if (!zero) return 0;
    if (nv_need(n, 1)) {
      nv_tensor *t = nv_where(c, gout, zero);
      gin[1] = t ? reduce_for(t, x) : NULL;
      nv_release(t);
      if (!gin[1]) { nv_release(zero); return 0; }
    }
    if (nv_need(n, 2)) {
      nv_tensor *t = nv_where(c, zero, gout);
      gin[2] = t ? reduce_for(t, y) : NULL;
      nv_release(t);
      if (!gin[2]) { nv_release(zero); return 0; }
    }
    nv_release(zero);
    return 1;
  }
  }
  int ok = 1;
  if (nv_need(n, 0)) { gin[0] = ta ? reduce_for(ta, a) : NULL; ok &= gin[0] != NULL; }
  if (nv_need(n, 1)) { gin[1] = tb ? reduce_for(tb, b) : NULL; ok &= gin[1] != NULL; }
  nv_release(ta);
  nv_release(tb);
  return ok;
}

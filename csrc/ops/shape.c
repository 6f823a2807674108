/*
 * shape.c — views (view/reshape, transpose, permute, narrow, select, squeeze, unsqueeze,
 * expand), copies (clone, contiguous, detach), gather, index_select, cat and stack.
 *
 * Every view op records one NV_OP_STRIDED node holding its kind and parameters; its
 * backward "replays" the same view on a zero tensor of the input's shape and copies the
 * incoming gradient through it.  One mechanism, exact for every view.
 */
#include "ops/ops.h"

#include <stdlib.h>
#include <string.h>

static int shape_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin);

enum { K_VIEW, K_TRANSPOSE, K_PERMUTE, K_NARROW, K_SELECT };

static char *shp(char *buf, size_t n, const nv_tensor *t) { return nv_shape_str(buf, n, t->ndim, t->size); }

/* Strides for viewing t with shape ns without copying (PyTorch's rule: each run of
 * dimensions that is contiguous in t may be split or merged freely).  1 = viewable. */
static int view_strides(const nv_tensor *t, int nd, const int64_t *ns, int64_t *nst) {
  int64_t numel = nv_numel(t);
  if (numel == 0 || t->ndim == 0) {
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) { nst[i] = s; s *= ns[i] ? ns[i] : 1; }
    return 1;
  }
  int vd = nd - 1;
  int64_t base = t->stride[t->ndim - 1], tn = 1, vn = 1;
  for (int td = t->ndim - 1; td >= 0; td--) {
    tn *= t->size[td];
    if (td == 0 || (t->size[td - 1] != 1 && t->stride[td - 1] != tn * base)) {
      while (vd >= 0 && (vn < tn || ns[vd] == 1)) {
        nst[vd] = vn * base;
        vn *= ns[vd];
        vd--;
      }
      if (vn != tn) return 0;
      if (td > 0) { base = t->stride[td - 1]; tn = 1; vn = 1; }
    }
  }
  return vd == -1;
}

/* Fills sizes for a view/reshape, resolving one -1; 1/0. */
static int infer_shape(const char *fname, const nv_tensor *x, int nd, const int64_t *in, int64_t *out) {
  int64_t known = 1, numel = nv_numel(x);
  int infer = -1;
  char a[200], b[200];
  if (nd > NV_MAXDIM) return nv_seterr("%s: at most %d dimensions", fname, NV_MAXDIM);
  for (int i = 0; i < nd; i++) {
    if (in[i] == -1) {
      if (infer >= 0) return nv_seterr("%s: only one size may be -1", fname);
      infer = i;
    } else if (in[i] < 0) {
      return nv_seterr("%s: size %lld is negative", fname, (long long)in[i]);
    } else if (__builtin_mul_overflow(known, in[i], &known) || known > ((int64_t)1 << 40)) {
      return nv_seterr("%s: shape %s is too large", fname, nv_shape_str(a, sizeof a, nd, in));
    }
    out[i] = in[i];
  }
  if (infer >= 0) {
    if (known == 0 || numel % known) goto bad;
    out[infer] = numel / known;
  } else if (known != numel) goto bad;
  return 1;
bad:
  return nv_seterr("%s: shape %s is invalid for a tensor of %lld elements %s", fname,
                   nv_shape_str(a, sizeof a, nd, in), (long long)numel, shp(b, sizeof b, x));
}

/* The view itself, without graph; params in p (as stored in the node's i[1..]). */
static nv_tensor *view_raw(int kind, nv_tensor *x, const int64_t *p) {
  int64_t size[NV_MAXDIM], stride[NV_MAXDIM];
  int nd = x->ndim;
  int64_t off = x->off;
  memcpy(size, x->size, sizeof size);
  memcpy(stride, x->stride, sizeof stride);
  switch (kind) {
  case K_VIEW:
    nd = (int)p[0];
    for (int i = 0; i < nd; i++) size[i] = p[1 + i];
    if (!view_strides(x, nd, size, stride)) {
      char a[200], b[200];
      nv_seterr("view: shape %s is not compatible with the strides of %s (use reshape, or contiguous first)",
                nv_shape_str(a, sizeof a, nd, size), shp(b, sizeof b, x));
      return NULL;
    }
    break;
  case K_TRANSPOSE: {
    int d1 = (int)p[0], d2 = (int)p[1];
    size[d1] = x->size[d2]; size[d2] = x->size[d1];
    stride[d1] = x->stride[d2]; stride[d2] = x->stride[d1];
    break;
  }
  case K_PERMUTE:
    for (int i = 0; i < nd; i++) { size[i] = x->size[p[i]]; stride[i] = x->stride[p[i]]; }
    break;
  case K_NARROW:
    off += p[1] * x->stride[p[0]];
    size[p[0]] = p[2];
    break;
  case K_SELECT: {
    int d = (int)p[0];
    off += p[1] * x->stride[d];
    for (int i = d; i < nd - 1; i++) { size[i] = size[i + 1]; stride[i] = stride[i + 1]; }
    nd--;
    break;
  }
  }
  return nv_from_storage(x->st, off, nd, size, stride);
}

static nv_tensor *view_op(int kind, nv_tensor *x, const int64_t *p, int np) {
  nv_tensor *o = view_raw(kind, x, p);
  if (o && nv_needs_grad(1, &x)) {
    nv_node *n = nv_op_node(NV_OP_STRIDED, shape_backward, 1, &x);
    if (!n) { nv_release(o); return NULL; }
    n->i[0] = kind;
    for (int k = 0; k < np; k++) n->i[1 + k] = p[k];
    nv_attach(o, n);
  }
  return o;
}

nv_tensor *nv_view(nv_tensor *x, int ndim, const int64_t *size) {
  int64_t p[1 + NV_MAXDIM];
  if (!infer_shape("view", x, ndim, size, p + 1)) return NULL;
  p[0] = ndim;
  return view_op(K_VIEW, x, p, 1 + ndim);
}

nv_tensor *nv_reshape(nv_tensor *x, int ndim, const int64_t *size) {
  int64_t p[1 + NV_MAXDIM], st[NV_MAXDIM];
  if (!infer_shape("reshape", x, ndim, size, p + 1)) return NULL;
  p[0] = ndim;
  if (view_strides(x, ndim, p + 1, st)) return view_op(K_VIEW, x, p, 1 + ndim);
  nv_tensor *c = nv_clone(x);
  if (!c) return NULL;
  nv_tensor *o = view_op(K_VIEW, c, p, 1 + ndim);
  nv_release(c);
  return o;
}

nv_tensor *nv_transpose(nv_tensor *x, int d1, int d2) {
  int a, b;
  if (!nv_wrap_dim("transpose", "dim1", d1, x->ndim, &a) || !nv_wrap_dim("transpose", "dim2", d2, x->ndim, &b))
    return NULL;
  if (x->ndim == 0) return view_op(K_VIEW, x, (int64_t[]){0}, 1);
  int64_t p[2] = {a, b};
  return view_op(K_TRANSPOSE, x, p, 2);
}

nv_tensor *nv_permute(nv_tensor *x, const int *perm) {
  int64_t p[NV_MAXDIM];
  int seen[NV_MAXDIM] = {0};
  for (int i = 0; i < x->ndim; i++) {
    if (perm[i] < 0 || perm[i] >= x->ndim || seen[perm[i]]++) {
      char a[200];
      return nv_seterr("permute: the dims must be a permutation of 1..%d for %s", x->ndim, shp(a, sizeof a, x)), NULL;
    }
    p[i] = perm[i];
  }
  return view_op(K_PERMUTE, x, p, x->ndim);
}

nv_tensor *nv_narrow(nv_tensor *x, int d, int64_t start, int64_t len) {
  int dd;
  char a[200];
  if (!nv_wrap_dim("narrow", "dim", d, x->ndim, &dd)) return NULL;
  if (x->ndim == 0) return nv_seterr("narrow: cannot narrow a scalar"), NULL;
  if (start < 0 || len < 0 || start > x->size[dd] || len > x->size[dd] - start)
    return nv_seterr("narrow: start %lld and length %lld exceed size %lld of dimension %d of %s",
                     (long long)start + 1, (long long)len, (long long)x->size[dd], dd + 1,
                     shp(a, sizeof a, x)), NULL;
  int64_t p[3] = {dd, start, len};
  return view_op(K_NARROW, x, p, 3);
}

nv_tensor *nv_select(nv_tensor *x, int d, int64_t i) {
  int dd;
  char a[200];
  if (x->ndim == 0) return nv_seterr("select: cannot select from a scalar"), NULL;
  if (!nv_wrap_dim("select", "dim", d, x->ndim, &dd)) return NULL;
  if (i < 0 || i >= x->size[dd])
    return nv_seterr("select: index %lld is out of range for dimension %d of %s (size %lld)",
                     (long long)i + 1, dd + 1, shp(a, sizeof a, x), (long long)x->size[dd]), NULL;
  int64_t p[2] = {dd, i};
  return view_op(K_SELECT, x, p, 2);
}

nv_tensor *nv_unsqueeze(nv_tensor *x, int d) {
  int dd;
  if (!nv_wrap_dim("unsqueeze", "dim", d, x->ndim + 1, &dd)) return NULL;
  if (x->ndim >= NV_MAXDIM) return nv_seterr("unsqueeze: at most %d dimensions", NV_MAXDIM), NULL;
  int64_t p[1 + NV_MAXDIM];
  p[0] = x->ndim + 1;
  for (int i = 0, k = 0; i <= x->ndim; i++) p[1 + i] = i == dd ? 1 : x->size[k++];
  return view_op(K_VIEW, x, p, 1 + x->ndim + 1);
}

nv_tensor *nv_squeeze(nv_tensor *x, int d) {
  int64_t p[1 + NV_MAXDIM];
  int nd = 0, dd = -1;
  if (d >= 0 && x->ndim > 0 && !nv_wrap_dim("squeeze", "dim", d, x->ndim, &dd)) return NULL;
  for (int i = 0; i < x->ndim; i++)
    if (!(x->size[i] == 1 && (dd < 0 || dd == i))) p[1 + nd++] = x->size[i];
  p[0] = nd;
  return view_op(K_VIEW, x, p, 1 + nd);
}

nv_tensor *nv_expand(nv_tensor *x, int ndim, const int64_t *size) {
  char a[200], b[200];
  if (ndim < x->ndim || ndim > NV_MAXDIM) goto bad;
  int64_t sz[NV_MAXDIM], st[NV_MAXDIM];
  for (int i = 0; i < ndim; i++) {
    int j = i - (ndim - x->ndim);
    int64_t want = size[i];
    if (j < 0) {
      if (want < 0) goto bad;
      sz[i] = want; st[i] = 0;
    } else {
      if (want == -1) want = x->size[j];
      if (x->size[j] == want) { sz[i] = want; st[i] = x->stride[j]; }
      else if (x->size[j] == 1 && want >= 0) { sz[i] = want; st[i] = 0; }
      else goto bad;
    }
  }
  nv_tensor *o = nv_from_storage(x->st, x->off, ndim, sz, st);
  if (o && nv_needs_grad(1, &x)) {
    nv_node *n = nv_op_node(NV_OP_EXPAND, shape_backward, 1, &x);
    if (!n) { nv_release(o); return NULL; }
    nv_attach(o, n);
  }
  return o;
bad:
  return nv_seterr("expand: %s cannot be expanded to %s", shp(a, sizeof a, x),
                   nv_shape_str(b, sizeof b, ndim, size)), NULL;
}

nv_tensor *nv_clone(nv_tensor *x) {
  nv_tensor *o = nv_empty_like(x);
  if (!o) return NULL;
  nv_copy_into(o, x);
  if (nv_needs_grad(1, &x)) {
    nv_node *n = nv_op_node(NV_OP_COPY, shape_backward, 1, &x);
    if (!n) { nv_release(o); return NULL; }
    nv_attach(o, n);
  }
  return o;
}

nv_tensor *nv_contiguous(nv_tensor *x) { return nv_is_contiguous(x) ? nv_retain(x) : nv_clone(x); }

nv_tensor *nv_detach(nv_tensor *x) { return nv_from_storage(x->st, x->off, x->ndim, x->size, x->stride); }

/* ---- gather / index_select -------------------------------------------------------------- */
static nv_tensor *copy_raw(const nv_tensor *t) {   /* a private copy, no graph */
  nv_tensor *c = nv_empty_like(t);
  if (c) nv_copy_into(c, t);
  return c;
}

static int check_index(const char *fname, float v, int64_t limit, int64_t *out) {
  if (!((double)v >= 1.0 && (double)v <= (double)limit) || v != (float)(int64_t)v)
    return nv_seterr("%s: index %g is out of range 1..%lld", fname, (double)v, (long long)limit);
  *out = (int64_t)v - 1;
  return 1;
}

/* out[..., j, ...] = x[..., idx[..., j, ...], ...] along d; idx has x's rank. */
nv_tensor *nv_gather(nv_tensor *x, int d, nv_tensor *idx) {
  char a[200], b[200];
  int dd;
  if (!nv_wrap_dim("gather", "dim", d, x->ndim, &dd)) return NULL;
  if (idx->ndim != x->ndim) goto bad;
  for (int i = 0; i < x->ndim; i++) if (i != dd && idx->size[i] > x->size[i]) goto bad;
  nv_tensor *ic = nv_contiguous_data(idx);
  if (!ic) return NULL;
  const float *pi = nv_data(ic);
  int64_t n = nv_numel(idx), pos[NV_MAXDIM] = {0};
  for (int64_t k = 0; k < n; k++) {
    int64_t j;
    if (!check_index("gather", pi[k], x->size[dd], &j)) { nv_release(ic); return NULL; }
  }
  nv_tensor *o = nv_empty(idx->ndim, idx->size);
  if (!o) { nv_release(ic); return NULL; }
  float *po = nv_data(o);
  const float *px = nv_data(x);
  for (int64_t k = 0; k < n; k++) {
    int64_t off = 0;
    for (int i = 0; i < x->ndim; i++)
      off += (i == dd ? (int64_t)pi[k] - 1 : pos[i]) * x->stride[i];
    po[k] = px[off];
    for (int i = x->ndim - 1; i >= 0 && ++pos[i] == idx->size[i]; i--) pos[i] = 0;
  }
  if (nv_needs_grad(1, &x)) {
    /* backward reads a private copy: the caller may change idx afterwards */
    nv_tensor *own = ic == idx ? copy_raw(idx) : nv_retain(ic);
    nv_tensor *in[2] = {x, own};
    nv_node *nd = own ? nv_op_node(NV_OP_GATHER, shape_backward, 2, in) : NULL;
    nv_release(own);
    if (!nd) { nv_release(ic); nv_release(o); return NULL; }
    nd->i[0] = dd;
    nv_attach(o, nd);
  }
  nv_release(ic);
  return o;
bad:
  return nv_seterr("gather: index %s does not fit input %s along dim %d", shp(a, sizeof a, idx),
                   shp(b, sizeof b, x), dd + 1), NULL;
}

nv_tensor *nv_index_select(nv_tensor *x, int d, nv_tensor *idx) {
  char a[200];
  int dd;
  if (!nv_wrap_dim("index_select", "dim", d, x->ndim, &dd)) return NULL;
  if (idx->ndim > 1) return nv_seterr("index_select: index must be 1-D, got %s", shp(a, sizeof a, idx)), NULL;
  nv_tensor *ic = nv_contiguous_data(idx);
  if (!ic) return NULL;
  int64_t m = nv_numel(idx), j;
  for (int64_t k = 0; k < m; k++)
    if (!check_index("index_select", nv_data(ic)[k], x->size[dd], &j)) { nv_release(ic); return NULL; }
  int64_t size[NV_MAXDIM];
  memcpy(size, x->size, sizeof size);
  size[dd] = m;
  nv_tensor *o = nv_empty(x->ndim, size);
  for (int64_t k = 0; o && k < m; k++) {
    nv_tensor *src = view_raw(K_SELECT, x, (int64_t[]){dd, (int64_t)nv_data(ic)[k] - 1});
    nv_tensor *dst = view_raw(K_SELECT, o, (int64_t[]){dd, k});
    if (src && dst) nv_copy_into(dst, src);
    nv_release(src);
    nv_release(dst);
  }
  if (o && nv_needs_grad(1, &x)) {
    nv_tensor *own = ic == idx ? copy_raw(idx) : nv_retain(ic);   /* private: see gather */
    nv_tensor *in[2] = {x, own};
    nv_node *nd = own ? nv_op_node(NV_OP_INDEX_SELECT, shape_backward, 2, in) : NULL;
    nv_release(own);
    if (!nd) { nv_release(ic); nv_release(o); return NULL; }
    nd->i[0] = dd;
    nv_attach(o, nd);
  }
  nv_release(ic);
  return o;
}

/* ---- cat / stack ---------------------------------------------------------------------------- */
nv_tensor *nv_cat(int n, nv_tensor *const *ts, int d) {
  char a[200], b[200];
  if (n < 1) return nv_seterr("cat: expected a non-empty list of tensors"), NULL;
  int dd;
  if (ts[0]->ndim == 0) return nv_seterr("cat: cannot concatenate scalars (use stack)"), NULL;
  if (!nv_wrap_dim("cat", "dim", d, ts[0]->ndim, &dd)) return NULL;
  int64_t size[NV_MAXDIM];
  memcpy(size, ts[0]->size, sizeof size);
  size[dd] = 0;
  for (int k = 0; k < n; k++) {
    const nv_tensor *t = ts[k];
    int same = t->ndim == ts[0]->ndim;
    for (int i = 0; same && i < t->ndim; i++) if (i != dd && t->size[i] != ts[0]->size[i]) same = 0;
    if (!same)
      return nv_seterr("cat: tensor %d has shape %s, tensor 1 has %s: all sizes but dim %d must match", k + 1,
                       shp(a, sizeof a, t), shp(b, sizeof b, ts[0]), dd + 1), NULL;
    size[dd] += t->size[dd];
  }
  nv_tensor *o = nv_empty(ts[0]->ndim, size);
  if (!o) return NULL;
  int64_t off = 0;
  for (int k = 0; k < n; k++) {
    nv_tensor *dst = view_raw(K_NARROW, o, (int64_t[]){dd, off, ts[k]->size[dd]});
    if (!dst) { nv_release(o); return NULL; }
    nv_copy_into(dst, ts[k]);
    nv_release(dst);
    off += ts[k]->size[dd];
  }
  if (nv_needs_grad(n, ts)) {
    nv_node *nd = nv_op_node(NV_OP_CAT, shape_backward, n, ts);
    if (!nd) { nv_release(o); return NULL; }
    nd->i[0] = dd;
    nv_attach(o, nd);
  }
  return o;
}

nv_tensor *nv_stack(int n, nv_tensor *const *ts, int d) {
  char a[200], b[200];
  if (n < 1) return nv_seterr("stack: expected a non-empty list of tensors"), NULL;
  for (int k = 1; k < n; k++)
    if (!nv_same_shape(ts[k], ts[0]))
      return nv_seterr("stack: tensor %d has shape %s, tensor 1 has %s: all shapes must match", k + 1,
                       shp(a, sizeof a, ts[k]), shp(b, sizeof b, ts[0])), NULL;
  int dd;
  if (!nv_wrap_dim("stack", "dim", d, ts[0]->ndim + 1, &dd)) return NULL;
  nv_tensor **u = calloc((size_t)n, sizeof *u);
  if (!u) return nv_seterr("out of memory"), NULL;
  nv_tensor *o = NULL;
  int ok = 1;
  for (int k = 0; k < n && ok; k++) ok = (u[k] = nv_unsqueeze(ts[k], dd)) != NULL;
  if (ok) o = nv_cat(n, u, dd);
  for (int k = 0; k < n; k++) nv_release(u[k]);
  free(u);
  return o;
}

/* ---- backward ------------------------------------------------------------------------------ */
static int shape_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin) {
  nv_tensor *x = n->in[0];
  switch (n->op) {
  case NV_OP_STRIDED: {
    if (!nv_need(n, 0)) return 1;
    nv_tensor *g = nv_zeros_like(x);
    nv_tensor *v = g ? view_raw((int)n->i[0], g, n->i + 1) : NULL;
    if (!v) { nv_release(g); return 0; }
    nv_copy_into(v, gout);
    nv_release(v);
    gin[0] = g;
    return 1;
  }
  case NV_OP_EXPAND:
    if (nv_need(n, 0)) return (gin[0] = nv_sum_to(gout, x->ndim, x->size)) != NULL;
    return 1;
  case NV_OP_COPY:
    if (nv_need(n, 0)) gin[0] = nv_retain(gout);
    return 1;
  case NV_OP_GATHER: {
    if (!nv_need(n, 0)) return 1;
    nv_tensor *idx = n->in[1];
    int dd = (int)n->i[0];
    nv_tensor *g = nv_zeros_like(x);
    nv_tensor *ic = g ? nv_contiguous_data(idx) : NULL;
    if (!ic) { nv_release(g); return 0; }
    const float *pi = nv_data(ic), *pg = nv_data(gout);
    float *px = nv_data(g);
    int64_t cnt = nv_numel(idx), pos[NV_MAXDIM] = {0};
    for (int64_t k = 0; k < cnt; k++) {
      int64_t off = 0;
      for (int i = 0; i < x->ndim; i++) off += (i == dd ? (int64_t)pi[k] - 1 : pos[i]) * g->stride[i];
      px[off] += pg[k];
      for (int i = x->ndim - 1; i >= 0 && ++pos[i] == idx->size[i]; i--) pos[i] = 0;
    }
    nv_release(ic);
    gin[0] = g;
    return 1;
  }
  case NV_OP_INDEX_SELECT: {
    if (!nv_need(n, 0)) return 1;
    nv_tensor *idx = n->in[1];
    int dd = (int)n->i[0];
    nv_tensor *g = nv_zeros_like(x);
    nv_tensor *ic = g ? nv_contiguous_data(idx) : NULL;
    if (!ic) { nv_release(g); return 0; }
    for (int64_t k = 0; k < nv_numel(idx); k++) {
      nv_tensor *dst = view_raw(K_SELECT, g, (int64_t[]){dd, (int64_t)nv_data(ic)[k] - 1});
      nv_tensor *src = view_raw(K_SELECT, gout, (int64_t[]){dd, k});
      if (dst && src) nv_add_into(dst, src);
      nv_release(dst);
      nv_release(src);
    }
    nv_release(ic);
    gin[0] = g;
    return 1;
  }
  case NV_OP_CAT: {
    int dd = (int)n->i[0];
    int64_t off = 0;
    for (int k = 0; k < n->nin; k++) {
      nv_tensor *t = n->in[k];
      if (nv_need(n, k)) {
        nv_tensor *v = view_raw(K_NARROW, gout, (int64_t[]){dd, off, t->size[dd]});
        gin[k] = v ? nv_empty_like(v) : NULL;   /* a copy: a view would alias gout */
        if (gin[k]) nv_copy_into(gin[k], v);
        nv_release(v);
        if (!gin[k]) return 0;
      }
      off += t->size[dd];
    }
    return 1;
  }
  }
  return nv_seterr("shape backward: unexpected op %s", n->name);
}

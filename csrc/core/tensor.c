/*
 * tensor.c — tensor headers over storages: reference counting, creation, shape predicates,
 * and the strided copy and accumulation that every op and autograd use.
 */
#include "core/nv.h"
#include "core/walk.h"

#include <stdlib.h>
#include <string.h>

/* ---- tensors --------------------------------------------------------------------------- */
nv_tensor *nv_retain(nv_tensor *t) {
  if (t) t->refcount++;
  return t;
}

void nv_release(nv_tensor *t) {
  if (!t || --t->refcount > 0) return;
  nv_stats_tensor(-1);
  nv_storage_release(t->st);
  nv_release(t->grad);
  nv_node_release(t->fn);
  free(t);
}

static nv_tensor *header_new(nv_storage *st, int64_t off, int ndim, const int64_t *size,
                             const int64_t *stride) {
  nv_tensor *t = calloc(1, sizeof *t);
  if (!t) { nv_seterr("out of memory"); return NULL; }
  t->st = st;
  t->off = off;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) { t->size[i] = size[i]; t->stride[i] = stride[i]; }
  t->refcount = 1;
  nv_stats_tensor(1);
  return t;
}

nv_tensor *nv_from_storage(nv_storage *st, int64_t off, int ndim, const int64_t *size,
                           const int64_t *stride) {
  int64_t n;
  if (!nv_check_numel(ndim, size, &n)) return NULL;
  nv_tensor *t = header_new(st, off, ndim, size, stride);
  if (t) st->refcount++;
  return t;
}

nv_tensor *nv_empty(int ndim, const int64_t *size) {
  int64_t n = 0;
  if (!nv_check_numel(ndim, size, &n)) return NULL;
  nv_storage *st = nv_storage_new(n);
  if (!st) return NULL;
  int64_t stride[NV_MAXDIM];
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) { stride[i] = s; s *= size[i]; }
  nv_tensor *t = header_new(st, 0, ndim, size, stride);
  if (!t) nv_storage_release(st);
  return t;
}

nv_tensor *nv_full(int ndim, const int64_t *size, float v) {
  nv_tensor *t = nv_empty(ndim, size);
  if (!t) return NULL;
  float *d = nv_data(t);
  int64_t n = nv_numel(t);
  if (v == 0.0f) memset(d, 0, (size_t)n * sizeof(float));
  else for (int64_t i = 0; i < n; i++) d[i] = v;
  return t;
}

nv_tensor *nv_zeros(int ndim, const int64_t *size) { return nv_full(ndim, size, 0.0f); }
nv_tensor *nv_empty_like(const nv_tensor *t) { return nv_empty(t->ndim, t->size); }
nv_tensor *nv_zeros_like(const nv_tensor *t) { return nv_zeros(t->ndim, t->size); }

int64_t nv_numel(const nv_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->size[i];
  return n;
}

int nv_is_contiguous(const nv_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->size[i] != 1 && t->stride[i] != s) return 0;
    s *= t->size[i];
  }
  return 1;
}

int nv_same_shape(const nv_tensor *a, const nv_tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->size[i] != b->size[i]) return 0;
  return 1;
}

/* dst = src (add 0) or dst += src (add 1), src broadcast to the shape of dst, any strides;
 * fname names the caller in the message when src does not broadcast. */
static int into(nv_tensor *dst, const nv_tensor *src, int add, const char *fname) {
  int ok = src->ndim <= dst->ndim;
  for (int i = 0; ok && i < src->ndim; i++) {
    int64_t s = src->size[src->ndim - 1 - i], d = dst->size[dst->ndim - 1 - i];
    if (s != d && s != 1) ok = 0;
  }
  if (!ok) {
    char a[200], b[200];
    return nv_seterr("%s: source %s cannot be broadcast to destination %s", fname,
                     nv_shape_str(a, sizeof a, src->ndim, src->size),
                     nv_shape_str(b, sizeof b, dst->ndim, dst->size));
  }
  nv_walk w;
  nv_walk_init(&w, dst->ndim, dst->size, 2);
  nv_walk_operand(&w, 0, dst);
  nv_walk_operand(&w, 1, src);
  if (!nv_walk_start(&w)) return 1;
  float *d = nv_data(dst);
  const float *s = nv_data(src);
  int64_t n = w.inner, sd = w.is[0], ss = w.is[1];
  do {
    float *dp = d + w.off[0];
    const float *sp = s + w.off[1];
    if (add) {
      if (sd == 1 && ss == 1) for (int64_t j = 0; j < n; j++) dp[j] += sp[j];
      else for (int64_t j = 0; j < n; j++) dp[j * sd] += sp[j * ss];
    } else {
      if (sd == 1 && ss == 1) memmove(dp, sp, (size_t)n * sizeof(float));
      else if (ss == 0) { float v = *sp; for (int64_t j = 0; j < n; j++) dp[j * sd] = v; }
      else for (int64_t j = 0; j < n; j++) dp[j * sd] = sp[j * ss];
    }
  } while (nv_walk_next(&w));
  return 1;
}

int nv_copy_into(nv_tensor *dst, const nv_tensor *src) { return into(dst, src, 0, "copy"); }

void nv_fill_raw(nv_tensor *t, float v) {
  int64_t sz0 = 0;
  nv_tensor *s = nv_full(0, &sz0, v);
  if (!s) return;
  nv_copy_into(t, s);
  nv_release(s);
}

nv_tensor *nv_contiguous_data(nv_tensor *t) {
  if (nv_is_contiguous(t)) return nv_retain(t);
  nv_tensor *c = nv_empty(t->ndim, t->size);
  if (!c) return NULL;
  nv_copy_into(c, t);
  return c;
}

/* dst += src, src broadcast to dst (raw, no graph): gradient accumulation uses it. */
int nv_add_into(nv_tensor *dst, const nv_tensor *src) { return into(dst, src, 1, "add_"); }

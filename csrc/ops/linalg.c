/*
 * linalg.c — matmul for 1-D, 2-D and batched operands (batch dims broadcast), every
 * product one nv_gemm call per batch entry.  An operand whose last two dims have unit
 * stride in either direction goes to sgemm as it is (transposed or not): no copy.
 */
#include "ops/ops.h"

#include <stdlib.h>
#include <string.h>

static int matmul_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin);

/* How a (..., R, C) operand reaches gemm: transposed flag and leading dimension. */
static int gemm_layout(const nv_tensor *t, int *trans, int *ld) {
  int64_t r = t->size[t->ndim - 2], c = t->size[t->ndim - 1];
  int64_t sr = t->stride[t->ndim - 2], sc = t->stride[t->ndim - 1];
  if ((sc == 1 || c == 1) && sr >= (c > 1 ? c : 1)) { *trans = 0; *ld = (int)(sr ? sr : 1); return 1; }
  if ((sr == 1 || r == 1) && sc >= (r > 1 ? r : 1)) { *trans = 1; *ld = (int)(sc ? sc : 1); return 1; }
  return 0;
}

nv_tensor *nv_matmul_raw(nv_tensor *a, nv_tensor *b) {
  char x[200], y[200];
  int64_t M = a->size[a->ndim - 2], K = a->size[a->ndim - 1];
  int64_t K2 = b->size[b->ndim - 2], N = b->size[b->ndim - 1];
  if (K != K2)
    return nv_seterr("matmul: %s and %s cannot be multiplied: inner sizes %lld and %lld differ",
                     nv_shape_str(x, sizeof x, a->ndim, a->size), nv_shape_str(y, sizeof y, b->ndim, b->size),
                     (long long)K, (long long)K2), NULL;
  if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX) return nv_seterr("matmul: matrix too large"), NULL;
  /* broadcast batch dims */
  int ba = a->ndim - 2, bb = b->ndim - 2, nb = ba > bb ? ba : bb;
  int64_t bsize[NV_MAXDIM], size[NV_MAXDIM];
  for (int i = 0; i < nb; i++) {
    int ia = i - (nb - ba), ib = i - (nb - bb);
    int64_t sa = ia >= 0 ? a->size[ia] : 1, sb = ib >= 0 ? b->size[ib] : 1;
    if (sa != sb && sa != 1 && sb != 1)
      return nv_seterr("matmul: batch dimensions of %s and %s cannot be broadcast",
                       nv_shape_str(x, sizeof x, a->ndim, a->size), nv_shape_str(y, sizeof y, b->ndim, b->size)), NULL;
    bsize[i] = sa == 1 ? sb : sa;
    size[i] = bsize[i];
  }
  size[nb] = M;
  size[nb + 1] = N;
  int ta = 0, tb = 0, lda = 1, ldb = 1;
  nv_tensor *ac = gemm_layout(a, &ta, &lda) ? nv_retain(a) : nv_contiguous_data(a);
  nv_tensor *bc = ac && gemm_layout(b, &tb, &ldb) ? nv_retain(b) : (ac ? nv_contiguous_data(b) : NULL);
  nv_tensor *o = bc ? nv_empty(nb + 2, size) : NULL;
  if (!o) { nv_release(ac); nv_release(bc); return NULL; }
  gemm_layout(ac, &ta, &lda);
  gemm_layout(bc, &tb, &ldb);
  int64_t nbatch = 1;
  for (int i = 0; i < nb; i++) nbatch *= bsize[i];
  int64_t pos[NV_MAXDIM] = {0};
  const float *pa = nv_data(ac), *pb = nv_data(bc);
  float *po = nv_data(o);
  /* each product's offsets into a and b (broadcast batch dims stay put), then the batch */
  int64_t *offs = malloc(sizeof *offs * (size_t)(2 * (nbatch ? nbatch : 1)));
  if (!offs) { nv_release(ac); nv_release(bc); nv_release(o); return nv_seterr("matmul: out of memory"), NULL; }
  for (int64_t k = 0; k < nbatch; k++) {
    int64_t oa = 0, ob = 0;
    for (int i = 0; i < nb; i++) {
      int ia = i - (nb - ba), ib = i - (nb - bb);
      if (ia >= 0 && ac->size[ia] > 1) oa += pos[i] * ac->stride[ia];
      if (ib >= 0 && bc->size[ib] > 1) ob += pos[i] * bc->stride[ib];
    }
    offs[k] = oa;
    offs[nbatch + k] = ob;
    for (int i = nb - 1; i >= 0 && ++pos[i] == bsize[i]; i--) pos[i] = 0;
  }
  nv_gemm_batch(ta, tb, (int)M, (int)N, (int)K, pa, offs, lda, pb, offs + nbatch, ldb, po, nbatch);
  free(offs);
  nv_release(ac);
  nv_release(bc);
  return o;
}

/* 1-D operands are promoted to matrices (a row for a, a column for b) and the added
 * dimension removed from the result, as numpy and PyTorch do. */
nv_tensor *nv_matmul(nv_tensor *a, nv_tensor *b) {
  char x[200], y[200];
  if (a->ndim == 0 || b->ndim == 0)
    return nv_seterr("matmul: both arguments need at least 1 dimension, got %s and %s",
                     nv_shape_str(x, sizeof x, a->ndim, a->size), nv_shape_str(y, sizeof y, b->ndim, b->size)), NULL;
  nv_tensor *a2 = a->ndim == 1 ? nv_unsqueeze(a, 0) : nv_retain(a);
  nv_tensor *b2 = a2 ? (b->ndim == 1 ? nv_unsqueeze(b, 1) : nv_retain(b)) : NULL;
  if (!b2) { nv_release(a2); return NULL; }
  if (a->ndim == 1 || b->ndim == 1) {
    int64_t K = a2->size[a2->ndim - 1], K2 = b2->size[b2->ndim - 2];
    if (K != K2) {
      nv_release(a2); nv_release(b2);
      return nv_seterr("matmul: %s and %s cannot be multiplied: inner sizes %lld and %lld differ",
                       nv_shape_str(x, sizeof x, a->ndim, a->size), nv_shape_str(y, sizeof y, b->ndim, b->size),
                       (long long)K, (long long)K2), NULL;
    }
  }
  nv_tensor *o = nv_matmul_raw(a2, b2);
  if (o && nv_needs_grad(2, (nv_tensor *[]){a2, b2})) {
    nv_tensor *in[2] = {a2, b2};
    nv_node *n = nv_op_node(NV_OP_MATMUL, matmul_backward, 2, in);
    if (!n) { nv_release(o); o = NULL; }
    else nv_attach(o, n);
  }
  nv_release(a2);
  nv_release(b2);
  if (o && (a->ndim == 1 || b->ndim == 1)) {
    nv_tensor *s = o;
    if (b->ndim == 1) { s = nv_squeeze(o, o->ndim - 1); nv_release(o); o = s; }
    if (o && a->ndim == 1) { s = nv_squeeze(o, o->ndim - (b->ndim == 1 ? 1 : 2)); nv_release(o); o = s; }
  }
  return o;
}

static nv_tensor *mT(nv_tensor *t) {   /* transposed view of the last two dims, no graph */
  int64_t size[NV_MAXDIM], stride[NV_MAXDIM];
  memcpy(size, t->size, sizeof size);
  memcpy(stride, t->stride, sizeof stride);
  int d = t->ndim;
  size[d - 2] = t->size[d - 1]; size[d - 1] = t->size[d - 2];
  stride[d - 2] = t->stride[d - 1]; stride[d - 1] = t->stride[d - 2];
  return nv_from_storage(t->st, t->off, d, size, stride);
}

/* dA = dC B^T, dB = A^T dC, each summed over broadcast batch dims. */
static int matmul_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin) {
  nv_tensor *a = n->in[0], *b = n->in[1];
  for (int k = 0; k < 2; k++) {
    nv_tensor *x = n->in[k];
    if (!nv_need(n, k)) continue;
    nv_tensor *t = mT(k == 0 ? b : a);
    nv_tensor *g = t ? (k == 0 ? nv_matmul_raw(gout, t) : nv_matmul_raw(t, gout)) : NULL;
    nv_release(t);
    if (!g) return 0;
    if (!nv_same_shape(g, x)) {
      nv_tensor *s = nv_sum_to(g, x->ndim, x->size);
      nv_release(g);
      if (!s) return 0;
      g = s;
    }
    gin[k] = g;
  }
  return 1;
}

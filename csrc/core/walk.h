/*
 * walk.h — iteration over up to three strided operands of one shape, one innermost run at a
 * time.  Dimensions that are contiguous with each other in every operand are merged first,
 * so contiguous and simply-broadcast cases become a few long runs with no per-element
 * index arithmetic.  Internal to csrc/.
 */
#ifndef NV_WALK_H
#define NV_WALK_H

#include "core/nv.h"

typedef struct {
  int ndim, nops;
  int64_t size[NV_MAXDIM];
  int64_t st[3][NV_MAXDIM];   /* strides of each operand, 0 where broadcast */
  int64_t idx[NV_MAXDIM];
  int64_t off[3];             /* offsets of the current run */
  int64_t inner, is[3];       /* length and strides of the run */
  int done;
} nv_walk;

/* Sets up a walk of the given shape; strides filled by the caller with nv_walk_operand. */
static inline void nv_walk_init(nv_walk *w, int ndim, const int64_t *size, int nops) {
  w->ndim = ndim;
  w->nops = nops;
  for (int i = 0; i < ndim; i++) w->size[i] = size[i];
}

/* Operand k is tensor t broadcast (right-aligned) to the walk's shape. */
static inline void nv_walk_operand(nv_walk *w, int k, const nv_tensor *t) {
  int lead = w->ndim - t->ndim;
  for (int i = 0; i < w->ndim; i++)
    w->st[k][i] = (i < lead || t->size[i - lead] == 1) ? 0 : t->stride[i - lead];
}

/* Merges dimensions and positions the walk at the first run; returns 0 if it is empty. */
static inline int nv_walk_start(nv_walk *w) {
  int nd = 0;
  for (int i = 0; i < w->ndim; i++) {
    if (w->size[i] == 0) { w->done = 1; return 0; }
    if (w->size[i] == 1) continue;
    if (nd > 0) {
      int ok = 1;
      for (int k = 0; k < w->nops; k++)
        if (w->st[k][nd - 1] != w->st[k][i] * w->size[i]) ok = 0;
      if (ok) {
        w->size[nd - 1] *= w->size[i];
        for (int k = 0; k < w->nops; k++) w->st[k][nd - 1] = w->st[k][i];
        continue;
      }
    }
    w->size[nd] = w->size[i];
    for (int k = 0; k < w->nops; k++) w->st[k][nd] = w->st[k][i];
    nd++;
  }
  if (nd == 0) {
    w->size[0] = 1;
    for (int k = 0; k < w->nops; k++) w->st[k][0] = 0;
    nd = 1;
  }
  w->ndim = nd;
  w->inner = w->size[nd - 1];
  for (int k = 0; k < w->nops; k++) { w->is[k] = w->st[k][nd - 1]; w->off[k] = 0; }
  for (int i = 0; i < nd; i++) w->idx[i] = 0;
  w->done = 0;
  return 1;
}

/* Advances to the next run; returns 0 when finished. */
static inline int nv_walk_next(nv_walk *w) {
  int i = w->ndim - 2;
  while (i >= 0) {
    for (int k = 0; k < w->nops; k++) w->off[k] += w->st[k][i];
    if (++w->idx[i] < w->size[i]) return 1;
    for (int k = 0; k < w->nops; k++) w->off[k] -= w->st[k][i] * w->size[i];
    w->idx[i--] = 0;
  }
  w->done = 1;
  return 0;
}

#endif

/*
 * scratch.c — grow-only scratch buffers reused across calls (im2col columns and the like).
 */
#include "core/nv.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- scratch ---------------------------------------------------------------------------- */
static float *scratch_buf[NV_SCRATCH_SLOTS];
static size_t scratch_cap[NV_SCRATCH_SLOTS];

float *nv_scratch(int slot, size_t nfloats) {
  if (slot < 0 || slot >= NV_SCRATCH_SLOTS) return NULL;
  if (nfloats > scratch_cap[slot]) {
    free(scratch_buf[slot]);
    size_t bytes = ((nfloats ? nfloats : 1) * sizeof(float) + 63) & ~(size_t)63;
    scratch_buf[slot] = aligned_alloc(64, bytes);
    scratch_cap[slot] = scratch_buf[slot] ? nfloats : 0;
    if (!scratch_buf[slot]) nv_seterr("out of memory allocating scratch (%zu floats)", nfloats);
  }
  return scratch_buf[slot];
}

float *nv_scratch_or_die(int slot, size_t nfloats, const char *who) {
  float *p = nv_scratch(slot, nfloats);
  if (!p) {
    fprintf(stderr, "nnvis: %s: %s\n", who, nv_last_error());
    abort();
  }
  return p;
}
void nv_scratch_free_all(void) {
  for (int k = 0; k < NV_SCRATCH_SLOTS; k++) {
    free(scratch_buf[k]);
    scratch_buf[k] = NULL;
    scratch_cap[k] = 0;
  }
}

/*
 * raw.c — tensors from raw little-endian bytes of a dtype (PyTorch's storages in .pth files).
 *
 * All input is untrusted: every length read from a file is compared with what the file
 * actually holds before it is used to allocate or index, and arithmetic on such lengths is
 * done in 64 bits with explicit overflow checks.  Failures set an error naming the file,
 * what is wrong and the numbers involved.
 */
#define _POSIX_C_SOURCE 200809L
#include "io/io_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- raw tensor bytes (PyTorch storages) ------------------------------------------------- */
static int dtype_index(const char *dtype) {
  for (int k = 0; k < NV_DT_COUNT; k++)
    if (strcmp(dtype, nv_dt_names[k]) == 0) return k;
  return -1;
}

int nv_dtype_size(const char *dtype) {
  int dt = dtype_index(dtype);
  return dt < 0 ? 0 : nv_dt_sizes[dt];
}

#define FROM_BYTES_MIN_CAP ((int64_t)1 << 24)

nv_tensor *nv_tensor_from_bytes(const unsigned char *b, size_t nbytes, const char *dtype,
                                int64_t offset, int ndim, const int64_t *size,
                                const int64_t *stride, const char *name) {
  int dt = dtype_index(dtype);
  if (dt < 0) { nv_seterr("%s: unknown dtype %s", name, dtype); return NULL; }
  if (ndim < 0 || ndim > NV_MAXDIM) {
    nv_seterr("%s: %d dimensions (nnvis supports 0 to %d)", name, ndim, NV_MAXDIM);
    return NULL;
  }
  int es = nv_dt_sizes[dt];
  int64_t nel = (int64_t)(nbytes / (size_t)es), cap = nel > FROM_BYTES_MIN_CAP ? nel : FROM_BYTES_MIN_CAP;
  char s[200];
  nv_shape_str(s, sizeof s, ndim, size);
  if (offset < 0) { nv_seterr("%s: negative storage offset %lld", name, (long long)offset); return NULL; }
  /* numel and the furthest element, saturating instead of overflowing */
  int64_t numel = 1, last = offset;
  for (int k = 0; k < ndim; k++) {
    if (size[k] < 0 || stride[k] < 0) {
      nv_seterr("%s: size %s with a negative size or stride", name, s);
      return NULL;
    }
    numel = size[k] == 0 ? 0 : (numel > cap / size[k] ? cap + 1 : numel * size[k]);
  }
  if (numel > cap) {
    nv_seterr("%s: size %s has more than %lld elements", name, s, (long long)cap);
    return NULL;
  }
  if (numel > 0) {
    /* an offset past the storage fails below; saturated here so the sum cannot wrap */
    if (last > INT64_MAX / 2) last = INT64_MAX;
    for (int k = 0; k < ndim && last != INT64_MAX; k++) {
      int64_t reach = size[k] - 1;
      if (stride[k] && reach > (INT64_MAX / 2) / stride[k]) { last = INT64_MAX; break; }
      last += reach * stride[k];
      if (last > INT64_MAX / 2) { last = INT64_MAX; break; }
    }
    if (last >= nel) {
      nv_seterr("%s: view of size %s at offset %lld reaches element %lld of a storage of %lld "
                "%s elements", name, s, (long long)offset, (long long)last, (long long)nel, dtype);
      return NULL;
    }
  }
  nv_tensor *t = nv_empty(ndim, size);
  if (!t || numel == 0) return t;
  float *d = nv_data(t);
  int contiguous = 1;
  int64_t want = 1;
  for (int k = ndim - 1; k >= 0; k--) {
    if (size[k] != 1 && stride[k] != want) contiguous = 0;
    want *= size[k];
  }
  if (contiguous) {
    nv_dt_convert(dt, b + (size_t)offset * (size_t)es, d, (size_t)numel);
    return t;
  }
  int64_t idx[NV_MAXDIM] = {0}, pos = offset;
  for (int64_t i = 0; i < numel; i++) {
    nv_dt_convert(dt, b + (size_t)pos * (size_t)es, d + i, 1);
    for (int k = ndim - 1; k >= 0; k--) {   /* odometer over the view's indices */
      pos += stride[k];
      if (++idx[k] < size[k]) break;
      pos -= stride[k] * size[k];
      idx[k] = 0;
    }
  }
  return t;
}


/*
 * io_util.c — helpers the readers in io/ share (see io_util.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "io/io_util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int nv_io_host_little_endian(void) {
  const uint16_t one = 1;
  return *(const unsigned char *)&one == 1;
}

/* Opens path for reading and checks it is a regular file (fopen happily opens a directory).
 * *size receives its length. */
FILE *nv_io_open_regular(const char *path, int64_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    nv_seterr("cannot open %s: %s", path, strerror(errno));
    return NULL;
  }
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    nv_seterr("cannot read %s: not a regular file", path);
    fclose(f);
    return NULL;
  }
  *size = (int64_t)sb.st_size;
  return f;
}

/* Reads exactly n bytes or fails with a message that tells truncation from I/O errors. */
int nv_io_read_exact(FILE *f, void *buf, size_t n, const char *path, const char *what) {
  size_t got = fread(buf, 1, n, f);
  if (got == n) return 1;
  if (ferror(f)) return nv_seterr("cannot read %s: %s", path, strerror(errno));
  return nv_seterr("%s: truncated while reading %s (%zu of %zu bytes)", path, what, got, n);
}

const char *const nv_dt_names[NV_DT_COUNT] = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16",
                                               "I8", "U64", "U32", "U16", "U8", "BOOL"};
const int nv_dt_sizes[NV_DT_COUNT] = {8, 4, 2, 2, 8, 4, 2, 1, 8, 4, 2, 1, 1};

float nv_half_to_float(uint16_t h) {
  int exp = h >> 10 & 0x1f, mant = h & 0x3ff;
  float v;
  if (exp == 0) v = ldexpf((float)mant, -24);                        /* subnormal: m 2^-24 */
  else if (exp == 31) v = mant ? NAN : INFINITY;
  else v = ldexpf((float)(mant | 0x400), exp - 25);                  /* (1024+m) 2^(e-25) */
  return h & 0x8000 ? -v : v;
}

uint64_t nv_io_le_u64(const unsigned char *b, int n) {
  uint64_t v = 0;
  for (int k = n - 1; k >= 0; k--) v = v << 8 | b[k];
  return v;
}

/* Converts n little-endian elements of dtype dt to float. */
void nv_dt_convert(int dt, const unsigned char *b, float *d, size_t n) {
  for (size_t i = 0; i < n; i++, b += nv_dt_sizes[dt]) {
    uint64_t u = nv_io_le_u64(b, nv_dt_sizes[dt]);
    switch (dt) {
    case NV_DT_F64: { double x; memcpy(&x, &u, 8); d[i] = (float)x; break; }
    case NV_DT_F32: { uint32_t w = (uint32_t)u; memcpy(&d[i], &w, 4); break; }
    case NV_DT_F16: d[i] = nv_half_to_float((uint16_t)u); break;
    case NV_DT_BF16: { uint32_t w = (uint32_t)u << 16; memcpy(&d[i], &w, 4); break; }  /* f32's top */
    case NV_DT_I64: d[i] = (float)(int64_t)u; break;
    case NV_DT_I32: d[i] = (float)(int32_t)(uint32_t)u; break;
    case NV_DT_I16: d[i] = (float)(int16_t)(uint16_t)u; break;
    case NV_DT_I8: d[i] = (float)(int8_t)(uint8_t)u; break;
    case NV_DT_BOOL: d[i] = u ? 1.0f : 0.0f; break;
    default: d[i] = (float)u; break;   /* unsigned types */
    }
  }
}

/* Checks one header entry against the schema and the data size; fills e. */

/*
 * idx.c — IDX files (MNIST's format), plain or gzip-compressed.
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
#include <zlib.h>

/* ---- IDX ------------------------------------------------------------------------------------ */
/* http://yann.lecun.com/exdb/mnist/: magic 00 00 type ndim, ndim big-endian u32 sizes, data. */
#define IDX_MAX_ELEMS ((uint64_t)1 << 34)

static int idx_type_size(int type) {
  switch (type) {
  case 0x08: case 0x09: return 1;
  case 0x0B: return 2;
  case 0x0C: case 0x0D: return 4;
  case 0x0E: return 8;
  default: return 0;
  }
}

static const char *idx_type_name(int type) {
  switch (type) {
  case 0x08: return "ubyte";
  case 0x09: return "byte";
  case 0x0B: return "short";
  case 0x0C: return "int";
  case 0x0D: return "float";
  default: return "double";
  }
}

/* zlib prefixes its messages with the file name ("<fd:3>" after gzdopen); callers name the
 * file themselves. */
static const char *gz_message(gzFile gz, int *code) {
  const char *m = gzerror(gz, code);
  const char *colon = strstr(m, ": ");
  return m[0] == '<' && colon ? colon + 2 : m;
}

/* Reads up to n bytes; returns the count, or -1 with the error set.  gzread reads plain files
 * unchanged, so one path serves both (zlib detects the 1f 8b magic itself). */
static int64_t gz_read_upto(gzFile gz, void *buf, int64_t n, const char *path) {
  int64_t got = 0;
  while (got < n) {
    unsigned m = n - got > (1 << 30) ? 1u << 30 : (unsigned)(n - got);
    int r = gzread(gz, (char *)buf + got, m);
    if (r < 0) {
      int code;
      const char *msg = gz_message(gz, &code);
      nv_seterr("%s: %s (%s)", path, code == Z_ERRNO ? strerror(errno) : msg,
                code == Z_ERRNO ? "read error" : "corrupt gzip data");
      return -1;
    }
    if (r == 0) break;
    got += r;
  }
  return got;
}

static double idx_value(int type, const unsigned char *b) {
  switch (type) {
  case 0x08: return b[0];
  case 0x09: return (int8_t)b[0];
  case 0x0B: return (int16_t)(uint16_t)(b[0] << 8 | b[1]);
  default: break;
  }
  uint64_t u = 0;
  int n = idx_type_size(type);
  for (int k = 0; k < n; k++) u = u << 8 | b[k];
  if (type == 0x0C) return (int32_t)(uint32_t)u;
  if (type == 0x0D) { uint32_t w = (uint32_t)u; float x; memcpy(&x, &w, 4); return x; }
  double x;
  memcpy(&x, &u, 8);
  return x;
}

nv_tensor *nv_idx_load(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) { nv_seterr("cannot open %s: %s", path, strerror(errno)); return NULL; }
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    nv_seterr("cannot read %s: not a regular file", path);
    return NULL;
  }
  gzFile gz = gzdopen(fd, "rb");   /* owns fd from here on */
  if (!gz) { close(fd); nv_seterr("out of memory opening %s", path); return NULL; }
  unsigned char *raw = NULL;
  nv_tensor *t = NULL;
  unsigned char head[4 + 4 * 255];
  char shape[200];
  int64_t got = gz_read_upto(gz, head, 4, path);
  if (got < 0) goto done;
  if (got < 4) {
    nv_seterr("%s: %lld bytes are too short for an IDX header", path, (long long)got);
    goto done;
  }
  if (head[0] || head[1]) {
    nv_seterr("%s: not an IDX file (first bytes %02x %02x %02x %02x, expected 00 00 <type> <ndim>)",
              path, head[0], head[1], head[2], head[3]);
    goto done;
  }
  if (!idx_type_size(head[2])) {
    nv_seterr("%s: unknown IDX data type 0x%02x (known: 08 ubyte, 09 byte, 0b short, 0c int, "
              "0d float, 0e double)", path, head[2]);
    goto done;
  }
  int type = head[2], ndim = head[3], es = idx_type_size(type);
  if (ndim < 1 || ndim > NV_MAXDIM) {
    nv_seterr("%s: IDX file has %d dimensions, nnvis reads 1 to %d", path, ndim, NV_MAXDIM);
    goto done;
  }
  got = gz_read_upto(gz, head + 4, 4 * ndim, path);
  if (got < 0) goto done;
  if (got < 4 * ndim) {
    nv_seterr("%s: truncated IDX header (%d dimensions need %d bytes, found %lld)", path, ndim,
              4 * ndim, (long long)got);
    goto done;
  }
  int64_t size[NV_MAXDIM];
  uint64_t numel = 1;
  for (int k = 0; k < ndim; k++) {
    const unsigned char *b = head + 4 + 4 * k;
    size[k] = (int64_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
    /* saturate just above the limit instead of overflowing */
    if (size[k] && numel > (IDX_MAX_ELEMS + 1) / (uint64_t)size[k]) numel = IDX_MAX_ELEMS + 1;
    else numel *= (uint64_t)size[k];
  }
  nv_shape_str(shape, sizeof shape, ndim, size);
  if (numel <= IDX_MAX_ELEMS && (int64_t)numel * (es > 4 ? es : 4) > nv_max_alloc()) {
    nv_seterr("%s: IDX dimensions %s need %lld bytes, more than max_alloc (%lld; nv.config{max_alloc = ...})",
              path, shape, (long long)numel * es, (long long)nv_max_alloc());
    goto done;
  }
  if (numel > IDX_MAX_ELEMS) {
    nv_seterr("%s: IDX dimensions %s hold more than %llu elements", path, shape,
              (unsigned long long)IDX_MAX_ELEMS);
    goto done;
  }
  /* zero-sized files too: their other sizes must not overflow */
  int64_t checked;
  if (!nv_check_numel(ndim, size, &checked)) {
    char why[300];
    snprintf(why, sizeof why, "%s", nv_last_error());
    nv_seterr("%s: IDX dimensions %s: %s", path, shape, why);
    goto done;
  }
  /* The dimensions are not trusted to size a buffer: the data is read into one that grows as
   * bytes actually arrive, so a forged header on a small (or small compressed) file fails
   * with "truncated" instead of allocating what it claims. */
  int64_t need = (int64_t)numel * es, cap = 0;
  got = 0;
  while (got < need) {
    if (got == cap) {
      int64_t ncap = cap ? 2 * cap : 1 << 20;
      if (ncap > need) ncap = need;
      unsigned char *p = realloc(raw, (size_t)ncap);
      if (!p) { nv_seterr("out of memory reading %s", path); goto done; }
      raw = p;
      cap = ncap;
    }
    int64_t r = gz_read_upto(gz, raw + got, cap - got, path);
    if (r < 0) goto done;
    got += r;
    if (got < cap) break;   /* end of file */
  }
  if (got < need) {
    int code;
    const char *zmsg = gz_message(gz, &code);
    nv_seterr("%s: truncated: %s %s data needs %lld bytes, found %lld%s%s", path, shape,
              idx_type_name(type), (long long)need, (long long)got,
              code == Z_BUF_ERROR ? "; gzip: " : "", code == Z_BUF_ERROR ? zmsg : "");
    goto done;
  }
  unsigned char extra;
  int64_t more = gz_read_upto(gz, &extra, 1, path);
  if (more < 0) goto done;
  if (more > 0) {
    nv_seterr("%s: more data than %s %s needs (%lld bytes); wrong dimensions?", path, shape,
              idx_type_name(type), (long long)need);
    goto done;
  }
  t = nv_empty(ndim, size);
  if (!t) goto done;
  float *d = nv_data(t);
  for (int64_t i = 0; i < (int64_t)numel; i++) d[i] = (float)idx_value(type, raw + i * es);
done:
  free(raw);
  gzclose(gz);
  return t;
}


/*
 * png.c — PNG reading and writing (lodepng through png_shim.cc), and nv_image_load, which
 * tells PNG from JPEG by the first bytes.
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

/* ---- PNG ---------------------------------------------------------------------------------- */
/* A 16384 x 16384 image; beyond this a (possibly forged) IHDR is refused before decoding. */
#define PNG_MAX_PIXELS ((size_t)1 << 28)
#define PNG_MAX_FILE ((int64_t)1 << 31)

static int png_native_channels(const nv_png_info *info) {
  switch (info->color_type) {
  case 0: return info->transparent ? 2 : 1;   /* gray; a tRNS key becomes an alpha channel */
  case 4: return 2;
  case 2: case 3: return info->transparent ? 4 : 3;
  default: return 4;
  }
}

nv_tensor *nv_png_load_bytes(const unsigned char *buf, size_t len, int mode, const char *name) {
  if (mode != NV_PNG_NATIVE && mode != NV_PNG_RGB && mode != NV_PNG_GRAY) {
    nv_seterr("png: unknown mode %d", mode);
    return NULL;
  }
  nv_png_info info = {0};
  unsigned char *px = NULL;
  unsigned err = nv_png_decode(buf, len, PNG_MAX_PIXELS, &px, &info);
  if (err == NV_PNG_TOO_LARGE) {
    nv_seterr("%s: image of %ux%u pixels is larger than the limit of %zu pixels", name,
              info.width, info.height, PNG_MAX_PIXELS);
    return NULL;
  }
  if (err == NV_PNG_FORGED) {
    nv_seterr("%s: truncated or forged PNG: %ux%u pixels cannot fit in %zu bytes", name, info.width,
              info.height, len);
    return NULL;
  }
  if (err) {
    nv_seterr("%s: not a readable PNG (%s)", name, nv_png_error_text(err));
    return NULL;
  }
  int64_t C = mode == NV_PNG_RGB ? 3 : mode == NV_PNG_GRAY ? 1 : png_native_channels(&info);
  int64_t H = info.height, W = info.width, size[3] = {C, H, W};
  nv_tensor *t = nv_empty(3, size);
  if (!t) {
    nv_png_free(px);
    return NULL;
  }
  float *d = nv_data(t);
  int64_t hw = H * W;
  int wide = info.sample_bits == 16;
  double inv = wide ? 1.0 / 65535.0 : 1.0 / 255.0;
  /* Gray files have R = G = B; copying R avoids the rounding of the luminance weights. */
  int gray_src = info.color_type == 0 || info.color_type == 4;
  for (int64_t i = 0; i < hw; i++) {
    double s[4];
    for (int k = 0; k < 4; k++)
      s[k] = wide ? (double)((px[8 * i + 2 * k] << 8) | px[8 * i + 2 * k + 1])
                  : (double)px[4 * i + k];
    if (mode == NV_PNG_GRAY) {
      d[i] = (float)((gray_src ? s[0] : 0.299 * s[0] + 0.587 * s[1] + 0.114 * s[2]) * inv);
    } else if (C <= 2) {   /* native gray (+ alpha) */
      d[i] = (float)(s[0] * inv);
      if (C == 2) d[hw + i] = (float)(s[3] * inv);
    } else {
      for (int k = 0; k < C; k++) d[k * hw + i] = (float)(s[k] * inv);
    }
  }
  nv_png_free(px);
  return t;
}

/* Reads a whole regular file of at most max bytes into a new malloc'd buffer. */
static unsigned char *read_whole(const char *path, int64_t max, const char *what, size_t *len) {
  int64_t size;
  FILE *f = nv_io_open_regular(path, &size);
  if (!f) return NULL;
  if (size > max) {
    fclose(f);
    nv_seterr("%s: file of %lld bytes is too large for %s", path, (long long)size, what);
    return NULL;
  }
  unsigned char *buf = malloc(size ? (size_t)size : 1);
  if (!buf) {
    fclose(f);
    nv_seterr("out of memory reading %s (%lld bytes)", path, (long long)size);
    return NULL;
  }
  int ok = nv_io_read_exact(f, buf, (size_t)size, path, "the file");
  fclose(f);
  if (!ok) { free(buf); return NULL; }
  *len = (size_t)size;
  return buf;
}

nv_tensor *nv_png_load(const char *path, int mode) {
  size_t len;
  unsigned char *buf = read_whole(path, PNG_MAX_FILE, "a PNG", &len);
  nv_tensor *t = buf ? nv_png_load_bytes(buf, len, mode, path) : NULL;
  free(buf);
  return t;
}

nv_tensor *nv_image_load(const char *path, int mode) {
  size_t len;
  unsigned char *buf = read_whole(path, PNG_MAX_FILE, "an image", &len);
  if (!buf) return NULL;
  nv_tensor *t = NULL;
  static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (len >= 8 && memcmp(buf, png_magic, 8) == 0) t = nv_png_load_bytes(buf, len, mode, path);
  else if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF)
    t = nv_jpeg_load_bytes(buf, len, mode, path);
  else {
    unsigned char b[4] = {0};
    memcpy(b, buf, len < 4 ? len : 4);
    nv_seterr("%s: neither a PNG nor a JPEG file (first bytes %02x %02x %02x %02x of %zu)", path,
              b[0], b[1], b[2], b[3], len);
  }
  free(buf);
  return t;
}

int nv_png_check_shape(const nv_tensor *t) {
  int ok = (t->ndim == 2 && t->size[0] >= 1 && t->size[1] >= 1) ||
           (t->ndim == 3 && t->size[0] >= 1 && t->size[0] <= 4 && t->size[1] >= 1 &&
            t->size[2] >= 1);
  /* lodepng takes unsigned sizes; beyond this the image is absurd anyway. */
  for (int i = 0; ok && i < t->ndim; i++) ok = t->size[i] <= (1 << 30);
  if (ok) return 1;
  char s[200];
  return nv_seterr("expected (C,H,W) with C in 1..4 or (H,W), got %s",
                   nv_shape_str(s, sizeof s, t->ndim, t->size));
}

static int write_file(const char *path, const void *buf, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return nv_seterr("cannot open %s for writing: %s", path, strerror(errno));
  size_t put = fwrite(buf, 1, len, f);
  int werr = put != len ? errno : 0;
  if (fclose(f) != 0 && !werr) werr = errno ? errno : EIO;
  if (werr) return nv_seterr("cannot write %s: %s", path, strerror(werr));
  return 1;
}

int nv_png_encode_tensor(const nv_tensor *t, unsigned char **png, size_t *len) {
  if (!nv_png_check_shape(t)) return 0;
  int three = t->ndim == 3;
  int64_t C = three ? t->size[0] : 1, H = t->size[three], W = t->size[three + 1];
  int64_t sc = three ? t->stride[0] : 0, sh = t->stride[three], sw = t->stride[three + 1];
  if (H * W > (int64_t)PNG_MAX_PIXELS) {
    char s[200];
    return nv_seterr("image %s has more than %zu pixels",
                     nv_shape_str(s, sizeof s, t->ndim, t->size),
                     PNG_MAX_PIXELS);
  }
  unsigned char *px = malloc((size_t)(C * H * W));
  if (!px) return nv_seterr("out of memory encoding a PNG");
  const float *d = nv_data(t);
  unsigned char *p = px;
  for (int64_t y = 0; y < H; y++)
    for (int64_t x = 0; x < W; x++)
      for (int64_t c = 0; c < C; c++) {
        float v = d[c * sc + y * sh + x * sw];
        v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;   /* also sends NaN to 0 */
        *p++ = (unsigned char)(v * 255.0f + 0.5f);
      }
  *png = NULL;
  *len = 0;
  unsigned err = nv_png_encode(px, (unsigned)W, (unsigned)H, (int)C, png, len);
  free(px);
  if (err) return nv_seterr("PNG encoding failed (%s)", nv_png_error_text(err));
  return 1;
}

int nv_png_save(const nv_tensor *t, const char *path) {
  unsigned char *png = NULL;
  size_t len = 0;
  if (!nv_png_encode_tensor(t, &png, &len)) return 0;
  int ok = write_file(path, png, len);
  nv_png_free(png);
  return ok;
}


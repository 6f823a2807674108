/*
 * jpeg.c — JPEG decode and encode through libjpeg-turbo (see files.h).
 *
 * libjpeg reports errors by calling error_exit, which by default prints and exit()s; here it
 * longjmps back to the caller instead, so corrupt input returns an error.  Everything that
 * must be freed after a longjmp is reachable from the context struct (volatile where set
 * after setjmp).  Dimension legend: C channels, H height, W width.
 */
#include "io/files.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

/* Same limit as for PNG: a 16384 x 16384 image; a forged header is refused before decoding. */
#define JPEG_MAX_PIXELS ((uint64_t)1 << 28)

typedef struct {
  struct jpeg_error_mgr mgr;   /* first, so libjpeg's pointer is ours */
  jmp_buf jump;
  char msg[JMSG_LENGTH_MAX];
} jerr_ctx;

static void on_error(j_common_ptr cinfo) {
  jerr_ctx *e = (jerr_ctx *)cinfo->err;
  e->mgr.format_message(cinfo, e->msg);
  longjmp(e->jump, 1);
}

/* Corrupt-data warnings (e.g. "premature end of data segment") are errors here: a truncated
 * file must not decode to a half-grey image silently. */
static void on_warning(j_common_ptr cinfo, int level) {
  if (level < 0) on_error(cinfo);
}

nv_tensor *nv_jpeg_load_bytes(const unsigned char *buf, size_t len, int mode, const char *name) {
  if (mode != NV_PNG_NATIVE && mode != NV_PNG_RGB && mode != NV_PNG_GRAY) {
    nv_seterr("jpeg: unknown mode %d", mode);
    return NULL;
  }
  if (len > (size_t)0xFFFFFFFFu) {
    nv_seterr("%s: %zu bytes are too many for a JPEG", name, len);
    return NULL;
  }
  struct jpeg_decompress_struct cinfo;
  jerr_ctx err;
  unsigned char *volatile row = NULL;
  nv_tensor *volatile t = NULL;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = on_error;
  err.mgr.emit_message = on_warning;
  if (setjmp(err.jump)) {
    nv_seterr("%s: not a readable JPEG (%s)", name, err.msg);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    nv_release(t);
    return NULL;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, buf, (unsigned long)len);
  jpeg_read_header(&cinfo, TRUE);
  uint64_t W = cinfo.image_width, H = cinfo.image_height;
  if (W * H > JPEG_MAX_PIXELS || W == 0 || H == 0) {
    nv_seterr("%s: image of %llux%llu pixels is outside the limit of %llu pixels", name,
              (unsigned long long)W, (unsigned long long)H, (unsigned long long)JPEG_MAX_PIXELS);
    jpeg_destroy_decompress(&cinfo);
    return NULL;
  }
  /* Every scan that starts a component codes at least one bit per 8x8 block (a Huffman code is
   * at least a bit long), so a file of len bytes holds at most 512*len luma pixels: a header
   * claiming more is forged, and refused before libjpeg reserves buffers for it. */
  if (W * H > (uint64_t)len * 1024 + 65536) {
    nv_seterr("%s: truncated or forged JPEG: %llux%llu pixels cannot fit in %zu bytes", name,
              (unsigned long long)W, (unsigned long long)H, len);
    jpeg_destroy_decompress(&cinfo);
    return NULL;
  }
  int gray_file = cinfo.jpeg_color_space == JCS_GRAYSCALE;
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    nv_seterr("%s: CMYK JPEGs are not supported (convert to RGB first)", name);
    jpeg_destroy_decompress(&cinfo);
    return NULL;
  }
  int out_gray = mode == NV_PNG_GRAY || (mode == NV_PNG_NATIVE && gray_file);
  cinfo.out_color_space = out_gray ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  int comps = cinfo.output_components;   /* 1 or 3 */
  int64_t C = mode == NV_PNG_RGB ? 3 : comps, size[3] = {C, (int64_t)H, (int64_t)W};
  row = malloc((size_t)W * (size_t)comps);
  t = nv_empty(3, size);
  if (!row || !t) {
    if (!row) nv_seterr("out of memory decoding %s", name);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    nv_release(t);
    return NULL;
  }
  float *d = nv_data(t);
  int64_t hw = (int64_t)(H * W);
  while (cinfo.output_scanline < cinfo.output_height) {
    int64_t y = cinfo.output_scanline;
    JSAMPROW rows[1] = {row};
    jpeg_read_scanlines(&cinfo, rows, 1);
    for (int64_t x = 0; x < (int64_t)W; x++)
      for (int64_t c = 0; c < C; c++)
        d[c * hw + y * (int64_t)W + x] = (float)row[x * comps + (comps == 1 ? 0 : c)] / 255.0f;
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  free(row);
  return t;
}

int nv_jpeg_save(const nv_tensor *t, const char *path, int quality) {
  if (!nv_png_check_shape(t)) return 0;
  if (quality < 1 || quality > 100) return nv_seterr("jpeg quality %d is outside 1..100", quality);
  int three = t->ndim == 3;
  int64_t C = three ? t->size[0] : 1, H = t->size[three], W = t->size[three + 1];
  int64_t sc = three ? t->stride[0] : 0, sh = t->stride[three], sw = t->stride[three + 1];
  if (H > 65500 || W > 65500)
    return nv_seterr("JPEG images are at most 65500 pixels wide and high, got %lldx%lld",
                     (long long)W, (long long)H);
  int comps = C >= 3 ? 3 : 1;
  FILE *f = fopen(path, "wb");
  if (!f) return nv_seterr("cannot open %s for writing: %s", path, strerror(errno));
  struct jpeg_compress_struct cinfo;
  jerr_ctx err;
  unsigned char *volatile row = NULL;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = on_error;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    free(row);
    fclose(f);
    return nv_seterr("cannot write %s as JPEG (%s)", path, err.msg);
  }
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, f);
  cinfo.image_width = (JDIMENSION)W;
  cinfo.image_height = (JDIMENSION)H;
  cinfo.input_components = comps;
  cinfo.in_color_space = comps == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  row = malloc((size_t)W * (size_t)comps);
  if (!row) {
    jpeg_destroy_compress(&cinfo);
    fclose(f);
    return nv_seterr("out of memory encoding %s", path);
  }
  jpeg_start_compress(&cinfo, TRUE);
  const float *d = nv_data(t);
  for (int64_t y = 0; y < H; y++) {
    for (int64_t x = 0; x < W; x++)
      for (int64_t c = 0; c < comps; c++) {
        float v = d[c * sc + y * sh + x * sw];
        v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;   /* also sends NaN to 0 */
        row[x * comps + c] = (unsigned char)(v * 255.0f + 0.5f);
      }
    JSAMPROW rows[1] = {row};
    jpeg_write_scanlines(&cinfo, rows, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  free(row);
  if (ferror(f) | (fclose(f) != 0)) return nv_seterr("cannot write %s: %s", path, strerror(errno));
  return 1;
}

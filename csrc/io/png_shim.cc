/*
 * png_shim.cc — plain C entry points over lodepng.
 *
 * Debian's liblodepng.so is compiled as C++, so its symbols carry C++ mangling and a C file
 * cannot link against them.  This file is the only C++ in nnvis: it calls lodepng's C-style
 * API (LodePNGState, lodepng_inspect/decode/encode) and exposes extern "C" functions declared
 * in files.h.  lodepng reports errors as codes and allocates with malloc; nothing here throws,
 * but a catch-all still guards the boundary since unwinding into C is undefined.
 */
#include "io/files.h"

#include <cstdlib>
#include <lodepng.h>
#include <zlib.h>

// lodepng's own deflate takes seconds for a 2000x2000 figure; zlib's at level 3 (figures are
// mostly flat areas) a fraction of that.  lodepng frees *out with free(), which malloc pairs with.
static unsigned zlib_compress(unsigned char **out, size_t *outsize, const unsigned char *in, size_t insize,
                              const LodePNGCompressSettings *) {
  uLongf n = compressBound((uLong)insize);
  *out = (unsigned char *)malloc(n);
  if (!*out) return 83;   // lodepng's "memory allocation failed"
  if (compress2(*out, &n, in, (uLong)insize, 3) != Z_OK) {
    free(*out);
    *out = NULL;
    return 83;
  }
  *outsize = n;
  return 0;
}

extern "C" unsigned nv_png_decode(const unsigned char *buf, size_t len, size_t max_pixels,
                                  unsigned char **pixels, nv_png_info *info) {
  *pixels = NULL;
  LodePNGState st;
  lodepng_state_init(&st);
  unsigned err = 0;
  try {
    unsigned w = 0, h = 0;
    err = lodepng_inspect(&w, &h, &st, buf, len);   // IHDR only: size, color type, depth
    info->width = w;   // also set on failure so NV_PNG_TOO_LARGE can be reported with the size
    info->height = h;
    // Checked before decoding so a tiny file cannot make lodepng allocate gigabytes.
    if (!err && (size_t)w * h > max_pixels) err = NV_PNG_TOO_LARGE;
    // Deflate expands at most 1032:1, so the file's bytes bound the scanlines it can hold.
    // A header claiming more (16384x16384 RGBA16 in 68 bytes) is refused before lodepng
    // reserves the output buffer.
    if (!err) {
      unsigned ch = lodepng_get_channels(&st.info_png.color), bits = st.info_png.color.bitdepth;
      double raw = (double)h * (1.0 + ((double)w * ch * bits + 7.0) / 8.0);
      if (raw > (double)len * 1032.0 + 1024.0) err = NV_PNG_FORGED;
    }
    if (!err) {
      unsigned depth = st.info_png.color.bitdepth == 16 ? 16 : 8;
      st.info_raw.colortype = LCT_RGBA;   // lodepng expands gray, palette and keys for us
      st.info_raw.bitdepth = depth;
      err = lodepng_decode(pixels, &w, &h, &st, buf, len);
      if (!err) {
        // After a decode, info_png also holds PLTE and tRNS, which inspect does not read.
        const LodePNGColorMode *c = &st.info_png.color;
        info->width = w;
        info->height = h;
        info->color_type = (int)c->colortype;
        info->bit_depth = (int)c->bitdepth;
        info->transparent = c->colortype == LCT_PALETTE ? (int)lodepng_has_palette_alpha(c)
                                                        : (int)(c->key_defined != 0);
        info->sample_bits = (int)depth;
      }
    }
  } catch (...) {
    err = 83;   // lodepng's "memory allocation failed"
  }
  lodepng_state_cleanup(&st);
  if (err) {
    free(*pixels);
    *pixels = NULL;
  }
  return err;
}

extern "C" unsigned nv_png_encode(const unsigned char *pixels, unsigned width, unsigned height,
                                  int channels, unsigned char **png, size_t *pnglen) {
  static const LodePNGColorType types[4] = {LCT_GREY, LCT_GREY_ALPHA, LCT_RGB, LCT_RGBA};
  *png = NULL;
  *pnglen = 0;
  if (channels < 1 || channels > 4) return 31;   // lodepng's "illegal input color type"
  LodePNGState st;
  lodepng_state_init(&st);
  unsigned err = 0;
  try {
    st.info_raw.colortype = types[channels - 1];
    st.info_raw.bitdepth = 8;
    st.info_png.color.colortype = types[channels - 1];
    st.info_png.color.bitdepth = 8;
    // auto_convert would pick the smallest color type (a palette for a gray image, RGB for
    // an opaque RGBA one), and loading the file back would then give other channels.
    st.encoder.auto_convert = 0;
    st.encoder.zlibsettings.custom_zlib = zlib_compress;
    st.encoder.filter_strategy = LFS_ZERO;   // trying 5 filters per row cost more than zlib saves
    err = lodepng_encode(png, pnglen, pixels, width, height, &st);
  } catch (...) {
    err = 83;
  }
  lodepng_state_cleanup(&st);
  if (err) {
    free(*png);
    *png = NULL;
    *pnglen = 0;
  }
  return err;
}

extern "C" const char *nv_png_error_text(unsigned code) {
  if (code == NV_PNG_TOO_LARGE) return "image too large";
  return lodepng_error_text(code);
}

// lodepng allocates with malloc (its default allocators), so free matches.
extern "C" void nv_png_free(void *p) { free(p); }

/*
 * files.h — file formats: PNG and JPEG images, safetensors, IDX (the MNIST format), zip
 * archives and raw tensor bytes (for PyTorch checkpoints).
 * Pure C, no Lua: lua_files.c binds these.
 *
 * Everything read comes from outside and is untrusted: readers check every size and
 * offset before touching memory, and fail with a message naming the file and the numbers
 * (nv_last_error()).  Dimension legend: C channels, H height, W width.
 *
 * Worked example (C):
 *     nv_tensor *img = nv_png_load("cat.png", NV_PNG_RGB);   // (3,H,W) in [0,1], new ref
 *     if (!img) fprintf(stderr, "%s\n", nv_last_error());
 *     else { nv_png_save(img, "copy.png"); nv_release(img); }
 */
#ifndef NV_FILES_H
#define NV_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "core/nv.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- lodepng shim (png_shim.cc) ------------------------------------------------------ */
/* Debian's liblodepng is built as C++ (mangled names), so only a C++ file can call it;
 * these plain C functions are that file's whole interface.  No exception escapes them. */

/* What the file stores, as opposed to the RGBA samples the decoder hands back. */
typedef struct nv_png_info {
  unsigned width, height;
  int color_type;      /* PNG color type: 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA */
  int bit_depth;       /* 1, 2, 4, 8 or 16, as stored */
  int transparent;     /* 1 when a palette entry has alpha < 255 or a tRNS color key exists */
  int sample_bits;     /* 8 or 16: depth of the decoded RGBA samples */
} nv_png_info;

/* Returned by nv_png_decode when width*height exceeds max_pixels (lodepng's codes are < 200). */
#define NV_PNG_TOO_LARGE 1000u
/* Returned when the file is too small to hold the pixels its header claims. */
#define NV_PNG_FORGED 1001u

/* Decodes a PNG held in memory to interleaved RGBA: 8-bit samples, or 16-bit big-endian ones
 * when the file stores 16 bits.  On success returns 0 and *pixels is a new malloc'd buffer
 * (free with nv_png_free); otherwise returns an error code for nv_png_error_text, and
 * *pixels is NULL (info->width and height are set when the IHDR could be read). */
unsigned nv_png_decode(const unsigned char *buf, size_t len, size_t max_pixels,
                       unsigned char **pixels, nv_png_info *info);
/* Encodes interleaved 8-bit samples with channels 1 (gray), 2 (gray+alpha), 3 (RGB) or
 * 4 (RGBA), keeping that color type.  On success returns 0 and *png (new, nv_png_free)
 * holds *pnglen bytes. */
unsigned nv_png_encode(const unsigned char *pixels, unsigned width, unsigned height,
                       int channels, unsigned char **png, size_t *pnglen);
const char *nv_png_error_text(unsigned code);   /* static string */
void nv_png_free(void *p);

/* ---- PNG ------------------------------------------------------------------------------ */
enum {
  NV_PNG_NATIVE = 0,   /* channels as stored: gray 1, gray+alpha 2, RGB 3, RGBA 4,
                          palette 3 (4 with transparency); a tRNS color key adds alpha */
  NV_PNG_RGB = 1,      /* 3 channels: gray replicated, alpha dropped */
  NV_PNG_GRAY = 2      /* 1 channel: luminance 0.299 R + 0.587 G + 0.114 B, alpha dropped */
};

/* New (C,H,W) tensor in [0,1] (samples / 255, or / 65535 for 16-bit files), or NULL. */
nv_tensor *nv_png_load(const char *path, int mode);
/* Same from bytes in memory; name is used in error messages (e.g. "<bytes>"). */
nv_tensor *nv_png_load_bytes(const unsigned char *buf, size_t len, int mode, const char *name);
/* 1 when t can be saved as PNG: (C,H,W) with C in 1..4 or (H,W), H and W >= 1;
 * otherwise 0 with "expected (C,H,W) with C in 1..4 or (H,W), got (5,3,3)". */
int nv_png_check_shape(const nv_tensor *t);
/* Writes t (borrowed, any strides) as an 8-bit PNG: values clamped to [0,1], NaN -> 0,
 * rounded to the nearest of 256 levels.  Returns 1, or 0 with the error set. */
int nv_png_save(const nv_tensor *t, const char *path);
/* PNG bytes of t in *png (free with nv_png_free), *len their count; 1, or 0 with the error set */
int nv_png_encode_tensor(const nv_tensor *t, unsigned char **png, size_t *len);

/* ---- safetensors ----------------------------------------------------------------------- */
/* https://github.com/huggingface/safetensors: u64 little-endian header length N, N bytes of
 * JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {k: v}},
 * then the data; offsets count from the first byte after the header. */

/* A byte string that may hold NULs (names come from JSON, which allows \u0000). */
typedef struct nv_str {
  char *s;             /* malloc'd, NUL-terminated for convenience */
  size_t len;
} nv_str;

typedef struct nv_safetensors {
  int n;               /* tensors, in the order of their data in the file */
  nv_str *names;       /* names[n] */
  nv_tensor **tensors; /* tensors[n], owned: a caller may take one and set the slot to NULL */
  int nmeta;           /* "__metadata__" entries, sorted by key */
  nv_str *meta_keys, *meta_values;
} nv_safetensors;

/* Reads every tensor (F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL) as float32.
 * Returns a new set (free with nv_safetensors_free), or NULL with the error set. */
nv_safetensors *nv_safetensors_load(const char *path);
void nv_safetensors_free(nv_safetensors *f);   /* NULL-safe; releases the tensors left */
/* Writes n tensors (borrowed, any strides) as F32 and nmeta metadata pairs (may be 0).
 * Keys are sorted; the header is padded with spaces to a multiple of 8 bytes.  Names must
 * be distinct and must not be "__metadata__".  Returns 1, or 0 with the error set. */
int nv_safetensors_save(const char *path, int n, const nv_str *names, nv_tensor *const *ts,
                        int nmeta, const nv_str *meta_keys, const nv_str *meta_values);

/* IEEE half-precision bits to float (safetensors F16, ONNX FLOAT16) */
float nv_half_to_float(uint16_t h);

/* ---- IDX (MNIST) ------------------------------------------------------------------------- */
/* Reads an IDX file, gzip-compressed or not: bytes 0 0 type ndim, ndim big-endian u32 sizes,
 * then big-endian data of type ubyte 0x08, byte 0x09, short 0x0B, int 0x0C, float 0x0D or
 * double 0x0E.  Returns a new float32 tensor of that shape holding the raw values. */
nv_tensor *nv_idx_load(const char *path);

/* ---- raw tensor bytes ------------------------------------------------------------------ */
/* Element types as safetensors names them: F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8
 * BOOL.  nv_dtype_size returns the element size in bytes, or 0 for an unknown name. */
int nv_dtype_size(const char *dtype);
/* New contiguous float32 tensor of shape size[ndim] whose element (i1..in) is the little-endian
 * element at offset + sum(ik * stride[k]) of the storage b[0..nbytes) of dtype (a strided view
 * into a shared storage, as PyTorch saves one).  Sizes, strides and the offset are untrusted:
 * all non-negative, the furthest element inside the storage, the element count at most
 * max(storage elements, 2^24).  NULL with the error set (prefixed by name) otherwise. */
nv_tensor *nv_tensor_from_bytes(const unsigned char *b, size_t nbytes, const char *dtype,
                                int64_t offset, int ndim, const int64_t *size,
                                const int64_t *stride, const char *name);

/* ---- images: PNG or JPEG, told apart by their first bytes ------------------------------- */
/* New (C,H,W) tensor in [0,1] from a PNG or JPEG file (mode as for PNG), or NULL. */
nv_tensor *nv_image_load(const char *path, int mode);

/* ---- JPEG (jpeg.c, libjpeg-turbo) -------------------------------------------------------- */
/* Decodes baseline or progressive JPEG bytes: gray files give 1 channel and colour ones 3
 * natively (NV_PNG_RGB / NV_PNG_GRAY convert, gray through libjpeg's own 0.299/0.587/0.114).
 * The pixel count is checked from the header before anything is allocated; corrupt data
 * returns NULL with the error set, never exits.  New (C,H,W) tensor in [0,1], samples / 255. */
nv_tensor *nv_jpeg_load_bytes(const unsigned char *buf, size_t len, int mode, const char *name);
/* Writes t (borrowed; shape as for nv_png_check_shape) as a baseline JPEG of quality 1..100:
 * 1 or 2 channels as grayscale, 3 or 4 as colour (alpha dropped), values clamped to [0,1].
 * Returns 1, or 0 with the error set. */
int nv_jpeg_save(const nv_tensor *t, const char *path, int quality);

/* ---- zip archives (zip.c, libzip) -------------------------------------------------------- */
typedef struct nv_zip nv_zip;
/* Opens an archive read-only, with libzip's consistency checks.  New handle or NULL. */
nv_zip *nv_zip_open(const char *path);
void nv_zip_close(nv_zip *z);                  /* NULL-safe */
int64_t nv_zip_count(nv_zip *z);               /* entries */
const char *nv_zip_name(nv_zip *z, int64_t i); /* borrowed, valid until close; NULL if none */
/* Finds entry `name` and its declared (uncompressed) size, refused above max so that a forged
 * size is caught before anything is allocated; a compressed entry of over 16 MiB that would
 * inflate more than 1100 times (deflate's own limit is ~1032:1: a bzip2 bomb) is refused too.
 * Returns its index, or -1 with the error set. */
int64_t nv_zip_entry(nv_zip *z, const char *name, size_t max, size_t *size);
/* Reads entry idx whole into buf[size] (size from nv_zip_entry, buf the caller's).  The bytes
 * must be exactly the declared size and pass libzip's CRC check.  1, or 0 with the error set. */
int nv_zip_read_into(nv_zip *z, int64_t idx, unsigned char *buf, size_t size);
/* Reads the first n bytes of entry idx into buf[n] (n at most its declared size), inflating
 * no more than that; the CRC is not checked (the entry is not read to its end).  1, or 0. */
int nv_zip_read_head(nv_zip *z, int64_t idx, unsigned char *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif

/*
 * files.c — PNG, safetensors and IDX readers and writers (see files.h).
 *
 * All input is untrusted.  The rule throughout: every length read from a file is compared
 * with what the file actually holds before it is used to allocate or index, and arithmetic
 * on such lengths is done in 64 bits with explicit overflow checks.  Failures set an error
 * naming the file, what is wrong and the numbers involved.
 */
#define _POSIX_C_SOURCE 200809L
#include "files.h"

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

/* ---- shared helpers ------------------------------------------------------------------- */
static int host_little_endian(void) {
  const uint16_t one = 1;
  return *(const unsigned char *)&one == 1;
}

/* Opens path for reading and checks it is a regular file (fopen happily opens a directory).
 * *size receives its length. */
static FILE *open_regular(const char *path, int64_t *size) {
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
static int read_exact(FILE *f, void *buf, size_t n, const char *path, const char *what) {
  size_t got = fread(buf, 1, n, f);
  if (got == n) return 1;
  if (ferror(f)) return nv_seterr("cannot read %s: %s", path, strerror(errno));
  return nv_seterr("%s: truncated while reading %s (%zu of %zu bytes)", path, what, got, n);
}

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
  FILE *f = open_regular(path, &size);
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
  int ok = read_exact(f, buf, (size_t)size, path, "the file");
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

/* ---- JSON (the safetensors header) ----------------------------------------------------- */
/* A small DOM parser for RFC 8259 JSON.  Bounded: nesting deeper than JSON_MAXDEPTH is
 * refused, every read checks the end pointer, and strings are measured before allocating. */
#define JSON_MAXDEPTH 32

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jval {
  int type;
  nv_str key;            /* member name when this value sits in an object */
  nv_str str;            /* J_STR: decoded bytes */
  int is_int;            /* J_NUM: 1 when an integer literal that fits int64 */
  int64_t i;             /* J_NUM: its value */
  int n;                 /* J_ARR, J_OBJ: number of children */
  struct jval *kids;     /* J_ARR, J_OBJ: children */
} jval;

typedef struct {
  const char *p, *begin, *end;
  char err[160];
} jparser;

static void jval_free(jval *v) {
  free(v->key.s);
  free(v->str.s);
  for (int k = 0; k < v->n; k++) jval_free(&v->kids[k]);
  free(v->kids);
}

static int jfail(jparser *jp, const char *what) {
  if (!jp->err[0]) {
    if (jp->p < jp->end)
      snprintf(jp->err, sizeof jp->err, "%s at byte %lld ('%c')", what,
               (long long)(jp->p - jp->begin), *jp->p >= 32 && *jp->p < 127 ? *jp->p : '?');
    else
      snprintf(jp->err, sizeof jp->err, "%s at byte %lld (end of header)", what,
               (long long)(jp->p - jp->begin));
  }
  return 0;
}

static void jskip_ws(jparser *jp) {
  while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
    jp->p++;
}

static int hex4(const char *s, unsigned *out) {
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    char c = s[k];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 63));
    o[2] = (char)(0x80 | (cp & 63));
    return 3;
  }
  o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 63));
  o[2] = (char)(0x80 | (cp >> 6 & 63)); o[3] = (char)(0x80 | (cp & 63));
  return 4;
}

/* jp->p is at the opening quote.  Decoded text is never longer than its source (an escape
 * of 6 or 12 characters yields at most 3 or 4 bytes), so the source length bounds the buffer. */
static int jparse_string(jparser *jp, nv_str *out) {
  const char *q = ++jp->p;
  while (q < jp->end && *q != '"') q += (*q == '\\' && q + 1 < jp->end) ? 2 : 1;
  if (q >= jp->end) return jfail(jp, "unterminated string");
  char *o = malloc((size_t)(q - jp->p) + 1);
  if (!o) return jfail(jp, "out of memory");
  size_t n = 0;
  while (jp->p < q) {
    unsigned char c = (unsigned char)*jp->p;
    if (c < 0x20) { free(o); return jfail(jp, "control character in string"); }
    if (c != '\\') { o[n++] = (char)c; jp->p++; continue; }
    char e = jp->p[1], r = 0;
    switch (e) {
    case '"': case '\\': case '/': r = e; break;
    case 'b': r = '\b'; break;
    case 'f': r = '\f'; break;
    case 'n': r = '\n'; break;
    case 'r': r = '\r'; break;
    case 't': r = '\t'; break;
    default: break;
    }
    if (r) {
      o[n++] = r;
      jp->p += 2;
      continue;
    }
    unsigned cp, lo;
    if (e != 'u' || q - jp->p < 6 || !hex4(jp->p + 2, &cp)) {
      free(o);
      return jfail(jp, "bad escape");
    }
    jp->p += 6;
    if (cp >= 0xD800 && cp < 0xDC00) {   /* high surrogate: a low one must follow */
      if (q - jp->p < 6 || jp->p[0] != '\\' || jp->p[1] != 'u' || !hex4(jp->p + 2, &lo) ||
          lo < 0xDC00 || lo > 0xDFFF) { free(o); return jfail(jp, "unpaired surrogate"); }
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      jp->p += 6;
    } else if (cp >= 0xDC00 && cp < 0xE000) { free(o); return jfail(jp, "unpaired surrogate"); }
    n += put_utf8(o + n, cp);
  }
  jp->p = q + 1;
  o[n] = 0;
  out->s = o;
  out->len = n;
  return 1;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?  Integers are kept exactly; other numbers
 * are only validated, since the safetensors schema has no use for them. */
static int jparse_number(jparser *jp, jval *v) {
  const char *p = jp->p, *e = jp->end;
  int neg = p < e && *p == '-';
  if (neg) p++;
  if (p >= e || *p < '0' || *p > '9') return jfail(jp, "bad number");
  int overflow = 0;
  uint64_t mag = 0;
  if (*p == '0') p++;
  else
    for (; p < e && *p >= '0' && *p <= '9'; p++) {
      if (mag > (UINT64_MAX - 9) / 10) overflow = 1;
      mag = mag * 10 + (uint64_t)(*p - '0');
    }
  int frac = 0;
  if (p < e && *p == '.') {
    frac = 1;
    if (++p >= e || *p < '0' || *p > '9') { jp->p = p; return jfail(jp, "bad number"); }
    while (p < e && *p >= '0' && *p <= '9') p++;
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    frac = 1;
    p++;
    if (p < e && (*p == '+' || *p == '-')) p++;
    if (p >= e || *p < '0' || *p > '9') { jp->p = p; return jfail(jp, "bad number"); }
    while (p < e && *p >= '0' && *p <= '9') p++;
  }
  v->type = J_NUM;
  v->is_int = !frac && !overflow && mag <= (uint64_t)INT64_MAX;
  v->i = v->is_int ? (neg ? -(int64_t)mag : (int64_t)mag) : 0;
  jp->p = p;
  return 1;
}

static int jparse_value(jparser *jp, jval *v, int depth);

/* Arrays and objects: children are collected in a doubling array. */
static int jparse_container(jparser *jp, jval *v, int depth) {
  int obj = *jp->p == '{';
  char close = obj ? '}' : ']';
  if (depth > JSON_MAXDEPTH) return jfail(jp, "nesting deeper than 32 levels");
  v->type = obj ? J_OBJ : J_ARR;
  jp->p++;
  jskip_ws(jp);
  if (jp->p < jp->end && *jp->p == close) { jp->p++; return 1; }
  int cap = 0;
  for (;;) {
    if (v->n == cap) {
      if (cap > INT_MAX / 4) return jfail(jp, "too many elements");
      int ncap = cap ? 2 * cap : 4;
      jval *k = realloc(v->kids, (size_t)ncap * sizeof *k);
      if (!k) return jfail(jp, "out of memory");
      v->kids = k;
      cap = ncap;
    }
    jval *kid = &v->kids[v->n];
    memset(kid, 0, sizeof *kid);
    v->n++;   /* counted at once so jval_free sees partial children */
    jskip_ws(jp);
    if (obj) {
      if (jp->p >= jp->end || *jp->p != '"') return jfail(jp, "expected a member name");
      if (!jparse_string(jp, &kid->key)) return 0;
      jskip_ws(jp);
      if (jp->p >= jp->end || *jp->p != ':') return jfail(jp, "expected ':'");
      jp->p++;
    }
    if (!jparse_value(jp, kid, depth + 1)) return 0;
    jskip_ws(jp);
    if (jp->p < jp->end && *jp->p == ',') { jp->p++; continue; }
    if (jp->p < jp->end && *jp->p == close) { jp->p++; return 1; }
    return jfail(jp, obj ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static int jliteral(jparser *jp, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(jp->end - jp->p) < n || memcmp(jp->p, word, n) != 0)
    return jfail(jp, "unexpected character");
  jp->p += n;
  return 1;
}

static int jparse_value(jparser *jp, jval *v, int depth) {
  jskip_ws(jp);
  if (jp->p >= jp->end) return jfail(jp, "unexpected end");
  switch (*jp->p) {
  case '{': case '[': return jparse_container(jp, v, depth);
  case '"': v->type = J_STR; return jparse_string(jp, &v->str);
  case 't': v->type = J_BOOL; v->i = 1; return jliteral(jp, "true");
  case 'f': v->type = J_BOOL; return jliteral(jp, "false");
  case 'n': v->type = J_NULL; return jliteral(jp, "null");
  default:
    if (*jp->p == '-' || (*jp->p >= '0' && *jp->p <= '9')) return jparse_number(jp, v);
    return jfail(jp, "unexpected character");
  }
}

/* Parses the whole of [s, s+n): one value, then only whitespace. */
static int json_parse(const char *s, size_t n, jval *root, char *err, size_t errlen) {
  jparser jp = {s, s, s + n, {0}};
  memset(root, 0, sizeof *root);
  int ok = jparse_value(&jp, root, 1);
  if (ok) {
    jskip_ws(&jp);
    if (jp.p != jp.end) ok = jfail(&jp, "trailing characters after the JSON value");
  }
  if (!ok) {
    jval_free(root);
    memset(root, 0, sizeof *root);
    snprintf(err, errlen, "%s", jp.err);
  }
  return ok;
}

/* ---- safetensors: reading ----------------------------------------------------------------- */
/* The reference implementation refuses headers above 100 MB. */
#define ST_MAX_HEADER ((uint64_t)100000000)
#define ST_NAME(x) (int)((x).len > 80 ? 80 : (x).len), (x).s   /* for "%.*s" */

enum { DT_F64, DT_F32, DT_F16, DT_BF16, DT_I64, DT_I32, DT_I16, DT_I8, DT_U64, DT_U32, DT_U16,
       DT_U8, DT_BOOL, DT_COUNT };
static const char *const dt_names[DT_COUNT] = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16",
                                               "I8", "U64", "U32", "U16", "U8", "BOOL"};
static const int dt_sizes[DT_COUNT] = {8, 4, 2, 2, 8, 4, 2, 1, 8, 4, 2, 1, 1};

typedef struct {
  const nv_str *name;     /* borrowed from the JSON tree */
  int dtype, ndim;
  int64_t size[NV_MAXDIM];
  int64_t begin, end;     /* byte range relative to the data section */
} st_entry;

static int str_cmp(const nv_str *a, const nv_str *b) {
  size_t n = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->s, b->s, n);
  return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int str_is(const nv_str *s, const char *lit) {
  return s->len == strlen(lit) && memcmp(s->s, lit, s->len) == 0;
}

static int str_dup(nv_str *dst, const nv_str *src) {
  dst->s = malloc(src->len + 1);
  if (!dst->s) return nv_seterr("out of memory");
  memcpy(dst->s, src->s, src->len);
  dst->s[src->len] = 0;
  dst->len = src->len;
  return 1;
}

static const jval *jget(const jval *obj, const char *key) {
  for (int k = 0; k < obj->n; k++)
    if (str_is(&obj->kids[k].key, key)) return &obj->kids[k];
  return NULL;
}

float nv_half_to_float(uint16_t h) {
  int exp = h >> 10 & 0x1f, mant = h & 0x3ff;
  float v;
  if (exp == 0) v = ldexpf((float)mant, -24);                        /* subnormal: m 2^-24 */
  else if (exp == 31) v = mant ? NAN : INFINITY;
  else v = ldexpf((float)(mant | 0x400), exp - 25);                  /* (1024+m) 2^(e-25) */
  return h & 0x8000 ? -v : v;
}

static uint64_t le_u64(const unsigned char *b, int n) {
  uint64_t v = 0;
  for (int k = n - 1; k >= 0; k--) v = v << 8 | b[k];
  return v;
}

/* Converts n little-endian elements of dtype dt to float. */
static void st_convert(int dt, const unsigned char *b, float *d, size_t n) {
  for (size_t i = 0; i < n; i++, b += dt_sizes[dt]) {
    uint64_t u = le_u64(b, dt_sizes[dt]);
    switch (dt) {
    case DT_F64: { double x; memcpy(&x, &u, 8); d[i] = (float)x; break; }
    case DT_F32: { uint32_t w = (uint32_t)u; memcpy(&d[i], &w, 4); break; }
    case DT_F16: d[i] = nv_half_to_float((uint16_t)u); break;
    case DT_BF16: { uint32_t w = (uint32_t)u << 16; memcpy(&d[i], &w, 4); break; }  /* f32's top */
    case DT_I64: d[i] = (float)(int64_t)u; break;
    case DT_I32: d[i] = (float)(int32_t)(uint32_t)u; break;
    case DT_I16: d[i] = (float)(int16_t)(uint16_t)u; break;
    case DT_I8: d[i] = (float)(int8_t)(uint8_t)u; break;
    case DT_BOOL: d[i] = u ? 1.0f : 0.0f; break;
    default: d[i] = (float)u; break;   /* unsigned types */
    }
  }
}

/* Checks one header entry against the schema and the data size; fills e. */
static int st_check_entry(const char *path, const jval *v, int64_t data_len, st_entry *e) {
  const nv_str *nm = &v->key;
  e->name = nm;
  if (v->type != J_OBJ)
    return nv_seterr("%s: tensor '%.*s': expected an object with dtype, shape and data_offsets",
                     path, ST_NAME(*nm));
  const jval *dt = jget(v, "dtype"), *sh = jget(v, "shape"), *of = jget(v, "data_offsets");
  if (!dt || !sh || !of)
    return nv_seterr("%s: tensor '%.*s': missing \"%s\"", path, ST_NAME(*nm),
                     !dt ? "dtype" : !sh ? "shape" : "data_offsets");
  if (dt->type != J_STR)
    return nv_seterr("%s: tensor '%.*s': dtype is not a string", path, ST_NAME(*nm));
  e->dtype = -1;
  for (int k = 0; k < DT_COUNT; k++)
    if (str_is(&dt->str, dt_names[k])) e->dtype = k;
  if (e->dtype < 0)
    return nv_seterr("%s: tensor '%.*s': unsupported dtype \"%.*s\" (nnvis reads F64 F32 F16 BF16 "
                     "I64 I32 I16 I8 U64 U32 U16 U8 BOOL)", path, ST_NAME(*nm), ST_NAME(dt->str));
  if (sh->type != J_ARR)
    return nv_seterr("%s: tensor '%.*s': shape is not an array", path, ST_NAME(*nm));
  if (sh->n > NV_MAXDIM)
    return nv_seterr("%s: tensor '%.*s' has %d dimensions, nnvis supports at most %d", path,
                     ST_NAME(*nm), sh->n, NV_MAXDIM);
  e->ndim = sh->n;
  /* numel * size must fit the data section, so any dimension larger than it is refused
   * before the product can overflow. */
  int64_t bytes = dt_sizes[e->dtype];
  for (int k = 0; k < sh->n; k++) {
    const jval *d = &sh->kids[k];
    if (d->type != J_NUM || !d->is_int || d->i < 0)
      return nv_seterr("%s: tensor '%.*s': shape entry %d is not a non-negative integer", path,
                       ST_NAME(*nm), k + 1);
    e->size[k] = d->i;
  }
  for (int k = 0; k < sh->n; k++) {
    if (e->size[k] == 0) { bytes = 0; break; }
    if (e->size[k] > INT64_MAX / bytes) {
      char s[200];
      return nv_seterr("%s: tensor '%.*s': shape %s is too large", path, ST_NAME(*nm),
                       nv_shape_str(s, sizeof s, e->ndim, e->size));
    }
    bytes *= e->size[k];
  }
  if (of->type != J_ARR || of->n != 2 || of->kids[0].type != J_NUM || !of->kids[0].is_int ||
      of->kids[1].type != J_NUM || !of->kids[1].is_int || of->kids[0].i < 0 || of->kids[1].i < 0)
    return nv_seterr("%s: tensor '%.*s': data_offsets must be [begin, end] with non-negative "
                     "integers", path, ST_NAME(*nm));
  e->begin = of->kids[0].i;
  e->end = of->kids[1].i;
  if (e->begin > e->end)
    return nv_seterr("%s: tensor '%.*s': data_offsets [%lld, %lld] have begin > end", path,
                     ST_NAME(*nm), (long long)e->begin, (long long)e->end);
  if (e->end > data_len)
    return nv_seterr("%s: tensor '%.*s': data_offsets [%lld, %lld] run past the end of the data "
                     "(%lld bytes after the header; truncated file?)", path, ST_NAME(*nm),
                     (long long)e->begin, (long long)e->end, (long long)data_len);
  if (e->end - e->begin != bytes) {
    char s[200];
    return nv_seterr("%s: tensor '%.*s' of shape %s and dtype %s needs %lld bytes, data_offsets "
                     "[%lld, %lld] hold %lld", path, ST_NAME(*nm),
                     nv_shape_str(s, sizeof s, e->ndim, e->size), dt_names[e->dtype],
                     (long long)bytes, (long long)e->begin, (long long)e->end,
                     (long long)(e->end - e->begin));
  }
  return 1;
}

static int entry_by_offset(const void *a, const void *b) {
  const st_entry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return (x->end > y->end) - (x->end < y->end);
}

static int entry_by_name(const void *a, const void *b) {
  return str_cmp(((const st_entry *)a)->name, ((const st_entry *)b)->name);
}

static int jkid_by_key(const void *a, const void *b) {
  return str_cmp(&((const jval *)a)->key, &((const jval *)b)->key);
}

/* Names must be unique and data ranges disjoint (empty ranges overlap nothing). */
static int st_check_layout(const char *path, st_entry *es, int n) {
  qsort(es, (size_t)n, sizeof *es, entry_by_name);
  for (int k = 1; k < n; k++)
    if (str_cmp(es[k].name, es[k - 1].name) == 0)
      return nv_seterr("%s: tensor name '%.*s' appears twice in the header", path,
                       ST_NAME(*es[k].name));
  qsort(es, (size_t)n, sizeof *es, entry_by_offset);
  const st_entry *last = NULL;
  for (int k = 0; k < n; k++) {
    if (es[k].begin == es[k].end) continue;
    if (last && es[k].begin < last->end)
      return nv_seterr("%s: data of tensors '%.*s' [%lld, %lld] and '%.*s' [%lld, %lld] overlap",
                       path, ST_NAME(*last->name), (long long)last->begin, (long long)last->end,
                       ST_NAME(*es[k].name), (long long)es[k].begin, (long long)es[k].end);
    if (!last || es[k].end > last->end) last = &es[k];
  }
  return 1;
}

/* Reads one tensor's bytes at file offset pos, converting in chunks so that a non-F32 tensor
 * never needs a second full-size buffer. */
static nv_tensor *st_read_tensor(FILE *f, const char *path, const st_entry *e, int64_t pos) {
  nv_tensor *t = nv_empty(e->ndim, e->size);
  if (!t) return NULL;
  int64_t n = nv_numel(t);
  float *d = nv_data(t);
  if (n == 0) return t;
  if (fseeko(f, (off_t)pos, SEEK_SET) != 0) {
    nv_seterr("cannot seek in %s: %s", path, strerror(errno));
    nv_release(t);
    return NULL;
  }
  if (e->dtype == DT_F32 && host_little_endian()) {
    if (!read_exact(f, d, (size_t)n * 4, path, "tensor data")) { nv_release(t); return NULL; }
    return t;
  }
  enum { CHUNK = 1 << 16 };   /* a multiple of every element size */
  unsigned char buf[CHUNK];
  int es = dt_sizes[e->dtype];
  for (int64_t i = 0; i < n;) {
    int64_t m = n - i < CHUNK / es ? n - i : CHUNK / es;
    if (!read_exact(f, buf, (size_t)(m * es), path, "tensor data")) { nv_release(t); return NULL; }
    st_convert(e->dtype, buf, d + i, (size_t)m);
    i += m;
  }
  return t;
}

void nv_safetensors_free(nv_safetensors *f) {
  if (!f) return;
  for (int k = 0; k < f->n; k++) {
    if (f->names) free(f->names[k].s);
    if (f->tensors) nv_release(f->tensors[k]);
  }
  for (int k = 0; k < f->nmeta; k++) {
    if (f->meta_keys) free(f->meta_keys[k].s);
    if (f->meta_values) free(f->meta_values[k].s);
  }
  free(f->names);
  free(f->tensors);
  free(f->meta_keys);
  free(f->meta_values);
  free(f);
}

/* Metadata: an object of strings, copied in key order. */
static int st_read_meta(const char *path, jval *m, nv_safetensors *out) {
  if (m->type != J_OBJ) return nv_seterr("%s: __metadata__ is not an object", path);
  for (int k = 0; k < m->n; k++)
    if (m->kids[k].type != J_STR)
      return nv_seterr("%s: __metadata__ must map strings to strings, '%.*s' is not a string",
                       path, ST_NAME(m->kids[k].key));
  qsort(m->kids, (size_t)m->n, sizeof *m->kids, jkid_by_key);
  for (int k = 1; k < m->n; k++)
    if (str_cmp(&m->kids[k].key, &m->kids[k - 1].key) == 0)
      return nv_seterr("%s: __metadata__ key '%.*s' appears twice", path, ST_NAME(m->kids[k].key));
  out->meta_keys = calloc((size_t)m->n + 1, sizeof(nv_str));
  out->meta_values = calloc((size_t)m->n + 1, sizeof(nv_str));
  if (!out->meta_keys || !out->meta_values) return nv_seterr("out of memory");
  for (; out->nmeta < m->n; out->nmeta++)
    if (!str_dup(&out->meta_keys[out->nmeta], &m->kids[out->nmeta].key) ||
        !str_dup(&out->meta_values[out->nmeta], &m->kids[out->nmeta].str)) {
      out->nmeta++;   /* so nv_safetensors_free sees the half-copied pair */
      return 0;
    }
  return 1;
}

nv_safetensors *nv_safetensors_load(const char *path) {
  int64_t fsize;
  FILE *f = open_regular(path, &fsize);
  if (!f) return NULL;
  char *hdr = NULL;
  jval root = {0};
  st_entry *es = NULL;
  nv_safetensors *out = NULL;
  unsigned char lenbuf[8];
  if (fsize < 8) {
    nv_seterr("%s: file of %lld bytes is too short for a safetensors header (8-byte length)",
              path, (long long)fsize);
    goto fail;
  }
  if (!read_exact(f, lenbuf, 8, path, "the header length")) goto fail;
  uint64_t hlen = le_u64(lenbuf, 8);
  if (hlen > (uint64_t)(fsize - 8)) {
    nv_seterr("%s: header length %llu is larger than the rest of the file (%lld bytes; truncated "
              "or not a safetensors file)", path, (unsigned long long)hlen, (long long)(fsize - 8));
    goto fail;
  }
  if (hlen > ST_MAX_HEADER) {
    nv_seterr("%s: header length %llu exceeds the limit of %llu bytes", path,
              (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
    goto fail;
  }
  hdr = malloc((size_t)hlen + 1);
  if (!hdr) { nv_seterr("out of memory reading the header of %s", path); goto fail; }
  if (!read_exact(f, hdr, (size_t)hlen, path, "the header")) goto fail;
  char jerr[160];
  if (!json_parse(hdr, (size_t)hlen, &root, jerr, sizeof jerr)) {
    nv_seterr("%s: header is not valid JSON: %s", path, jerr);
    goto fail;
  }
  if (root.type != J_OBJ) { nv_seterr("%s: header is not a JSON object", path); goto fail; }
  int64_t data_start = 8 + (int64_t)hlen, data_len = fsize - data_start;
  out = calloc(1, sizeof *out);
  es = calloc((size_t)root.n + 1, sizeof *es);
  if (!out || !es) { nv_seterr("out of memory"); goto fail; }
  int n = 0, seen_meta = 0;
  for (int k = 0; k < root.n; k++) {
    jval *v = &root.kids[k];
    if (str_is(&v->key, "__metadata__")) {
      if (seen_meta++) { nv_seterr("%s: __metadata__ appears twice", path); goto fail; }
      if (!st_read_meta(path, v, out)) goto fail;
    } else if (!st_check_entry(path, v, data_len, &es[n++])) {
      goto fail;
    }
  }
  if (!st_check_layout(path, es, n)) goto fail;
  out->names = calloc((size_t)n + 1, sizeof *out->names);
  out->tensors = calloc((size_t)n + 1, sizeof *out->tensors);
  if (!out->names || !out->tensors) { nv_seterr("out of memory"); goto fail; }
  for (; out->n < n; out->n++) {
    const st_entry *e = &es[out->n];
    if (!str_dup(&out->names[out->n], e->name)) goto fail;
    out->tensors[out->n] = st_read_tensor(f, path, e, data_start + e->begin);
    if (!out->tensors[out->n]) { out->n++; goto fail; }
  }
  free(es);
  jval_free(&root);
  free(hdr);
  fclose(f);
  return out;
fail:
  nv_safetensors_free(out);
  free(es);
  jval_free(&root);
  free(hdr);
  fclose(f);
  return NULL;
}

/* ---- safetensors: writing ----------------------------------------------------------------- */
typedef struct {
  char *s;
  size_t len, cap;
  int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) { b->oom = 1; return; }
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_json_string(sbuf *b, const nv_str *s) {
  sb_puts(b, "\"");
  for (size_t k = 0; k < s->len; k++) {
    unsigned char c = (unsigned char)s->s[k];
    char esc[8];
    if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; sb_put(b, esc, 2); }
    else if (c < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", c); sb_puts(b, esc); }
    else sb_put(b, (const char *)&c, 1);
  }
  sb_puts(b, "\"");
}

typedef struct {
  const nv_str *key;
  int idx;
} keyed;

static int keyed_cmp(const void *a, const void *b) {
  return str_cmp(((const keyed *)a)->key, ((const keyed *)b)->key);
}

/* Sorts keys[0..n) into a new index; refuses duplicates (and "__metadata__" when forbid). */
static keyed *sorted_keys(const nv_str *keys, int n, const char *what, int forbid_meta) {
  keyed *ks = malloc(((size_t)n + 1) * sizeof *ks);
  if (!ks) { nv_seterr("out of memory"); return NULL; }
  for (int k = 0; k < n; k++) {
    ks[k].key = &keys[k];
    ks[k].idx = k;
    if (forbid_meta && str_is(&keys[k], "__metadata__")) {
      free(ks);
      nv_seterr("safetensors: \"__metadata__\" cannot be a tensor name");
      return NULL;
    }
  }
  qsort(ks, (size_t)n, sizeof *ks, keyed_cmp);
  for (int k = 1; k < n; k++)
    if (str_cmp(ks[k].key, ks[k - 1].key) == 0) {
      nv_seterr("safetensors: %s '%.*s' appears twice", what, ST_NAME(*ks[k].key));
      free(ks);
      return NULL;
    }
  return ks;
}

static int write_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n; }

/* Writes a float array as little-endian F32. */
static int write_f32(FILE *f, const float *d, int64_t n) {
  if (host_little_endian()) return write_all(f, d, (size_t)n * 4);
  unsigned char buf[4096];
  for (int64_t i = 0; i < n;) {
    int64_t m = n - i < 1024 ? n - i : 1024;
    for (int64_t j = 0; j < m; j++) {
      uint32_t u;
      memcpy(&u, &d[i + j], 4);
      for (int k = 0; k < 4; k++) buf[4 * j + k] = (unsigned char)(u >> 8 * k);
    }
    if (!write_all(f, buf, (size_t)m * 4)) return 0;
    i += m;
  }
  return 1;
}

int nv_safetensors_save(const char *path, int n, const nv_str *names, nv_tensor *const *ts,
                        int nmeta, const nv_str *meta_keys, const nv_str *meta_values) {
  keyed *tk = sorted_keys(names, n, "tensor name", 1);
  keyed *mk = tk ? sorted_keys(meta_keys, nmeta, "metadata key", 0) : NULL;
  if (!tk || !mk) { free(tk); return 0; }
  /* Header, compact as the reference writer makes it: metadata first, then tensors by name,
   * data laid out in the same order. */
  sbuf h = {0};
  char num[64];
  sb_puts(&h, "{");
  if (nmeta > 0) {
    sb_puts(&h, "\"__metadata__\":{");
    for (int k = 0; k < nmeta; k++) {
      if (k) sb_puts(&h, ",");
      sb_json_string(&h, mk[k].key);
      sb_puts(&h, ":");
      sb_json_string(&h, &meta_values[mk[k].idx]);
    }
    sb_puts(&h, n ? "}," : "}");
  }
  int64_t off = 0;
  for (int k = 0; k < n; k++) {
    const nv_tensor *t = ts[tk[k].idx];
    if (k) sb_puts(&h, ",");
    sb_json_string(&h, tk[k].key);
    sb_puts(&h, ":{\"dtype\":\"F32\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
      snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)t->size[d]);
      sb_puts(&h, num);
    }
    int64_t bytes = nv_numel(t) * 4;
    snprintf(num, sizeof num, "],\"data_offsets\":[%lld,%lld]}", (long long)off,
             (long long)(off + bytes));
    sb_puts(&h, num);
    off += bytes;
  }
  sb_puts(&h, "}");
  while (h.len % 8) sb_puts(&h, " ");   /* data then starts 8-byte aligned */
  free(mk);
  if (h.oom) { free(h.s); free(tk); return nv_seterr("out of memory writing %s", path); }

  FILE *f = fopen(path, "wb");
  if (!f) {
    free(h.s);
    free(tk);
    return nv_seterr("cannot open %s for writing: %s", path, strerror(errno));
  }
  unsigned char lenbuf[8];
  for (int k = 0; k < 8; k++) lenbuf[k] = (unsigned char)((uint64_t)h.len >> 8 * k);
  int ok = write_all(f, lenbuf, 8) && write_all(f, h.s, h.len);
  int werr = ok ? 0 : errno;
  free(h.s);
  for (int k = 0; ok && k < n; k++) {
    nv_tensor *c = nv_contiguous_data(ts[tk[k].idx]);
    if (!c) { fclose(f); free(tk); return 0; }
    ok = write_f32(f, nv_data(c), nv_numel(c));
    if (!ok) werr = errno;
    nv_release(c);
  }
  free(tk);
  if (fclose(f) != 0 && ok) { ok = 0; werr = errno; }
  if (!ok) return nv_seterr("cannot write %s: %s", path, strerror(werr ? werr : EIO));
  return 1;
}

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

/* ---- raw tensor bytes (PyTorch storages) ------------------------------------------------- */
static int dtype_index(const char *dtype) {
  for (int k = 0; k < DT_COUNT; k++)
    if (strcmp(dtype, dt_names[k]) == 0) return k;
  return -1;
}

int nv_dtype_size(const char *dtype) {
  int dt = dtype_index(dtype);
  return dt < 0 ? 0 : dt_sizes[dt];
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
  int es = dt_sizes[dt];
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
    st_convert(dt, b + (size_t)offset * (size_t)es, d, (size_t)numel);
    return t;
  }
  int64_t idx[NV_MAXDIM] = {0}, pos = offset;
  for (int64_t i = 0; i < numel; i++) {
    st_convert(dt, b + (size_t)pos * (size_t)es, d + i, 1);
    for (int k = ndim - 1; k >= 0; k--) {   /* odometer over the view's indices */
      pos += stride[k];
      if (++idx[k] < size[k]) break;
      pos -= stride[k] * size[k];
      idx[k] = 0;
    }
  }
  return t;
}

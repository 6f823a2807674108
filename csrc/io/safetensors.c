/*
 * safetensors.c — safetensors reading and writing (Hugging Face's format: an 8-byte header
 * length, a JSON header, the raw data).
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
#include "io/json.h"

/* ---- safetensors: reading ----------------------------------------------------------------- */
/* The reference implementation refuses headers above 100 MB. */
#define ST_MAX_HEADER ((uint64_t)100000000)
#define ST_NAME(x) (int)((x).len > 80 ? 80 : (x).len), (x).s   /* for "%.*s" */


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


static int st_check_entry(const char *path, const nv_json *v, int64_t data_len, st_entry *e) {
  const nv_str *nm = &v->key;
  e->name = nm;
  if (v->type != NV_J_OBJ)
    return nv_seterr("%s: tensor '%.*s': expected an object with dtype, shape and data_offsets",
                     path, ST_NAME(*nm));
  const nv_json *dt = nv_json_get(v, "dtype"), *sh = nv_json_get(v, "shape"), *of = nv_json_get(v, "data_offsets");
  if (!dt || !sh || !of)
    return nv_seterr("%s: tensor '%.*s': missing \"%s\"", path, ST_NAME(*nm),
                     !dt ? "dtype" : !sh ? "shape" : "data_offsets");
  if (dt->type != NV_J_STR)
    return nv_seterr("%s: tensor '%.*s': dtype is not a string", path, ST_NAME(*nm));
  e->dtype = -1;
  for (int k = 0; k < NV_DT_COUNT; k++)
    if (str_is(&dt->str, nv_dt_names[k])) e->dtype = k;
  if (e->dtype < 0)
    return nv_seterr("%s: tensor '%.*s': unsupported dtype \"%.*s\" (nnvis reads F64 F32 F16 BF16 "
                     "I64 I32 I16 I8 U64 U32 U16 U8 BOOL)", path, ST_NAME(*nm), ST_NAME(dt->str));
  if (sh->type != NV_J_ARR)
    return nv_seterr("%s: tensor '%.*s': shape is not an array", path, ST_NAME(*nm));
  if (sh->n > NV_MAXDIM)
    return nv_seterr("%s: tensor '%.*s' has %d dimensions, nnvis supports at most %d", path,
                     ST_NAME(*nm), sh->n, NV_MAXDIM);
  e->ndim = sh->n;
  /* numel * size must fit the data section, so any dimension larger than it is refused
   * before the product can overflow. */
  int64_t bytes = nv_dt_sizes[e->dtype];
  for (int k = 0; k < sh->n; k++) {
    const nv_json *d = &sh->kids[k];
    if (d->type != NV_J_NUM || !d->is_int || d->i < 0)
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
  if (of->type != NV_J_ARR || of->n != 2 || of->kids[0].type != NV_J_NUM || !of->kids[0].is_int ||
      of->kids[1].type != NV_J_NUM || !of->kids[1].is_int || of->kids[0].i < 0 || of->kids[1].i < 0)
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
                     nv_shape_str(s, sizeof s, e->ndim, e->size), nv_dt_names[e->dtype],
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
  return str_cmp(&((const nv_json *)a)->key, &((const nv_json *)b)->key);
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
  if (e->dtype == NV_DT_F32 && nv_io_host_little_endian()) {
    if (!nv_io_read_exact(f, d, (size_t)n * 4, path, "tensor data")) { nv_release(t); return NULL; }
    return t;
  }
  enum { CHUNK = 1 << 16 };   /* a multiple of every element size */
  unsigned char buf[CHUNK];
  int es = nv_dt_sizes[e->dtype];
  for (int64_t i = 0; i < n;) {
    int64_t m = n - i < CHUNK / es ? n - i : CHUNK / es;
    if (!nv_io_read_exact(f, buf, (size_t)(m * es), path, "tensor data")) { nv_release(t); return NULL; }
    nv_dt_convert(e->dtype, buf, d + i, (size_t)m);
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
static int st_read_meta(const char *path, nv_json *m, nv_safetensors *out) {
  if (m->type != NV_J_OBJ) return nv_seterr("%s: __metadata__ is not an object", path);
  for (int k = 0; k < m->n; k++)
    if (m->kids[k].type != NV_J_STR)
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
  FILE *f = nv_io_open_regular(path, &fsize);
  if (!f) return NULL;
  char *hdr = NULL;
  nv_json root = {0};
  st_entry *es = NULL;
  nv_safetensors *out = NULL;
  unsigned char lenbuf[8];
  if (fsize < 8) {
    nv_seterr("%s: file of %lld bytes is too short for a safetensors header (8-byte length)",
              path, (long long)fsize);
    goto fail;
  }
  if (!nv_io_read_exact(f, lenbuf, 8, path, "the header length")) goto fail;
  uint64_t hlen = nv_io_le_u64(lenbuf, 8);
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
  if (!nv_io_read_exact(f, hdr, (size_t)hlen, path, "the header")) goto fail;
  char jerr[160];
  if (!nv_json_parse(hdr, (size_t)hlen, &root, jerr, sizeof jerr)) {
    nv_seterr("%s: header is not valid JSON: %s", path, jerr);
    goto fail;
  }
  if (root.type != NV_J_OBJ) { nv_seterr("%s: header is not a JSON object", path); goto fail; }
  int64_t data_start = 8 + (int64_t)hlen, data_len = fsize - data_start;
  out = calloc(1, sizeof *out);
  es = calloc((size_t)root.n + 1, sizeof *es);
  if (!out || !es) { nv_seterr("out of memory"); goto fail; }
  int n = 0, seen_meta = 0;
  for (int k = 0; k < root.n; k++) {
    nv_json *v = &root.kids[k];
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
  nv_json_free(&root);
  free(hdr);
  fclose(f);
  return out;
fail:
  nv_safetensors_free(out);
  free(es);
  nv_json_free(&root);
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
  if (nv_io_host_little_endian()) return write_all(f, d, (size_t)n * 4);
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


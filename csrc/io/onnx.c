#define _XOPEN_SOURCE 700   /* realpath */
/*
 * onnx.c — ONNX files: read with a size cap, unpack with protobuf-c under a memory budget,
 * decode tensors (raw_data, typed data fields, external data files) with every length,
 * offset and dimension checked.  The graph itself (nodes, attributes) is walked by the
 * binding, lua_onnx.c; the executor is lua/nnvis/nn/onnx.lua.
 */
#include "io/onnx.h"
#include "io/files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ONNX TensorProto.DataType */
enum { DT_FLOAT = 1, DT_UINT8, DT_INT8, DT_UINT16, DT_INT16, DT_INT32, DT_INT64, DT_STRING,
       DT_BOOL, DT_FLOAT16, DT_DOUBLE, DT_UINT32, DT_UINT64, DT_BFLOAT16 = 16 };

static const char *const dt_names[17] = {
  "undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64", "string", "bool",
  "float16", "double", "uint32", "uint64", "complex64", "complex128", "bfloat16"};
static const int dt_sizes[17] = {0, 4, 1, 1, 2, 2, 4, 8, 0, 1, 2, 8, 4, 8, 0, 0, 2};

const char *nv_onnx_dtype_name(int dtype) {
  return dtype >= 0 && dtype <= 16 ? dt_names[dtype] : "?";
}

/* ---- unpacking under a budget ---------------------------------------------------------- */
/* protobuf-c sizes what it allocates from the wire data, but a packed varint of one byte
 * becomes 8 bytes: the budget keeps a hostile file from turning into gigabytes. */
typedef struct budget { size_t left; } budget;
typedef union { size_t n; max_align_t align; } block_head;

static void *budget_alloc(void *ud, size_t n) {
  budget *b = ud;
  if (n > b->left || n > SIZE_MAX - sizeof(block_head)) return NULL;
  block_head *h = malloc(sizeof *h + n);
  if (!h) return NULL;
  h->n = n;
  b->left -= n;
  return h + 1;
}

static void budget_free(void *ud, void *p) {
  if (!p) return;
  block_head *h = (block_head *)p - 1;
  ((budget *)ud)->left += h->n;
  free(h);
}

static budget g_budget;   /* only touched between unpack and free_unpacked of one model */
static ProtobufCAllocator g_alloc = {budget_alloc, budget_free, &g_budget};

/* Initializers are unpacked one at a time, and the first big block protobuf-c asks for (the
 * raw_data bytes) is the storage of an nnvis tensor: a float32 initializer then becomes a
 * tensor without a copy, and loading needs little more memory than the weights. */
#define ADOPT_MIN ((size_t)1 << 16)
static struct { nv_tensor *t; size_t n; } g_adopt;
static budget g_init_budget;

static void *init_alloc(void *ud, size_t n) {
  budget *b = ud;
  if (!g_adopt.t && n >= ADOPT_MIN && n % sizeof(float) == 0 && n <= b->left) {
    int64_t len = (int64_t)(n / sizeof(float));
    g_adopt.t = nv_empty(1, &len);
    if (!g_adopt.t) return NULL;
    g_adopt.n = n;
    b->left -= n;
    return nv_data(g_adopt.t);
  }
  return budget_alloc(ud, n);
}

static void init_free(void *ud, void *p) {
  if (p && g_adopt.t && p == (void *)nv_data(g_adopt.t)) {
    ((budget *)ud)->left += g_adopt.n;
    nv_release(g_adopt.t);   /* a tensor made from the bytes keeps the storage alive */
    g_adopt.t = NULL;
    return;
  }
  budget_free(ud, p);
}

static ProtobufCAllocator g_init_alloc = {init_alloc, init_free, &g_init_budget};

void nv_onnx_free(nv_onnx_model *m) {
  if (!m) return;
  if (m->proto) protobuf_c_message_free_unpacked(&m->proto->base, &g_alloc);
  if (m->f) fclose(m->f);
  free(m->inits);
  free(m->path);
  free(m->dir);
  free(m);
}

static char *dup_str(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) { memcpy(d, s, n); d[n] = 0; }
  return d;
}

/* A new model with path, dir, f and size set (the file open, nothing read), or NULL with the
 * error set.  The file must be a regular one of 1 byte to 2 GiB. */
static nv_onnx_model *open_model(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) { nv_seterr("onnx.load: cannot open %s: %s", path, strerror(errno)); return NULL; }
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    fclose(f);
    nv_seterr("onnx.load: cannot read %s: not a regular file", path);
    return NULL;
  }
  int64_t n = (int64_t)sb.st_size;
  if (n > NV_ONNX_MAX_FILE) {
    fclose(f);
    nv_seterr("onnx.load: %s: file of %lld bytes is larger than the ONNX limit of 2 GiB (weights "
              "that big belong in external data files)", path, (long long)n);
    return NULL;
  }
  if (n == 0) { fclose(f); nv_seterr("onnx.load: %s: empty file, not an ONNX model", path); return NULL; }
  nv_onnx_model *m = calloc(1, sizeof *m);
  const char *slash = strrchr(path, '/');
  if (m) {
    m->f = f;
    m->size = n;
    m->path = dup_str(path, strlen(path));
    m->dir = slash ? dup_str(path, (size_t)(slash - path)) : dup_str(".", 1);
  }
  if (!m || !m->path || !m->dir) {
    if (!m) fclose(f);
    nv_onnx_free(m);
    nv_seterr("onnx.load: out of memory opening %s", path);
    return NULL;
  }
  return m;
}

/* n bytes at off of the model's file into dst; 0 with the error set when they are not there */
static int read_at(nv_onnx_model *m, int64_t off, void *dst, size_t n) {
  if (off < 0 || off > m->size || n > (uint64_t)(m->size - off))
    return nv_seterr("onnx.load: %s: not an ONNX model (the protobuf data is malformed or "
                     "truncated)", m->path);
  if (fseeko(m->f, (off_t)off, SEEK_SET) != 0 || fread(dst, 1, n, m->f) != n)
    return nv_seterr("onnx.load: cannot read %s: %s", m->path, strerror(errno));
  return 1;
}

/* ---- framing ----------------------------------------------------------------------------- */
/* Only the framing of two messages is walked here, to find where each initializer's bytes are:
 * ModelProto's fields (7 = graph) and GraphProto's (5 = initializer), each a key varint
 * (field << 3 | wire type) and, for length-delimited ones, a length varint.  protobuf-c
 * decodes the graph without its initializers in one go, then each initializer on its own,
 * so the whole file is never in memory twice. */
typedef struct bytes { unsigned char *p; size_t n, cap; } bytes;

static int bytes_put(bytes *b, const void *src, size_t n) {
  if (n > b->cap - b->n) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->n < n) cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) return nv_seterr("onnx.load: out of memory");
    b->p = p;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->n, src, n);
  b->n += n;
  return 1;
}

static int bytes_varint(bytes *b, uint64_t v) {
  unsigned char t[10];
  size_t n = 0;
  do { t[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)); v >>= 7; } while (v);
  return bytes_put(b, t, n);
}

/* appends the file's bytes [off, end) to b */
static int bytes_copy(bytes *b, nv_onnx_model *m, int64_t off, int64_t end) {
  unsigned char tmp[1 << 14];
  while (off < end) {
    size_t n = (size_t)(end - off) < sizeof tmp ? (size_t)(end - off) : sizeof tmp;
    if (!read_at(m, off, tmp, n) || !bytes_put(b, tmp, n)) return 0;
    off += (int64_t)n;
  }
  return 1;
}

static int read_varint(nv_onnx_model *m, int64_t *off, int64_t end, uint64_t *v) {
  unsigned char b[10];
  size_t n = end - *off < 10 ? (size_t)(end - *off) : 10;
  if (n == 0 || !read_at(m, *off, b, n)) return 0;
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    x |= (uint64_t)(b[i] & 0x7f) << (7 * i);
    if (!(b[i] & 0x80)) { *v = x; *off += (int64_t)i + 1; return 1; }
  }
  return 0;
}

/* the fields of a message in [off, end): field number, wire type, where the field starts and
 * where its payload starts and ends; 0 when the framing is broken */
typedef int (*field_fn)(void *ud, nv_onnx_model *m, uint64_t field, int wt, int64_t start,
                        int64_t dstart, int64_t dend);

static int walk_fields(nv_onnx_model *m, int64_t off, int64_t end, field_fn fn, void *ud) {
  while (off < end) {
    int64_t start = off, dstart, dend;
    uint64_t key, len;
    if (!read_varint(m, &off, end, &key)) return 0;
    int wt = (int)(key & 7);
    dstart = off;
    switch (wt) {
    case 0: if (!read_varint(m, &off, end, &len)) return 0; dend = off; break;
    case 1: dend = off + 8; break;
    case 5: dend = off + 4; break;
    case 2:
      if (!read_varint(m, &off, end, &len) || len > (uint64_t)(end - off)) return 0;
      dstart = off;
      dend = off + (int64_t)len;
      break;
    default: return 0;   /* groups (3, 4) are not in ONNX; 6, 7 do not exist */
    }
    if (dend > end) return 0;
    if (!fn(ud, m, key >> 3, wt, start, dstart, dend)) return 0;
    off = dend;
  }
  return 1;
}

typedef struct framing { bytes model, graph; int64_t gstart, gend; int graphs; } framing;

static int graph_field(void *ud, nv_onnx_model *m, uint64_t field, int wt, int64_t start,
                       int64_t dstart, int64_t dend) {
  framing *fr = ud;
  if (field == 5 && wt == 2) {   /* an initializer: remember where it is */
    if (m->n_init % 64 == 0) {
      if (m->n_init >= (1 << 24)) return 0;
      void *p = realloc(m->inits, ((size_t)m->n_init + 64) * sizeof *m->inits);
      if (!p) return 0;
      m->inits = p;
    }
    m->inits[m->n_init].off = dstart;
    m->inits[m->n_init].len = dend - dstart;
    m->n_init++;
    return 1;
  }
  return bytes_copy(&fr->graph, m, start, dend);
}

static int model_field(void *ud, nv_onnx_model *m, uint64_t field, int wt, int64_t start,
                       int64_t dstart, int64_t dend) {
  framing *fr = ud;
  if (field == 7 && wt == 2) {
    fr->graphs++;
    fr->gstart = dstart;
    fr->gend = dend;
    return 1;
  }
  return bytes_copy(&fr->model, m, start, dend);
}

nv_onnx_model *nv_onnx_read(const char *path) {
  nv_onnx_model *m = open_model(path);
  if (!m) return NULL;
  framing fr;
  memset(&fr, 0, sizeof fr);
  int ok = walk_fields(m, 0, m->size, model_field, &fr) && fr.graphs <= 1 &&
           (fr.graphs == 0 || walk_fields(m, fr.gstart, fr.gend, graph_field, &fr));
  if (ok && fr.graphs == 1) {   /* the model's own fields, then the graph without initializers */
    unsigned char key = 7 << 3 | 2;
    ok = bytes_put(&fr.model, &key, 1) && bytes_varint(&fr.model, fr.graph.n) &&
         bytes_put(&fr.model, fr.graph.p, fr.graph.n);
  }
  free(fr.graph.p);
  if (ok) {
    g_budget.left = 2 * fr.model.n + ((size_t)64 << 20);
    m->proto = onnx__model_proto__unpack(&g_alloc, fr.model.n, fr.model.p);
  }
  free(fr.model.p);
  if (!m->proto) {
    nv_onnx_free(m);
    nv_seterr("onnx.load: %s: not an ONNX model (the protobuf data is malformed, truncated or "
              "too large)", path);
    return NULL;
  }
  if (!m->proto->graph || m->proto->n_opset_import == 0) {
    nv_onnx_free(m);
    nv_seterr("onnx.load: %s: not an ONNX model (no graph or no opset_import)", path);
    return NULL;
  }
  return m;
}

/* TensorProto's fields but raw_data (9), whose payload is read from the file straight into
 * the tensor's storage afterwards */
typedef struct tensor_framing { bytes rest; int64_t raw_off, raw_len; } tensor_framing;

static int tensor_field(void *ud, nv_onnx_model *m, uint64_t field, int wt, int64_t start,
                        int64_t dstart, int64_t dend) {
  tensor_framing *tf = ud;
  if (field == 9 && wt == 2) {   /* the last raw_data wins, as in protobuf */
    tf->raw_off = dstart;
    tf->raw_len = dend - dstart;
    return 1;
  }
  return bytes_copy(&tf->rest, m, start, dend);
}

Onnx__TensorProto *nv_onnx_initializer(nv_onnx_model *m, int k) {
  int64_t off = m->inits[k].off, end = off + m->inits[k].len;
  tensor_framing tf;
  memset(&tf, 0, sizeof tf);
  tf.raw_off = -1;
  Onnx__TensorProto *tp = NULL;
  g_init_budget.left = 2 * (size_t)m->inits[k].len + ((size_t)64 << 20);
  if (walk_fields(m, off, end, tensor_field, &tf))
    tp = onnx__tensor_proto__unpack(&g_init_alloc, tf.rest.n, tf.rest.p ? tf.rest.p : (const uint8_t *)"");
  free(tf.rest.p);
  if (!tp) {
    nv_seterr("onnx.load: %s: initializer %d is not a valid TensorProto", m->path, k + 1);
    return NULL;
  }
  if (tf.raw_off >= 0) {
    size_t n = (size_t)tf.raw_len;
    tp->raw_data.data = n ? g_init_alloc.alloc(g_init_alloc.allocator_data, n) : NULL;
    tp->raw_data.len = n;
    tp->has_raw_data = 1;
    if (n && (!tp->raw_data.data || !read_at(m, tf.raw_off, tp->raw_data.data, n))) {
      if (!tp->raw_data.data) nv_seterr("onnx.load: %s: out of memory for initializer %d", m->path, k + 1);
      nv_onnx_initializer_free(tp);
      return NULL;
    }
  }
  return tp;
}

void nv_onnx_initializer_free(Onnx__TensorProto *tp) {
  if (tp) protobuf_c_message_free_unpacked(&tp->base, &g_init_alloc);
}

/* ---- tensors ------------------------------------------------------------------------------ */
static float half_bits(uint32_t u, int dtype) {
  if (dtype == DT_BFLOAT16) {
    uint32_t w = (u & 0xffff) << 16;   /* the top half of a float32 */
    float v;
    memcpy(&v, &w, 4);
    return v;
  }
  return nv_half_to_float((uint16_t)u);
}

static uint64_t le_bits(const unsigned char *b, int n) {
  uint64_t v = 0;
  for (int k = n - 1; k >= 0; k--) v = v << 8 | b[k];
  return v;
}

/* element i of little-endian raw bytes as a float or an int64 */
static double raw_float(const unsigned char *b, int dtype) {
  uint64_t u = le_bits(b, dt_sizes[dtype]);
  switch (dtype) {
  case DT_FLOAT: { uint32_t w = (uint32_t)u; float v; memcpy(&v, &w, 4); return v; }
  case DT_DOUBLE: { double v; memcpy(&v, &u, 8); return v; }
  default: return half_bits((uint32_t)u, dtype);
  }
}

static int64_t raw_int(const unsigned char *b, int dtype) {
  uint64_t u = le_bits(b, dt_sizes[dtype]);
  switch (dtype) {
  case DT_INT8: return (int8_t)(uint8_t)u;
  case DT_INT16: return (int16_t)(uint16_t)u;
  case DT_INT32: return (int32_t)(uint32_t)u;
  case DT_BOOL: return u != 0;
  default: return (int64_t)u;   /* int64, and the unsigned types (uint64 wraps as in numpy) */
  }
}

static int is_float_type(int dt) {
  return dt == DT_FLOAT || dt == DT_FLOAT16 || dt == DT_BFLOAT16 || dt == DT_DOUBLE;
}

/* the external data's location must stay inside the model's folder */
static int safe_location(const char *loc) {
  if (!loc || !*loc || loc[0] == '/' || strchr(loc, '\\')) return 0;
  const char *p = loc;
  while (*p) {
    const char *e = strchr(p, '/');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == 2 && p[0] == '.' && p[1] == '.') return 0;
    if (!e) break;
    p = e + 1;
  }
  return 1;
}

static int parse_i64(const char *s, int64_t *v) {
  if (!s || !*s) return 0;
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (errno || *end || x < 0) return 0;
  *v = x;
  return 1;
}

/* Reads the external bytes of tp into a new buffer of exactly need bytes. */
static unsigned char *read_external(const nv_onnx_model *m, const Onnx__TensorProto *tp,
                                    const char *what, size_t need) {
  const char *loc = NULL;
  int64_t off = 0, len = -1;
  for (size_t k = 0; k < tp->n_external_data; k++) {
    const Onnx__StringStringEntryProto *e = tp->external_data[k];
    if (!e->key) continue;
    int ok = 1;
    if (strcmp(e->key, "location") == 0) loc = e->value;
    else if (strcmp(e->key, "offset") == 0) ok = parse_i64(e->value, &off);
    else if (strcmp(e->key, "length") == 0) ok = parse_i64(e->value, &len);
    if (!ok) {
      nv_seterr("onnx.load: %s: %s: external data %s '%s' is not a non-negative integer", m->path,
                what, e->key, e->value ? e->value : "");
      return NULL;
    }
  }
  if (!safe_location(loc)) {
    nv_seterr("onnx.load: %s: %s: external data location '%s' must be a relative path inside "
              "the model's folder (no '..', no leading '/')", m->path, what, loc ? loc : "");
    return NULL;
  }
  if (len >= 0 && (uint64_t)len != need) {
    nv_seterr("onnx.load: %s: %s: external data length %lld does not match the %zu bytes its "
              "shape needs", m->path, what, (long long)len, need);
    return NULL;
  }
  size_t plen = strlen(m->dir) + strlen(loc) + 2;
  char *full = malloc(plen);
  if (!full) { nv_seterr("onnx.load: out of memory"); return NULL; }
  snprintf(full, plen, "%s/%s", m->dir, loc);
  /* The path string is checked above; the real path (symlinks resolved, which opens nothing,
   * so a FIFO cannot block here) must lie inside the model's real folder too, and the file
   * is opened without following a last symlink and without waiting on a FIFO. */
  char *real = realpath(full, NULL), *dir = realpath(m->dir, NULL);
  size_t dn = dir ? strlen(dir) : 0;
  if (!real || !dir || strncmp(real, dir, dn) != 0 || (real[dn] != '/' && !(dn == 1 && dir[0] == '/'))) {
    int e = errno;
    nv_seterr("onnx.load: %s: %s: external data %s: %s", m->path, what, full,
              !real || !dir ? strerror(e) : "leads outside the model's folder (through a symlink)");
    free(real); free(dir); free(full);
    return NULL;
  }
  int fd = open(real, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  free(real); free(dir);
  struct stat sb;
  FILE *f = NULL;
  if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || !(f = fdopen(fd, "rb"))) {
    nv_seterr("onnx.load: %s: %s: cannot open external data %s: %s", m->path, what, full,
              fd >= 0 ? "not a regular file" : strerror(errno));
    if (fd >= 0) close(fd);
    free(full);
    return NULL;
  }
  if ((uint64_t)off > (uint64_t)sb.st_size || need > (uint64_t)sb.st_size - (uint64_t)off) {
    nv_seterr("onnx.load: %s: %s: external data of %zu bytes at offset %lld lies outside %s (%lld bytes)",
              m->path, what, need, (long long)off, full, (long long)sb.st_size);
    fclose(f);
    free(full);
    return NULL;
  }
  unsigned char *buf = malloc(need ? need : 1);
  int ok = buf && fseeko(f, (off_t)off, SEEK_SET) == 0 && fread(buf, 1, need, f) == need;
  fclose(f);
  if (!ok) {
    nv_seterr("onnx.load: %s: %s: cannot read %zu bytes of external data from %s", m->path, what,
              need, full);
    free(buf);
    buf = NULL;
  }
  free(full);
  return buf;
}

void nv_onnx_array_free(nv_onnx_array *a) {
  nv_release(a->t);
  free(a->ints);
  a->t = NULL;
  a->ints = NULL;
}

/* count of the typed field that holds dtype, and whether it is the right one */
static size_t typed_count(const Onnx__TensorProto *tp, int dt) {
  switch (dt) {
  case DT_FLOAT: return tp->n_float_data;
  case DT_DOUBLE: return tp->n_double_data;
  case DT_INT64: return tp->n_int64_data;
  case DT_UINT32: case DT_UINT64: return tp->n_uint64_data;
  default: return tp->n_int32_data;   /* int8/16/32, uint8/16, bool, float16, bfloat16 */
  }
}

static double typed_float(const Onnx__TensorProto *tp, int dt, size_t i) {
  if (dt == DT_FLOAT) return tp->float_data[i];
  if (dt == DT_DOUBLE) return tp->double_data[i];
  return half_bits((uint32_t)tp->int32_data[i], dt);
}

static int64_t typed_int(const Onnx__TensorProto *tp, int dt, size_t i) {
  if (dt == DT_INT64) return tp->int64_data[i];
  if (dt == DT_UINT32 || dt == DT_UINT64) return (int64_t)tp->uint64_data[i];
  if (dt == DT_BOOL) return tp->int32_data[i] != 0;
  return tp->int32_data[i];
}

int nv_onnx_tensor(const nv_onnx_model *m, const Onnx__TensorProto *tp, const char *what,
                   nv_onnx_array *a) {
  memset(a, 0, sizeof *a);
  int dt = tp->has_data_type ? tp->data_type : 0;
  a->dtype = dt;
  if (dt < 1 || dt > 16 || dt_sizes[dt] == 0)
    return nv_seterr("onnx.load: %s: %s has data type %d (%s), which nnvis cannot read", m->path,
                     what, dt, nv_onnx_dtype_name(dt));
  if (tp->n_dims > NV_MAXDIM)
    return nv_seterr("onnx.load: %s: %s has %zu dimensions, nnvis supports at most %d", m->path,
                     what, tp->n_dims, NV_MAXDIM);
  int64_t numel = 1;
  for (size_t k = 0; k < tp->n_dims; k++) {
    int64_t d = tp->dims[k];
    if (d < 0 || (d > 0 && numel > (NV_ONNX_MAX_FILE * 4) / d))
      return nv_seterr("onnx.load: %s: %s has dimension %zu of size %lld: negative or too large",
                       m->path, what, k + 1, (long long)d);
    numel *= d;
    a->dims[k] = d;
  }
  a->ndim = (int)tp->n_dims;
  a->numel = numel;
  a->is_float = is_float_type(dt);
  size_t esize = (size_t)dt_sizes[dt], need = (size_t)numel * esize;
  if (!a->is_float && numel > NV_ONNX_MAX_INTS)
    return nv_seterr("onnx.load: %s: %s is an integer tensor of %lld elements, more than the %lld "
                     "nnvis reads", m->path, what, (long long)numel, (long long)NV_ONNX_MAX_INTS);
  /* where the values are, checked against the shape before anything is allocated */
  const unsigned char *raw = NULL;
  unsigned char *ext = NULL;
  int external = tp->has_data_location && tp->data_location == 1;
  if (external) {
    if (need > (size_t)NV_ONNX_MAX_FILE * 4)
      return nv_seterr("onnx.load: %s: %s needs %zu bytes, too many", m->path, what, need);
    raw = ext = read_external(m, tp, what, need);
    if (!ext) return 0;
  } else if (tp->has_raw_data && tp->raw_data.data) {
    if (tp->raw_data.len != need)
      return nv_seterr("onnx.load: %s: %s of %lld %s elements needs %zu bytes of raw_data, has %zu",
                       m->path, what, (long long)numel, nv_onnx_dtype_name(dt), need, tp->raw_data.len);
    raw = tp->raw_data.data;
  } else if (typed_count(tp, dt) != (size_t)numel) {
    return nv_seterr("onnx.load: %s: %s of %lld %s elements has %zu values in its data field",
                     m->path, what, (long long)numel, nv_onnx_dtype_name(dt), typed_count(tp, dt));
  }
  if (a->is_float) {
    if (raw && dt == DT_FLOAT && g_adopt.t && raw == (const unsigned char *)nv_data(g_adopt.t) &&
        g_adopt.n == need) {
      /* the bytes are an nnvis storage already: a contiguous view of the right shape */
      int64_t st[NV_MAXDIM], acc = 1;
      for (int k = a->ndim - 1; k >= 0; k--) { st[k] = acc; acc *= a->dims[k]; }
      a->t = nv_from_storage(g_adopt.t->st, 0, a->ndim, a->dims, st);
      if (!a->t) return nv_seterr("onnx.load: %s: out of memory for %s", m->path, what);
      return 1;
    }
    a->t = nv_empty(a->ndim, a->dims);
    if (!a->t) { free(ext); return nv_seterr("onnx.load: %s: out of memory for %s", m->path, what); }
    float *d = nv_data(a->t);
    if (raw && dt == DT_FLOAT) memcpy(d, raw, need);   /* x86 and arm are little-endian */
    else
      for (int64_t i = 0; i < numel; i++)
        d[i] = (float)(raw ? raw_float(raw + (size_t)i * esize, dt) : typed_float(tp, dt, (size_t)i));
  } else if (numel > 0) {
    a->ints = malloc((size_t)numel * sizeof *a->ints);
    if (!a->ints) { free(ext); return nv_seterr("onnx.load: %s: out of memory for %s", m->path, what); }
    for (int64_t i = 0; i < numel; i++)
      a->ints[i] = raw ? raw_int(raw + (size_t)i * esize, dt) : typed_int(tp, dt, (size_t)i);
  }
  free(ext);
  return 1;
}

int nv_onnx_read_tensor(const char *path, nv_onnx_array *a) {
  memset(a, 0, sizeof *a);
  nv_onnx_model *m = open_model(path);
  if (!m) return 0;
  unsigned char *buf = malloc((size_t)m->size);
  if (!buf || !read_at(m, 0, buf, (size_t)m->size)) {
    if (!buf) nv_seterr("onnx.load: out of memory reading %s", path);
    free(buf);
    nv_onnx_free(m);
    return 0;
  }
  g_budget.left = 2 * (size_t)m->size + ((size_t)64 << 20);
  Onnx__TensorProto *tp = onnx__tensor_proto__unpack(&g_alloc, (size_t)m->size, buf);
  free(buf);
  int ok = 0;
  if (!tp) nv_seterr("onnx.load: %s: not a serialized ONNX TensorProto", path);
  else ok = nv_onnx_tensor(m, tp, "the tensor", a);
  if (tp) protobuf_c_message_free_unpacked(&tp->base, &g_alloc);
  nv_onnx_free(m);
  return ok;
}

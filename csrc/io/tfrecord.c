/*
 * tfrecord.c — TFRecord framing with CRC-32C checks, a reader that survives cut and corrupt
 * files, and the fast path of TensorBoard's Event protocol buffer (see tfrecord.h).
 * Field numbers are those of tensorflow/core/util/event.proto, summary.proto, tensor.proto.
 */
#define _FILE_OFFSET_BITS 64
#define _POSIX_C_SOURCE 200809L
#include "io/tfrecord.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- CRC-32C: reflected polynomial 0x82F63B78, slicing by 8 (portable C) ---------------- */
static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    crc_tab[0][i] = c;
  }
  for (int t = 1; t < 8; t++)
    for (int i = 0; i < 256; i++) crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xFF];
}

uint32_t nv_crc32c(uint32_t crc, const void *data, size_t n) {
  pthread_once(&crc_once, crc_init);
  const unsigned char *p = data;
  uint32_t c = ~crc;
  while (n >= 8) {
    /* little-endian composition, so the result does not depend on the host's byte order */
    uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
    c = crc_tab[7][lo & 0xFF] ^ crc_tab[6][(lo >> 8) & 0xFF] ^ crc_tab[5][(lo >> 16) & 0xFF] ^ crc_tab[4][lo >> 24] ^
        crc_tab[3][p[4]] ^ crc_tab[2][p[5]] ^ crc_tab[1][p[6]] ^ crc_tab[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) c = crc_tab[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
  return ~c;
}

uint32_t nv_tfrecord_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

static uint64_t le64(const unsigned char *b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
  return v;
}
static uint32_t le32(const unsigned char *b) {
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* ---- the reader ------------------------------------------------------------------------ */
#define CHUNK ((size_t)1 << 20)

int nv_tfrecord_open(nv_tfrecord_reader *r, const char *path, uint64_t offset) {
  memset(r, 0, sizeof *r);
  if (offset > (uint64_t)INT64_MAX) { errno = EINVAL; return -1; }
  r->f = fopen(path, "rb");
  if (!r->f) return -1;
  if (fseeko(r->f, (off_t)offset, SEEK_SET) != 0) {
    int e = errno;
    fclose(r->f);
    r->f = NULL;
    errno = e;
    return -1;
  }
  r->base = offset;
  return 0;
}

void nv_tfrecord_close(nv_tfrecord_reader *r) {
  if (r->f) fclose(r->f);
  r->f = NULL;
  free(r->buf);
  r->buf = NULL;
  r->cap = r->len = r->pos = 0;
}

uint64_t nv_tfrecord_offset(const nv_tfrecord_reader *r) { return r->base + r->pos; }

/* at least n unread bytes in the buffer (n <= MAX_RECORD + 16), reading as needed: 1, or 0
 * at the end of the file or when memory runs out (the caller stops as at a cut tail) */
static int ensure(nv_tfrecord_reader *r, size_t n) {
  if (r->len - r->pos >= n) return 1;
  if (r->eof || !r->f) return 0;
  if (r->pos > 0) {                        /* keep only what is unread */
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->base += r->pos;
    r->len -= r->pos;
    r->pos = 0;
  }
  size_t want = n > CHUNK ? n : CHUNK;
  if (want > r->cap) {
    unsigned char *nb = realloc(r->buf, want);
    if (!nb) return 0;
    r->buf = nb;
    r->cap = want;
  }
  while (r->len < n) {
    size_t got = fread(r->buf + r->len, 1, r->cap - r->len, r->f);
    r->len += got;
    if (got == 0) { r->eof = 1; break; }
  }
  return r->len - r->pos >= n;
}

/* drops the buffer and moves the file to offset (for a record too large to read) */
static void skip_to(nv_tfrecord_reader *r, uint64_t offset) {
  r->base = offset;
  r->pos = r->len = 0;
  if (offset > (uint64_t)INT64_MAX || fseeko(r->f, (off_t)offset, SEEK_SET) != 0) r->eof = 1;
}

static int header_ok(const unsigned char *p) {
  return nv_tfrecord_mask(nv_crc32c(0, p, 8)) == le32(p + 8);
}

int nv_tfrecord_next(nv_tfrecord_reader *r, nv_tfrecord_record *rec) {
  memset(rec, 0, sizeof *rec);
  if (!r->f) return NV_TFR_END;
  if (!ensure(r, 12)) return NV_TFR_END;          /* the end, or a header not yet written */
  uint64_t start = nv_tfrecord_offset(r);
  const unsigned char *p = r->buf + r->pos;
  if (!header_ok(p)) {
    /* the length cannot be trusted: look for the next position where a length and its CRC
     * agree and the length is plausible; none before the end skips to the end */
    r->pos++;
    for (;;) {
      if (!ensure(r, 12)) {
        r->pos = r->len;
        snprintf(r->message, sizeof r->message, "bad length CRC at byte %llu, skipped to the end (byte %llu)",
                 (unsigned long long)start, (unsigned long long)nv_tfrecord_offset(r));
        break;
      }
      p = r->buf + r->pos;
      if (header_ok(p) && le64(p) <= NV_TFRECORD_MAX_RECORD) {
        snprintf(r->message, sizeof r->message, "bad length CRC at byte %llu, skipped to byte %llu",
                 (unsigned long long)start, (unsigned long long)nv_tfrecord_offset(r));
        break;
      }
      r->pos++;
    }
    rec->message = r->message;
    rec->offset = start;
    return NV_TFR_WARNING;
  }
  uint64_t len = le64(p);
  if (len > NV_TFRECORD_MAX_RECORD) {
    snprintf(r->message, sizeof r->message, "record of %llu bytes at byte %llu is over the %llu MB limit, skipped",
             (unsigned long long)len, (unsigned long long)start, (unsigned long long)(NV_TFRECORD_MAX_RECORD >> 20));
    skip_to(r, start + 16 + len);
    rec->message = r->message;
    rec->offset = start;
    return NV_TFR_WARNING;
  }
  size_t total = 16 + (size_t)len;
  if (!ensure(r, total)) return NV_TFR_END;        /* cut tail: read again from start later */
  p = r->buf + r->pos;
  if (nv_tfrecord_mask(nv_crc32c(0, p + 12, (size_t)len)) != le32(p + 12 + len)) {
    snprintf(r->message, sizeof r->message, "bad CRC at byte %llu, record skipped", (unsigned long long)start);
    r->pos += total;
    rec->message = r->message;
    rec->offset = start;
    return NV_TFR_WARNING;
  }
  rec->data = p + 12;
  rec->len = (size_t)len;
  rec->offset = start;
  r->pos += total;
  return NV_TFR_RECORD;
}

/* ---- protocol buffers: bounded reads ------------------------------------------------------ */
typedef struct { const unsigned char *p, *end; } pb;

static int pb_varint(pb *b, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (b->p >= b->end) return 0;
    unsigned char c = *b->p++;
    x |= (uint64_t)(c & 0x7F) << shift;
    if (!(c & 0x80)) { *v = x; return 1; }
  }
  return 0;
}

/* the next field: its number, wire type, and (length-delimited) its bytes or (others) its
 * number value (fixed32/fixed64 as raw bits) */
typedef struct { uint32_t field; int wire; uint64_t num; pb sub; } pb_field;

static int pb_next(pb *b, pb_field *f) {
  uint64_t key, n;
  if (!pb_varint(b, &key)) return 0;
  f->num = 0;
  f->field = (uint32_t)(key >> 3);
  f->wire = (int)(key & 7);
  switch (f->wire) {
  case 0: return pb_varint(b, &f->num);
  case 1:
    if (b->end - b->p < 8) return 0;
    f->num = le64(b->p);
    b->p += 8;
    return 1;
  case 5:
    if (b->end - b->p < 4) return 0;
    f->num = le32(b->p);
    b->p += 4;
    return 1;
  case 2:
    if (!pb_varint(b, &n) || n > (uint64_t)(b->end - b->p)) return 0;
    f->sub.p = b->p;
    f->sub.end = b->p + n;
    b->p += n;
    return 1;
  default: return 0;                       /* groups (3, 4) are not used by these messages */
  }
}

static double as_double(uint64_t bits) { double d; memcpy(&d, &bits, 8); return d; }
static float as_float(uint32_t bits) { float x; memcpy(&x, &bits, 4); return x; }

enum { DT_FLOAT = 1, DT_DOUBLE = 2 };

/* a TensorProto holding exactly one float or double: 1 and *v, else 0 */
static int tensor_scalar(pb t, double *v) {
  pb_field f;
  uint64_t dtype = 0;
  int nvals = 0;
  const unsigned char *content = NULL;
  size_t content_len = 0;
  while (t.p < t.end) {
    if (!pb_next(&t, &f)) return 0;
    if (f.field == 1 && f.wire == 0) dtype = f.num;
    else if (f.field == 2 && f.wire == 2) {            /* TensorShapeProto: every dim of size 1 */
      pb s = f.sub, d;
      pb_field g, h;
      while (s.p < s.end) {
        if (!pb_next(&s, &g)) return 0;
        if (g.field == 2 && g.wire == 2) {
          d = g.sub;
          while (d.p < d.end) {
            if (!pb_next(&d, &h)) return 0;
            if (h.field == 1 && h.wire == 0 && h.num != 1) return 0;
          }
        }
      }
    } else if (f.field == 4 && f.wire == 2) { content = f.sub.p; content_len = (size_t)(f.sub.end - f.sub.p); }
    else if (f.field == 5 && f.wire == 5) { *v = as_float((uint32_t)f.num); nvals++; }
    else if (f.field == 5 && f.wire == 2) {
      size_t n = (size_t)(f.sub.end - f.sub.p);
      if (n % 4) return 0;
      if (n == 4) *v = as_float(le32(f.sub.p));
      nvals += (int)(n > 8 ? 2 : n / 4);
    } else if (f.field == 6 && f.wire == 1) { *v = as_double(f.num); nvals++; }
    else if (f.field == 6 && f.wire == 2) {
      size_t n = (size_t)(f.sub.end - f.sub.p);
      if (n % 8) return 0;
      if (n == 8) *v = as_double(le64(f.sub.p));
      nvals += (int)(n > 16 ? 2 : n / 8);
    } else if (f.field != 3 && f.field != 9) return 0;  /* string, int, half... values: not a scalar */
  }
  if (content) {
    if (dtype == DT_FLOAT && content_len == 4) { *v = as_float(le32(content)); nvals++; }
    else if (dtype == DT_DOUBLE && content_len == 8) { *v = as_double(le64(content)); nvals++; }
    else return 0;
  }
  if (nvals != 1) return 0;
  return dtype == DT_FLOAT || dtype == DT_DOUBLE;
}

/* the plugin name of a SummaryMetadata, or an empty one */
static pb plugin_name(pb m) {
  pb none = { NULL, NULL };
  pb_field f, g;
  while (m.p < m.end) {
    if (!pb_next(&m, &f)) return none;
    if (f.field == 1 && f.wire == 2) {
      pb d = f.sub;
      while (d.p < d.end) {
        if (!pb_next(&d, &g)) return none;
        if (g.field == 1 && g.wire == 2) return g.sub;
      }
    }
  }
  return none;
}

/* one Summary.Value: 1 with the scalar added to ev, 0 when it is something else, -1 malformed */
static int value_scalar(pb v, nv_tf_event *ev) {
  pb_field f;
  pb tag = { NULL, NULL }, tensor = { NULL, NULL }, plugin = { NULL, NULL };
  int has_simple = 0, has_tensor = 0;
  double x = 0;
  while (v.p < v.end) {
    if (!pb_next(&v, &f)) return -1;
    switch (f.field) {
    case 1: if (f.wire != 2) return -1; tag = f.sub; break;
    case 2: if (f.wire != 5) return -1; x = as_float((uint32_t)f.num); has_simple = 1; break;
    case 7: break;                                      /* node_name */
    case 8: if (f.wire != 2) return -1; tensor = f.sub; has_tensor = 1; break;
    case 9: if (f.wire != 2) return -1; plugin = plugin_name(f.sub); break;
    default: return 0;                                  /* image, histo, audio, old histogram */
    }
  }
  if (!tag.p) return 0;
  if (!has_simple) {
    size_t pl = plugin.p ? (size_t)(plugin.end - plugin.p) : 0;
    if (!has_tensor || (pl && !(pl == 7 && memcmp(plugin.p, "scalars", 7) == 0))) return 0;
    if (!tensor_scalar(tensor, &x)) return 0;
  }
  if (ev->n >= NV_TF_MAX_SCALARS) return 0;
  nv_tf_scalar *s = &ev->scalars[ev->n++];
  s->tag = (const char *)tag.p;
  s->tag_len = (size_t)(tag.end - tag.p);
  s->value = x;
  return 1;
}

int nv_tf_event_decode(const unsigned char *data, size_t len, nv_tf_event *ev) {
  pb b = { data, data + len };
  pb_field f;
  int other = 0;
  ev->wall = 0;
  ev->step = 0;
  ev->n = 0;
  while (b.p < b.end) {
    if (!pb_next(&b, &f)) return NV_TF_MALFORMED;
    if (f.field == 1 && f.wire == 1) ev->wall = as_double(f.num);
    else if (f.field == 2 && f.wire == 0) ev->step = (int64_t)f.num;
    else if (f.field == 4 || f.field == 8 || f.field == 9) other = 1;   /* graphs, run metadata */
    else if (f.field == 5 && f.wire == 2) {
      pb s = f.sub;
      pb_field g;
      while (s.p < s.end) {
        if (!pb_next(&s, &g)) return NV_TF_MALFORMED;
        if (g.field != 1 || g.wire != 2) continue;
        int k = value_scalar(g.sub, ev);
        if (k < 0) return NV_TF_MALFORMED;
        if (k == 0) other = 1;
      }
    }
  }
  return other ? NV_TF_OTHER : NV_TF_SIMPLE;
}

/*
 * tfrecord.h — TensorBoard event files: TFRecord framing, CRC-32C, and the hot path of an
 * Event's protocol buffer (wall time, step and each scalar value), so that a log of 10^6
 * scalars is read without a Lua call per value.  Pure C, no Lua: csrc/lua/lua_http.c binds it.
 *
 * A record is: u64 length, u32 masked CRC-32C of those 8 bytes, the data, u32 masked CRC-32C
 * of the data (mask: ((crc >> 15) | (crc << 17)) + 0xa282ead8).  Files come from outside and
 * may be cut (a run still writing) or corrupt: the reader never allocates more than
 * NV_TFRECORD_MAX_RECORD for a record, whatever its length field says.
 *
 * Worked example (C):
 *     nv_tfrecord_reader r;
 *     if (nv_tfrecord_open(&r, "run/events.out.tfevents.1", 0) == 0) {
 *       nv_tfrecord_record rec;
 *       int k;
 *       while ((k = nv_tfrecord_next(&r, &rec)) != NV_TFR_END)
 *         if (k == NV_TFR_RECORD) use(rec.data, rec.len);      // else rec.message: a warning
 *       uint64_t resume = nv_tfrecord_offset(&r);              // where the next scan starts
 *       nv_tfrecord_close(&r);
 *     }
 */
#ifndef NV_TFRECORD_H
#define NV_TFRECORD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* the largest record read (an image summary of a few MB is common; 64 MB is not a log) */
#define NV_TFRECORD_MAX_RECORD ((uint64_t)64 << 20)

/* crc32c(crc, data, n): CRC-32C (Castagnoli) of data, continuing crc (0 to start) */
uint32_t nv_crc32c(uint32_t crc, const void *data, size_t n);
/* TFRecord's masked CRC of a CRC-32C */
uint32_t nv_tfrecord_mask(uint32_t crc);

typedef struct nv_tfrecord_reader {
  FILE *f;                 /* owned; NULL once closed */
  unsigned char *buf;      /* owned read buffer */
  size_t cap, len, pos;    /* buffer capacity, bytes in it, next unread byte */
  uint64_t base;           /* file offset of buf[0] */
  int eof;                 /* the file had no more bytes at the last read */
  char message[160];       /* the last warning */
} nv_tfrecord_reader;

typedef struct nv_tfrecord_record {
  const unsigned char *data;   /* borrowed: valid until the next call on the reader */
  size_t len;
  uint64_t offset;             /* file offset of the record's length field */
  const char *message;         /* for NV_TFR_WARNING: what was skipped and where */
} nv_tfrecord_record;

enum { NV_TFR_END = 0, NV_TFR_RECORD = 1, NV_TFR_WARNING = 2 };

/* opens path for reading from byte offset; 0, or -1 with errno set (nothing to close) */
int nv_tfrecord_open(nv_tfrecord_reader *r, const char *path, uint64_t offset);
/* the next complete record (NV_TFR_RECORD), a skipped stretch (NV_TFR_WARNING: a bad CRC, a
 * record over the limit), or NV_TFR_END: the end of the file or a record cut short there,
 * which the next scan, from nv_tfrecord_offset, reads once it is complete */
int nv_tfrecord_next(nv_tfrecord_reader *r, nv_tfrecord_record *rec);
/* the offset a later scan resumes from */
uint64_t nv_tfrecord_offset(const nv_tfrecord_reader *r);
/* idempotent */
void nv_tfrecord_close(nv_tfrecord_reader *r);

/* ---- the Event's hot path ------------------------------------------------------------ */
#define NV_TF_MAX_SCALARS 64

typedef struct nv_tf_scalar {
  const char *tag;         /* borrowed from the record's data, not NUL-terminated */
  size_t tag_len;
  double value;
} nv_tf_scalar;

typedef struct nv_tf_event {
  double wall;             /* wall_time (1) */
  int64_t step;            /* step (2) */
  size_t n;                /* scalars found */
  nv_tf_scalar scalars[NV_TF_MAX_SCALARS];
} nv_tf_event;

enum { NV_TF_SIMPLE = 0, NV_TF_OTHER = 1, NV_TF_MALFORMED = -1 };

/* Decodes an Event: NV_TF_SIMPLE when all it holds is scalars (Summary.Value.simple_value,
 * or a tensor of one float or double with plugin "scalars" or none, as PyTorch, tensorboardX
 * and Keras write them) — possibly none, as in the file_version event; NV_TF_OTHER when it
 * holds anything else (images, histograms, text, a GraphDef, more than NV_TF_MAX_SCALARS
 * values), which the caller decodes itself; NV_TF_MALFORMED for bytes that are no Event.
 * wall and step are set in every case but the last. */
int nv_tf_event_decode(const unsigned char *data, size_t len, nv_tf_event *ev);

#endif

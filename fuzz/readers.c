/*
 * fuzz/readers.c — libFuzzer harnesses for every reader of outside data, one per build:
 * compile with -DFUZZ_PNG, FUZZ_JPEG, FUZZ_SAFETENSORS, FUZZ_IDX, FUZZ_ZIP, FUZZ_ONNX or
 * FUZZ_TFRECORD (TensorBoard event files, read by the board's server) and
 * -fsanitize=fuzzer,address,undefined (`make fuzz` does).  Readers that take a path get the
 * input through a file of the fuzzer's own (the bytes are the whole file).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/files.h"
#include "io/onnx.h"
#include "io/tfrecord.h"

static const char *as_file(const uint8_t *data, size_t size) {
  static char path[64];
  if (!path[0]) snprintf(path, sizeof path, "%s/nnvis-fuzz-%d", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  if (size && fwrite(data, 1, size, f) != size) abort();
  fclose(f);
  return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
#if defined(FUZZ_PNG)
  for (int mode = 0; mode < 3; mode++) nv_release(nv_png_load_bytes(data, size, mode, "<fuzz>"));
#elif defined(FUZZ_JPEG)
  for (int mode = 0; mode < 3; mode++) nv_release(nv_jpeg_load_bytes(data, size, mode, "<fuzz>"));
#elif defined(FUZZ_SAFETENSORS)
  nv_safetensors_free(nv_safetensors_load(as_file(data, size)));
#elif defined(FUZZ_IDX)
  nv_release(nv_idx_load(as_file(data, size)));
#elif defined(FUZZ_ZIP)
  nv_zip *z = nv_zip_open(as_file(data, size));
  if (z) {
    int64_t n = nv_zip_count(z);
    for (int64_t i = 0; i < n && i < 64; i++) {
      const char *name = nv_zip_name(z, i);
      size_t sz = 0;
      int64_t k = name ? nv_zip_entry(z, name, (size_t)1 << 24, &sz) : -1;
      if (k < 0) continue;
      unsigned char *buf = malloc(sz ? sz : 1);
      if (buf) nv_zip_read_into(z, k, buf, sz);
      free(buf);
    }
    nv_zip_close(z);
  }
#elif defined(FUZZ_ONNX)
  nv_onnx_model *m = nv_onnx_read(as_file(data, size));
  if (m) {
    for (int k = 0; k < m->n_init; k++) {
      Onnx__TensorProto *tp = nv_onnx_initializer(m, k);
      if (!tp) continue;
      nv_onnx_array a;
      if (nv_onnx_tensor(m, tp, "initializer", &a)) nv_onnx_array_free(&a);
      nv_onnx_initializer_free(tp);
    }
    nv_onnx_free(m);
  }
#elif defined(FUZZ_TFRECORD)
  /* the file read record by record, from the start and from a middle offset (a scan that
   * resumes), each record decoded as an Event; the bytes decoded as one Event too */
  const char *path = as_file(data, size);
  for (int start = 0; start < 2; start++) {
    nv_tfrecord_reader r;
    if (nv_tfrecord_open(&r, path, start ? size / 2 : 0) != 0) abort();
    nv_tfrecord_record rec;
    nv_tf_event ev;
    int k, n = 0;
    while ((k = nv_tfrecord_next(&r, &rec)) != NV_TFR_END && n++ < 100000)
      if (k == NV_TFR_RECORD) (void)nv_tf_event_decode(rec.data, rec.len, &ev);
    (void)nv_tfrecord_offset(&r);
    nv_tfrecord_close(&r);
    nv_tfrecord_close(&r);
  }
  nv_tf_event ev;
  (void)nv_tf_event_decode(data, size, &ev);
#else
#error "define one of FUZZ_PNG, FUZZ_JPEG, FUZZ_SAFETENSORS, FUZZ_IDX, FUZZ_ZIP, FUZZ_ONNX, FUZZ_TFRECORD"
#endif
  return 0;
}

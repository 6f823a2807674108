/*
 * zip.c — reading zip archives through libzip (see files.h): what torch.save writes since
 * PyTorch 1.6 is a zip of a pickle and raw storages.
 *
 * The archive is untrusted: libzip's ZIP_CHECKCONS checks the central directory against the
 * local headers, entry sizes are capped before allocating, and the bytes read must be
 * exactly the declared size (libzip checks the CRC when an entry is read to its end).
 */
#define _POSIX_C_SOURCE 200809L
#include "files.h"

#include <stdlib.h>
#include <string.h>

#include <zip.h>

struct nv_zip {
  zip_t *za;
  char *path;   /* for error messages */
};

nv_zip *nv_zip_open(const char *path) {
  int code = 0;
  zip_t *za = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &code);
  if (!za) {
    zip_error_t e;
    zip_error_init_with_code(&e, code);
    nv_seterr("%s: not a readable zip archive (%s)", path, zip_error_strerror(&e));
    zip_error_fini(&e);
    return NULL;
  }
  nv_zip *z = malloc(sizeof *z);
  char *p = strdup(path);
  if (!z || !p) {
    free(z);
    free(p);
    zip_discard(za);
    nv_seterr("out of memory opening %s", path);
    return NULL;
  }
  z->za = za;
  z->path = p;
  return z;
}

void nv_zip_close(nv_zip *z) {
  if (!z) return;
  zip_discard(z->za);
  free(z->path);
  free(z);
}

int64_t nv_zip_count(nv_zip *z) { return (int64_t)zip_get_num_entries(z->za, 0); }

const char *nv_zip_name(nv_zip *z, int64_t i) {
  if (i < 0 || i >= nv_zip_count(z)) return NULL;
  return zip_get_name(z->za, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
}

int64_t nv_zip_entry(nv_zip *z, const char *name, size_t max, size_t *size) {
  zip_int64_t idx = zip_name_locate(z->za, name, ZIP_FL_ENC_RAW);
  if (idx < 0) { nv_seterr("%s: no entry %s in the archive", z->path, name); return -1; }
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(z->za, (zip_uint64_t)idx, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
    nv_seterr("%s: cannot read the size of %s (%s)", z->path, name, zip_strerror(z->za));
    return -1;
  }
  if (st.size > (zip_uint64_t)max) {
    nv_seterr("%s: entry %s declares %llu bytes, more than the limit of %zu", z->path, name,
              (unsigned long long)st.size, max);
    return -1;
  }
  *size = (size_t)st.size;
  return (int64_t)idx;
}

int nv_zip_read_into(nv_zip *z, int64_t idx, unsigned char *buf, size_t size) {
  const char *name = zip_get_name(z->za, (zip_uint64_t)idx, ZIP_FL_ENC_RAW);
  if (!name) name = "?";
  zip_file_t *zf = zip_fopen_index(z->za, (zip_uint64_t)idx, 0);
  if (!zf) return nv_seterr("%s: cannot open entry %s (%s)", z->path, name, zip_strerror(z->za));
  size_t got = 0;
  unsigned char extra;
  for (;;) {
    /* reads to the end (and one byte past the declared size) so libzip checks the CRC */
    zip_int64_t r = got < size ? zip_fread(zf, buf + got, size - got) : zip_fread(zf, &extra, 1);
    if (r < 0) {
      nv_seterr("%s: entry %s is damaged (%s)", z->path, name, zip_file_strerror(zf));
      zip_fclose(zf);
      return 0;
    }
    if (r == 0) break;
    if (got >= size) {
      zip_fclose(zf);
      return nv_seterr("%s: entry %s holds more than its declared %zu bytes", z->path, name, size);
    }
    got += (size_t)r;
  }
  zip_fclose(zf);
  if (got != size)
    return nv_seterr("%s: entry %s declares %zu bytes but holds %zu", z->path, name, size, got);
  return 1;
}

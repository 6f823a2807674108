/*
 * zip.c — reading zip archives through libzip (see files.h): what torch.save writes since
 * PyTorch 1.6 is a zip of a pickle and raw storages.
 *
 * The archive is untrusted: libzip's ZIP_CHECKCONS checks the central directory against the
 * local headers, entry sizes are capped before allocating, and the bytes read must be
 * exactly the declared size (libzip checks the CRC when an entry is read to its end).
 */
#define _POSIX_C_SOURCE 200809L
#include "io/files.h"

#include <stdlib.h>
#include <string.h>

#include <zip.h>

/* a compressed entry above RATIO_FREE bytes may inflate at most MAX_RATIO times its size */
#define ZIP_MAX_RATIO 1100
#define ZIP_RATIO_FREE ((zip_uint64_t)1 << 24)

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
  /* libzip's look-up misses names that are not valid UTF-8 although zip_get_name returned
   * them raw: compare with what nv_zip_name lists (once per missing name; a load stops there) */
  for (int64_t i = 0, n = idx < 0 ? nv_zip_count(z) : 0; i < n; i++) {
    const char *s = nv_zip_name(z, i);
    if (s && strcmp(s, name) == 0) { idx = i; break; }
  }
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
  if ((st.valid & ZIP_STAT_COMP_METHOD) && st.comp_method != ZIP_CM_STORE && st.size > ZIP_RATIO_FREE &&
      (!(st.valid & ZIP_STAT_COMP_SIZE) || st.size / ZIP_MAX_RATIO > st.comp_size)) {
    nv_seterr("%s: entry %s would inflate %llu bytes from %llu (more than %d:1, a decompression bomb?)",
              z->path, name, (unsigned long long)st.size, (unsigned long long)st.comp_size, ZIP_MAX_RATIO);
    return -1;
  }
  *size = (size_t)st.size;
  return (int64_t)idx;
}

/* Reads n bytes of entry idx into buf; whole: n is its declared size, and it is read to its
 * end (and one byte past) so that libzip checks the CRC and a longer entry is caught. */
static int read_entry(nv_zip *z, int64_t idx, unsigned char *buf, size_t n, int whole) {
  const char *name = zip_get_name(z->za, (zip_uint64_t)idx, ZIP_FL_ENC_RAW);
  if (!name) name = "?";
  zip_file_t *zf = zip_fopen_index(z->za, (zip_uint64_t)idx, 0);
  if (!zf) return nv_seterr("%s: cannot open entry %s (%s)", z->path, name, zip_strerror(z->za));
  size_t got = 0;
  unsigned char extra;
  while (got < n || whole) {
    zip_int64_t r = got < n ? zip_fread(zf, buf + got, n - got) : zip_fread(zf, &extra, 1);
    if (r < 0) {
      nv_seterr("%s: entry %s is damaged (%s)", z->path, name, zip_file_strerror(zf));
      zip_fclose(zf);
      return 0;
    }
    if (r == 0) break;
    if (got >= n) {
      zip_fclose(zf);
      return nv_seterr("%s: entry %s holds more than its declared %zu bytes", z->path, name, n);
    }
    got += (size_t)r;
  }
  zip_fclose(zf);
  if (got != n)
    return nv_seterr("%s: entry %s %s %zu bytes but holds %zu", z->path, name, whole ? "declares" : "needs", n, got);
  return 1;
}

int nv_zip_read_into(nv_zip *z, int64_t idx, unsigned char *buf, size_t size) {
  return read_entry(z, idx, buf, size, 1);
}

int nv_zip_read_head(nv_zip *z, int64_t idx, unsigned char *buf, size_t n) {
  return read_entry(z, idx, buf, n, 0);
}

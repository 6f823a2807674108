/*
 * fetch.c — an HTTP(S) GET into a file through libcurl's easy interface, the SHA-256 of a file
 * through OpenSSL's EVP interface, and `mkdir -p` (see fetch.h).
 *
 * The body is written as it arrives (a weight file is hundreds of MB: never held in memory),
 * counted against the byte cap in the write callback, and the file is removed when anything
 * fails, so a caller only ever finds complete transfers at its paths.
 */
#define _POSIX_C_SOURCE 200809L
#include "io/fetch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#define FETCH_MAX_REDIRECTS 5L

/* one transfer's state, shared by the write and progress callbacks */
typedef struct transfer {
  FILE *f;
  const nv_fetch_opts *o;
  int64_t written;   /* body bytes written to f */
  int over_cap;      /* the body passed o->max_bytes */
  int write_err;     /* errno of a failed fwrite, else 0 */
  int aborted;       /* the progress callback asked to stop */
} transfer;

static size_t on_data(char *buf, size_t size, size_t n, void *ud) {
  transfer *t = ud;
  size_t len = size * n;   /* libcurl guarantees size == 1 */
  if (t->o->max_bytes > 0 && (int64_t)len > t->o->max_bytes - t->written) {
    t->over_cap = 1;
    return 0;   /* anything but len fails the transfer with CURLE_WRITE_ERROR */
  }
  if (fwrite(buf, 1, len, t->f) != len) {
    t->write_err = errno ? errno : EIO;
    return 0;
  }
  t->written += (int64_t)len;
  return len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  (void)ultotal, (void)ulnow;
  transfer *t = ud;
  if (t->o->progress && t->o->progress(t->o->ud, (int64_t)dlnow, (int64_t)dltotal)) {
    t->aborted = 1;
    return 1;   /* nonzero: CURLE_ABORTED_BY_CALLBACK */
  }
  return 0;
}

/* libcurl's global set-up, once (libcurl >= 7.84 makes it thread-safe; Debian 12 has 7.88) */
static int curl_ready(void) {
  static int done = 0;
  static CURLcode rc = CURLE_OK;
  if (!done) {
    rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    done = 1;
  }
  return rc == CURLE_OK;
}

/* http and https only, for the first request and for every redirect */
static CURLcode only_http(CURL *c) {
#if LIBCURL_VERSION_NUM >= 0x075500   /* 7.85.0: the _STR options */
  CURLcode rc = curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (rc == CURLE_OK) rc = curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  CURLcode rc = curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  if (rc == CURLE_OK) rc = curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  return rc;
}

int nv_http_get(const char *url, const char *path, const nv_fetch_opts *opts) {
  static const nv_fetch_opts none = {0};
  const nv_fetch_opts *o = opts ? opts : &none;
  if (!curl_ready()) return nv_seterr("cannot download %s: libcurl failed to initialize", url);
  CURL *c = curl_easy_init();
  if (!c) return nv_seterr("cannot download %s: libcurl failed to initialize", url);
  FILE *f = fopen(path, "wbx");   /* x: exclusive, never clobbers an existing file */
  if (!f) {
    int e = errno;
    curl_easy_cleanup(c);
    return nv_seterr("cannot download %s: cannot create %s: %s", url, path, strerror(e));
  }
  transfer t = {.f = f, .o = o};
  char errbuf[CURL_ERROR_SIZE] = "";
  CURLcode rc = CURLE_OK;
  /* each setting only fails for an unknown option or out of memory: stop at the first */
#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(c, opt, val)
  SET(CURLOPT_ERRORBUFFER, errbuf);
  SET(CURLOPT_URL, url);
  if (rc == CURLE_OK) rc = only_http(c);
  SET(CURLOPT_FOLLOWLOCATION, 1L);
  SET(CURLOPT_MAXREDIRS, FETCH_MAX_REDIRECTS);
  SET(CURLOPT_FAILONERROR, 1L);   /* a status >= 400 fails, its error page is not the body */
  SET(CURLOPT_NOSIGNAL, 1L);      /* no SIGALRM for resolver timeouts: the host is Lua */
  SET(CURLOPT_CONNECTTIMEOUT, o->connect_timeout > 0 ? o->connect_timeout : 15L);
  SET(CURLOPT_LOW_SPEED_LIMIT, o->low_speed_limit > 0 ? o->low_speed_limit : 1024L);
  SET(CURLOPT_LOW_SPEED_TIME, o->low_speed_time > 0 ? o->low_speed_time : 30L);
  if (o->max_bytes > 0) SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_bytes);   /* by Content-Length */
  SET(CURLOPT_USERAGENT, "nnvis (libcurl)");
  SET(CURLOPT_WRITEFUNCTION, on_data);
  SET(CURLOPT_WRITEDATA, &t);
  SET(CURLOPT_XFERINFOFUNCTION, on_progress);
  SET(CURLOPT_XFERINFODATA, &t);
  SET(CURLOPT_NOPROGRESS, 0L);
#undef SET
  if (rc == CURLE_OK) rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  int close_err = fclose(f) != 0 ? errno : 0;
  if (rc == CURLE_OK && !close_err) return 1;
  remove(path);
  if (t.aborted) return nv_seterr("cannot download %s: aborted", url);
  if (t.over_cap || rc == CURLE_FILESIZE_EXCEEDED)
    return nv_seterr("cannot download %s: larger than %lld bytes", url, (long long)o->max_bytes);
  if (t.write_err || close_err)
    return nv_seterr("cannot download %s: cannot write %s: %s", url, path, strerror(t.write_err ? t.write_err : close_err));
  if (rc == CURLE_HTTP_RETURNED_ERROR) return nv_seterr("cannot download %s: HTTP %ld", url, status);
  return nv_seterr("cannot download %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

int nv_sha256_file(const char *path, char hex[NV_SHA256_HEX]) {
  enum { CHUNK = 1 << 20 };
  FILE *f = fopen(path, "rb");
  if (!f) return nv_seterr("sha256: cannot open %s: %s", path, strerror(errno));
  unsigned char *buf = malloc(CHUNK);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = buf && ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  size_t n;
  while (ok && (n = fread(buf, 1, CHUNK, f)) > 0) ok = EVP_DigestUpdate(ctx, buf, n);
  int read_err = ferror(f);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (ok && !read_err) ok = EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 32;
  EVP_MD_CTX_free(ctx);
  free(buf);
  fclose(f);
  if (read_err) return nv_seterr("sha256: cannot read %s", path);
  if (!ok) return nv_seterr("sha256: %s: out of memory or no SHA-256 in libcrypto", path);
  for (unsigned i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
  return 1;
}

/* mkdir for one level: 1 when path is a folder afterwards */
static int mkdir1(const char *path) {
  struct stat st;
  if (mkdir(path, 0777) == 0) return 1;
  int e = errno;
  if (e == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 1;
  if (e == EEXIST) return nv_seterr("mkdir: %s exists and is not a folder", path);
  return nv_seterr("mkdir: cannot create %s: %s", path, strerror(e));
}

int nv_mkdirs(const char *path) {
  size_t len = strlen(path);
  if (len == 0) return nv_seterr("mkdir: empty path");
  char *p = malloc(len + 1);
  if (!p) return nv_seterr("mkdir: out of memory");
  memcpy(p, path, len + 1);
  int ok = 1;
  /* each parent in turn (the leading '/' of an absolute path is no separator to cut at) */
  for (size_t i = 1; ok && i < len; i++) {
    if (p[i] != '/' || p[i - 1] == '/') continue;
    p[i] = '\0';
    ok = mkdir1(p);
    p[i] = '/';
  }
  if (ok) ok = mkdir1(p);
  free(p);
  return ok;
}

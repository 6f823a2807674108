/*
 * fetch.h — files from the network and their fingerprints: an HTTP(S) GET into a file
 * through libcurl's easy interface, the SHA-256 of a file through OpenSSL's libcrypto (EVP),
 * and `mkdir -p`.  Pure C, no Lua: lua_fetch.c binds these; lua/nnvis/io/weights.lua uses them to
 * download torchvision's weight files into a cache.
 *
 * What comes from the network is untrusted: a transfer is capped in bytes and time, follows
 * at most 5 redirects, speaks only http and https (also after a redirect), and fails on an
 * HTTP status >= 400.  A failed transfer leaves nothing at its path.
 *
 * Worked example (C):
 *     nv_fetch_opts o = {.max_bytes = (int64_t)1 << 31};
 *     char hex[NV_SHA256_HEX];
 *     if (!nv_http_get("https://download.pytorch.org/models/vgg16-397923af.pth", "vgg16.part", &o)
 *         || !nv_sha256_file("vgg16.part", hex))
 *       fprintf(stderr, "%s\n", nv_last_error());
 *     else if (strncmp(hex, "397923af", 8) == 0) rename("vgg16.part", "vgg16-397923af.pth");
 */
#ifndef NV_FETCH_H
#define NV_FETCH_H

#include <stdint.h>

#include "core/nv.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Called during a transfer with the body bytes received so far and the total the server
 * announced (0 while unknown); a nonzero return aborts the transfer (nv_http_get fails with
 * "aborted").  libcurl calls it about once a second, and more often while data flows. */
typedef int (*nv_fetch_progress)(void *ud, int64_t done, int64_t total);

typedef struct nv_fetch_opts {
  nv_fetch_progress progress;   /* NULL: no callback */
  void *ud;                     /* passed to progress, borrowed */
  int64_t max_bytes;            /* a larger body fails the transfer; 0: no cap */
  long connect_timeout;         /* seconds to connect; 0: 15 */
  long low_speed_limit;         /* bytes per second ...; 0: 1024 */
  long low_speed_time;          /* ... under which for this many seconds aborts; 0: 30 */
} nv_fetch_opts;

/* GET url (http:// or https://) into a new file at path, which must not exist yet (it is
 * created exclusively, so a download never clobbers a file).  1 on success; 0 with
 * nv_last_error() naming the URL and the reason (libcurl's, "HTTP 404", the byte cap, a write
 * error), and then no file is left at path.  opts may be NULL (the defaults, no cap). */
int nv_http_get(const char *url, const char *path, const nv_fetch_opts *opts);

#define NV_SHA256_HEX 65   /* 64 lowercase hex digits and a NUL */

/* The SHA-256 of the file at path as lowercase hex into hex.  1, or 0 with nv_last_error()
 * naming the path (cannot open or read it). */
int nv_sha256_file(const char *path, char hex[NV_SHA256_HEX]);

/* Creates the folder path and its missing parents (mode 0777 before the umask), as
 * `mkdir -p`.  1 when path is a folder afterwards, else 0 with nv_last_error(). */
int nv_mkdirs(const char *path);

#ifdef __cplusplus
}
#endif

#endif

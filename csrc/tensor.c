/*
 * tensor.c — storage and tensor headers, reference counting, strided copy, errors,
 * allocation accounting, scratch buffers, random numbers and the clock.
 */
#define _GNU_SOURCE
#include "nv.h"
#include "autograd.h"
#include "walk.h"

#include <math.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* ---- errors ----------------------------------------------------------------------- */
static _Thread_local char errbuf[1024];

int nv_seterr(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
  return 0;
}

const char *nv_last_error(void) { return errbuf[0] ? errbuf : "unknown error"; }

char *nv_shape_str(char *buf, size_t n, int ndim, const int64_t *size) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, n - k, "(");
  for (int i = 0; i < ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)size[i]);
  if (k < n) snprintf(buf + k, n - k, ")");
  return buf;
}

/* ---- accounting --------------------------------------------------------------------- */
static nv_stats stats;
nv_stats nv_get_stats(void) { return stats; }
void nv_stats_node(int delta) { stats.nodes += delta; }

/* ---- storage ------------------------------------------------------------------------- */
#define NV_MAX_ELEMS ((int64_t)1 << 40)

/* The largest buffer nnvis allocates, in bytes (nv.config{max_alloc = ...}): by default 3/4
 * of physical memory, so that one mistaken call raises an error instead of taking the
 * machine's memory (big buffers are pre-faulted).  Views may not have more elements than a
 * buffer of this size holds either: expand(1e12) would otherwise make a sum run for hours. */
static int64_t max_alloc;

int64_t nv_max_alloc(void) {
  if (!max_alloc) {
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    int64_t phys = pages > 0 && psz > 0 ? (int64_t)pages * psz : ((int64_t)4 << 30);
    max_alloc = phys / 4 * 3;
    if (max_alloc > NV_MAX_ELEMS * (int64_t)sizeof(float)) max_alloc = NV_MAX_ELEMS * (int64_t)sizeof(float);
  }
  return max_alloc;
}

int nv_set_max_alloc(int64_t bytes) {
  if (bytes < ((int64_t)1 << 20) || bytes > NV_MAX_ELEMS * (int64_t)sizeof(float))
    return nv_seterr("max_alloc must be between 1 MiB and 4 TiB, got %lld bytes", (long long)bytes);
  max_alloc = bytes;
  return 1;
}

static int too_big(int64_t n) {
  if (n < 0) return nv_seterr("a tensor of more than 2^63 elements exceeds max_alloc (%.3g GiB)",
                              (double)nv_max_alloc() / 1073741824.0);
  return nv_seterr("a tensor of %lld elements (%.3g GiB) exceeds max_alloc (%.3g GiB); "
                   "raise it with nv.config{max_alloc = bytes} if this is meant",
                   (long long)n, (double)n * sizeof(float) / 1073741824.0, (double)nv_max_alloc() / 1073741824.0);
}

int nv_check_numel(int ndim, const int64_t *size, int64_t *numel) {
  if (ndim < 0 || ndim > NV_MAXDIM)
    return nv_seterr("tensors have at most %d dimensions, got %d", NV_MAXDIM, ndim);
  /* the product of the non-zero sizes is bounded too: (0, 2^31, 2^31, 2^31) is refused
   * rather than left to overflow in whatever later multiplies its sizes */
  int64_t nz = 1, zero = 0, limit = nv_max_alloc() / (int64_t)sizeof(float);
  int over = 0;
  for (int i = 0; i < ndim; i++) {
    if (size[i] < 0) return nv_seterr("size %lld at dimension %d is negative", (long long)size[i], i + 1);
    if (size[i] == 0) { zero = 1; continue; }
    if (!over && __builtin_mul_overflow(nz, size[i], &nz)) over = 1;
  }
  if (over) return too_big(-1);
  if (nz > limit) return too_big(nz);
  *numel = zero ? 0 : nz;
  return 1;
}

/* A cache of freed storage buffers, by size class.  Large buffers come from mmap and go
 * back to the system on free, and touching fresh pages is slow (a page fault each, ~10 us
 * per 4 KiB on some virtual machines): a training step that frees and reallocates the same
 * activations would fault them all in again.  Classes round sizes up by at most 1/4. */
#define CACHE_SLOTS 128
#define CACHE_MIN_BYTES ((size_t)64 << 10)
static struct { void *p; size_t bytes; } cache[CACHE_SLOTS];
static uint64_t cache_clock = 0x9E3779B97F4A7C15ull;   /* xorshift state for eviction */
static int ncache;
static size_t cached_bytes, cache_limit = (size_t)-1;   /* -1: not chosen yet */

/* An eighth of physical memory, between 512 MiB and 2 GiB: a graph-recording forward at
 * batch 32 (Integrated Gradients' steps on ResNet-18 at 224) frees about 1 GB of
 * activations; with 512 MiB kept it faulted half of them in again at every call and ran
 * 1.7 times slower. */
static size_t limit_now(void) {
  if (cache_limit == (size_t)-1) {
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    size_t phys = pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz : (size_t)4 << 30;
    size_t l = phys / 8, lo = (size_t)512 << 20, hi = (size_t)2 << 30;
    cache_limit = l < lo ? lo : l > hi ? hi : l;
  }
  return cache_limit;
}

static size_t size_class(size_t bytes) {
  if (bytes < CACHE_MIN_BYTES) return (bytes + 63) & ~(size_t)63;
  size_t top = (size_t)1 << (63 - __builtin_clzll(bytes)), step = top >> 2;
  return (bytes + step - 1) / step * step;
}

/* The host's garbage collector may hold dead tensors whose buffers would serve; after
 * fresh cacheable allocations of 4 MiB or a quarter of the live bytes (so that loading a
 * model or a dataset does not collect all the time), ask it (once) to collect before
 * faulting in new pages.  Counting only buffers of 1 MiB and more, after 16 MiB, left a batch-1 backward
 * through a 64-channel 56x56 convolution (800 KB tensors) faulting in a fresh tensor at
 * every call: 200 faults, 4.4 ms a call against 2.1 ms now (24 faults). */
static void (*miss_hook)(void *);
static void *miss_ud;
static size_t fresh_bytes;
void nv_set_alloc_miss_hook(void (*fn)(void *), void *ud) { miss_hook = fn; miss_ud = ud; }

static void *cache_take(size_t cls) {
  for (int i = ncache - 1; i >= 0; i--)
    if (cache[i].bytes == cls) {
      void *p = cache[i].p;
      cache[i] = cache[--ncache];
      cached_bytes -= cls;
      return p;
    }
  return NULL;
}

/* Buffers of 256 KiB and more are mapped with MAP_POPULATE: the kernel fills all their pages
 * in one call, about 5x faster than faulting them in one by one (7 vs 34 ms for 12.8 MB). */
#define MAP_MIN_BYTES ((size_t)256 << 10)

static void *raw_alloc(size_t cls) {
  if (cls >= MAP_MIN_BYTES) {
    void *p = mmap(NULL, cls, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
  }
  return aligned_alloc(64, cls);
}

static void raw_free(void *p, size_t cls) {
  if (cls >= MAP_MIN_BYTES) munmap(p, cls);
  else free(p);
}

static void *buffer_alloc(size_t bytes) {
  size_t cls = size_class(bytes);
  if (cls >= CACHE_MIN_BYTES) {
    void *p = cache_take(cls);
    if (p) return p;
    if (miss_hook) {
      fresh_bytes += cls;
      size_t live = stats.bytes > 0 ? (size_t)stats.bytes : 0, every = live / 4;
      if (fresh_bytes >= (every > ((size_t)4 << 20) ? every : ((size_t)4 << 20))) {
        fresh_bytes = 0;
        miss_hook(miss_ud);
        if ((p = cache_take(cls))) return p;
      }
    }
  }
  return raw_alloc(cls);
}

static void buffer_free(void *p, size_t bytes) {
  size_t cls = size_class(bytes);
  if (cls >= CACHE_MIN_BYTES && cls <= limit_now()) {
    while (ncache > 0 && (ncache == CACHE_SLOTS || cached_bytes + cls > cache_limit)) {
      /* evict one at random (a private generator: the user's random stream is untouched).
       * Always slot 0 (the newest, after the swaps below) made a training step run after
       * VGG16 refault its activations at every step, twice as slow; the least recently
       * freed thrashes on a cycle larger than the cache (a batch-32 graph's activations,
       * freed and allocated again in the same order: 1.5x slower than random). */
      cache_clock ^= cache_clock << 13, cache_clock ^= cache_clock >> 7, cache_clock ^= cache_clock << 17;
      int old = (int)(cache_clock % (uint64_t)ncache);
      raw_free(cache[old].p, cache[old].bytes);
      cached_bytes -= cache[old].bytes;
      cache[old] = cache[--ncache];
    }
    cache[ncache].p = p;
    cache[ncache++].bytes = cls;
    cached_bytes += cls;
    return;
  }
  raw_free(p, cls);
}

void nv_cache_config(size_t limit) {
  cache_limit = limit;
  while (ncache > 0 && cached_bytes > cache_limit) {
    raw_free(cache[ncache - 1].p, cache[ncache - 1].bytes);
    cached_bytes -= cache[--ncache].bytes;
  }
}

size_t nv_cache_bytes(void) { return cached_bytes; }

static nv_storage *storage_new(int64_t n) {
  if (n < 0 || n > nv_max_alloc() / (int64_t)sizeof(float)) {
    too_big(n);
    return NULL;
  }
  nv_storage *s = malloc(sizeof *s);
  if (!s) { nv_seterr("out of memory"); return NULL; }
  s->data = buffer_alloc((size_t)(n ? n : 1) * sizeof(float));
  if (!s->data) {
    free(s);
    nv_seterr("out of memory allocating %lld floats", (long long)n);
    return NULL;
  }
  s->n = n;
  s->refcount = 1;
  s->version = 0;
  static uint64_t next_uid;
  s->uid = ++next_uid;
  stats.storages++;
  stats.bytes += n * (int64_t)sizeof(float);
  return s;
}

static void (*free_hooks[4])(uint64_t);
void nv_add_storage_free_hook(void (*fn)(uint64_t uid)) {
  for (int i = 0; i < 4; i++) {
    if (free_hooks[i] == fn) return;
    if (!free_hooks[i]) { free_hooks[i] = fn; return; }
  }
  abort(); /* more caches than slots: a programming error */
}
static void free_hook(uint64_t uid) {
  for (int i = 0; i < 4 && free_hooks[i]; i++) free_hooks[i](uid);
}

static void storage_release(nv_storage *s) {
  if (!s || --s->refcount > 0) return;
  stats.storages--;
  stats.bytes -= s->n * (int64_t)sizeof(float);
  if (free_hooks[0]) free_hook(s->uid);
  buffer_free(s->data, (size_t)(s->n ? s->n : 1) * sizeof(float));
  free(s);
}

/* ---- tensors --------------------------------------------------------------------------- */
nv_tensor *nv_retain(nv_tensor *t) {
  if (t) t->refcount++;
  return t;
}

void nv_release(nv_tensor *t) {
  if (!t || --t->refcount > 0) return;
  stats.tensors--;
  storage_release(t->st);
  nv_release(t->grad);
  nv_release(t->gacc);
  nv_node_release(t->fn);
  free(t);
}

static nv_tensor *header_new(nv_storage *st, int64_t off, int ndim, const int64_t *size,
                             const int64_t *stride) {
  nv_tensor *t = calloc(1, sizeof *t);
  if (!t) { nv_seterr("out of memory"); return NULL; }
  t->st = st;
  t->off = off;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) { t->size[i] = size[i]; t->stride[i] = stride[i]; }
  t->refcount = 1;
  stats.tensors++;
  return t;
}

nv_tensor *nv_from_storage(nv_storage *st, int64_t off, int ndim, const int64_t *size,
                           const int64_t *stride) {
  int64_t n;
  if (!nv_check_numel(ndim, size, &n)) return NULL;
  nv_tensor *t = header_new(st, off, ndim, size, stride);
  if (t) st->refcount++;
  return t;
}

nv_tensor *nv_empty(int ndim, const int64_t *size) {
  int64_t n = 0;
  if (!nv_check_numel(ndim, size, &n)) return NULL;
  nv_storage *st = storage_new(n);
  if (!st) return NULL;
  int64_t stride[NV_MAXDIM];
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) { stride[i] = s; s *= size[i]; }
  nv_tensor *t = header_new(st, 0, ndim, size, stride);
  if (!t) storage_release(st);
  return t;
}

nv_tensor *nv_full(int ndim, const int64_t *size, float v) {
  nv_tensor *t = nv_empty(ndim, size);
  if (!t) return NULL;
  float *d = nv_data(t);
  int64_t n = nv_numel(t);
  if (v == 0.0f) memset(d, 0, (size_t)n * sizeof(float));
  else for (int64_t i = 0; i < n; i++) d[i] = v;
  return t;
}

nv_tensor *nv_zeros(int ndim, const int64_t *size) { return nv_full(ndim, size, 0.0f); }
nv_tensor *nv_empty_like(const nv_tensor *t) { return nv_empty(t->ndim, t->size); }
nv_tensor *nv_zeros_like(const nv_tensor *t) { return nv_zeros(t->ndim, t->size); }

int64_t nv_numel(const nv_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->size[i];
  return n;
}

int nv_is_contiguous(const nv_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->size[i] != 1 && t->stride[i] != s) return 0;
    s *= t->size[i];
  }
  return 1;
}

int nv_same_shape(const nv_tensor *a, const nv_tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->size[i] != b->size[i]) return 0;
  return 1;
}

/* dst = src (add 0) or dst += src (add 1), src broadcast to the shape of dst, any strides;
 * fname names the caller in the message when src does not broadcast. */
static int into(nv_tensor *dst, const nv_tensor *src, int add, const char *fname) {
  int ok = src->ndim <= dst->ndim;
  for (int i = 0; ok && i < src->ndim; i++) {
    int64_t s = src->size[src->ndim - 1 - i], d = dst->size[dst->ndim - 1 - i];
    if (s != d && s != 1) ok = 0;
  }
  if (!ok) {
    char a[200], b[200];
    return nv_seterr("%s: source %s cannot be broadcast to destination %s", fname,
                     nv_shape_str(a, sizeof a, src->ndim, src->size),
                     nv_shape_str(b, sizeof b, dst->ndim, dst->size));
  }
  nv_walk w;
  nv_walk_init(&w, dst->ndim, dst->size, 2);
  nv_walk_operand(&w, 0, dst);
  nv_walk_operand(&w, 1, src);
  if (!nv_walk_start(&w)) return 1;
  float *d = nv_data(dst);
  const float *s = nv_data(src);
  int64_t n = w.inner, sd = w.is[0], ss = w.is[1];
  do {
    float *dp = d + w.off[0];
    const float *sp = s + w.off[1];
    if (add) {
      if (sd == 1 && ss == 1) for (int64_t j = 0; j < n; j++) dp[j] += sp[j];
      else for (int64_t j = 0; j < n; j++) dp[j * sd] += sp[j * ss];
    } else {
      if (sd == 1 && ss == 1) memmove(dp, sp, (size_t)n * sizeof(float));
      else if (ss == 0) { float v = *sp; for (int64_t j = 0; j < n; j++) dp[j * sd] = v; }
      else for (int64_t j = 0; j < n; j++) dp[j * sd] = sp[j * ss];
    }
  } while (nv_walk_next(&w));
  return 1;
}

int nv_copy_into(nv_tensor *dst, const nv_tensor *src) { return into(dst, src, 0, "copy"); }

void nv_fill_raw(nv_tensor *t, float v) {
  int64_t sz0 = 0;
  nv_tensor *s = nv_full(0, &sz0, v);
  if (!s) return;
  nv_copy_into(t, s);
  nv_release(s);
}

nv_tensor *nv_contiguous_data(nv_tensor *t) {
  if (nv_is_contiguous(t)) return nv_retain(t);
  nv_tensor *c = nv_empty(t->ndim, t->size);
  if (!c) return NULL;
  nv_copy_into(c, t);
  return c;
}

/* ---- scratch ---------------------------------------------------------------------------- */
static float *scratch_buf[NV_SCRATCH_SLOTS];
static size_t scratch_cap[NV_SCRATCH_SLOTS];

float *nv_scratch(int slot, size_t nfloats) {
  if (slot < 0 || slot >= NV_SCRATCH_SLOTS) return NULL;
  if (nfloats > scratch_cap[slot]) {
    free(scratch_buf[slot]);
    size_t bytes = ((nfloats ? nfloats : 1) * sizeof(float) + 63) & ~(size_t)63;
    scratch_buf[slot] = aligned_alloc(64, bytes);
    scratch_cap[slot] = scratch_buf[slot] ? nfloats : 0;
    if (!scratch_buf[slot]) nv_seterr("out of memory allocating scratch (%zu floats)", nfloats);
  }
  return scratch_buf[slot];
}

float *nv_scratch_or_die(int slot, size_t nfloats, const char *who) {
  float *p = nv_scratch(slot, nfloats);
  if (!p) {
    fprintf(stderr, "nnvis: %s: %s\n", who, nv_last_error());
    abort();
  }
  return p;
}

void nv_shutdown(void) {
  nv_set_alloc_miss_hook(NULL, NULL);   /* the host that collected on misses is going away */
  nv_cache_config(0);                   /* frees the cache; later frees bypass it */
  free_hook(0);
  for (int k = 0; k < NV_SCRATCH_SLOTS; k++) {
    free(scratch_buf[k]);
    scratch_buf[k] = NULL;
    scratch_cap[k] = 0;
  }
}

/* ---- random numbers: xoshiro256** seeded through splitmix64 ----------------------------- */
static uint64_t rng[4] = {0x9E3779B97F4A7C15ull, 0xBF58476D1CE4E5B9ull, 0x94D049BB133111EBull, 1};
static int have_spare;
static double spare;

static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void nv_rng_get(uint64_t st[5]) {
  for (int i = 0; i < 4; i++) st[i] = rng[i];
  union { double d; uint64_t u; } sp = {.d = have_spare ? spare : 0.0};
  st[4] = have_spare ? sp.u : 0;   /* the cached normal, when there is one */
  if (have_spare && st[4] == 0) st[4] = 1;  /* keep "has a spare" distinguishable */
}

void nv_rng_set(const uint64_t st[5]) {
  for (int i = 0; i < 4; i++) rng[i] = st[i];
  union { double d; uint64_t u; } sp = {.u = st[4]};
  have_spare = st[4] != 0;
  spare = sp.d;
}

void nv_manual_seed(uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) rng[i] = splitmix(&x);
  have_spare = 0;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t nv_rand_u64(void) {
  uint64_t r = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;
  rng[2] ^= rng[0]; rng[3] ^= rng[1]; rng[1] ^= rng[2]; rng[0] ^= rng[3];
  rng[2] ^= t; rng[3] = rotl(rng[3], 45);
  return r;
}

double nv_rand_uniform(void) { return (double)(nv_rand_u64() >> 11) * (1.0 / 9007199254740992.0); }

double nv_rand_normal(void) {
  if (have_spare) { have_spare = 0; return spare; }
  double u, v, s;
  do {
    u = 2.0 * nv_rand_uniform() - 1.0;
    v = 2.0 * nv_rand_uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  double m = sqrt(-2.0 * log(s) / s);   /* Marsaglia's polar method */
  spare = v * m;
  have_spare = 1;
  return u * m;
}

double nv_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* dst += src, src broadcast to dst (raw, no graph): gradient accumulation uses it. */
int nv_add_into(nv_tensor *dst, const nv_tensor *src) { return into(dst, src, 1, "add_"); }

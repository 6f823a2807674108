/*
 * alloc.c — storage buffers: allocation accounting, the allocation cap (max_alloc), the cache
 * of freed buffers by size class, storage creation and release with their free hooks, and
 * nv_shutdown.
 */
#define _GNU_SOURCE
#include "core/nv.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- accounting --------------------------------------------------------------------- */
static nv_stats stats;
nv_stats nv_get_stats(void) { return stats; }
void nv_stats_node(int delta) { stats.nodes += delta; }
void nv_stats_tensor(int delta) { stats.tensors += delta; }

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

/* Buffers of 256 KiB and more are mapped, and the pages the request needs are filled in one
 * call (about 5x faster than faulting them in one by one: 7 vs 34 ms for 12.8 MB), not the
 * whole size class: a class rounds up by as much as a quarter, and populating it all made a
 * loaded ViT-B/16 hold 1.25x its weights.  MADV_POPULATE_WRITE (Linux 5.14) does that; on an
 * older kernel the pages fault in on first use. */
#define MAP_MIN_BYTES ((size_t)256 << 10)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static void *raw_alloc(size_t cls, size_t bytes) {
  if (cls >= MAP_MIN_BYTES) {
    void *p = mmap(NULL, cls, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), want = (bytes + page - 1) / page * page;
    (void)madvise(p, want < cls ? want : cls, MADV_POPULATE_WRITE);
    return p;
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
  return raw_alloc(cls, bytes);
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
size_t nv_cache_limit(void) { return limit_now(); }

nv_storage *nv_storage_new(int64_t n) {
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

void nv_storage_release(nv_storage *s) {
  if (!s || --s->refcount > 0) return;
  stats.storages--;
  stats.bytes -= s->n * (int64_t)sizeof(float);
  if (free_hooks[0]) free_hook(s->uid);
  buffer_free(s->data, (size_t)(s->n ? s->n : 1) * sizeof(float));
  free(s);
}

void nv_shutdown(void) {
  nv_set_alloc_miss_hook(NULL, NULL);   /* the host that collected on misses is going away */
  nv_cache_config(0);                   /* frees the cache; later frees bypass it */
  free_hook(0);
  nv_scratch_free_all();
}

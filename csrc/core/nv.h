/*
 * nv.h — the nnvis core: float32 N-d tensors over refcounted storage, kernels and
 * reverse-mode autograd.  Nothing here knows about Lua; the binding (lua_*.c) does.
 *
 * Dimension legend used across csrc/: N batch, C channels, H height, W width,
 * K kernel size, M/N/K also the usual gemm sizes where a file says so.
 *
 * Worked example (C):
 *     int64_t sz[2] = {2, 3};
 *     nv_tensor *a = nv_full(2, sz, 1.0f);          // new reference
 *     nv_tensor *b = nv_unary(NV_OP_EXP, a, NULL);   // new reference, records a graph node
 *     nv_release(a); nv_release(b);                  // idempotent per reference
 *
 * Conventions:
 *  - Every function that returns nv_tensor* returns a NEW reference, or NULL with
 *    nv_last_error() set.  Arguments are BORROWED unless a comment says "steals".
 *  - Indices and dimensions are 0-based in C; the binding converts from Lua's 1-based
 *    ones exactly once.
 *  - Check, then allocate, then compute: a function that fails leaves nothing allocated.
 */
#ifndef NV_H
#define NV_H

#include <stddef.h>
#include <stdint.h>

#define NV_MAXDIM 8

/* NV_HOT marks the hot elementwise and reduction loops: gcc compiles them for AVX-512, AVX2
 * and baseline x86-64 and picks one at load time by the CPU's features, so a portable build
 * (what LuaRocks makes, without -march=native) still runs the wide kernels where they exist. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(NV_NO_CLONES)
#define NV_HOT __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NV_HOT
#endif

/* ---- parallel loops ---------------------------------------------------------------
 * Kernels over big buffers split them into NV_PARTS parts that OpenMP's threads share (the
 * pool oneDNN uses; built without OpenMP the pragmas are ignored and the parts run in turn).
 * Below NV_PAR_MIN elements a loop stays on one thread.  nv_part gives part k's [lo, hi),
 * cut at multiples of 16 floats (whole cache lines). */
#define NV_PAR_MIN ((int64_t)1 << 15)
#define NV_PARTS 8
static inline void nv_part(int64_t n, int k, int parts, int64_t *lo, int64_t *hi) {
  *lo = k == 0 ? 0 : (n * k / parts) & ~(int64_t)15;
  *hi = k == parts - 1 ? n : (n * (k + 1) / parts) & ~(int64_t)15;
}
static inline int nv_parts(int64_t n) { return n >= NV_PAR_MIN ? NV_PARTS : 1; }

/* ---- errors ----------------------------------------------------------------------- */
/* Sets the thread's error message (printf-style, computed text must go through "%s"),
 * returns 0 so callers can `return nv_seterr(...)`.  nv_last_error() borrows. */
int nv_seterr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *nv_last_error(void);
/* "(2,3,4)" for a shape, written into buf (at least 8*22 bytes is always enough). */
char *nv_shape_str(char *buf, size_t n, int ndim, const int64_t *size);

/* ---- allocation accounting ------------------------------------------------------- */
/* Every storage, tensor header and graph node is counted, so specs can prove the absence
 * of leaks.  nv_malloc/nv_free count bytes of storage data too. */
typedef struct nv_stats {
  int64_t storages, tensors, nodes;   /* live objects */
  int64_t bytes;                      /* live storage bytes */
} nv_stats;
nv_stats nv_get_stats(void);
/* the counts of live tensor headers and graph nodes (alloc.c), kept by their makers */
void nv_stats_tensor(int delta);
void nv_stats_node(int delta);
/* Freed storage buffers of 64 KiB and more are kept for reuse up to `limit` bytes in all
 * (default an eighth of physical memory, within 512 MiB..2 GiB); nv_cache_config(0) empties the cache.  nv_cache_bytes: what it holds. */
void nv_cache_config(size_t limit);
/* fn(ud) is called when big buffers keep missing the cache (once per 4 MiB of fresh
 * allocations, or a quarter of the live bytes when more): a host with a garbage collector collects there, refilling the cache. */
void nv_set_alloc_miss_hook(void (*fn)(void *), void *ud);
size_t nv_cache_bytes(void);
size_t nv_cache_limit(void);   /* the cache's size limit now (the default once chosen) */

/* ---- storage and tensors ------------------------------------------------------------ */
typedef struct nv_storage {
  float *data;        /* n floats, 64-byte aligned */
  int64_t n;          /* number of elements */
  int refcount;
  int64_t version;    /* bumped by every in-place change made from Lua (see autograd) */
  uint64_t uid;       /* unique for the process's life: names these values in caches */
} nv_storage;

typedef struct nv_node nv_node;

typedef struct nv_tensor {
  nv_storage *st;                 /* retained */
  int64_t off;                    /* element offset of element (0,...,0) in st->data */
  int ndim;                       /* 0 for a scalar */
  int64_t size[NV_MAXDIM];        /* sizes */
  int64_t stride[NV_MAXDIM];      /* strides in elements (0 allowed: broadcast views) */
  int refcount;
  int requires_grad;              /* leaf flag set by the user, or propagated by ops */
  struct nv_tensor *grad;         /* accumulated gradient of a leaf, retained, or NULL */
  nv_node *fn;                    /* node that produced this tensor, retained; NULL for leaves */
} nv_tensor;

/* A new storage of n floats (refcount 1), checked against max_alloc; NULL with the error
 * set.  nv_storage_release drops one reference (NULL-safe).  Internal: tensors use them. */
nv_storage *nv_storage_new(int64_t n);
void nv_storage_release(nv_storage *s);
/* The one reference from this layer upward: a tensor owns the graph node that produced it,
 * so nv_release drops it (defined in autograd/autograd.c; NULL-safe). */
void nv_node_release(nv_node *n);

/* fn(uid) is called as a storage is freed, and fn(0) at nv_shutdown: for caches of values
 * derived from storages (the Winograd kernels, oneDNN's reordered weights); adding a hook
 * twice adds it once. */
void nv_add_storage_free_hook(void (*fn)(uint64_t uid));

nv_tensor *nv_retain(nv_tensor *t);          /* returns t */
void nv_release(nv_tensor *t);               /* NULL-safe */

/* New contiguous tensors.  size may be NULL when ndim == 0. */
nv_tensor *nv_empty(int ndim, const int64_t *size);
nv_tensor *nv_zeros(int ndim, const int64_t *size);
nv_tensor *nv_full(int ndim, const int64_t *size, float v);
nv_tensor *nv_empty_like(const nv_tensor *t);
nv_tensor *nv_zeros_like(const nv_tensor *t);
/* Sizes checked and multiplied: non-negative, at most NV_MAXDIM of them, and the product
 * (also of the non-zero ones) within max_alloc.  *numel set; 1, or 0 with the error set. */
int nv_check_numel(int ndim, const int64_t *size, int64_t *numel);
/* The allocation cap in bytes (default 3/4 of physical memory), and setting it (1/0). */
int64_t nv_max_alloc(void);
int nv_set_max_alloc(int64_t bytes);
/* A tensor header over an existing storage (retains st).  Sizes are checked as by
 * nv_check_numel (NULL with the error set); offsets and strides are not: internal use. */
nv_tensor *nv_from_storage(nv_storage *st, int64_t off, int ndim, const int64_t *size,
                           const int64_t *stride);

static inline float *nv_data(const nv_tensor *t) { return t->st->data + t->off; }
int64_t nv_numel(const nv_tensor *t);
int nv_is_contiguous(const nv_tensor *t);
int nv_same_shape(const nv_tensor *a, const nv_tensor *b);
/* new reference: t itself (retained) when contiguous, else a contiguous copy (no graph). */
nv_tensor *nv_contiguous_data(nv_tensor *t);
/* Copy src (broadcast to dst's shape) into dst, any strides. No graph. Returns 1/0. */
int nv_copy_into(nv_tensor *dst, const nv_tensor *src);
void nv_fill_raw(nv_tensor *t, float v);
/* dst += src (src broadcast to the shape of dst), any strides.  No graph.  Returns 1/0. */
int nv_add_into(nv_tensor *dst, const nv_tensor *src);

/* ---- scratch memory ------------------------------------------------------------------ */
/* Grow-only scratch buffers reused across calls (im2col columns and the like).
 * slot in [0, NV_SCRATCH_SLOTS).  Valid until the next call with the same slot. */
#define NV_SCRATCH_SLOTS 8
float *nv_scratch(int slot, size_t nfloats);
/* nv_scratch for kernels that cannot fail (their callers reserve the scratch beforehand):
 * on failure it prints "nnvis: <who>: <error>" and aborts. */
float *nv_scratch_or_die(int slot, size_t nfloats, const char *who);
/* frees every scratch buffer (nv_shutdown) */
void nv_scratch_free_all(void);
/* Frees the buffer cache and the scratch buffers, and stops caching and the allocation-miss
 * hook: called when the host closes (tensors freed after it go straight back to the system). */
void nv_shutdown(void);

/* ---- BLAS ----------------------------------------------------------------------------- */
/* Row-major C = alpha * op(A) op(B) + beta * C, op(X) = X or X^T; the one gemm wrapper. */
void nv_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc);
/* Loads OpenBLAS (choosing the best kernels for this CPU when OPENBLAS_CORETYPE is unset).
 * Returns 1, or 0 with the error set.  Idempotent. */
int nv_blas_init(void);
const char *nv_blas_core(void);      /* e.g. "SkylakeX"; borrowed */
const char *nv_blas_config(void);    /* OpenBLAS' configuration string; borrowed */
int nv_blas_threads(void);
void nv_blas_set_threads(int n);
/* nbatch products C_k = op(A + oa[k]) op(B + ob[k]) (beta 0) into C + k * M * N, in the same
 * layout as nv_gemm.  Small products (attention's (T, d) x (d, T) per head) each run on one
 * thread, the batch split over the threads: OpenBLAS threading each small call cost half the
 * time in synchronisation. */
void nv_gemm_batch(int transA, int transB, int M, int N, int K, const float *A, const int64_t *oa, int lda,
                   const float *B, const int64_t *ob, int ldb, float *C, int64_t nbatch);
int nv_blas_coretype_forced(void);   /* 1 when nnvis chose the core type itself */
/* Symmetric eigen-decomposition (LAPACK dsyevd): a is n x n row-major (lower triangle read);
 * w (n) gets the eigenvalues ascending, v (n x n, row-major) the eigenvectors as columns.
 * Returns 1, or 0 with the error set. */
int nv_eigh(int n, const float *a, float *w, float *v);

/* ---- random numbers ------------------------------------------------------------------ */
void nv_manual_seed(uint64_t seed);
/* the generator's whole state (4 words and a cached normal), to save and restore it */
void nv_rng_get(uint64_t st[5]);
void nv_rng_set(const uint64_t st[5]);
double nv_rand_uniform(void);        /* [0,1) */
double nv_rand_normal(void);         /* standard normal */
uint64_t nv_rand_u64(void);

double nv_now(void);                 /* monotonic seconds */

#endif

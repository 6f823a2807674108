/*
 * blas.c — the one gemm wrapper, and the choice of OpenBLAS kernels.
 *
 * OpenBLAS 0.3.21 (Debian 12) identifies AMD Zen 4/5 as Haswell and runs its AVX2 kernels,
 * about half the speed of its AVX-512 SkylakeX kernels on those CPUs.  Its DYNAMIC_ARCH build
 * picks the kernels once, in a constructor that reads OPENBLAS_CORETYPE, so the choice must be
 * made before the library is loaded: nnvis does not link OpenBLAS; it sets OPENBLAS_CORETYPE
 * (only when the user has not) and then dlopen()s the library.  If some other module loaded
 * OpenBLAS first, its choice stands and nv_blas_core() reports it.
 */
#define _GNU_SOURCE
#include "core/nv.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cblas enums, as in cblas.h (kept here so no header of OpenBLAS is needed). */
enum { RowMajor = 101 };
enum { NoTrans = 111, Trans = 112 };

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *,
                         int, float, float *, int);
typedef void (*sgemv_fn)(int, int, int, int, float, const float *, int, const float *, int, float,
                         float *, int);
static sgemm_fn p_sgemm;
typedef void (*dsyevd_fn)(const char *, const char *, const int *, double *, const int *, double *, double *,
                          const int *, int *, const int *, int *);
static dsyevd_fn p_dsyevd;   /* LAPACK's symmetric eigensolver, in OpenBLAS */
static sgemv_fn p_sgemv;
static void (*p_set_threads)(int);
static int (*p_get_threads)(void);
static char *(*p_corename)(void);
static char *(*p_config)(void);
static int forced;
static int loaded;

static int cpu_has_avx512(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

int nv_blas_init(void) {
  if (loaded) return 1;
  static const char *names[] = {"libopenblas.so.0", "libopenblas.so", NULL};
  void *h = NULL;
  for (int i = 0; names[i] && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
  if (!h) {
    const char *env = getenv("OPENBLAS_CORETYPE");
    if ((!env || !*env) && cpu_has_avx512()) {
      setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
      forced = 1;
    }
    /* OpenBLAS' idle threads spin (calling sched_yield) for 2^28 cycles, about 0.1 s, after
     * each gemm before they sleep, taking the cores from nnvis' own threads (the Winograd
     * and im2col workers) and from everything between two gemms: ResNet-18's forward at
     * batch 8 ran 1.25 times faster with them sleeping after 2^8. */
    const char *tt = getenv("OPENBLAS_THREAD_TIMEOUT");
    if (!tt || !*tt) setenv("OPENBLAS_THREAD_TIMEOUT", "8", 1);
    for (int i = 0; names[i] && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
  }
  if (!h) return nv_seterr("cannot load OpenBLAS (install libopenblas0): %s", dlerror());
  p_sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
  p_sgemv = (sgemv_fn)dlsym(h, "cblas_sgemv");
  p_dsyevd = (dsyevd_fn)dlsym(h, "dsyevd_");
  p_set_threads = (void (*)(int))dlsym(h, "openblas_set_num_threads");
  p_get_threads = (int (*)(void))dlsym(h, "openblas_get_num_threads");
  p_corename = (char *(*)(void))dlsym(h, "openblas_get_corename");
  p_config = (char *(*)(void))dlsym(h, "openblas_get_config");
  if (!p_sgemm || !p_sgemv) return nv_seterr("OpenBLAS has no cblas_sgemm or cblas_sgemv");
  loaded = 1;
  return 1;
}

const char *nv_blas_core(void) { return p_corename ? p_corename() : "unknown"; }
const char *nv_blas_config(void) { return p_config ? p_config() : "unknown"; }
int nv_blas_threads(void) { return p_get_threads ? p_get_threads() : 1; }

/* products of at most this many multiply-adds run one per thread */
#define GEMM_SMALL ((int64_t)1 << 22)

void nv_gemm_batch(int transA, int transB, int M, int N, int K, const float *A, const int64_t *oa, int lda,
                   const float *B, const int64_t *ob, int ldb, float *C, int64_t nbatch) {
  int threads = nv_blas_threads();
  if (nbatch >= 2 && threads > 1 && (int64_t)M * N * K <= GEMM_SMALL && K > 0 && M > 1 && N > 1) {
    if (!loaded && !nv_blas_init()) abort();
    nv_blas_set_threads(1);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t k = 0; k < nbatch; k++)
      p_sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, M, N, K, 1.0f, A + oa[k], lda,
              B + ob[k], ldb, 0.0f, C + k * (int64_t)M * N, N);
    nv_blas_set_threads(threads);
    return;
  }
  for (int64_t k = 0; k < nbatch; k++)
    nv_gemm(transA, transB, M, N, K, 1.0f, A + oa[k], lda, B + ob[k], ldb, 0.0f, C + k * (int64_t)M * N, N);
}
void nv_blas_set_threads(int n) { if (p_set_threads && n > 0) p_set_threads(n); }
int nv_blas_coretype_forced(void) { return forced; }

void nv_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) { /* C = beta*C: BLAS may skip this, do it ourselves */
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
    return;
  }
  if (!loaded && !nv_blas_init()) abort(); /* the binding initializes BLAS before any op */
  /* A single row or column is a matrix-vector product.  sgemm would first pack the whole
   * matrix into its panel layout (a full extra pass over, e.g., VGG16's 400 MB fc6 weight for
   * a batch of one); sgemv streams it once. */
  if ((M == 1 || N == 1) && beta == 0.0f) {   /* C may be uninitialized: never let BLAS read it */
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = 0.0f;
  }
  if (M == 1) {          /* c (N) = op(B)^T a: op(B) is (K,N) */
    int inca = transA ? lda : 1;
    if (transB) p_sgemv(RowMajor, NoTrans, N, K, alpha, B, ldb, A, inca, beta, C, 1);
    else p_sgemv(RowMajor, Trans, K, N, alpha, B, ldb, A, inca, beta, C, 1);
    return;
  }
  if (N == 1) {          /* c (M) = op(A) b: op(A) is (M,K) */
    int incb = transB ? 1 : ldb;
    if (transA) p_sgemv(RowMajor, Trans, K, M, alpha, A, lda, B, incb, beta, C, ldc);
    else p_sgemv(RowMajor, NoTrans, M, K, alpha, A, lda, B, incb, beta, C, ldc);
    return;
  }
  p_sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, M, N, K, alpha, A, lda, B,
          ldb, beta, C, ldc);
}

/* Eigen-decomposition of the symmetric n x n matrix a (row-major, only its lower triangle
 * read): w = eigenvalues ascending, v = row-major n x n with eigenvector k in column k.
 * Computed in double precision by LAPACK's dsyevd.  Returns 1, or 0 with the error set. */
int nv_eigh(int n, const float *a, float *w, float *v) {
  if (!nv_blas_init()) return 0;
  if (!p_dsyevd) return nv_seterr("eigh: this OpenBLAS has no LAPACK (dsyevd_)");
  if (n <= 0) return 1;
  size_t nn = (size_t)n * n;
  double *A = malloc(nn * sizeof *A), *W = malloc((size_t)n * sizeof *W);
  if (!A || !W) { free(A); free(W); return nv_seterr("eigh: out of memory for a %dx%d matrix", n, n); }
  for (size_t i = 0; i < nn; i++) A[i] = a[i];   /* row-major lower = column-major upper */
  int lwork = -1, liwork = -1, info = 0, iwq = 0;
  double wq = 0;
  p_dsyevd("V", "U", &n, A, &n, W, &wq, &lwork, &iwq, &liwork, &info);
  lwork = (int)wq; liwork = iwq;
  double *work = info == 0 ? malloc((size_t)lwork * sizeof *work) : NULL;
  int *iwork = info == 0 ? malloc((size_t)liwork * sizeof *iwork) : NULL;
  if (!work || !iwork) { free(A); free(W); free(work); free(iwork); return nv_seterr("eigh: out of memory for the workspace"); }
  p_dsyevd("V", "U", &n, A, &n, W, work, &lwork, iwork, &liwork, &info);
  free(work); free(iwork);
  if (info != 0) { free(A); free(W); return nv_seterr("eigh: LAPACK dsyevd failed (info %d)", info); }
  for (int k = 0; k < n; k++) w[k] = (float)W[k];
  /* column-major A: A[k*n + i] is component i of eigenvector k */
  for (int i = 0; i < n; i++)
    for (int k = 0; k < n; k++) v[(size_t)i * n + k] = (float)A[(size_t)k * n + i];
  free(A); free(W);
  return 1;
}

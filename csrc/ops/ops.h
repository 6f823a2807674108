/*
 * ops.h — tensor operations that record the autograd graph when grad mode is on and an
 * input requires grad.  All return NEW references or NULL with nv_last_error() set;
 * arguments are borrowed.  Dimensions are 0-based here (the binding converts).
 * Index tensors (gather, index_select, the indices of max/min) hold 1-BASED values,
 * because they are user-facing data; kernels subtract one when they read them.
 */
#ifndef NV_OPS_H
#define NV_OPS_H

#include "autograd/autograd.h"
#include "core/nv.h"

/* The built-in ops, from the one list ops/ops.def (see there for kinds and flags): node->op
 * of their graph nodes, and which function nv_binary/nv_unary run.  A new op in a file of its
 * own may also skip the list: its node carries its own name and backward. */
enum { NV_UNARY = 1, NV_BINARY, NV_OTHER };
enum { NV_READS = 1, NV_ZEROGRAD = 2, NV_METHOD = 4, NV_FUNCTION = 8 };

typedef enum {
#define NV_OP(id, name, kind, flags, np, d0, d1) NV_OP_##id,
#include "ops/ops.def"
#undef NV_OP
  NV_OP_COUNT
} nv_op;

/* nv_op_names[op] etc. for 0 <= op < NV_OP_COUNT (ops.c) */
extern const char *const nv_op_names[NV_OP_COUNT];
extern const unsigned char nv_op_kinds[NV_OP_COUNT];
extern const unsigned char nv_op_flags[NV_OP_COUNT];
typedef struct nv_op_params { int n; double def[2]; } nv_op_params;
extern const nv_op_params nv_op_params_of[NV_OP_COUNT];

/* A node for built-in op `op` (named nv_op_names[op], reads_inputs from its NV_READS flag)
 * with the given backward. */
nv_node *nv_op_node(int op, nv_backward_fn backward, int nin, nv_tensor *const *in);

/* ---- elementwise (binary.c, unary.c) ------------------------------------------------ */
/* op: an NV_BINARY op of ops.def; numpy broadcasting. */
nv_tensor *nv_binary(int op, nv_tensor *a, nv_tensor *b);
enum { NV_CMP_EQ, NV_CMP_NE, NV_CMP_LT, NV_CMP_LE, NV_CMP_GT, NV_CMP_GE };
nv_tensor *nv_compare(int cmp, nv_tensor *a, nv_tensor *b);   /* 0/1 mask, no graph */
/* op: an NV_UNARY op of ops.def; p0, p1: its parameters (exponent, bounds, slope, alpha). */
nv_tensor *nv_unary(int op, nv_tensor *x, double p0, double p1);
nv_tensor *nv_where(nv_tensor *cond, nv_tensor *a, nv_tensor *b);
/* out shape of broadcasting a and b; 1/0 */
int nv_broadcast_shape(const char *fname, const nv_tensor *a, const nv_tensor *b, int *ndim,
                       int64_t *size);
/* raw in-place kernel (no graph): dst *= s  (dst += src is nv_add_into, nv.h) */
void nv_scale_(nv_tensor *t, float s);

/* ---- reductions (reduce.c) ---------------------------------------------------------- */
/* dim < 0: over all elements (keepdim ignored) */
nv_tensor *nv_sum(nv_tensor *x, int dim, int keepdim);
nv_tensor *nv_mean(nv_tensor *x, int dim, int keepdim);
/* sum of x down to a shape x broadcasts from (used by broadcasting backward). */
nv_tensor *nv_sum_to(nv_tensor *x, int ndim, const int64_t *size);
/* values (graph) and 1-based indices (no graph); dim < 0: all elements, flat index. */
int nv_maxmin(nv_tensor *x, int dim, int keepdim, int ismin, nv_tensor **vals, nv_tensor **idx);
/* The 1-based positions (float32) that sort x along dim (0-based): ascending, or descending;
 * the first k of them (k = x->size[dim] for all).  NaN counts as the largest value; ties keep
 * their order (stable).  No gradient: x:gather(dim, positions) gives the sorted values.
 * New reference, or NULL with the error set. */
nv_tensor *nv_argsort(nv_tensor *x, int dim, int descending, int64_t k);
/* The writes of a scatter of m writes to positions (0-based floats in [0, n)) as gathers:
 * (rounds, n) with row r holding 1 + the write that reached each position r-th (0: none),
 * and *last (n) 1 + each position's last write (0: none).  New references (both), or NULL
 * with the error set.  No gradient. */
nv_tensor *nv_scatter_picks(int64_t n, nv_tensor *positions, nv_tensor **last);
nv_tensor *nv_var(nv_tensor *x, int dim, int keepdim, int unbiased);
nv_tensor *nv_logsumexp(nv_tensor *x, int dim, int keepdim);
nv_tensor *nv_softmax(nv_tensor *x, int dim, int log);
/* counts in `bins` equal bins over [lo, hi]; lo == hi means x's own range (no graph) */
nv_tensor *nv_histc(nv_tensor *x, int64_t bins, double lo, double hi);

/* ---- shapes and views (shape.c) ------------------------------------------------------- */
nv_tensor *nv_view(nv_tensor *x, int ndim, const int64_t *size);      /* must be viewable */
nv_tensor *nv_reshape(nv_tensor *x, int ndim, const int64_t *size);   /* view or copy */
nv_tensor *nv_transpose(nv_tensor *x, int d1, int d2);
nv_tensor *nv_permute(nv_tensor *x, const int *perm);
nv_tensor *nv_narrow(nv_tensor *x, int d, int64_t start, int64_t len);
nv_tensor *nv_select(nv_tensor *x, int d, int64_t i);
nv_tensor *nv_expand(nv_tensor *x, int ndim, const int64_t *size);
nv_tensor *nv_unsqueeze(nv_tensor *x, int d);
nv_tensor *nv_squeeze(nv_tensor *x, int d);                             /* d < 0: all */
nv_tensor *nv_clone(nv_tensor *x);
nv_tensor *nv_contiguous(nv_tensor *x);
nv_tensor *nv_detach(nv_tensor *x);
nv_tensor *nv_gather(nv_tensor *x, int d, nv_tensor *idx);
nv_tensor *nv_index_select(nv_tensor *x, int d, nv_tensor *idx);
nv_tensor *nv_cat(int n, nv_tensor *const *ts, int d);
nv_tensor *nv_stack(int n, nv_tensor *const *ts, int d);
/* resolves a 0-based dim that may be negative (counting from the end) for ndim dims. */
int nv_wrap_dim(const char *fname, const char *arg, int d, int ndim, int *out);

/* ---- linear algebra (linalg.c) ------------------------------------------------------ */
nv_tensor *nv_matmul(nv_tensor *a, nv_tensor *b);
/* raw batched matmul for tensors of >= 2 dims with broadcast batch dims; no graph */
nv_tensor *nv_matmul_raw(nv_tensor *a, nv_tensor *b);

/* ---- saliency.c: hooks of the backward pass (nv_backward_opts.node_hook) --------------- */
/* guided backpropagation: clamps the input gradient of every relu node at 0 */
int nv_guided_relu_hook(void *ud, const nv_node *n, nv_tensor **gin);

/* ---- warp.c: rotation (radians, counter-clockwise) and scaling about the centre ---- */
nv_tensor *nv_rotate(nv_tensor *x, double angle, double scale);

#endif

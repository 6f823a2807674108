/*
 * autograd.h — define-by-run reverse mode.
 *
 * Every op that records a graph creates one nv_node and hangs it on its output
 * (out->fn).  The node retains its inputs (so the graph is a DAG of owned references,
 * with no cycles) and whatever it saved for backward.  nv_backward() walks the graph
 * from a root in reverse topological order and calls nv_node_backward(), one switch
 * over the op, whose cases compute the gradient for each input that requires one.
 * Unless asked to retain it, backward frees each node's inputs and saved tensors.
 */
#ifndef NV_AUTOGRAD_H
#define NV_AUTOGRAD_H

#include "nv.h"

#define NV_MAXSAVED 4
#define NV_MAXPARAM 24

/* Ops that can appear in a graph.  Keep nv_op_names[] (autograd.c) in the same order. */
typedef enum {
  NV_OP_ADD, NV_OP_SUB, NV_OP_MUL, NV_OP_DIV, NV_OP_POW, NV_OP_MAXIMUM, NV_OP_MINIMUM,
  NV_OP_NEG, NV_OP_EXP, NV_OP_LOG, NV_OP_SQRT, NV_OP_RSQRT, NV_OP_ABS, NV_OP_SIN, NV_OP_COS,
  NV_OP_TANH, NV_OP_SIGMOID, NV_OP_RELU, NV_OP_POWS, NV_OP_CLAMP, NV_OP_LEAKY_RELU, NV_OP_ELU,
  NV_OP_GELU, NV_OP_SQUARE, NV_OP_RECIPROCAL, NV_OP_LOG1P, NV_OP_SOFTPLUS,
  NV_OP_SIGN, NV_OP_FLOOR, NV_OP_CEIL, NV_OP_ROUND, /* zero gradient */
  NV_OP_WHERE,
  NV_OP_SUM, NV_OP_MEAN, NV_OP_MAXDIM, NV_OP_MAXALL,
  NV_OP_SOFTMAX, NV_OP_LOG_SOFTMAX,
  NV_OP_MATMUL,
  NV_OP_VIEW, NV_OP_STRIDED, NV_OP_EXPAND, NV_OP_COPY,
  NV_OP_GATHER, NV_OP_INDEX_SELECT, NV_OP_CAT,
  NV_OP_CONV2D, NV_OP_MAX_POOL2D, NV_OP_AVG_POOL2D, NV_OP_ADAPTIVE_AVG_POOL2D,
  NV_OP_BATCH_NORM, NV_OP_INTERPOLATE, NV_OP_PAD,
  NV_OP_WARP,
  NV_OP_COUNT
} nv_op;

extern const char *const nv_op_names[NV_OP_COUNT];

struct nv_node {
  int op;                          /* nv_op */
  int refcount;
  int nin;                         /* inputs in[0..nin) */
  nv_tensor **in;                  /* nin entries, retained; NULL after backward frees them */
  int64_t *ver;                    /* in[k]'s storage version when the node was made */
  nv_tensor *saved[NV_MAXSAVED];   /* retained; what forward kept for backward */
  double f[NV_MAXPARAM];           /* float parameters (slope, eps, ...) */
  int64_t i[NV_MAXPARAM];          /* integer parameters (dims, strides, sizes, ...) */
  int freed;                       /* 1 once backward released the inputs */
};

/* new node (refcount 1) retaining in[0..nin); NULL on out-of-memory. */
nv_node *nv_node_new(int op, int nin, nv_tensor *const *in);
void nv_node_release(nv_node *n);  /* NULL-safe */
void nv_stats_node(int delta);     /* accounting, in tensor.c */
/* steals n: out->fn = n, out->requires_grad = 1. */
void nv_attach(nv_tensor *out, nv_node *n);
/* saves t (retained) in slot k of n. */
void nv_save(nv_node *n, int k, nv_tensor *t);

int nv_grad_enabled(void);
int nv_set_grad_enabled(int on);   /* returns the previous setting */
/* guided-backprop mode: relu's backward passes only positive gradients (for saliency) */
int nv_guided_relu(void);
int nv_set_guided_relu(int on);    /* returns the previous setting */
/* 1 when grad mode is on and any of ts[0..n) (NULLs allowed) requires grad. */
int nv_needs_grad(int n, nv_tensor *const *ts);

/* Reverse-mode pass from root.  grad: gradient of root (NULL = ones, root must then be
 * a single element).  When nwrt > 0 the gradients with respect to wrt[] (leaves or
 * intermediates) are returned in outg[] as new references (zeros where unreachable),
 * and no .grad is touched; otherwise leaves' .grad accumulate.  Returns 1/0. */
int nv_backward(nv_tensor *root, nv_tensor *grad, int retain_graph, int nwrt,
                nv_tensor *const *wrt, nv_tensor **outg);

/* The per-op backward: given the output and its gradient gout, write into gin[k] a new
 * reference to the gradient of input k (or leave NULL when it needs none). */
int nv_node_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin);

#endif

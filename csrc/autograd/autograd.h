/*
 * autograd.h — define-by-run reverse mode.
 *
 * Every op that records a graph creates one nv_node and hangs it on its output
 * (out->fn).  The node retains its inputs (so the graph is a DAG of owned references,
 * with no cycles), whatever it saved for backward, and its backward function, which
 * the op defines beside its forward: this file knows nodes, not ops.  nv_backward() walks
 * the graph from a root in reverse topological order, visiting only the nodes on a path to
 * a tensor it was asked about, and each node computes only the input gradients that lead
 * there (nv_need).  Unless asked to retain it, backward frees each visited node's inputs
 * and saved tensors.
 */
#ifndef NV_AUTOGRAD_H
#define NV_AUTOGRAD_H

#include "core/nv.h"

#define NV_MAXSAVED 4
#define NV_MAXPARAM 24

/* The backward of one node: given the output and its gradient gout, write into gin[k] a new
 * reference to the gradient of input k for each k with nv_need(n, k), and leave the others
 * NULL.  Returns 1, or 0 with the error set.  Each op defines its own, beside its forward. */
typedef int (*nv_backward_fn)(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin);

struct nv_node {
  const char *name;                /* static op name: messages, t.grad_fn */
  nv_backward_fn backward;         /* the op's backward */
  int op;                          /* the op file's own code (which function, which variant) */
  int reads_inputs;                /* 1 when backward reads input values (in-place check) */
  int refcount;
  int nin;                         /* inputs in[0..nin) */
  nv_tensor **in;                  /* nin entries, retained; NULL after backward frees them */
  int64_t *ver;                    /* in[k]'s storage version when the node was made */
  unsigned char *need;             /* need[k]: the pass under way wants input k's gradient */
  nv_tensor *saved[NV_MAXSAVED];   /* retained; what forward kept for backward */
  double f[NV_MAXPARAM];           /* float parameters (slope, eps, ...) */
  int64_t i[NV_MAXPARAM];          /* integer parameters (dims, strides, sizes, ...) */
  int freed;                       /* 1 once backward released the inputs */
};

/* Whether the running backward pass wants the gradient of input k: the input requires grad
 * and leads to a tensor the pass was asked about (a leaf for backward, wrt[] for grad). */
static inline int nv_need(const nv_node *n, int k) { return n->need[k]; }

/* new node (refcount 1) retaining in[0..nin); NULL on out-of-memory. */
nv_node *nv_node_new(const char *name, nv_backward_fn backward, int op, int nin, nv_tensor *const *in);
void nv_node_release(nv_node *n);  /* NULL-safe */
/* steals n: out->fn = n, out->requires_grad = 1. */
void nv_attach(nv_tensor *out, nv_node *n);
/* saves t (retained) in slot k of n. */
void nv_save(nv_node *n, int k, nv_tensor *t);

int nv_grad_enabled(void);
int nv_set_grad_enabled(int on);   /* returns the previous setting */
/* 1 when grad mode is on and any of ts[0..n) (NULLs allowed) requires grad. */
int nv_needs_grad(int n, nv_tensor *const *ts);

/* Reverse-mode pass from root.  grad: gradient of root (NULL = ones, root must then be
 * a single element).  When nwrt > 0 the gradients with respect to wrt[] (leaves or
 * intermediates) are returned in outg[] as new references (zeros where unreachable),
 * and no .grad is touched; otherwise leaves' .grad accumulate.  Returns 1/0. */
int nv_backward(nv_tensor *root, nv_tensor *grad, int retain_graph, int nwrt,
                nv_tensor *const *wrt, nv_tensor **outg);

/* Options of one pass.  node_hook, when set, runs after each node's backward with the input
 * gradients it produced (gin[k] NULL where not needed; a hook may replace gin[k], releasing
 * the old reference, or change it in place when it holds the only reference); it returns 1,
 * or 0 with the error set to stop the pass.  ud is passed through.  Saliency methods use it
 * (guided backprop, ops/saliency.c): the engine knows nothing of them. */
typedef struct nv_backward_opts {
  int (*node_hook)(void *ud, const nv_node *n, nv_tensor **gin);
  void *ud;
} nv_backward_opts;
/* nv_backward with options (opts may be NULL) */
int nv_backward_ex(nv_tensor *root, nv_tensor *grad, int retain_graph, int nwrt,
                   nv_tensor *const *wrt, nv_tensor **outg, const nv_backward_opts *opts);

/* Counters of the backward passes since the last reset: entry i (0-based) names an op, how
 * many times its backward ran, and how many times it was asked for the gradient of each of
 * its first 8 inputs.  Returns 0 past the last entry. */
int nv_backward_counts(int i, const char **name, int64_t *calls, int64_t inputs[8]);
void nv_backward_counts_reset(void);

#endif

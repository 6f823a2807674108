/*
 * saliency.c — backward-pass hooks of saliency methods (autograd.h, nv_backward_opts): the
 * engine runs them after each node's backward and knows nothing of what they do.
 *
 * Guided backpropagation (Springenberg et al. 2015, Eq. 6): at each ReLU the gradient passes
 * only where both the input and the incoming gradient are positive.  relu's own backward
 * gives gin = gout * (x > 0), so max(gin, 0) = (x > 0) * max(gout, 0): clamping its result
 * at 0 is guided backprop.
 */
#include "ops/ops.h"

#include <string.h>

int nv_guided_relu_hook(void *ud, const nv_node *n, nv_tensor **gin) {
  (void)ud;
  if (n->op != NV_OP_RELU || strcmp(n->name, "relu") != 0 || !gin[0]) return 1;
  nv_tensor *g = gin[0];
  if (g->refcount > 1 || g->st->refcount > 1 || !nv_is_contiguous(g)) {   /* not ours to change */
    nv_tensor *c = nv_empty_like(g);
    if (!c || !nv_copy_into(c, g)) { nv_release(c); return 0; }
    nv_release(g);
    gin[0] = g = c;
  }
  float *p = nv_data(g);
  const int64_t m = nv_numel(g);
  for (int64_t i = 0; i < m; i++) p[i] = p[i] > 0.0f ? p[i] : 0.0f;
  return 1;
}

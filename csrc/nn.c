/*
 * nn.c — neural-network ops on tensors (graph recording and shape checks) over the raw
 * kernels of conv.c, pool.c, norm.c and resample.c.
 */
#include "ops.h"

int nv_nn_backward(nv_node *n, nv_tensor *out, nv_tensor *gout, nv_tensor **gin) {
  return nv_seterr("backward: op %s has no backward", nv_op_names[n->op]);
}

/*
 * ops.c — the tables of the built-in ops, expanded from the one list ops.def, and their
 * graph nodes.
 */
#include "ops/ops.h"

/* Each entry is stored at its own enum index (designated initializers), so the tables
 * follow the list whatever its order; these checks fail the build when a line is broken. */
#define NV_OP(id, name, kind, flags, np, d0, d1)                                                        \
  _Static_assert(sizeof(name) > 1, "ops.def: " #id " needs a name");                                 \
  _Static_assert((kind) == NV_UNARY || (kind) == NV_BINARY || (kind) == NV_OTHER, "ops.def: " #id " kind"); \
  _Static_assert((np) >= 0 && (np) <= 2 && ((kind) == NV_UNARY || (np) == 0),                         \
                 "ops.def: " #id ": only unary ops take parameters, at most 2");                     \
  _Static_assert(!((flags) & (NV_METHOD | NV_FUNCTION)) || (kind) == NV_UNARY,                       \
                 "ops.def: " #id ": only unary ops are bound from the list");                        \
  _Static_assert(!(((flags) & NV_ZEROGRAD) && ((flags) & NV_READS)),                                \
                 "ops.def: " #id ": a zero gradient reads no input");
#include "ops/ops.def"
#undef NV_OP

const char *const nv_op_names[NV_OP_COUNT] = {
#define NV_OP(id, name, kind, flags, np, d0, d1) [NV_OP_##id] = name,
#include "ops/ops.def"
#undef NV_OP
};

const unsigned char nv_op_kinds[NV_OP_COUNT] = {
#define NV_OP(id, name, kind, flags, np, d0, d1) [NV_OP_##id] = kind,
#include "ops/ops.def"
#undef NV_OP
};

const unsigned char nv_op_flags[NV_OP_COUNT] = {
#define NV_OP(id, name, kind, flags, np, d0, d1) [NV_OP_##id] = flags,
#include "ops/ops.def"
#undef NV_OP
};

const nv_op_params nv_op_params_of[NV_OP_COUNT] = {
#define NV_OP(id, name, kind, flags, np, d0, d1) [NV_OP_##id] = {np, {d0, d1}},
#include "ops/ops.def"
#undef NV_OP
};

nv_node *nv_op_node(int op, nv_backward_fn backward, int nin, nv_tensor *const *in) {
  nv_node *n = nv_node_new(nv_op_names[op], backward, op, nin, in);
  if (n) n->reads_inputs = (nv_op_flags[op] & NV_READS) != 0;
  return n;
}

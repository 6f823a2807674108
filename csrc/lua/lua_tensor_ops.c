/*
 * lua_tensor_ops.c — the Lua face of tensor ops: views, arithmetic and comparisons, unary
 * math and activations, reductions, matmul, gather, cat and stack.  Dimensions arrive
 * 1-based (negative counts from the end) and are converted to 0-based exactly once, here.
 */
#include "lua/lua_nv.h"
#include "ops/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define T(i) nv_lua_checktensor(L, (i))
#define PUSH(expr, name) (nv_lua_pushtensor(L, (expr), (name)), 1)

/* ---- views ----------------------------------------------------------------------------------- */
static int m_view(lua_State *L) {
  int64_t s[NV_MAXDIM];
  int nd = nv_lua_read_sizes(L, 2, s, "view");
  return PUSH(nv_view(T(1), nd, s), "view");
}

static int m_reshape(lua_State *L) {
  int64_t s[NV_MAXDIM];
  int nd = nv_lua_read_sizes(L, 2, s, "reshape");
  return PUSH(nv_reshape(T(1), nd, s), "reshape");
}

static int m_transpose(lua_State *L) {
  nv_tensor *t = T(1);
  int a = t->ndim ? nv_lua_checkdim(L, 2, t->ndim, "transpose") : 0, b = t->ndim ? nv_lua_checkdim(L, 3, t->ndim, "transpose") : 0;
  return PUSH(nv_transpose(t, a, b), "transpose");
}

static int m_t(lua_State *L) {
  nv_tensor *t = T(1);
  if (t->ndim != 2) { char a[200]; return luaL_error(L, "t: expects a 2-D tensor, got %s", nv_shape_str(a, sizeof a, t->ndim, t->size)); }
  return PUSH(nv_transpose(t, 0, 1), "t");
}

static int m_permute(lua_State *L) {
  nv_tensor *t = T(1);
  int perm[NV_MAXDIM];
  int n = lua_istable(L, 2) ? (int)luaL_len(L, 2) : lua_gettop(L) - 1;
  if (n != t->ndim) { char a[200]; return luaL_error(L, "permute: expected %d dims for %s, got %d", t->ndim, nv_shape_str(a, sizeof a, t->ndim, t->size), n); }
  for (int i = 0; i < n; i++) {
    if (lua_istable(L, 2)) lua_geti(L, 2, i + 1); else lua_pushvalue(L, 2 + i);
    perm[i] = nv_lua_checkdim(L, -1, t->ndim, "permute");
    lua_pop(L, 1);
  }
  return PUSH(nv_permute(t, perm), "permute");
}

static int m_narrow(lua_State *L) {
  nv_tensor *t = T(1);
  if (t->ndim == 0) return luaL_error(L, "narrow: cannot narrow a scalar");
  int d = nv_lua_checkdim(L, 2, t->ndim, "narrow");
  lua_Integer start = nv_lua_checkint(L, 3, 1, t->size[d] + 1, "narrow", "start");
  lua_Integer len = nv_lua_checkint(L, 4, 0, t->size[d] - start + 1, "narrow", "length");
  return PUSH(nv_narrow(t, d, start - 1, len), "narrow");
}

static int m_select(lua_State *L) {
  nv_tensor *t = T(1);
  if (t->ndim == 0) return luaL_error(L, "select: cannot select from a scalar");
  int d = nv_lua_checkdim(L, 2, t->ndim, "select");
  lua_Integer i = nv_lua_checkint(L, 3, -t->size[d], t->size[d], "select", "index");
  if (i < 0) i += t->size[d] + 1;
  if (i == 0) return luaL_error(L, "select: index 0 is out of range (indices are 1-based) for size %d", (int)t->size[d]);
  return PUSH(nv_select(t, d, i - 1), "select");
}

static int m_unsqueeze(lua_State *L) {
  nv_tensor *t = T(1);
  return PUSH(nv_unsqueeze(t, nv_lua_checkdim(L, 2, t->ndim + 1, "unsqueeze")), "unsqueeze");
}

static int m_squeeze(lua_State *L) {
  nv_tensor *t = T(1);
  int d = lua_isnoneornil(L, 2) || t->ndim == 0 ? -1 : nv_lua_checkdim(L, 2, t->ndim, "squeeze");
  return PUSH(nv_squeeze(t, d), "squeeze");
}

static int m_expand(lua_State *L) {
  int64_t s[NV_MAXDIM];
  int nd = nv_lua_read_sizes(L, 2, s, "expand");
  return PUSH(nv_expand(T(1), nd, s), "expand");
}

static int m_contiguous(lua_State *L) { return PUSH(nv_contiguous(T(1)), "contiguous"); }
static int m_clone(lua_State *L) { return PUSH(nv_clone(T(1)), "clone"); }
static int m_detach(lua_State *L) { return PUSH(nv_detach(T(1)), "detach"); }

/* ---- arithmetic -------------------------------------------------------------------------------- */
static int binary(lua_State *L, int op) {
  lua_settop(L, 2);
  nv_tensor *a = nv_lua_checktensor_or_number(L, 1);
  nv_tensor *b = nv_lua_checktensor_or_number(L, 2);
  return PUSH(nv_binary(op, a, b), nv_op_names[op]);
}
static int m_add(lua_State *L) { return binary(L, NV_OP_ADD); }
static int m_sub(lua_State *L) { return binary(L, NV_OP_SUB); }
static int m_mul(lua_State *L) { return binary(L, NV_OP_MUL); }
static int m_div(lua_State *L) { return binary(L, NV_OP_DIV); }
static int m_maximum(lua_State *L) { return binary(L, NV_OP_MAXIMUM); }
static int m_minimum(lua_State *L) { return binary(L, NV_OP_MINIMUM); }

/* t:pow(number) is the scalar power (its own op, with a cheap gradient); t:pow(tensor)
 * is elementwise; number:pow(t) through the ^ operator. */
static int m_pow(lua_State *L) {
  if (lua_type(L, 2) == LUA_TNUMBER && nv_lua_totensor(L, 1))
    return PUSH(nv_unary(NV_OP_POWS, T(1), lua_tonumber(L, 2), 0), "pow");
  return binary(L, NV_OP_POW);
}

static int compare(lua_State *L, int cmp) {
  lua_settop(L, 2);
  nv_tensor *a = nv_lua_checktensor_or_number(L, 1);
  nv_tensor *b = nv_lua_checktensor_or_number(L, 2);
  return PUSH(nv_compare(cmp, a, b), "compare");
}
static int m_eq(lua_State *L) { return compare(L, NV_CMP_EQ); }
static int m_ne(lua_State *L) { return compare(L, NV_CMP_NE); }
static int m_lt(lua_State *L) { return compare(L, NV_CMP_LT); }
static int m_le(lua_State *L) { return compare(L, NV_CMP_LE); }
static int m_gt(lua_State *L) { return compare(L, NV_CMP_GT); }
static int m_ge(lua_State *L) { return compare(L, NV_CMP_GE); }

static int l_where(lua_State *L) {
  lua_settop(L, 3);
  nv_tensor *c = nv_lua_checktensor_or_number(L, 1);
  nv_tensor *a = nv_lua_checktensor_or_number(L, 2);
  nv_tensor *b = nv_lua_checktensor_or_number(L, 3);
  return PUSH(nv_where(c, a, b), "where");
}

/* -x, for the metatable's __unm */
static int m_neg(lua_State *L) { return PUSH(nv_unary(NV_OP_NEG, T(1), 0, 0), "neg"); }

/* t:name([p0 [, p1]]) for each unary op that ops.def marks NV_METHOD, and core.name(x, ...)
 * for NV_FUNCTION: the op comes from the closure's upvalue, its parameters are optional
 * numbers with the list's defaults. */
static int unary_method(lua_State *L) {
  int op = (int)lua_tointeger(L, lua_upvalueindex(1));
  const nv_op_params *p = &nv_op_params_of[op];
  nv_tensor *x = T(1);
  double v[2] = {p->def[0], p->def[1]};
  for (int k = 0; k < p->n; k++) v[k] = luaL_optnumber(L, 2 + k, v[k]);
  return PUSH(nv_unary(op, x, v[0], v[1]), nv_op_names[op]);
}

void nv_lua_open_unary(lua_State *L, int module, int methods) {
  /* core.unary_ops: the names bound here, in the list's order, so Lua derives from the list
   * what it adds per op (the functional forms nv.relu(x), ...) instead of keeping its own */
  lua_newtable(L);
  int names = lua_gettop(L), n = 0;
  for (int op = 0; op < NV_OP_COUNT; op++) {
    int f = nv_op_flags[op];
    if (!(f & (NV_METHOD | NV_FUNCTION))) continue;
    lua_pushstring(L, nv_op_names[op]);
    lua_rawseti(L, names, ++n);
    lua_pushinteger(L, op);
    lua_pushcclosure(L, unary_method, 1);
    if (f & NV_FUNCTION) { lua_pushvalue(L, -1); lua_setfield(L, module, nv_op_names[op]); }
    if (f & NV_METHOD) lua_setfield(L, methods, nv_op_names[op]);
    else lua_pop(L, 1);
  }
  lua_setfield(L, module, "unary_ops");
}

static int m_clamp(lua_State *L) {
  double lo = luaL_optnumber(L, 2, -HUGE_VAL), hi = luaL_optnumber(L, 3, HUGE_VAL);
  return PUSH(nv_unary(NV_OP_CLAMP, T(1), lo, hi), "clamp");
}

/* ---- reductions ------------------------------------------------------------------------------ */
/* dim argument: nil = all elements (-1) */
static int optdim(lua_State *L, int idx, nv_tensor *t, const char *fname) {
  if (lua_isnoneornil(L, idx) || t->ndim == 0) return -1;
  return nv_lua_checkdim(L, idx, t->ndim, fname);
}

static int m_sum(lua_State *L) {
  nv_tensor *t = T(1);
  return PUSH(nv_sum(t, optdim(L, 2, t, "sum"), lua_toboolean(L, 3)), "sum");
}
static int m_mean(lua_State *L) {
  nv_tensor *t = T(1);
  return PUSH(nv_mean(t, optdim(L, 2, t, "mean"), lua_toboolean(L, 3)), "mean");
}

static int maxmin(lua_State *L, int ismin, int want_vals, int want_idx) {
  nv_tensor *t = T(1);
  const char *fname = ismin ? "min" : "max";
  int d = optdim(L, 2, t, fname);
  nv_tensor *v, *ix;
  if (!nv_maxmin(t, d, lua_toboolean(L, 3), ismin, &v, &ix)) return nv_lua_raise(L, fname);
  int n = 0;
  if (want_vals) { nv_lua_pushtensor(L, v, fname); n++; } else nv_release(v);
  if (want_idx) { nv_lua_pushtensor(L, ix, fname); n++; } else nv_release(ix);
  return n;
}
/* t:max() -> scalar; t:max(d [, keepdim]) -> values, indices (1-based) */
static int m_max(lua_State *L) { return maxmin(L, 0, 1, !lua_isnoneornil(L, 2)); }
static int m_min(lua_State *L) { return maxmin(L, 1, 1, !lua_isnoneornil(L, 2)); }
static int m_argmax(lua_State *L) { return maxmin(L, 0, 0, 1); }
/* t:argsort([dim = last [, descending [, k]]]) -> 1-based positions (the first k) */
static int m_argsort(lua_State *L) {
  nv_tensor *t = T(1);
  int d = lua_isnoneornil(L, 2) || t->ndim == 0 ? t->ndim - 1 : nv_lua_checkdim(L, 2, t->ndim, "argsort");
  int desc = lua_toboolean(L, 3);
  lua_Integer k = lua_isnoneornil(L, 4) ? (t->ndim ? t->size[d < 0 ? 0 : d] : 0) : luaL_checkinteger(L, 4);
  return PUSH(nv_argsort(t, d, desc, (int64_t)k), "argsort");
}
static int m_argmin(lua_State *L) { return maxmin(L, 1, 0, 1); }

/* core.scatter_picks(n, positions) -> rounds (R, n), last (n): see nv_scatter_picks */
static int l_scatter_picks(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  nv_tensor *last = NULL;
  nv_tensor *r = nv_scatter_picks((int64_t)n, T(2), &last);
  if (!r) return luaL_error(L, "%s", nv_last_error());
  nv_lua_pushtensor(L, r, "scatter_picks");
  nv_lua_pushtensor(L, last, "scatter_picks");
  return 2;
}

/* var/std([dim [, {unbiased = true, keepdim = false}]]) */
static int var_std(lua_State *L, int sd) {
  nv_tensor *t = T(1);
  const char *fname = sd ? "std" : "var";
  int d = optdim(L, 2, t, fname);
  int unbiased = nv_lua_optflag(L, 3, "unbiased", 1), keep = nv_lua_optflag(L, 3, "keepdim", 0);
  if (lua_isboolean(L, 3)) keep = lua_toboolean(L, 3);
  nv_tensor *v = nv_var(t, d, keep, unbiased);
  if (v && sd) {
    nv_tensor *s = nv_unary(NV_OP_SQRT, v, 0, 0);
    nv_release(v);
    v = s;
  }
  return PUSH(v, fname);
}
static int m_var(lua_State *L) { return var_std(L, 0); }
static int m_std(lua_State *L) { return var_std(L, 1); }

static int m_logsumexp(lua_State *L) {
  nv_tensor *t = T(1);
  return PUSH(nv_logsumexp(t, optdim(L, 2, t, "logsumexp"), lua_toboolean(L, 3)), "logsumexp");
}

/* t:histc([bins = 100 [, min, max]]) as torch.histc */
static int m_histc(lua_State *L) {
  nv_tensor *t = T(1);
  return PUSH(nv_histc(t, luaL_optinteger(L, 2, 100), luaL_optnumber(L, 3, 0), luaL_optnumber(L, 4, 0)), "histc");
}

static int m_matmul(lua_State *L) { return PUSH(nv_matmul(T(1), T(2)), "matmul"); }

static int m_gather(lua_State *L) {
  nv_tensor *t = T(1);
  return PUSH(nv_gather(t, nv_lua_checkdim(L, 2, t->ndim, "gather"), T(3)), "gather");
}
static int m_index_select(lua_State *L) {
  nv_tensor *t = T(1);
  int d = t->ndim ? nv_lua_checkdim(L, 2, t->ndim, "index_select") : 0;
  lua_settop(L, 3);
  nv_tensor *ix = nv_lua_totensor(L, 3);
  if (!ix && lua_istable(L, 3)) {   /* a Lua list of indices, held by Lua while in use */
    int64_t n = (int64_t)luaL_len(L, 3);
    ix = nv_empty(1, &n);
    nv_lua_pushtensor(L, ix, "index_select");
    for (int64_t i = 0; i < n; i++) {
      lua_geti(L, 3, i + 1);
      nv_data(ix)[i] = (float)nv_lua_checknum(L, -1, "index_select", "index");
      lua_pop(L, 1);
    }
  } else if (!ix) ix = T(3);
  return PUSH(nv_index_select(t, d, ix), "index_select");
}

/* list of tensors at idx -> array of borrowed pointers (kept alive by the Lua table) */
int nv_lua_tensor_list(lua_State *L, int idx, nv_tensor ***out, const char *fname) {
  luaL_checktype(L, idx, LUA_TTABLE);
  int n = (int)luaL_len(L, idx);
  nv_tensor **v = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *v, 0);  /* freed by GC */
  for (int i = 0; i < n; i++) {
    lua_geti(L, idx, i + 1);
    v[i] = nv_lua_totensor(L, -1);
    if (!v[i]) luaL_error(L, "%s: element %d of the list is a %s, not a tensor", fname, i + 1, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  *out = v;
  return n;
}

static int l_cat(lua_State *L) {
  nv_tensor **v;
  lua_settop(L, 2);
  int n = nv_lua_tensor_list(L, 1, &v, "cat");
  if (n == 0) return luaL_error(L, "cat: expected a non-empty list of tensors");
  int d = lua_isnil(L, 2) || v[0]->ndim == 0 ? 0 : nv_lua_checkdim(L, 2, v[0]->ndim, "cat");
  return PUSH(nv_cat(n, v, d), "cat");
}

static int l_stack(lua_State *L) {
  nv_tensor **v;
  lua_settop(L, 2);
  int n = nv_lua_tensor_list(L, 1, &v, "stack");
  if (n == 0) return luaL_error(L, "stack: expected a non-empty list of tensors");
  int d = lua_isnil(L, 2) ? 0 : nv_lua_checkdim(L, 2, v[0]->ndim + 1, "stack");
  return PUSH(nv_stack(n, v, d), "stack");
}


const luaL_Reg nv_lua_ops_methods[] = {
  {"view", m_view},
  {"reshape", m_reshape},
  {"transpose", m_transpose},
  {"t", m_t},
  {"permute", m_permute},
  {"narrow", m_narrow},
  {"select", m_select},
  {"unsqueeze", m_unsqueeze},
  {"squeeze", m_squeeze},
  {"expand", m_expand},
  {"contiguous", m_contiguous},
  {"clone", m_clone},
  {"detach", m_detach},
  {"add", m_add},
  {"sub", m_sub},
  {"mul", m_mul},
  {"div", m_div},
  {"pow", m_pow},
  {"maximum", m_maximum},
  {"minimum", m_minimum},
  {"eq", m_eq},
  {"ne", m_ne},
  {"lt", m_lt},
  {"le", m_le},
  {"gt", m_gt},
  {"ge", m_ge},
  {"clamp", m_clamp},
  {"sum", m_sum},
  {"mean", m_mean},
  {"max", m_max},
  {"min", m_min},
  {"argmax", m_argmax},
  {"argsort", m_argsort},
  {"argmin", m_argmin},
  {"var", m_var},
  {"std", m_std},
  {"logsumexp", m_logsumexp},
  {"matmul", m_matmul},
  {"histc", m_histc},
  {"gather", m_gather},
  {"index_select", m_index_select},
  {NULL, NULL}
};

const luaL_Reg nv_lua_ops_functions[] = {
  {"where", l_where},
  {"cat", l_cat},
  {"stack", l_stack},
  {"matmul", m_matmul},
  {"scatter_picks", l_scatter_picks},
  {NULL, NULL}
};

/* operators of the tensor metatable */
const luaL_Reg nv_lua_ops_meta[] = {
  {"__add", m_add}, {"__sub", m_sub}, {"__mul", m_mul}, {"__div", m_div}, {"__pow", m_pow},
  {"__unm", m_neg}, {NULL, NULL}
};

/*
 * lua_tensor.c — the nnvis.Tensor userdata: the binding's shared helpers (lua_nv.h),
 * inspection, element access, in-place changes, Torch7-style indexing, the fields
 * (requires_grad, grad, is_leaf, grad_fn), memory statistics, and the metatable, which
 * gathers the methods of lua_create.c, lua_tensor_ops.c and lua_autograd.c.
 * Dimensions and indices arrive 1-based (negative counts from the end) and are
 * converted to 0-based exactly once, here.
 */
#include "lua/lua_nv.h"
#include "ops/ops.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- userdata ----------------------------------------------------------------------------- */
nv_tensor *nv_lua_totensor(lua_State *L, int idx) {
  nv_tensor **box = luaL_testudata(L, idx, NV_TENSOR_MT);
  return box ? *box : NULL;
}

nv_tensor *nv_lua_checktensor(lua_State *L, int idx) {
  nv_tensor **box = luaL_testudata(L, idx, NV_TENSOR_MT);
  if (!box) {
    luaL_typeerror(L, idx, "nnvis.Tensor");
    return NULL;
  }
  if (!*box) luaL_argerror(L, idx, "tensor was already freed");
  return *box;
}

nv_tensor *nv_lua_checktensor_or_number(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    nv_tensor *t = nv_full(0, NULL, (float)lua_tonumber(L, idx));
    nv_lua_pushtensor(L, t, "tensor");   /* owned by Lua: a later error cannot leak it */
    return t;
  }
  return nv_lua_checktensor(L, idx);
}

int nv_lua_raise(lua_State *L, const char *fname) {
  const char *m = nv_last_error();
  size_t n = strlen(fname);
  /* C messages usually start with the op's name already */
  if (strncmp(m, fname, n) == 0 && m[n] == ':') return luaL_error(L, "%s", m);
  return luaL_error(L, "%s: %s", fname, m);
}

int nv_lua_fail(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushnil(L);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return 2;
}

/* Lua's collector sees only the small userdata, not the storage behind it: tell it about
 * big allocations (an incremental step sized by the bytes) so dead tensors return their
 * buffers to the storage cache promptly, and collect fully when C memory has grown a lot. */
static void gc_pressure(lua_State *L, const nv_tensor *t) {
  static int64_t next = 256ll << 20;
  int64_t bytes = t->st->n * (int64_t)sizeof(float);
  if (bytes >= (64 << 10)) lua_gc(L, LUA_GCSTEP, (int)(bytes >> 10 < INT32_MAX ? bytes >> 10 : INT32_MAX));
  nv_stats s = nv_get_stats();
  if (s.bytes > next) {
    lua_gc(L, LUA_GCCOLLECT);
    s = nv_get_stats();
    next = s.bytes * 2 > (256ll << 20) ? s.bytes * 2 : (256ll << 20);
  }
}

void nv_lua_pushtensor(lua_State *L, nv_tensor *t, const char *fname) {
  if (!t) { nv_lua_raise(L, fname); return; }
  nv_tensor **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = t;
  luaL_setmetatable(L, NV_TENSOR_MT);
  gc_pressure(L, t);
}

static int t_gc(lua_State *L) {
  nv_tensor **box = luaL_checkudata(L, 1, NV_TENSOR_MT);
  nv_release(*box);   /* idempotent: the box is cleared */
  *box = NULL;
  return 0;
}

#define T(i) nv_lua_checktensor(L, (i))
#define PUSH(expr, name) (nv_lua_pushtensor(L, (expr), (name)), 1)

lua_Integer nv_lua_checkint(lua_State *L, int idx, lua_Integer lo, lua_Integer hi, const char *fname,
                            const char *what) {
  lua_Integer v;
  if (lua_isinteger(L, idx)) v = lua_tointeger(L, idx);
  else if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Number f = lua_tonumber(L, idx);
    /* the range test first: a cast of NaN, inf or 1e300 to an integer is undefined */
    if (!(f >= -9007199254740992.0 && f <= 9007199254740992.0) || f != floor(f))
      return luaL_error(L, "%s: %s must be an integer, got %s", fname, what, lua_tostring(L, idx));
    v = (lua_Integer)f;
  } else {
    return luaL_error(L, "%s: %s must be an integer, got %s", fname, what, luaL_typename(L, idx));
  }
  if (v < lo || v > hi)
    return luaL_error(L, "%s: %s must be between %I and %I, got %I", fname, what, lo,
                      hi, v);
  return v;
}

lua_Number nv_lua_checknum(lua_State *L, int idx, const char *fname, const char *what) {
  if (lua_type(L, idx) != LUA_TNUMBER)
    return luaL_error(L, "%s: %s must be a number, got %s", fname, what, luaL_typename(L, idx));
  return lua_tonumber(L, idx);
}

/* 1-based (or negative) Lua dim -> 0-based */
int nv_lua_checkdim(lua_State *L, int idx, int ndim, const char *fname) {
  lua_Integer d = nv_lua_checkint(L, lua_absindex(L, idx), INT32_MIN, INT32_MAX, fname, "dim");
  int n = ndim > 0 ? ndim : 1;
  lua_Integer r = d < 0 ? d + n : d - 1;
  if (d == 0 || r < 0 || r >= n)
    luaL_error(L, "%s: dim %d is out of range for a tensor of %d dimension%s", fname, (int)d, ndim,
               ndim == 1 ? "" : "s");
  return (int)r;
}

/* sizes given as numbers from idx on, or one table: zeros(2,3) == zeros{2,3} */
int nv_lua_read_sizes(lua_State *L, int idx, int64_t *size, const char *fname) {
  int nd = 0;
  if (lua_istable(L, idx)) {
    nd = (int)luaL_len(L, idx);
    if (nd > NV_MAXDIM) luaL_error(L, "%s: at most %d dimensions, got %d", fname, NV_MAXDIM, nd);
    for (int i = 0; i < nd; i++) {
      lua_geti(L, idx, i + 1);
      if (!lua_isinteger(L, -1) && !(lua_isnumber(L, -1) && lua_tonumber(L, -1) == floor(lua_tonumber(L, -1))))
        luaL_error(L, "%s: size %d must be an integer, got %s", fname, i + 1, luaL_typename(L, -1));
      if (fabs(lua_tonumber(L, -1)) > 9.0e15) luaL_error(L, "%s: size %d is too large", fname, i + 1);
      size[i] = (int64_t)lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  } else {
    int top = lua_gettop(L);
    for (int i = idx; i <= top && lua_type(L, i) == LUA_TNUMBER; i++) {
      if (nd == NV_MAXDIM) luaL_error(L, "%s: at most %d dimensions", fname, NV_MAXDIM);
      lua_Number v = lua_tonumber(L, i);
      if (v != floor(v) || fabs(v) > 9.0e15) luaL_error(L, "%s: size %d must be an integer, got %f", fname, nd + 1, v);
      size[nd++] = (int64_t)v;
    }
  }
  return nd;
}

int nv_lua_read_sizes_nonneg(lua_State *L, int idx, int64_t *size, const char *fname) {
  int nd = nv_lua_read_sizes(L, idx, size, fname);
  for (int i = 0; i < nd; i++)
    if (size[i] < 0) luaL_error(L, "%s: size %d is negative (%d)", fname, i + 1, (int)size[i]);
  return nd;
}

int nv_lua_optflag(lua_State *L, int idx, const char *field, int def) {
  if (!lua_istable(L, idx)) return def;
  lua_getfield(L, idx, field);
  int r = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

/* ---- inspection ------------------------------------------------------------------------------ */
static int m_shape(lua_State *L) {
  nv_tensor *t = T(1);
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) { lua_pushinteger(L, t->size[i]); lua_rawseti(L, -2, i + 1); }
  return 1;
}

static int m_stride(lua_State *L) {
  nv_tensor *t = T(1);
  if (!lua_isnoneornil(L, 2)) { lua_pushinteger(L, t->stride[nv_lua_checkdim(L, 2, t->ndim, "stride")]); return 1; }
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) { lua_pushinteger(L, t->stride[i]); lua_rawseti(L, -2, i + 1); }
  return 1;
}

static int m_size(lua_State *L) {
  nv_tensor *t = T(1);
  if (lua_isnoneornil(L, 2)) return m_shape(L);
  if (t->ndim == 0) return luaL_error(L, "size: a scalar has no dimensions");
  lua_pushinteger(L, t->size[nv_lua_checkdim(L, 2, t->ndim, "size")]);
  return 1;
}

static int m_dim(lua_State *L) { lua_pushinteger(L, T(1)->ndim); return 1; }
static int m_numel(lua_State *L) { lua_pushinteger(L, nv_numel(T(1))); return 1; }
static int m_is_contiguous(lua_State *L) { lua_pushboolean(L, nv_is_contiguous(T(1))); return 1; }

static void push_nested(lua_State *L, const nv_tensor *t, int d, const float *p) {
  if (d == t->ndim) { lua_pushnumber(L, *p); return; }
  lua_createtable(L, (int)t->size[d], 0);
  for (int64_t i = 0; i < t->size[d]; i++) {
    push_nested(L, t, d + 1, p + i * t->stride[d]);
    lua_rawseti(L, -2, i + 1);
  }
}

static int m_totable(lua_State *L) {
  nv_tensor *t = T(1);
  luaL_checkstack(L, t->ndim + 4, "totable");
  push_nested(L, t, 0, nv_data(t));
  return 1;
}

static int m_item(lua_State *L) {
  nv_tensor *t = T(1);
  if (nv_numel(t) != 1) {
    char a[200];
    return luaL_error(L, "item: only a tensor with one element has an item, this one is %s",
                      nv_shape_str(a, sizeof a, t->ndim, t->size));
  }
  lua_pushnumber(L, nv_data(t)[0]);
  return 1;
}

/* flat contiguous values as a Lua array (fast path for plotting and printing) */
static int m_values(lua_State *L) {
  nv_tensor *c = nv_contiguous_data(T(1));
  if (!c) return nv_lua_raise(L, "values");
  int64_t n = nv_numel(c);
  lua_createtable(L, (int)n, 0);
  for (int64_t i = 0; i < n; i++) { lua_pushnumber(L, nv_data(c)[i]); lua_rawseti(L, -2, i + 1); }
  nv_release(c);
  return 1;
}

/* element access by 1-based indices: t:get(i, j, ...) / t:set(v, i, j, ...) */
static int64_t elem_offset(lua_State *L, nv_tensor *t, int first, const char *fname) {
  int n = lua_gettop(L) - first + 1;
  if (n != t->ndim) luaL_error(L, "%s: expected %d indices, got %d", fname, t->ndim, n);
  int64_t off = t->off;
  for (int i = 0; i < t->ndim; i++) {
    lua_Integer k = luaL_checkinteger(L, first + i);
    if (k < 1 || k > t->size[i]) luaL_error(L, "%s: index %d is out of range 1..%d for dimension %d", fname, (int)k, (int)t->size[i], i + 1);
    off += (k - 1) * t->stride[i];
  }
  return off;
}
static int m_get(lua_State *L) {
  nv_tensor *t = T(1);
  lua_pushnumber(L, t->st->data[elem_offset(L, t, 2, "get")]);
  return 1;
}

static void check_inplace(lua_State *L, nv_tensor *t, const char *fname) {
  if (nv_grad_enabled() && t->requires_grad)
    luaL_error(L, "%s: in-place change of a tensor that requires grad (use nv.no_grad or detach)", fname);
  for (int i = 0; i < t->ndim; i++)
    if (t->size[i] > 1 && t->stride[i] == 0)
      luaL_error(L, "%s: in-place change of an expanded view (several elements share memory; use contiguous)", fname);
  t->st->version++;   /* graphs that saved this storage will notice (autograd.c) */
}

static int m_set(lua_State *L) {
  nv_tensor *t = T(1);
  float v = (float)luaL_checknumber(L, 2);
  check_inplace(L, t, "set");
  t->st->data[elem_offset(L, t, 3, "set")] = v;
  lua_settop(L, 1);
  return 1;
}

/* ---- in place ---------------------------------------------------------------------------------- */
static int m_fill(lua_State *L) {
  nv_tensor *t = T(1);
  float v = (float)luaL_checknumber(L, 2);
  check_inplace(L, t, "fill");
  nv_fill_raw(t, v);
  lua_settop(L, 1);
  return 1;
}

static int m_copy(lua_State *L) {
  nv_tensor *t = T(1);
  check_inplace(L, t, "copy");
  lua_settop(L, 2);
  nv_tensor *s = nv_lua_checktensor_or_number(L, 2);
  int ok = nv_copy_into(t, s);
  if (!ok) return nv_lua_raise(L, "copy");
  lua_settop(L, 1);
  return 1;
}

/* t:add_(u [, alpha]): t += alpha*u, in place (optimizers) */
static int m_add_(lua_State *L) {
  nv_tensor *t = T(1);
  double alpha = luaL_optnumber(L, 3, 1.0);
  check_inplace(L, t, "add_");
  lua_settop(L, 3);
  nv_tensor *u = nv_lua_checktensor_or_number(L, 2);
  int ok = 1;
  if (alpha == 1.0) ok = nv_add_into(t, u);
  else {
    nv_tensor *s = nv_empty_like(u);
    if (s) { nv_copy_into(s, u); nv_scale_(s, (float)alpha); ok = nv_add_into(t, s); nv_release(s); }
    else ok = 0;
  }
  if (!ok) return nv_lua_raise(L, "add_");
  lua_settop(L, 1);
  return 1;
}

static int m_mul_(lua_State *L) {
  nv_tensor *t = T(1);
  check_inplace(L, t, "mul_");
  nv_scale_(t, (float)luaL_checknumber(L, 2));
  lua_settop(L, 1);
  return 1;
}

/* ---- indexing as Torch7: t[i] along dim 1, #t ------------------------------------------------ */
/* the 0-based position of Lua index k (1-based, negative from the end) along dim 1 of t */
static int64_t dim1_index(lua_State *L, nv_tensor *t, int kidx) {
  if (t->ndim == 0) luaL_error(L, "index: a 0-dimensional tensor has no elements to index (use t:item())");
  int64_t n = t->size[0];
  lua_Integer k = nv_lua_checkint(L, kidx, INT64_MIN + 1, INT64_MAX, "index", "index");
  if (k == 0 || k > n || k < -n) {
    char a[200];
    luaL_error(L, "index: index %I is out of range for dim 1 of size %I (tensor %s; 1-based, negative from the end)",
               k, (lua_Integer)n, nv_shape_str(a, sizeof a, t->ndim, t->size));
  }
  return k < 0 ? n + k : k - 1;
}

/* t[i]: a view of slice i along dim 1 (t:select(1, i)), or a number for a 1-d tensor */
static int index_int(lua_State *L, nv_tensor *t) {
  int64_t i = dim1_index(L, t, 2);
  if (t->ndim == 1) {
    lua_pushnumber(L, t->st->data[t->off + i * t->stride[0]]);
    return 1;
  }
  return PUSH(nv_select(t, 0, i), "index");
}

/* t[i] = v: a number fills slice i, a tensor is broadcast into it */
static int newindex_int(lua_State *L, nv_tensor *t) {
  int64_t i = dim1_index(L, t, 2);
  check_inplace(L, t, "index assignment");
  if (t->ndim == 1) {
    if (lua_type(L, 3) == LUA_TNUMBER) {
      t->st->data[t->off + i * t->stride[0]] = (float)lua_tonumber(L, 3);
      return 0;
    }
  }
  nv_tensor *slice = nv_select(t, 0, i);
  if (!slice) return nv_lua_raise(L, "index assignment");
  nv_lua_pushtensor(L, slice, "index assignment");   /* owned by Lua from here */
  int ok;
  if (lua_type(L, 3) == LUA_TNUMBER) {
    nv_fill_raw(slice, (float)lua_tonumber(L, 3));
    ok = 1;
  } else {
    nv_tensor *v = nv_lua_totensor(L, 3);
    if (!v) return luaL_error(L, "index assignment: value must be a number or a tensor, got %s", luaL_typename(L, 3));
    ok = nv_copy_into(slice, v);
  }
  if (!ok) return nv_lua_raise(L, "index assignment");
  return 0;
}

/* ---- fields: t.requires_grad, t.grad, t.is_leaf, t.grad_fn -------------------------------------- */
static int t_index(lua_State *L) {
  nv_tensor *t = T(1);
  if (lua_type(L, 2) == LUA_TNUMBER) return index_int(L, t);
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));   /* methods */
  if (!lua_isnil(L, -1)) return 1;
  const char *k = lua_tostring(L, 2);
  if (!k) return 0;
  if (!strcmp(k, "requires_grad")) { lua_pushboolean(L, t->requires_grad); return 1; }
  if (!strcmp(k, "grad")) {
    if (t->grad) nv_lua_pushtensor(L, nv_retain(t->grad), "grad"); else lua_pushnil(L);
    return 1;
  }
  if (!strcmp(k, "is_leaf")) { lua_pushboolean(L, t->fn == NULL); return 1; }
  if (!strcmp(k, "grad_fn")) { if (t->fn) lua_pushstring(L, t->fn->name); else lua_pushnil(L); return 1; }
  return 0;
}

static int m_set_requires_grad(lua_State *L) {
  nv_tensor *t = T(1);
  int on = lua_isnone(L, 2) ? 1 : lua_toboolean(L, 2);
  if (!on && t->fn) return luaL_error(L, "set_requires_grad: only leaves can stop requiring grad (use detach)");
  t->requires_grad = on;
  lua_settop(L, 1);
  return 1;
}

static int t_newindex(lua_State *L) {
  nv_tensor *t = T(1);
  if (lua_type(L, 2) == LUA_TNUMBER) return newindex_int(L, t);
  if (lua_type(L, 2) != LUA_TSTRING)
    return luaL_error(L, "nnvis.Tensor: cannot assign to a %s key (t[i] = v takes an integer)", luaL_typename(L, 2));
  const char *k = lua_tostring(L, 2);
  if (!strcmp(k, "requires_grad")) {
    lua_settop(L, 3);
    lua_remove(L, 2);
    return m_set_requires_grad(L);
  }
  if (!strcmp(k, "grad")) {
    nv_tensor *g = lua_isnil(L, 3) ? NULL : nv_lua_totensor(L, 3);
    if (!g && !lua_isnil(L, 3)) return luaL_error(L, "grad: must be a tensor or nil, got %s", luaL_typename(L, 3));
    if (g && !nv_same_shape(g, t)) return luaL_error(L, "grad: shape does not match the tensor's");
    nv_tensor *c = g ? nv_contiguous_data(g) : NULL;
    if (c == g && g) { nv_release(c); c = nv_empty_like(g); if (c) nv_copy_into(c, g); }
    nv_release(t->grad);
    t->grad = c;
    return 0;
  }
  return luaL_error(L, "nnvis.Tensor has no settable field '%s'", k);
}

/* #t: the size of dim 1 (0 for a 0-dimensional tensor), as Torch7's #t */
static int t_len(lua_State *L) {
  nv_tensor *t = T(1);
  lua_pushinteger(L, t->ndim ? t->size[0] : 0);
  return 1;
}

/* t1 == t2 compares identity (a Lua rule: __eq must return a boolean); use t:eq(u) for masks */
static int t_eq(lua_State *L) {
  lua_pushboolean(L, nv_lua_totensor(L, 1) == nv_lua_totensor(L, 2));
  return 1;
}

/* cache_limit([bytes]): sets the storage cache's size (0 empties it); returns the bytes it
 * holds and its limit */
static int l_cache_limit(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer b = luaL_checkinteger(L, 1);
    luaL_argcheck(L, b >= 0, 1, "cache_limit: bytes must be >= 0");
    nv_cache_config((size_t)b);
  }
  lua_pushinteger(L, (lua_Integer)nv_cache_bytes());
  lua_pushinteger(L, (lua_Integer)nv_cache_limit());
  return 2;
}

static int l_stats(lua_State *L) {
  nv_stats s = nv_get_stats();
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)nv_cache_bytes()); lua_setfield(L, -2, "cached_bytes");
  lua_pushinteger(L, s.storages); lua_setfield(L, -2, "storages");
  lua_pushinteger(L, s.tensors); lua_setfield(L, -2, "tensors");
  lua_pushinteger(L, s.nodes); lua_setfield(L, -2, "nodes");
  lua_pushinteger(L, s.bytes); lua_setfield(L, -2, "bytes");
  return 1;
}

/* core.backward_counts([reset]): {op = {calls = n, inputs = {n1, n2, ...}}} of the backward
 * passes since the last reset: how often each op's backward ran and how often it was asked
 * for each input's gradient (which kernels a pruned backward ran). */

static const luaL_Reg methods[] = {
  {"set_requires_grad", m_set_requires_grad},
  {"shape", m_shape},
  {"size", m_size},
  {"dim", m_dim},
  {"numel", m_numel},
  {"stride", m_stride},
  {"is_contiguous", m_is_contiguous},
  {"totable", m_totable},
  {"item", m_item},
  {"values", m_values},
  {"get", m_get},
  {"set", m_set},
  {"fill", m_fill},
  {"copy", m_copy},
  {"add_", m_add_},
  {"mul_", m_mul_},
  {NULL, NULL}
};

static const luaL_Reg functions[] = {
  {"stats", l_stats},
  {"cache_limit", l_cache_limit},
  {NULL, NULL}
};

/* Adds the tensor functions (of every lua_tensor*.c file) to the table on top; creates the
 * metatable with the methods table as core.Tensor so Lua modules can add methods written in
 * Lua. */
void nv_lua_open_tensor(lua_State *L) {
  luaL_setfuncs(L, functions, 0);
  luaL_setfuncs(L, nv_lua_create_functions, 0);
  luaL_setfuncs(L, nv_lua_ops_functions, 0);
  luaL_setfuncs(L, nv_lua_autograd_functions, 0);
  luaL_newmetatable(L, NV_TENSOR_MT);
  lua_newtable(L);                       /* methods */
  luaL_setfuncs(L, methods, 0);
  luaL_setfuncs(L, nv_lua_ops_methods, 0);
  luaL_setfuncs(L, nv_lua_autograd_methods, 0);
  nv_lua_open_unary(L, lua_absindex(L, -3), lua_absindex(L, -1));   /* from ops/ops.def */
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "Tensor");         /* core.Tensor = methods */
  lua_pushcclosure(L, t_index, 1);
  lua_setfield(L, -2, "__index");
  static const luaL_Reg meta[] = {
    {"__newindex", t_newindex}, {"__gc", t_gc}, {"__close", t_gc}, {"__len", t_len},
    {"__eq", t_eq}, {NULL, NULL}
  };
  luaL_setfuncs(L, meta, 0);
  luaL_setfuncs(L, nv_lua_ops_meta, 0);
  lua_pushliteral(L, "nnvis.Tensor");
  lua_setfield(L, -2, "__name");
  lua_setfield(L, -2, "tensor_mt");      /* core.tensor_mt */
}

/*
 * lua_tensor.c — the Lua face of tensors and autograd: the nnvis.Tensor userdata, its
 * methods and operators, creation functions, and backward / grad / no_grad.
 * Dimensions and indices arrive 1-based (negative counts from the end) and are
 * converted to 0-based exactly once, here.
 */
#include "lua_nv.h"
#include "ops.h"

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
static int checkdim(lua_State *L, int idx, int ndim, const char *fname) {
  lua_Integer d = nv_lua_checkint(L, lua_absindex(L, idx), INT32_MIN, INT32_MAX, fname, "dim");
  int n = ndim > 0 ? ndim : 1;
  lua_Integer r = d < 0 ? d + n : d - 1;
  if (d == 0 || r < 0 || r >= n)
    luaL_error(L, "%s: dim %d is out of range for a tensor of %d dimension%s", fname, (int)d, ndim,
               ndim == 1 ? "" : "s");
  return (int)r;
}

/* sizes given as numbers from idx on, or one table: zeros(2,3) == zeros{2,3} */
static int read_sizes(lua_State *L, int idx, int64_t *size, const char *fname) {
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

static int read_sizes_nonneg(lua_State *L, int idx, int64_t *size, const char *fname) {
  int nd = read_sizes(L, idx, size, fname);
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

/* ---- creation -------------------------------------------------------------------------------- */
/* nested Lua tables -> shape, then values */
static void nested_shape(lua_State *L, int idx, int depth, int *nd, int64_t *size) {
  if (lua_type(L, idx) == LUA_TNUMBER) { *nd = depth; return; }
  if (!lua_istable(L, idx)) luaL_error(L, "tensor: expected numbers or nested tables, found a %s", luaL_typename(L, idx));
  if (depth >= NV_MAXDIM) luaL_error(L, "tensor: more than %d levels of nesting", NV_MAXDIM);
  size[depth] = (int64_t)luaL_len(L, idx);
  if (size[depth] == 0) { *nd = depth + 1; return; }
  lua_geti(L, idx, 1);
  nested_shape(L, lua_gettop(L), depth + 1, nd, size);
  lua_pop(L, 1);
}

static void nested_fill(lua_State *L, int idx, int depth, int nd, const int64_t *size, float **p) {
  if (depth == nd) {
    if (lua_type(L, idx) != LUA_TNUMBER) luaL_error(L, "tensor: ragged nested table (a %s where a number belongs)", luaL_typename(L, idx));
    *(*p)++ = (float)lua_tonumber(L, idx);
    return;
  }
  if (!lua_istable(L, idx) || luaL_len(L, idx) != size[depth])
    luaL_error(L, "tensor: ragged nested table: level %d should have %d entries", depth + 1, (int)size[depth]);
  for (int64_t i = 1; i <= size[depth]; i++) {
    lua_geti(L, idx, i);
    nested_fill(L, lua_gettop(L), depth + 1, nd, size, p);
    lua_pop(L, 1);
  }
}

static int l_tensor(lua_State *L) {
  static const char *const known[] = {"requires_grad", NULL};
  nv_lua_checkopts(L, 2, "tensor", known);
  nv_tensor *src = nv_lua_totensor(L, 1);
  nv_tensor *t;
  if (src) {
    t = nv_empty_like(src);
    if (t) nv_copy_into(t, src);
  } else {
    int nd = 0;
    int64_t size[NV_MAXDIM];
    nested_shape(L, 1, 0, &nd, size);
    t = nv_empty(nd, size);
    if (!t) return nv_lua_raise(L, "tensor");
    nv_lua_pushtensor(L, t, "tensor");   /* owned by Lua now: a raise below cannot leak it */
    float *p = nv_data(t);
    nested_fill(L, 1, 0, nd, size, &p);
    if (nv_lua_optflag(L, 2, "requires_grad", 0)) t->requires_grad = 1;
    return 1;
  }
  if (t && nv_lua_optflag(L, 2, "requires_grad", 0)) t->requires_grad = 1;
  return PUSH(t, "tensor");
}

static int l_zeros(lua_State *L) {
  int64_t s[NV_MAXDIM];
  int nd = read_sizes_nonneg(L, 1, s, "zeros");
  return PUSH(nv_zeros(nd, s), "zeros");
}

static int l_ones(lua_State *L) {
  int64_t s[NV_MAXDIM];
  int nd = read_sizes_nonneg(L, 1, s, "ones");
  return PUSH(nv_full(nd, s, 1.0f), "ones");
}

static int l_full(lua_State *L) {
  int64_t s[NV_MAXDIM];
  luaL_checktype(L, 1, LUA_TTABLE);
  int nd = read_sizes_nonneg(L, 1, s, "full");
  return PUSH(nv_full(nd, s, (float)luaL_checknumber(L, 2)), "full");
}

static int l_rand(lua_State *L, int normal, const char *fname) {
  int64_t s[NV_MAXDIM];
  int nd = read_sizes_nonneg(L, 1, s, fname);
  nv_tensor *t = nv_empty(nd, s);
  if (!t) return nv_lua_raise(L, fname);
  float *p = nv_data(t);
  int64_t n = nv_numel(t);
  for (int64_t i = 0; i < n; i++) p[i] = (float)(normal ? nv_rand_normal() : nv_rand_uniform());
  return PUSH(t, fname);
}
static int l_randu(lua_State *L) { return l_rand(L, 0, "rand"); }
static int l_randn(lua_State *L) { return l_rand(L, 1, "randn"); }

/* random permutation of 1..n (for shuffling) */
static int l_randperm(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0, 1, "randperm: n must be non-negative");
  int64_t s = n;
  nv_tensor *t = nv_empty(1, &s);
  if (!t) return nv_lua_raise(L, "randperm");
  float *p = nv_data(t);
  for (int64_t i = 0; i < n; i++) p[i] = (float)(i + 1);
  for (int64_t i = n - 1; i > 0; i--) {   /* Fisher-Yates */
    int64_t j = (int64_t)(nv_rand_u64() % (uint64_t)(i + 1));
    float x = p[i]; p[i] = p[j]; p[j] = x;
  }
  return PUSH(t, "randperm");
}

static int l_arange(lua_State *L) {
  double a = 0, b, step = 1;
  if (lua_gettop(L) >= 2 && lua_type(L, 2) == LUA_TNUMBER) {
    a = luaL_checknumber(L, 1);
    b = luaL_checknumber(L, 2);
    step = luaL_optnumber(L, 3, 1);
  } else b = luaL_checknumber(L, 1);
  if (step == 0 || !isfinite(a) || !isfinite(b) || !isfinite(step))
    return luaL_error(L, "arange: step must be non-zero and bounds finite");
  double cnt = ceil((b - a) / step);
  if (cnt < 0) cnt = 0;
  if (cnt > 1e10) return luaL_error(L, "arange: too many elements (%f)", cnt);
  int64_t n = (int64_t)cnt;
  nv_tensor *t = nv_empty(1, &n);
  if (!t) return nv_lua_raise(L, "arange");
  for (int64_t i = 0; i < n; i++) nv_data(t)[i] = (float)(a + (double)i * step);
  return PUSH(t, "arange");
}

static int l_eye(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1), m = luaL_optinteger(L, 2, n);
  if (n < 0 || m < 0) return luaL_error(L, "eye: sizes must be non-negative");
  int64_t s[2] = {n, m};
  nv_tensor *t = nv_zeros(2, s);
  if (!t) return nv_lua_raise(L, "eye");
  for (int64_t i = 0; i < n && i < m; i++) nv_data(t)[i * m + i] = 1.0f;
  return PUSH(t, "eye");
}

static int l_manual_seed(lua_State *L) {
  nv_manual_seed((uint64_t)luaL_checkinteger(L, 1));
  return 0;
}

/* rng_state() -> a table of the generator's state; set_rng_state(t) restores it */
static int l_rng_state(lua_State *L) {
  uint64_t st[5];
  nv_rng_get(st);
  lua_createtable(L, 5, 0);
  for (int i = 0; i < 5; i++) { lua_pushinteger(L, (lua_Integer)st[i]); lua_rawseti(L, -2, i + 1); }
  return 1;
}

static int l_set_rng_state(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  uint64_t st[5];
  for (int i = 0; i < 5; i++) {
    lua_geti(L, 1, i + 1);
    if (!lua_isinteger(L, -1)) return luaL_error(L, "set_rng_state: expected a state from rng_state()");
    st[i] = (uint64_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
  }
  if (!(st[0] | st[1] | st[2] | st[3])) return luaL_error(L, "set_rng_state: an all-zero state is invalid");
  nv_rng_set(st);
  return 0;
}

static int l_now(lua_State *L) {
  lua_pushnumber(L, nv_now());
  return 1;
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
  if (!lua_isnoneornil(L, 2)) { lua_pushinteger(L, t->stride[checkdim(L, 2, t->ndim, "stride")]); return 1; }
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) { lua_pushinteger(L, t->stride[i]); lua_rawseti(L, -2, i + 1); }
  return 1;
}

static int m_size(lua_State *L) {
  nv_tensor *t = T(1);
  if (lua_isnoneornil(L, 2)) return m_shape(L);
  if (t->ndim == 0) return luaL_error(L, "size: a scalar has no dimensions");
  lua_pushinteger(L, t->size[checkdim(L, 2, t->ndim, "size")]);
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

/* ---- views ----------------------------------------------------------------------------------- */
static int m_view(lua_State *L) {
  int64_t s[NV_MAXDIM];
  int nd = read_sizes(L, 2, s, "view");
  return PUSH(nv_view(T(1), nd, s), "view");
}

static int m_reshape(lua_State *L) {
  int64_t s[NV_MAXDIM];
  int nd = read_sizes(L, 2, s, "reshape");
  return PUSH(nv_reshape(T(1), nd, s), "reshape");
}

static int m_transpose(lua_State *L) {
  nv_tensor *t = T(1);
  int a = t->ndim ? checkdim(L, 2, t->ndim, "transpose") : 0, b = t->ndim ? checkdim(L, 3, t->ndim, "transpose") : 0;
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
    perm[i] = checkdim(L, -1, t->ndim, "permute");
    lua_pop(L, 1);
  }
  return PUSH(nv_permute(t, perm), "permute");
}

static int m_narrow(lua_State *L) {
  nv_tensor *t = T(1);
  if (t->ndim == 0) return luaL_error(L, "narrow: cannot narrow a scalar");
  int d = checkdim(L, 2, t->ndim, "narrow");
  lua_Integer start = nv_lua_checkint(L, 3, 1, t->size[d] + 1, "narrow", "start");
  lua_Integer len = nv_lua_checkint(L, 4, 0, t->size[d] - start + 1, "narrow", "length");
  return PUSH(nv_narrow(t, d, start - 1, len), "narrow");
}

static int m_select(lua_State *L) {
  nv_tensor *t = T(1);
  if (t->ndim == 0) return luaL_error(L, "select: cannot select from a scalar");
  int d = checkdim(L, 2, t->ndim, "select");
  lua_Integer i = nv_lua_checkint(L, 3, -t->size[d], t->size[d], "select", "index");
  if (i < 0) i += t->size[d] + 1;
  if (i == 0) return luaL_error(L, "select: index 0 is out of range (indices are 1-based) for size %d", (int)t->size[d]);
  return PUSH(nv_select(t, d, i - 1), "select");
}

static int m_unsqueeze(lua_State *L) {
  nv_tensor *t = T(1);
  return PUSH(nv_unsqueeze(t, checkdim(L, 2, t->ndim + 1, "unsqueeze")), "unsqueeze");
}

static int m_squeeze(lua_State *L) {
  nv_tensor *t = T(1);
  int d = lua_isnoneornil(L, 2) || t->ndim == 0 ? -1 : checkdim(L, 2, t->ndim, "squeeze");
  return PUSH(nv_squeeze(t, d), "squeeze");
}

static int m_expand(lua_State *L) {
  int64_t s[NV_MAXDIM];
  int nd = read_sizes(L, 2, s, "expand");
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

#define UNARY(fn, op)                                                       \
  static int fn(lua_State *L) { return PUSH(nv_unary(op, T(1), 0, 0), nv_op_names[op]); }
UNARY(m_neg, NV_OP_NEG)
UNARY(m_exp, NV_OP_EXP)
UNARY(m_log, NV_OP_LOG)
UNARY(m_sqrt, NV_OP_SQRT)
UNARY(m_rsqrt, NV_OP_RSQRT)
UNARY(m_abs, NV_OP_ABS)
UNARY(m_sin, NV_OP_SIN)
UNARY(m_cos, NV_OP_COS)
UNARY(m_tanh, NV_OP_TANH)
UNARY(m_sigmoid, NV_OP_SIGMOID)
UNARY(m_relu, NV_OP_RELU)
UNARY(m_gelu, NV_OP_GELU)
UNARY(m_square, NV_OP_SQUARE)
UNARY(m_reciprocal, NV_OP_RECIPROCAL)
UNARY(m_log1p, NV_OP_LOG1P)
UNARY(m_softplus, NV_OP_SOFTPLUS)
UNARY(m_sign, NV_OP_SIGN)
UNARY(m_floor, NV_OP_FLOOR)
UNARY(m_ceil, NV_OP_CEIL)
UNARY(m_round, NV_OP_ROUND)

static int m_clamp(lua_State *L) {
  double lo = luaL_optnumber(L, 2, -HUGE_VAL), hi = luaL_optnumber(L, 3, HUGE_VAL);
  return PUSH(nv_unary(NV_OP_CLAMP, T(1), lo, hi), "clamp");
}
static int m_leaky_relu(lua_State *L) {
  return PUSH(nv_unary(NV_OP_LEAKY_RELU, T(1), luaL_optnumber(L, 2, 0.01), 0), "leaky_relu");
}
static int m_elu(lua_State *L) { return PUSH(nv_unary(NV_OP_ELU, T(1), luaL_optnumber(L, 2, 1.0), 0), "elu"); }

/* ---- reductions ------------------------------------------------------------------------------ */
/* dim argument: nil = all elements (-1) */
static int optdim(lua_State *L, int idx, nv_tensor *t, const char *fname) {
  if (lua_isnoneornil(L, idx) || t->ndim == 0) return -1;
  return checkdim(L, idx, t->ndim, fname);
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
  int d = lua_isnoneornil(L, 2) || t->ndim == 0 ? t->ndim - 1 : checkdim(L, 2, t->ndim, "argsort");
  int desc = lua_toboolean(L, 3);
  lua_Integer k = lua_isnoneornil(L, 4) ? (t->ndim ? t->size[d < 0 ? 0 : d] : 0) : luaL_checkinteger(L, 4);
  return PUSH(nv_argsort(t, d, desc, (int64_t)k), "argsort");
}
static int m_argmin(lua_State *L) { return maxmin(L, 1, 0, 1); }

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
  return PUSH(nv_gather(t, checkdim(L, 2, t->ndim, "gather"), T(3)), "gather");
}
static int m_index_select(lua_State *L) {
  nv_tensor *t = T(1);
  int d = t->ndim ? checkdim(L, 2, t->ndim, "index_select") : 0;
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
static int tensor_list(lua_State *L, int idx, nv_tensor ***out, const char *fname) {
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
  int n = tensor_list(L, 1, &v, "cat");
  if (n == 0) return luaL_error(L, "cat: expected a non-empty list of tensors");
  int d = lua_isnil(L, 2) || v[0]->ndim == 0 ? 0 : checkdim(L, 2, v[0]->ndim, "cat");
  return PUSH(nv_cat(n, v, d), "cat");
}

static int l_stack(lua_State *L) {
  nv_tensor **v;
  lua_settop(L, 2);
  int n = tensor_list(L, 1, &v, "stack");
  if (n == 0) return luaL_error(L, "stack: expected a non-empty list of tensors");
  int d = lua_isnil(L, 2) ? 0 : checkdim(L, 2, v[0]->ndim + 1, "stack");
  return PUSH(nv_stack(n, v, d), "stack");
}

/* ---- autograd --------------------------------------------------------------------------------- */
static int m_set_requires_grad(lua_State *L) {
  nv_tensor *t = T(1);
  int on = lua_isnone(L, 2) ? 1 : lua_toboolean(L, 2);
  if (!on && t->fn) return luaL_error(L, "set_requires_grad: only leaves can stop requiring grad (use detach)");
  t->requires_grad = on;
  lua_settop(L, 1);
  return 1;
}

/* y:backward([grad] [, {retain_graph = bool}]) */
static int m_backward(lua_State *L) {
  nv_tensor *y = T(1);
  nv_tensor *g = nv_lua_totensor(L, 2);
  int opts = (g || lua_isnil(L, 2)) && !lua_istable(L, 2) ? 3 : 2;
  if (!g && lua_type(L, 2) == LUA_TNUMBER) return luaL_error(L, "backward: grad must be a tensor");
  if (!nv_backward(y, g, nv_lua_optflag(L, opts, "retain_graph", 0), 0, NULL, NULL)) return nv_lua_raise(L, "backward");
  return 0;
}

/* nv.grad(y, {x1, x2, ...} [, {grad = g, retain_graph = b}]) -> {g1, g2, ...} */
static int l_grad(lua_State *L) {
  nv_tensor *y = T(1);
  nv_tensor **wrt;
  int n = tensor_list(L, 2, &wrt, "grad");
  nv_tensor *g = NULL;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "grad");
    g = nv_lua_totensor(L, -1);
    lua_pop(L, 1);
  }
  if (n == 0) { lua_newtable(L); return 1; }
  for (int k = 0; k < n; k++)
    if (!wrt[k]->requires_grad)
      return luaL_error(L, "grad: input %d does not require grad", k + 1);
  nv_tensor **outg = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *outg, 0);
  if (!nv_backward(y, g, nv_lua_optflag(L, 3, "retain_graph", 0), n, wrt, outg)) return nv_lua_raise(L, "grad");
  lua_createtable(L, n, 0);
  for (int k = 0; k < n; k++) { nv_lua_pushtensor(L, outg[k], "grad"); lua_rawseti(L, -2, k + 1); }
  return 1;
}

/* tensor_id(t): a light userdata naming the tensor (views are distinct tensors) */
static int l_tensor_id(lua_State *L) {
  lua_pushlightuserdata(L, T(1));
  return 1;
}

/* graph(t): the recorded graph behind t as a list of records {id, op (nil for leaves),
 * inputs = {ids}, shape, leaf}, inputs before the tensors that use them. */
static int l_graph(lua_State *L) {
  nv_tensor *root = T(1);
  lua_newtable(L);                       /* result */
  int res = lua_gettop(L);
  lua_newtable(L);                       /* seen: id -> true */
  int seen = res + 1;
  lua_newtable(L);                       /* explicit stack of light userdata */
  int stack = res + 2;
  int sp = 0, n = 0;
  lua_pushlightuserdata(L, root);
  lua_rawseti(L, stack, ++sp);
  while (sp > 0) {
    lua_rawgeti(L, stack, sp);
    nv_tensor *t = lua_touserdata(L, -1);
    lua_pop(L, 1);
    lua_pushlightuserdata(L, t);
    if (lua_rawget(L, seen) == LUA_TNUMBER) { lua_pop(L, 1); sp--; continue; }   /* done */
    int state = lua_toboolean(L, -1);
    lua_pop(L, 1);
    nv_node *fn = t->fn && !t->fn->freed ? t->fn : NULL;
    if (!state) {                        /* first visit: push unvisited inputs */
      lua_pushlightuserdata(L, t);
      lua_pushboolean(L, 1);
      lua_rawset(L, seen);
      for (int k = 0; fn && k < fn->nin; k++) {
        if (!fn->in[k]) continue;
        lua_pushlightuserdata(L, fn->in[k]);
        int st = lua_rawget(L, seen);
        lua_pop(L, 1);
        if (st == LUA_TNIL) { lua_pushlightuserdata(L, fn->in[k]); lua_rawseti(L, stack, ++sp); }
      }
      continue;
    }
    sp--;                                /* second visit: emit the record */
    lua_pushlightuserdata(L, t);
    lua_pushinteger(L, ++n);
    lua_rawset(L, seen);
    lua_createtable(L, 0, 5);
    lua_pushlightuserdata(L, t); lua_setfield(L, -2, "id");
    if (fn) { lua_pushstring(L, fn->name); lua_setfield(L, -2, "op"); }
    lua_pushboolean(L, fn == NULL); lua_setfield(L, -2, "leaf");
    lua_pushboolean(L, t->requires_grad); lua_setfield(L, -2, "requires_grad");
    lua_createtable(L, fn ? fn->nin : 0, 0);
    for (int k = 0; fn && k < fn->nin; k++) {
      if (!fn->in[k]) continue;
      lua_pushlightuserdata(L, fn->in[k]);
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "inputs");
    lua_createtable(L, t->ndim, 0);
    for (int i = 0; i < t->ndim; i++) { lua_pushinteger(L, t->size[i]); lua_rawseti(L, -2, i + 1); }
    lua_setfield(L, -2, "shape");
    lua_rawseti(L, res, n);
  }
  lua_settop(L, res);
  return 1;
}

/* no_grad(fn, ...): fn(...) with graph recording off; the mode is restored even on error */
static int l_no_grad(lua_State *L) {
  luaL_checkany(L, 1);                   /* a function or a callable (a module) */
  int was = nv_set_grad_enabled(0);
  int st = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  nv_set_grad_enabled(was);
  if (st != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

static int l_set_grad_enabled(lua_State *L) {
  lua_pushboolean(L, nv_set_grad_enabled(lua_toboolean(L, 1)));
  return 1;
}
static int l_set_guided_relu(lua_State *L) {
  lua_pushboolean(L, nv_set_guided_relu(lua_toboolean(L, 1)));
  return 1;
}

static int l_is_grad_enabled(lua_State *L) { lua_pushboolean(L, nv_grad_enabled()); return 1; }

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

/* cache_limit([bytes]): sets the storage cache's size (0 empties it); returns bytes held */
static int l_cache_limit(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer b = luaL_checkinteger(L, 1);
    luaL_argcheck(L, b >= 0, 1, "cache_limit: bytes must be >= 0");
    nv_cache_config((size_t)b);
  }
  lua_pushinteger(L, (lua_Integer)nv_cache_bytes());
  return 1;
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
static int l_backward_counts(lua_State *L) {
  const char *name;
  int64_t calls, inputs[8];
  lua_newtable(L);
  for (int i = 0; nv_backward_counts(i, &name, &calls, inputs); i++) {
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)calls); lua_setfield(L, -2, "calls");
    lua_createtable(L, 8, 0);
    int last = 0;
    for (int k = 0; k < 8; k++) if (inputs[k]) last = k + 1;
    for (int k = 0; k < (last > 3 ? last : 3); k++) { lua_pushinteger(L, (lua_Integer)inputs[k]); lua_rawseti(L, -2, k + 1); }
    lua_setfield(L, -2, "inputs");
    lua_setfield(L, -2, name);
  }
  if (lua_toboolean(L, 1)) nv_backward_counts_reset();
  return 1;
}

static const luaL_Reg methods[] = {
  {"shape", m_shape}, {"size", m_size}, {"dim", m_dim}, {"numel", m_numel}, {"stride", m_stride},
  {"is_contiguous", m_is_contiguous}, {"totable", m_totable}, {"item", m_item}, {"values", m_values},
  {"get", m_get}, {"set", m_set},
  {"fill", m_fill}, {"copy", m_copy}, {"add_", m_add_}, {"mul_", m_mul_},
  {"view", m_view}, {"reshape", m_reshape}, {"transpose", m_transpose}, {"t", m_t},
  {"permute", m_permute}, {"narrow", m_narrow}, {"select", m_select}, {"unsqueeze", m_unsqueeze},
  {"squeeze", m_squeeze}, {"expand", m_expand}, {"contiguous", m_contiguous}, {"clone", m_clone},
  {"detach", m_detach},
  {"add", m_add}, {"sub", m_sub}, {"mul", m_mul}, {"div", m_div}, {"pow", m_pow},
  {"maximum", m_maximum}, {"minimum", m_minimum},
  {"eq", m_eq}, {"ne", m_ne}, {"lt", m_lt}, {"le", m_le}, {"gt", m_gt}, {"ge", m_ge},
  {"neg", m_neg}, {"exp", m_exp}, {"log", m_log}, {"sqrt", m_sqrt}, {"rsqrt", m_rsqrt},
  {"abs", m_abs}, {"sin", m_sin}, {"cos", m_cos}, {"tanh", m_tanh}, {"sigmoid", m_sigmoid},
  {"relu", m_relu}, {"gelu", m_gelu}, {"square", m_square}, {"reciprocal", m_reciprocal},
  {"log1p", m_log1p}, {"softplus", m_softplus}, {"sign", m_sign}, {"floor", m_floor},
  {"ceil", m_ceil}, {"round", m_round}, {"clamp", m_clamp}, {"leaky_relu", m_leaky_relu},
  {"elu", m_elu},
  {"sum", m_sum}, {"mean", m_mean}, {"max", m_max}, {"min", m_min}, {"argmax", m_argmax}, {"argsort", m_argsort},
  {"argmin", m_argmin}, {"var", m_var}, {"std", m_std}, {"logsumexp", m_logsumexp},
  {"matmul", m_matmul}, {"histc", m_histc}, {"gather", m_gather}, {"index_select", m_index_select},
  {"backward", m_backward}, {"set_requires_grad", m_set_requires_grad},
  {NULL, NULL}
};

static const luaL_Reg functions[] = {
  {"tensor", l_tensor}, {"zeros", l_zeros}, {"ones", l_ones}, {"full", l_full},
  {"rand", l_randu}, {"randn", l_randn}, {"randperm", l_randperm}, {"arange", l_arange},
  {"eye", l_eye}, {"manual_seed", l_manual_seed}, {"now", l_now}, {"rng_state", l_rng_state},
  {"set_rng_state", l_set_rng_state},
  {"where", l_where}, {"cat", l_cat}, {"stack", l_stack}, {"matmul", m_matmul},
  {"grad", l_grad}, {"no_grad", l_no_grad}, {"set_grad_enabled", l_set_grad_enabled}, {"set_guided_relu", l_set_guided_relu}, {"is_grad_enabled", l_is_grad_enabled},
  {"stats", l_stats}, {"backward_counts", l_backward_counts}, {"cache_limit", l_cache_limit}, {"graph", l_graph}, {"tensor_id", l_tensor_id},
  {NULL, NULL}
};

/* Adds the tensor functions to the table on top; creates the metatable with the methods
 * table as core.Tensor so Lua modules can add methods written in Lua. */
void nv_lua_open_tensor(lua_State *L) {
  luaL_setfuncs(L, functions, 0);
  luaL_newmetatable(L, NV_TENSOR_MT);
  lua_newtable(L);                       /* methods */
  luaL_setfuncs(L, methods, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "Tensor");         /* core.Tensor = methods */
  lua_pushcclosure(L, t_index, 1);
  lua_setfield(L, -2, "__index");
  static const luaL_Reg meta[] = {
    {"__newindex", t_newindex}, {"__gc", t_gc}, {"__close", t_gc}, {"__len", t_len},
    {"__add", m_add}, {"__sub", m_sub}, {"__mul", m_mul}, {"__div", m_div}, {"__pow", m_pow},
    {"__unm", m_neg}, {"__eq", t_eq}, {NULL, NULL}
  };
  luaL_setfuncs(L, meta, 0);
  lua_pushliteral(L, "nnvis.Tensor");
  lua_setfield(L, -2, "__name");
  lua_setfield(L, -2, "tensor_mt");      /* core.tensor_mt */
}

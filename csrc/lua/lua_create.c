/*
 * lua_create.c — creating tensors from Lua (tensor, zeros, ones, full, rand, randn, randperm,
 * arange, eye), the random generator's seed and state, and the clock.
 */
#include "lua/lua_nv.h"
#include "ops/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define T(i) nv_lua_checktensor(L, (i))
#define PUSH(expr, name) (nv_lua_pushtensor(L, (expr), (name)), 1)

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
  int nd = nv_lua_read_sizes_nonneg(L, 1, s, "zeros");
  return PUSH(nv_zeros(nd, s), "zeros");
}

static int l_ones(lua_State *L) {
  int64_t s[NV_MAXDIM];
  int nd = nv_lua_read_sizes_nonneg(L, 1, s, "ones");
  return PUSH(nv_full(nd, s, 1.0f), "ones");
}

static int l_full(lua_State *L) {
  int64_t s[NV_MAXDIM];
  luaL_checktype(L, 1, LUA_TTABLE);
  int nd = nv_lua_read_sizes_nonneg(L, 1, s, "full");
  return PUSH(nv_full(nd, s, (float)luaL_checknumber(L, 2)), "full");
}

static int l_rand(lua_State *L, int normal, const char *fname) {
  int64_t s[NV_MAXDIM];
  int nd = nv_lua_read_sizes_nonneg(L, 1, s, fname);
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


const luaL_Reg nv_lua_create_functions[] = {
  {"tensor", l_tensor},
  {"zeros", l_zeros},
  {"ones", l_ones},
  {"full", l_full},
  {"rand", l_randu},
  {"randn", l_randn},
  {"randperm", l_randperm},
  {"arange", l_arange},
  {"eye", l_eye},
  {"manual_seed", l_manual_seed},
  {"now", l_now},
  {"rng_state", l_rng_state},
  {"set_rng_state", l_set_rng_state},
  {NULL, NULL}
};

#define _POSIX_C_SOURCE 200809L
/*
 * lua_core.c — luaopen_nnvis_core, the only exported symbol: loads OpenBLAS (choosing its
 * kernels), and assembles the module from the binding files' function tables.
 */
#include "autograd/autograd.h"
#include "core/config.h"
#include "lua/lua_nv.h"
#include "kernels/nn_kernels.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void nv_lua_open_tensor(lua_State *L);
void nv_lua_open_draw(lua_State *L);

/* config's boolean option `name` (table at 1) into *flag, when given */
static void bool_opt(lua_State *L, const char *name, int *flag) {
  lua_getfield(L, 1, name);
  if (!lua_isnil(L, -1)) {
    if (!lua_isboolean(L, -1)) luaL_error(L, "config: %s must be a boolean, got %s", name, luaL_typename(L, -1));
    *flag = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
}

static int l_config(lua_State *L) {
  static const char *const known[] = {"threads", "max_alloc", "winograd", "onednn", "prefer_winograd", NULL};
  nv_lua_checkopts(L, 1, "config", known);
  if (lua_istable(L, 1)) {
    lua_getfield(L, 1, "threads");
    if (!lua_isnil(L, -1)) {
      lua_Integer n = nv_lua_checkint(L, lua_gettop(L), 1, 1024, "config", "threads");
      nv_blas_set_threads((int)n);
      nv_onednn_set_threads((int)n);
    }
    lua_pop(L, 1);
    bool_opt(L, "winograd", &nv_config_get()->conv_winograd);
    bool_opt(L, "onednn", &nv_config_get()->conv_onednn);
    lua_getfield(L, 1, "prefer_winograd");
    if (lua_isboolean(L, -1)) nv_config_get()->conv_prefer_winograd = lua_toboolean(L, -1);
    else if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "auto") == 0) nv_config_get()->conv_prefer_winograd = -1;
    else if (!lua_isnil(L, -1))
      return luaL_error(L, "config: prefer_winograd must be true, false or \"auto\", got %s",
                        lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
    lua_pop(L, 1);
    lua_getfield(L, 1, "max_alloc");
    if (!lua_isnil(L, -1)) {
      int ok;
      lua_Integer b = lua_tointegerx(L, -1, &ok);
      if (!ok) return luaL_error(L, "config: max_alloc must be a whole number of bytes, got %s", luaL_typename(L, -1));
      if (!nv_set_max_alloc((int64_t)b)) return nv_lua_raise(L, "config");
    }
    lua_pop(L, 1);
  }
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, (lua_Integer)nv_max_alloc()); lua_setfield(L, -2, "max_alloc");
  lua_pushstring(L, nv_blas_core()); lua_setfield(L, -2, "blas_core");
  lua_pushinteger(L, nv_blas_threads()); lua_setfield(L, -2, "threads");
  lua_pushboolean(L, nv_blas_coretype_forced()); lua_setfield(L, -2, "blas_core_chosen_by_nnvis");
  lua_pushstring(L, nv_blas_config()); lua_setfield(L, -2, "blas_config");
  lua_pushboolean(L, nv_grad_enabled()); lua_setfield(L, -2, "grad_enabled");
  lua_pushboolean(L, nv_config_get()->conv_winograd); lua_setfield(L, -2, "winograd");
  lua_pushboolean(L, nv_config_get()->conv_onednn); lua_setfield(L, -2, "onednn");
  if (nv_config_get()->conv_prefer_winograd < 0) lua_pushstring(L, "auto");
  else lua_pushboolean(L, nv_config_get()->conv_prefer_winograd);
  lua_setfield(L, -2, "prefer_winograd");
  lua_pushboolean(L, nv_winograd_prefer_auto()); lua_setfield(L, -2, "prefer_winograd_auto");
  return 1;
}

/* winograd_cache([clear]): the bytes of transformed 3x3 kernels kept (after emptying it
 * when clear is true) */
/* onednn_cache([clear]): the bytes of weights kept in oneDNN's layouts (after releasing
 * them and every primitive when clear is true) */
static int l_onednn_cache(lua_State *L) {
  if (lua_toboolean(L, 1)) nv_onednn_forget(0);
  lua_pushinteger(L, (lua_Integer)nv_onednn_cache_bytes());
  return 1;
}

static int l_winograd_cache(lua_State *L) {
  if (lua_toboolean(L, 1)) nv_winograd_forget(0);
  lua_pushinteger(L, (lua_Integer)nv_winograd_cache_bytes());
  return 1;
}

/* _memcpy_seconds(nfloats, reps): time of a plain memcpy, the yardstick for bench/ */
static int l_memcpy_seconds(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1), reps = luaL_optinteger(L, 2, 10);
  luaL_argcheck(L, n > 0 && n < ((lua_Integer)1 << 32), 1, "size out of range");
  float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
  if (!a || !b) { free(a); free(b); return luaL_error(L, "_memcpy_seconds: out of memory"); }
  memset(a, 1, (size_t)n * sizeof *a);
  memcpy(b, a, (size_t)n * sizeof *a);   /* touch both once */
  double t0 = nv_now();
  for (lua_Integer r = 0; r < reps; r++) { memcpy(b, a, (size_t)n * sizeof *a); a[r % n] = b[(r * 7) % n]; }
  double dt = (nv_now() - t0) / (double)reps;
  free(a);
  free(b);
  lua_pushnumber(L, dt);
  return 1;
}

/* isatty(): 1 = stdout, 2 = stderr; trainers draw progress bars only on terminals */
static int l_isatty(lua_State *L) {
  lua_Integer fd = luaL_optinteger(L, 1, 1);
  lua_pushboolean(L, isatty((int)fd));
  return 1;
}

/* dead tensors may sit in Lua's heap: a full collection returns their buffers to the cache */
static void collect(void *ud) { lua_gc((lua_State *)ud, LUA_GCCOLLECT); }

/* __gc of a sentinel in the registry: the Lua state is closing */
static int l_shutdown(lua_State *L) { (void)L; nv_shutdown(); return 0; }

/* Runs fn when the Lua state closes: the __gc of a sentinel kept in the registry under key
 * (made once per key). */
void nv_lua_on_close(lua_State *L, const char *key, lua_CFunction fn) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, key) == LUA_TNIL) {
    lua_newuserdatauv(L, 1, 0);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, fn);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, key);
  }
  lua_pop(L, 1);
}

int luaopen_nnvis_core(lua_State *L) {
  if (!nv_blas_init()) return luaL_error(L, "nnvis.core: %s", nv_last_error());
  nv_lua_on_close(L, "nnvis.core.shutdown", l_shutdown);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  nv_set_alloc_miss_hook(collect, lua_tothread(L, -1));
  lua_pop(L, 1);
  lua_newtable(L);
  nv_lua_open_tensor(L);
  nv_lua_open_nn(L);
  nv_lua_open_files(L);
  nv_lua_open_fetch(L);
  nv_lua_open_onnx(L);
  nv_lua_open_draw(L);
  nv_lua_open_opts(L);
  lua_pushcfunction(L, l_config);
  lua_setfield(L, -2, "config");
  lua_pushcfunction(L, l_onednn_cache);
  lua_setfield(L, -2, "onednn_cache");
  lua_pushcfunction(L, l_winograd_cache);
  lua_setfield(L, -2, "winograd_cache");
  lua_pushcfunction(L, l_isatty);
  lua_setfield(L, -2, "isatty");
  lua_pushcfunction(L, l_memcpy_seconds);
  lua_setfield(L, -2, "_memcpy_seconds");
  return 1;
}

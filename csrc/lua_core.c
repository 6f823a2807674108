/*
 * lua_core.c — luaopen_nnvis_core, the only exported symbol: loads OpenBLAS (choosing its
 * kernels), and assembles the module from the binding files' function tables.
 */
#include "autograd.h"
#include "lua_nv.h"

void nv_lua_open_tensor(lua_State *L);

static int l_config(lua_State *L) {
  if (lua_istable(L, 1)) {
    lua_getfield(L, 1, "threads");
    if (!lua_isnil(L, -1)) {
      lua_Integer n = luaL_checkinteger(L, -1);
      luaL_argcheck(L, n >= 1 && n <= 1024, 1, "config: threads must be between 1 and 1024");
      nv_blas_set_threads((int)n);
    }
    lua_pop(L, 1);
  }
  lua_createtable(L, 0, 5);
  lua_pushstring(L, nv_blas_core()); lua_setfield(L, -2, "blas_core");
  lua_pushinteger(L, nv_blas_threads()); lua_setfield(L, -2, "threads");
  lua_pushboolean(L, nv_blas_coretype_forced()); lua_setfield(L, -2, "blas_core_chosen_by_nnvis");
  lua_pushstring(L, nv_blas_config()); lua_setfield(L, -2, "blas_config");
  lua_pushboolean(L, nv_grad_enabled()); lua_setfield(L, -2, "grad_enabled");
  return 1;
}

int luaopen_nnvis_core(lua_State *L) {
  if (!nv_blas_init()) return luaL_error(L, "nnvis.core: %s", nv_last_error());
  lua_newtable(L);
  nv_lua_open_tensor(L);
  nv_lua_open_nn(L);
  nv_lua_open_files(L);
  lua_pushcfunction(L, l_config);
  lua_setfield(L, -2, "config");
  return 1;
}

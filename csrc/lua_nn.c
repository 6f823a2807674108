/*
 * lua_nn.c — binding of the neural-network ops (conv, pooling, normalization, losses...).
 */
#include "lua_nv.h"
#include "ops.h"

static const luaL_Reg functions[] = {
  {NULL, NULL}
};

void nv_lua_open_nn(lua_State *L) { luaL_setfuncs(L, functions, 0); }

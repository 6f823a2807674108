/*
 * lua_nv.h — shared helpers of the binding layer (the only C files that include lua.h).
 * The module nnvis.core is assembled in lua_core.c from the luaL_Reg tables of each
 * binding file.
 */
#ifndef NV_LUA_NV_H
#define NV_LUA_NV_H

#include <lauxlib.h>
#include <lua.h>

#include "nv.h"

#define NV_TENSOR_MT "nnvis.Tensor"

/* The tensor at idx, or a raised error naming argument idx. Borrowed. */
nv_tensor *nv_lua_checktensor(lua_State *L, int idx);
/* The tensor at idx, or NULL when it is not one. Borrowed. */
nv_tensor *nv_lua_totensor(lua_State *L, int idx);
/* A number or a tensor at idx, as a tensor, BORROWED: a number becomes a new 0-d tensor
 * pushed on the Lua stack (so Lua owns it and an error later cannot leak it). */
nv_tensor *nv_lua_checktensor_or_number(lua_State *L, int idx);
/* Pushes t, stealing one reference.  t == NULL raises nv_last_error() prefixed by fname. */
void nv_lua_pushtensor(lua_State *L, nv_tensor *t, const char *fname);
/* Raises "fname: <nv_last_error()>". */
int nv_lua_raise(lua_State *L, const char *fname);
/* Runs fn when the Lua state closes (a sentinel's __gc in the registry under key, made once). */
void nv_lua_on_close(lua_State *L, const char *key, lua_CFunction fn);
/* Field `field` of the options table at idx as a boolean; def when idx is no table or the
 * field is nil. */
int nv_lua_optflag(lua_State *L, int idx, const char *field, int def);
/* The integer at idx, in [lo, hi]: an integer, or a float with an integral value.  NaN,
 * infinities, fractions and values out of range raise "fname: what must be ...", so no
 * argument is ever narrowed or converted with undefined behaviour. */
lua_Integer nv_lua_checkint(lua_State *L, int idx, lua_Integer lo, lua_Integer hi, const char *fname,
                            const char *what);
/* Raises "fname: unknown option 'k' (did you mean 'x'?)" when the options table at idx has a
 * key not in the NULL-terminated list known, or is a list or no table; nil passes. */
void nv_lua_checkopts(lua_State *L, int idx, const char *fname, const char *const known[]);
/* The number at idx, or a raised "fname: what must be a number, got <type>" (idx may be
 * negative: the message names the function and what, never a stack slot). */
lua_Number nv_lua_checknum(lua_State *L, int idx, const char *fname, const char *what);
/* Pushes nil, "<message>"; returns 2 (for outside data). */
int nv_lua_fail(lua_State *L, const char *fmt, ...);

/* Registration of the other binding files (each adds its functions to the table on top). */
void nv_lua_open_fetch(lua_State *L);
void nv_lua_open_files(lua_State *L);
void nv_lua_open_nn(lua_State *L);
void nv_lua_open_onnx(lua_State *L);
void nv_lua_open_opts(lua_State *L);

#endif

/*
 * lua_nv.h — shared helpers of the binding layer (the only C files that include lua.h).
 * The module nnvis.core is assembled in lua_core.c from the luaL_Reg tables of each
 * binding file.
 */
#ifndef NV_LUA_NV_H
#define NV_LUA_NV_H

#include <lauxlib.h>
#include <lua.h>

#include "core/nv.h"

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

/* 1-based (or negative) Lua dim at idx -> 0-based, checked against ndim; raises naming fname. */
int nv_lua_checkdim(lua_State *L, int idx, int ndim, const char *fname);
/* Sizes given as numbers from idx on, or one table (zeros(2,3) == zeros{2,3}), into size;
 * returns their count.  _nonneg also refuses negative sizes. */
int nv_lua_read_sizes(lua_State *L, int idx, int64_t *size, const char *fname);
int nv_lua_read_sizes_nonneg(lua_State *L, int idx, int64_t *size, const char *fname);
/* The list of tensors at idx as an array of borrowed pointers, in a userdata pushed on the
 * stack (freed by the GC); returns the count. */
int nv_lua_tensor_list(lua_State *L, int idx, nv_tensor ***out, const char *fname);

/* The function and method tables of the tensor binding files, gathered by lua_tensor.c. */
extern const luaL_Reg nv_lua_create_functions[], nv_lua_ops_functions[], nv_lua_ops_methods[],
    nv_lua_ops_meta[], nv_lua_autograd_functions[], nv_lua_autograd_methods[];

/* The unary ops ops/ops.def binds, as methods (table at index methods) and module functions
 * (table at index module). */
void nv_lua_open_unary(lua_State *L, int module, int methods);

/* Registration of the other binding files (each adds its functions to the table on top). */
void nv_lua_open_fetch(lua_State *L);
void nv_lua_open_files(lua_State *L);
void nv_lua_open_nn(lua_State *L);
void nv_lua_open_onnx(lua_State *L);
void nv_lua_open_opts(lua_State *L);

#endif

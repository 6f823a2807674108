/*
 * lua_autograd.c — backward, grad, no_grad and grad mode, the graph as a table, and the
 * counters of backward passes.
 */
#include "lua/lua_nv.h"
#include "ops/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define T(i) nv_lua_checktensor(L, (i))
#define PUSH(expr, name) (nv_lua_pushtensor(L, (expr), (name)), 1)

/* ---- autograd --------------------------------------------------------------------------------- */

/* y:backward([grad] [, {retain_graph = bool}]) */
/* Guided backprop for a pass: the options table's `guided`, else the Lua state's default
 * set by core.set_guided_relu (kept for old callers; it lives in this state's registry, not
 * in the core).  Fills o and returns it, or NULL for a plain pass. */
#define GUIDED_KEY "nnvis.core.guided_relu"
static const nv_backward_opts *pass_opts(lua_State *L, int idx, nv_backward_opts *o) {
  int guided;
  lua_getfield(L, LUA_REGISTRYINDEX, GUIDED_KEY);
  guided = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (lua_istable(L, idx)) {
    lua_getfield(L, idx, "guided");
    if (!lua_isnil(L, -1)) {
      if (!lua_isboolean(L, -1)) luaL_error(L, "guided must be a boolean, got %s", luaL_typename(L, -1));
      guided = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
  }
  if (!guided) return NULL;
  *o = (nv_backward_opts){.node_hook = nv_guided_relu_hook, .ud = NULL};
  return o;
}

static int m_backward(lua_State *L) {
  nv_tensor *y = T(1);
  nv_tensor *g = nv_lua_totensor(L, 2);
  int opts = (g || lua_isnil(L, 2)) && !lua_istable(L, 2) ? 3 : 2;
  if (!g && lua_type(L, 2) == LUA_TNUMBER) return luaL_error(L, "backward: grad must be a tensor");
  nv_backward_opts o;
  const nv_backward_opts *po = pass_opts(L, opts, &o);
  if (!nv_backward_ex(y, g, nv_lua_optflag(L, opts, "retain_graph", 0), 0, NULL, NULL, po))
    return nv_lua_raise(L, "backward");
  return 0;
}

/* nv.grad(y, {x1, x2, ...} [, {grad = g, retain_graph = b, guided = b}]) -> {g1, g2, ...};
 * guided: guided backprop, every relu's input gradient clamped at 0 (ops/saliency.c) */
static int l_grad(lua_State *L) {
  nv_tensor *y = T(1);
  nv_tensor **wrt;
  int n = nv_lua_tensor_list(L, 2, &wrt, "grad");
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
  nv_backward_opts o;
  const nv_backward_opts *po = pass_opts(L, 3, &o);
  if (!nv_backward_ex(y, g, nv_lua_optflag(L, 3, "retain_graph", 0), n, wrt, outg, po)) return nv_lua_raise(L, "grad");
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
/* set_guided_relu(on) -> the previous setting: this Lua state's default for the `guided`
 * option of backward and grad */
static int l_set_guided_relu(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, GUIDED_KEY);
  int was = lua_toboolean(L, -1);
  lua_pushboolean(L, lua_toboolean(L, 1));
  lua_setfield(L, LUA_REGISTRYINDEX, GUIDED_KEY);
  lua_pushboolean(L, was);
  return 1;
}

static int l_is_grad_enabled(lua_State *L) { lua_pushboolean(L, nv_grad_enabled()); return 1; }

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


const luaL_Reg nv_lua_autograd_methods[] = {
  {"backward", m_backward},
  {NULL, NULL}
};

const luaL_Reg nv_lua_autograd_functions[] = {
  {"grad", l_grad},
  {"no_grad", l_no_grad},
  {"set_grad_enabled", l_set_grad_enabled},
  {"set_guided_relu", l_set_guided_relu},
  {"is_grad_enabled", l_is_grad_enabled},
  {"backward_counts", l_backward_counts},
  {"graph", l_graph},
  {"tensor_id", l_tensor_id},
  {NULL, NULL}
};

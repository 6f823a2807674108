/*
 * lua_onnx.c — the Lua face of onnx.c: onnx_read(path) unpacks an ONNX file into plain Lua
 * tables (nodes, attributes, value infos, opsets) with initializers decoded to float32
 * tensors or, for integer types, Lua arrays of integers {shape = {...}, dtype = "int64", ...}.
 * lua/nnvis/nn/onnx.lua turns that description into a module.  A malformed or hostile file
 * gives nil, message; C-side memory lives in a userdata with __gc while Lua tables are built,
 * so an out-of-memory error raised by Lua leaks nothing.
 */
#include "lua/lua_nv.h"
#include "io/onnx.h"

#include <string.h>

#define NV_ONNX_MT "nnvis.onnx_model"   /* box around an nv_onnx_model* being converted */

typedef struct onnx_box {
  nv_onnx_model *m;
  nv_onnx_array pending;   /* a decoded tensor not yet handed to Lua */
  Onnx__TensorProto *pending_tp;   /* an initializer being converted */
} onnx_box;

static int box_gc(lua_State *L) {
  onnx_box *b = luaL_checkudata(L, 1, NV_ONNX_MT);
  nv_onnx_array_free(&b->pending);
  nv_onnx_initializer_free(b->pending_tp);
  b->pending_tp = NULL;
  nv_onnx_free(b->m);
  b->m = NULL;
  return 0;
}

static void set_str(lua_State *L, const char *key, const char *s) {
  lua_pushstring(L, s ? s : "");
  lua_setfield(L, -2, key);
}

static void push_strings(lua_State *L, char **s, size_t n) {
  lua_createtable(L, (int)n, 0);
  for (size_t k = 0; k < n; k++) {
    lua_pushstring(L, s[k] ? s[k] : "");
    lua_rawseti(L, -2, (lua_Integer)k + 1);
  }
}

/* pushes the decoded tensor held in b->pending: a tensor, or an integer array table */
static void push_pending(lua_State *L, onnx_box *b) {
  nv_onnx_array *a = &b->pending;
  if (a->is_float) {
    nv_tensor *t = a->t;
    a->t = NULL;
    nv_lua_pushtensor(L, t, "onnx.load");
    return;
  }
  lua_createtable(L, (int)(a->numel < 1 << 20 ? a->numel : 1 << 20), 2);
  lua_createtable(L, a->ndim, 0);
  for (int k = 0; k < a->ndim; k++) {
    lua_pushinteger(L, a->dims[k]);
    lua_rawseti(L, -2, k + 1);
  }
  lua_setfield(L, -2, "shape");
  lua_pushstring(L, nv_onnx_dtype_name(a->dtype));
  lua_setfield(L, -2, "dtype");
  for (int64_t i = 0; i < a->numel; i++) {
    lua_pushinteger(L, a->ints[i]);
    lua_rawseti(L, -2, i + 1);
  }
  nv_onnx_array_free(a);
}

/* decodes tp and pushes it; 0 (nothing pushed, error set) on a bad tensor */
static int push_tensor(lua_State *L, onnx_box *b, const Onnx__TensorProto *tp, const char *what) {
  if (!nv_onnx_tensor(b->m, tp, what, &b->pending)) return 0;
  push_pending(L, b);
  return 1;
}

static void push_value_infos(lua_State *L, Onnx__ValueInfoProto **v, size_t n) {
  lua_createtable(L, (int)n, 0);
  for (size_t k = 0; k < n; k++) {
    lua_createtable(L, 0, 3);
    set_str(L, "name", v[k]->name);
    const Onnx__TypeProto__Tensor *tt = v[k]->type ? v[k]->type->tensor_type : NULL;
    if (tt) {
      lua_pushinteger(L, tt->has_elem_type ? tt->elem_type : 0);
      lua_setfield(L, -2, "elem_type");
      if (tt->shape) {
        lua_createtable(L, (int)tt->shape->n_dim, 0);
        for (size_t d = 0; d < tt->shape->n_dim; d++) {
          const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
          if (dim->has_dim_value) lua_pushinteger(L, dim->dim_value);
          else lua_pushstring(L, dim->dim_param ? dim->dim_param : "?");
          lua_rawseti(L, -2, (lua_Integer)d + 1);
        }
        lua_setfield(L, -2, "shape");
      }
    }
    lua_rawseti(L, -2, (lua_Integer)k + 1);
  }
}

/* AttributeProto.AttributeType */
enum { AT_FLOAT = 1, AT_INT, AT_STRING, AT_TENSOR, AT_GRAPH, AT_FLOATS, AT_INTS, AT_STRINGS,
       AT_TENSORS, AT_GRAPHS };

/* pushes the attribute's value; 0 on a bad tensor inside it */
static int push_attr(lua_State *L, onnx_box *b, const Onnx__AttributeProto *at, const char *node) {
  int type = at->has_type ? at->type : 0;
  if (type == 0) {   /* files before IR version 2 leave the type out: infer it */
    type = at->t ? AT_TENSOR : at->has_s ? AT_STRING : at->has_i ? AT_INT : at->has_f ? AT_FLOAT
         : at->n_ints ? AT_INTS : at->n_floats ? AT_FLOATS : at->n_strings ? AT_STRINGS
         : at->n_tensors ? AT_TENSORS : 0;
  }
  char what[200];
  snprintf(what, sizeof what, "attribute %s of node '%s'", at->name ? at->name : "", node);
  switch (type) {
  case AT_FLOAT: lua_pushnumber(L, at->f); return 1;
  case AT_INT: lua_pushinteger(L, at->i); return 1;
  case AT_STRING: lua_pushlstring(L, (const char *)at->s.data, at->s.len); return 1;
  case AT_TENSOR:
    if (!at->t) { nv_seterr("onnx.load: %s: %s holds no tensor", b->m->path, what); return 0; }
    return push_tensor(L, b, at->t, what);
  case AT_FLOATS:
    lua_createtable(L, (int)at->n_floats, 0);
    for (size_t k = 0; k < at->n_floats; k++) { lua_pushnumber(L, at->floats[k]); lua_rawseti(L, -2, (lua_Integer)k + 1); }
    return 1;
  case AT_INTS:
    lua_createtable(L, (int)at->n_ints, 0);
    for (size_t k = 0; k < at->n_ints; k++) { lua_pushinteger(L, at->ints[k]); lua_rawseti(L, -2, (lua_Integer)k + 1); }
    return 1;
  case AT_STRINGS:
    lua_createtable(L, (int)at->n_strings, 0);
    for (size_t k = 0; k < at->n_strings; k++) {
      lua_pushlstring(L, (const char *)at->strings[k].data, at->strings[k].len);
      lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    return 1;
  case AT_TENSORS:
    lua_createtable(L, (int)at->n_tensors, 0);
    for (size_t k = 0; k < at->n_tensors; k++) {
      if (!push_tensor(L, b, at->tensors[k], what)) return 0;
      lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    return 1;
  default:   /* graphs (If, Loop, Scan) and types nnvis has no use for: the executor says so */
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, type);
    lua_setfield(L, -2, "unsupported_attribute_type");
    return 1;
  }
}

static void push_nodes(lua_State *L, onnx_box *b, int *ok) {
  const Onnx__GraphProto *g = b->m->proto->graph;
  lua_createtable(L, (int)g->n_node, 0);
  for (size_t k = 0; k < g->n_node && *ok; k++) {
    const Onnx__NodeProto *n = g->node[k];
    lua_createtable(L, 0, 6);
    set_str(L, "name", n->name);
    set_str(L, "op_type", n->op_type);
    set_str(L, "domain", n->domain);
    push_strings(L, n->input, n->n_input);
    lua_setfield(L, -2, "inputs");
    push_strings(L, n->output, n->n_output);
    lua_setfield(L, -2, "outputs");
    lua_createtable(L, 0, (int)n->n_attribute);
    for (size_t a = 0; a < n->n_attribute; a++) {
      const Onnx__AttributeProto *at = n->attribute[a];
      if (!push_attr(L, b, at, n->name ? n->name : "")) { *ok = 0; return; }
      lua_setfield(L, -2, at->name ? at->name : "");
    }
    lua_setfield(L, -2, "attrs");
    lua_rawseti(L, -2, (lua_Integer)k + 1);
  }
}

/* onnx_read(path) -> description table | nil, msg */
static int l_onnx_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  onnx_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, NV_ONNX_MT);
  b->m = nv_onnx_read(path);
  if (!b->m) return nv_lua_fail(L, "%s", nv_last_error());
  Onnx__ModelProto *mp = b->m->proto;
  Onnx__GraphProto *g = mp->graph;   /* its initializers are read one by one below */
  lua_createtable(L, 0, 10);
  lua_pushinteger(L, mp->has_ir_version ? mp->ir_version : 0);
  lua_setfield(L, -2, "ir_version");
  set_str(L, "producer", mp->producer_name);
  set_str(L, "producer_version", mp->producer_version);
  set_str(L, "graph_name", g->name);
  lua_createtable(L, 0, (int)mp->n_opset_import);
  for (size_t k = 0; k < mp->n_opset_import; k++) {
    const Onnx__OperatorSetIdProto *o = mp->opset_import[k];
    lua_pushinteger(L, o->has_version ? o->version : 0);
    lua_setfield(L, -2, o->domain && strcmp(o->domain, "ai.onnx") != 0 ? o->domain : "");
  }
  lua_setfield(L, -2, "opsets");
  lua_createtable(L, 0, (int)mp->n_metadata_props);
  for (size_t k = 0; k < mp->n_metadata_props; k++) {
    set_str(L, mp->metadata_props[k]->key ? mp->metadata_props[k]->key : "", mp->metadata_props[k]->value);
  }
  lua_setfield(L, -2, "metadata");
  push_value_infos(L, g->input, g->n_input);
  lua_setfield(L, -2, "inputs");
  push_value_infos(L, g->output, g->n_output);
  lua_setfield(L, -2, "outputs");
  int ok = 1;
  push_nodes(L, b, &ok);
  if (!ok) return nv_lua_fail(L, "%s", nv_last_error());
  lua_setfield(L, -2, "nodes");
  lua_createtable(L, b->m->n_init, 0);
  for (int k = 0; k < b->m->n_init; k++) {
    Onnx__TensorProto *tp = b->pending_tp = nv_onnx_initializer(b->m, k);
    if (!tp) return nv_lua_fail(L, "%s", nv_last_error());
    char what[300];
    snprintf(what, sizeof what, "initializer '%s'", tp->name ? tp->name : "");
    lua_createtable(L, 0, 2);
    set_str(L, "name", tp->name);
    if (!push_tensor(L, b, tp, what)) return nv_lua_fail(L, "%s", nv_last_error());
    lua_setfield(L, -2, "value");
    lua_rawseti(L, -2, (lua_Integer)k + 1);
    nv_onnx_initializer_free(tp);
    b->pending_tp = NULL;
  }
  lua_setfield(L, -2, "initializers");
  nv_onnx_free(b->m);   /* early, rather than at the next collection */
  b->m = NULL;
  return 1;
}

/* onnx_read_tensor(path) -> tensor | integer array table | nil, msg */
static int l_onnx_read_tensor(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  onnx_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, NV_ONNX_MT);
  if (!nv_onnx_read_tensor(path, &b->pending)) return nv_lua_fail(L, "%s", nv_last_error());
  push_pending(L, b);
  return 1;
}

static const luaL_Reg functions[] = {
  {"onnx_read", l_onnx_read}, {"onnx_read_tensor", l_onnx_read_tensor},
  {NULL, NULL}
};

void nv_lua_open_onnx(lua_State *L) {
  luaL_setfuncs(L, functions, 0);
  luaL_newmetatable(L, NV_ONNX_MT);
  lua_pushcfunction(L, box_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}

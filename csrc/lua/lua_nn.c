/*
 * lua_nn.c — binding of the neural-network ops: conv2d, pooling, batch_norm, softmax,
 * interpolate and pad.  Options come in a trailing table; a pair option (stride, padding,
 * dilation, kernel, size) is a number or {h, w}.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lua/lua_nv.h"
#include "autograd/autograd.h"
#include "kernels/nn_kernels.h"
#include "ops/nn_ops.h"

#define T(i) nv_lua_checktensor(L, (i))
#define PUSH(expr, name) (nv_lua_pushtensor(L, (expr), (name)), 1)

/* value at idx (number or {h, w}) into p, each an integer in [lo, INT32_MAX]; def when nil */
static void pair_at(lua_State *L, int idx, int p[2], int def, int lo, const char *fname, const char *what) {
  if (lua_isnoneornil(L, idx)) { p[0] = p[1] = def; return; }
  if (lua_type(L, idx) == LUA_TNUMBER) {
    p[0] = p[1] = (int)nv_lua_checkint(L, idx, lo, INT32_MAX, fname, what);
    return;
  }
  if (lua_istable(L, idx) && luaL_len(L, idx) == 2) {
    for (int k = 0; k < 2; k++) {
      lua_geti(L, idx, k + 1);
      if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "%s: %s must be a number or {h, w} of integers", fname, what);
      p[k] = (int)nv_lua_checkint(L, lua_gettop(L), lo, INT32_MAX, fname, what);
      lua_pop(L, 1);
    }
    return;
  }
  luaL_error(L, "%s: %s must be a number or {h, w}, got %s", fname, what, luaL_typename(L, idx));
}

static void opt_pair(lua_State *L, int opts, const char *field, int p[2], int def, int lo, const char *fname) {
  if (!lua_istable(L, opts)) { p[0] = p[1] = def; return; }
  lua_getfield(L, opts, field);
  pair_at(L, lua_gettop(L), p, def, lo, fname, field);
  lua_pop(L, 1);
}

/* integer option `field` in [lo, INT32_MAX], def when absent */
static int opt_int(lua_State *L, int opts, const char *field, int def, int lo, const char *fname) {
  if (!lua_istable(L, opts)) return def;
  lua_getfield(L, opts, field);
  int v = lua_isnil(L, -1) ? def : (int)nv_lua_checkint(L, lua_gettop(L), lo, INT32_MAX, fname, field);
  lua_pop(L, 1);
  return v;
}

/* number option `field`, def when absent; anything else raises naming fname and field */
static lua_Number opt_num(lua_State *L, int opts, const char *field, lua_Number def, const char *fname) {
  if (!lua_istable(L, opts)) return def;
  lua_getfield(L, opts, field);
  lua_Number v = def;
  if (lua_type(L, -1) == LUA_TNUMBER) v = lua_tonumber(L, -1);
  else if (!lua_isnil(L, -1)) luaL_error(L, "%s: %s must be a number, got %s", fname, field, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

/* string option `field`, def when absent */
static const char *opt_str(lua_State *L, int opts, const char *field, const char *def, const char *fname) {
  if (!lua_istable(L, opts)) return def;
  lua_getfield(L, opts, field);
  const char *v = def;
  if (lua_type(L, -1) == LUA_TSTRING) v = lua_tostring(L, -1);   /* the options table keeps it */
  else if (!lua_isnil(L, -1)) luaL_error(L, "%s: %s must be a string, got %s", fname, field, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

/* the argument at idx must be a table (fname's options or list of what) */
static void check_table(lua_State *L, int idx, const char *fname, const char *what) {
  if (!lua_istable(L, idx)) luaL_error(L, "%s: %s must be a table, got %s", fname, what, luaL_typename(L, idx));
}

static nv_tensor *opt_tensor(lua_State *L, int idx) {
  return lua_isnoneornil(L, idx) ? NULL : T(idx);
}

/* conv2d's geometry options at stack index 4: stride, padding (numbers, pairs, "same",
 * "valid"), dilation, groups */
static int conv_geometry(lua_State *L, nv_tensor *w, int stride[2], int pad[2], int dil[2]) {
  opt_pair(L, 4, "stride", stride, 1, 1, "conv2d");
  opt_pair(L, 4, "dilation", dil, 1, 1, "conv2d");
  int same = 0;
  if (lua_istable(L, 4)) {
    lua_getfield(L, 4, "padding");
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *p = lua_tostring(L, -1);
      if (strcmp(p, "same") == 0) same = 1;
      else if (strcmp(p, "valid") != 0)
        return luaL_error(L, "conv2d: padding must be a number, {h, w}, \"same\" or \"valid\", got \"%s\"", p);
      lua_pushnil(L);
      lua_replace(L, -2);
    }
    lua_pop(L, 1);
  }
  if (same) {
    /* PyTorch's padding="same": stride 1, and an even total padding split evenly */
    if (stride[0] != 1 || stride[1] != 1) return luaL_error(L, "conv2d: padding \"same\" needs stride 1");
    if (w->ndim != 4) return luaL_error(L, "conv2d: weight must be (Cout, Cin/groups, KH, KW)");
    for (int k = 0; k < 2; k++) {
      int total = dil[k] * (int)(w->size[2 + k] - 1);
      if (total % 2) return luaL_error(L, "conv2d: padding \"same\" with an even kernel needs asymmetric padding, use pad()");
      pad[k] = total / 2;
    }
  } else if (lua_istable(L, 4)) {
    lua_getfield(L, 4, "padding");
    int isstr = lua_type(L, -1) == LUA_TSTRING;   /* "valid" */
    lua_pop(L, 1);
    if (isstr) pad[0] = pad[1] = 0;
    else opt_pair(L, 4, "padding", pad, 0, 0, "conv2d");
  } else pad[0] = pad[1] = 0;
  int groups = opt_int(L, 4, "groups", 1, 1, "conv2d");
  return groups;
}

/* conv2d(x, w [, b] [, {stride, padding, dilation, groups, relu, add}]) */
static int l_conv2d(lua_State *L) {
  static const char *const known[] = {"stride", "padding", "dilation", "groups", "relu", "add", "channels_last", NULL};
  nv_tensor *x = T(1), *w = T(2), *b = opt_tensor(L, 3);
  nv_lua_checkopts(L, 4, "conv2d", known);
  /* relu = true: the output's ReLU in the convolution's epilogue (inference only: no graph) */
  int relu = nv_lua_optflag(L, 4, "relu", 0);
  if (relu && nv_grad_enabled())
    return luaL_error(L, "conv2d: relu = true is for inference; call it under nv.no_grad");
  /* add = t: t added to the output (before the ReLU): a residual, inference only too */
  nv_tensor *add = NULL;
  if (lua_istable(L, 4)) {
    lua_getfield(L, 4, "add");
    if (!lua_isnil(L, -1)) {
      add = nv_lua_totensor(L, -1);   /* borrowed: the options table keeps it */
      if (!add) return luaL_error(L, "conv2d: add must be a tensor, got %s", luaL_typename(L, -1));
      if (nv_grad_enabled()) return luaL_error(L, "conv2d: add is for inference; call it under nv.no_grad");
    }
    lua_pop(L, 1);
  }
  int stride[2], pad[2], dil[2];
  int groups = conv_geometry(L, w, stride, pad, dil);
  /* channels_last = true: the output laid out (N,H,W,C) in memory, as oneDNN's convolutions
   * read and write fastest (inference only) */
  int channels_last = nv_lua_optflag(L, 4, "channels_last", 0);
  if (channels_last && nv_grad_enabled())
    return luaL_error(L, "conv2d: channels_last = true is for inference; call it under nv.no_grad");
  nv_tensor *y = nv_conv2d(x, w, b, stride, pad, dil, groups, relu, add, channels_last);
  return PUSH(y, "conv2d");
}

/* conv_impl(x, w, opts, kind): which kernels a convolution of input x and weight w with
 * conv2d's geometry options runs, for kind "forward", "input_grad" or "weight_grad":
 * "onednn <implementation>" (e.g. "onednn brg:avx512_core"), "winograd" or "im2col". */
static int l_conv_impl(lua_State *L) {
  static const char *const known[] = {"stride", "padding", "dilation", "groups", NULL};
  static const char *const kinds[] = {"forward", "input_grad", "weight_grad", NULL};
  nv_tensor *x = T(1), *w = T(2);
  nv_lua_checkopts(L, 3, "conv_impl", known);
  int kind = luaL_checkoption(L, 4, "forward", kinds);
  lua_settop(L, 3);
  lua_pushnil(L);
  lua_insert(L, 3);   /* the options at index 4, as conv_geometry reads them */
  int stride[2], pad[2], dil[2];
  int groups = conv_geometry(L, w, stride, pad, dil);
  if (x->ndim != 4 || w->ndim != 4) return luaL_error(L, "conv_impl: expected a 4-d input and weight");
  nv_conv2d_shape s = {.n = (int)x->size[0], .cin = (int)x->size[1], .h = (int)x->size[2], .w = (int)x->size[3],
                       .cout = (int)w->size[0], .kh = (int)w->size[2], .kw = (int)w->size[3], .sh = stride[0],
                       .sw = stride[1], .ph = pad[0], .pw = pad[1], .dh = dil[0], .dw = dil[1], .groups = groups};
  if (!nv_conv2d_init(&s)) return nv_lua_raise(L, "conv_impl");
  const char *impl = kind != 2 && nv_winograd_preferred(&s) ? NULL : nv_onednn_impl(&s, kind);
  if (impl) lua_pushfstring(L, "onednn %s", impl);
  else lua_pushstring(L, kind != 2 && nv_winograd_eligible(&s) ? "winograd" : "im2col");
  return 1;
}

/* storage_version(t): the count of in-place changes made from Lua to t's storage (caches of
 * values derived from t compare it) */
static int l_storage_version(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)T(1)->st->version);
  return 1;
}

/* max_pool2d(x, k [, {stride = k, padding, dilation, ceil_mode}]) */
static int l_max_pool2d(lua_State *L) {
  static const char *const known[] = {"stride", "padding", "dilation", "ceil_mode", NULL};
  nv_tensor *x = T(1);
  nv_lua_checkopts(L, 3, "max_pool2d", known);
  int k[2] = {0, 0}, stride[2], pad[2], dil[2];
  pair_at(L, 2, k, 0, 1, "max_pool2d", "kernel size");
  opt_pair(L, 3, "stride", stride, 0, 1, "max_pool2d");
  if (stride[0] == 0 && stride[1] == 0) { stride[0] = k[0]; stride[1] = k[1]; }
  opt_pair(L, 3, "padding", pad, 0, 0, "max_pool2d");
  opt_pair(L, 3, "dilation", dil, 1, 1, "max_pool2d");
  return PUSH(nv_max_pool2d(x, k, stride, pad, dil, nv_lua_optflag(L, 3, "ceil_mode", 0)), "max_pool2d");
}

/* avg_pool2d(x, k [, {stride = k, padding, ceil_mode, count_include_pad = true}]) */
static int l_avg_pool2d(lua_State *L) {
  static const char *const known[] = {"stride", "padding", "ceil_mode", "count_include_pad", NULL};
  nv_tensor *x = T(1);
  nv_lua_checkopts(L, 3, "avg_pool2d", known);
  int k[2] = {0, 0}, stride[2], pad[2];
  pair_at(L, 2, k, 0, 1, "avg_pool2d", "kernel size");
  opt_pair(L, 3, "stride", stride, 0, 1, "avg_pool2d");
  if (stride[0] == 0 && stride[1] == 0) { stride[0] = k[0]; stride[1] = k[1]; }
  opt_pair(L, 3, "padding", pad, 0, 0, "avg_pool2d");
  return PUSH(nv_avg_pool2d(x, k, stride, pad, nv_lua_optflag(L, 3, "ceil_mode", 0),
                            nv_lua_optflag(L, 3, "count_include_pad", 1)), "avg_pool2d");
}

static int l_adaptive_avg_pool2d(lua_State *L) {
  nv_tensor *x = T(1);
  int s[2] = {1, 1};
  pair_at(L, 2, s, 1, 1, "adaptive_avg_pool2d", "output size");
  return PUSH(nv_adaptive_avg_pool2d(x, s[0], s[1]), "adaptive_avg_pool2d");
}

/* batch_norm(x, running_mean, running_var, weight, bias [, {training, momentum = 0.1, eps = 1e-5}]) */
static int l_batch_norm(lua_State *L) {
  static const char *const known[] = {"training", "momentum", "eps", NULL};
  nv_tensor *x = T(1), *rm = opt_tensor(L, 2), *rv = opt_tensor(L, 3), *w = opt_tensor(L, 4), *b = opt_tensor(L, 5);
  nv_lua_checkopts(L, 6, "batch_norm", known);
  int training = nv_lua_optflag(L, 6, "training", 0);
  double momentum = opt_num(L, 6, "momentum", 0.1, "batch_norm"), eps = opt_num(L, 6, "eps", 1e-5, "batch_norm");
  return PUSH(nv_batch_norm(x, rm, rv, w, b, training, momentum, eps), "batch_norm");
}

/* layer_norm(x, weight|nil, bias|nil [, eps = 1e-5]): over the last dim, for inference (under
 * nv.no_grad or with nothing that requires grad); nn.LayerNorm composes it from differentiable
 * ops when a gradient is wanted */
static int l_layer_norm(lua_State *L) {
  nv_tensor *x = T(1), *w = opt_tensor(L, 2), *b = opt_tensor(L, 3);
  double eps = luaL_optnumber(L, 4, 1e-5);
  char a[200], c[200];
  if (x->ndim < 1 || x->size[x->ndim - 1] < 1)
    return luaL_error(L, "layer_norm: expected an input with a last dim, got %s", nv_shape_str(a, sizeof a, x->ndim, x->size));
  const int64_t d = x->size[x->ndim - 1];
  nv_tensor *vecs[2] = {w, b};
  const char *names[2] = {"weight", "bias"};
  for (int k = 0; k < 2; k++)
    if (vecs[k] && (nv_numel(vecs[k]) != d || !nv_is_contiguous(vecs[k])))
      return luaL_error(L, "layer_norm: %s %s does not match the last dim of input %s", names[k],
                        nv_shape_str(a, sizeof a, vecs[k]->ndim, vecs[k]->size), nv_shape_str(c, sizeof c, x->ndim, x->size));
  if (!(eps >= 0)) return luaL_error(L, "layer_norm: eps must be >= 0, got %f", eps);
  nv_tensor *in[3] = {x, w, b};
  if (nv_needs_grad(3, in))
    return luaL_error(L, "layer_norm: it is for inference; call it under nv.no_grad (nn.LayerNorm does)");
  nv_tensor *xc = nv_contiguous_data(x);
  nv_tensor *o = xc ? nv_empty_like(x) : NULL;
  if (o && nv_numel(o) > 0)
    nv_layer_norm_forward(nv_data(o), nv_data(xc), w ? nv_data(w) : NULL, b ? nv_data(b) : NULL, nv_numel(o) / d, d,
                          (float)eps);
  nv_release(xc);
  return PUSH(o, "layer_norm");
}

static int softmax(lua_State *L, int log) {
  nv_tensor *x = T(1);
  const char *fname = log ? "log_softmax" : "softmax";
  int d = 0;
  if (x->ndim > 0) {
    lua_Integer k = nv_lua_checkint(L, 2, -x->ndim, x->ndim, fname, "dim");
    lua_Integer r = k < 0 ? k + x->ndim : k - 1;
    if (k == 0 || r < 0 || r >= x->ndim)
      return luaL_error(L, "%s: dim %d is out of range for a tensor of %d dimensions", fname, (int)k, x->ndim);
    d = (int)r;
  }
  return PUSH(nv_softmax(x, d, log), fname);
}
static int l_softmax(lua_State *L) { return softmax(L, 0); }
static int l_log_softmax(lua_State *L) { return softmax(L, 1); }

/* interpolate(x, {size = {h, w} | scale_factor = s | {sh, sw}, mode = "nearest" | "bilinear",
 * align_corners, recompute_scale_factor}).  As PyTorch: with a scale factor the output is
 * floor(in * s) and coordinates map by 1/s (not by in/out), unless recompute_scale_factor,
 * which maps by the sizes; align_corners maps by the sizes anyway. */
static int l_interpolate(lua_State *L) {
  static const char *const known[] = {"size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", NULL};
  nv_tensor *x = T(1);
  check_table(L, 2, "interpolate", "options");
  nv_lua_checkopts(L, 2, "interpolate", known);
  if (x->ndim != 3 && x->ndim != 4) {
    char a[200];
    return luaL_error(L, "interpolate: expected input (N,C,H,W) or (C,H,W), got %s", nv_shape_str(a, sizeof a, x->ndim, x->size));
  }
  int size[2];
  float step[2] = {0, 0};
  lua_getfield(L, 2, "size");
  int has_size = !lua_isnil(L, -1);
  if (has_size) pair_at(L, lua_gettop(L), size, 0, 1, "interpolate", "size");
  lua_getfield(L, 2, "scale_factor");
  int sf_at = lua_gettop(L);
  if (has_size && !lua_isnil(L, sf_at)) return luaL_error(L, "interpolate: give size or scale_factor, not both");
  if (!has_size) {
    double sf[2];
    if (lua_type(L, sf_at) == LUA_TNUMBER) sf[0] = sf[1] = lua_tonumber(L, sf_at);
    else if (lua_istable(L, sf_at) && luaL_len(L, sf_at) == 2) {
      for (int k = 0; k < 2; k++) {
        lua_geti(L, sf_at, k + 1);
        if (lua_type(L, -1) != LUA_TNUMBER) return luaL_error(L, "interpolate: scale_factor {h, w} must hold numbers");
        sf[k] = lua_tonumber(L, -1);
        lua_pop(L, 1);
      }
    } else if (lua_isnil(L, sf_at)) return luaL_error(L, "interpolate: give size = {h, w} or scale_factor = s or {sh, sw}");
    else return luaL_error(L, "interpolate: scale_factor must be a number or {h, w}, got %s", luaL_typename(L, sf_at));
    int recompute = nv_lua_optflag(L, 2, "recompute_scale_factor", 0);
    for (int k = 0; k < 2; k++) {
      if (!(sf[k] > 0) || !isfinite(sf[k]))
        return luaL_error(L, "interpolate: scale_factor must be positive and finite, got %f", sf[k]);
      double o = floor((double)x->size[x->ndim - 2 + k] * sf[k]);
      if (!(o >= 1 && o <= INT32_MAX))
        return luaL_error(L, "interpolate: scale_factor %f gives output size %f along %s", sf[k], o, k ? "the width" : "the height");
      size[k] = (int)o;
      if (!recompute) step[k] = (float)(1.0 / sf[k]);
    }
  }
  lua_settop(L, 2);
  const char *mode = opt_str(L, 2, "mode", "nearest", "interpolate");
  int bilinear = strcmp(mode, "bilinear") == 0;
  if (!bilinear && strcmp(mode, "nearest") != 0)
    return luaL_error(L, "interpolate: mode must be \"nearest\" or \"bilinear\", got \"%s\"", mode);
  int ac = nv_lua_optflag(L, 2, "align_corners", 0);
  if (!bilinear && ac) return luaL_error(L, "interpolate: align_corners only applies to bilinear mode");
  return PUSH(nv_interpolate(x, size[0], size[1], bilinear, ac, step[0], step[1]), "interpolate");
}

/* pad(x, {left, right [, top, bottom]} [, {mode = "constant" | "reflect" | "replicate", value = 0}]) */
static int l_pad(lua_State *L) {
  static const char *const known[] = {"mode", "value", NULL};
  nv_tensor *x = T(1);
  check_table(L, 2, "pad", "padding");
  nv_lua_checkopts(L, 3, "pad", known);
  int n = (int)luaL_len(L, 2), pad[4] = {0, 0, 0, 0};
  if (n != 2 && n != 4) return luaL_error(L, "pad: expected {left, right} or {left, right, top, bottom}, got %d numbers", n);
  for (int k = 0; k < n; k++) {
    lua_geti(L, 2, k + 1);
    pad[k] = (int)nv_lua_checkint(L, lua_gettop(L), 0, INT32_MAX, "pad", "padding");
    lua_pop(L, 1);
  }
  int mode = NV_PAD_CONSTANT;
  const char *m = opt_str(L, 3, "mode", "constant", "pad");
  if (!strcmp(m, "reflect")) mode = NV_PAD_REFLECT;
  else if (!strcmp(m, "replicate")) mode = NV_PAD_REPLICATE;
  else if (strcmp(m, "constant")) return luaL_error(L, "pad: mode must be \"constant\", \"reflect\" or \"replicate\", got \"%s\"", m);
  return PUSH(nv_pad(x, pad, n, mode, (float)opt_num(L, 3, "value", 0, "pad")), "pad");
}

/* rotate(x, degrees [, scale]): (..., H, W) rotated counter-clockwise about the centre */
static int l_rotate(lua_State *L) {
  nv_tensor *x = T(1);
  if (lua_type(L, 2) != LUA_TNUMBER) return luaL_error(L, "rotate: degrees must be a number, got %s", luaL_typename(L, 2));
  double deg = lua_tonumber(L, 2), scale = luaL_optnumber(L, 3, 1.0);
  return PUSH(nv_rotate(x, deg * 3.14159265358979323846 / 180.0, scale), "rotate");
}

/* eigh(a) -> values (n) ascending, vectors (n,n) with eigenvector k in column k; a symmetric */
static int l_eigh(lua_State *L) {
  nv_tensor *a = T(1);
  if (a->ndim != 2 || a->size[0] != a->size[1]) {
    char buf[64];
    return luaL_error(L, "eigh: expected a square matrix (n,n), got %s", nv_shape_str(buf, sizeof buf, a->ndim, a->size));
  }
  if (a->size[0] > 16384) return luaL_error(L, "eigh: a %dx%d matrix is too large (at most 16384)", (int)a->size[0], (int)a->size[0]);
  int n = (int)a->size[0];
  int64_t vs[1] = {n}, ms[2] = {n, n};
  nv_tensor *c = nv_contiguous_data(a);
  nv_tensor *w = c ? nv_empty(1, vs) : NULL, *v = w ? nv_empty(2, ms) : NULL;
  if (!v || !nv_eigh(n, nv_data(c), nv_data(w), nv_data(v))) {
    nv_release(c); nv_release(w); nv_release(v);
    return nv_lua_raise(L, "eigh");
  }
  nv_release(c);
  nv_lua_pushtensor(L, w, "eigh");
  nv_lua_pushtensor(L, v, "eigh");
  return 2;
}

static const luaL_Reg functions[] = {
  {"rotate", l_rotate}, {"eigh", l_eigh}, {"storage_version", l_storage_version},
  {"conv2d", l_conv2d}, {"conv_impl", l_conv_impl}, {"max_pool2d", l_max_pool2d}, {"avg_pool2d", l_avg_pool2d},
  {"adaptive_avg_pool2d", l_adaptive_avg_pool2d}, {"batch_norm", l_batch_norm}, {"layer_norm", l_layer_norm},
  {"softmax", l_softmax}, {"log_softmax", l_log_softmax}, {"interpolate", l_interpolate},
  {"pad", l_pad},
  {NULL, NULL}
};

void nv_lua_open_nn(lua_State *L) { luaL_setfuncs(L, functions, 0); }

/*
 * lua_draw.c — binding of draw.c (Cairo).  A figure is drawn from a list of operations that
 * lua/nnvis/draw/canvas.lua records, replayed here on one surface:
 *   core.draw_render(kind, w, h, scale, ops) -> (3,H,W) tensor ("raster") or the file's
 *     bytes ("svg", "pdf"); w, h in points, ops a list of
 *       {"rect", x, y, w, h, rgba, lw}          lw nil or 0 fills
 *       {"path", {x1, y1, ...}, rgba, lw, closed, dash}
 *       {"circle", x, y, r, rgba, lw}
 *       {"text", s, x, y, size, rgba, ax, ay, angle, bold, mono}
 *       {"image", img, x, y, w, h, nearest, alpha, over, over_alpha}
 *   core.text_extents(s, size [, bold [, mono]]) -> width, ascent, descent (points)
 *   core.colormap_apply(map, lut) -> (3,H,W): map (H,W) in [0,1] through an (n,3) table
 * Coordinates are points from the top-left corner (0-based: they are lengths, not indices).
 */
#include <stdlib.h>
#include <string.h>

#include "draw/draw.h"
#include "lua/lua_nv.h"

#define DRAW_MT "nnvis.Draw"

static int draw_gc(lua_State *L) {
  nv_draw **p = luaL_checkudata(L, 1, DRAW_MT);
  nv_draw_free(*p);
  *p = NULL;
  return 0;
}

static double field(lua_State *L, int t, int k, double def) {
  double v = def;
  if (lua_geti(L, t, k) != LUA_TNIL) v = nv_lua_checknum(L, -1, "draw_render", "an operation's number");
  lua_pop(L, 1);
  return v;
}

static void color(lua_State *L, nv_draw *d, int t, int k) {
  double c[4] = { 0, 0, 0, 1 };
  if (lua_geti(L, t, k) == LUA_TTABLE) {
    int ct = lua_gettop(L);
    for (int i = 0; i < 4; i++) c[i] = field(L, ct, i + 1, c[i]);
  }
  lua_pop(L, 1);
  nv_draw_color(d, c[0], c[1], c[2], c[3]);
}

static void path(lua_State *L, nv_draw *d, int t) {
  if (lua_geti(L, t, 2) != LUA_TTABLE) luaL_error(L, "draw_render: a path needs a list of coordinates");
  int pt = lua_gettop(L);
  int64_t n = (int64_t)luaL_len(L, pt) / 2;
  double *xy = lua_newuserdatauv(L, (size_t)(n ? n : 1) * 2 * sizeof *xy, 0);   /* the GC frees it */
  for (int64_t i = 0; i < 2 * n; i++) xy[i] = field(L, pt, (int)i + 1, 0);
  color(L, d, t, 3);
  lua_geti(L, t, 5);
  int closed = lua_toboolean(L, -1);
  lua_pop(L, 1);
  nv_draw_path(d, xy, n, closed, field(L, t, 4, 0), field(L, t, 6, 0));
  lua_pop(L, 2);
}

static void one(lua_State *L, nv_draw *d, int t) {
  lua_geti(L, t, 1);
  const char *op = luaL_checkstring(L, -1);
  lua_pop(L, 1);
  if (!strcmp(op, "rect")) {
    color(L, d, t, 6);
    nv_draw_rect(d, field(L, t, 2, 0), field(L, t, 3, 0), field(L, t, 4, 0), field(L, t, 5, 0), field(L, t, 7, 0));
  } else if (!strcmp(op, "path")) path(L, d, t);
  else if (!strcmp(op, "circle")) {
    color(L, d, t, 5);
    nv_draw_circle(d, field(L, t, 2, 0), field(L, t, 3, 0), field(L, t, 4, 1), field(L, t, 6, 0));
  } else if (!strcmp(op, "text")) {
    lua_geti(L, t, 2);
    const char *s = luaL_checkstring(L, -1);
    color(L, d, t, 6);
    lua_geti(L, t, 10);
    lua_geti(L, t, 11);
    int flags = (lua_toboolean(L, -2) ? NV_FONT_BOLD : 0) | (lua_toboolean(L, -1) ? NV_FONT_MONO : 0);
    lua_pop(L, 2);
    nv_draw_text(d, s, field(L, t, 3, 0), field(L, t, 4, 0), field(L, t, 5, 10), flags, field(L, t, 7, 0),
                 field(L, t, 8, 0), field(L, t, 9, 0));
    lua_pop(L, 1);
  } else if (!strcmp(op, "image")) {
    lua_geti(L, t, 2);
    nv_tensor *img = nv_lua_totensor(L, -1);
    if (!img) luaL_error(L, "draw_render: an image operation needs a tensor");
    lua_geti(L, t, 7);
    int nearest = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_geti(L, t, 9);
    nv_tensor *over = lua_isnil(L, -1) ? NULL : nv_lua_totensor(L, -1);
    if (!over && !lua_isnil(L, -1)) luaL_error(L, "draw_render: an image's overlay must be a tensor");
    if (!nv_draw_image(d, img, field(L, t, 3, 0), field(L, t, 4, 0), field(L, t, 5, 1), field(L, t, 6, 1), nearest,
                       field(L, t, 8, 1), over, field(L, t, 10, 0.5)))
      nv_lua_raise(L, "draw_render");
    lua_pop(L, 2);
  } else luaL_error(L, "draw_render: unknown operation '%s'", op);
}

static int l_draw_render(lua_State *L) {
  static const char *const kinds[] = { "raster", "svg", "pdf", NULL };
  int kind = luaL_checkoption(L, 1, NULL, kinds);
  double w = nv_lua_checknum(L, 2, "draw_render", "width"), h = nv_lua_checknum(L, 3, "draw_render", "height");
  double scale = luaL_optnumber(L, 4, 1);
  luaL_checktype(L, 5, LUA_TTABLE);
  nv_draw **p = lua_newuserdatauv(L, sizeof *p, 0);   /* owns the surface until the end, even on errors */
  *p = NULL;
  luaL_setmetatable(L, DRAW_MT);
  int ud = lua_gettop(L);
  if (!(*p = nv_draw_new(kind, w, h, scale))) return nv_lua_raise(L, "draw_render");
  lua_Integer n = luaL_len(L, 5);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_geti(L, 5, i) != LUA_TTABLE) luaL_error(L, "draw_render: operation %d is no table", (int)i);
    one(L, *p, lua_gettop(L));
    lua_settop(L, ud);
  }
  if (kind == NV_DRAW_RASTER) {
    nv_tensor *t = nv_draw_tensor(*p);
    nv_draw_free(*p), *p = NULL;
    nv_lua_pushtensor(L, t, "draw_render");
    return 1;
  }
  char *bytes;
  size_t len;
  if (!nv_draw_finish(*p, &bytes, &len)) return nv_lua_raise(L, "draw_render");
  nv_draw_free(*p), *p = NULL;
  lua_pushlstring(L, bytes, len);   /* may raise on memory: bytes is freed first below */
  free(bytes);
  return 1;
}

static int l_text_extents(lua_State *L) {
  const char *s = luaL_checkstring(L, 1);
  double size = nv_lua_checknum(L, 2, "text_extents", "size");
  /* a NaN, infinite or huge size would leave Cairo's measuring context in an error state */
  if (!(size > 0 && size <= 1e4)) return luaL_error(L, "text_extents: size must be in (0, 10000] points, got %f", size);
  double w, a, d;
  nv_draw_text_extents(s, size, (lua_toboolean(L, 3) ? NV_FONT_BOLD : 0) | (lua_toboolean(L, 4) ? NV_FONT_MONO : 0), &w, &a, &d);
  lua_pushnumber(L, w), lua_pushnumber(L, a), lua_pushnumber(L, d);
  return 3;
}

/* core.colormap_apply(map (H,W), lut (n,3)) -> (3,H,W) */
static int l_colormap_apply(lua_State *L) {
  nv_tensor *m = nv_lua_checktensor(L, 1), *lut = nv_lua_checktensor(L, 2);
  nv_lua_pushtensor(L, nv_colormap(m, lut), "colormap");
  return 1;
}

static const luaL_Reg functions[] = {
  {"draw_render", l_draw_render}, {"text_extents", l_text_extents}, {"colormap_apply", l_colormap_apply}, {NULL, NULL}
};

static int draw_shutdown(lua_State *L) {
  nv_draw_shutdown();
  return 0;
}

void nv_lua_open_draw(lua_State *L) {
  if (luaL_newmetatable(L, DRAW_MT)) {
    lua_pushcfunction(L, draw_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  /* a sentinel in the registry whose __gc runs as the state closes (after every figure) */
  nv_lua_on_close(L, "nnvis.draw_sentinel", draw_shutdown);
  luaL_setfuncs(L, functions, 0);
}

/*
 * lua_draw.c — binding of draw.c: core.fill_rects(img, {x, y, w, h, ...}, {r, g, b [, a]} [, alpha])
 * and core.polyline(img, {x1, y1, x2, y2, ...}, rgb [, thickness [, alpha]]).  Coordinates
 * are 1-based pixels here, as everywhere in Lua.
 */
#include <math.h>
#include <stdlib.h>

#include "draw.h"
#include "lua_nv.h"

static void read_rgb(lua_State *L, int idx, float rgb[4]) {
  luaL_checktype(L, idx, LUA_TTABLE);
  for (int k = 0; k < 4; k++) {
    lua_geti(L, idx, k + 1);
    rgb[k] = lua_isnil(L, -1) ? (k == 3 ? 1.0f : k == 0 ? 0.0f : rgb[k - 1]) : (float)nv_lua_checknum(L, -1, "draw", "color component");
    lua_pop(L, 1);
  }
}

/* reads a flat Lua array of numbers into a userdata buffer (freed by the GC on error) */
static double *read_numbers(lua_State *L, int idx, int64_t *n, int multiple, const char *fname) {
  luaL_checktype(L, idx, LUA_TTABLE);
  *n = (int64_t)luaL_len(L, idx);
  if (*n % multiple) luaL_error(L, "%s: expected a multiple of %d numbers, got %d", fname, multiple, (int)*n);
  double *v = lua_newuserdatauv(L, (size_t)(*n ? *n : 1) * sizeof *v, 0);
  for (int64_t i = 0; i < *n; i++) {
    lua_geti(L, idx, i + 1);
    v[i] = nv_lua_checknum(L, -1, fname, "coordinate");
    lua_pop(L, 1);
  }
  return v;
}

/* the image at 1 (checked) and the color at 3, shared by every primitive */
static nv_tensor *draw_target(lua_State *L, const char *fname, float rgb[4]) {
  nv_tensor *img = nv_lua_checktensor(L, 1);
  if (!nv_draw_check(img)) nv_lua_raise(L, fname);
  rgb[0] = rgb[1] = rgb[2] = 0.0f, rgb[3] = 1.0f;
  read_rgb(L, 3, rgb);
  return img;
}

/* after drawing: an in-place change, as autograd counts them; returns the image */
static int drawn(lua_State *L, nv_tensor *img) {
  img->st->version++;
  lua_settop(L, 1);
  return 1;
}

static int l_fill_rects(lua_State *L) {
  float rgb[4];
  nv_tensor *img = draw_target(L, "fill_rects", rgb);
  float alpha = (float)luaL_optnumber(L, 4, 1.0);
  lua_settop(L, 4);
  int64_t n;
  double *v = read_numbers(L, 2, &n, 4, "fill_rects");
  int64_t *r = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *r, 0);
  for (int64_t i = 0; i < n; i++) {
    double x = v[i];
    if (!(x > -1e9 && x < 1e9)) x = -1e9;   /* NaN or huge: drawn off the image */
    r[i] = (int64_t)floor(x) - ((i % 4) < 2 ? 1 : 0);
  }
  nv_fill_rects(img, r, n / 4, rgb, alpha);
  return drawn(L, img);
}

static int l_polyline(lua_State *L) {
  float rgb[4];
  nv_tensor *img = draw_target(L, "polyline", rgb);
  int thick = (int)luaL_optinteger(L, 4, 1);
  float alpha = (float)luaL_optnumber(L, 5, 1.0);
  lua_settop(L, 5);
  int64_t n;
  double *v = read_numbers(L, 2, &n, 2, "polyline");
  for (int64_t i = 0; i < n; i++) v[i] -= 1.0;
  nv_draw_polyline(img, v, n / 2, rgb, thick, alpha);
  return drawn(L, img);
}

static const luaL_Reg functions[] = {
  {"fill_rects", l_fill_rects}, {"polyline", l_polyline}, {NULL, NULL}
};

void nv_lua_open_draw(lua_State *L) { luaL_setfuncs(L, functions, 0); }

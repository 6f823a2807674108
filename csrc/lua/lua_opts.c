/*
 * lua_opts.c — checking of option tables, shared by the C bindings and (as core.check_opts)
 * by every Lua function of nnvis that takes options: a key the function does not know raises
 * "fname: unknown option 'pading' (did you mean 'padding'?)", and a list where a table of
 * options was expected raises too, so a misspelled option never passes silently.
 */
#include <string.h>

#include "lua/lua_nv.h"

/* Levenshtein distance of a and b, capped: strings longer than 63 bytes count as far */
static int distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  if (n > 63 || m > 63) return 64;
  int row[64];
  for (size_t j = 0; j <= m; j++) row[j] = (int)j;
  for (size_t i = 1; i <= n; i++) {
    int diag = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= m; j++) {
      int up = row[j];
      int best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[m];
}

/* the known name closest to key, when it is close enough to be a likely misspelling */
static const char *suggest(const char *key, const char *const *known, int nknown) {
  const char *best = NULL;
  int bestd = 1 << 30;
  for (int i = 0; i < nknown; i++) {
    int d = distance(key, known[i]);
    if (d < bestd) bestd = d, best = known[i];
  }
  size_t len = strlen(key);
  int limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
  return bestd <= limit ? best : NULL;
}

static int unknown(lua_State *L, const char *fname, const char *key, const char *const *known, int nknown) {
  const char *s = suggest(key, known, nknown);
  if (s) return luaL_error(L, "%s: unknown option '%s' (did you mean '%s'?)", fname, key, s);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 0; i < nknown; i++) {
    if (i) luaL_addstring(&b, ", ");
    luaL_addstring(&b, known[i]);
  }
  luaL_pushresult(&b);
  return luaL_error(L, "%s: unknown option '%s' (known: %s)", fname, key, lua_tostring(L, -1));
}

/* Checks the options at idx (nil/none passes) against known[0..nknown-1]. */
static void check(lua_State *L, int idx, const char *fname, const char *const *known, int nknown) {
  if (lua_isnoneornil(L, idx)) return;
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx)) {
    luaL_error(L, "%s: options must be a table of name = value, got %s", fname, luaL_typename(L, idx));
    return;
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      if (lua_isinteger(L, -1))
        luaL_error(L, "%s: options must be a table of name = value, got a list (element %I)", fname,
                   lua_tointeger(L, -1));
      luaL_error(L, "%s: option names must be strings, got a %s", fname, luaL_typename(L, -1));
    }
    const char *key = lua_tostring(L, -1);
    int found = 0;
    for (int i = 0; i < nknown && !found; i++) found = strcmp(key, known[i]) == 0;
    if (!found) unknown(L, fname, key, known, nknown);
  }
}

void nv_lua_checkopts(lua_State *L, int idx, const char *fname, const char *const known[]) {
  int n = 0;
  while (known[n]) n++;
  check(L, idx, fname, known, n);
}

/* core.check_opts(fname, opts, known): opts (nil, or a table of name = value) against the
 * list of names `known`; returns opts, or raises naming fname and the unknown key. */
static int l_check_opts(lua_State *L) {
  const char *fname = luaL_checkstring(L, 1);
  if (!lua_istable(L, 3)) return luaL_error(L, "check_opts: known must be a list of option names");
  int n = (int)luaL_len(L, 3);
  if (n > 256) return luaL_error(L, "check_opts: at most 256 known options");
  const char *known[256];
  for (int i = 0; i < n; i++) {
    lua_geti(L, 3, i + 1);
    known[i] = lua_tostring(L, -1);   /* the list keeps the strings alive */
    if (!known[i]) return luaL_error(L, "check_opts: known option %d is not a string", i + 1);
    lua_pop(L, 1);
  }
  check(L, 2, fname, known, n);
  lua_settop(L, 2);
  return 1;
}

void nv_lua_open_opts(lua_State *L) {
  lua_pushcfunction(L, l_check_opts);
  lua_setfield(L, -2, "check_opts");
}

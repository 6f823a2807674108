/*
 * lua_fetch.c — the Lua face of fetch.c: an HTTP(S) GET into a file, the SHA-256 of a file
 * and `mkdir -p`, for lua/nnvis/io/weights.lua's cache of torchvision's weight files.
 *
 * Failures of the outside world (no network, HTTP 404, a full disk) return nil, message;
 * misuse raises.  The Lua progress function runs inside libcurl's callback, so it is called
 * under lua_pcall: an error there (or an interrupt, which Lua's hook raises at the call)
 * aborts the transfer, and is raised again once libcurl has let go of everything.
 */
#include "io/fetch.h"
#include "lua/lua_nv.h"

#include <stdint.h>

/* what the progress callback needs: the Lua state and the stack slot of the function */
typedef struct lua_progress {
  lua_State *L;
  int fn;    /* stack index of the Lua progress function, 0 for none */
  int err;   /* stack index of the error it raised, 0 while none */
} lua_progress;

static int noop(lua_State *L) { (void)L; return 0; }

static int call_progress(void *ud, int64_t done, int64_t total) {
  lua_progress *p = ud;
  lua_State *L = p->L;
  if (p->err) return 1;
  if (!lua_checkstack(L, 4)) return 0;   /* no room to call: skip this report */
  /* without a progress function a no-op still runs, so a pending interrupt (Ctrl-C in lua's
   * REPL sets a hook that fires at the next call) stops the download instead of waiting */
  if (p->fn) lua_pushvalue(L, p->fn);
  else lua_pushcfunction(L, noop);
  lua_pushinteger(L, (lua_Integer)done);
  if (total > 0) lua_pushinteger(L, (lua_Integer)total);
  else lua_pushnil(L);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    p->err = lua_gettop(L);   /* the error object stays on the stack until http_get raises it */
    return 1;
  }
  return 0;
}

/* http_get(url, path [, {progress = fn(done, total), max_bytes = n}]) -> true | nil, msg:
 * downloads url (http or https) into a new file at path; total is nil while unknown.  An
 * error in progress aborts the download and is raised again; nothing is left at path then. */
static int l_http_get(lua_State *L) {
  static const char *const known[] = {"progress", "max_bytes", NULL};
  const char *url = luaL_checkstring(L, 1);
  const char *path = luaL_checkstring(L, 2);
  nv_lua_checkopts(L, 3, "http_get", known);
  nv_fetch_opts o = {0};
  lua_progress p = {L, 0, 0};
  if (lua_istable(L, 3)) {
    if (lua_getfield(L, 3, "max_bytes") != LUA_TNIL)
      o.max_bytes = (int64_t)nv_lua_checkint(L, -1, 1, INT64_MAX, "http_get", "max_bytes");
    lua_pop(L, 1);
    int t = lua_getfield(L, 3, "progress");
    if (t != LUA_TNIL && t != LUA_TFUNCTION)
      return luaL_error(L, "http_get: progress must be a function, got %s", luaL_typename(L, -1));
    if (t == LUA_TFUNCTION) p.fn = lua_gettop(L);   /* stays on the stack for the transfer */
    else lua_pop(L, 1);
  }
  o.progress = call_progress;
  o.ud = &p;
  int ok = nv_http_get(url, path, &o);
  if (p.err) {   /* libcurl has returned and cleaned up: raising is safe now */
    lua_pushvalue(L, p.err);
    return lua_error(L);
  }
  if (!ok) return nv_lua_fail(L, "%s", nv_last_error());
  lua_pushboolean(L, 1);
  return 1;
}

/* sha256_file(path) -> 64 lowercase hex digits | nil, msg */
static int l_sha256_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char hex[NV_SHA256_HEX];
  if (!nv_sha256_file(path, hex)) return nv_lua_fail(L, "%s", nv_last_error());
  lua_pushstring(L, hex);
  return 1;
}

/* mkdirs(path) -> true | nil, msg: the folder and its missing parents, as `mkdir -p` */
static int l_mkdirs(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (!nv_mkdirs(path)) return nv_lua_fail(L, "%s", nv_last_error());
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg functions[] = {
  {"http_get", l_http_get}, {"sha256_file", l_sha256_file}, {"mkdirs", l_mkdirs}, {NULL, NULL}
};

void nv_lua_open_fetch(lua_State *L) { luaL_setfuncs(L, functions, 0); }

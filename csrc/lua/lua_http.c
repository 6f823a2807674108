/* lua_http.c — nnvis.http, the board's server (docs/board.md), built as its own module
 * (build/nnvis/http.so) so the core links no HTTP library.
 *
 *   local http = require "nnvis.http"
 *   local srv = assert(http.serve{host = "127.0.0.1", port = 0, handler = "nnvis.ui.board.server",
 *                                 config = "{logdirs = {'/tmp/logs'}}"})
 *   print(srv.url); srv:close()
 *
 * serve() starts libmicrohttpd with ONE internal polling thread.  That thread owns a Lua state
 * of its own (luaL_newstate, the standard libraries, the caller's package.path and cpath),
 * which requires the handler module, calls handler.init(config) once, then
 * handler.handle(method, path, query) per request -> status, headers, body.  The caller's state
 * is never touched from the thread, so the server answers while the caller is busy.  Paths and
 * query values reach the handler as sent (still %-encoded: MHD's unescaping is turned off so
 * that the handler sees %2e%2e and %00 and can refuse them).  The headers in handler.headers
 * (a table, optional) are added to every response, including the 405 and 500 made here.
 *
 * The module also holds what the handler's state needs and plain Lua lacks: listdir, stat,
 * realpath, now, sleep, and scan (TFRecord event files, csrc/io/tfrecord.h).
 */
#define _GNU_SOURCE             /* realpath, nanosleep, getaddrinfo, clock_gettime */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <microhttpd.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "io/tfrecord.h"

#define SERVER_MT "nnvis.http.server"
#define SCAN_MT "nnvis.http.scan"

/* ================================ files ================================================ */

/* the DIR of a listdir lives in a userdata, so a memory error while naming entries closes it */
#define DIR_MT "nnvis.http.dir"
static int dir_gc(lua_State *L) {
  DIR **d = luaL_checkudata(L, 1, DIR_MT);
  if (*d) closedir(*d);
  *d = NULL;
  return 0;
}

/* listdir(path) -> {names...} (no . and .., at most 100,000), or nil, message */
static int l_listdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  DIR **d = lua_newuserdatauv(L, sizeof *d, 0);
  *d = NULL;
  luaL_setmetatable(L, DIR_MT);
  *d = opendir(path);
  if (!*d) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  lua_newtable(L);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(*d)) != NULL && n < 100000) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  closedir(*d);
  *d = NULL;
  return 1;
}

/* stat(path [, nofollow]) -> {type = "file"|"directory"|"link"|"other", size, mtime}, or nil, message */
static int l_stat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  int r = lua_toboolean(L, 2) ? lstat(path, &st) : stat(path, &st);
  if (r != 0) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  lua_createtable(L, 0, 3);
  lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : S_ISLNK(st.st_mode) ? "link" : "other");
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)st.st_size);
  lua_setfield(L, -2, "size");
  lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9);
  lua_setfield(L, -2, "mtime");
  return 1;
}

/* realpath(path) -> the absolute path with symlinks resolved, or nil, message */
static int l_realpath(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char buf[PATH_MAX];
  if (!realpath(path, buf)) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  lua_pushstring(L, buf);
  return 1;
}

/* now() -> seconds on a monotonic clock */
static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec * 1e-9);
  return 1;
}

/* sleep(seconds) -> true, or false when a signal cut it short (Ctrl-C: Lua's hook then raises) */
static int l_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s >= 0 && s <= 86400, 1, "out of range");
  struct timespec ts = { (time_t)s, (long)((s - (lua_Number)(time_t)s) * 1e9) };
  lua_pushboolean(L, nanosleep(&ts, NULL) == 0);
  return 1;
}

/* ================================ scan ================================================= */
/* The scalars of a scan are gathered per tag in C arrays (one hash lookup per value, no Lua
 * call) and handed over as Lua columns at the end.  All of it hangs off a userdata on the
 * stack, so a Lua error (memory) while building the result frees it through __gc. */
typedef struct tagcol {
  char *tag;
  size_t tag_len, n, cap;
  int64_t *step;
  double *wall, *value;
  int sorted;               /* steps never went down */
} tagcol;

typedef struct scan_state {
  nv_tfrecord_reader r;
  tagcol *cols;
  size_t ncols, capcols;
  size_t *slots;            /* open addressing: index + 1 into cols, 0 empty */
  size_t nslots;
} scan_state;

static int scan_gc(lua_State *L) {
  scan_state *s = luaL_checkudata(L, 1, SCAN_MT);
  nv_tfrecord_close(&s->r);
  for (size_t i = 0; i < s->ncols; i++) {
    free(s->cols[i].tag);
    free(s->cols[i].step);
    free(s->cols[i].wall);
    free(s->cols[i].value);
  }
  free(s->cols);
  free(s->slots);
  s->cols = NULL;
  s->slots = NULL;
  s->ncols = s->capcols = s->nslots = 0;
  return 0;
}

static size_t hash(const char *p, size_t n) {
  size_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
  return h;
}

/* the column of a tag, made on first sight; NULL when memory runs out */
static tagcol *column(scan_state *s, const char *tag, size_t len) {
  if (2 * (s->ncols + 1) > s->nslots) {                 /* keep the table at most half full */
    size_t ns = s->nslots ? 2 * s->nslots : 64;
    size_t *nt = calloc(ns, sizeof *nt);
    if (!nt) return NULL;
    for (size_t i = 0; i < s->ncols; i++) {
      size_t h = hash(s->cols[i].tag, s->cols[i].tag_len) & (ns - 1);
      while (nt[h]) h = (h + 1) & (ns - 1);
      nt[h] = i + 1;
    }
    free(s->slots);
    s->slots = nt;
    s->nslots = ns;
  }
  size_t h = hash(tag, len) & (s->nslots - 1);
  while (s->slots[h]) {
    tagcol *c = &s->cols[s->slots[h] - 1];
    if (c->tag_len == len && memcmp(c->tag, tag, len) == 0) return c;
    h = (h + 1) & (s->nslots - 1);
  }
  if (s->ncols == s->capcols) {
    size_t nc = s->capcols ? 2 * s->capcols : 16;
    tagcol *ncols = realloc(s->cols, nc * sizeof *ncols);
    if (!ncols) return NULL;
    s->cols = ncols;
    s->capcols = nc;
  }
  tagcol *c = &s->cols[s->ncols];
  memset(c, 0, sizeof *c);
  c->tag = malloc(len + 1);
  if (!c->tag) return NULL;
  memcpy(c->tag, tag, len);
  c->tag[len] = 0;
  c->tag_len = len;
  c->sorted = 1;
  s->slots[h] = ++s->ncols;
  return c;
}

static int push_point(tagcol *c, int64_t step, double wall, double value) {
  if (c->n == c->cap) {
    size_t nc = c->cap ? 2 * c->cap : 64;
    int64_t *ns = realloc(c->step, nc * sizeof *ns);
    if (!ns) return 0;
    c->step = ns;
    double *nw = realloc(c->wall, nc * sizeof *nw);
    if (!nw) return 0;
    c->wall = nw;
    double *nv = realloc(c->value, nc * sizeof *nv);
    if (!nv) return 0;
    c->value = nv;
    c->cap = nc;
  }
  if (c->n && step < c->step[c->n - 1]) c->sorted = 0;
  c->step[c->n] = step;
  c->wall[c->n] = wall;
  c->value[c->n] = value;
  c->n++;
  return 1;
}

static void add_warning(lua_State *L, int warnings, const char *msg) {
  lua_pushstring(L, msg);
  lua_rawseti(L, warnings, (lua_Integer)lua_rawlen(L, warnings) + 1);
}

/* scan(path, offset [, max_records]) -> {offset, records, scalars = {tag = {step, wall, value,
 * sorted}}, events = {{step, wall, offset, data}}, warnings = {...}}, or nil, message.
 * events are the records that hold more than scalars (their bytes, for Lua to decode);
 * offset is where the next scan resumes (a record cut at the end is read again then). */
static int l_scan(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer off = luaL_optinteger(L, 2, 0);
  lua_Integer max = luaL_optinteger(L, 3, LUA_MAXINTEGER);
  luaL_argcheck(L, off >= 0, 2, "negative offset");
  luaL_argcheck(L, max >= 1, 3, "must be positive");
  lua_settop(L, 3);                                           /* fixed indices below */
  scan_state *s = lua_newuserdatauv(L, sizeof *s, 0);        /* index 4 */
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, SCAN_MT);
  if (nv_tfrecord_open(&s->r, path, (uint64_t)off) != 0) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  lua_newtable(L);                                            /* 5: result */
  lua_newtable(L);                                            /* 6: events */
  lua_newtable(L);                                            /* 7: warnings */
  lua_Integer records = 0, nevents = 0;
  nv_tfrecord_record rec;
  nv_tf_event ev;
  char msg[200];
  int k;
  while (records < max && (k = nv_tfrecord_next(&s->r, &rec)) != NV_TFR_END) {
    if (k == NV_TFR_WARNING) { add_warning(L, 7, rec.message); continue; }
    records++;
    int d = nv_tf_event_decode(rec.data, rec.len, &ev);
    if (d == NV_TF_MALFORMED) {
      snprintf(msg, sizeof msg, "record at byte %llu is not an Event, skipped", (unsigned long long)rec.offset);
      add_warning(L, 7, msg);
    } else if (d == NV_TF_SIMPLE) {
      for (size_t i = 0; i < ev.n; i++) {
        tagcol *c = column(s, ev.scalars[i].tag, ev.scalars[i].tag_len);
        if (!c || !push_point(c, ev.step, ev.wall, ev.scalars[i].value)) return luaL_error(L, "scan: out of memory");
      }
    } else {
      lua_createtable(L, 0, 4);
      lua_pushinteger(L, (lua_Integer)ev.step);
      lua_setfield(L, -2, "step");
      lua_pushnumber(L, ev.wall);
      lua_setfield(L, -2, "wall");
      lua_pushinteger(L, (lua_Integer)rec.offset);
      lua_setfield(L, -2, "offset");
      lua_pushlstring(L, (const char *)rec.data, rec.len);
      lua_setfield(L, -2, "data");
      lua_rawseti(L, 6, ++nevents);
    }
  }
  lua_pushinteger(L, (lua_Integer)nv_tfrecord_offset(&s->r));
  lua_setfield(L, 5, "offset");
  lua_pushinteger(L, records);
  lua_setfield(L, 5, "records");
  lua_pushvalue(L, 6);
  lua_setfield(L, 5, "events");
  lua_pushvalue(L, 7);
  lua_setfield(L, 5, "warnings");
  lua_createtable(L, 0, (int)(s->ncols < INT_MAX ? s->ncols : 0));
  for (size_t i = 0; i < s->ncols; i++) {
    tagcol *c = &s->cols[i];
    int n = c->n < INT_MAX ? (int)c->n : INT_MAX;
    lua_createtable(L, 0, 4);
    lua_createtable(L, n, 0);
    for (int j = 0; j < n; j++) { lua_pushinteger(L, (lua_Integer)c->step[j]); lua_rawseti(L, -2, j + 1); }
    lua_setfield(L, -2, "step");
    lua_createtable(L, n, 0);
    for (int j = 0; j < n; j++) { lua_pushnumber(L, c->wall[j]); lua_rawseti(L, -2, j + 1); }
    lua_setfield(L, -2, "wall");
    lua_createtable(L, n, 0);
    for (int j = 0; j < n; j++) { lua_pushnumber(L, c->value[j]); lua_rawseti(L, -2, j + 1); }
    lua_setfield(L, -2, "value");
    lua_pushboolean(L, c->sorted);
    lua_setfield(L, -2, "sorted");
    lua_pushlstring(L, c->tag, c->tag_len);
    lua_insert(L, -2);
    lua_rawset(L, -3);
  }
  lua_setfield(L, 5, "scalars");
  lua_pushvalue(L, 5);
  return 1;
}

/* crc32c(s) -> the CRC-32C of a string (for specs that build records by hand) */
static int l_crc32c(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushinteger(L, nv_crc32c(0, s, n));
  return 1;
}

/* ================================ the server =========================================== */
typedef struct server {
  struct MHD_Daemon *d;     /* NULL once closed */
  lua_State *S;             /* the thread's own state; NULL once closed */
  int port;
  char url[300];
  char log[256];            /* MHD's last message (why it could not start) */
} server;

static void mhd_logger(void *cls, const char *fmt, va_list ap) {
  server *s = cls;
  vsnprintf(s->log, sizeof s->log, fmt, ap);
  size_t n = strlen(s->log);
  while (n && (s->log[n - 1] == '\n' || s->log[n - 1] == '.')) s->log[--n] = 0;
}

/* the path and query values reach the handler as sent: it decodes them itself */
static size_t unescape_none(void *cls, struct MHD_Connection *c, char *uri) { return strlen(uri); }

static enum MHD_Result add_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
  lua_State *S = cls;
  lua_pushstring(S, key);
  lua_pushstring(S, value ? value : "");
  lua_rawset(S, -3);
  return MHD_YES;
}

/* the message handler of a request: the error with a traceback, for the 500's body */
static int traceback(lua_State *S) {
  const char *msg = lua_tostring(S, 1);
  luaL_traceback(S, S, msg ? msg : "(error object is not a string)", 1);
  return 1;
}

/* runs under lua_pcall in the thread's state: handler.handle(method, path, query) */
static int call_handler(lua_State *S) {
  struct MHD_Connection *c = lua_touserdata(S, 1);
  const char *method = lua_tostring(S, 2);
  const char *url = lua_tostring(S, 3);
  lua_getfield(S, LUA_REGISTRYINDEX, "nnvis.http.handler");
  lua_getfield(S, -1, "handle");
  lua_pushstring(S, method);
  lua_pushstring(S, url);
  lua_newtable(S);
  MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_query, S);
  lua_call(S, 3, 3);
  return 3;
}

/* adds handler.headers (every response carries them: CSP, nosniff) */
static void add_default_headers(lua_State *S, struct MHD_Response *r) {
  lua_getfield(S, LUA_REGISTRYINDEX, "nnvis.http.handler");
  if (lua_istable(S, -1)) {
    lua_getfield(S, -1, "headers");
    if (lua_istable(S, -1)) {
      lua_pushnil(S);
      while (lua_next(S, -2)) {
        if (lua_type(S, -2) == LUA_TSTRING && lua_type(S, -1) == LUA_TSTRING &&
            !MHD_get_response_header(r, lua_tostring(S, -2)))
          MHD_add_response_header(r, lua_tostring(S, -2), lua_tostring(S, -1));
        lua_pop(S, 1);
      }
    }
    lua_pop(S, 1);
  }
  lua_pop(S, 1);
}

static enum MHD_Result reply_text(server *s, struct MHD_Connection *c, unsigned status, const char *text) {
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
  if (status == 405) MHD_add_response_header(r, "Allow", "GET, HEAD");
  add_default_headers(s->S, r);
  enum MHD_Result ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **con_cls) {
  server *s = cls;
  lua_State *S = s->S;
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) return reply_text(s, c, 405, "method not allowed\n");
  lua_settop(S, 0);
  lua_pushcfunction(S, traceback);
  lua_pushcfunction(S, call_handler);
  lua_pushlightuserdata(S, c);
  lua_pushstring(S, method);
  lua_pushstring(S, url);
  if (lua_pcall(S, 3, 3, 1) != LUA_OK) {
    const char *msg = lua_tostring(S, -1);
    char buf[4096];
    snprintf(buf, sizeof buf, "handler error: %s\n", msg ? msg : "(not a string)");
    lua_settop(S, 0);
    return reply_text(s, c, 500, buf);
  }
  lua_remove(S, 1);                          /* the message handler */
  lua_Integer status = lua_tointeger(S, 1);
  size_t blen = 0;
  const char *body = lua_type(S, 3) == LUA_TSTRING ? lua_tolstring(S, 3, &blen) : NULL;
  if (status < 100 || status > 599 || !body || !lua_istable(S, 2)) {
    lua_settop(S, 0);
    return reply_text(s, c, 500, "handler error: handle must return status, headers, body\n");
  }
  struct MHD_Response *r = MHD_create_response_from_buffer(blen, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!r) { lua_settop(S, 0); return MHD_NO; }
  lua_pushnil(S);
  while (lua_next(S, 2)) {
    if (lua_type(S, -2) == LUA_TSTRING && lua_type(S, -1) == LUA_TSTRING)
      MHD_add_response_header(r, lua_tostring(S, -2), lua_tostring(S, -1));   /* MHD refuses CR/LF */
    lua_pop(S, 1);
  }
  add_default_headers(S, r);
  enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
  MHD_destroy_response(r);
  lua_settop(S, 0);
  return ok;
}

/* stops the thread (joining it), then closes its state; idempotent */
static void server_close(server *s) {
  if (s->d) MHD_stop_daemon(s->d);
  s->d = NULL;
  if (s->S) lua_close(s->S);
  s->S = NULL;
}

static int l_server_close(lua_State *L) {
  server_close(luaL_checkudata(L, 1, SERVER_MT));
  return 0;
}

static int l_server_index(lua_State *L) {
  server *s = luaL_checkudata(L, 1, SERVER_MT);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "url") == 0) { lua_pushstring(L, s->url); return 1; }
  if (strcmp(k, "port") == 0) { lua_pushinteger(L, s->port); return 1; }
  if (strcmp(k, "closed") == 0) { lua_pushboolean(L, s->d == NULL); return 1; }
  if (strcmp(k, "close") == 0) { lua_pushcfunction(L, l_server_close); return 1; }
  return 0;
}

static int l_server_tostring(lua_State *L) {
  server *s = luaL_checkudata(L, 1, SERVER_MT);
  lua_pushfstring(L, "[nnvis.http server %s%s]", s->url, s->d ? "" : " (closed)");
  return 1;
}

/* in the new state: require the handler, keep it, call handler.init(config) */
static int init_handler(lua_State *S) {
  const char *handler = lua_tostring(S, 1);
  lua_getglobal(S, "require");
  lua_pushstring(S, handler);
  lua_call(S, 1, 1);
  if (!lua_istable(S, -1)) return luaL_error(S, "handler module '%s' is not a table", handler);
  lua_getfield(S, -1, "handle");
  if (!lua_isfunction(S, -1)) return luaL_error(S, "handler module '%s' has no handle function", handler);
  lua_pop(S, 1);
  lua_pushvalue(S, -1);
  lua_setfield(S, LUA_REGISTRYINDEX, "nnvis.http.handler");
  lua_getfield(S, -1, "init");
  if (lua_isfunction(S, -1)) {
    lua_pushvalue(S, 2);
    lua_call(S, 1, 0);
  }
  return 0;
}

static void copy_path(lua_State *L, lua_State *S, const char *field) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, field);
  const char *v = lua_tostring(L, -1);
  if (v) {
    lua_getglobal(S, "package");
    lua_pushstring(S, v);
    lua_setfield(S, -2, field);
    lua_pop(S, 1);
  }
  lua_pop(L, 2);
}

/* serve{host = "127.0.0.1", port = 0, handler = "module", config = ""} -> server, or nil, message */
static int l_serve(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "host");
  const char *host = luaL_optstring(L, -1, "127.0.0.1");
  lua_getfield(L, 1, "port");
  lua_Integer port = luaL_optinteger(L, -1, 0);
  lua_getfield(L, 1, "handler");
  const char *handler = lua_tostring(L, -1);
  lua_getfield(L, 1, "config");
  const char *config = luaL_optstring(L, -1, "");
  luaL_argcheck(L, port >= 0 && port <= 65535, 1, "port must be 0..65535");
  luaL_argcheck(L, handler != NULL, 1, "handler must be a module name");
  luaL_argcheck(L, strlen(host) < 256, 1, "host too long");

  struct addrinfo hints, *ai = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  char portstr[8];
  snprintf(portstr, sizeof portstr, "%d", (int)port);
  int g = getaddrinfo(host, portstr, &hints, &ai);
  if (g != 0 || !ai) {
    luaL_pushfail(L);
    lua_pushfstring(L, "cannot resolve host '%s': %s", host, gai_strerror(g));
    return 2;
  }
  struct sockaddr_storage addr;
  memset(&addr, 0, sizeof addr);
  memcpy(&addr, ai->ai_addr, ai->ai_addrlen <= sizeof addr ? ai->ai_addrlen : sizeof addr);
  int family = ai->ai_family;
  freeaddrinfo(ai);

  server *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, SERVER_MT);
  s->S = luaL_newstate();
  if (!s->S) return luaL_error(L, "serve: cannot create a Lua state");
  luaL_openlibs(s->S);
  copy_path(L, s->S, "path");
  copy_path(L, s->S, "cpath");
  lua_pushcfunction(s->S, init_handler);
  lua_pushstring(s->S, handler);
  lua_pushstring(s->S, config);
  if (lua_pcall(s->S, 2, 0, 0) != LUA_OK) {
    luaL_pushfail(L);
    lua_pushfstring(L, "handler %s: %s", handler, lua_tostring(s->S, -1));
    server_close(s);
    return 2;
  }
  lua_settop(s->S, 0);

  /* the thread inherits the signal mask: it must never take Ctrl-C from the caller's thread,
   * whose sleep the signal interrupts so that Lua's hook can raise there */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | (family == AF_INET6 ? MHD_USE_IPv6 : 0);
  s->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s,
                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                          MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s,
                          MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, NULL,
                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
                          MHD_OPTION_END);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!s->d) {
    luaL_pushfail(L);
    lua_pushfstring(L, "cannot listen on %s port %d: %s", host, (int)port, s->log[0] ? s->log : "libmicrohttpd failed to start");
    server_close(s);
    return 2;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info ? (int)info->port : (int)port;
  snprintf(s->url, sizeof s->url, family == AF_INET6 ? "http://[%s]:%d/" : "http://%s:%d/", host, s->port);
  return 1;
}

static const luaL_Reg server_meta[] = {
  { "__index", l_server_index },
  { "__gc", l_server_close },
#if LUA_VERSION_NUM >= 504
  { "__close", l_server_close },
#endif
  { "__tostring", l_server_tostring },
  { NULL, NULL },
};

static const luaL_Reg funcs[] = {
  { "serve", l_serve },
  { "listdir", l_listdir },
  { "stat", l_stat },
  { "realpath", l_realpath },
  { "now", l_now },
  { "sleep", l_sleep },
  { "scan", l_scan },
  { "crc32c", l_crc32c },
  { NULL, NULL },
};

int luaopen_nnvis_http(lua_State *L) {
  luaL_newmetatable(L, SERVER_MT);
  luaL_setfuncs(L, server_meta, 0);
  luaL_newmetatable(L, SCAN_MT);
  lua_pushcfunction(L, scan_gc);
  lua_setfield(L, -2, "__gc");
  luaL_newmetatable(L, DIR_MT);
  lua_pushcfunction(L, dir_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 3);
  luaL_newlib(L, funcs);
  return 1;
}

/*
 * lua_files.c — the Lua face of files.c, jpeg.c and zip.c: PNG and JPEG images, safetensors,
 * IDX, zip archives and tensors from raw storage bytes (for PyTorch checkpoints).
 *
 * Misuse (an argument of the wrong type, a tensor that cannot be an image) raises an error
 * naming the function; failures of the outside world (a missing file, corrupt data) return
 * nil, message.  Nothing malloc'd is held across a call that may raise: C-side results live
 * in a userdata with __gc until their tensors have been handed to Lua.
 */
#include "io/files.h"
#include "lua/lua_nv.h"

#include <string.h>

#define NV_SAFETENSORS_MT "nnvis.safetensors"   /* box around an nv_safetensors* being unpacked */
#define NV_ZIP_MT "nnvis.zip"                   /* box around an open nv_zip* */
/* Cap on one zip entry read whole into a Lua string, whatever the caller asks. */
#define ZIP_MAX_ENTRY ((lua_Integer)1 << 33)

static const char *const png_modes[] = {"native", "rgb", "gray", NULL};   /* = NV_PNG_* */

/* The image readers: from a path or from bytes in a string, with a mode name (png_modes). */
typedef nv_tensor *(*path_reader)(const char *path, int mode);
typedef nv_tensor *(*bytes_reader)(const unsigned char *buf, size_t len, int mode, const char *name);

static int read_path(lua_State *L, path_reader f, const char *fname) {
  const char *path = luaL_checkstring(L, 1);
  int mode = luaL_checkoption(L, 2, "native", png_modes);
  nv_tensor *t = f(path, mode);
  if (!t) return nv_lua_fail(L, "%s", nv_last_error());
  nv_lua_pushtensor(L, t, fname);
  return 1;
}

static int read_bytes(lua_State *L, bytes_reader f, const char *fname) {
  size_t len;
  const char *buf = luaL_checklstring(L, 1, &len);
  int mode = luaL_checkoption(L, 2, "native", png_modes);
  nv_tensor *t = f((const unsigned char *)buf, len, mode, fname);
  if (!t) return nv_lua_fail(L, "%s", nv_last_error());
  nv_lua_pushtensor(L, t, fname);
  return 1;
}

/* png_load(path [, mode]) -> (C,H,W) tensor | nil, msg */
static int l_png_load(lua_State *L) { return read_path(L, nv_png_load, "png_load"); }
/* png_load_bytes(str [, mode]) -> (C,H,W) tensor | nil, msg */
static int l_png_load_bytes(lua_State *L) { return read_bytes(L, nv_png_load_bytes, "png_load_bytes"); }
/* image_load(path [, mode]) -> (C,H,W) tensor | nil, msg: PNG or JPEG, by the first bytes */
static int l_image_load(lua_State *L) { return read_path(L, nv_image_load, "image_load"); }
/* jpeg_load_bytes(str [, mode]) -> (C,H,W) tensor | nil, msg */
static int l_jpeg_load_bytes(lua_State *L) { return read_bytes(L, nv_jpeg_load_bytes, "jpeg_load_bytes"); }

/* png_save(t, path) -> true | nil, msg; raises for a shape that is not an image */
static int l_png_save(lua_State *L) {
  nv_tensor *t = nv_lua_checktensor(L, 1);
  const char *path = luaL_checkstring(L, 2);
  if (!nv_png_check_shape(t)) return nv_lua_raise(L, "png_save");
  if (!nv_png_save(t, path)) return nv_lua_fail(L, "%s", nv_last_error());
  lua_pushboolean(L, 1);
  return 1;
}

/* png_encode(t) -> the PNG file's bytes as a string; raises for a shape that is not an image */
static int l_png_encode(lua_State *L) {
  nv_tensor *t = nv_lua_checktensor(L, 1);
  unsigned char *png = NULL;
  size_t len = 0;
  if (!nv_png_encode_tensor(t, &png, &len)) return nv_lua_raise(L, "png_encode");
  lua_pushlstring(L, (const char *)png, len);   /* raises only if Lua itself runs out of memory */
  nv_png_free(png);
  return 1;
}

static int st_box_gc(lua_State *L) {
  nv_safetensors **box = luaL_checkudata(L, 1, NV_SAFETENSORS_MT);
  nv_safetensors_free(*box);
  *box = NULL;
  return 0;
}

/* safetensors_load(path) -> {name = tensor}, {key = value} | nil, msg */
static int l_safetensors_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  nv_safetensors **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, NV_SAFETENSORS_MT);
  nv_safetensors *f = *box = nv_safetensors_load(path);
  if (!f) return nv_lua_fail(L, "%s", nv_last_error());
  lua_createtable(L, 0, f->n);
  for (int k = 0; k < f->n; k++) {
    lua_pushlstring(L, f->names[k].s, f->names[k].len);
    nv_lua_pushtensor(L, f->tensors[k], "safetensors_load");
    f->tensors[k] = NULL;   /* only now owned by the userdata: the push above may raise */
    lua_rawset(L, -3);
  }
  lua_createtable(L, 0, f->nmeta);
  for (int k = 0; k < f->nmeta; k++) {
    lua_pushlstring(L, f->meta_keys[k].s, f->meta_keys[k].len);
    lua_pushlstring(L, f->meta_values[k].s, f->meta_values[k].len);
    lua_rawset(L, -3);
  }
  nv_safetensors_free(f);   /* early, rather than at the next collection */
  *box = NULL;
  return 2;
}

/* Counts the entries of the table at idx: string -> tensor when tensors, else string ->
 * string.  Raises on anything else, before the caller allocates. */
static int count_entries(lua_State *L, int idx, int tensors) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      return luaL_error(L, "safetensors_save: %s keys must be strings, got a %s",
                        tensors ? "tensor" : "metadata", luaL_typename(L, -2));
    if (tensors && !nv_lua_totensor(L, -1))
      return luaL_error(L, "safetensors_save: value of '%s' is not a tensor (got a %s)",
                        lua_tostring(L, -2), luaL_typename(L, -1));
    if (!tensors && lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "safetensors_save: metadata must map strings to strings, '%s' is a %s",
                        lua_tostring(L, -2), luaL_typename(L, -1));
    if (tensors && strcmp(lua_tostring(L, -2), "__metadata__") == 0)
      return luaL_error(L, "safetensors_save: \"__metadata__\" cannot be a tensor name");
    if (n == 1 << 24) return luaL_error(L, "safetensors_save: too many entries");
    n++;
    lua_pop(L, 1);
  }
  return n;
}

/* Fills keys[] (and tensors[] or values[]) from the table at idx.  The strings stay owned by
 * the table, which is on the stack for the whole call; files.c never writes through them. */
static void fill_entries(lua_State *L, int idx, nv_str *keys, nv_tensor **ts, nv_str *values) {
  int k = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    keys[k].s = (char *)lua_tolstring(L, -2, &keys[k].len);
    if (ts) ts[k] = nv_lua_totensor(L, -1);
    else values[k].s = (char *)lua_tolstring(L, -1, &values[k].len);
    k++;
    lua_pop(L, 1);
  }
}

/* safetensors_save(tbl, path [, meta]) -> true | nil, msg */
static int l_safetensors_save(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *path = luaL_checkstring(L, 2);
  int has_meta = !lua_isnoneornil(L, 3);
  if (has_meta) luaL_checktype(L, 3, LUA_TTABLE);
  int n = count_entries(L, 1, 1);
  int nmeta = has_meta ? count_entries(L, 3, 0) : 0;
  /* Scratch arrays in userdata, so a raised out-of-memory cannot leak them. */
  nv_str *names = lua_newuserdatauv(L, ((size_t)n + 2 * (size_t)nmeta + 1) * sizeof(nv_str), 0);
  nv_tensor **ts = lua_newuserdatauv(L, ((size_t)n + 1) * sizeof(nv_tensor *), 0);
  nv_str *mkeys = names + n, *mvals = names + n + nmeta;
  fill_entries(L, 1, names, ts, NULL);
  if (has_meta) fill_entries(L, 3, mkeys, NULL, mvals);
  if (!nv_safetensors_save(path, n, names, ts, nmeta, mkeys, mvals))
    return nv_lua_fail(L, "%s", nv_last_error());
  lua_pushboolean(L, 1);
  return 1;
}

/* idx_load(path) -> tensor | nil, msg */
static int l_idx_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  nv_tensor *t = nv_idx_load(path);
  if (!t) return nv_lua_fail(L, "%s", nv_last_error());
  nv_lua_pushtensor(L, t, "idx_load");
  return 1;
}


/* jpeg_save(t, path [, quality = 90]) -> true | nil, msg; raises for a shape that is not an image */
static int l_jpeg_save(lua_State *L) {
  nv_tensor *t = nv_lua_checktensor(L, 1);
  const char *path = luaL_checkstring(L, 2);
  lua_Integer q = luaL_optinteger(L, 3, 90);
  luaL_argcheck(L, q >= 1 && q <= 100, 3, "quality must be in 1..100");
  if (!nv_png_check_shape(t)) return nv_lua_raise(L, "jpeg_save");
  if (!nv_jpeg_save(t, path, (int)q)) return nv_lua_fail(L, "%s", nv_last_error());
  lua_pushboolean(L, 1);
  return 1;
}

/* Reads a Lua array of at most NV_MAXDIM integers at idx into out; returns the count. */
static int check_dims(lua_State *L, int idx, int64_t *out, const char *what) {
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_Integer n = luaL_len(L, idx);
  if (n > NV_MAXDIM)
    return luaL_error(L, "tensor_from_bytes: %s has %d entries, at most %d", what, (int)n, NV_MAXDIM);
  for (int k = 0; k < n; k++) {
    lua_geti(L, idx, k + 1);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok) return luaL_error(L, "tensor_from_bytes: %s entry %d is not an integer", what, k + 1);
    out[k] = (int64_t)v;
    lua_pop(L, 1);
  }
  return (int)n;
}

/* tensor_from_bytes(bytes, dtype, offset, size, stride [, name]) -> tensor | nil, msg:
 * offset and strides count elements (0-based, as PyTorch stores them) */
static int l_tensor_from_bytes(lua_State *L) {
  size_t len;
  const char *b = luaL_checklstring(L, 1, &len);
  const char *dtype = luaL_checkstring(L, 2);
  lua_Integer off = luaL_checkinteger(L, 3);
  int64_t size[NV_MAXDIM], stride[NV_MAXDIM];
  int nd = check_dims(L, 4, size, "size");
  int ns = check_dims(L, 5, stride, "stride");
  const char *name = luaL_optstring(L, 6, "tensor_from_bytes");
  if (nd != ns)
    return luaL_error(L, "tensor_from_bytes: size has %d entries, stride %d", nd, ns);
  if (!nv_dtype_size(dtype)) return luaL_error(L, "tensor_from_bytes: unknown dtype '%s'", dtype);
  nv_tensor *t = nv_tensor_from_bytes((const unsigned char *)b, len, dtype, (int64_t)off, nd,
                                      size, stride, name);
  if (!t) return nv_lua_fail(L, "%s", nv_last_error());
  nv_lua_pushtensor(L, t, "tensor_from_bytes");
  return 1;
}

/* dtype_size(name) -> bytes per element, or nil for an unknown dtype */
static int l_dtype_size(lua_State *L) {
  int n = nv_dtype_size(luaL_checkstring(L, 1));
  if (n) lua_pushinteger(L, n);
  else lua_pushnil(L);
  return 1;
}

static nv_zip **check_zip(lua_State *L) {
  nv_zip **box = luaL_checkudata(L, 1, NV_ZIP_MT);
  if (!*box) luaL_error(L, "zip: the archive is closed");
  return box;
}

/* zip_open(path) -> archive | nil, msg */
static int l_zip_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  nv_zip **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, NV_ZIP_MT);
  *box = nv_zip_open(path);
  if (!*box) return nv_lua_fail(L, "%s", nv_last_error());
  return 1;
}

/* archive:names() -> list of entry names in archive order */
static int zip_names(lua_State *L) {
  nv_zip *z = *check_zip(L);
  int64_t n = nv_zip_count(z);
  lua_createtable(L, n < 1 << 20 ? (int)n : 0, 0);
  for (int64_t i = 0; i < n; i++) {
    const char *s = nv_zip_name(z, i);
    if (!s) continue;
    lua_pushstring(L, s);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  }
  return 1;
}

/* archive:read(name [, max [, count]]) -> the entry's bytes | nil, msg.  With count, the
 * entry must declare exactly max bytes, and only its first count (<= max) are inflated. */
static int zip_read(lua_State *L) {
  nv_zip *z = *check_zip(L);
  const char *name = luaL_checkstring(L, 2);
  lua_Integer max = luaL_optinteger(L, 3, ZIP_MAX_ENTRY);
  luaL_argcheck(L, max >= 0, 3, "limit must be non-negative");
  int head = !lua_isnoneornil(L, 4);
  lua_Integer count = luaL_optinteger(L, 4, 0);
  luaL_argcheck(L, !head || (count >= 0 && count <= max), 4, "count must be between 0 and the limit");
  if (max > ZIP_MAX_ENTRY) {
    if (head) return nv_lua_fail(L, "zip: entry %s: %lld bytes is more than the limit of %lld", name,
                                 (long long)max, (long long)ZIP_MAX_ENTRY);
    max = ZIP_MAX_ENTRY;
  }
  size_t len;
  int64_t idx = nv_zip_entry(z, name, (size_t)max, &len);
  if (idx < 0) return nv_lua_fail(L, "%s", nv_last_error());
  if (head && len != (size_t)max)
    return nv_lua_fail(L, "zip: entry %s holds %zu bytes, %lld expected", name, len, (long long)max);
  size_t n = head ? (size_t)count : len;
  luaL_Buffer b;   /* Lua owns the buffer: nothing leaks if a push below runs out of memory */
  unsigned char *buf = (unsigned char *)luaL_buffinitsize(L, &b, n ? n : 1);
  if (!(head && n < len ? nv_zip_read_head(z, idx, buf, n) : nv_zip_read_into(z, idx, buf, n)))
    return nv_lua_fail(L, "%s", nv_last_error());
  luaL_pushresultsize(&b, n);
  return 1;
}

static int zip_gc(lua_State *L) {
  nv_zip **box = luaL_checkudata(L, 1, NV_ZIP_MT);
  nv_zip_close(*box);
  *box = NULL;
  return 0;
}

static const luaL_Reg zip_methods[] = {
  {"names", zip_names}, {"read", zip_read}, {"close", zip_gc}, {NULL, NULL}
};

static const luaL_Reg functions[] = {
  {"png_load", l_png_load}, {"png_load_bytes", l_png_load_bytes}, {"png_save", l_png_save}, {"png_encode", l_png_encode},
  {"safetensors_load", l_safetensors_load}, {"safetensors_save", l_safetensors_save},
  {"idx_load", l_idx_load},
  {"image_load", l_image_load}, {"jpeg_load_bytes", l_jpeg_load_bytes}, {"jpeg_save", l_jpeg_save},
  {"tensor_from_bytes", l_tensor_from_bytes}, {"dtype_size", l_dtype_size}, {"zip_open", l_zip_open},
  {NULL, NULL}
};

void nv_lua_open_files(lua_State *L) {
  luaL_setfuncs(L, functions, 0);
  luaL_newmetatable(L, NV_SAFETENSORS_MT);
  lua_pushcfunction(L, st_box_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, NV_ZIP_MT);
  lua_pushcfunction(L, zip_gc);
  lua_setfield(L, -2, "__gc");
#if LUA_VERSION_NUM >= 504
  lua_pushcfunction(L, zip_gc);
  lua_setfield(L, -2, "__close");
#endif
  luaL_newlib(L, zip_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

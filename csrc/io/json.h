/*
 * json.h — a small bounded DOM parser for RFC 8259 JSON (the safetensors header).  Internal
 * to the io layer.
 */
#ifndef NV_IO_JSON_H
#define NV_IO_JSON_H

#include "io/files.h"

enum { NV_J_NULL, NV_J_BOOL, NV_J_NUM, NV_J_STR, NV_J_ARR, NV_J_OBJ };

typedef struct nv_json {
  int type;
  nv_str key;            /* member name when this value sits in an object */
  nv_str str;            /* NV_J_STR: decoded bytes */
  int is_int;            /* NV_J_NUM: 1 when an integer literal that fits int64 */
  int64_t i;             /* NV_J_NUM: its value */
  int n;                 /* NV_J_ARR, NV_J_OBJ: number of children */
  struct nv_json *kids;     /* NV_J_ARR, NV_J_OBJ: children */
} nv_json;

/* Parses s[0..n) into *root (to be freed with nv_json_free).  Returns 1, or 0 with a
 * message in err (errlen bytes) and *root empty. */
int nv_json_parse(const char *s, size_t n, nv_json *root, char *err, size_t errlen);
void nv_json_free(nv_json *v);   /* frees what v holds, not v itself */
/* the member `key` of object obj, or NULL; borrowed */
const nv_json *nv_json_get(const nv_json *obj, const char *key);

#endif

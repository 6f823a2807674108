/*
 * json.c — the JSON parser behind safetensors' header (see json.h).  All input is
 * untrusted: every read checks the end pointer, and strings are measured before allocating.
 */
#include "io/json.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A small DOM parser for RFC 8259 JSON.  Bounded: nesting deeper than JSON_MAXDEPTH is
 * refused, every read checks the end pointer, and strings are measured before allocating. */
#define JSON_MAXDEPTH 32



typedef struct {
  const char *p, *begin, *end;
  char err[160];
} jparser;

void nv_json_free(nv_json *v) {
  free(v->key.s);
  free(v->str.s);
  for (int k = 0; k < v->n; k++) nv_json_free(&v->kids[k]);
  free(v->kids);
}

static int jfail(jparser *jp, const char *what) {
  if (!jp->err[0]) {
    if (jp->p < jp->end)
      snprintf(jp->err, sizeof jp->err, "%s at byte %lld ('%c')", what,
               (long long)(jp->p - jp->begin), *jp->p >= 32 && *jp->p < 127 ? *jp->p : '?');
    else
      snprintf(jp->err, sizeof jp->err, "%s at byte %lld (end of header)", what,
               (long long)(jp->p - jp->begin));
  }
  return 0;
}

static void jskip_ws(jparser *jp) {
  while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
    jp->p++;
}

static int hex4(const char *s, unsigned *out) {
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    char c = s[k];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 63));
    o[2] = (char)(0x80 | (cp & 63));
    return 3;
  }
  o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 63));
  o[2] = (char)(0x80 | (cp >> 6 & 63)); o[3] = (char)(0x80 | (cp & 63));
  return 4;
}

/* jp->p is at the opening quote.  Decoded text is never longer than its source (an escape
 * of 6 or 12 characters yields at most 3 or 4 bytes), so the source length bounds the buffer. */
static int jparse_string(jparser *jp, nv_str *out) {
  const char *q = ++jp->p;
  while (q < jp->end && *q != '"') q += (*q == '\\' && q + 1 < jp->end) ? 2 : 1;
  if (q >= jp->end) return jfail(jp, "unterminated string");
  char *o = malloc((size_t)(q - jp->p) + 1);
  if (!o) return jfail(jp, "out of memory");
  size_t n = 0;
  while (jp->p < q) {
    unsigned char c = (unsigned char)*jp->p;
    if (c < 0x20) { free(o); return jfail(jp, "control character in string"); }
    if (c != '\\') { o[n++] = (char)c; jp->p++; continue; }
    char e = jp->p[1], r = 0;
    switch (e) {
    case '"': case '\\': case '/': r = e; break;
    case 'b': r = '\b'; break;
    case 'f': r = '\f'; break;
    case 'n': r = '\n'; break;
    case 'r': r = '\r'; break;
    case 't': r = '\t'; break;
    default: break;
    }
    if (r) {
      o[n++] = r;
      jp->p += 2;
      continue;
    }
    unsigned cp, lo;
    if (e != 'u' || q - jp->p < 6 || !hex4(jp->p + 2, &cp)) {
      free(o);
      return jfail(jp, "bad escape");
    }
    jp->p += 6;
    if (cp >= 0xD800 && cp < 0xDC00) {   /* high surrogate: a low one must follow */
      if (q - jp->p < 6 || jp->p[0] != '\\' || jp->p[1] != 'u' || !hex4(jp->p + 2, &lo) ||
          lo < 0xDC00 || lo > 0xDFFF) { free(o); return jfail(jp, "unpaired surrogate"); }
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      jp->p += 6;
    } else if (cp >= 0xDC00 && cp < 0xE000) { free(o); return jfail(jp, "unpaired surrogate"); }
    n += put_utf8(o + n, cp);
  }
  jp->p = q + 1;
  o[n] = 0;
  out->s = o;
  out->len = n;
  return 1;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?  Integers are kept exactly; other numbers
 * are only validated, since the safetensors schema has no use for them. */
static int jparse_number(jparser *jp, nv_json *v) {
  const char *p = jp->p, *e = jp->end;
  int neg = p < e && *p == '-';
  if (neg) p++;
  if (p >= e || *p < '0' || *p > '9') return jfail(jp, "bad number");
  int overflow = 0;
  uint64_t mag = 0;
  if (*p == '0') p++;
  else
    for (; p < e && *p >= '0' && *p <= '9'; p++) {
      if (mag > (UINT64_MAX - 9) / 10) overflow = 1;
      mag = mag * 10 + (uint64_t)(*p - '0');
    }
  int frac = 0;
  if (p < e && *p == '.') {
    frac = 1;
    if (++p >= e || *p < '0' || *p > '9') { jp->p = p; return jfail(jp, "bad number"); }
    while (p < e && *p >= '0' && *p <= '9') p++;
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    frac = 1;
    p++;
    if (p < e && (*p == '+' || *p == '-')) p++;
    if (p >= e || *p < '0' || *p > '9') { jp->p = p; return jfail(jp, "bad number"); }
    while (p < e && *p >= '0' && *p <= '9') p++;
  }
  v->type = NV_J_NUM;
  v->is_int = !frac && !overflow && mag <= (uint64_t)INT64_MAX;
  v->i = v->is_int ? (neg ? -(int64_t)mag : (int64_t)mag) : 0;
  jp->p = p;
  return 1;
}

static int jparse_value(jparser *jp, nv_json *v, int depth);

/* Arrays and objects: children are collected in a doubling array. */
static int jparse_container(jparser *jp, nv_json *v, int depth) {
  int obj = *jp->p == '{';
  char close = obj ? '}' : ']';
  if (depth > JSON_MAXDEPTH) return jfail(jp, "nesting deeper than 32 levels");
  v->type = obj ? NV_J_OBJ : NV_J_ARR;
  jp->p++;
  jskip_ws(jp);
  if (jp->p < jp->end && *jp->p == close) { jp->p++; return 1; }
  int cap = 0;
  for (;;) {
    if (v->n == cap) {
      if (cap > INT_MAX / 4) return jfail(jp, "too many elements");
      int ncap = cap ? 2 * cap : 4;
      nv_json *k = realloc(v->kids, (size_t)ncap * sizeof *k);
      if (!k) return jfail(jp, "out of memory");
      v->kids = k;
      cap = ncap;
    }
    nv_json *kid = &v->kids[v->n];
    memset(kid, 0, sizeof *kid);
    v->n++;   /* counted at once so nv_json_free sees partial children */
    jskip_ws(jp);
    if (obj) {
      if (jp->p >= jp->end || *jp->p != '"') return jfail(jp, "expected a member name");
      if (!jparse_string(jp, &kid->key)) return 0;
      jskip_ws(jp);
      if (jp->p >= jp->end || *jp->p != ':') return jfail(jp, "expected ':'");
      jp->p++;
    }
    if (!jparse_value(jp, kid, depth + 1)) return 0;
    jskip_ws(jp);
    if (jp->p < jp->end && *jp->p == ',') { jp->p++; continue; }
    if (jp->p < jp->end && *jp->p == close) { jp->p++; return 1; }
    return jfail(jp, obj ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static int jliteral(jparser *jp, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(jp->end - jp->p) < n || memcmp(jp->p, word, n) != 0)
    return jfail(jp, "unexpected character");
  jp->p += n;
  return 1;
}

static int jparse_value(jparser *jp, nv_json *v, int depth) {
  jskip_ws(jp);
  if (jp->p >= jp->end) return jfail(jp, "unexpected end");
  switch (*jp->p) {
  case '{': case '[': return jparse_container(jp, v, depth);
  case '"': v->type = NV_J_STR; return jparse_string(jp, &v->str);
  case 't': v->type = NV_J_BOOL; v->i = 1; return jliteral(jp, "true");
  case 'f': v->type = NV_J_BOOL; return jliteral(jp, "false");
  case 'n': v->type = NV_J_NULL; return jliteral(jp, "null");
  default:
    if (*jp->p == '-' || (*jp->p >= '0' && *jp->p <= '9')) return jparse_number(jp, v);
    return jfail(jp, "unexpected character");
  }
}

/* Parses the whole of [s, s+n): one value, then only whitespace. */
int nv_json_parse(const char *s, size_t n, nv_json *root, char *err, size_t errlen) {
  jparser jp = {s, s, s + n, {0}};
  memset(root, 0, sizeof *root);
  int ok = jparse_value(&jp, root, 1);
  if (ok) {
    jskip_ws(&jp);
    if (jp.p != jp.end) ok = jfail(&jp, "trailing characters after the JSON value");
  }
  if (!ok) {
    nv_json_free(root);
    memset(root, 0, sizeof *root);
    snprintf(err, errlen, "%s", jp.err);
  }
  return ok;
}


const nv_json *nv_json_get(const nv_json *obj, const char *key) {
  for (int k = 0; k < obj->n; k++)
    if (obj->kids[k].key.len == strlen(key) && memcmp(obj->kids[k].key.s, key, obj->kids[k].key.len) == 0) return &obj->kids[k];
  return NULL;
}

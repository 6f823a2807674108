/*
 * onnx.h — reading ONNX model files (protobuf, schema in csrc/onnx.proto, parsed by the
 * protobuf-c code generated from it at build time).  Pure C, no Lua: lua_onnx.c binds it.
 *
 * The file is untrusted.  nv_onnx_read caps the file size and the memory protobuf-c may
 * allocate while unpacking (protobuf-c checks the wire format itself); nv_onnx_tensor checks
 * every dimension, data length, typed-data count and external-data location and range before
 * allocating.  Errors go to nv_last_error() and name the file and the numbers.
 *
 * Worked example (C):
 *     nv_onnx_model *m = nv_onnx_read("resnet18.onnx");
 *     if (!m) { fprintf(stderr, "%s\n", nv_last_error()); return; }
 *     Onnx__TensorProto *tp = nv_onnx_initializer(m, 0);   // m->n_init of them
 *     nv_onnx_array a;
 *     if (tp && nv_onnx_tensor(m, tp, "initializer 1", &a)) { ...; nv_onnx_array_free(&a); }
 *     nv_onnx_initializer_free(tp);
 *     nv_onnx_free(m);
 */
#ifndef NV_ONNX_H
#define NV_ONNX_H

#include <stdint.h>
#include <stdio.h>

#include "core/nv.h"
#include "onnx.pb-c.h"

/* Files above this are refused (ONNX itself keeps a model under 2 GB: bigger weights go to
 * external data files). */
#define NV_ONNX_MAX_FILE ((int64_t)1 << 31)
/* Integer tensors become Lua arrays; they are shapes, axes and indices, so small. */
#define NV_ONNX_MAX_INTS ((int64_t)1 << 22)

typedef struct nv_onnx_model {
  Onnx__ModelProto *proto;   /* owned; proto->graph is non-NULL, its initializers left out */
  char *path;                /* owned copy of the path, for messages */
  char *dir;                 /* owned: the model's folder, where external data is looked up */
  FILE *f;                   /* the open file: initializers are read from it one by one */
  int64_t size;              /* its length in bytes */
  int n_init;                /* initializers of the graph, in file order */
  struct { int64_t off, len; } *inits;   /* where each one's TensorProto bytes are */
} nv_onnx_model;

/* A decoded TensorProto: float types (FLOAT, FLOAT16, BFLOAT16, DOUBLE) as a float32
 * tensor, integer types (INT8..INT64, UINT8..UINT64, BOOL) as int64 values. */
typedef struct nv_onnx_array {
  int dtype;                    /* ONNX DataType of the file */
  int is_float;                 /* 1: t is set; 0: ints is set */
  int ndim;
  int64_t dims[NV_MAXDIM];      /* sizes */
  int64_t numel;                /* product of dims */
  nv_tensor *t;                 /* new reference when is_float */
  int64_t *ints;                /* malloc'd numel values when !is_float (NULL when numel == 0) */
} nv_onnx_array;

/* Reads and unpacks path.  Returns a new model (nv_onnx_free) or NULL with the error set. */
nv_onnx_model *nv_onnx_read(const char *path);
void nv_onnx_free(nv_onnx_model *m);   /* NULL-safe */

/* Decodes tp (borrowed, part of m) into *a; 1, or 0 with the error set (and *a empty).
 * what names the tensor in messages ("initializer 'fc.weight'"). */
int nv_onnx_tensor(const nv_onnx_model *m, const Onnx__TensorProto *tp, const char *what,
                   nv_onnx_array *a);
void nv_onnx_array_free(nv_onnx_array *a);   /* releases what *a still holds */
/* Initializer k (0-based, < m->n_init), unpacked from the file: a new message to decode with
 * nv_onnx_tensor and free with nv_onnx_initializer_free (one at a time), or NULL with the error
 * set.  A float32 initializer's tensor then shares the unpacked bytes (no copy). */
Onnx__TensorProto *nv_onnx_initializer(nv_onnx_model *m, int k);
void nv_onnx_initializer_free(Onnx__TensorProto *tp);   /* NULL-safe */
/* Reads a file holding one serialized TensorProto (ONNX's test data, input_0.pb) into *a;
 * 1, or 0 with the error set. */
int nv_onnx_read_tensor(const char *path, nv_onnx_array *a);
/* "float", "int64", ... for an ONNX DataType; "?" when unknown */
const char *nv_onnx_dtype_name(int dtype);

#endif

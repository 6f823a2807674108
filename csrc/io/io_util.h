/*
 * io_util.h — what the readers in io/ share: opening a regular file, exact reads with
 * messages that tell truncation from I/O errors, byte order, and the tensor dtypes of
 * safetensors and PyTorch storages with their conversion to float32.  Internal to io/.
 */
#ifndef NV_IO_UTIL_H
#define NV_IO_UTIL_H

#include "io/files.h"

#include <stdio.h>

int nv_io_host_little_endian(void);
/* Opens path for reading and checks it is a regular file (fopen happily opens a directory);
 * *size receives its length.  NULL with the error set. */
FILE *nv_io_open_regular(const char *path, int64_t *size);
/* Reads exactly n bytes; 1, or 0 with an error naming path and what. */
int nv_io_read_exact(FILE *f, void *buf, size_t n, const char *path, const char *what);
/* the little-endian unsigned integer of n bytes at b */
uint64_t nv_io_le_u64(const unsigned char *b, int n);

enum { NV_DT_F64, NV_DT_F32, NV_DT_F16, NV_DT_BF16, NV_DT_I64, NV_DT_I32, NV_DT_I16, NV_DT_I8, NV_DT_U64, NV_DT_U32, NV_DT_U16,
       NV_DT_U8, NV_DT_BOOL, NV_DT_COUNT };
extern const char *const nv_dt_names[NV_DT_COUNT];
extern const int nv_dt_sizes[NV_DT_COUNT];
/* n values of dtype dt (little-endian bytes at b) as float32 into d */
void nv_dt_convert(int dt, const unsigned char *b, float *d, size_t n);

#endif

// safetensors files: a validating mmap reader and an atomic writer.
// The reader enforces the reference implementation's rules (see
// docs/DESIGN.md, "Files the tool reads and writes") and rejects duplicate names.
#ifndef GK_SAFETENSORS_H
#define GK_SAFETENSORS_H

#include <stddef.h>

#include "common/error.h"
#include "common/file.h"

enum { ST_MAX_DIMS = 8, ST_MAX_HEADER = 100000000 };

typedef enum {
    ST_BOOL, ST_U8, ST_I8, ST_F8_E5M2, ST_F8_E4M3, ST_I16, ST_U16, ST_F16, ST_BF16,
    ST_I32, ST_U32, ST_F32, ST_F64, ST_I64, ST_U64, ST_N_DTYPES
} st_dtype;

typedef struct {
    const char *name;            // NUL-terminated, owned by the st_file
    st_dtype dtype;
    int ndim;
    size_t shape[ST_MAX_DIMS];
    size_t numel;
    const unsigned char *data;   // into the mapping; may be unaligned
    size_t nbytes;
} st_tensor;

typedef struct {
    char *path;
    file_map map;
    st_tensor *tensors;          // in header order
    size_t n_tensors;
    char *strings;               // storage for names
} st_file;

const char *st_dtype_name(st_dtype dtype);
// Formats a shape as "[4, 2]" into buf; returns buf.
const char *st_shape_str(char *buf, size_t cap, int ndim, const size_t *shape);
size_t st_dtype_size(st_dtype dtype);

// Maps and validates a file. On error nothing stays open.
int st_open(const char *path, st_file *f, gk_err *err);
void st_close(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
// Converts an F32, F16 or BF16 tensor to float32 (dst holds t->numel floats).
int st_to_f32(const st_file *f, const st_tensor *t, float *dst, gk_err *err);

// One tensor to write: float32 data converted to the file's dtype.
typedef struct {
    const char *name;
    int ndim;
    size_t shape[ST_MAX_DIMS];
    const float *data;
} st_out_tensor;

// Writes tensors (in the given order) with dtype ST_F32 or ST_BF16 and
// __metadata__ {"format":"pt"}; atomically (temporary name, fsync, rename).
int st_write(const char *path, const st_out_tensor *tensors, size_t n, st_dtype dtype, gk_err *err);

#endif

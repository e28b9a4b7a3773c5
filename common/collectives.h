// Collectives over the ranks of a data-parallel job on buffers where a model's
// kernels run: host memory through MPI (common/dist.c), device memory through
// NCCL (model/cuda/nccl.cu). The flat buffer of n elements is cut into one
// block per rank (collectives_block); the last block is shorter when n does
// not divide (or empty), and every operation takes the uneven block as it is.
#ifndef GK_COLLECTIVES_H
#define GK_COLLECTIVES_H

#include <stddef.h>

#include "common/error.h"

typedef enum { COLL_F32, COLL_BF16 } coll_type; // bf16 sums are taken in float32 and rounded

typedef struct collectives collectives;
struct collectives {
    int rank, size;
    // buf[0..n) = the sum over ranks, in place.
    int (*all_reduce)(const collectives *c, void *buf, size_t n, coll_type t, gk_err *err);
    // Rank r gets the sum over ranks of block r of buf[0..n) into block r of buf itself (the rest is scratch).
    int (*reduce_scatter)(const collectives *c, void *buf, size_t n, coll_type t, gk_err *err);
    // Every rank gets every rank's block r of buf[0..n) (each rank's own block is the input), in place.
    int (*all_gather)(const collectives *c, void *buf, size_t n, coll_type t, gk_err *err);
    // Host doubles x[0..n) = their sum over ranks, in place (scalars: a norm's partial sums).
    void (*sum_host)(double *x, size_t n);
    void *ctx;
};

// Blocks start at multiples of this many elements: 256 KiB of float32, a multiple of the chunk the
// gradient norm is summed by (GRAD_NORM_CHUNK, model/optim.h), so a norm over blocks is the one
// over the whole buffer.
enum { COLLECTIVES_ALIGN = 1 << 16 };

// Elements per block of n over `size` ranks: ceil(n / size) rounded up to COLLECTIVES_ALIGN.
static inline size_t collectives_block(size_t n, int size) {
    size_t b = (n + (size_t)size - 1) / (size_t)size;
    return (b + COLLECTIVES_ALIGN - 1) / COLLECTIVES_ALIGN * COLLECTIVES_ALIGN;
}

// Block r of n: [*lo, *hi) (empty past n).
static inline void collectives_range(size_t n, int size, int r, size_t *lo, size_t *hi) {
    size_t b = collectives_block(n, size);
    *lo = (size_t)r * b < n ? (size_t)r * b : n;
    *hi = *lo + b < n ? *lo + b : n;
}

#endif

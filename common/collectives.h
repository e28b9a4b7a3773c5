// Collectives over the ranks of a data-parallel job on buffers where a model's
// kernels run: host memory through MPI (common/dist.c), device memory through
// NCCL (model/cuda/nccl.cu). The flat buffer of n elements is cut into one
// block per rank (collectives_block); the last block is shorter when n does
// not divide, and every operation takes the uneven block as it is.
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
    void *ctx;
};

// Elements per block of n over `size` ranks: ceil(n / size) rounded up to 64 (whole cache lines).
static inline size_t collectives_block(size_t n, int size) {
    size_t b = (n + (size_t)size - 1) / (size_t)size;
    return (b + 63) / 64 * 64;
}

// Block r of n: [*lo, *hi) (empty past n).
static inline void collectives_range(size_t n, int size, int r, size_t *lo, size_t *hi) {
    size_t b = collectives_block(n, size);
    *lo = (size_t)r * b < n ? (size_t)r * b : n;
    *hi = *lo + b < n ? *lo + b : n;
}

#endif

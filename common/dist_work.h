// What a command that splits rows across ranks needs besides common/dist.h:
// rows gathered in place to rank 0 (where the one process's file writer runs)
// and bytes shared by every rank.
#ifndef GK_DIST_WORK_H
#define GK_DIST_WORK_H

#include <stddef.h>
#include <stdint.h>

#include "common/dist.h"
#include "common/error.h"

// Rows [lo, hi) of buf (row_bytes each) from every rank to rank 0, where the ranks' [lo, hi)
// tile [0, n) in rank order (dist_split's blocks): rank 0's buf then holds rows [0, n); the
// other ranks' buf is unchanged. A no-op for one process.
int dist_gather_rows(void *buf, size_t row_bytes, uint64_t lo, uint64_t hi, gk_err *err);

// Every rank's bytes, in rank order, to every rank: *out (malloc'd) of *total bytes.
// For one process a copy of in.
int dist_share_bytes(const void *in, size_t bytes, void **out, size_t *total, gk_err *err);

#endif

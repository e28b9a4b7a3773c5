// What a command that splits rows across ranks needs besides common/dist.h:
// one verdict on failure before a collective, and rows gathered in place to
// rank 0 (where the one process's file writer runs).
#ifndef GK_DIST_WORK_H
#define GK_DIST_WORK_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

// Every rank's rc at once (a collective; rc itself for one process): 0 when every rank passed;
// else -1 on every rank, a failing rank keeping its own error and the others getting
// "rank R failed" (R the lowest failing rank), so that no rank goes on into a collective alone.
int dist_check(int rc, gk_err *err);

// Rows [lo, hi) of buf (row_bytes each) from every rank to rank 0, where the ranks' [lo, hi)
// tile [0, n) in rank order (dist_split's blocks): rank 0's buf then holds rows [0, n); the
// other ranks' buf is unchanged. A no-op for one process.
int dist_gather_rows(void *buf, size_t row_bytes, uint64_t lo, uint64_t hi, gk_err *err);

// Every rank's bytes, in rank order, to every rank: *out (malloc'd) of *total bytes.
// For one process a copy of in.
int dist_share_bytes(const void *in, size_t bytes, void **out, size_t *total, gk_err *err);

#endif

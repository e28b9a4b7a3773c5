// The answers of one chunk of generate --prompts requests, shared by every
// rank: each rank answers a contiguous block of the chunk (dist_split), and
// every rank then holds every answer in request order, the order rank 0
// writes them in and the context the next round's prompts are built from.
#ifndef GK_GEN_ANSWER_SHARE_H
#define GK_GEN_ANSWER_SHARE_H

#include <stddef.h>

#include "common/error.h"
#include "gen/generate.h"

typedef struct {
    char *text;        // the answer's text, without its stop id (malloc'd)
    int tokens;        // generated ids, a stop id included
    gen_finish finish;
} chunk_answer;

// all[lo, hi) answered here -> all[0, n) on every rank (texts malloc'd). Nothing to do for one process.
int chunk_answers_share(chunk_answer *all, size_t n, size_t lo, size_t hi, gk_err *err);
void chunk_answers_free(chunk_answer *all, size_t n);

#endif

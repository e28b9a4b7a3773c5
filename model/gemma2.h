// The Gemma 2 model: forward, chunked output head and backward. Declared for
// float32 (suffix _f32, the model) and float64 (_f64, the twin used by the
// finite-difference tests) on the CPU, and with GK_WITH_CUDA for bf16 on the
// GPU (_cuda); all come from the same source.
#ifndef GK_GEMMA2_H
#define GK_GEMMA2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "model/config.h"
#include "model/kernels.h"
#include "model/params.h"

// A batch of B rows of T tokens. Documents are packed: attention never
// crosses a document and RoPE positions restart at each document start.
typedef struct {
    int B, T;
    const int32_t *tokens;    // [B*T]
    const int32_t *doc_begin; // [B*T] index within its row where each token's document starts; NULL = row start
} token_batch;

// Per-token document starts from a sorted list of start indices into one row of T tokens.
int doc_begin_from_starts(const int64_t *starts, size_t n_starts, int T, int32_t *doc_begin, gk_err *err);


#define GK_TEMPLATE "model/gemma2_api.inc"
#include "model/precisions.h"

#endif

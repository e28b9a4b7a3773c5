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


// A loss computed over the vocabulary tile by tile (model_head_tiled): no
// [tokens x vocab] logits exist, only a block of positions times a tile of the
// vocabulary. For each block of positions first..first+count-1 the head calls
// begin, then `passes` statistics passes over the tiles (ids v0..v0+width-1, in
// order), then finish (the block's loss). With gradients, grad for every
// (block, tile) once that block is finished, in no promised order: a loss keeps
// what grad needs for every position of the batch. Tiles are host float32
// [count, width] after the final soft-cap: s the model's, t the teacher's (NULL
// without one). grad writes dLoss/ds.
typedef struct {
    int passes; // 1 or 2
    void *ctx;
    void (*begin)(void *ctx, size_t first, size_t count);
    void (*stats)(void *ctx, int pass, const float *s, const float *t, size_t first, size_t count, int v0, int width);
    double (*finish)(void *ctx, size_t first, size_t count);
    void (*grad)(void *ctx, const float *s, const float *t, float *ds, size_t first, size_t count, int v0, int width);
    // The teacher's capped logits of the same positions and ids into out [count, width] (NULL: no teacher).
    int (*teacher_tile)(void *teacher, size_t first, size_t count, int v0, int width, float *out, gk_err *err);
    void *teacher;
} tiled_loss;

// Sizes of the tiled head: positions per block, vocabulary ids per tile (0:
// the defaults). Up to 16,384 ids, whole rows (one tile of every id: nothing
// is computed twice, for [block x vocab] of memory); above, blocks of 512 x
// 1024 ids (2 MiB of float32 logits, in cache). On the AMX Xeon of the
// README: 512 x 1024 beat 128 x 2048 and 256 x 1024 at 262,144 ids; whole
// rows were faster for cross-entropy below 32,768 ids in bf16 (65,536 in
// float32), and by more for distillation (tiles compute the teacher's logits
// twice).
typedef struct {
    int block, tile;
} tile_shape;
enum { HEAD_TILE_BLOCK = 512, HEAD_TILE_WIDTH = 1024, HEAD_WHOLE_ROWS_BLOCK = 256, HEAD_WHOLE_ROWS_MAX_VOCAB = 16384 };

// The shape the head runs for a vocabulary of V ids, given the one asked for.
static inline tile_shape head_tile_shape(int V, tile_shape asked) {
    bool whole = V <= HEAD_WHOLE_ROWS_MAX_VOCAB;
    tile_shape t = {asked.block > 0 ? asked.block : whole ? HEAD_WHOLE_ROWS_BLOCK : HEAD_TILE_BLOCK,
                    asked.tile > 0 ? asked.tile : whole ? V : HEAD_TILE_WIDTH};
    if (t.tile > V) t.tile = V;
    return t;
}

#define GK_TEMPLATE "model/gemma2_api.inc"
#include "model/precisions.h"

#endif

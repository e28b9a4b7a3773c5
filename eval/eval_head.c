#include "eval/eval_head.h"

#include <math.h>
#include <stdlib.h>

#include "model/xent_tiled.h"

int eval_head_init(eval_head_ctx *c, size_t positions, gk_err *err) {
    c->positions = positions;
    c->pos = gk_calloc(positions, sizeof *c->pos, err);
    return c->pos ? 0 : -1;
}

void eval_head_free(eval_head_ctx *c) {
    free(c->pos);
    c->pos = NULL;
}

static void begin(void *ctx, size_t first, size_t count) {
    eval_head_ctx *c = ctx;
    GK_ASSERT(first + count <= c->positions);
    if (c->teacher) c->teacher->loss.begin(c->teacher, first, count);
    for (size_t i = first; i < first + count; i++)
        c->pos[i] = (eval_position){.max = -INFINITY, .target_logit = NAN, .best = -INFINITY,
                                    .teacher_best = -INFINITY, .best_id = -1, .teacher_best_id = -1};
}

// Moves (best, id) to the first maximum of x [width] (ids v0..) if it beats best.
static void argmax_fold(const float *x, int v0, int width, float *best, int *id) {
    for (int j = 0; j < width; j++)
        if (x[j] > *best) *best = x[j], *id = v0 + j;
}

static void stats(void *ctx, int pass, const float *s, const float *t, size_t first, size_t count, int v0, int width) {
    eval_head_ctx *c = ctx;
    if (c->teacher) c->teacher->loss.stats(c->teacher, pass, s, t, first, count, v0, width);
    if (pass > 0) return;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < count; r++) {
        size_t i = first + r;
        int32_t target = c->targets[i];
        if (target < 0) continue;
        eval_position *p = &c->pos[i];
        const float *row = s + r * (size_t)width;
        lse_fold(row, NULL, 1, width, &p->max, &p->sum, NULL);
        argmax_fold(row, v0, width, &p->best, &p->best_id);
        if (t) argmax_fold(t + r * (size_t)width, v0, width, &p->teacher_best, &p->teacher_best_id);
        if (target >= v0 && target < v0 + width) p->target_logit = row[target - v0];
    }
}

// The teacher's top choice at position i: from its logits, or the first id of a
// top-k cache row (stored most likely first); -1 if unknown (sampled draws).
static int teacher_top(const eval_head_ctx *c, size_t i) {
    const kd_head_ctx *k = c->teacher;
    if (k->teacher) return c->pos[i].teacher_best_id;
    sparse_row row;
    if (k->sparse == SPARSE_SAMPLED || teacher_cache_row(k->rows, i, &row) || row.k < 1) return -1;
    return row.ids[0];
}

static double finish(void *ctx, size_t first, size_t count) {
    eval_head_ctx *c = ctx;
    if (c->teacher) c->teacher->loss.finish(c->teacher, first, count);
    double nll = 0; // in order: the same sum for any thread count
    for (size_t i = first; i < first + count; i++) {
        const eval_position *p = &c->pos[i];
        int32_t target = c->targets[i];
        c->logprob[i] = target < 0 ? NAN : (double)p->target_logit - (p->max + log(p->sum));
        c->greedy[i] = target >= 0 && p->best_id == target;
        if (c->top1) {
            int t = target < 0 ? -1 : teacher_top(c, i);
            c->top1[i] = t < 0 ? TOP1_UNKNOWN : t == p->best_id ? TOP1_AGREE : TOP1_DISAGREE;
        }
        if (target >= 0) nll -= c->logprob[i];
    }
    return nll;
}

head_loss eval_head_loss(eval_head_ctx *c) {
    c->loss = (tiled_loss){.passes = 1, .ctx = c, .begin = begin, .stats = stats, .finish = finish};
    if (c->teacher) {
        c->teacher->targets = c->targets;
        c->teacher->scale = 1;
        head_loss kd = kd_head_loss(c->teacher, false);
        c->loss.passes = kd.tiled->passes;
        c->loss.teacher_tile = kd.tiled->teacher_tile;
        c->loss.teacher = kd.tiled->teacher;
    }
    return (head_loss){.kind = HEAD_TILED, .tiled = &c->loss, .tiles = c->tiles};
}

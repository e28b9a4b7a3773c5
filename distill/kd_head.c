#include "distill/kd_head.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int kd_head_init(kd_head_ctx *k, const kd_config *kd, size_t chunk, gk_err *err) {
    k->kd = *kd;
    k->row_sums = gk_calloc(chunk, sizeof *k->row_sums, err);
    return k->row_sums ? 0 : -1;
}

int kd_head_use_teacher(kd_head_ctx *k, const online_teacher *t, size_t chunk, int vocab, gk_err *err) {
    return kd_head_use_engine(k, t->engine, chunk, vocab, err);
}

int kd_head_use_engine(kd_head_ctx *k, engine *teacher, size_t chunk, int vocab, gk_err *err) {
    k->teacher = teacher;
    k->teacher_logits = gk_malloc(chunk * (size_t)vocab * sizeof(float), err);
    return k->teacher_logits ? 0 : -1;
}

head_loss kd_head_loss(kd_head_ctx *k, int chunk, bool grads) {
    k->failed = 0;
    return (head_loss){.kind = HEAD_CALLBACK, .fn = kd_head, .ctx = k, .chunk = chunk, .grads = grads};
}

int kd_head_check(kd_head_ctx *k, gk_err *err) {
    if (!k->failed) return 0;
    *err = k->err;
    return -1;
}

void kd_head_free(kd_head_ctx *k) {
    free(k->teacher_logits);
    free(k->row_sums);
    k->teacher_logits = NULL;
    k->row_sums = NULL;
}

void kd_head_use_cache(kd_head_ctx *k, sparse_objective obj, teacher_cache_rows *rows) {
    k->sparse = obj;
    k->rows = teacher_cache_row;
    k->rows_ctx = rows;
}

double kd_head(void *ctx_, const float *logits, float *dlogits, size_t first, size_t count, int vocab) {
    kd_head_ctx *c = ctx_;
    if (c->teacher && engine_logits(c->teacher, first, count, c->teacher_logits, &c->err)) { // the same tokens' logits
        c->failed = 1;
        return NAN;
    }
    int failed = 0;
#pragma omp parallel for schedule(static) reduction(| : failed)
    for (size_t r = 0; r < count; r++) {
        const float *s = logits + r * vocab;
        float *ds = dlogits ? dlogits + r * vocab : NULL;
        int32_t target = c->targets[first + r];
        kd_sums *sums = &c->row_sums[r];
        memset(sums, 0, sizeof *sums);
        if (target < 0) {
            if (ds) memset(ds, 0, (size_t)vocab * sizeof *ds);
            continue;
        }
        if (c->teacher) {
            kd_row_dense(&c->kd, s, c->teacher_logits + r * vocab, vocab, target, c->scale, ds, sums);
        } else {
            sparse_row row;
            if (c->rows(c->rows_ctx, first + r, &row)) {
                failed = 1;
                continue;
            }
            kd_row_sparse(&c->kd, c->sparse, s, &row, vocab, target, c->scale, ds, sums);
        }
    }
    double loss = 0;
    for (size_t r = 0; r < count; r++) {
        loss += c->row_sums[r].loss;
        c->sums.loss += c->row_sums[r].loss;
        c->sums.ce += c->row_sums[r].ce;
        c->sums.kd += c->row_sums[r].kd;
        c->sums.kl += c->row_sums[r].kl;
    }
    return failed ? NAN : loss;
}

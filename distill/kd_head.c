#include "distill/kd_head.h"

#include <math.h>
#include <string.h>

#include "model/kernels.h"

int kd_head_init(kd_head_ctx *k, const kd_config *kd, size_t chunk, gk_err *err) {
    k->kd = *kd;
    k->row_sums = gk_calloc(chunk, sizeof *k->row_sums, err);
    return k->row_sums ? 0 : -1;
}

int kd_head_use_teacher(kd_head_ctx *k, const online_teacher *t, size_t chunk, int vocab, gk_err *err) {
    k->teacher_cfg = &t->model.cfg;
    k->teacher_embed = t->w.embed;
    k->teacher_logits = gk_malloc(chunk * (size_t)vocab * sizeof(float), err);
    return k->teacher_logits ? 0 : -1;
}

void kd_head_use_cache(kd_head_ctx *k, sparse_objective obj, teacher_cache_rows *rows) {
    k->sparse = obj;
    k->rows = teacher_cache_row;
    k->rows_ctx = rows;
}

double kd_head_f32(void *ctx_, const float *logits, float *dlogits, size_t first, size_t count, int vocab) {
    kd_head_ctx *c = ctx_;
    if (c->teacher_hidden) // the teacher's logits of the same tokens
        model_logits_f32(c->teacher_cfg, c->teacher_embed, c->teacher_hidden + first * (size_t)c->teacher_cfg->d_model,
                         (int)count, c->teacher_logits);
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
        if (c->teacher_hidden) {
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

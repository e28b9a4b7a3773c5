#include "eval/corpus_eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/loader.h"
#include "distill/teacher.h"
#include "distill/teacher_cache.h"
#include "eval/scorer.h"

typedef struct {
    loader *l;
    loader_batch batch;
    scorer s;
    online_teacher teacher;
    bool has_teacher;
    teacher_cache *cache;
    teacher_cache_rows rows;
    kd_head_ctx kd;
} corpus_run;

static void run_free(corpus_run *c) {
    if (c->cache) {
        teacher_cache_rows_free(&c->rows);
        teacher_cache_close(c->cache);
    }
    if (c->has_teacher) online_teacher_close(&c->teacher);
    kd_head_free(&c->kd);
    scorer_free(&c->s);
    loader_batch_free(&c->batch);
    if (c->l) loader_close(c->l);
}

// The teacher side: forward KL at temperature 1, summed (scale 1) over the scored positions.
static int open_teacher(corpus_run *c, const model_state *m, const corpus_eval_job *j, const char *sha,
                        corpus_eval_result *r, gk_err *err) {
    kd_config kd = {.divergence = KD_FORWARD_KL, .alpha = 1, .temperature = 1, .beta = 0.5};
    if (kd_head_init(&c->kd, &kd, (size_t)j->batch * j->seq_len, err)) return -1;
    r->teacher = true;
    if (j->teacher_dir) {
        if (online_teacher_open(&c->teacher, j->teacher_dir, j->backend, m->cfg.vocab_size, sha, j->batch, j->seq_len,
                                err))
            return -1;
        c->has_teacher = true;
        kd_head_use_teacher(&c->kd, &c->teacher);
        return 0;
    }
    teacher_cache_expect e = {.tokenizer_sha256 = sha, .vocab_size = m->cfg.vocab_size, .temperature = 1,
                              .any_method = true, .method = TEACHER_CACHE_TOPK};
    if (teacher_cache_open(&c->cache, j->cache_dir, c->l, &e, err) ||
        teacher_cache_rows_alloc(c->cache, (size_t)j->batch, &c->rows, err))
        return -1;
    bool sampled = teacher_cache_info(c->cache)->method == TEACHER_CACHE_SAMPLE;
    snprintf(r->cache_method, sizeof r->cache_method, "%s", sampled ? "sample" : "topk");
    return kd_head_use_cache(&c->kd, sampled ? SPARSE_SAMPLED : SPARSE_TOPK_BUCKET, &c->rows, err);
}

int corpus_eval(const model_state *m, const corpus_eval_job *j, corpus_eval_result *r, gk_err *err) {
    memset(r, 0, sizeof *r);
    corpus_run c = {0};
    loader_options opt = {.seq_len = (size_t)j->seq_len, .tokenizer_sha256 = j->tokenizer_sha256,
                          .max_vocab = m->cfg.vocab_size, .require_targets = true};
    int rc = loader_open(&c.l, j->data, j->n_data, &opt, err);
    const shard_file *first = rc == 0 ? loader_shard(c.l, 0) : NULL;
    if (rc == 0) rc = loader_batch_alloc(&c.batch, (size_t)j->batch, (size_t)j->seq_len, err);
    if (rc == 0) rc = scorer_init(&c.s, m, j->backend, j->batch, j->seq_len, j->window, err);
    if (rc == 0 && (j->teacher_dir || j->cache_dir))
        rc = open_teacher(&c, m, j, first->meta.tokenizer_sha256, r, err);
    uint64_t windows = rc == 0 ? loader_total_windows(c.l) : 0;
    if (j->max_tokens > 0 && (uint64_t)((j->max_tokens + j->seq_len - 1) / j->seq_len) < windows)
        windows = (uint64_t)((j->max_tokens + j->seq_len - 1) / j->seq_len);
    r->bytes = j->token_bytes ? 0 : -1;
    for (uint64_t done = 0; rc == 0 && done < windows;) {
        size_t rows = windows - done < (uint64_t)j->batch ? (size_t)(windows - done) : (size_t)j->batch;
        if (loader_next(c.l, rows, &c.batch, err)) rc = -1;
        if (rc == 0) loader_batch_stage(&c.batch, (size_t)c.s.B, c.s.tokens, c.s.doc_begin, c.s.targets);
        token_batch tb = {.B = c.s.B, .T = c.s.T, .tokens = c.s.tokens, .doc_begin = c.s.doc_begin};
        if (rc == 0 && c.has_teacher) rc = online_teacher_forward(&c.teacher, &tb, err);
        if (rc == 0 && c.cache) rc = teacher_cache_batch(c.cache, &c.batch, &c.rows, err);
        double nll;
        if (rc == 0) rc = scorer_run(&c.s, r->teacher ? &c.kd : NULL, &nll, err);
        if (rc == 0 && !isfinite(nll)) rc = gk_fail(err, GK_EINPUT, "non-finite loss (the model or teacher cache holds NaN or inf)");
        for (size_t i = 0; rc == 0 && i < (size_t)c.s.B * c.s.T; i++) {
            int32_t t = c.s.targets[i];
            if (t < 0) continue;
            r->tokens++;
            if (j->token_bytes) r->bytes += j->token_bytes[t];
            if (r->teacher && c.s.top1[i] != TOP1_UNKNOWN) {
                r->top1_known++;
                r->top1_agree += c.s.top1[i] == TOP1_AGREE;
            }
        }
        r->nll += rc == 0 ? nll : 0;
        done += rows;
        r->windows = (int64_t)done;
    }
    r->kl = c.kd.sums.kl;
    run_free(&c);
    return rc;
}

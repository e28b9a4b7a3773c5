#include "train/trainer.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dist.h"
#include "common/file.h"
#include "common/kill_point.h"
#include "common/progress.h"
#include "common/timer.h"
#include "model/average.h"
#include "model/engine.h"
#include "model/init.h"
#include "distill/kd_head.h"
#include "distill/teacher_cache.h"
#include "distill/teacher.h"
#include "train/ckpt.h"
#include "train/data_parallel.h"
#include "train/metrics.h"
#include "train/on_policy.h"
#include "train/run_dir.h"
#include "train/schedule.h"

typedef struct {
    const run_config *rc;
    dp_plan dp;               // this rank's rows of each step and block of the optimizer state (one process: all)
    bool root;                // rank 0 (or the only process): writes the run dir, the log and the progress line
    model_state model;        // the float32 master weights
    float *ema;               // [dp.hi - dp.lo] the weight EMA (ema.decay > 0), else NULL
    engine *engine;           // the student on its backend: [micro, T] with gradients
    optimizer opt;
    lr_schedule sched;
    loader *train, *val;
    loader_cursor val_start;
    loader_batch *micro;      // [accum]
    int32_t *tokens, *targets; // [micro * T]: inputs and targets (-1 = no loss) of one micro-batch
    int accum, micro_b, T;
    int64_t total_steps;
    char tokenizer_sha256[65]; // of the training shards
    // Distillation: the teacher (teacher.model) or its cache (teacher.cache), and the head's work space.
    bool distill;
    online_teacher teacher;
    teacher_cache *cache;
    teacher_cache_rows cache_rows;
    kd_head_ctx kd;
    kd_sums step_sums; // this step's CE / KD / KL (means over trained targets)
    bool sampling;     // kd.on_policy: some rows of each step are sampled continuations of prompts
    on_policy policy;  // this rank's share of them
    int64_t sampled_tokens; // in this step's sampled rows, over all ranks
    double sampling_s;      // the time their sampling took (the slowest rank's)
    trainer_state state;
    metrics_log metrics;
    progress prog;
    int lock_fd;       // run_dir's lock, held until teardown
    char *resume_from; // the checkpoint to continue (--resume), or NULL
} trainer;

static void warn(void *ctx, const char *message) {
    if (dist_rank() != 0) return; // rank 0 says it for the job
    progress_done(ctx);
    fprintf(stderr, "gemmakd: warning: %s\n", message);
}

// ---------------------------------------------------------------- setup

// tokenizer_sha256: NULL for the training shards (they define it), theirs for the validation shards.
static int open_loader(trainer *t, loader **l, const rc_paths *paths, bool shuffle, const char *tokenizer_sha256,
                       gk_err *err) {
    const char *list[RC_MAX_PATTERNS];
    for (int i = 0; i < paths->count; i++) list[i] = paths->items[i];
    loader_options opt = {.seq_len = (size_t)t->rc->data.seq_len, .shuffle = shuffle, .seed = (uint64_t)t->rc->seed,
                          .tokenizer_sha256 = tokenizer_sha256, .max_vocab = t->model.cfg.vocab_size,
                          .require_targets = true};
    return loader_open(l, list, (size_t)paths->count, &opt, err);
}

static int setup_model(trainer *t, gk_err *err) {
    const run_config *rc = t->rc;
    model_state *m = &t->model;
    if (rc->model.from[0]) return model_load_dir(rc->model.from, m, err);
    if (model_config_load(rc->model.config, &m->cfg, err) || param_layout_build(&m->cfg, &m->layout, err)) return -1;
    if (!(m->params = param_buffer_alloc(&m->layout, err))) return -1;
    model_init_random(&m->cfg, &m->layout, m->params, (uint64_t)rc->model.init_seed);
    return 0;
}

static int save_resolved_config(const run_config *rc, gk_err *err) {
    strbuf sb = {0};
    run_config_to_yaml(rc, &sb);
    char *path = path_join(rc->run_dir, "config.yaml");
    int r = !path || sb.failed ? gk_fail(err, GK_ENOMEM, "out of memory") : file_write_atomic(path, sb.data, sb.len, err);
    free(path);
    sb_free(&sb);
    return r;
}

// The kd section of the run config, and the head's per-position state.
static int setup_kd_head(trainer *t, gk_err *err) {
    const run_config *rc = t->rc;
    t->distill = true;
    kd_config kd = {.divergence = rc->kd.loss, .alpha = rc->kd.alpha, .temperature = rc->kd.temperature,
                    .beta = rc->kd.beta, .t2_scale = rc->kd.t2_scale};
    return kd_head_init(&t->kd, &kd, (size_t)t->micro_b * t->T, err);
}

// The in-process teacher, on its own backend (the student's unless teacher.device/precision say otherwise).
static int setup_teacher(trainer *t, gk_err *err) {
    const run_config *rc = t->rc;
    engine_backend backend;
    if (run_config_teacher_backend(rc, &backend, err) || setup_kd_head(t, err) ||
        online_teacher_open(&t->teacher, rc->teacher.model, backend, t->model.cfg.vocab_size, t->tokenizer_sha256,
                            t->micro_b, t->T, err) ||
        (t->root && engine_backend_report(backend, "teacher", err)))
        return -1;
    kd_head_use_teacher(&t->kd, &t->teacher);
    return 0;
}

// Under mpirun on cuda: this rank's GPU, before the teacher or the student allocates on one.
static int use_rank_device(const trainer *t, gk_err *err) {
    engine_backend student, teacher;
    if (run_config_backend(t->rc, &student, err) || engine_use_rank_device(student, err)) return -1;
    return t->rc->teacher.model[0] && (run_config_teacher_backend(t->rc, &teacher, err) ||
                                       engine_use_rank_device(teacher, err)) ? -1 : 0;
}

// The student on its backend, with the optimizer (and EMA) attached; prints what runs the products.
static int setup_engine(trainer *t, gk_err *err) {
    const run_config *rc = t->rc;
    engine_backend backend;
    const collectives *ranks = NULL;
    if (run_config_backend(rc, &backend, err) || (t->dp.ranks > 1 && engine_ranks_collectives(backend, &ranks, err)) ||
        engine_open(&t->engine, &t->model, backend, t->micro_b, t->T, true, err) ||
        (ranks && engine_attach_ranks(t->engine, ranks, t->dp.zero, err)) ||
        engine_attach_optimizer(t->engine, &t->opt, t->ema, rc->ema.decay, err))
        return -1;
    return t->root ? engine_backend_report(backend, "student", err) : 0;
}

// The teacher-logit cache: sparse rows for the forward-KL family of objectives.
static int setup_cache(trainer *t, gk_err *err) {
    const run_config *rc = t->rc;
    if (setup_kd_head(t, err)) return -1;
    bool any = rc->kd.sparse == KD_SPARSE_AUTO;
    sparse_objective obj = any ? SPARSE_TOPK_BUCKET : (sparse_objective)rc->kd.sparse;
    teacher_cache_expect e = {.tokenizer_sha256 = t->tokenizer_sha256, .vocab_size = t->model.cfg.vocab_size,
                              .temperature = rc->kd.temperature, .any_method = any,
                              .method = obj == SPARSE_SAMPLED ? TEACHER_CACHE_SAMPLE : TEACHER_CACHE_TOPK};
    if (teacher_cache_open(&t->cache, rc->teacher.cache, t->train, &e, err)) return -1;
    teacher_cache_method method = teacher_cache_info(t->cache)->method;
    if (any) obj = method == TEACHER_CACHE_SAMPLE ? SPARSE_SAMPLED : SPARSE_TOPK_BUCKET;
    if (teacher_cache_rows_alloc(t->cache, (size_t)t->micro_b, &t->cache_rows, err)) return -1;
    return kd_head_use_cache(&t->kd, obj, &t->cache_rows, err);
}

// Model, optimizer state, loader cursor and EMA from the checkpoint (this rank's blocks of them).
static int load_checkpoint(trainer *t, const char *dir, gk_err *err) {
    bool ema_found;
    if (dp_load(&t->dp, dir, &t->model, &t->opt, &t->state, t->ema, &ema_found, err)) return -1;
    if (t->ema && !ema_found && t->root)
        fprintf(stderr, "%s has no weight EMA: it starts from the checkpoint's weights\n", dir);
    return 0;
}

// With resume, the newest valid checkpoint (t->resume_from; none at all is a fresh start, only
// invalid ones an error); without, an earlier run's checkpoints are refused or, with overwrite,
// removed. Then the temporaries of killed runs go. Nothing is changed before the checks pass.
static int prepare_run_dir(trainer *t, bool resume, bool overwrite, gk_err *err) {
    const char *run_dir = t->rc->run_dir;
    size_t skipped = 0, removed = 0;
    if (resume && ckpt_find_latest(run_dir, &t->resume_from, &skipped, warn, &t->prog, err)) return -1;
    if (resume && !t->resume_from && skipped)
        return gk_fail(err, GK_EINPUT, "%s: no valid checkpoint (%zu skipped); nothing was changed: repair or remove "
                       "them, or start over with --overwrite", run_dir, skipped);
    if (!resume && run_dir_prepare_fresh(run_dir, overwrite, err)) return -1;
    if (run_dir_remove_stale(run_dir, &removed, err)) return -1;
    if (removed) fprintf(stderr, "%s: removed %zu temporaries of killed runs\n", run_dir, removed);
    return 0;
}

// The run directory, prepared by rank 0 alone (lock, checkpoints); the others learn the checkpoint
// to resume and whether it went well.
static int prepare_shared_dir(trainer *t, bool resume, bool overwrite, gk_err *err) {
    const run_config *rc = t->rc;
    int r = 0;
    if (t->root)
        r = dir_create_parents(rc->run_dir, err) || run_dir_lock(rc->run_dir, &t->lock_fd, err) ||
            prepare_run_dir(t, resume, overwrite, err) ? -1 : 0;
    return dist_check(r, err) || dist_bcast_string(&t->resume_from, err) ? -1 : 0;
}

// The split, and what each rank exchanges per step: a reduce-scatter of the gradients and an
// all-gather of the weights (ZeRO-1), or an all-reduce of the gradients, in storage precision;
// a ring moves 2 (N-1)/N of the buffer through each rank either way.
static void report_ranks(const trainer *t) {
    int N = t->dp.ranks;
    engine_backend b = engine_backend_of(t->engine);
    double bytes = (double)t->model.layout.n_floats * (b.precision == PRECISION_BF16 ? 2 : 4);
    fprintf(stderr, "%d ranks: %d rows each per step, micro-batches of %d; %s; exchanged per step: %.1f MB "
            "per rank (%s of %.1f MB of %s gradients%s)\n", N, t->dp.rows, t->micro_b,
            t->dp.zero ? "ZeRO-1 (master weights, AdamW moments and EMA in blocks)" : "the whole optimizer state on each",
            2.0 * (N - 1) / N * bytes / 1e6, t->dp.zero ? "reduce-scatter and all-gather" : "all-reduce", bytes / 1e6,
            engine_precision_name(b.precision), t->dp.zero ? " and weights" : "");
}

static int setup(trainer *t, const run_config *rc, bool resume, bool overwrite, gk_err *err) {
    memset(t, 0, sizeof *t);
    t->lock_fd = -1;
    t->rc = rc;
    t->root = dist_is_root();
    progress_init(&t->prog, 10.0);
    if (rc->threads > 0) omp_set_num_threads(rc->threads);
    t->T = rc->data.seq_len;
    int64_t per_step = (int64_t)rc->batch.size * t->T;
    t->total_steps = rc->train.steps ? rc->train.steps : (rc->train.tokens + per_step - 1) / per_step;
    if (prepare_shared_dir(t, resume, overwrite, err) || setup_model(t, err) ||
        dp_plan_make(&t->dp, rc, t->model.layout.n_floats, err))
        return -1;
    t->micro_b = t->dp.micro;
    t->accum = t->dp.accum;
    size_t lo = t->dp.lo, block = t->dp.hi - t->dp.lo;
    if (rc->ema.decay > 0) {
        if (!(t->ema = gk_malloc(block * sizeof *t->ema, err))) return -1;
        memcpy(t->ema, t->model.params + lo, block * sizeof *t->ema); // e_0 = the initial weights
    }
    if (optimizer_init_range(&t->opt, rc->optim.kind, rc->optim.betas[0], rc->optim.betas[1], rc->optim.eps,
                             rc->optim.weight_decay, &t->model.layout, lo, block, err))
        return -1;
    t->sched.kind = rc->schedule.kind;
    t->sched.lr = rc->optim.lr;
    t->sched.min_lr_ratio = rc->schedule.min_lr_ratio;
    t->sched.decay_fraction = rc->schedule.decay_fraction;
    t->sched.warmup = rc->schedule.warmup;
    t->sched.total = t->total_steps;
    if (open_loader(t, &t->train, &rc->data.train, true, NULL, err)) return -1;
    snprintf(t->tokenizer_sha256, sizeof t->tokenizer_sha256, "%s", loader_shard(t->train, 0)->meta.tokenizer_sha256);
    if (rc->data.val.count) {
        if (open_loader(t, &t->val, &rc->data.val, false, t->tokenizer_sha256, err)) return -1;
        loader_get_cursor(t->val, &t->val_start);
    }
    t->micro = gk_calloc((size_t)t->accum, sizeof *t->micro, err);
    t->tokens = gk_malloc((size_t)t->micro_b * t->T * sizeof(int32_t), err);
    t->targets = gk_malloc((size_t)t->micro_b * t->T * sizeof(int32_t), err);
    if (!t->micro || !t->tokens || !t->targets) return -1;
    for (int k = 0; k < t->accum; k++)
        if (loader_batch_alloc(&t->micro[k], (size_t)t->micro_b, (size_t)t->T, err)) return -1;
    // The teacher first: a bf16 teacher holds its float32 weights only until its engine has its own copy,
    // and the peak of memory is lower before the student's optimizer state is in use.
    if (use_rank_device(t, err) || (rc->teacher.model[0] && setup_teacher(t, err))) return -1;
    if (setup_engine(t, err)) return -1;
    if (rc->teacher.cache[0] && setup_cache(t, err)) return -1;
    t->sampling = rc->kd.on_policy.fraction > 0;
    if (t->sampling && on_policy_open(&t->policy, rc, &t->model.cfg, t->tokenizer_sha256, err)) return -1;
    loader_get_cursor(t->train, &t->state.cursor);
    if (t->resume_from) {
        const char *dir = t->resume_from;
        if (load_checkpoint(t, dir, err) || loader_set_cursor(t->train, &t->state.cursor, err) ||
            engine_sync_device(t->engine, err)) // the state to where the kernels run
            return -1;
        if (t->root) fprintf(stderr, "resuming from %s (step %lld)\n", dir, (long long)t->state.step);
    }
    if (t->root && t->dp.ranks > 1) report_ranks(t);
    // The resolved config once everything it names has opened: a start that fails leaves none.
    return t->root && (save_resolved_config(rc, err) || metrics_open(&t->metrics, rc->run_dir, t->state.step, err)) ? -1 : 0;
}

static void teardown(trainer *t) {
    metrics_close(&t->metrics);
    for (int k = 0; t->micro && k < t->accum; k++) loader_batch_free(&t->micro[k]);
    free(t->micro);
    free(t->tokens);
    free(t->targets);
    if (t->train) loader_close(t->train);
    if (t->val) loader_close(t->val);
    engine_close(t->engine);
    if (t->rc->teacher.model[0]) online_teacher_close(&t->teacher);
    if (t->cache) {
        teacher_cache_rows_free(&t->cache_rows);
        teacher_cache_close(t->cache);
    }
    kd_head_free(&t->kd);
    if (t->sampling) on_policy_close(&t->policy);
    optimizer_free(&t->opt);
    free(t->ema);
    model_state_free(&t->model);
    free(t->resume_from);
    run_dir_unlock(t->lock_fd);
}

// ---------------------------------------------------------------- steps

// Rows of the step's batch that come from the data: the first ones (the sampled rows, if any, are the last).
static int data_rows(const trainer *t) { return t->rc->batch.size - (t->sampling ? t->policy.rows : 0); }

// The step's batch row of row r of this rank's micro-batch k.
static int batch_row(const trainer *t, int k, int r) { return t->dp.rank * t->dp.rows + k * t->micro_b + r; }

// Rows of this rank's micro-batch k that come from the data.
static int data_rows_of(const trainer *t, int k) {
    int left = data_rows(t) - batch_row(t, k, 0);
    return left < 0 ? 0 : left < t->micro_b ? left : t->micro_b;
}

// The sampled rows that fall in micro-batch k, after its data rows.
static void stage_sampled_rows(trainer *t, int k, loader_batch *b) {
    int data = data_rows(t);
    for (int r = data_rows_of(t, k); r < t->micro_b; r++) {
        size_t at = (size_t)r * t->T;
        on_policy_stage_row(&t->policy, batch_row(t, k, r) - data, t->tokens + at, t->targets + at, b->doc_begin + at);
    }
}

// Forward, head and backward of micro-batch k of a step (k < 0: of an evaluation); returns its
// share of the loss.
static int micro_step(trainer *t, int k, loader_batch *b, double scale, bool with_grads, double *loss, gk_err *err) {
    loader_batch_stage(b, (size_t)t->micro_b, t->tokens, b->doc_begin, t->targets);
    if (k >= 0 && t->sampling) stage_sampled_rows(t, k, b);
    token_batch batch = {.B = t->micro_b, .T = t->T, .tokens = t->tokens, .doc_begin = b->doc_begin};
    xent_ctx xent = {.targets = t->targets, .scale = scale};
    head_loss head = {.kind = HEAD_XENT, .xent = &xent, .chunk = t->rc->train.head_chunk, .grads = with_grads};
    if (engine_forward(t->engine, &batch, 0, err)) return -1;
    if (t->distill && with_grads) { // training steps distil; evaluation stays plain cross-entropy
        if (t->cache ? teacher_cache_batch(t->cache, b, &t->cache_rows, err)
                     : online_teacher_forward(&t->teacher, &batch, err))
            return -1;
        t->kd.targets = t->targets;
        t->kd.scale = scale;
        head = kd_head_loss(&t->kd, true);
    }
    if (engine_head(t->engine, &head, loss, err)) return -1;
    return with_grads ? engine_backward(t->engine, err) : 0;
}

// This step's sampled rows, drawn with the weights the step starts from: the student's, or
// with kd.seq_kd the teacher's.
static int sample_rows(trainer *t, gk_err *err) {
    bool teacher = t->rc->kd.seq_kd;
    generator g = {.m = teacher ? &t->teacher.model : &t->model, .engine = teacher ? t->teacher.engine : t->engine,
                   .model_name = teacher ? t->rc->teacher.model : "the student"};
    int rows = on_policy_rows_at(&t->policy, t->state.step), data = t->rc->batch.size - rows;
    int first = batch_row(t, 0, 0) - data, last = first + t->dp.rows; // this rank's sampled rows
    first = first < 0 ? 0 : first > rows ? rows : first;
    last = last < 0 ? 0 : last > rows ? rows : last;
    return on_policy_sample_part(&t->policy, &g, t->state.step, first, last - first, err);
}

// One optimizer step: *loss is the mean over the step's trained targets.
static int train_step(trainer *t, double lr, double *loss, double *norm, bool *skipped, gk_err *err) {
    int64_t counts[2] = {0, 0}; // the step's trained targets and sampled tokens
    if (t->sampling && sample_rows(t, err)) return -1;
    int data = data_rows(t), batches = 0;
    dp_skip_before(&t->dp, t->train, data);
    for (int k = 0; k < t->accum; k++) {
        size_t rows = (size_t)data_rows_of(t, k);
        t->micro[k].batch_size = 0; // stays 0 when every row of micro-batch k is sampled
        if (rows && loader_next(t->train, rows, &t->micro[k], err)) return -1;
        counts[0] += rows ? (int64_t)loader_batch_targets(&t->micro[k]) : 0;
        batches += rows > 0;
    }
    dp_skip_after(&t->dp, t->train, data, batches);
    if (t->sampling) counts[1] = t->policy.new_tokens;
    counts[0] += counts[1]; // one target per sampled token
    dist_sum_i64(counts, 2); // the loss is the mean over the whole batch's targets
    int64_t trained = counts[0];
    t->sampled_tokens = counts[1];
    t->sampling_s = t->sampling ? t->policy.seconds : 0;
    dist_max_f64(&t->sampling_s, 1);
    engine_zero_grads(t->engine);
    memset(&t->kd.sums, 0, sizeof t->kd.sums);
    *loss = 0;
    for (int k = 0; k < t->accum; k++) {
        double part;
        if (micro_step(t, k, &t->micro[k], trained ? 1.0 / (double)trained : 0.0, true, &part, err)) return -1;
        *loss += part;
    }
    if (engine_reduce_grads(t->engine, err)) return -1;
    double sums[5] = {*loss, t->kd.sums.loss, t->kd.sums.ce, t->kd.sums.kd, t->kd.sums.kl};
    dist_sum_f64(sums, 5);
    *loss = sums[0];
    t->step_sums = (kd_sums){sums[1], sums[2], sums[3], sums[4]};
    *norm = engine_grad_norm(t->engine);
    *skipped = !isfinite(*loss) || !isfinite(*norm);
    if (!*skipped && engine_optimizer_step(t->engine, lr, (float)grad_clip_scale(*norm, t->rc->optim.grad_clip), err))
        return -1;
    t->state.tokens_seen += (int64_t)t->rc->batch.size * t->T;
    loader_get_cursor(t->train, &t->state.cursor);
    return 0;
}

// Mean loss over the first eval.tokens tokens of the validation shards (all when 0).
static int evaluate(trainer *t, double *val_loss, int64_t *n_targets, gk_err *err) {
    if (loader_set_cursor(t->val, &t->val_start, err)) return -1;
    uint64_t windows = loader_total_windows(t->val);
    if (t->rc->eval.tokens > 0) {
        uint64_t want = (uint64_t)((t->rc->eval.tokens + t->T - 1) / t->T);
        if (want < windows) windows = want;
    }
    double sum = 0;
    *n_targets = 0;
    loader_batch *b = &t->micro[0];
    for (uint64_t done = 0, j = 0; done < windows; j++) { // batch j is rank j mod ranks's
        size_t rows = windows - done < (uint64_t)t->micro_b ? (size_t)(windows - done) : (size_t)t->micro_b;
        done += rows;
        if ((int)(j % (uint64_t)t->dp.ranks) != t->dp.rank) {
            loader_skip(t->val, rows, 1);
            continue;
        }
        double part;
        if (loader_next(t->val, rows, b, err) || micro_step(t, -1, b, 1.0, false, &part, err)) return -1;
        sum += part;
        *n_targets += (int64_t)loader_batch_targets(b);
    }
    dist_sum_f64(&sum, 1);
    dist_sum_i64(n_targets, 1);
    *val_loss = *n_targets ? sum / (double)*n_targets : NAN;
    return 0;
}

// ---------------------------------------------------------------- the loop

static int log_step(trainer *t, double loss, double lr, double norm, bool skipped, double rate, gk_err *err) {
    if (!t->root) return 0;
    strbuf sb = {0};
    sb_printf(&sb, "{\"step\": %lld, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, \"tokens\": %lld, ",
              (long long)t->state.step, isfinite(loss) ? loss : -1.0, lr, isfinite(norm) ? norm : -1.0,
              (long long)t->state.tokens_seen);
    if (t->distill)
        sb_printf(&sb, "\"ce\": %.9g, \"kd\": %.9g, \"kl\": %.9g, ", t->step_sums.ce, t->step_sums.kd, t->step_sums.kl);
    if (t->sampling)
        sb_printf(&sb, "\"sampled_rows\": %d, \"sampled_tokens\": %lld, \"sampling_s\": %.3f, ", t->policy.rows,
                  (long long)t->sampled_tokens, t->sampling_s);
    sb_printf(&sb, "\"tokens_per_s\": %.1f, \"elapsed\": %.3f%s}", rate, t->state.elapsed,
              skipped ? ", \"skipped\": \"non-finite loss or gradient\"" : "");
    int r = metrics_write(&t->metrics, &sb, err);
    sb_free(&sb);
    return r;
}

// Validation loss of other weights (the EMA, an average) with the run's buffers.
static int evaluate_weights(trainer *t, const float *params, double *val_loss, int64_t *n, gk_err *err) {
    if (engine_load_weights(t->engine, params, err)) return -1;
    int r = evaluate(t, val_loss, n, err);
    if (engine_load_weights(t->engine, NULL, err)) return -1; // back to the master weights
    return r;
}

static int log_eval(trainer *t, gk_err *err) {
    double val_loss, ema_loss = 0;
    int64_t n;
    if (evaluate(t, &val_loss, &n, err)) return -1;
    if (t->ema) { // under ZeRO-1 the whole EMA is gathered from every rank's block for the evaluation
        float *whole = t->dp.zero ? param_buffer_alloc(&t->model.layout, err) : NULL;
        int r = (t->dp.zero && !whole) || engine_sync_host(t->engine, err) ||
                        (whole && dp_whole_ema(&t->dp, t->ema, t->model.layout.n_floats, whole, err)) ||
                        evaluate_weights(t, whole ? whole : t->ema, &ema_loss, &n, err) ? -1 : 0;
        free(whole);
        if (r) return -1;
    }
    if (!t->root) return 0;
    strbuf sb = {0};
    sb_printf(&sb, "{\"step\": %lld, \"val_loss\": %.9g, ", (long long)t->state.step, val_loss);
    if (t->ema) sb_printf(&sb, "\"val_loss_ema\": %.9g, ", ema_loss);
    sb_printf(&sb, "\"val_targets\": %lld}", (long long)n);
    int r = metrics_write(&t->metrics, &sb, err);
    sb_free(&sb);
    progress_show(&t->prog, true, "step %lld: validation loss %.4f over %lld targets", (long long)t->state.step,
                  val_loss, (long long)n);
    return r;
}

static void show_progress(trainer *t, double loss, double lr, double rate, bool force) {
    char eta[32];
    double remaining = (double)(t->total_steps - t->state.step) * (double)t->rc->batch.size * t->T;
    if (!t->root) return;
    progress_show(&t->prog, force, "step %lld/%lld  loss %.4f  lr %.3g  %.0f tokens/s  ETA %s", (long long)t->state.step,
                  (long long)t->total_steps, loss, lr, rate, format_duration(rate > 0 ? remaining / rate : 0, eta));
}

static int run_loop(trainer *t, gk_err *err) {
    const run_config *rc = t->rc;
    int bad_in_row = 0;
    while (t->state.step < t->total_steps) {
        double lr = schedule_lr(&t->sched, t->state.step), loss, norm, start = now_seconds();
        bool skipped;
        if (train_step(t, lr, &loss, &norm, &skipped, err)) return -1;
        double seconds = now_seconds() - start, rate = (double)rc->batch.size * t->T / seconds;
        t->state.elapsed += seconds;
        t->state.step++;
        bad_in_row = skipped ? bad_in_row + 1 : 0;
        t->state.bad_steps += skipped;
        if (skipped) {
            char msg[160];
            snprintf(msg, sizeof msg, "step %lld: non-finite loss or gradient; skipped without changing the weights "
                     "(%d in a row)", (long long)t->state.step, bad_in_row);
            warn(&t->prog, msg);
        }
        if (bad_in_row >= rc->train.max_bad_steps)
            return gk_fail(err, GK_EINPUT, "%d non-finite steps in a row (at step %lld); stopping (train.max_bad_steps)",
                           bad_in_row, (long long)t->state.step);
        if ((t->state.step % rc->log.every == 0 || skipped || t->state.step == t->total_steps) &&
            log_step(t, loss, lr, norm, skipped, rate, err))
            return -1;
        show_progress(t, loss, lr, rate, false);
        if (t->val && rc->eval.every && t->state.step % rc->eval.every == 0 && log_eval(t, err)) return -1;
        test_kill_point("GEMMAKD_TEST_KILL_AFTER_STEP", t->state.step); // tests die right after a step
        bool save = (rc->checkpoint.every && t->state.step % rc->checkpoint.every == 0) || t->state.step == t->total_steps;
        if (save && engine_sync_host(t->engine, err)) return -1;
        if (save && dp_save(&t->dp, rc->run_dir, &t->model, &t->opt, &t->state, t->ema, t->tokenizer_sha256,
                            rc->checkpoint.keep, err))
            return -1;
    }
    return 0;
}

// average.last_k: the newest k checkpoints averaged into run_dir/average-last-K,
// and that model's validation loss logged beside the final one.
static int average_last_checkpoints(trainer *t, gk_err *err) {
    const run_config *rc = t->rc;
    char **dirs, name[64];
    size_t n, k = (size_t)rc->average.last_k;
    if (ckpt_list_dirs(rc->run_dir, &dirs, &n, err)) return -1;
    if (n < k) k = n;
    double *w = gk_calloc(n ? n : 1, sizeof *w, err);
    model_state avg = {t->model.cfg, t->model.layout, param_buffer_alloc(&t->model.layout, err)};
    snprintf(name, sizeof name, "average-last-%d", rc->average.last_k);
    char *out = path_join(rc->run_dir, name);
    int r = w && avg.params && out ? 0 : gk_fail(err, GK_ENOMEM, "out of memory");
    for (size_t i = n - k; r == 0 && i < n; i++) w[i] = 1;
    if (r == 0) r = average_model_dirs(dirs, w, n, &avg, err); // every rank: each evaluates its share with it
    if (r == 0 && t->root) r = dir_remove_tree(out, err); // a previous run's average of other checkpoints
    if (r == 0 && t->root) r = model_create_dir(out, &avg, ST_F32, MODEL_SHARD_BYTES, t->tokenizer_sha256, err);
    r = dist_check(r, err); // before the evaluation's collectives
    double val_loss;
    int64_t targets;
    if (r == 0 && t->val && evaluate_weights(t, avg.params, &val_loss, &targets, err)) r = -1;
    if (r == 0 && t->val && t->root) {
        strbuf sb = {0};
        sb_printf(&sb, "{\"step\": %lld, \"val_loss_average\": %.9g, \"average_of\": %zu, \"val_targets\": %lld}",
                  (long long)t->state.step, val_loss, k, (long long)targets);
        r = metrics_write(&t->metrics, &sb, err);
        sb_free(&sb);
        fprintf(stderr, "average of the last %zu checkpoints: %s, validation loss %.4f\n", k, out, val_loss);
    }
    for (size_t i = 0; i < n; i++) free(dirs[i]);
    free(dirs);
    free(w);
    free(avg.params);
    free(out);
    return r;
}

// data.seq_len fits the positions of the student (model.config, or model.from's config.json)
// and of an in-process teacher: checked before anything is written.
static int check_positions(const run_config *rc, gk_err *err) {
    const char *dirs[2] = {rc->model.from[0] ? rc->model.from : NULL, rc->teacher.model[0] ? rc->teacher.model : NULL};
    for (int i = 0; i < 2; i++) {
        if (i == 1 && !dirs[1]) break;
        char *path = dirs[i] ? path_join(dirs[i], "config.json") : strdup(rc->model.config);
        model_config cfg;
        int r = path ? model_config_load(path, &cfg, err) : gk_fail(err, GK_ENOMEM, "out of memory");
        if (r == 0) r = model_config_check_seq_len(&cfg, rc->data.seq_len, "data.seq_len", path, err);
        free(path);
        if (r) return -1;
    }
    return 0;
}

int trainer_run(const run_config *rc, bool resume, bool overwrite, gk_err *err) {
    if (check_positions(rc, err)) return -1;
    trainer t;
    int r = setup(&t, rc, resume, overwrite, err);
    if (r == 0 && t.state.step >= t.total_steps) {
        if (t.root)
            fprintf(stderr, "%s: already trained for %lld steps; nothing to do\n", rc->run_dir, (long long)t.total_steps);
    } else if (r == 0) {
        r = run_loop(&t, err);
        progress_done(&t.prog);
        if (r == 0 && rc->average.last_k) r = average_last_checkpoints(&t, err);
        if (r == 0 && t.root) {
            char took[32];
            fprintf(stderr, "trained %lld steps (%lld tokens) in %s; final checkpoint %s/step-%06lld\n",
                    (long long)t.state.step, (long long)t.state.tokens_seen, format_duration(t.state.elapsed, took),
                    rc->run_dir, (long long)t.state.step);
        }
    }
    teardown(&t);
    return r;
}

// gemmakd teacher-logits: plan segments over the loader's windows, skip the
// finished ones, run the teacher over the rest and write them
// (distill/teacher_cache_build.h). Under mpirun every rank computes a block of
// each segment's batches and rank 0 gathers the rows and writes the file alone.
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/dist.h"
#include "common/file.h"
#include "common/kill_point.h"
#include "common/sha256.h"
#include "common/half.h"
#include "common/progress.h"
#include "common/timer.h"
#include "distill/teacher.h"
#include "distill/teacher_cache_build.h"
#include "distill/teacher_cache_internal.h"

typedef struct {
    size_t shard;          // loader shard index
    uint64_t first, end;   // windows [first, end)
    bool mine;             // this part writes it
    char *path;            // OUT/<stem>.<first>-<end>.h5
} segment_plan;

// Head callback context: one batch of windows of one segment.
typedef struct {
    const teacher_cache_job *job;
    size_t T, row0, valid;  // segment row of batch position 0; positions with a window
    uint64_t window0, shard_key;
    uint32_t *ids;          // [rows, k] of the segment
    float *logprobs;        // [rows, k]
    uint16_t *counts;       // [rows, k] (sample)
    float *leftover;        // [rows] (top-k)
    teacher_row_work *work; // [n_work] one per thread
    int n_work;
    bool failed;
    size_t bad_pos;
} head_ctx;

typedef struct {
    const teacher_cache_job *job;
    loader *l;
    online_teacher teacher;
    loader_batch batch;
    int32_t *tokens;          // [B*T] teacher input
    tc_segment base;          // attributes shared by the run's segments
    char (*shard_sha)[65];    // [n_shards]
    uint64_t *global_first;   // [n_shards]: global id of each shard's window 0
    segment_plan *plan;
    size_t n_plan;
    uint64_t chunk_rows, max_rows;
    head_ctx ctx;
    uint16_t *f16;            // [max_rows, k]
    progress prog;
    bool show;                // the progress line and backend report (rank 0 of a --progress job)
    uint64_t my_windows, done_windows; // of the whole job (kept on rank 0)
    double start;
} builder;

// ---------------------------------------------------------------- setup

static int check_job(const teacher_cache_job *j, gk_err *err) {
    if (j->k < 1 || j->k > SPARSE_MAX_K) return gk_fail(err, GK_EUSAGE, "--k %d is not in 1..%d", j->k, SPARSE_MAX_K);
    if (!(j->temperature > 0)) return gk_fail(err, GK_EUSAGE, "--temperature must be > 0");
    if (j->n_parts < 1 || j->part < 0 || j->part >= j->n_parts)
        return gk_fail(err, GK_EUSAGE, "--part %d/%d: expected i/n with 0 <= i < n", j->part, j->n_parts);
    if (j->batch < 1) return gk_fail(err, GK_EUSAGE, "--batch must be >= 1");
    if (j->logprob_bytes != 2 && j->logprob_bytes != 4) return gk_fail(err, GK_EINTERNAL, "logprob_bytes %d", j->logprob_bytes);
    return 0;
}

// Opens the shards and the teacher; fills the attributes every segment shares.
static int open_inputs(builder *b, gk_err *err) {
    const teacher_cache_job *j = b->job;
    loader_options lo = {.seq_len = j->seq_len};
    if (loader_open(&b->l, j->data, j->n_data, &lo, err)) return -1;
    size_t n = loader_n_shards(b->l);
    const shard_meta *sm = &loader_shard(b->l, 0)->meta;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < i; k++) {
            char *x = tc_segment_name(loader_shard(b->l, i)->path, 0, 0), *y = tc_segment_name(loader_shard(b->l, k)->path, 0, 0);
            int same = x && y && !strcmp(x, y);
            free(x);
            free(y);
            if (same)
                return gk_fail(err, GK_EINPUT, "token shards %s and %s have the same file stem; their cache files would collide",
                               loader_shard(b->l, k)->path, loader_shard(b->l, i)->path);
        }
    if (j->method == TEACHER_CACHE_TOPK && j->k > sm->vocab_size)
        return gk_fail(err, GK_EUSAGE, "--k %d is more than the vocabulary (%" PRId64 " ids)", j->k, sm->vocab_size);
    model_config cfg;
    char *config = path_join(j->teacher_dir, "config.json");
    int rc = config ? model_config_load(config, &cfg, err) : gk_fail(err, GK_ENOMEM, "out of memory");
    free(config);
    if (rc) return gk_wrap(err, "teacher");
    if (model_config_check_seq_len(&cfg, (int64_t)j->seq_len, "--seq-len", j->teacher_dir, err)) return -1;
    if (cfg.vocab_size < sm->vocab_size) // a model's vocabulary may be padded past its tokenizer's
        return gk_fail(err, GK_EINPUT, "teacher %s has a vocabulary of %d ids but the token shards have %" PRId64,
                       j->teacher_dir, cfg.vocab_size, sm->vocab_size);
    if (online_teacher_open(&b->teacher, j->teacher_dir, j->backend, cfg.vocab_size, sm->tokenizer_sha256, j->batch,
                            (int)j->seq_len, err) ||
        (b->show && engine_backend_report(j->backend, "teacher", err)))
        return -1;
    teacher_cache_meta *m = &b->base.meta;
    m->method = j->method;
    m->k = j->k;
    m->seq_len = j->seq_len;
    m->temperature = j->temperature;
    m->seed = j->method == TEACHER_CACHE_SAMPLE ? j->seed : 0;
    if (strlen(j->teacher_dir) >= sizeof m->teacher) return gk_fail(err, GK_EUSAGE, "--teacher path too long");
    snprintf(m->teacher, sizeof m->teacher, "%s", j->teacher_dir);
    if (teacher_fingerprint(j->teacher_dir, m->teacher_sha256, err)) return -1;
    snprintf(m->teacher_precision, sizeof m->teacher_precision, "%s", engine_precision_name(j->backend.precision));
    m->final_softcap = b->teacher.model.cfg.final_softcap;
    m->vocab_size = cfg.vocab_size; // the width of the distributions the ids index
    memcpy(m->tokenizer_sha256, sm->tokenizer_sha256, 65);
    b->base.logprob_bytes = j->logprob_bytes;
    b->base.count_bytes = j->method == TEACHER_CACHE_SAMPLE ? (j->k <= 255 ? 1 : 2) : 0;
    b->shard_sha = gk_calloc(n, sizeof *b->shard_sha, err);
    b->global_first = b->shard_sha ? gk_calloc(n, sizeof *b->global_first, err) : NULL;
    if (!b->global_first) return -1;
    for (size_t i = 1; i < n; i++) b->global_first[i] = b->global_first[i - 1] + loader_shard_windows(b->l, i - 1);
    return 0;
}

// Segments of segment_windows windows over every shard; chunks of whole windows.
static int make_plan(builder *b, gk_err *err) {
    const teacher_cache_job *j = b->job;
    size_t n = loader_n_shards(b->l), T = j->seq_len, K = (size_t)j->k;
    double row_bytes = (double)K * (4 + j->logprob_bytes + b->base.count_bytes) + (j->method == TEACHER_CACHE_TOPK ? 4 : 0);
    uint64_t wpc = (uint64_t)(TC_CHUNK_IDS_BYTES / ((double)T * K * 4));
    if (wpc < 1) wpc = 1;
    uint64_t S = j->segment_windows;
    if (!S) {
        S = (uint64_t)(TC_SEGMENT_BYTES / (row_bytes * (double)T));
        S = S < wpc ? wpc : S / wpc * wpc;
    }
    b->base.meta.segment_windows = S;
    uint64_t max_seg = 0, n_plan = 0;
    for (size_t i = 0; i < n; i++) n_plan += (loader_shard_windows(b->l, i) + S - 1) / S;
    b->plan = gk_calloc(n_plan ? n_plan : 1, sizeof *b->plan, err);
    if (!b->plan) return -1;
    for (size_t i = 0; i < n; i++) {
        uint64_t W = loader_shard_windows(b->l, i);
        for (uint64_t w = 0; w < W; w += S) {
            segment_plan *p = &b->plan[b->n_plan];
            p->shard = i;
            p->first = w;
            p->end = W - w < S ? W : w + S;
            p->mine = b->n_plan % (size_t)j->n_parts == (size_t)j->part;
            char *name = tc_segment_name(loader_shard(b->l, i)->path, p->first, p->end);
            p->path = name ? path_join(j->out_dir, name) : NULL;
            free(name);
            if (!p->path) return gk_fail(err, GK_ENOMEM, "out of memory");
            b->n_plan++;
            if (p->mine) b->my_windows += p->end - p->first;
            if (p->mine && p->end - p->first > max_seg) max_seg = p->end - p->first;
        }
    }
    b->chunk_rows = wpc * T;
    b->max_rows = max_seg * T;
    return 0;
}

static bool planned(const builder *b, const char *name, size_t len) {
    for (size_t p = 0; p < b->n_plan; p++) {
        const char *base = tc_basename(b->plan[p].path);
        if (strlen(base) == len && !strncmp(base, name, len)) return true;
    }
    return false;
}

// A file of OUT named like a segment of one of our shards but not in the plan
// was written with another segment size: an error. Temporary files of our
// segments left by dead processes are removed.
static int scan_out_dir(builder *b, gk_err *err) {
    DIR *d = opendir(b->job->out_dir);
    if (!d) return gk_fail(err, GK_EIO, "%s: cannot list: %s", b->job->out_dir, strerror(errno));
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        const char *name = e->d_name, *tmp = strstr(name, ".h5.tmp-");
        if (tmp) {
            long pid = atol(tmp + 8);
            if (planned(b, name, (size_t)(tmp + 3 - name)) && pid > 0 && pid != (long)getpid() &&
                kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
                char *path = path_join(b->job->out_dir, name);
                if (path) unlink(path);
                free(path);
            }
            continue;
        }
        for (size_t i = 0; i < loader_n_shards(b->l) && rc == 0; i++) {
            char *pattern = tc_segment_name(loader_shard(b->l, i)->path, 0, 0); // "<stem>.000000-000000.h5"
            if (!pattern) {
                rc = gk_fail(err, GK_ENOMEM, "out of memory");
                break;
            }
            size_t sl = strlen(pattern) - strlen("000000-000000.h5"), len = strlen(name);
            unsigned long long first, end;
            int used = 0;
            bool like = !strncmp(name, pattern, sl) && sscanf(name + sl, "%llu-%llu.h5%n", &first, &end, &used) == 2 &&
                        sl + (size_t)used == len;
            free(pattern);
            if (like && !planned(b, name, len))
                rc = gk_fail(err, GK_EINPUT,
                             "%s/%s: windows %llu-%llu do not match this run's segments of %" PRIu64
                             " windows (use the --segment-windows of the run that wrote it, or another --out)",
                             b->job->out_dir, name, first, end, b->base.meta.segment_windows);
        }
    }
    closedir(d);
    return rc;
}

static int alloc_buffers(builder *b, gk_err *err) {
    const teacher_cache_job *j = b->job;
    size_t cells = b->max_rows * (size_t)j->k, T = j->seq_len, V = (size_t)b->base.meta.vocab_size;
    head_ctx *c = &b->ctx;
    c->job = j;
    c->T = T;
    if (loader_batch_alloc(&b->batch, (size_t)j->batch, T, err)) return -1;
    if (!(b->tokens = gk_calloc((size_t)j->batch * T, sizeof *b->tokens, err))) return -1;
    if (!(c->ids = gk_calloc(cells ? cells : 1, sizeof *c->ids, err))) return -1;
    if (!(c->logprobs = gk_calloc(cells ? cells : 1, sizeof *c->logprobs, err))) return -1;
    if (j->logprob_bytes == 2 && !(b->f16 = gk_calloc(cells ? cells : 1, sizeof *b->f16, err))) return -1;
    if (j->method == TEACHER_CACHE_SAMPLE && !(c->counts = gk_calloc(cells ? cells : 1, sizeof *c->counts, err))) return -1;
    if (j->method == TEACHER_CACHE_TOPK && !(c->leftover = gk_calloc(b->max_rows ? b->max_rows : 1, sizeof *c->leftover, err)))
        return -1;
    c->n_work = omp_get_max_threads();
    if (!(c->work = gk_calloc((size_t)c->n_work, sizeof *c->work, err))) return -1;
    for (int i = 0; i < c->n_work; i++)
        if (teacher_row_work_alloc(&c->work[i], (int)V, j->k, err)) return -1;
    return 0;
}

static void builder_free(builder *b) {
    head_ctx *c = &b->ctx;
    for (int i = 0; c->work && i < c->n_work; i++) teacher_row_work_free(&c->work[i]);
    free(c->work);
    free(c->ids);
    free(c->logprobs);
    free(c->counts);
    free(c->leftover);
    free(b->f16);
    for (size_t i = 0; i < b->n_plan; i++) free(b->plan[i].path);
    free(b->plan);
    free(b->tokens);
    free(b->shard_sha);
    free(b->global_first);
    loader_batch_free(&b->batch);
    online_teacher_close(&b->teacher);
    loader_close(b->l);
}

// ---------------------------------------------------------------- computing

static double head_rows(void *ctx_, const float *logits, float *dlogits, size_t first, size_t count, int V) {
    (void)dlogits;
    head_ctx *c = ctx_;
    const teacher_cache_job *j = c->job;
    size_t K = (size_t)j->k;
#pragma omp parallel for schedule(dynamic, 4) num_threads(c->n_work)
    for (size_t r = 0; r < count; r++) {
        size_t pos = first + r, row = c->row0 + pos;
        if (pos >= c->valid) continue;
        teacher_row_work *w = &c->work[omp_get_thread_num()];
        const float *l = logits + r * (size_t)V; // [V]
        int rc;
        if (j->method == TEACHER_CACHE_TOPK) {
            rc = teacher_topk_row(l, V, j->temperature, j->k, w, c->ids + row * K, c->logprobs + row * K, c->leftover + row);
        } else {
            uint64_t key = teacher_draw_key(j->seed, c->shard_key, c->window0 + pos / c->T, pos % c->T);
            rc = teacher_sample_row(l, V, j->temperature, j->k, key, w, c->ids + row * K, c->logprobs + row * K,
                                    c->counts + row * K);
        }
        if (rc < 0) {
#pragma omp critical
            if (!c->failed || pos < c->bad_pos) c->failed = true, c->bad_pos = pos;
        }
    }
    return 0;
}

static void show_progress(builder *b, bool force) {
    if (!b->show) return;
    uint64_t done = b->done_windows < b->my_windows ? b->done_windows : b->my_windows;
    double dt = now_seconds() - b->start, rate = dt > 0 ? (double)done * b->job->seq_len / dt : 0;
    char eta[32];
    format_duration(rate > 0 ? (double)(b->my_windows - done) * b->job->seq_len / rate : 0, eta);
    progress_show(&b->prog, force, "teacher-logits: %" PRIu64 "/%" PRIu64 " windows  %.0f tokens/s  ETA %s", done,
                  b->my_windows, rate, eta);
}

// This rank's windows [lo, hi) of segment p: a contiguous block of the segment's batches of B
// windows (dist_split), so that every batch holds the windows it holds in one process and the
// ranks' rows tile the segment in rank order.
static void rank_windows(const builder *b, const segment_plan *p, uint64_t *lo, uint64_t *hi) {
    uint64_t B = (uint64_t)b->job->batch, n_batches = (p->end - p->first + B - 1) / B, blo, bhi;
    dist_split(n_batches, dist_rank(), dist_size(), &blo, &bhi);
    *lo = p->end - p->first < blo * B ? p->end : p->first + blo * B;
    *hi = p->end - p->first < bhi * B ? p->end : p->first + bhi * B;
}

// Runs the teacher over windows [lo, hi) of the segment, batch by batch, into the row buffers.
static int compute_segment(builder *b, const segment_plan *p, uint64_t lo, uint64_t hi, teacher_cache_build_stats *st,
                           gk_err *err) {
    const teacher_cache_job *j = b->job;
    size_t T = j->seq_len, B = (size_t)j->batch;
    if (lo == hi) return 0; // more ranks than the segment has batches
    loader_cursor cur;
    loader_get_cursor(b->l, &cur);
    cur.epoch = 0;
    cur.index = b->global_first[p->shard] + lo;
    if (loader_set_cursor(b->l, &cur, err)) return -1;
    head_ctx *c = &b->ctx;
    c->shard_key = teacher_shard_key(b->shard_sha[p->shard]);
    c->failed = false;
    const model_config *cfg = &b->teacher.model.cfg;
    int chunk = (int)((8u << 20) / (unsigned)cfg->vocab_size);
    chunk = chunk < 16 ? 16 : chunk;
    for (uint64_t w = lo; w < hi; w += B) {
        size_t n = hi - w < B ? (size_t)(hi - w) : B;
        double t0 = now_seconds();
        if (loader_next(b->l, n, &b->batch, err)) return -1;
        GK_ASSERT(b->batch.shard[0] == p->shard && b->batch.window[0] == w);
        loader_batch_stage(&b->batch, B, b->tokens, b->batch.doc_begin, NULL); // rows past n padded
        token_batch tb = {.B = (int)B, .T = (int)T, .tokens = b->tokens, .doc_begin = b->batch.doc_begin};
        if (online_teacher_forward(&b->teacher, &tb, err)) return -1;
        c->row0 = (size_t)(w - p->first) * T;
        c->valid = n * T;
        c->window0 = w;
        double loss;
        head_loss head = {.kind = HEAD_CALLBACK, .fn = head_rows, .ctx = c, .chunk = chunk};
        if (engine_head(b->teacher.engine, &head, &loss, err)) return -1;
        if (c->failed)
            return gk_fail(err, GK_EINPUT, "teacher %s: non-finite logits at %s window %" PRIu64 " position %zu",
                           j->teacher_dir, loader_shard(b->l, p->shard)->path, w + c->bad_pos / T, c->bad_pos % T);
        st->teacher_seconds += now_seconds() - t0;
        st->windows += n;
        st->tokens += n * T;
        b->done_windows += n * (uint64_t)dist_size(); // rank 0's share times the ranks: an estimate until gathered
        show_progress(b, false);
    }
    return 0;
}

// Rank 0 receives every rank's rows of segment p (its windows [lo, hi) here).
static int gather_segment(builder *b, const segment_plan *p, uint64_t lo, uint64_t hi, gk_err *err) {
    size_t T = b->job->seq_len, K = (size_t)b->job->k;
    uint64_t r0 = (lo - p->first) * T, r1 = (hi - p->first) * T;
    head_ctx *c = &b->ctx;
    if (dist_gather_rows(c->ids, K * sizeof *c->ids, r0, r1, err) ||
        dist_gather_rows(c->logprobs, K * sizeof *c->logprobs, r0, r1, err) ||
        (c->counts && dist_gather_rows(c->counts, K * sizeof *c->counts, r0, r1, err)) ||
        (c->leftover && dist_gather_rows(c->leftover, sizeof *c->leftover, r0, r1, err)))
        return -1;
    return 0;
}

static int write_segment(builder *b, const segment_plan *p, teacher_cache_build_stats *st, gk_err *err) {
    tc_segment s = b->base;
    snprintf(s.token_shard, sizeof s.token_shard, "%s", tc_basename(loader_shard(b->l, p->shard)->path));
    memcpy(s.token_shard_sha256, b->shard_sha[p->shard], 65);
    s.first_window = p->first;
    s.n_windows = p->end - p->first;
    s.shard_windows = loader_shard_windows(b->l, p->shard);
    size_t cells = (size_t)(p->end - p->first) * b->job->seq_len * (size_t)b->job->k;
    for (size_t i = 0; b->f16 && i < cells; i++) b->f16[i] = f32_to_f16(b->ctx.logprobs[i]);
    tc_segment_data d = {.ids = b->ctx.ids, .logprobs_f16 = b->f16, .logprobs = b->ctx.logprobs,
                         .counts = b->ctx.counts, .leftover = b->ctx.leftover};
    uint64_t bytes = 0;
    if (tc_write_segment(p->path, &s, &d, b->chunk_rows, &bytes, err)) return -1;
    st->bytes += bytes;
    st->segments_written++;
    return 0;
}

// A finished segment from an earlier run must have been written with this run's settings.
static int check_present(builder *b, const segment_plan *p, gk_err *err) {
    tc_segment got, want = b->base;
    if (tc_segment_read(p->path, &got, err)) return gk_wrap(err, "cannot resume"); // also another kind of file
    snprintf(want.token_shard, sizeof want.token_shard, "%s", tc_basename(loader_shard(b->l, p->shard)->path));
    memcpy(want.token_shard_sha256, b->shard_sha[p->shard], 65);
    want.first_window = p->first;
    want.n_windows = p->end - p->first;
    want.shard_windows = loader_shard_windows(b->l, p->shard);
    return tc_segment_compare(p->path, &got, "this run has", &want, err);
}

// Rank 0 alone looks at OUT: creates it, clears dead temporaries, and checks the finished
// segments of this part, which leave the plan (the ETA counts only the rest).
static int skip_finished(builder *b, teacher_cache_build_stats *st, gk_err *err) {
    int rc = dir_create_parents(b->job->out_dir, err);
    if (rc == 0) rc = scan_out_dir(b, err);
    for (size_t i = 0; rc == 0 && i < b->n_plan; i++) {
        segment_plan *p = &b->plan[i];
        if (!p->mine || !path_exists(p->path)) continue;
        rc = check_present(b, p, err);
        st->segments_present++;
        b->my_windows -= p->end - p->first;
        p->mine = false;
    }
    return rc;
}

// Rank 0's shard hashes and plan (the segments left to compute) to every rank.
static int share_plan(builder *b, gk_err *err) {
    if (dist_size() <= 1) return 0;
    dist_bcast(b->shard_sha, loader_n_shards(b->l) * sizeof *b->shard_sha, 0);
    uint8_t *mine = gk_calloc(b->n_plan ? b->n_plan : 1, 1, err);
    for (size_t i = 0; mine && i < b->n_plan; i++) mine[i] = b->plan[i].mine;
    if (dist_check(mine ? 0 : -1, err)) {
        free(mine);
        return -1;
    }
    dist_bcast(mine, b->n_plan, 0);
    for (size_t i = 0; i < b->n_plan; i++) b->plan[i].mine = mine[i];
    free(mine);
    return 0;
}

// One segment: every rank computes its block, rank 0 gathers and writes it.
static int build_segment(builder *b, const segment_plan *p, teacher_cache_build_stats *st, gk_err *err) {
    uint64_t lo, hi, before = b->done_windows;
    rank_windows(b, p, &lo, &hi);
    int rc = dist_check(compute_segment(b, p, lo, hi, st, err), err);
    if (rc == 0) rc = gather_segment(b, p, lo, hi, err);
    if (rc == 0 && dist_is_root()) {
        rc = write_segment(b, p, st, err);
        if (rc == 0) test_kill_point("GEMMAKD_TEST_KILL_AFTER_SEGMENTS", (int64_t)st->segments_written);
    }
    b->done_windows = before + (p->end - p->first);
    return dist_check(rc, err);
}

// The counts of the whole job (on every rank); bytes and segments stay rank 0's, the writer's.
static void sum_stats(teacher_cache_build_stats *st) {
    int64_t n[2] = {(int64_t)st->windows, (int64_t)st->tokens};
    dist_sum_i64(n, 2);
    st->windows = (uint64_t)n[0];
    st->tokens = (uint64_t)n[1];
    dist_max_f64(&st->teacher_seconds, 1);
}

int teacher_cache_build(const teacher_cache_job *job, teacher_cache_build_stats *st, gk_err *err) {
    memset(st, 0, sizeof *st);
    if (check_job(job, err)) return -1;
    builder b = {.job = job, .start = now_seconds(), .show = job->progress && dist_is_root()};
    int rc = open_inputs(&b, err);
    if (rc == 0 && dist_is_root()) rc = tc_hash_shards(b.l, b.shard_sha, err);
    if (rc == 0) rc = make_plan(&b, err);
    if (rc == 0 && dist_is_root()) rc = skip_finished(&b, st, err);
    rc = dist_check(rc, err);
    if (rc == 0) rc = share_plan(&b, err);
    if (rc == 0) rc = alloc_buffers(&b, err);
    rc = dist_check(rc, err);
    progress_init(&b.prog, 10.0);
    b.start = now_seconds();
    for (size_t i = 0; rc == 0 && i < b.n_plan; i++)
        if (b.plan[i].mine) rc = build_segment(&b, &b.plan[i], st, err);
    if (rc == 0) sum_stats(st);
    if (rc == 0) show_progress(&b, true);
    if (b.show && rc) progress_clear(&b.prog);
    else if (b.show) progress_done(&b.prog);
    builder_free(&b);
    st->seconds = now_seconds() - b.start;
    return rc;
}

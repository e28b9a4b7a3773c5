// The teacher-logit cache: `gemmakd teacher-logits` over small shards with a
// tiny random teacher, checked against a naive computation (the model's full
// logits, softmax in double at the temperature); sampling statistics; resume
// after SIGKILL and --part i/n against one uninterrupted run; the reader's
// checks and window reads; h5py reading the files; the per-row math on
// hand-made rows (ties go to the smaller id).
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/file.h"
#include "common/json.h"
#include "common/rng.h"
#include "data/h5util.h"
#include "data/shards.h"
#include "distill/teacher_cache.h"
#include "distill/teacher_cache_build.h"
#include "model/checkpoint.h"
#include "model/engine.h"
#include "model/gemma2.h"
#include "tests/check.h"
#include "tests/fixtures.h"

const char *test_program = "test_teacher_cache";

#define SHA_TOK "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
enum { V = 512, T = 16, SEG = 7 };

static char gemmakd[1024], work[64], teacher[128], shard_a[128], shard_b[128], data_arg[300];

static const char *wpath(const char *name) { return test_join(work, name); } // work/name

// ---------------------------------------------------------------- setup

static int write_shard(const char *path, uint64_t seed, int n_docs, gk_err *err) {
    shard_meta meta = {.vocab_size = V, .bos_id = 2, .eos_id = 1, .pad_id = 0};
    memcpy(meta.tokenizer_sha256, SHA_TOK, 65);
    shard_writer *w;
    if (shard_writer_open(&w, path, &meta, err)) return -1;
    uint32_t doc[300];
    for (int d = 0; d < n_docs; d++) {
        size_t n = 20 + (size_t)(hash64(seed * 1000 + (uint64_t)d) % 250);
        doc[0] = 2;
        for (size_t i = 1; i < n; i++) doc[i] = 3 + (uint32_t)(hash64(seed ^ (d * 7919u + i)) % (V - 3));
        if (shard_writer_add_doc(w, doc, NULL, n, err)) {
            shard_writer_abort(w);
            return -1;
        }
    }
    return shard_writer_close(w, err);
}

// A tiny random teacher with peaked distributions (embedding scaled by 3).
static int write_teacher(const char *dir, int vocab, gk_err *err) {
    model_state m;
    int rc = tiny_model(&(tiny_shape){32, 64, 2, 4, 2, 8, vocab, 256}, 11, &m, err);
    if (rc == 0) {
        const param_tensor *e = param_find(&m.layout, "model.embed_tokens.weight");
        for (size_t i = 0; i < e->numel; i++) m.params[e->offset + i] *= 3;
        rc = model_create_dir(dir, &m, ST_F32, 0, SHA_TOK, err);
    }
    model_state_free(&m);
    return rc;
}

// Runs gemmakd with args (NULL-terminated), an optional "NAME=value" environment
// entry, stderr to errfile (or /dev/null); returns the wait status.
static int run_gk(const char *env, const char *errfile, ...) {
    const char *argv[40] = {gemmakd};
    int n = 1;
    va_list ap;
    va_start(ap, errfile);
    for (const char *a; n < 39 && (a = va_arg(ap, const char *));) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return test_spawn(argv, env, errfile);
}

// One thread and batches of 4 windows, as the reference computation: the teacher's
// logits depend on both in their last bits (BLAS blocking).
#define COMMON_BASE "teacher-logits", "--teacher", teacher, "--data", data_arg, "--seq-len", "16", "--segment-windows", "7"
#define COMMON COMMON_BASE, "--threads", "1", "--batch", "4"
static bool ok_status(int st) { return WIFEXITED(st) && WEXITSTATUS(st) == 0; }

// ---------------------------------------------------------------- reference

// The reference runs the teacher on the same batches as the cache writer (B
// windows from the segment's first window on, zero rows after the segment's
// end), so that the logits are the same floats: BLAS blocking depends on the
// batch shape and moves logits by up to ~5e-6 otherwise.
enum { B = 4 };

typedef struct {
    model_state m;
    engine *e; // cpu fp32: [B, T]
    loader *l;
    loader_batch batch;
    int32_t tokens[B * T];
    float *logits; // [B*T, V]
} naive;

static int open_loader(loader **l, size_t seq_len, const char *a, gk_err *err) {
    const char *paths[2] = {a ? a : shard_a, shard_b};
    loader_options o = {.seq_len = seq_len};
    return loader_open(l, paths, 2, &o, err);
}

static int naive_open(naive *n, gk_err *err) {
    memset(n, 0, sizeof *n);
    if (model_load_dir(teacher, &n->m, err) || open_loader(&n->l, T, NULL, err) || loader_batch_alloc(&n->batch, B, T, err) ||
        engine_open(&n->e, &n->m, (engine_backend){DEVICE_CPU, PRECISION_FP32}, B, T, false, err) ||
        !(n->logits = gk_malloc((size_t)B * T * V * sizeof(float), err)))
        return -1;
    return 0;
}

static void naive_close(naive *n) {
    free(n->logits);
    engine_close(n->e);
    loader_batch_free(&n->batch);
    loader_close(n->l);
    model_state_free(&n->m);
}

// The teacher's soft-capped logits of window w of shard s: returns its [T, V] rows.
static const float *naive_window(naive *n, size_t s, uint64_t w, gk_err *err) {
    uint64_t W = loader_shard_windows(n->l, s), seg = w / SEG * SEG, end = seg + SEG < W ? seg + SEG : W;
    uint64_t first = seg + (w - seg) / B * B, rows = end - first < B ? end - first : B;
    loader_cursor c;
    loader_get_cursor(n->l, &c);
    c.epoch = 0;
    c.index = first + (s ? loader_shard_windows(n->l, 0) : 0);
    if (loader_set_cursor(n->l, &c, err) || loader_next(n->l, (size_t)rows, &n->batch, err)) return NULL;
    memset(n->tokens, 0, sizeof n->tokens);
    memset(n->batch.doc_begin + rows * T, 0, (B - rows) * T * sizeof(int32_t));
    for (uint64_t r = 0; r < rows; r++)
        for (int t = 0; t < T; t++) n->tokens[r * T + (uint64_t)t] = n->batch.tokens[r * (T + 1) + (uint64_t)t];
    token_batch b = {.B = B, .T = T, .tokens = n->tokens, .doc_begin = n->batch.doc_begin};
    if (engine_forward(n->e, &b, 0, err) || engine_logits(n->e, 0, (size_t)B * T, n->logits, err)) return NULL;
    return n->logits + (w - first) * T * V;
}

typedef struct {
    float v;
    int id;
} cand;

static int by_logit(const void *a, const void *b) { // larger logit first, then smaller id
    const cand *x = a, *y = b;
    return x->v > y->v ? -1 : x->v < y->v ? 1 : x->id - y->id;
}

// Log-softmax in double at tau, and the ids ordered by logit (ties: smaller id).
static void reference_row(const float *l, double tau, double *lp, cand *order) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < V; i++) mx = fmax(mx, (double)l[i] / tau);
    for (int i = 0; i < V; i++) sum += exp((double)l[i] / tau - mx);
    for (int i = 0; i < V; i++) lp[i] = (double)l[i] / tau - mx - log(sum);
    for (int i = 0; i < V; i++) order[i] = (cand){l[i], i};
    qsort(order, V, sizeof *order, by_logit);
}

// float32: the writer's float exp sums (~1e-7) and rounding to float; float16: half an ulp.
static double lp_tolerance(double lp, bool f16) { return f16 ? fabs(lp) / 2048 + 1e-6 : 2e-7 * fabs(lp) + 1e-6; }

// Opens the loader and a cache with the usual expectations.
static int open_cache(const char *dir, teacher_cache_method method, double tau, loader **l, teacher_cache **c,
                      teacher_cache_rows *r, gk_err *err) {
    teacher_cache_expect e = {.tokenizer_sha256 = SHA_TOK, .vocab_size = V, .temperature = tau, .method = method};
    if (open_loader(l, T, NULL, err)) return -1;
    if (teacher_cache_open(c, dir, *l, &e, err)) return -1;
    return teacher_cache_rows_alloc(*c, 1, r, err);
}

// ---------------------------------------------------------------- against the naive computation

// One row of a cache beside the naive teacher's: its logits [V], reference log-probs [V] and ids by probability.
typedef struct {
    size_t shard;
    uint64_t window;
    int t;
    const float *logits;
    const double *lp;
    const cand *order;
    const sparse_row *row;
} row_pair;

// Calls check on every row of the cache in dir, next to the naive computation of the same row.
static void for_each_row(test_case *tc, const char *dir, teacher_cache_method method, double tau,
                         void (*check)(test_case *, const row_pair *, void *), void *ctx) {
    gk_err err = {0};
    naive nv;
    loader *l = NULL;
    teacher_cache *c = NULL;
    teacher_cache_rows r = {0};
    double *lp = malloc(V * sizeof *lp);
    cand *order = malloc(V * sizeof *order);
    bool ok = naive_open(&nv, &err) == 0;
    CHECK(tc, ok, "naive setup: %s", err.msg);
    ok = ok && open_cache(dir, method, tau, &l, &c, &r, &err) == 0;
    CHECK(tc, ok, "open %s: %s", dir, err.msg);
    for (size_t s = 0; ok && s < 2 && !tc->failed; s++)
        for (uint64_t w = 0; w < loader_shard_windows(l, s) && !tc->failed; w++) {
            const float *logits = NULL;
            CHECK(tc, teacher_cache_window(c, s, w, &r, 0, &err) == 0 && (logits = naive_window(&nv, s, w, &err)), "window: %s",
                  err.msg);
            for (int t = 0; t < T && !tc->failed; t++) {
                reference_row(logits + (size_t)t * V, tau, lp, order);
                check(tc, &(row_pair){s, w, t, logits + (size_t)t * V, lp, order, &r.rows[t]}, ctx);
            }
        }
    free(lp);
    free(order);
    teacher_cache_rows_free(&r);
    teacher_cache_close(c);
    loader_close(l);
    naive_close(&nv);
}

typedef struct {
    int k;
    bool f16;
    int tiny; // rows whose leftover is below 1e-6
} topk_expect;

// The k most likely ids in order (ties either way), their log-probs, and the mass outside them.
static void check_topk_row(test_case *tc, const row_pair *p, void *ctx) {
    topk_expect *e = ctx;
    const sparse_row *row = p->row;
    const float *lg = p->logits;
    CHECK(tc, row->k == e->k && row->counts == NULL, "row k %d", row->k);
    bool in[V] = {0};
    for (int j = 0; j < e->k && !tc->failed; j++) {
        int id = row->ids[j], want = p->order[j].id;
        CHECK(tc, id == want || lg[id] == lg[want],
              "shard %zu window %" PRIu64 " t %d rank %d: id %d (logit %.9g), expected %d (logit %.9g)", p->shard, p->window,
              p->t, j, id, lg[id], want, lg[want]);
        CHECK(tc, !in[id], "id %d twice", id);
        in[id] = true;
        CHECK(tc, fabs(row->logprobs[j] - p->lp[id]) <= lp_tolerance(p->lp[id], e->f16), "log-prob of %d: %.9g vs %.9g", id,
              row->logprobs[j], p->lp[id]);
    }
    double outside = 0; // the mass outside, summed directly
    for (int i = 0; i < V; i++)
        if (!in[i]) outside += exp(p->lp[i]);
    CHECK(tc, fabs(row->leftover - outside) <= 1e-5 * outside + 1e-37,
          "shard %zu window %" PRIu64 " t %d: leftover %.9g, expected %.9g", p->shard, p->window, p->t, row->leftover, outside);
    e->tiny += outside < 1e-6;
}

static void check_topk(test_case *tc, const char *dir, double tau, int k, bool f16, int *tiny) {
    topk_expect e = {k, f16, 0};
    for_each_row(tc, dir, TEACHER_CACHE_TOPK, tau, check_topk_row, &e);
    if (tiny) *tiny = e.tiny;
}

static void topk_f32_matches_naive(test_case *tc) {
    int st = run_gk(NULL, wpath("err"), COMMON, "--method", "topk", "--k", "8", "--logprob-dtype", "float32",
                    "--out", wpath("topk8"), NULL);
    CHECK(tc, ok_status(st), "teacher-logits failed (status %d): %s", st, test_read_text(wpath("err")));
    if (!tc->failed) check_topk(tc, wpath("topk8"), 1.0, 8, false, NULL);
}

// At tau = 0.25 the leftover is often below 1e-6, where 1 - sum(p) would be mostly rounding.
static void topk_low_temperature_tiny_leftover(test_case *tc) {
    int st = run_gk(NULL, wpath("err"), COMMON, "--method", "topk", "--k", "32", "--temperature", "0.25",
                    "--logprob-dtype", "float32", "--out", wpath("topk32_cold"), NULL);
    CHECK(tc, ok_status(st), "teacher-logits failed (status %d): %s", st, test_read_text(wpath("err")));
    int tiny = 0;
    if (!tc->failed) check_topk(tc, wpath("topk32_cold"), 0.25, 32, false, &tiny);
    CHECK(tc, tiny > 50, "only %d rows with leftover < 1e-6: the case is not exercised", tiny);
}

static void topk_f16_matches_naive(test_case *tc) {
    int st = run_gk(NULL, wpath("err"), COMMON, "--method", "topk", "--k", "16", "--temperature", "2", "--out",
                    wpath("topk16_f16"), NULL);
    CHECK(tc, ok_status(st), "teacher-logits failed (status %d): %s", st, test_read_text(wpath("err")));
    if (!tc->failed) check_topk(tc, wpath("topk16_f16"), 2.0, 16, true, NULL);
}

enum { BINS = 6 };
static const int bin_end[BINS] = {1, 2, 4, 8, 16, V}; // probability ranks [0,1), [1,2), [2,4), ...

static int rank_bin(int rank) {
    int b = 0;
    while (rank >= bin_end[b]) b++;
    return b;
}

typedef struct {
    int k;
    double obs[BINS], expect[BINS], var[BINS]; // draws per rank bin, and their binomial mean and variance
} sample_tally;

// Counts sum to k, ids ascend and have p > 0, log-probs are the teacher's; the draws are tallied by rank.
static void check_sample_row(test_case *tc, const row_pair *p, void *ctx) {
    sample_tally *s = ctx;
    const sparse_row *row = p->row;
    int rank[V];
    for (int i = 0; i < V; i++) rank[p->order[i].id] = i;
    double total = 0, pbin[BINS] = {0};
    for (int i = 0; i < V; i++) pbin[rank_bin(rank[i])] += exp(p->lp[i]);
    for (int j = 0; j < row->k && !tc->failed; j++) {
        int id = row->ids[j];
        CHECK(tc, j == 0 || id > row->ids[j - 1], "ids not ascending");
        CHECK(tc, exp(p->lp[id]) > 0, "id %d drawn with teacher probability 0", id);
        CHECK(tc, fabs(row->logprobs[j] - p->lp[id]) <= lp_tolerance(p->lp[id], true), "log-prob of %d: %.9g vs %.9g", id,
              row->logprobs[j], p->lp[id]);
        total += row->counts[j];
        s->obs[rank_bin(rank[id])] += row->counts[j];
    }
    CHECK(tc, total == s->k, "counts sum to %g, expected %d", total, s->k);
    for (int b = 0; b < BINS; b++) s->expect[b] += s->k * pbin[b], s->var[b] += s->k * pbin[b] * (1 - pbin[b]);
}

// Every row as check_sample_row says, and over all rows the draws per probability rank agree with the probabilities.
static void check_sample(test_case *tc, const char *dir, double tau, int k) {
    sample_tally s = {.k = k};
    for_each_row(tc, dir, TEACHER_CACHE_SAMPLE, tau, check_sample_row, &s);
    for (int b = 0; b < BINS && !tc->failed; b++) {
        double z = (s.obs[b] - s.expect[b]) / sqrt(s.var[b] + 1e-12);
        CHECK(tc, fabs(z) < 5, "ranks up to %d: %g draws, expected %.1f +- %.1f (z = %.2f)", bin_end[b], s.obs[b],
              s.expect[b], sqrt(s.var[b]), z);
    }
}

static void sample_matches_teacher(test_case *tc) {
    int st = run_gk(NULL, wpath("err"), COMMON, "--method", "sample", "--k", "12", "--seed", "5", "--out",
                    wpath("sample"), NULL);
    CHECK(tc, ok_status(st), "teacher-logits failed (status %d): %s", st, test_read_text(wpath("err")));
    if (!tc->failed) check_sample(tc, wpath("sample"), 1.0, 12);
    st = run_gk(NULL, wpath("err"), COMMON, "--method", "sample", "--k", "300", "--temperature", "1.5", "--out",
                wpath("sample300"), NULL); // > 255 draws: uint16 counts
    CHECK(tc, ok_status(st), "teacher-logits k=300 failed (status %d): %s", st, test_read_text(wpath("err")));
    if (!tc->failed) check_sample(tc, wpath("sample300"), 1.5, 300);
}

// ---------------------------------------------------------------- same contents

// Every row of two caches equal: exactly, or (loose) ids, counts and log-probs
// (within float16 rounding) in all but 1 row in 200.
static void compare_caches(test_case *tc, const char *a, const char *b, teacher_cache_method m, bool loose) {
    gk_err err = {0};
    loader *la = NULL, *lb = NULL;
    teacher_cache *ca = NULL, *cb = NULL;
    teacher_cache_rows ra = {0}, rb = {0};
    bool ok = open_cache(a, m, 1.0, &la, &ca, &ra, &err) == 0;
    CHECK(tc, ok, "open %s: %s", a, err.msg);
    ok = ok && open_cache(b, m, 1.0, &lb, &cb, &rb, &err) == 0;
    CHECK(tc, ok, "open %s: %s", b, err.msg);
    size_t rows = 0, differ = 0;
    for (size_t s = 0; ok && s < 2 && !tc->failed; s++)
        for (uint64_t w = 0; w < loader_shard_windows(la, s) && !tc->failed; w++) {
            CHECK(tc, teacher_cache_window(ca, s, w, &ra, 0, &err) == 0 && teacher_cache_window(cb, s, w, &rb, 0, &err) == 0,
                  "read: %s", err.msg);
            for (int t = 0; t < T && !tc->failed; t++, rows++) {
                const sparse_row *x = &ra.rows[t], *y = &rb.rows[t];
                bool same = x->k == y->k && !memcmp(x->ids, y->ids, (size_t)x->k * sizeof *x->ids) &&
                            (!x->counts || !memcmp(x->counts, y->counts, (size_t)x->k * sizeof *x->counts)) &&
                            (loose ? fabsf(x->leftover - y->leftover) <= 1e-5f : x->leftover == y->leftover);
                for (int j = 0; same && j < x->k; j++)
                    same = loose ? fabsf(x->logprobs[j] - y->logprobs[j]) <= fabsf(y->logprobs[j]) / 1024 + 1e-6f
                                 : x->logprobs[j] == y->logprobs[j];
                differ += !same;
                CHECK(tc, same || loose, "shard %zu window %" PRIu64 " t %d: rows differ", s, w, t);
            }
        }
    CHECK(tc, tc->failed || rows > 1000, "only %zu rows compared", rows);
    CHECK(tc, differ <= rows / 200, "%zu of %zu rows differ", differ, rows);
    teacher_cache_rows_free(&ra);
    teacher_cache_rows_free(&rb);
    teacher_cache_close(ca);
    teacher_cache_close(cb);
    loader_close(la);
    loader_close(lb);
}

static int count_h5(const char *dir) {
    int n = 0;
    for (int i = 0; i < 200; i++) { // segment names are known: <stem>.<first>-<end>.h5 with 7 windows each
        char name[64];
        for (int s = 0; s < 2; s++) {
            snprintf(name, sizeof name, "%s/%s.%06d-%06d.h5", dir, s ? "b" : "a", i * SEG, (i + 1) * SEG);
            n += path_exists(name);
        }
    }
    return n;
}

// The draws are keyed by position, not by thread or batch; but other thread
// counts and batch sizes move the teacher's logits in their last bits (BLAS
// blocking), and then the same uniforms pick the same ids except within ~1e-6
// of a boundary of the teacher's CDF.
static void sample_other_threads_or_batch(test_case *tc) {
    int st = run_gk(NULL, wpath("err"), COMMON_BASE, "--method", "sample", "--k", "12", "--seed", "5", "--batch", "4",
                    "--threads", "2", "--out", wpath("sample_t2"), NULL);
    CHECK(tc, ok_status(st), "teacher-logits failed (status %d): %s", st, test_read_text(wpath("err")));
    if (!tc->failed) compare_caches(tc, wpath("sample"), wpath("sample_t2"), TEACHER_CACHE_SAMPLE, true);
    st = run_gk(NULL, wpath("err"), COMMON_BASE, "--method", "sample", "--k", "12", "--seed", "5", "--batch", "3",
                "--threads", "1", "--out", wpath("sample_b3"), NULL);
    CHECK(tc, ok_status(st), "teacher-logits failed (status %d): %s", st, test_read_text(wpath("err")));
    if (!tc->failed) compare_caches(tc, wpath("sample"), wpath("sample_b3"), TEACHER_CACHE_SAMPLE, true);
}

static void killed_and_resumed(test_case *tc) {
    int st = run_gk("GEMMAKD_TEST_KILL_AFTER_SEGMENTS=3", NULL, COMMON, "--method", "sample", "--k", "12", "--seed", "5",
                    "--out", wpath("resumed"), NULL);
    CHECK(tc, WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the run was not killed (status %d)", st);
    CHECK(tc, count_h5(wpath("resumed")) == 3, "%d segment files after the kill, expected 3", count_h5(wpath("resumed")));
    gk_err err;
    const char *stale = wpath("resumed/b.000007-000014.h5.tmp-4000000"); // a dead writer's temporary file
    CHECK(tc, file_write_atomic(stale, "x", 1, &err) == 0, "%s", err.msg);
    st = run_gk(NULL, wpath("err"), COMMON, "--method", "sample", "--k", "12", "--seed", "5", "--out",
                wpath("resumed"), NULL);
    CHECK(tc, ok_status(st), "resume failed (status %d): %s", st, test_read_text(wpath("err")));
    CHECK(tc, !path_exists(stale), "the stale temporary file was not removed");
    if (!tc->failed) compare_caches(tc, wpath("sample"), wpath("resumed"), TEACHER_CACHE_SAMPLE, false);
}

static void parts_equal_one_run(test_case *tc) {
    int st = run_gk(NULL, wpath("err"), COMMON, "--method", "sample", "--k", "12", "--seed", "5", "--part",
                    "1/2", "--out", wpath("parts"), NULL);
    CHECK(tc, ok_status(st), "part 1/2 failed (status %d): %s", st, test_read_text(wpath("err")));
    gk_err err = {0};
    loader *l = NULL;
    teacher_cache *c = NULL;
    teacher_cache_rows r = {0};
    int rc = open_cache(wpath("parts"), TEACHER_CACHE_SAMPLE, 1.0, &l, &c, &r, &err);
    CHECK(tc, rc < 0 && strstr(err.msg, "no segment covers windows 0-7 of") && strstr(err.msg, shard_a),
          "half a cache: open gave %d: %s", rc, err.msg);
    teacher_cache_close(c);
    loader_close(l);
    st = run_gk(NULL, wpath("err"), COMMON, "--method", "sample", "--k", "12", "--seed", "5", "--part", "0/2",
                "--out", wpath("parts"), NULL);
    CHECK(tc, ok_status(st), "part 0/2 failed (status %d): %s", st, test_read_text(wpath("err")));
    if (!tc->failed) compare_caches(tc, wpath("sample"), wpath("parts"), TEACHER_CACHE_SAMPLE, false);
}

// Rerunning into a cache made with other settings names the file and the attribute.
static void resume_with_other_settings_fails(test_case *tc) {
    int st = run_gk(NULL, wpath("err"), COMMON, "--method", "sample", "--k", "10", "--seed", "5", "--out", wpath("sample"),
                    NULL);
    char *msg = test_read_text(wpath("err"));
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(msg, "a.000000-000007.h5: attribute 'k' is 12, but this run has 10"),
          "status %d: %s", st, msg);
    free(msg);
    st = run_gk(NULL, wpath("err"), COMMON, "--method", "sample", "--k", "12", "--seed", "6", "--out", wpath("sample"), NULL);
    msg = test_read_text(wpath("err"));
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(msg, "attribute 'seed' is 5, but this run has 6"), "status %d: %s",
          st, msg);
    free(msg);
    st = run_gk(NULL, wpath("err"), "teacher-logits", "--teacher", teacher, "--data", data_arg, "--seq-len", "16",
                "--segment-windows", "9", "--method", "sample", "--k", "12", "--seed", "5", "--out", wpath("sample"), NULL);
    msg = test_read_text(wpath("err"));
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(msg, "do not match this run's segments of 9 windows"),
          "status %d: %s", st, msg);
    free(msg);
}

// ---------------------------------------------------------------- the reader

static void expect_open_error(test_case *tc, const char *what, const char *dir, loader *l, teacher_cache_expect e,
                              const char *want1, const char *want2) {
    gk_err err = {0};
    teacher_cache *c = NULL;
    int rc = teacher_cache_open(&c, dir, l, &e, &err);
    CHECK(tc, rc < 0 && strstr(err.msg, want1) && (!want2 || strstr(err.msg, want2)), "%s: open gave %d: %s", what, rc,
          err.msg);
    teacher_cache_close(c);
}

static void reader_rejects_mismatches(test_case *tc) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s", wpath("topk8"));
    gk_err err = {0};
    loader *l = NULL, *l8 = NULL, *lc = NULL;
    teacher_cache_expect e = {.tokenizer_sha256 = SHA_TOK, .vocab_size = V, .temperature = 1, .method = TEACHER_CACHE_TOPK};
    CHECK(tc, open_loader(&l, T, NULL, &err) == 0 && open_loader(&l8, 8, NULL, &err) == 0, "loader: %s", err.msg);
    teacher_cache *c = NULL;
    CHECK(tc, !tc->failed && teacher_cache_open(&c, dir, l, &e, &err) == 0, "complete cache: %s", err.msg);
    teacher_cache_close(c);
    if (tc->failed) goto done;
    expect_open_error(tc, "seq_len", dir, l8, e, "attribute 'seq_len' is 16, but the run uses seq_len 8", NULL);
    teacher_cache_expect x = e;
    x.temperature = 2;
    expect_open_error(tc, "temperature", dir, l, x, "attribute 'temperature' is 1, but the run uses temperature 2", NULL);
    x = e;
    x.method = TEACHER_CACHE_SAMPLE;
    expect_open_error(tc, "method", dir, l, x, "attribute 'method' is 'topk', but the run expects 'sample'", NULL);
    x = e;
    x.tokenizer_sha256 = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    expect_open_error(tc, "tokenizer", dir, l, x, "attribute 'tokenizer_sha256' is " SHA_TOK ", but the run's tokenizer is cccc",
                      NULL);
    x = e;
    x.vocab_size = 600;
    expect_open_error(tc, "vocab", dir, l, x, "attribute 'vocab_size' is 512, but the run's vocabulary has 600", NULL);
    // A segment missing.
    const char *seg = wpath("topk8/b.000014-000021.h5"), *moved = wpath("moved.h5x");
    CHECK(tc, rename(seg, moved) == 0, "rename %s", seg);
    expect_open_error(tc, "missing segment", dir, l, e, "no segment covers windows 14-21 of", shard_b);
    CHECK(tc, rename(moved, seg) == 0, "rename back %s", seg);
    // An overlapping segment (from a cache with another segment size).
    int st = run_gk(NULL, wpath("err"), "teacher-logits", "--teacher", teacher, "--data", shard_b, "--seq-len", "16",
                    "--segment-windows", "10", "--method", "topk", "--k", "8", "--logprob-dtype", "float32", "--out",
                    wpath("seg10"), NULL);
    CHECK(tc, ok_status(st), "seg10 cache (status %d): %s", st, test_read_text(wpath("err")));
    const char *extra = wpath("topk8/b.000010-000020.h5");
    CHECK(tc, link(wpath("seg10/b.000010-000020.h5"), extra) == 0, "link");
    expect_open_error(tc, "overlap", dir, l, e, "windows 10-14 of", "are in both");
    unlink(extra);
    // The token shard changed after caching.
    const char *changed = wpath("changed/a.h5");
    CHECK(tc, dir_create(wpath("changed"), &err) == 0 && write_shard(changed, 99, 12, &err) == 0 &&
                  open_loader(&lc, T, changed, &err) == 0,
          "changed shard: %s", err.msg);
    if (lc) expect_open_error(tc, "changed shard", dir, lc, e, "(the shard changed after caching)", "a.h5 now has sha256");
    // A directory without segments (a token shard is no segment: skipped).
    expect_open_error(tc, "empty", wpath("changed"), l, e, "teacher cache", "no segment files (*.h5)");
done:
    loader_close(l);
    loader_close(l8);
    loader_close(lc);
}

// Copies the segment files of cache dir `from` into a new dir `to`.
static int copy_cache(const char *from, const char *to, gk_err *err) {
    if (dir_create(to, err)) return -1;
    DIR *d = opendir(from);
    if (!d) return gk_fail(err, GK_EIO, "%s: cannot list", from);
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (!strstr(e->d_name, ".h5")) continue;
        char *text = NULL, src[400], dst[400];
        size_t len;
        snprintf(src, sizeof src, "%s/%s", from, e->d_name);
        snprintf(dst, sizeof dst, "%s/%s", to, e->d_name);
        rc = file_read_all(src, &text, &len, err) || file_write_atomic(dst, text, len, err) ? -1 : 0;
        free(text);
    }
    closedir(d);
    return rc;
}

// Overwrites row `row` of dataset `name` ([rows, K], K = 8) in a segment file with values (uint32 or float).
static int poke_row(const char *path, const char *name, hsize_t row, hid_t type, const void *values) {
    hsize_t start[2] = {row, 0}, count[2] = {1, 8};
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), ds = f >= 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
    hid_t fs = ds >= 0 ? H5Dget_space(ds) : -1, ms = H5Screate_simple(2, count, NULL);
    int ok = fs >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
             H5Dwrite(ds, type, ms, fs, H5P_DEFAULT, values) >= 0;
    h5_close(&ms);
    h5_close(&fs);
    h5_close(&ds);
    h5_close(&f);
    return ok ? 0 : -1;
}

// Rows that no teacher writes are refused when read, naming the file and the row: an id
// twice in a row, and probabilities summing far above 1 (both were accepted; the logged
// KL of a run on them reached 74).
static void reader_rejects_bad_rows(test_case *tc) {
    const char *name = "a.000007-000014.h5";
    enum { ROW = 3 }; // window 7, position 3
    struct {
        const char *dir, *dataset, *want;
    } cases[] = {{"dup-ids", "ids", "id 5 appears twice"}, {"heavy-rows", "logprobs", "sum to 8"}};
    for (int c = 0; c < 2 && !tc->failed; c++) {
        char dir[256], seg[400];
        snprintf(dir, sizeof dir, "%s", wpath(cases[c].dir));
        snprintf(seg, sizeof seg, "%s/%s", dir, name);
        gk_err err = {0};
        CHECK(tc, copy_cache(wpath("topk8"), dir, &err) == 0, "copy: %s", err.msg);
        uint32_t ids[8] = {5, 5, 1, 2, 3, 4, 6, 7};
        float zeros[8] = {0}; // log-probs of 0: eight probabilities of 1
        int poked = c == 0 ? poke_row(seg, "ids", ROW, H5T_NATIVE_UINT32, ids) : poke_row(seg, "logprobs", ROW, H5T_NATIVE_FLOAT, zeros);
        CHECK(tc, poked == 0, "cannot change %s", seg);
        loader *l = NULL;
        teacher_cache *cache = NULL;
        teacher_cache_rows r = {0};
        CHECK(tc, !tc->failed && open_cache(dir, TEACHER_CACHE_TOPK, 1.0, &l, &cache, &r, &err) == 0, "open: %s", err.msg);
        CHECK(tc, !tc->failed && teacher_cache_window(cache, 0, 6, &r, 0, &err) == 0, "an untouched window: %s", err.msg);
        int rc = tc->failed ? 0 : teacher_cache_window(cache, 0, 7, &r, 0, &err);
        CHECK(tc, rc < 0 && strstr(err.msg, seg) && strstr(err.msg, "row 3 ") && strstr(err.msg, cases[c].want),
              "%s: read gave %d: %s", cases[c].dir, rc, err.msg);
        teacher_cache_rows_free(&r);
        teacher_cache_close(cache);
        loader_close(l);
    }
}

// A named pipe among the segments is refused at once (HDF5 opened it and blocked for a writer).
static void reader_refuses_fifo_segment(test_case *tc) {
    char dir[256], fifo[300];
    snprintf(dir, sizeof dir, "%s", wpath("fifo-cache"));
    snprintf(fifo, sizeof fifo, "%s/a.000000-000007.h5", dir);
    gk_err err = {0};
    loader *l = NULL;
    CHECK(tc, dir_create(dir, &err) == 0 && mkfifo(fifo, 0600) == 0 && open_loader(&l, T, NULL, &err) == 0, "setup: %s",
          err.msg);
    teacher_cache_expect e = {.tokenizer_sha256 = SHA_TOK, .vocab_size = V, .temperature = 1, .method = TEACHER_CACHE_TOPK};
    alarm(30); // a blocked open ends the test (SIGALRM) instead of hanging the suite
    if (!tc->failed) expect_open_error(tc, "fifo", dir, l, e, fifo, "not a regular file");
    alarm(0);
    loader_close(l);
}

// Rows read through the reader equal the datasets read directly, and the batch
// interface hands out the same rows for shuffled loader batches.
static void reader_rows_match_file(test_case *tc) {
    gk_err err = {0};
    loader *l = NULL;
    teacher_cache *c = NULL;
    teacher_cache_rows r = {0}, rb = {0};
    bool ok = open_cache(wpath("topk8"), TEACHER_CACHE_TOPK, 1.0, &l, &c, &r, &err) == 0;
    CHECK(tc, ok, "open: %s", err.msg);
    const char *seg = wpath("topk8/a.000007-000014.h5");
    enum { ROWS = 7 * T, K = 8 };
    uint32_t *ids = malloc(ROWS * K * sizeof *ids);
    float *lp = malloc(ROWS * K * sizeof *lp), left[ROWS];
    hid_t f = ok ? H5Fopen(seg, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    hid_t d1 = f >= 0 ? H5Dopen2(f, "ids", H5P_DEFAULT) : -1, d2 = f >= 0 ? H5Dopen2(f, "logprobs", H5P_DEFAULT) : -1;
    hid_t d3 = f >= 0 ? H5Dopen2(f, "leftover", H5P_DEFAULT) : -1;
    ok = ok && d1 >= 0 && d2 >= 0 && d3 >= 0 && H5Dread(d1, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids) >= 0 &&
         H5Dread(d2, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, lp) >= 0 &&
         H5Dread(d3, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, left) >= 0;
    CHECK(tc, ok, "reading %s directly", seg);
    h5_close(&d1);
    h5_close(&d2);
    h5_close(&d3);
    h5_close(&f);
    for (int w = 7; ok && w < 14 && !tc->failed; w++) {
        CHECK(tc, teacher_cache_window(c, 0, (uint64_t)w, &r, 0, &err) == 0, "window %d: %s", w, err.msg);
        for (int t = 0; t < T && !tc->failed; t++) {
            size_t row = (size_t)(w - 7) * T + (size_t)t;
            const sparse_row *x = &r.rows[t];
            for (int j = 0; j < K; j++)
                CHECK(tc, x->ids[j] == (int32_t)ids[row * K + j] && x->logprobs[j] == lp[row * K + j],
                      "window %d t %d slot %d differs from the file", w, t, j);
            CHECK(tc, x->leftover == left[row], "leftover of window %d t %d", w, t);
        }
    }
    // Shuffled batches of 3 through teacher_cache_batch and teacher_cache_row.
    loader *ls = NULL;
    loader_batch b = {0};
    const char *paths[2] = {shard_a, shard_b};
    loader_options o = {.seq_len = T, .shuffle = true, .seed = 4};
    ok = ok && loader_open(&ls, paths, 2, &o, &err) == 0 && loader_batch_alloc(&b, 3, T, &err) == 0 &&
         teacher_cache_rows_alloc(c, 3, &rb, &err) == 0;
    CHECK(tc, ok, "batch setup: %s", err.msg);
    for (int step = 0; ok && step < 10 && !tc->failed; step++) {
        CHECK(tc, loader_next(ls, 3, &b, &err) == 0 && teacher_cache_batch(c, &b, &rb, &err) == 0, "batch: %s", err.msg);
        for (size_t i = 0; i < 3 && !tc->failed; i++) {
            CHECK(tc, teacher_cache_window(c, b.shard[i], b.window[i], &r, 0, &err) == 0, "window: %s", err.msg);
            for (int t = 0; t < T; t++) {
                sparse_row x;
                CHECK(tc, teacher_cache_row(&rb, i * T + (size_t)t, &x) == 0 && x.k == K &&
                              !memcmp(x.ids, r.rows[t].ids, K * sizeof *x.ids) &&
                              !memcmp(x.logprobs, r.rows[t].logprobs, K * sizeof *x.logprobs) && x.leftover == r.rows[t].leftover,
                      "batch row %zu t %d differs from its window", i, t);
            }
        }
    }
    sparse_row x;
    CHECK(tc, teacher_cache_row(&rb, 3 * T, &x) == -1, "row past the buffer accepted");
    CHECK(tc, teacher_cache_window(c, 1, loader_shard_windows(l, 1), &r, 0, &err) < 0, "a window past the shard's end read");
    free(ids);
    free(lp);
    loader_batch_free(&b);
    loader_close(ls);
    teacher_cache_rows_free(&rb);
    teacher_cache_rows_free(&r);
    teacher_cache_close(c);
    loader_close(l);
}

// ---------------------------------------------------------------- h5py


// h5py reads the files; its per-file sums equal the sums of the rows the C reader gives.
static void h5py_reads_cache(test_case *tc) {
    if (test_h5py_missing()) {
        SKIP(tc, "%s", test_h5py_missing());
        return;
    }
    const char *script = "scripts/reference/teacher_cache_check.py";
    if (!path_exists(script)) {
        CHECK(tc, 0, "%s not found (run the tests from the repository root)", script);
        return;
    }
    const char *dirs[2] = {"topk16_f16", "sample"};
    for (int d = 0; d < 2 && !tc->failed; d++) {
        char cmd[512];
        static char out[1 << 16];
        snprintf(cmd, sizeof cmd, "'%s' %s '%s' 2>&1", test_python(), script, wpath(dirs[d]));
        FILE *p = popen(cmd, "r");
        size_t got = p ? fread(out, 1, sizeof out - 1, p) : 0;
        out[got] = 0;
        int status = p ? pclose(p) : -1;
        CHECK(tc, status == 0 && !strncmp(out, "OK ", 3), "h5py check of %s (status %d): %.500s", dirs[d], status, out);
        if (tc->failed) return;
        json_doc doc;
        gk_err err = {0};
        CHECK(tc, json_parse(out + 3, strlen(out + 3), "h5py", &doc, &err) == 0, "%s", err.msg);
        if (tc->failed) return;
        loader *l = NULL;
        teacher_cache *c = NULL;
        teacher_cache_rows r = {0};
        bool sample = d == 1;
        bool ok = open_cache(wpath(dirs[d]), sample ? TEACHER_CACHE_SAMPLE : TEACHER_CACHE_TOPK, sample ? 1.0 : 2.0, &l, &c, &r,
                             &err) == 0;
        CHECK(tc, ok, "open: %s", err.msg);
        size_t files = 0;
        for (size_t s = 0; ok && s < 2 && !tc->failed; s++)
            for (uint64_t first = 0; first < loader_shard_windows(l, s) && !tc->failed; first += SEG, files++) {
                uint64_t end = first + SEG < loader_shard_windows(l, s) ? first + SEG : loader_shard_windows(l, s);
                double ids = 0, lps = 0, aux = 0;
                for (uint64_t w = first; w < end; w++) {
                    CHECK(tc, teacher_cache_window(c, s, w, &r, 0, &err) == 0, "%s", err.msg);
                    for (int t = 0; t < T; t++)
                        for (int j = 0; j < r.rows[t].k; j++) {
                            ids += r.rows[t].ids[j];
                            lps += r.rows[t].logprobs[j];
                            aux += sample ? r.rows[t].counts[j] : (j == 0 ? r.rows[t].leftover : 0);
                        }
                }
                char name[64];
                snprintf(name, sizeof name, "%s.%06" PRIu64 "-%06" PRIu64 ".h5", s ? "b" : "a", first, end);
                const json_value *f = json_get(doc.root, name);
                const json_value *vi = f ? json_get(f, "ids_sum") : NULL, *vl = f ? json_get(f, "logprobs_sum") : NULL;
                const json_value *va = f ? json_get(f, sample ? "counts_sum" : "leftover_sum") : NULL;
                CHECK(tc, vi && vl && va && vi->number == ids && fabs(vl->number - lps) <= 1e-9 * fabs(lps) &&
                              fabs(va->number - aux) <= 1e-9 * fabs(aux) + 1e-12,
                      "%s: h5py sums %.17g %.17g %.17g, reader %.17g %.17g %.17g", name, vi ? vi->number : -1,
                      vl ? vl->number : -1, va ? va->number : -1, ids, lps, aux);
            }
        CHECK(tc, tc->failed || doc.root->count == files, "h5py saw %zu files, the reader %zu", doc.root->count, files);
        json_free(&doc);
        teacher_cache_rows_free(&r);
        teacher_cache_close(c);
        loader_close(l);
    }
}

// ---------------------------------------------------------------- one row

static void row_math(test_case *tc) {
    gk_err err;
    teacher_row_work w;
    enum { N = 1000 };
    CHECK(tc, teacher_row_work_alloc(&w, N, 64, &err) == 0, "%s", err.msg);
    if (tc->failed) return;
    float l[N];
    uint32_t ids[64];
    float lp[64], left;
    uint16_t counts[64];
    // Ties go to the smaller id; the log-probs and leftover against double.
    const float tied[10] = {1, 3, 3, 2, 3, 0, -1, 3, 2, 1};
    CHECK(tc, teacher_topk_row(tied, 10, 1.0, 3, &w, ids, lp, &left) == 0 && ids[0] == 1 && ids[1] == 2 && ids[2] == 4,
          "ties: ids %u %u %u, expected 1 2 4", ids[0], ids[1], ids[2]);
    double z = 0;
    for (int i = 0; i < 10; i++) z += exp(tied[i]);
    CHECK(tc, fabs(lp[0] - (3 - log(z))) < 1e-6 && fabs(left - (z - 3 * exp(3)) / z) < 1e-6, "tied log-prob %g leftover %g",
          lp[0], left);
    CHECK(tc, teacher_topk_row(tied, 10, 1.0, 10, &w, ids, lp, &left) == 0 && left == 0 && ids[3] == 7 && ids[4] == 3 &&
                  ids[9] == 6,
          "k = V: leftover %g, ids[3] %u ids[4] %u ids[9] %u", left, ids[3], ids[4], ids[9]);
    // A leftover of ~1e-23: summed directly it keeps its digits (1 - sum would give 0).
    for (int i = 0; i < N; i++) l[i] = i == 17 ? 0.0f : -30.0f;
    CHECK(tc, teacher_topk_row(l, N, 0.5, 1, &w, ids, lp, &left) == 0 && ids[0] == 17, "one-hot top-1");
    double want = 999 * exp(-60.0) / (1 + 999 * exp(-60.0));
    CHECK(tc, fabs(left - want) <= 1e-5 * want, "tiny leftover %.9g, expected %.9g", left, want);
    // Sampling: ids with probability 0 (exp underflow, -inf) are never drawn.
    for (int i = 0; i < N; i++) l[i] = i == 5 ? 0.0f : i == 900 ? -1.0f : i % 2 ? -INFINITY : -200.0f;
    int n = teacher_sample_row(l, N, 1.0, 64, 123, &w, ids, lp, counts);
    int c5 = 0, c900 = 0, total = 0;
    for (int j = 0; j < n; j++) {
        c5 += ids[j] == 5 ? counts[j] : 0;
        c900 += ids[j] == 900 ? counts[j] : 0;
        total += counts[j];
    }
    CHECK(tc, n >= 1 && n <= 2 && total == 64 && c5 + c900 == 64 && c900 > 0 && c900 < 40 && ids[n - 1] <= 900 &&
                  (n < 64 ? counts[63] == 0 && ids[63] == 0 : 1),
          "sampled %d distinct: id 5 x%d, id 900 x%d", n, c5, c900);
    double lz = log(1 + exp(-1.0));
    CHECK(tc, fabs(lp[0] - (-lz)) < 1e-6, "sampled log-prob %g, expected %g", lp[0], -lz);
    // The same key gives the same draws; another key others.
    uint32_t ids2[64];
    uint16_t counts2[64];
    for (int i = 0; i < N; i++) l[i] = (float)hash_normal(3, (uint64_t)i);
    n = teacher_sample_row(l, N, 1.0, 64, 7, &w, ids, lp, counts);
    int n2 = teacher_sample_row(l, N, 1.0, 64, 7, &w, ids2, lp, counts2);
    CHECK(tc, n == n2 && !memcmp(ids, ids2, sizeof ids) && !memcmp(counts, counts2, sizeof counts), "same key, other draws");
    n2 = teacher_sample_row(l, N, 1.0, 64, 8, &w, ids2, lp, counts2);
    CHECK(tc, n2 != n || memcmp(ids, ids2, (size_t)n * sizeof *ids), "another key, the same draws");
    // Non-finite rows are refused.
    l[3] = NAN;
    CHECK(tc, teacher_topk_row(l, N, 1.0, 4, &w, ids, lp, &left) < 0 && teacher_sample_row(l, N, 1.0, 4, 1, &w, ids, lp, counts) < 0,
          "a NaN row accepted");
    l[3] = INFINITY;
    CHECK(tc, teacher_topk_row(l, N, 1.0, 4, &w, ids, lp, &left) < 0, "an inf row accepted");
    teacher_row_work_free(&w);
}

// Usage errors: one line, exit status 2.
static void usage_errors(test_case *tc) {
    const struct {
        const char *a[6], *want;
    } cases[] = {
        {{"--method", "beam", "--k", "4"}, "--method: expected topk or sample, got 'beam'"},
        {{"--method", "topk", "--k", "0"}, "--k"},
        {{"--method", "topk", "--k", "600"}, "--k 600 is more than the vocabulary (512 ids)"},
        {{"--method", "topk", "--k", "4", "--part", "2/2"}, "--part: expected i/n with 0 <= i < n"},
        {{"--method", "topk", "--k", "4", "--temperature", "0"}, "--temperature: expected a number > 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const *a = cases[i].a;
        int st = run_gk(NULL, wpath("err"), COMMON, "--out", wpath("usage"), a[0], a[1], a[2], a[3], a[4], a[5], NULL);
        char *msg = test_read_text(wpath("err"));
        CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 2 && strstr(msg, cases[i].want) && test_one_line(msg),
              "case %zu: status %d: %s", i, st, msg);
        free(msg);
    }
    int st = run_gk(NULL, wpath("err"), "teacher-logits", "--teacher", wpath("nowhere"), "--data", data_arg, "--seq-len", "16",
                    "--method", "topk", "--k", "4", "--out", wpath("usage"), NULL);
    char *msg = test_read_text(wpath("err"));
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(msg, "nowhere"), "missing teacher: status %d: %s", st, msg);
    free(msg);
}

// A teacher whose vocabulary is padded past the tokenizer's (as Gemma 3's is)
// writes a cache for its own width; one with fewer ids than the shards is refused.
static void teacher_vocabulary_padded_or_short(test_case *tc) {
    gk_err err = {0};
    char padded[256], cache[256];
    snprintf(padded, sizeof padded, "%s", wpath("teacher-v520"));
    snprintf(cache, sizeof cache, "%s", wpath("cache-v520"));
    CHECK(tc, write_teacher(padded, V + 8, &err) == 0, "teacher: %s", err.msg);
    int st = run_gk(NULL, wpath("err"), "teacher-logits", "--teacher", padded, "--data", data_arg, "--seq-len", "16",
                    "--method", "topk", "--k", "4", "--out", cache, NULL);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0, "padded teacher: status %d", st);
    loader *l = NULL;
    teacher_cache *c = NULL;
    teacher_cache_expect e = {.tokenizer_sha256 = SHA_TOK, .vocab_size = V + 8, .temperature = 1, .method = TEACHER_CACHE_TOPK};
    CHECK(tc, open_loader(&l, T, NULL, &err) == 0 && teacher_cache_open(&c, cache, l, &e, &err) == 0,
          "cache of the padded teacher: %s", err.msg);
    teacher_cache_close(c);
    loader_close(l);

    char short_teacher[256];
    snprintf(short_teacher, sizeof short_teacher, "%s", wpath("teacher-v500"));
    CHECK(tc, write_teacher(short_teacher, V - 12, &err) == 0, "teacher: %s", err.msg);
    st = run_gk(NULL, wpath("err"), "teacher-logits", "--teacher", short_teacher, "--data", data_arg, "--seq-len", "16",
                "--method", "topk", "--k", "4", "--out", wpath("cache-v500"), NULL);
    char *msg = test_read_text(wpath("err"));
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(msg, "has a vocabulary of 500 ids but the token shards have 512"),
          "short teacher: status %d: %s", st, msg);
    free(msg);
    CHECK(tc, access(wpath("cache-v500"), F_OK) != 0, "a refused run created its output directory");
}

int main(int argc, char **argv) {
    (void)argc;
    test_gemmakd_path(argv[0], gemmakd, sizeof gemmakd);
    if (test_scratch_dir(NULL, "tcache", work, sizeof work)) return 1;
    snprintf(teacher, sizeof teacher, "%s/teacher", work);
    snprintf(shard_a, sizeof shard_a, "%s/a.h5", work);
    snprintf(shard_b, sizeof shard_b, "%s/b.h5", work);
    snprintf(data_arg, sizeof data_arg, "%s,%s/b.h[5]", shard_a, work); // a name and a glob
    // The machine may be shared: OpenMP threads that spin while waiting for a
    // busy core slow everything down twenty-fold. The reference runs on one thread.
    setenv("OMP_WAIT_POLICY", "passive", 0);
    omp_set_num_threads(1);
    gk_err err = {0};
    if (write_teacher(teacher, V, &err) || write_shard(shard_a, 1, 14, &err) || write_shard(shard_b, 2, 7, &err)) {
        printf("FAIL %s/setup: %s\n", test_program, err.msg);
        return 1;
    }
    test_run("row_math", row_math);
    test_run("topk_f32_matches_naive", topk_f32_matches_naive);
    test_run("topk_low_temperature_tiny_leftover", topk_low_temperature_tiny_leftover);
    test_run("topk_f16_matches_naive", topk_f16_matches_naive);
    test_run("sample_matches_teacher", sample_matches_teacher);
    test_run("sample_other_threads_or_batch", sample_other_threads_or_batch);
    test_run("killed_and_resumed", killed_and_resumed);
    test_run("parts_equal_one_run", parts_equal_one_run);
    test_run("resume_with_other_settings_fails", resume_with_other_settings_fails);
    test_run("reader_rejects_mismatches", reader_rejects_mismatches);
    test_run("reader_rows_match_file", reader_rows_match_file);
    test_run("reader_refuses_fifo_segment", reader_refuses_fifo_segment);
    test_run("reader_rejects_bad_rows", reader_rejects_bad_rows);
    test_run("h5py_reads_cache", h5py_reads_cache);
    test_run("usage_errors", usage_errors);
    test_run("teacher_vocabulary_padded_or_short", teacher_vocabulary_padded_or_short);
    if (test_main_result() == 0) dir_remove_tree(work, &err);
    return test_main_result();
}

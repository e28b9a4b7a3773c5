#include "train/on_policy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/rng.h"
#include "common/timer.h"
#include "data/loader.h"
#include "data/records.h"
#include "gen/model_tokenizer.h"
#include "gen/prompts.h"

// ---------------------------------------------------------------- the prompts

typedef struct {
    on_policy *op;
    size_t cap, skipped, max_prompt; // prompts longer than max_prompt leave no room for max_new tokens
} pool;

// Takes ids[n] (malloc'd) into the pool, or frees them when they do not fit.
static int pool_add(pool *p, int32_t *ids, size_t n, gk_err *err) {
    on_policy *op = p->op;
    if (n == 0 || n > p->max_prompt) {
        p->skipped++;
        free(ids);
        return 0;
    }
    if (op->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 256;
        int32_t **prompts = realloc(op->prompts, cap * sizeof *prompts);
        if (prompts) op->prompts = prompts;
        size_t *lens = prompts ? realloc(op->n_prompt, cap * sizeof *lens) : NULL;
        if (lens) op->n_prompt = lens;
        if (!lens) {
            free(ids);
            return gk_fail(err, GK_ENOMEM, "out of memory for %zu prompts", cap);
        }
        p->cap = cap;
    }
    op->prompts[op->n] = ids;
    op->n_prompt[op->n++] = n;
    return 0;
}

// Each document of the shards: a chat shard's up to its first trained token, any other whole.
static int shard_prompts(pool *p, const run_config *rc, const model_config *student, const char *tokenizer_sha256,
                         gk_err *err) {
    const rc_paths *paths = &rc->kd.on_policy.prompts;
    const char *list[RC_MAX_PATTERNS];
    for (int i = 0; i < paths->count; i++) list[i] = paths->items[i];
    // The loader expands, validates and checks the shards; its windows are not used (of one token, so
    // that short prompts are not "too short for a window").
    loader_options opt = {.seq_len = 1, .tokenizer_sha256 = tokenizer_sha256, .max_vocab = student->vocab_size};
    loader *l;
    if (loader_open(&l, list, (size_t)paths->count, &opt, err)) return gk_wrap(err, "kd.on_policy.prompts");
    int rc_ = 0;
    for (size_t s = 0; rc_ == 0 && s < loader_n_shards(l); s++) {
        shard_file *f = (shard_file *)loader_shard(l, s); // reads move only the shard's chunk cache
        for (uint64_t d = 0; rc_ == 0 && d < f->n_docs; d++) {
            uint64_t start = f->doc_starts[d], end = d + 1 < f->n_docs ? f->doc_starts[d + 1] : f->n_tokens;
            size_t n = (size_t)(end - start);
            uint32_t *raw = gk_malloc(n * sizeof *raw, err);
            uint8_t *mask = f->meta.has_loss_mask ? gk_malloc(n, err) : NULL;
            int32_t *ids = gk_malloc(n * sizeof *ids, err);
            rc_ = raw && ids && (mask || !f->meta.has_loss_mask) ? shard_read_tokens(f, start, n, raw, err) : -1;
            if (rc_ == 0 && mask) rc_ = shard_read_mask(f, start, n, mask, err);
            size_t keep = n;
            for (size_t i = 0; rc_ == 0 && mask && i < n; i++)
                if (mask[i]) {
                    keep = i;
                    break;
                }
            for (size_t i = 0; rc_ == 0 && i < keep; i++) ids[i] = (int32_t)raw[i];
            free(raw);
            free(mask);
            if (rc_ == 0) rc_ = pool_add(p, ids, keep, err);
            else free(ids);
        }
    }
    loader_close(l);
    return rc_;
}

// One JSONL record's prompt: a chat's system turn and first user turn, or <bos> and a text.
static int record_prompt(pool *p, const tokenizer *tok, const record *r, gk_err *err) {
    int32_t *ids = NULL;
    size_t n = 0;
    if (r->kind == RECORD_TEXT) {
        if (tokenizer_encode(tok, r->text, r->text_len, true, &ids, NULL, &n, err)) return -1;
        return pool_add(p, ids, n, err);
    }
    size_t k = 0;
    while (k < r->n_messages && r->messages[k].role != ROLE_USER) k++;
    if (k == r->n_messages) return 1; // no user turn to answer
    if (chat_prompt_ids(tok, r->messages, k + 1, &ids, &n, err)) return -1;
    return pool_add(p, ids, n, err);
}

static int jsonl_prompts(pool *p, const char *path, const tokenizer *tok, gk_err *err) {
    char *text;
    size_t len, line_no = 0;
    if (file_read_all(path, &text, &len, err)) return -1;
    int rc = 0;
    for (size_t at = 0; rc == 0 && at < len;) {
        const char *line = text + at, *nl = memchr(line, '\n', len - at);
        size_t n = nl ? (size_t)(nl - line) : len - at;
        at += n + 1;
        line_no++;
        if (n == 0 || (n == 1 && line[0] == '\r')) continue;
        record r;
        if ((rc = record_parse(line, n, path, line_no, &r, err))) break;
        rc = record_prompt(p, tok, &r, err);
        record_free(&r);
        if (rc == 1) rc = gk_fail(err, GK_EINPUT, "%s:%zu: the conversation has no user turn to answer", path, line_no);
        else if (rc) gk_wrap(err, "%s:%zu", path, line_no);
    }
    free(text);
    return rc;
}

static bool is_jsonl(const rc_paths *paths) {
    const char *name = paths->items[0];
    size_t n = strlen(name);
    return paths->count == 1 && n > 6 && !strcmp(name + n - 6, ".jsonl");
}

// The pool in one seeded order (Fisher-Yates).
static void shuffle(on_policy *op) {
    rng_state r;
    rng_seed(&r, op->seed ^ 0x6f6e2d706f6c6963ULL); // "on-polic": apart from the run's other seeded draws
    for (size_t i = op->n; i > 1; i--) {
        size_t j = (size_t)(rng_next(&r) % i);
        int32_t *ids = op->prompts[i - 1];
        size_t n = op->n_prompt[i - 1];
        op->prompts[i - 1] = op->prompts[j];
        op->n_prompt[i - 1] = op->n_prompt[j];
        op->prompts[j] = ids;
        op->n_prompt[j] = n;
    }
}

// ---------------------------------------------------------------- open, close

static int load_prompts(on_policy *op, const run_config *rc, const model_config *student, const char *shards_sha256,
                        gk_err *err) {
    pool p = {.op = op, .max_prompt = (size_t)(op->T - op->max_new)};
    bool jsonl = is_jsonl(&rc->kd.on_policy.prompts);
    tokenizer *tok = NULL;
    const char *tok_path = rc->kd.on_policy.tokenizer[0] ? rc->kd.on_policy.tokenizer : NULL;
    int r = tokenizer_for_model(rc->teacher.model, tok_path, false, &tok, err);
    if (r == 0 && jsonl && !tok)
        r = gk_fail(err, GK_EINPUT, "kd.on_policy.prompts %s: JSONL prompts are tokenized with the teacher's tokenizer, "
                    "and %s has no tokenizer.json or tokenizer.model: set kd.on_policy.tokenizer",
                    rc->kd.on_policy.prompts.items[0], rc->teacher.model);
    if (r == 0 && tok && strcmp(tokenizer_sha256(tok), shards_sha256))
        r = gk_fail(err, GK_EINPUT, "kd.on_policy: the tokenizer %s (sha256 %.12s...) is not the training shards' "
                    "(%.12s...)", tok_path ? tok_path : rc->teacher.model, tokenizer_sha256(tok), shards_sha256);
    if (r == 0) r = jsonl ? jsonl_prompts(&p, rc->kd.on_policy.prompts.items[0], tok, err)
                          : shard_prompts(&p, rc, student, shards_sha256, err);
    op->n_stop = stop_ids_for(student, tok, op->stops);
    if (tok) tokenizer_free(tok);
    if (r) return -1;
    const char *source = rc->kd.on_policy.prompts.items[0];
    if (op->n == 0)
        return gk_fail(err, GK_EINPUT, "kd.on_policy.prompts %s: no prompt leaves the %d new tokens room in seq_len %d "
                       "(%zu skipped)", source, op->max_new, op->T, p.skipped);
    if (p.skipped)
        fprintf(stderr, "on-policy: %zu prompts of %s skipped: empty, or longer than %zu tokens (seq_len %d less "
                "max_new_tokens %d)\n", p.skipped, source, p.max_prompt, op->T, op->max_new);
    return 0;
}

int on_policy_open(on_policy *op, const run_config *rc, const model_config *student, const char *tokenizer_sha256,
                   gk_err *err) {
    memset(op, 0, sizeof *op);
    op->T = rc->data.seq_len;
    op->B = rc->batch.size;
    op->max_new = rc->kd.on_policy.max_new_tokens;
    op->fraction = rc->kd.on_policy.fraction;
    op->seed = (uint64_t)rc->seed;
    double temperature = rc->kd.on_policy.temperature;
    op->sampling = (sampling){.greedy = temperature == 0, .temperature = temperature > 0 ? temperature : 1,
                              .top_p = rc->kd.on_policy.top_p};
    size_t cells = (size_t)op->B * (size_t)op->T;
    op->tokens = gk_malloc(cells * sizeof *op->tokens, err);
    op->targets = op->tokens ? gk_malloc(cells * sizeof *op->targets, err) : NULL;
    if (!op->targets || load_prompts(op, rc, student, tokenizer_sha256, err)) {
        on_policy_close(op);
        return -1;
    }
    shuffle(op);
    fprintf(stderr, "on-policy: %zu prompts, %.3g of each step's rows sampled by the %s\n", op->n, op->fraction,
            rc->kd.seq_kd ? "teacher (sequence-level KD)" : "student");
    return 0;
}

void on_policy_close(on_policy *op) {
    for (size_t i = 0; i < op->n; i++) free(op->prompts[i]);
    free(op->prompts);
    free(op->n_prompt);
    free(op->tokens);
    free(op->targets);
    memset(op, 0, sizeof *op);
}

// ---------------------------------------------------------------- sampling

// Sampled rows before step s: floor(s f B).
static int64_t rows_before(const on_policy *op, int64_t step) {
    return (int64_t)floor((double)step * op->fraction * op->B + 1e-9);
}

int on_policy_rows_at(const on_policy *op, int64_t step) {
    return (int)(rows_before(op, step + 1) - rows_before(op, step));
}

void on_policy_row_targets(const int32_t *tokens, size_t P, size_t G, int T, int32_t *targets) {
    for (int t = 0; t < T; t++) targets[t] = (size_t)t + 1 >= P && (size_t)t + 1 < P + G ? tokens[t + 1] : -1;
}

typedef struct {
    on_policy *op;
    const gen_request *reqs;
} sample_sink;

// A finished continuation: its row, padded with id 0, and its targets.
static int row_done(void *ctx, size_t request, const gen_output *out, gk_err *err) {
    (void)err;
    sample_sink *s = ctx;
    on_policy *op = s->op;
    const gen_request *q = &s->reqs[request];
    int32_t *row = op->tokens + request * (size_t)op->T;
    memset(row, 0, (size_t)op->T * sizeof *row);
    memcpy(row, q->prompt, q->n_prompt * sizeof *row);
    memcpy(row + q->n_prompt, out->tokens, out->n * sizeof *row); // n_prompt + max_new <= T
    on_policy_row_targets(row, q->n_prompt, out->n, op->T, op->targets + request * (size_t)op->T);
    op->new_tokens += (int64_t)out->n;
    return 0;
}

int on_policy_sample(on_policy *op, const generator *g, int64_t step, gk_err *err) {
    return on_policy_sample_part(op, g, step, 0, on_policy_rows_at(op, step), err);
}

int on_policy_sample_part(on_policy *op, const generator *g, int64_t step, int first, int count, gk_err *err) {
    op->rows = on_policy_rows_at(op, step);
    GK_ASSERT(first >= 0 && count >= 0 && first + count <= op->rows);
    op->first = first;
    op->count = count;
    op->new_tokens = 0;
    op->seconds = 0;
    if (count == 0) return 0;
    double start = now_seconds();
    gen_request reqs[op->B];
    int64_t before = rows_before(op, step) + first; // the run's sampled rows before this process's first
    for (int i = 0; i < count; i++) {
        uint64_t c = (uint64_t)(before + i);
        size_t p = (size_t)(c % op->n);
        reqs[i] = (gen_request){.prompt = op->prompts[p], .n_prompt = op->n_prompt[p], .max_new = op->max_new,
                                .seed = hash64(op->seed ^ hash64(c + 0x9e3779b97f4a7c15ULL))};
    }
    sample_sink sink = {op, reqs};
    generator run = *g;
    run.sampling = op->sampling;
    run.stop_ids = op->stops;
    run.n_stop = op->n_stop;
    run.batch = count;
    run.on_done = row_done;
    run.ctx = &sink;
    run.progress = false;
    gen_stats st;
    int r = generate(&run, reqs, (size_t)count, NULL, &st, err);
    op->seconds = now_seconds() - start;
    return r;
}

void on_policy_stage_row(const on_policy *op, int i, int32_t *tokens, int32_t *targets, int32_t *doc_begin) {
    size_t T = (size_t)op->T;
    GK_ASSERT(i >= op->first && i < op->first + op->count);
    i -= op->first;
    memcpy(tokens, op->tokens + (size_t)i * T, T * sizeof *tokens);
    memcpy(targets, op->targets + (size_t)i * T, T * sizeof *targets);
    memset(doc_begin, 0, T * sizeof *doc_begin); // one document from position 0
}

#include "gen/prompts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/dist.h"
#include "common/lines.h"
#include "common/progress.h"
#include "common/rng.h"
#include "common/strbuf.h"
#include "common/timer.h"
#include "data/chat.h"
#include "data/records.h"
#include "gen/answer_share.h"
#include "gen/answers.h"

// Requests per chunk, per rank and row of the batch: a chunk's records are written when all of
// them are answered, so a kill loses at most one chunk.
enum { CHUNK_BATCHES = 8 };

typedef struct {
    size_t line;        // input line: the record's id
    record rec;
    chat_message *kept; // system and user turns, in order
    size_t n_kept, n_user;
    char **answers;     // [n_user] the model's answers so far
    int tokens;
    gen_finish finish;
    bool skipped;       // a prompt too long for the model (--skip-bad): not answered further
} conversation;

typedef struct {
    const generator *g;
    const prompts_job *job;
    conversation *convs;
    size_t n_convs, round, rounds, written, bad; // bad: records skipped (malformed, or too long for the model)
    conversation **active; // [requests of this round]
    FILE *out;             // OUT.tmp, appended to (rank 0 only)
    const char *tmp;       // its name
    bool show;             // the progress line (rank 0's)
    progress prog;
    int64_t new_tokens;    // of every rank
    double start;
} answer_run;

static void conversation_free(conversation *c) {
    for (size_t i = 0; c->answers && i < c->n_user; i++) free(c->answers[i]);
    free(c->answers);
    free(c->kept);
    record_free(&c->rec);
}

// ---------------------------------------------------------------- reading prompts

static int keep_turns(conversation *c, const char *file, gk_err *err) {
    c->kept = calloc(c->rec.n_messages ? c->rec.n_messages : 1, sizeof *c->kept);
    if (!c->kept) return gk_fail(err, GK_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->rec.n_messages; i++) {
        chat_message m = c->rec.messages[i];
        if (m.role == ROLE_MODEL) continue; // the original answers are dropped
        if (m.role == ROLE_SYSTEM && c->n_kept) return gk_fail(err, GK_EINPUT, "%s:%zu: a system message after the first turn", file, c->line);
        c->kept[c->n_kept++] = m;
        c->n_user += m.role == ROLE_USER;
    }
    if (!c->n_user) return gk_fail(err, GK_EINPUT, "%s:%zu: no user turn to answer", file, c->line);
    c->answers = calloc(c->n_user, sizeof *c->answers);
    return c->answers ? 0 : gk_fail(err, GK_ENOMEM, "out of memory");
}

static int read_prompts(answer_run *r, const bool *done, size_t n_done, size_t *skipped_done, gk_err *err) {
    const prompts_job *j = r->job;
    char *text;
    size_t len;
    if (file_read_all(j->in, &text, &len, err)) return -1;
    int rc = 0;
    line_iter it = lines_of(text, len);
    for (const char *p, *end; rc == 0 && next_line(&it, &p, &end);) {
        size_t line = it.line;
        if (line < n_done && done[line]) {
            (*skipped_done)++;
            continue;
        }
        conversation c = {.line = line};
        gk_err why = {0};
        int bad_rc = record_parse(p, (size_t)(end - p), j->in, line, &c.rec, &why);
        if (bad_rc == 0 && c.rec.kind != RECORD_CHAT)
            bad_rc = gk_fail(&why, GK_EINPUT, "%s:%zu: a \"text\" record has no turns to answer", j->in, line);
        if (bad_rc == 0) bad_rc = keep_turns(&c, j->in, &why);
        if (bad_rc && !j->skip_bad) {
            *err = why;
            rc = -1;
        } else if (bad_rc) {
            if (dist_is_root()) fprintf(stderr, "skipped: %s\n", why.msg);
            r->bad++;
        }
        if (bad_rc) {
            conversation_free(&c);
            continue;
        }
        conversation *bigger = realloc(r->convs, (r->n_convs + 1) * sizeof *bigger);
        if (!bigger) {
            conversation_free(&c);
            rc = gk_fail(err, GK_ENOMEM, "out of memory");
        } else {
            r->convs = bigger;
            r->convs[r->n_convs++] = c;
        }
    }
    free(text);
    return rc;
}

// ---------------------------------------------------------------- answering

int chat_prompt_ids(const tokenizer *tok, const chat_message *m, size_t n, int32_t **ids, size_t *n_ids, gk_err *err) {
    chat_rendered r;
    int32_t *body = NULL;
    size_t nb = 0;
    *ids = NULL;
    int rc = chat_render(m, n, true, &r, err);
    if (rc == 0) {
        rc = tokenizer_encode(tok, r.text, r.len, false, &body, NULL, &nb, err);
        chat_rendered_free(&r);
    }
    int32_t bos = tokenizer_bos_id(tok);
    *n_ids = nb + (bos >= 0);
    if (rc == 0 && !(*ids = malloc(*n_ids * sizeof **ids))) rc = gk_fail(err, GK_ENOMEM, "out of memory");
    if (rc == 0) {
        if (bos >= 0) (*ids)[0] = bos;
        memcpy(*ids + (bos >= 0), body, nb * sizeof *body);
    }
    free(body);
    return rc;
}

int answer_text(const tokenizer *tok, const gen_output *out, char **text, gk_err *err) {
    size_t len, n = out->n - (out->finish == GEN_STOP); // the stop id is not part of the answer
    return tokenizer_decode(tok, out->tokens, n, true, text, &len, err);
}

// The chat so far, up to user turn `round` (0-based), with the answers to the earlier ones.
static int build_prompt(const conversation *c, size_t round, const tokenizer *tok, int32_t **ids, size_t *n, gk_err *err) {
    chat_message *m = calloc(c->n_kept + round + 1, sizeof *m);
    if (!m) return gk_fail(err, GK_ENOMEM, "out of memory");
    size_t k = 0, users = 0;
    for (size_t i = 0; i < c->n_kept && users <= round; i++) {
        m[k++] = c->kept[i];
        if (c->kept[i].role != ROLE_USER) continue;
        if (users < round) m[k++] = (chat_message){ROLE_MODEL, c->answers[users], strlen(c->answers[users])};
        users++;
    }
    int rc = chat_prompt_ids(tok, m, k, ids, n, err);
    free(m);
    return rc;
}

// Appends c's output line to OUT.tmp; a failed write (a full disk) stops the run.
static int write_record(answer_run *r, const conversation *c, gk_err *err) {
    const generator *g = r->g;
    const sampling *s = &g->sampling;
    static const char *role_names[] = {"system", "user", "assistant"};
    strbuf sb = {0};
    sb_puts(&sb, "{\"messages\": [");
    size_t users = 0;
    for (size_t i = 0; i < c->n_kept; i++) {
        const chat_message *m = &c->kept[i];
        sb_printf(&sb, "%s{\"role\": \"%s\", \"content\": ", i ? ", " : "", role_names[m->role]);
        sb_json_string(&sb, m->content, m->len);
        sb_puts(&sb, "}");
        if (m->role != ROLE_USER) continue;
        sb_puts(&sb, ", {\"role\": \"assistant\", \"content\": ");
        sb_json_string(&sb, c->answers[users], strlen(c->answers[users]));
        sb_puts(&sb, "}");
        users++;
    }
    sb_printf(&sb, "], \"meta\": {\"record\": %zu, \"model\": ", c->line);
    sb_json_string(&sb, r->job->model, strlen(r->job->model));
    if (s->greedy) sb_puts(&sb, ", \"sampling\": {\"greedy\": true");
    else
        sb_printf(&sb, ", \"sampling\": {\"temperature\": %g, \"top_k\": %d, \"top_p\": %g, \"min_p\": %g", s->temperature,
                  s->top_k, s->top_p, s->min_p);
    sb_printf(&sb, ", \"seed\": %llu, \"max_new_tokens\": %d}, \"tokens\": %d, \"finish\": \"%s\"}}\n",
              (unsigned long long)r->job->seed, r->job->max_new, c->tokens, c->finish == GEN_STOP ? "stop" : "length");
    int rc = 0;
    if (sb.failed) rc = gk_fail(err, GK_ENOMEM, "out of memory");
    else if (fwrite(sb.data, 1, sb.len, r->out) != sb.len || fflush(r->out) != 0) // a kill loses at most this line
        rc = gk_fail(err, GK_EIO, "%s: write failed: %s", r->tmp, strerror(errno));
    sb_free(&sb);
    r->written += rc == 0;
    return rc;
}

// Where this rank's block of a chunk puts its answers (on_done's context).
typedef struct {
    const tokenizer *tok;
    chunk_answer *answers; // [the block's requests]
} answer_sink;

// on_done: a request of this rank's block answered, its text into the chunk's answers.
static int keep_answer(void *ctx, size_t request, const gen_output *out, gk_err *err) {
    answer_sink *sink = ctx;
    chunk_answer *a = &sink->answers[request];
    a->tokens = (int)out->n;
    a->finish = out->finish;
    return answer_text(sink->tok, out, &a->text, err);
}

// An answer joins its conversation (on every rank); rank 0 writes the record it completes.
static int take_answer(answer_run *r, conversation *c, chunk_answer *a, gk_err *err) {
    c->answers[r->round] = a->text;
    a->text = NULL;
    c->tokens += a->tokens;
    c->finish = a->finish;
    r->new_tokens += a->tokens;
    return r->round + 1 == c->n_user && dist_is_root() ? write_record(r, c, err) : 0;
}

// n requests of this round (for convs[n]): this rank answers its block [lo, hi) (dist_split),
// every rank gets every answer, and rank 0 writes the records they complete, in request order.
static int answer_chunk(answer_run *r, const gen_request *reqs, conversation **convs, size_t n, gk_err *err) {
    uint64_t lo, hi;
    dist_split(n, dist_rank(), dist_size(), &lo, &hi);
    chunk_answer *answers = gk_calloc(n, sizeof *answers, err);
    int rc = answers ? 0 : -1;
    generator g = *r->g;
    answer_sink sink = {r->job->tok, answers ? answers + lo : NULL};
    g.on_done = keep_answer;
    g.ctx = &sink;
    g.progress = false; // the chunks' line is prompts_answer's
    gen_stats st;
    if (rc == 0 && hi > lo) rc = generate(&g, reqs + lo, (size_t)(hi - lo), NULL, &st, err);
    rc = dist_check(rc, err);
    if (rc == 0) rc = chunk_answers_share(answers, n, (size_t)lo, (size_t)hi, err);
    for (size_t i = 0; rc == 0 && i < n; i++) rc = take_answer(r, convs[i], &answers[i], err);
    chunk_answers_free(answers, answers ? n : 0);
    return dist_check(rc, err);
}

static void show_progress(answer_run *r, size_t done, size_t n, bool force) {
    if (!r->show) return;
    double t = now_seconds() - r->start;
    progress_show(&r->prog, force, "generate: round %zu/%zu: %zu/%zu requests answered, %lld new tokens, %.1f tokens/s",
                  r->round + 1, r->rounds, done, n, (long long)r->new_tokens, t > 0 ? (double)r->new_tokens / t : 0.0);
}

// Whether a prompt of n_ids tokens leaves room for max_new in the model's positions: 0 when it
// does; else an error naming file:line, or with --skip-bad 1 and the conversation skipped (counted).
static int check_fits(answer_run *r, conversation *c, size_t n_ids, gk_err *err) {
    int positions = r->g->m->cfg.max_seq_len, max_new = r->job->max_new;
    if (n_ids + (size_t)max_new <= (size_t)positions) return 0;
    gk_err why;
    gk_fail(&why, GK_EINPUT, "%s:%zu: %zu prompt + %d new tokens exceed the model's %d positions%s", r->job->in, c->line,
            n_ids, max_new, positions, r->round ? " (with the earlier answers)" : "");
    if (!r->job->skip_bad) {
        *err = why;
        return -1;
    }
    if (dist_is_root()) fprintf(stderr, "skipped: %s\n", why.msg);
    c->skipped = true;
    r->bad++;
    return 1;
}

// Round `round`: every conversation with that many user turns gets its next answer, chunk by chunk.
static int answer_round(answer_run *r, gk_err *err) {
    size_t n = 0;
    gen_request *reqs = gk_calloc(r->n_convs ? r->n_convs : 1, sizeof *reqs, err);
    r->active = gk_calloc(r->n_convs ? r->n_convs : 1, sizeof *r->active, err);
    int rc = reqs && r->active ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < r->n_convs; i++) {
        conversation *c = &r->convs[i];
        if (c->n_user <= r->round || c->skipped) continue;
        int32_t *ids = NULL;
        size_t n_ids = 0;
        if (build_prompt(c, r->round, r->job->tok, &ids, &n_ids, err)) {
            rc = gk_wrap(err, "%s:%zu", r->job->in, c->line);
            break;
        }
        int fits = check_fits(r, c, n_ids, err);
        if (fits) {
            free(ids);
            if (fits < 0) rc = -1;
            continue;
        }
        reqs[n] = (gen_request){ids, n_ids, r->job->max_new, hash64(r->job->seed ^ hash64(c->line * 1000003u + r->round))};
        r->active[n++] = c;
    }
    rc = dist_check(rc, err);
    size_t chunk = (size_t)r->g->batch * (size_t)dist_size() * CHUNK_BATCHES;
    for (size_t at = 0; rc == 0 && at < n; at += chunk) {
        rc = answer_chunk(r, reqs + at, r->active + at, n - at < chunk ? n - at : chunk, err);
        if (rc == 0) show_progress(r, n - at < chunk ? n : at + chunk, n, false);
    }
    for (size_t i = 0; reqs && i < n; i++) free((void *)reqs[i].prompt);
    free(reqs);
    free(r->active);
    r->active = NULL;
    return rc;
}

// Rank 0's record of the records already answered (read from OUT.tmp or OUT), to every rank.
static int share_done(bool **done, size_t *n_done, gk_err *err) {
    if (dist_size() <= 1) return 0;
    uint64_t n = *n_done;
    dist_bcast(&n, sizeof n, 0);
    if (!dist_is_root()) *done = gk_calloc(n ? n : 1, sizeof **done, err);
    if (dist_check(*done || !n ? 0 : -1, err)) return -1;
    if (n) dist_bcast(*done, n * sizeof **done, 0);
    *n_done = (size_t)n;
    return 0;
}

// Rank 0's OUT.tmp: a stopped run's, continued, or a new one; the records already answered go to every rank.
static int open_answers(answer_run *r, bool **done, size_t *n_done, gk_err *err) {
    answer_settings settings;
    int rc = 0;
    if (dist_is_root()) rc = answer_settings_make(r->g, r->job, &settings, err);
    if (rc == 0 && dist_is_root()) rc = answers_open(r->job->out, r->tmp, &settings, done, n_done, &r->out, err);
    rc = dist_check(rc, err);
    return rc ? rc : share_done(done, n_done, err);
}

int prompts_answer(const generator *g, const prompts_job *job, gk_err *err) {
    answer_run r = {.g = g, .job = job, .show = g->progress && dist_is_root()};
    size_t n_done = 0, skipped = 0;
    bool *done = NULL;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", job->out);
    r.tmp = tmp;
    int rc = open_answers(&r, &done, &n_done, err);
    if (rc == 0) rc = dist_check(read_prompts(&r, done, n_done, &skipped, err), err);
    for (size_t i = 0; i < r.n_convs; i++) r.rounds = r.convs[i].n_user > r.rounds ? r.convs[i].n_user : r.rounds;
    progress_init(&r.prog, 2.0);
    r.start = now_seconds();
    for (r.round = 0; rc == 0 && r.round < r.rounds; r.round++) rc = answer_round(&r, err);
    double seconds = now_seconds() - r.start;
    if (r.out) { // a write error that fflush did not report is still in ferror
        int e = ferror(r.out) ? EIO : 0;
        if (fclose(r.out) != 0) e = errno;
        if (e && rc == 0) rc = gk_fail(err, GK_EIO, "%s: write failed: %s", tmp, strerror(e));
    }
    if (rc == 0 && dist_is_root()) rc = answers_publish(tmp, job->out, err);
    if (r.show && rc) progress_clear(&r.prog);
    else if (r.show) progress_done(&r.prog);
    if (rc == 0 && dist_is_root())
        fprintf(stderr,
                "generate: answered %zu record(s) (%zu already answered, %zu skipped: malformed or too long) in %s; "
                "%lld new tokens in %.1f s (%.1f tokens/s)\n",
                r.written, skipped, r.bad, job->out, (long long)r.new_tokens, seconds,
                seconds > 0 ? (double)r.new_tokens / seconds : 0.0);
    for (size_t i = 0; i < r.n_convs; i++) conversation_free(&r.convs[i]);
    free(r.convs);
    free(done);
    return dist_check(rc, err);
}

#include "eval/tasks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/json.h"
#include "common/lines.h"
#include "eval/scorer.h"

// ---------------------------------------------------------------- requests

typedef struct {
    int32_t *ids; // [n] the whole text, <bos> first
    size_t n, ctx; // ctx: tokens of the context (with <bos>); the continuation is ids[ctx..n)
} request;

static int encode_request(const tokenizer *tok, const char *context, const char *continuation, request *q, gk_err *err) {
    size_t lc = strlen(context), spaces = 0;
    while (spaces < lc && strchr(" \t\n\r\f\v", context[lc - 1 - spaces])) spaces++;
    size_t keep = lc - spaces, lw = lc + strlen(continuation);
    char *whole = gk_malloc(lw + 1, err);
    if (!whole) return -1;
    memcpy(whole, context, lc);
    strcpy(whole + lc, continuation); // context + continuation, whichever side the spaces are on
    int32_t *ctx_ids = NULL;
    size_t n_ctx;
    int rc = tokenizer_encode(tok, whole, lw, true, &q->ids, NULL, &q->n, err);
    if (rc == 0) rc = tokenizer_encode(tok, context, keep, true, &ctx_ids, NULL, &n_ctx, err);
    free(whole);
    free(ctx_ids);
    q->ctx = n_ctx;
    if (rc == 0 && n_ctx >= q->n) rc = gk_fail(err, GK_EINPUT, "the continuation encodes to no tokens after the context");
    return rc;
}

// Packs requests into rows of the scorer, runs a batch when the rows are full.
typedef struct {
    scorer s;
    size_t row, at;    // next free position
    size_t *req_row, *req_at, *pending; // where each pending request sits
    size_t n_pending;
} packer;

static void clear_rows(packer *p) {
    size_t n = (size_t)p->s.B * p->s.T;
    for (size_t i = 0; i < n; i++) {
        p->s.tokens[i] = 0;
        p->s.doc_begin[i] = (int32_t)(i % (size_t)p->s.T); // padding: each position its own document
        p->s.targets[i] = -1;
    }
    p->row = p->at = p->n_pending = 0;
}

static void place(packer *p, const request *q, size_t index) {
    size_t T = (size_t)p->s.T, len = q->n - 1, base = p->row * T + p->at;
    for (size_t t = 0; t < len; t++) {
        p->s.tokens[base + t] = q->ids[t];
        p->s.doc_begin[base + t] = (int32_t)p->at;
        p->s.targets[base + t] = t + 1 >= q->ctx ? q->ids[t + 1] : -1;
    }
    p->req_row[p->n_pending] = p->row;
    p->req_at[p->n_pending] = p->at;
    p->pending[p->n_pending++] = index;
    p->at += len;
}

static int flush(packer *p, const request *qs, ll_result *out, gk_err *err) {
    if (!p->n_pending) return 0;
    double nll;
    if (scorer_run(&p->s, NULL, &nll, err)) return -1;
    for (size_t k = 0; k < p->n_pending; k++) {
        const request *q = &qs[p->pending[k]];
        size_t base = p->req_row[k] * (size_t)p->s.T + p->req_at[k];
        ll_result *r = &out[p->pending[k]];
        *r = (ll_result){0, true, (int)(q->n - q->ctx)};
        for (size_t t = q->ctx - 1; t + 1 < q->n; t++) {
            r->loglikelihood += p->s.logprob[base + t];
            r->is_greedy = r->is_greedy && p->s.greedy[base + t];
        }
    }
    clear_rows(p);
    return 0;
}

int score_requests(const task_runner *r, const char *const *contexts, const char *const *continuations, size_t n,
                   ll_result *out, gk_err *err) {
    request *qs = gk_calloc(n ? n : 1, sizeof *qs, err);
    int rc = qs ? 0 : -1;
    size_t longest = 1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (encode_request(r->tok, contexts[i], continuations[i], &qs[i], err)) rc = gk_wrap(err, "request %zu", i + 1);
        else if (qs[i].n - 1 > longest) longest = qs[i].n - 1;
    }
    if (rc == 0 && longest > (size_t)r->m->cfg.max_seq_len)
        rc = gk_fail(err, GK_EINPUT, "a request is %zu tokens long, more than the model's %d positions", longest + 1,
                     r->m->cfg.max_seq_len);
    packer p = {0};
    size_t T = longest > 256 ? longest : 256;
    if (T > (size_t)r->m->cfg.max_seq_len) T = longest;
    if (rc == 0) rc = scorer_init(&p.s, r->m, r->backend, r->batch, (int)T, r->window, err);
    size_t cap = (size_t)r->batch * T;
    p.req_row = gk_calloc(cap, sizeof *p.req_row, err);
    p.req_at = gk_calloc(cap, sizeof *p.req_at, err);
    p.pending = gk_calloc(cap, sizeof *p.pending, err);
    if (rc == 0 && (!p.req_row || !p.req_at || !p.pending)) rc = -1;
    if (rc == 0) clear_rows(&p);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t len = qs[i].n - 1;
        if (p.at + len > T) p.row++, p.at = 0;
        if (p.row == (size_t)r->batch && flush(&p, qs, out, err)) rc = -1;
        if (rc == 0) place(&p, &qs[i], i);
    }
    if (rc == 0) rc = flush(&p, qs, out, err);
    for (size_t i = 0; qs && i < n; i++) free(qs[i].ids);
    free(qs);
    free(p.req_row);
    free(p.req_at);
    free(p.pending);
    scorer_free(&p.s);
    return rc;
}

// ---------------------------------------------------------------- JSONL files

typedef struct {
    json_doc *docs; // one per record
    size_t n;
    size_t *lines;
} jsonl;

static void jsonl_free(jsonl *j) {
    for (size_t i = 0; i < j->n; i++) json_free(&j->docs[i]);
    free(j->docs);
    free(j->lines);
}

// Every non-blank line of path as a JSON object.
static int jsonl_read(const char *path, jsonl *j, gk_err *err) {
    memset(j, 0, sizeof *j);
    char *text;
    size_t len;
    if (file_read_all(path, &text, &len, err)) return -1;
    int rc = 0;
    line_iter it = lines_of(text, len);
    for (const char *p, *end; rc == 0 && next_line(&it, &p, &end);) {
        size_t line = it.line;
        json_doc *bigger = realloc(j->docs, (j->n + 1) * sizeof *bigger);
        size_t *lines = realloc(j->lines, (j->n + 1) * sizeof *lines);
        if (bigger) j->docs = bigger;
        if (lines) j->lines = lines;
        if (!bigger || !lines) {
            rc = gk_fail(err, GK_ENOMEM, "out of memory");
            break;
        }
        char source[600];
        snprintf(source, sizeof source, "%s:%zu", path, line);
        if (json_parse(p, (size_t)(end - p), source, &j->docs[j->n], err)) {
            rc = -1;
            break;
        }
        j->lines[j->n++] = line;
        if (j->docs[j->n - 1].root->type != JSON_OBJECT)
            rc = gk_fail(err, GK_EINPUT, "%s: expected a JSON object per line", source);
    }
    free(text);
    if (rc == 0 && j->n == 0) rc = gk_fail(err, GK_EINPUT, "%s: no records", path);
    if (rc) jsonl_free(j);
    return rc;
}

static const char *string_field(const json_value *o, const char *key) {
    const json_value *v = json_get(o, key);
    return v && v->type == JSON_STRING ? v->string : NULL;
}

static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

int task_multiple_choice(const task_runner *r, const char *path, strbuf *out, gk_err *err) {
    jsonl j;
    if (jsonl_read(path, &j, err)) return -1;
    size_t total = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < j.n; i++) { // validate, count choices
        const json_value *o = j.docs[i].root, *ch = json_get(o, "choices"), *label = json_get(o, "label");
        if (!string_field(o, "context")) rc = gk_fail(err, GK_EINPUT, "%s:%zu: needs a string \"context\"", path, j.lines[i]);
        else if (!ch || ch->type != JSON_ARRAY || ch->count < 2)
            rc = gk_fail(err, GK_EINPUT, "%s:%zu: needs \"choices\", a list of at least two strings", path, j.lines[i]);
        else if (!label || !label->is_integer || label->integer < 0 || (size_t)label->integer >= ch->count)
            rc = gk_fail(err, GK_EINPUT, "%s:%zu: \"label\" must be an index into the %zu choices", path, j.lines[i],
                         ch->count);
        for (size_t k = 0; rc == 0 && k < ch->count; k++)
            if (ch->items[k]->type != JSON_STRING || !ch->items[k]->length)
                rc = gk_fail(err, GK_EINPUT, "%s:%zu: choice %zu is not a non-empty string", path, j.lines[i], k);
        if (rc == 0) total += ch->count;
    }
    const char **ctx = rc == 0 ? gk_calloc(total, sizeof *ctx, err) : NULL;
    const char **cont = rc == 0 ? gk_calloc(total, sizeof *cont, err) : NULL;
    ll_result *res = rc == 0 ? gk_calloc(total, sizeof *res, err) : NULL;
    if (rc == 0 && (!ctx || !cont || !res)) rc = -1;
    for (size_t i = 0, q = 0; rc == 0 && i < j.n; i++) {
        const json_value *ch = json_get(j.docs[i].root, "choices");
        for (size_t k = 0; k < ch->count; k++, q++) {
            ctx[q] = string_field(j.docs[i].root, "context");
            cont[q] = ch->items[k]->string;
        }
    }
    if (rc == 0) rc = score_requests(r, ctx, cont, total, res, err);
    if (rc) gk_wrap(err, "%s", path);
    size_t correct = 0, correct_norm = 0;
    for (size_t i = 0, q = 0; rc == 0 && i < j.n; i++) {
        const json_value *ch = json_get(j.docs[i].root, "choices");
        size_t best = 0, best_norm = 0;
        for (size_t k = 0; k < ch->count; k++) {
            if (res[q + k].loglikelihood > res[q + best].loglikelihood) best = k;
            if (res[q + k].loglikelihood / (double)utf8_chars(cont[q + k]) >
                res[q + best_norm].loglikelihood / (double)utf8_chars(cont[q + best_norm]))
                best_norm = k;
        }
        long long label = json_get(j.docs[i].root, "label")->integer;
        correct += (long long)best == label;
        correct_norm += (long long)best_norm == label;
        q += ch->count;
    }
    if (rc == 0) {
        sb_puts(out, "{\"file\": ");
        sb_json_string(out, path, strlen(path));
        sb_printf(out, ", \"examples\": %zu, \"acc\": %.6f, \"acc_norm\": %.6f}", j.n, (double)correct / (double)j.n,
                  (double)correct_norm / (double)j.n);
    }
    free(ctx);
    free(cont);
    free(res);
    jsonl_free(&j);
    return rc;
}

int task_loglikelihood(const task_runner *r, const char *path, strbuf *out, gk_err *err) {
    jsonl j;
    if (jsonl_read(path, &j, err)) return -1;
    const char **ctx = gk_calloc(j.n, sizeof *ctx, err), **cont = gk_calloc(j.n, sizeof *cont, err);
    ll_result *res = gk_calloc(j.n, sizeof *res, err);
    int rc = ctx && cont && res ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < j.n; i++) {
        ctx[i] = string_field(j.docs[i].root, "context");
        cont[i] = string_field(j.docs[i].root, "continuation");
        if (!ctx[i] || !cont[i] || !cont[i][0])
            rc = gk_fail(err, GK_EINPUT, "%s:%zu: needs strings \"context\" and a non-empty \"continuation\"", path,
                         j.lines[i]);
    }
    if (rc == 0 && score_requests(r, ctx, cont, j.n, res, err)) rc = gk_wrap(err, "%s", path);
    if (rc == 0) {
        double sum = 0;
        for (size_t i = 0; i < j.n; i++) sum += res[i].loglikelihood;
        sb_puts(out, "{\"file\": ");
        sb_json_string(out, path, strlen(path));
        sb_printf(out, ", \"examples\": %zu, \"loglikelihood\": %.9g, \"results\": [", j.n, sum);
        for (size_t i = 0; i < j.n; i++)
            sb_printf(out, "%s{\"loglikelihood\": %.9g, \"is_greedy\": %s, \"tokens\": %d}", i ? ", " : "",
                      res[i].loglikelihood, res[i].is_greedy ? "true" : "false", res[i].tokens);
        sb_puts(out, "]}");
    }
    free(ctx);
    free(cont);
    free(res);
    jsonl_free(&j);
    return rc;
}

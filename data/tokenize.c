#include "data/tokenize.h"

#include <glob.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/kill_point.h"
#include "common/lines.h"
#include "common/progress.h"
#include "common/rng.h"
#include "common/strbuf.h"
#include "common/timer.h"
#include "data/chat.h"
#include "data/records.h"
#include "data/shard_set.h"
#include "data/shards.h"
#include "data/tokenizer/tokenizer.h"
#include "data/zstd_filter.h"

enum { BATCH_DOCS = 512, BATCH_BYTES = 8 << 20 };

// A shard in place, with what its set's manifest records.
typedef struct {
    char *path;
    int split; // 0 train, 1 validation
    uint64_t tokens, docs;
} written_shard;

// One document on its way to a shard.
typedef struct {
    const char *raw;  // JSONL line or plain-text document, in the input's text
    size_t raw_len;
    size_t line;      // JSONL line number (0 for plain text)
    bool jsonl;
    uint32_t *ids;    // results: [n]
    uint8_t *mask;    // [n] (chat shards)
    size_t n, bytes;
    bool chat, val, bad;
    gk_err err;
} doc_job;

typedef struct {
    const tokenize_options *o;
    tokenizer *tok;
    bool with_mask;
    shard_meta meta;
    shard_writer *writer[2]; // train, validation
    int next_index[2];
    written_shard *written;  // shards completed by this run (removed on failure)
    size_t n_written;
    bool sets_begun;         // the sets' "incomplete" manifests are written (removed on failure)
    tokenize_stats *stats;
    const char *file;        // input being read
    int file_is_chat;        // -1 unknown (no record yet), 0 text, 1 chat
    doc_job jobs[BATCH_DOCS];
    size_t n_jobs, batch_bytes;
    progress prog;
    double start;
} tokenize_run_state;

// ---------------------------------------------------------------- encoding

// <bos> text <eos> (either left out when the tokenizer has none).
static int encode_text(const tokenizer *tok, const char *text, size_t len, doc_job *j) {
    int32_t *ids, bos = tokenizer_bos_id(tok), eos = tokenizer_eos_id(tok);
    size_t n;
    if (tokenizer_encode(tok, text, len, false, &ids, NULL, &n, &j->err)) return -1;
    j->ids = malloc((n + 2) * sizeof *j->ids);
    if (!j->ids) {
        free(ids);
        return gk_fail(&j->err, GK_ENOMEM, "out of memory");
    }
    j->n = 0;
    if (bos >= 0) j->ids[j->n++] = (uint32_t)bos;
    for (size_t i = 0; i < n; i++) j->ids[j->n++] = (uint32_t)ids[i];
    if (eos >= 0) j->ids[j->n++] = (uint32_t)eos;
    free(ids);
    return 0;
}

static int encode_chat(const tokenizer *tok, const chat_message *m, size_t n_messages, doc_job *j) {
    chat_rendered r;
    if (chat_render(m, n_messages, false, &r, &j->err)) return -1;
    int32_t *ids;
    size_t *offsets, n;
    int rc = tokenizer_encode(tok, r.text, r.len, false, &ids, &offsets, &n, &j->err);
    if (rc == 0) {
        size_t first = tokenizer_bos_id(tok) >= 0 ? 1 : 0; // <bos> leads when there is one
        j->n = n + first;
        j->ids = malloc(j->n * sizeof *j->ids);
        j->mask = calloc(j->n ? j->n : 1, 1);
        if (!j->ids || !j->mask) rc = gk_fail(&j->err, GK_ENOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < n; i++) j->ids[i + first] = (uint32_t)ids[i];
        if (rc == 0) {
            if (first) j->ids[0] = (uint32_t)tokenizer_bos_id(tok);
            chat_loss_mask(offsets, n, &r, j->mask + first);
        }
        free(ids);
        free(offsets);
    }
    chat_rendered_free(&r);
    return rc;
}

// Whether a document goes to the validation split: a hash of its bytes, so the same text always lands on the same side.
static bool is_validation(const tokenize_options *o, const doc_job *j) {
    if (o->val_fraction <= 0) return false;
    uint64_t h = hash64(0x7A11D47Eull);
    for (size_t i = 0; i < j->raw_len; i++) h = hash64(h ^ (unsigned char)j->raw[i]);
    return (double)(h >> 11) * 0x1.0p-53 < o->val_fraction;
}

// Parses (JSONL) and encodes one document; thread-safe.
static void encode_job(const tokenize_run_state *s, doc_job *j) {
    j->bytes = j->raw_len;
    j->val = is_validation(s->o, j);
    if (!j->jsonl) {
        j->bad = encode_text(s->tok, j->raw, j->raw_len, j) != 0;
        return;
    }
    record r;
    if (record_parse(j->raw, j->raw_len, s->file, j->line, &r, &j->err)) {
        j->bad = true;
        return;
    }
    j->chat = r.kind == RECORD_CHAT;
    if (j->chat != (s->file_is_chat == 1)) {
        gk_fail(&j->err, GK_EINPUT, "%s:%zu: a %s record in a file of %s records", s->file, j->line,
                j->chat ? "chat" : "text", j->chat ? "text" : "chat");
        j->bad = true;
    } else if (j->chat) {
        j->bad = encode_chat(s->tok, r.messages, r.n_messages, j) != 0;
    } else {
        j->bad = encode_text(s->tok, r.text, r.text_len, j) != 0;
    }
    if (j->bad && j->err.msg[0] && !strstr(j->err.msg, s->file)) gk_wrap(&j->err, "%s:%zu", s->file, j->line);
    record_free(&r);
}

// ---------------------------------------------------------------- shards

static const char *split_name(const tokenize_options *o, int split) {
    return split ? (o->val_name ? o->val_name : "val") : (o->name ? o->name : "train");
}

static int shard_path(const tokenize_run_state *s, int split, char *buf, size_t cap) {
    return snprintf(buf, cap, "%s/%s-%05d.h5", s->o->out_dir, split_name(s->o, split), s->next_index[split]) >= (int)cap;
}

static int close_writer(tokenize_run_state *s, int split, gk_err *err) {
    shard_writer *w = s->writer[split];
    if (!w) return 0;
    s->writer[split] = NULL;
    written_shard done = {strdup(shard_writer_path(w)), split, shard_writer_tokens(w), shard_writer_docs(w)};
    if (!done.path) {
        shard_writer_abort(w);
        return gk_fail(err, GK_ENOMEM, "out of memory");
    }
    if (shard_writer_close(w, err)) { // w is gone after closing
        free(done.path);
        return -1;
    }
    written_shard *grown = realloc(s->written, (s->n_written + 1) * sizeof *grown);
    if (!grown) {
        remove(done.path);
        free(done.path);
        return gk_fail(err, GK_ENOMEM, "out of memory");
    }
    grown[s->n_written++] = done;
    s->written = grown;
    s->stats->shards++;
    test_kill_point("GEMMAKD_TEST_KILL_AFTER_SHARD", (int64_t)s->stats->shards); // tests die after the n-th shard
    return 0;
}

static int write_doc(tokenize_run_state *s, const doc_job *j, gk_err *err) {
    int split = j->val ? 1 : 0;
    if (!s->writer[split]) {
        char path[1024];
        if (shard_path(s, split, path, sizeof path)) return gk_fail(err, GK_EINPUT, "%s: output path too long", s->o->out_dir);
        if (shard_writer_open(&s->writer[split], path, &s->meta, err)) return -1;
        s->next_index[split]++;
    }
    uint8_t *ones = NULL;
    if (s->with_mask && !j->mask) { // a text document in chat shards: every target trained
        if (!(ones = malloc(j->n))) return gk_fail(err, GK_ENOMEM, "out of memory");
        memset(ones, 1, j->n);
    }
    int rc = shard_writer_add_doc(s->writer[split], j->ids, s->with_mask ? (j->mask ? j->mask : ones) : NULL, j->n, err);
    free(ones);
    if (rc == 0 && shard_writer_tokens(s->writer[split]) >= s->o->shard_tokens) rc = close_writer(s, split, err);
    return rc;
}

// Encodes the pending documents in parallel, then writes them in order.
static int flush_batch(tokenize_run_state *s, gk_err *err) {
#pragma omp parallel for schedule(dynamic, 4)
    for (size_t i = 0; i < s->n_jobs; i++) encode_job(s, &s->jobs[i]);
    int rc = 0;
    for (size_t i = 0; i < s->n_jobs; i++) {
        doc_job *j = &s->jobs[i];
        if (rc == 0 && j->bad) {
            if (!s->o->skip_bad) {
                *err = j->err;
                rc = -1;
            } else {
                s->stats->bad_records++;
            }
        } else if (rc == 0 && j->n > 0) {
            rc = write_doc(s, j, err);
            tokenize_stats *st = s->stats;
            st->docs++;
            st->chat_docs += j->chat;
            st->val_docs += j->val;
            st->tokens += j->n;
            st->val_tokens += j->val ? j->n : 0;
            st->bytes += j->bytes;
        }
        free(j->ids);
        free(j->mask);
        memset(j, 0, sizeof *j);
    }
    s->n_jobs = 0;
    s->batch_bytes = 0;
    if (s->o->progress) {
        double secs = now_seconds() - s->start;
        progress_show(&s->prog, false, "tokenize: %llu documents, %.2fM tokens, %.1f MB/s%s",
                      (unsigned long long)s->stats->docs, (double)s->stats->tokens / 1e6,
                      (double)s->stats->bytes / 1e6 / (secs > 0 ? secs : 1),
                      s->stats->bad_records ? " (some records skipped)" : "");
    }
    return rc;
}

static int add_job(tokenize_run_state *s, const char *text, size_t len, size_t line, bool jsonl, gk_err *err) {
    doc_job *j = &s->jobs[s->n_jobs];
    memset(j, 0, sizeof *j);
    j->raw = text;
    j->raw_len = len;
    j->line = line;
    j->jsonl = jsonl;
    s->n_jobs++;
    s->batch_bytes += len;
    return s->n_jobs == BATCH_DOCS || s->batch_bytes >= BATCH_BYTES ? flush_batch(s, err) : 0;
}

// ---------------------------------------------------------------- inputs

static bool is_jsonl(const char *path) {
    size_t n = strlen(path);
    return (n > 6 && !strcmp(path + n - 6, ".jsonl")) || (n > 5 && !strcmp(path + n - 5, ".json"));
}

// Kind of a JSONL text from its first non-blank record: 1 chat, 0 text, -1 if it has none.
static int first_record_kind(const char *text, size_t len, const char *path, int *is_chat, gk_err *err) {
    *is_chat = -1;
    line_iter it = lines_of(text, len);
    const char *begin, *end;
    if (!next_line(&it, &begin, &end)) return 0;
    record r;
    if (record_parse(begin, (size_t)(end - begin), path, it.line, &r, err)) return -1;
    *is_chat = r.kind == RECORD_CHAT;
    record_free(&r);
    return 0;
}

// An input's text: mapped when it is a regular file (the page cache holds it, not our memory),
// read whole otherwise (a pipe).
typedef struct {
    file_map map;
    char *read;
} input_text;

static int input_open(const char *path, input_text *in, const char **text, size_t *len, gk_err *err) {
    memset(in, 0, sizeof *in);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        if (file_map_open(path, &in->map, err)) return -1;
        *text = in->map.data ? (const char *)in->map.data : "";
        *len = in->map.size;
        return 0;
    }
    if (file_read_stream(path, &in->read, len, err)) return -1; // a pipe: plain text may come from one
    *text = in->read;
    return 0;
}

static void input_close(input_text *in) {
    file_map_close(&in->map);
    free(in->read);
}

static int read_input(tokenize_run_state *s, const char *path, gk_err *err) {
    input_text in;
    const char *text;
    size_t len;
    if (input_open(path, &in, &text, &len, err)) return -1;
    s->file = path;
    int rc = 0;
    if (is_jsonl(path)) {
        rc = first_record_kind(text, len, path, &s->file_is_chat, err);
        line_iter it = lines_of(text, len);
        const char *begin, *end;
        while (rc == 0 && next_line(&it, &begin, &end)) rc = add_job(s, begin, (size_t)(end - begin), it.line, true, err);
    } else {
        const char *sep = s->o->doc_separator;
        size_t sep_len = sep ? strlen(sep) : 0;
        for (const char *p = text; rc == 0 && p < text + len;) {
            const char *end = sep_len ? memmem(p, (size_t)(text + len - p), sep, sep_len) : NULL;
            if (!end) end = text + len;
            if (end > p) rc = add_job(s, p, (size_t)(end - p), 0, false, err);
            p = end + sep_len;
        }
    }
    if (rc == 0) rc = flush_batch(s, err); // the jobs point into the text
    input_close(&in);
    return rc;
}

static int n_splits(const tokenize_options *o) { return o->val_fraction > 0 ? 2 : 1; }

// Refuses to mix with the shards (or the set manifest) of an earlier run under the same names.
static int check_outputs_free(const tokenize_options *o, gk_err *err) {
    for (int k = 0; k < n_splits(o); k++) {
        const char *name = split_name(o, k);
        char *manifest = shard_set_manifest_path(o->out_dir, name);
        if (!manifest) return gk_fail(err, GK_ENOMEM, "out of memory");
        int found = path_exists(manifest);
        if (found)
            gk_fail(err, GK_EINPUT, "%s already holds the shard set %s (or what a killed tokenize left of it); remove "
                    "it and its %s-*.h5 shards, or choose another --name", o->out_dir, manifest, name);
        free(manifest);
        if (found) return -1;
        char pattern[1100];
        snprintf(pattern, sizeof pattern, "%s/%s-*.h5", o->out_dir, name);
        glob_t g;
        found = glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0;
        globfree(&g);
        if (found)
            return gk_fail(err, GK_EINPUT, "%s already holds %s-*.h5 shards; remove them or choose another --name",
                           o->out_dir, name);
    }
    return 0;
}

// Each split's set manifest, "incomplete" until finish_sets lists its shards.
static int begin_sets(tokenize_run_state *s, gk_err *err) {
    s->sets_begun = true;
    for (int k = 0; k < n_splits(s->o); k++)
        if (shard_set_begin(s->o->out_dir, split_name(s->o, k), err)) return -1;
    return 0;
}

static int finish_sets(tokenize_run_state *s, gk_err *err) {
    shard_set_entry *e = gk_calloc(s->n_written ? s->n_written : 1, sizeof *e, err);
    int rc = e ? 0 : -1;
    for (int k = 0; rc == 0 && k < n_splits(s->o); k++) {
        size_t n = 0;
        for (size_t i = 0; i < s->n_written; i++)
            if (s->written[i].split == k) e[n++] = (shard_set_entry){s->written[i].path, s->written[i].tokens, s->written[i].docs};
        rc = shard_set_finish(s->o->out_dir, split_name(s->o, k), e, n, err);
    }
    free(e);
    return rc;
}

static void remove_sets(const tokenize_run_state *s) {
    for (int k = 0; k < n_splits(s->o); k++) {
        char *manifest = shard_set_manifest_path(s->o->out_dir, split_name(s->o, k));
        if (manifest) remove(manifest);
        free(manifest);
    }
}

static void describe_source(const tokenize_options *o, strbuf *sb) {
    sb_puts(sb, "gemmakd tokenize; inputs:");
    for (size_t i = 0; i < o->n_inputs; i++) sb_printf(sb, " %s", o->inputs[i]);
    sb_printf(sb, "; tokenizer: %s; val_fraction: %g", o->tokenizer_path, o->val_fraction);
    if (o->doc_separator) {
        sb_puts(sb, "; doc_separator: ");
        sb_json_string(sb, o->doc_separator, strlen(o->doc_separator));
    }
}

// Whether any JSONL input holds chat records: then every shard of the run carries a loss mask.
// Only the first record of each is read; the inputs are read once more, in full, to tokenize
// them, so a JSONL input must be a regular file.
static int any_chat_input(const tokenize_options *o, bool *chat, gk_err *err) {
    *chat = false;
    for (size_t i = 0; i < o->n_inputs && !*chat; i++) {
        const char *path = o->inputs[i];
        if (!is_jsonl(path)) continue;
        struct stat st;
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
            return gk_fail(err, GK_EINPUT, "%s: a .jsonl/.json input must be a regular file (not a pipe or device)",
                           path);
        input_text in;
        const char *text;
        size_t len;
        int kind;
        if (input_open(path, &in, &text, &len, err)) return -1;
        int rc = first_record_kind(text, len, path, &kind, err);
        input_close(&in);
        if (rc) return -1;
        *chat = kind == 1;
    }
    return 0;
}

int tokenize_run(const tokenize_options *o, tokenize_stats *stats, gk_err *err) {
    memset(stats, 0, sizeof *stats);
    tokenize_run_state *s = gk_calloc(1, sizeof *s, err);
    if (!s) return -1;
    s->o = o;
    s->stats = stats;
    s->start = now_seconds();
    progress_init(&s->prog, 5.0);
    strbuf source = {0};
    int rc = dir_create_parents(o->out_dir, err);
    if (rc == 0) rc = check_outputs_free(o, err);
    if (rc == 0) rc = any_chat_input(o, &s->with_mask, err);
    if (rc == 0) rc = zstd_filter_register(err);
    if (rc == 0) rc = tokenizer_load(o->tokenizer_path, &s->tok, err);
    if (rc == 0) {
        describe_source(o, &source);
        s->meta = (shard_meta){.vocab_size = tokenizer_vocab_size(s->tok), .bos_id = tokenizer_bos_id(s->tok),
                               .eos_id = tokenizer_eos_id(s->tok), .pad_id = tokenizer_pad_id(s->tok),
                               .has_loss_mask = s->with_mask, .source = source.data, .created_by = "gemmakd tokenize",
                               .zstd_level = o->zstd_level};
        snprintf(s->meta.tokenizer_sha256, sizeof s->meta.tokenizer_sha256, "%s", tokenizer_sha256(s->tok));
    }
    if (rc == 0) rc = begin_sets(s, err); // before the first shard: a killed run leaves its sets marked incomplete
    for (size_t i = 0; rc == 0 && i < o->n_inputs; i++) rc = read_input(s, o->inputs[i], err);
    for (int k = 0; rc == 0 && k < 2; k++) rc = close_writer(s, k, err);
    if (rc == 0 && stats->docs == 0) rc = gk_fail(err, GK_EINPUT, "no documents in the input");
    if (rc == 0) rc = finish_sets(s, err);
    if (o->progress && rc) progress_clear(&s->prog);
    else if (o->progress) progress_done(&s->prog);
    if (rc) { // leave nothing of this run behind
        for (int k = 0; k < 2; k++) shard_writer_abort(s->writer[k]);
        for (size_t i = 0; i < s->n_written; i++) remove(s->written[i].path);
        if (s->sets_begun) remove_sets(s);
    }
    for (size_t i = 0; i < s->n_written; i++) free(s->written[i].path);
    free(s->written);
    if (s->tok) tokenizer_free(s->tok);
    sb_free(&source);
    free(s);
    return rc;
}

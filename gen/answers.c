#include "gen/answers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/file.h"
#include "common/json.h"
#include "common/lines.h"
#include "common/sha256.h"
#include "common/strbuf.h"

#define SETTINGS_KEY "gemmakd_generate"

static const char *const setting_names[ANSWER_SETTINGS] = {
    "prompts_sha256", "model", "tokenizer_sha256", "sampling", "seed", "max_new_tokens", "stop_ids", "device", "precision",
};

// ---------------------------------------------------------------- this run's settings

// The sampler as one value: "greedy" or "temperature T, top_k K, top_p P, min_p M".
static void sampling_text(bool greedy, double temperature, long long top_k, double top_p, double min_p, char *buf,
                          size_t cap) {
    if (greedy) snprintf(buf, cap, "greedy");
    else snprintf(buf, cap, "temperature %g, top_k %lld, top_p %g, min_p %g", temperature, top_k, top_p, min_p);
}

int answer_settings_make(const generator *g, const prompts_job *job, answer_settings *s, gk_err *err) {
    memcpy(s->name, setting_names, sizeof s->name);
    char(*v)[1024] = s->value;
    const sampling *smp = &g->sampling;
    if (sha256_file(job->in, v[0], err)) return -1;
    snprintf(v[1], sizeof v[1], "%s", job->model);
    snprintf(v[2], sizeof v[2], "%s", tokenizer_sha256(job->tok));
    sampling_text(smp->greedy, smp->temperature, smp->top_k, smp->top_p, smp->min_p, v[3], sizeof v[3]);
    snprintf(v[4], sizeof v[4], "%llu", (unsigned long long)job->seed);
    snprintf(v[5], sizeof v[5], "%d", job->max_new);
    size_t n = 0;
    for (size_t i = 0; i < g->n_stop; i++) n += (size_t)snprintf(v[6] + n, sizeof v[6] - n, "%s%d", i ? "," : "", g->stop_ids[i]);
    if (!g->n_stop) snprintf(v[6], sizeof v[6], "none");
    snprintf(v[7], sizeof v[7], "%s", engine_device_name(g->backend.device));
    snprintf(v[8], sizeof v[8], "%s", engine_precision_name(g->backend.precision));
    return 0;
}

static const char *setting(const answer_settings *s, const char *name) {
    for (int i = 0; i < ANSWER_SETTINGS; i++)
        if (!strcmp(s->name[i], name)) return s->value[i];
    return "";
}

// {"gemmakd_generate": {"prompts_sha256": "...", ...}}\n
static void settings_line(const answer_settings *s, strbuf *sb) {
    sb_puts(sb, "{\"" SETTINGS_KEY "\": {");
    for (int i = 0; i < ANSWER_SETTINGS; i++) {
        sb_printf(sb, "%s\"%s\": ", i ? ", " : "", s->name[i]);
        sb_json_string(sb, s->value[i], strlen(s->value[i]));
    }
    sb_puts(sb, "}}\n");
}

// ---------------------------------------------------------------- checking what is there

static int differs(gk_err *err, const char *where, const char *name, const char *got, const char *want) {
    return gk_fail(err, GK_EINPUT, "%s: answered with %s %s, but this run has %s %s; rerun with the same settings or "
                   "remove it (or choose another --out) to start over", where, name, got, name, want);
}

// The settings line of a stopped run's OUT.tmp against this run's.
static int check_settings(const char *path, const char *line, size_t len, const answer_settings *s, gk_err *err) {
    json_doc doc;
    gk_err why;
    bool parsed = json_parse(line, len, path, &doc, &why) == 0;
    const json_value *set = parsed ? json_get(doc.root, SETTINGS_KEY) : NULL;
    int rc = set ? 0
                 : gk_fail(err, GK_EINPUT, "%s: its first line is not the settings line of gemmakd generate (an older "
                           "version's?); remove it to start over", path);
    for (int i = 0; rc == 0 && i < ANSWER_SETTINGS; i++) {
        const json_value *v = json_get(set, s->name[i]);
        const char *got = v && v->type == JSON_STRING ? v->string : "(none)";
        if (strcmp(got, s->value[i])) rc = differs(err, path, s->name[i], got, s->value[i]);
    }
    if (parsed) json_free(&doc);
    return rc;
}

static double number(const json_value *v) { return v && v->type == JSON_NUMBER ? v->number : 0; }

// A record's "meta" (model, sampling, seed, max_new_tokens) against this run's settings.
static int check_meta(const char *where, const json_value *meta, const answer_settings *s, gk_err *err) {
    const json_value *model = json_get(meta, "model"), *smp = json_get(meta, "sampling");
    const json_value *greedy = json_get(smp, "greedy"), *seed = json_get(smp, "seed"), *max_new = json_get(smp, "max_new_tokens");
    char got[4][1024];
    snprintf(got[0], sizeof got[0], "%s", model && model->type == JSON_STRING ? model->string : "(none)");
    sampling_text(greedy && greedy->boolean, number(json_get(smp, "temperature")),
                  (long long)number(json_get(smp, "top_k")), number(json_get(smp, "top_p")),
                  number(json_get(smp, "min_p")), got[1], sizeof got[1]);
    snprintf(got[2], sizeof got[2], "%llu", seed && seed->is_integer ? (unsigned long long)seed->integer : 0ull);
    snprintf(got[3], sizeof got[3], "%lld", max_new && max_new->is_integer ? max_new->integer : 0ll);
    const char *names[4] = {"model", "sampling", "seed", "max_new_tokens"};
    for (int k = 0; k < 4; k++)
        if (strcmp(got[k], setting(s, names[k]))) return differs(err, where, names[k], got[k], setting(s, names[k]));
    return 0;
}

// Marks record rec in done (grown as needed).
static int mark_done(long long rec, bool **done, size_t *n_done, gk_err *err) {
    if ((size_t)rec >= *n_done) {
        bool *bigger = realloc(*done, (size_t)(rec + 1) * sizeof *bigger);
        if (!bigger) return gk_fail(err, GK_ENOMEM, "out of memory");
        memset(bigger + *n_done, 0, ((size_t)rec + 1 - *n_done) * sizeof *bigger);
        *done = bigger;
        *n_done = (size_t)rec + 1;
    }
    (*done)[rec] = true;
    return 0;
}

// One output line: its record number marked done once its meta matches this run's settings.
static int read_record(const char *path, size_t line, const char *p, size_t len, const answer_settings *s, bool **done,
                       size_t *n_done, gk_err *err) {
    json_doc doc;
    gk_err why;
    if (json_parse(p, len, path, &doc, &why))
        return gk_fail(err, GK_EINPUT, "%s:%zu: not an output line of gemmakd generate: %s", path, line, why.msg);
    const json_value *meta = json_get(doc.root, "meta"), *r = json_get(meta, "record");
    long long rec = r && r->is_integer ? r->integer : -1;
    char where[1200];
    snprintf(where, sizeof where, "%s:%zu", path, line);
    int rc = rec < 1 ? gk_fail(err, GK_EINPUT, "%s: no \"meta\": {\"record\": N}", where) : check_meta(where, meta, s, err);
    if (rc == 0) rc = mark_done(rec, done, n_done, err);
    json_free(&doc);
    return rc;
}

// The records of text (a stopped run's OUT.tmp after its settings line, or a finished OUT);
// *keep gets the length of its valid part, *has_settings whether it starts with a settings line.
static int read_done(const char *path, const char *text, size_t len, bool from_tmp, const answer_settings *s,
                     bool **done, size_t *n_done, size_t *keep, bool *has_settings, gk_err *err) {
    *keep = 0;
    *has_settings = false;
    line_iter it = lines_of(text, len);
    for (const char *p, *end; next_line(&it, &p, &end);) {
        if (end == text + len) break; // a last line without its newline was cut short: answered again
        int rc = from_tmp && !*has_settings ? check_settings(path, p, (size_t)(end - p), s, err)
                                            : read_record(path, it.line, p, (size_t)(end - p), s, done, n_done, err);
        if (rc) return -1;
        *has_settings = from_tmp;
        *keep = (size_t)(end + 1 - text);
    }
    return 0;
}

int answers_open(const char *out, const char *tmp, const answer_settings *s, bool **done, size_t *n_done, FILE **f,
                 gk_err *err) {
    bool from_tmp = path_exists(tmp);
    const char *from = from_tmp ? tmp : path_exists(out) ? out : NULL;
    char *text = NULL;
    size_t len = 0, keep = 0;
    bool has_settings = false;
    if (from && file_read_all(from, &text, &len, err)) return -1;
    int rc = from ? read_done(from, text, len, from_tmp, s, done, n_done, &keep, &has_settings, err) : 0;
    strbuf sb = {0};
    if (!has_settings) settings_line(s, &sb); // a new OUT.tmp, or one from a finished OUT
    sb_append(&sb, text ? text : "", keep);   // the valid lines only
    if (rc == 0) rc = sb.failed ? gk_fail(err, GK_ENOMEM, "out of memory") : file_write_atomic(tmp, sb.data, sb.len, err);
    sb_free(&sb);
    free(text);
    if (rc == 0 && !(*f = fopen(tmp, "ab")))
        rc = gk_fail(err, GK_EIO, "%s: cannot open for appending: %s", tmp, strerror(errno));
    return rc;
}

int answers_publish(const char *tmp, const char *out, gk_err *err) {
    file_map m;
    if (file_map_open(tmp, &m, err)) return -1;
    const char *text = m.data ? (const char *)m.data : "";
    const char *nl = memchr(text, '\n', m.size);
    size_t skip = nl ? (size_t)(nl + 1 - text) : m.size; // the settings line
    int rc = file_write_atomic(out, text + skip, m.size - skip, err);
    file_map_close(&m);
    if (rc == 0 && unlink(tmp) != 0) rc = gk_fail(err, GK_EIO, "%s: cannot remove: %s", tmp, strerror(errno));
    return rc;
}

#include "train/ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/checksum.h"
#include "common/file.h"
#include "common/json.h"
#include "common/kill_point.h"
#include "common/strbuf.h"

// ---------------------------------------------------------------- writing

static char *join(const char *dir, const char *name, gk_err *err) {
    char *p = path_join(dir, name);
    if (!p) gk_fail(err, GK_ENOMEM, "out of memory");
    return p;
}

static int write_optimizer(const char *dir, const optimizer *o, gk_err *err) {
    if (o->kind != OPTIM_ADAMW) return 0;
    const param_layout *L = o->layout;
    size_t n = 2 * (size_t)L->n_tensors;
    st_out_tensor *out = gk_calloc(n, sizeof *out, err);
    char (*names)[128] = gk_calloc(n, sizeof *names, err);
    int rc = out && names ? 0 : -1;
    for (int t = 0; rc == 0 && t < L->n_tensors; t++) {
        const param_tensor *p = &L->tensors[t];
        for (int k = 0; k < 2; k++) {
            size_t i = 2 * (size_t)t + k;
            snprintf(names[i], sizeof names[i], "%s.%s", k ? "exp_avg_sq" : "exp_avg", p->name);
            out[i] = (st_out_tensor){.name = names[i], .ndim = p->ndim, .data = (k ? o->v : o->m) + p->offset};
            memcpy(out[i].shape, p->shape, sizeof p->shape);
        }
    }
    char *path = rc == 0 ? join(dir, "optimizer.safetensors", err) : NULL;
    rc = path ? st_write(path, out, n, ST_F32, err) : -1;
    free(path);
    free(out);
    free(names);
    return rc;
}

static int write_state(const char *dir, const optimizer *o, const trainer_state *s, gk_err *err) {
    strbuf sb = {0};
    sb_printf(&sb, "{\"step\": %lld, \"tokens_seen\": %lld, \"bad_steps\": %lld, \"elapsed\": %.17g, ",
              (long long)s->step, (long long)s->tokens_seen, (long long)s->bad_steps, s->elapsed);
    sb_printf(&sb, "\"optimizer_steps\": %lld, \"loader\": ", (long long)o->steps);
    loader_cursor_to_json(&s->cursor, &sb);
    sb_puts(&sb, "}\n");
    char *path = join(dir, "trainer_state.json", err);
    int rc = !path ? -1 : sb.failed ? gk_fail(err, GK_ENOMEM, "out of memory") : file_write_atomic(path, sb.data, sb.len, err);
    free(path);
    sb_free(&sb);
    return rc;
}

// Adds "prefix + name": {"bytes": N, "checksum": "hex"} for every file of dir to sb,
// and the files of its subdirectories (one level: ema/).
static int manifest_entries(const char *dir, const char *prefix, strbuf *sb, int *n, gk_err *err) {
    DIR *d = opendir(dir);
    if (!d) return gk_fail(err, GK_EIO, "%s: cannot list: %s", dir, strerror(errno));
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "manifest.json")) continue;
        char *path = join(dir, e->d_name, err), name[512];
        snprintf(name, sizeof name, "%s%s", prefix, e->d_name);
        uint64_t sum, size;
        if (path && !prefix[0] && dir_exists(path)) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s/", e->d_name);
            rc = manifest_entries(path, sub, sb, n, err);
        } else {
            rc = path ? checksum_file(path, &sum, &size, err) : -1;
            if (rc == 0) {
                sb_printf(sb, "%s\n  ", (*n)++ ? "," : "");
                sb_json_string(sb, name, strlen(name));
                sb_printf(sb, ": {\"bytes\": %llu, \"checksum\": \"%016llx\"}", (unsigned long long)size,
                          (unsigned long long)sum);
            }
        }
        free(path);
    }
    closedir(d);
    return rc;
}

// manifest.json: {"files": {"name": {"bytes": N, "checksum": "hex"}, ...}} for every file of dir.
static int write_manifest(const char *dir, gk_err *err) {
    strbuf sb = {0};
    sb_puts(&sb, "{\"files\": {");
    int n = 0, rc = manifest_entries(dir, "", &sb, &n, err);
    sb_puts(&sb, "}}\n");
    char *path = rc == 0 ? join(dir, "manifest.json", err) : NULL;
    if (path) rc = sb.failed ? gk_fail(err, GK_ENOMEM, "out of memory") : file_write_atomic(path, sb.data, sb.len, err);
    else rc = -1;
    free(path);
    sb_free(&sb);
    return rc;
}

static int parse_step_dir(const char *name, int64_t *step) {
    char *end;
    if (strncmp(name, "step-", 5) || !name[5]) return 0;
    long long v = strtoll(name + 5, &end, 10);
    if (*end || v < 0) return 0;
    *step = v;
    return 1;
}

// Step numbers of the run's checkpoint dirs, newest first.
static int list_steps(const char *run_dir, int64_t **steps, size_t *n, gk_err *err) {
    *steps = NULL;
    *n = 0;
    DIR *d = opendir(run_dir);
    if (!d) return errno == ENOENT ? 0 : gk_fail(err, GK_EIO, "%s: cannot list: %s", run_dir, strerror(errno));
    size_t cap = 0;
    int rc = 0;
    for (struct dirent *e; (e = readdir(d));) {
        int64_t s;
        if (!parse_step_dir(e->d_name, &s)) continue;
        if (*n == cap) {
            int64_t *bigger = realloc(*steps, (cap = cap ? 2 * cap : 16) * sizeof *bigger);
            if (!bigger) {
                rc = gk_fail(err, GK_ENOMEM, "out of memory");
                break;
            }
            *steps = bigger;
        }
        (*steps)[(*n)++] = s;
    }
    closedir(d);
    for (size_t i = 1; i < *n; i++) // insertion sort, descending
        for (size_t j = i; j > 0 && (*steps)[j - 1] < (*steps)[j]; j--) {
            int64_t t = (*steps)[j];
            (*steps)[j] = (*steps)[j - 1];
            (*steps)[j - 1] = t;
        }
    return rc;
}

// run_dir/step-NNNNNN (malloc'd).
static char *step_path(const char *run_dir, int64_t step, gk_err *err) {
    char name[64];
    snprintf(name, sizeof name, "step-%06lld", (long long)step);
    return join(run_dir, name, err);
}

int ckpt_list_dirs(const char *run_dir, char ***dirs, size_t *n, gk_err *err) {
    int64_t *steps;
    *dirs = NULL;
    if (list_steps(run_dir, &steps, n, err)) return -1;
    int rc = (*dirs = gk_calloc(*n ? *n : 1, sizeof **dirs, err)) ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < *n; i++) { // list_steps gives newest first
        if (!((*dirs)[i] = step_path(run_dir, steps[*n - 1 - i], err))) rc = -1;
    }
    free(steps);
    if (rc) {
        for (size_t i = 0; *dirs && i < *n; i++) free((*dirs)[i]);
        free(*dirs);
        *dirs = NULL;
    }
    return rc;
}

static int prune(const char *run_dir, int keep, gk_err *err) {
    int64_t *steps;
    size_t n;
    if (list_steps(run_dir, &steps, &n, err)) return -1;
    int rc = 0;
    for (size_t i = (size_t)keep; rc == 0 && i < n; i++) {
        char *path = step_path(run_dir, steps[i], err);
        rc = path ? dir_remove_tree(path, err) : -1;
        free(path);
    }
    free(steps);
    return rc;
}

static int point_latest(const char *run_dir, const char *name, gk_err *err) {
    char tmp_name[64];
    snprintf(tmp_name, sizeof tmp_name, "latest.tmp-%ld", (long)getpid());
    char *tmp = join(run_dir, tmp_name, err), *latest = join(run_dir, "latest", err);
    int rc = tmp && latest ? 0 : -1;
    if (rc == 0) {
        unlink(tmp);
        if (symlink(name, tmp) != 0 || rename(tmp, latest) != 0)
            rc = gk_fail(err, GK_EIO, "%s: cannot point to %s: %s", latest, name, strerror(errno));
        else dir_sync(run_dir);
    }
    free(tmp);
    free(latest);
    return rc;
}

// dir/ema/: the weight EMA as a model dir of its own.
static int write_ema(const char *dir, const model_state *m, const float *ema, const char *tokenizer_sha256, gk_err *err) {
    char *sub = join(dir, "ema", err);
    model_state e = {m->cfg, m->layout, (float *)ema};
    int rc = sub ? dir_create(sub, err) : -1;
    if (rc == 0) rc = model_save_dir(sub, &e, ST_F32, MODEL_SHARD_BYTES, tokenizer_sha256, err);
    free(sub);
    return rc;
}

int ckpt_save(const char *run_dir, const model_state *m, const optimizer *o, const trainer_state *s, const float *ema,
              const char *tokenizer_sha256, int keep, gk_err *err) {
    char name[64], tmp_name[96];
    snprintf(name, sizeof name, "step-%06lld", (long long)s->step);
    snprintf(tmp_name, sizeof tmp_name, ".%s.tmp-%ld", name, (long)getpid());
    char *final = join(run_dir, name, err), *tmp = join(run_dir, tmp_name, err);
    int rc = final && tmp ? 0 : -1;
    gk_err ignored;
    if (rc == 0) {
        dir_remove_tree(tmp, &ignored);
        rc = dir_create(tmp, err);
    }
    if (rc == 0) rc = model_save_dir(tmp, m, ST_F32, MODEL_SHARD_BYTES, tokenizer_sha256, err);
    if (rc == 0) rc = write_optimizer(tmp, o, err);
    if (rc == 0) rc = write_state(tmp, o, s, err);
    if (rc == 0 && ema) rc = write_ema(tmp, m, ema, tokenizer_sha256, err);
    if (rc == 0) rc = write_manifest(tmp, err);
    if (rc == 0) {
        test_kill_point("GEMMAKD_TEST_KILL_IN_CHECKPOINT", s->step); // tests die mid-checkpoint
        dir_sync(tmp);
        dir_remove_tree(final, &ignored); // a previous run's checkpoint of the same step
        if (rename(tmp, final) != 0) rc = gk_fail(err, GK_EIO, "%s: cannot rename from %s: %s", final, tmp, strerror(errno));
    }
    if (rc) dir_remove_tree(tmp, &ignored);
    if (rc == 0) rc = point_latest(run_dir, name, err);
    if (rc == 0) rc = prune(run_dir, keep, err);
    free(final);
    free(tmp);
    return rc;
}

// ---------------------------------------------------------------- reading

int ckpt_verify(const char *dir, gk_err *err) {
    char *path = join(dir, "manifest.json", err), *text = NULL;
    size_t len;
    if (!path) return -1;
    int rc = file_read_all(path, &text, &len, err);
    free(path);
    if (rc) return -1;
    json_doc doc;
    rc = json_parse(text, len, "manifest.json", &doc, err);
    free(text);
    if (rc) return gk_wrap(err, "%s", dir);
    const json_value *files = json_get(doc.root, "files");
    const char *required[] = {"config.json", "trainer_state.json"};
    for (int i = 0; rc == 0 && i < 2; i++)
        if (!json_get(files, required[i])) rc = gk_fail(err, GK_EINPUT, "%s: manifest lacks %s", dir, required[i]);
    if (rc == 0 && !json_get(files, "model.safetensors") && !json_get(files, "model.safetensors.index.json"))
        rc = gk_fail(err, GK_EINPUT, "%s: manifest lists no model weights", dir);
    for (size_t i = 0; rc == 0 && files && i < files->count; i++) {
        const json_value *bytes = json_get(files->items[i], "bytes"), *sum = json_get(files->items[i], "checksum");
        char *file = join(dir, files->keys[i], err);
        uint64_t got_sum, got_size;
        char hex[24];
        rc = file ? checksum_file(file, &got_sum, &got_size, err) : -1;
        if (rc == 0) snprintf(hex, sizeof hex, "%016llx", (unsigned long long)got_sum);
        if (rc == 0 && (!bytes || !sum || sum->type != JSON_STRING || bytes->integer != (long long)got_size ||
                        strcmp(sum->string, hex)))
            rc = gk_fail(err, GK_EINPUT, "%s: %s does not match the manifest (%llu bytes, checksum %s)", dir,
                         files->keys[i], (unsigned long long)got_size, hex);
        free(file);
    }
    json_free(&doc);
    return rc;
}

int ckpt_find_latest(const char *run_dir, char **dir, size_t *skipped, ckpt_warn_fn warn, void *ctx, gk_err *err) {
    *dir = NULL;
    *skipped = 0;
    int64_t *steps;
    size_t n;
    if (list_steps(run_dir, &steps, &n, err)) return -1;
    for (size_t i = 0; i < n && !*dir; i++) { // newest first; `latest` always names the newest complete one
        char *path = step_path(run_dir, steps[i], err);
        if (!path) {
            free(steps);
            return -1;
        }
        gk_err why = {0};
        if (ckpt_verify(path, &why) == 0) {
            *dir = path;
        } else {
            char msg[1200];
            snprintf(msg, sizeof msg, "skipping checkpoint %s: %s", path, why.msg);
            if (warn) warn(ctx, msg);
            (*skipped)++;
            free(path);
        }
    }
    free(steps);
    return 0;
}

static int load_optimizer(const char *dir, optimizer *o, gk_err *err) {
    if (o->kind != OPTIM_ADAMW) return 0;
    char *path = join(dir, "optimizer.safetensors", err);
    st_file f;
    int rc = path ? st_open(path, &f, err) : -1;
    free(path);
    if (rc) return -1;
    const param_layout *L = o->layout;
    for (int t = 0; rc == 0 && t < L->n_tensors; t++) {
        for (int k = 0; rc == 0 && k < 2; k++) {
            char name[160];
            snprintf(name, sizeof name, "%s.%s", k ? "exp_avg_sq" : "exp_avg", L->tensors[t].name);
            const st_tensor *x = st_find(&f, name);
            if (!x || x->numel != L->tensors[t].numel) rc = gk_fail(err, GK_EINPUT, "%s: optimizer state lacks %s", dir, name);
            else rc = st_to_f32(&f, x, (k ? o->v : o->m) + L->tensors[t].offset, err);
        }
    }
    st_close(&f);
    return rc;
}

static int load_state(const char *dir, optimizer *o, trainer_state *s, gk_err *err) {
    char *path = join(dir, "trainer_state.json", err), *text = NULL;
    size_t len;
    int rc = path ? file_read_all(path, &text, &len, err) : -1;
    json_doc doc;
    if (rc == 0) rc = json_parse(text, len, path, &doc, err);
    free(text);
    if (rc == 0) {
        const json_value *step = json_get(doc.root, "step"), *tokens = json_get(doc.root, "tokens_seen");
        const json_value *bad = json_get(doc.root, "bad_steps"), *elapsed = json_get(doc.root, "elapsed");
        const json_value *osteps = json_get(doc.root, "optimizer_steps"), *cursor = json_get(doc.root, "loader");
        if (!step || !tokens || !bad || !elapsed || !osteps || !cursor || !step->is_integer || !tokens->is_integer)
            rc = gk_fail(err, GK_EINPUT, "%s: incomplete trainer state", path);
        else rc = loader_cursor_from_json(cursor, &s->cursor, err);
        if (rc == 0) {
            s->step = step->integer;
            s->tokens_seen = tokens->integer;
            s->bad_steps = bad->integer;
            s->elapsed = elapsed->number;
            o->steps = osteps->integer;
        }
        json_free(&doc);
    }
    free(path);
    return rc;
}

int ckpt_load(const char *dir, model_state *m, optimizer *o, trainer_state *s, gk_err *err) {
    char *path = join(dir, "config.json", err);
    model_config cfg;
    int rc = path ? model_config_load(path, &cfg, err) : -1;
    free(path);
    char what[160];
    if (rc == 0 && model_config_difference(&cfg, &m->cfg, what, sizeof what))
        rc = gk_fail(err, GK_EINPUT, "%s: the checkpoint's model differs from the run's (%s)", dir, what);
    if (rc == 0) rc = model_load_weights(dir, &m->layout, m->params, err);
    if (rc == 0) rc = load_optimizer(dir, o, err);
    if (rc == 0) rc = load_state(dir, o, s, err);
    return rc;
}

int ckpt_load_ema(const char *dir, const model_state *m, float *ema, bool *found, gk_err *err) {
    char *sub = join(dir, "ema", err);
    if (!sub) return -1;
    *found = dir_exists(sub);
    int rc = *found ? model_load_weights(sub, &m->layout, ema, err) : 0;
    free(sub);
    return rc;
}

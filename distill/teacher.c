#include "distill/teacher.h"

#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/json.h"
#include "common/sha256.h"

int model_dir_tokenizer(const char *dir, char sha256[65], bool *found, gk_err *err) {
    *found = false;
    const char *files[] = {"tokenizer.json", "tokenizer.model"};
    for (int i = 0; i < 2 && !*found; i++) {
        char *path = path_join(dir, files[i]);
        if (path && path_exists(path)) {
            int rc = sha256_file(path, sha256, err);
            free(path);
            if (rc) return -1;
            *found = true;
            continue;
        }
        free(path);
    }
    char *path = path_join(dir, "gemmakd.json"), *text;
    size_t len;
    if (!*found && path && path_exists(path)) {
        json_doc doc;
        int rc = file_read_all(path, &text, &len, err);
        if (rc == 0) {
            rc = json_parse(text, len, path, &doc, err);
            free(text); // the parsed document holds copies
        }
        if (rc == 0) {
            const json_value *v = json_get(doc.root, "tokenizer_sha256");
            if (v && v->type == JSON_STRING && v->length == 64) {
                memcpy(sha256, v->string, 65);
                *found = true;
            }
            json_free(&doc);
        }
        if (rc) {
            free(path);
            return -1;
        }
    }
    free(path);
    return 0;
}

// The checks of a loaded teacher against the run: positions, vocabulary, tokenizer.
static int check_teacher(const online_teacher *t, const char *dir, int vocab_size, const char *tokenizer_sha256, int T,
                         gk_err *err) {
    if (model_config_check_seq_len(&t->model.cfg, T, dir, "the teacher", err)) return -1;
    if (t->model.cfg.vocab_size != vocab_size)
        return gk_fail(err, GK_EINPUT, "teacher %s has a vocabulary of %d ids but the student has %d", dir,
                       t->model.cfg.vocab_size, vocab_size);
    char sha[65];
    bool found;
    if (model_dir_tokenizer(dir, sha, &found, err)) return -1;
    if (!found)
        return gk_fail(err, GK_EINPUT, "teacher %s records no tokenizer (tokenizer.json, tokenizer.model or "
                       "gemmakd.json): cannot check that it uses the data's tokenizer %.12s...", dir, tokenizer_sha256);
    if (strcmp(sha, tokenizer_sha256))
        return gk_fail(err, GK_EINPUT, "teacher %s uses tokenizer %s but the token shards use %s", dir, sha,
                       tokenizer_sha256);
    return 0;
}

int online_teacher_open(online_teacher *t, const char *dir, engine_backend backend, int vocab_size,
                        const char *tokenizer_sha256, int B, int T, gk_err *err) {
    memset(t, 0, sizeof *t);
    if (model_load_dir(dir, &t->model, err)) return gk_wrap(err, "teacher");
    if (check_teacher(t, dir, vocab_size, tokenizer_sha256, T, err) ||
        engine_open(&t->engine, &t->model, backend, B, T, false, err)) {
        model_state_free(&t->model); // a failed open holds nothing (online_teacher_close stays harmless)
        return -1;
    }
    if (!engine_holds_params(t->engine)) { // only its engine's copy is read from now on
        free(t->model.params);
        t->model.params = NULL;
    }
    return 0;
}

int online_teacher_forward(online_teacher *t, const token_batch *batch, gk_err *err) {
    return engine_forward(t->engine, batch, 0, err);
}

void online_teacher_close(online_teacher *t) {
    engine_close(t->engine);
    model_state_free(&t->model);
}

int tokenizer_for_model(const char *model_dir, const char *path, bool required, tokenizer **tok, gk_err *err) {
    *tok = NULL;
    const char *names[] = {"tokenizer.json", "tokenizer.model"};
    char *found = NULL;
    for (int i = 0; !path && !found && i < 2; i++) {
        char *p = path_join(model_dir, names[i]);
        if (p && path_exists(p)) found = p;
        else free(p);
    }
    const char *use = path ? path : found;
    int rc = use ? tokenizer_load(use, tok, err) : 0;
    if (rc == 0 && !use && required)
        rc = gk_fail(err, GK_EUSAGE, "%s has no tokenizer.json or tokenizer.model: give --tokenizer FILE", model_dir);
    char sha[65];
    bool recorded = false; // the model dir's own tokenizer file is its record: nothing to compare
    if (rc == 0 && path && model_dir_tokenizer(model_dir, sha, &recorded, err)) rc = -1;
    if (rc == 0 && *tok && recorded && strcmp(sha, tokenizer_sha256(*tok)))
        rc = gk_fail(err, GK_EINPUT, "%s: model %s was trained with another tokenizer (sha256 %.12s..., this one %.12s...)",
                     use, model_dir, sha, tokenizer_sha256(*tok));
    if (rc) {
        tokenizer_free(*tok);
        *tok = NULL;
    }
    free(found);
    return rc;
}

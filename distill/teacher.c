#include "distill/teacher.h"

#include <stdlib.h>
#include <string.h>

#include "model/model_dir.h"

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

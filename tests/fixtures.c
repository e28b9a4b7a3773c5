#include "tests/fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "data/shards.h"
#include "model/config.h"
#include "model/init.h"
#include "model/params.h"

int test_scratch_dir(test_case *tc, const char *tag, char *dir, size_t cap) {
    snprintf(dir, cap, "/tmp/gk-%s-XXXXXX", tag);
    if (mkdtemp(dir)) return 0;
    if (tc) CHECK(tc, 0, "mkdtemp %s failed", dir);
    return -1;
}

const char *test_python(void) {
    const char *python = getenv("GEMMAKD_TEST_PYTHON");
    return python && *python ? python : "python3";
}

// The last non-empty line of text, in place.
static char *last_line(char *text) {
    char *end = text + strlen(text);
    while (end > text && (end[-1] == '\n' || end[-1] == '\r')) *--end = 0;
    char *nl = strrchr(text, '\n');
    return nl ? nl + 1 : text;
}

const char *test_python_missing(const char *modules) {
    static char why[768];
    char cmd[512], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import %s' 2>&1", test_python(), modules);
    FILE *p = popen(cmd, "r");
    size_t got = p ? fread(out, 1, sizeof out - 1, p) : 0;
    int status = p ? pclose(p) : -1;
    if (status == 0) return NULL;
    out[got] = 0;
    // What python said ("ModuleNotFoundError: No module named 'h5py'"), and, when make test
    // did not choose the python, why not.
    const char *env = getenv("GEMMAKD_TEST_PYTHON");
    snprintf(why, sizeof why, "%s cannot import %s (%s)%s", test_python(), modules, got ? last_line(out) : "not run",
             env && *env ? "" : "; GEMMAKD_TEST_PYTHON is not set: make test sets it to a virtual environment "
                                "with them from PyPI unless scripts/test-venv.sh fails (it says why)");
    return why;
}

const char *test_h5py_missing(void) {
    static int asked;
    static char why[768];
    if (!asked) {
        const char *missing = test_python_missing("h5py, hdf5plugin");
        snprintf(why, sizeof why, "%s", missing ? missing : "");
        asked = 1;
    }
    return why[0] ? why : NULL;
}

int test_read_docs(const st_file *f, uint32_t *tokens, size_t max_tokens, size_t *n_tokens, int64_t *starts,
                   size_t max_docs, size_t *n_docs, gk_err *err) {
    const st_tensor *t = st_find(f, "tokens"), *s = st_find(f, "doc_starts");
    if (!t || !s || t->dtype != ST_I32 || s->dtype != ST_I64 || t->numel > max_tokens || s->numel > max_docs)
        return gk_fail(err, GK_EINPUT, "%s: no int32 tokens (at most %zu) and int64 doc_starts (at most %zu)", f->path,
                       max_tokens, max_docs);
    for (size_t i = 0; i < t->numel; i++) {
        int32_t v;
        memcpy(&v, t->data + 4 * i, 4); // the mapping need not be aligned
        tokens[i] = (uint32_t)v;
    }
    memcpy(starts, s->data, s->numel * sizeof(int64_t));
    *n_tokens = t->numel;
    *n_docs = s->numel;
    return 0;
}

int test_write_shard(const char *path, const uint32_t *tokens, size_t n_tokens, const int64_t *starts, size_t n_docs,
                     const uint8_t *mask, int64_t vocab_size, gk_err *err) {
    shard_meta meta = {.vocab_size = vocab_size, .bos_id = 2, .eos_id = 1, .pad_id = 0, .has_loss_mask = mask != NULL};
    memset(meta.tokenizer_sha256, 'a', 64);
    shard_writer *sw;
    if (shard_writer_open(&sw, path, &meta, err)) return -1;
    for (size_t d = 0; d < n_docs; d++) {
        size_t begin = (size_t)starts[d], end = d + 1 < n_docs ? (size_t)starts[d + 1] : n_tokens;
        if (shard_writer_add_doc(sw, tokens + begin, mask ? mask + begin : NULL, end - begin, err)) {
            shard_writer_abort(sw);
            return -1;
        }
    }
    return shard_writer_close(sw, err);
}

void tiny_config_json(const tiny_shape *s, char *json, size_t cap) {
    snprintf(json, cap,
             "{\"model_type\": \"gemma2\", \"hidden_size\": %d, \"intermediate_size\": %d, \"num_hidden_layers\": %d, "
             "\"num_attention_heads\": %d, \"num_key_value_heads\": %d, \"head_dim\": 8, \"query_pre_attn_scalar\": 8, "
             "\"sliding_window\": %d, \"attn_logit_softcapping\": 50.0, \"final_logit_softcapping\": 30.0, "
             "\"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-6, \"vocab_size\": %d, \"max_position_embeddings\": %d, "
             "\"hidden_activation\": \"gelu_pytorch_tanh\"}",
             s->d_model, s->d_ff, s->layers, s->heads, s->kv_heads, s->window, s->vocab, s->max_positions);
}

int tiny_model(const tiny_shape *s, uint64_t seed, model_state *m, gk_err *err) {
    char json[1024];
    tiny_config_json(s, json, sizeof json);
    memset(m, 0, sizeof *m);
    int rc = model_config_parse(json, strlen(json), "tiny test config", &m->cfg, err);
    if (rc == 0) rc = param_layout_build(&m->cfg, &m->layout, err);
    if (rc == 0 && !(m->params = param_buffer_alloc(&m->layout, err))) rc = -1;
    if (rc == 0) model_init_random(&m->cfg, &m->layout, m->params, seed);
    else model_state_free(m);
    return rc;
}

void tiny_model_random_norms(model_state *m, double scale, uint64_t seed) {
    for (int t = 0; t < m->layout.n_tensors; t++) {
        const param_tensor *p = &m->layout.tensors[t];
        if (p->kind != PARAM_NORM) continue;
        for (size_t i = 0; i < p->numel; i++)
            m->params[p->offset + i] = (float)(scale * hash_normal(seed, p->offset + i));
    }
}

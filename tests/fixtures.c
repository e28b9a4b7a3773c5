#include "tests/fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"
#include "model/init.h"
#include "model/params.h"

int test_scratch_dir(test_case *tc, const char *tag, char *dir, size_t cap) {
    snprintf(dir, cap, "/tmp/gk-%s-XXXXXX", tag);
    if (mkdtemp(dir)) return 0;
    if (tc) CHECK(tc, 0, "mkdtemp %s failed", dir);
    return -1;
}

int test_have_h5py(void) {
    static int known = -1;
    if (known < 0) known = system("python3 -c 'import h5py, hdf5plugin' > /dev/null 2>&1") == 0;
    return known;
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

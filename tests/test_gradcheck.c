// Finite-difference gradient checks in float64 on micro models: the float64
// build of the model code (the same source as the float32 model) must give
// every parameter's gradient of a cross-entropy loss to within central
// differences' accuracy, for each kind of layer and mask.
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "model/gemma2.h"
#include "tests/check.h"

const char *test_program = "test_gradcheck";

typedef struct {
    const char *name;
    int n_heads, n_kv_heads, window, layers_local_mask; // bit l set = layer l is local
    int n_layers;
    double attn_cap, final_cap;
    int n_docs; // documents packed per row
} micro_case;

static model_config micro_config(const micro_case *mc) {
    model_config c = {.d_model = 8, .d_ff = 12, .n_layers = mc->n_layers, .n_heads = mc->n_heads,
                      .n_kv_heads = mc->n_kv_heads, .head_dim = 4, .vocab_size = 11, .max_seq_len = 64,
                      .sliding_window = mc->window, .query_pre_attn_scalar = 6.0, .attn_softcap = mc->attn_cap,
                      .final_softcap = mc->final_cap, .rope_theta = 10000, .rms_eps = 1e-6, .eos_id = 1, .bos_id = 2,
                      .pad_id = 10}; // never an input below: the pad row's input gradient is dropped (as in HF)
    for (int l = 0; l < c.n_layers; l++) c.is_local[l] = (mc->layers_local_mask >> l) & 1;
    return c;
}

typedef struct {
    model_config cfg;
    param_layout layout;
    double *params, *grads;
    weights_f64 w, g;
    acts_f64 acts;
    token_batch batch;
    int32_t tokens[2 * 9], doc_begin[2 * 9], targets[2 * 9];
    xent_ctx xent;
} micro_model;

static double loss_at(micro_model *m, bool with_grad) {
    gk_err err;
    GK_ASSERT(model_forward_f64(&m->cfg, &m->w, &m->acts, &m->batch, 0, &err) == 0);
    double loss;
    GK_ASSERT(model_head_f64(&m->cfg, &m->w, &m->acts, with_grad ? &m->g : NULL, xent_head_f64, &m->xent, 5, &loss,
                             &err) == 0);
    if (with_grad) model_backward_f64(&m->cfg, &m->w, &m->g, &m->acts);
    return loss;
}

static void micro_setup(micro_model *m, const micro_case *mc, uint64_t seed) {
    gk_err err;
    memset(m, 0, sizeof *m);
    m->cfg = micro_config(mc);
    GK_ASSERT(param_layout_build(&m->cfg, &m->layout, &err) == 0);
    m->params = calloc(m->layout.n_floats, sizeof(double));
    m->grads = calloc(m->layout.n_floats, sizeof(double));
    for (int t = 0; t < m->layout.n_tensors; t++) { // norms too: exercise (1 + w) away from 1
        const param_tensor *p = &m->layout.tensors[t];
        for (size_t i = 0; i < p->numel; i++) m->params[p->offset + i] = 0.5 * hash_normal(seed + (uint64_t)t, i);
    }
    weights_point_f64(&m->layout, m->params, &m->w);
    weights_point_f64(&m->layout, m->grads, &m->g);
    int B = 2, T = 9;
    rng_state r;
    rng_seed(&r, seed);
    for (int i = 0; i < B * T; i++) {
        m->tokens[i] = (int32_t)(rng_next(&r) % (uint64_t)(m->cfg.vocab_size - 1));
        m->targets[i] = i % 7 == 3 ? -1 : (int32_t)(rng_next(&r) % (uint64_t)m->cfg.vocab_size);
    }
    for (int b = 0; b < B; b++) { // documents of unequal length
        int64_t starts[3] = {0, 4, 6};
        GK_ASSERT(doc_begin_from_starts(starts, (size_t)mc->n_docs, T, m->doc_begin + b * T, &err) == 0);
    }
    m->batch = (token_batch){.B = B, .T = T, .tokens = m->tokens, .doc_begin = m->doc_begin};
    m->xent = (xent_ctx){.targets = m->targets, .scale = 1.0 / (B * T)};
    GK_ASSERT(acts_init_f64(&m->acts, &m->cfg, B, T, true, &err) == 0);
}

static void micro_free(micro_model *m) {
    acts_free_f64(&m->acts);
    param_layout_free(&m->layout);
    free(m->params);
    free(m->grads);
}

// Compares each tensor's analytic gradient with central differences.
static void check_case(test_case *tc, const micro_case *mc) {
    micro_model m;
    micro_setup(&m, mc, 1234 + (uint64_t)mc->window);
    loss_at(&m, true);
    const double h = 1e-6; // truncation error ~h^2, rounding ~1e-16/h: both far below the tolerance
    for (int t = 0; t < m.layout.n_tensors && !tc->failed; t++) {
        const param_tensor *p = &m.layout.tensors[t];
        double *fd = malloc(p->numel * sizeof *fd);
        for (size_t i = 0; i < p->numel; i++) {
            double *x = &m.params[p->offset + i], saved = *x;
            *x = saved + h;
            double up = loss_at(&m, false);
            *x = saved - h;
            double down = loss_at(&m, false);
            *x = saved;
            fd[i] = (up - down) / (2 * h);
        }
        double rel = rel_error_f64(m.grads + p->offset, fd, p->numel);
        CHECK(tc, rel < 1e-7, "%s: %s gradient differs from finite differences by %.3g (relative)", mc->name, p->name,
              rel);
        free(fd);
    }
    micro_free(&m);
}

static const micro_case cases[] = {
    {"local_window_softcaps_gqa2", 4, 2, 3, 0x1, 1, 50.0, 30.0, 1},
    {"global_softcaps_gqa2", 4, 2, 3, 0x0, 1, 50.0, 30.0, 1},
    {"local_global_docs_gqa4", 4, 1, 2, 0x1, 2, 2.0, 3.0, 3},
    {"mha_no_softcaps_docs", 2, 2, 5, 0x2, 2, 0.0, 0.0, 2},
};

static void local_window(test_case *tc) { check_case(tc, &cases[0]); }
static void global_layer(test_case *tc) { check_case(tc, &cases[1]); }
static void local_global_packed(test_case *tc) { check_case(tc, &cases[2]); }
static void mha_without_softcaps(test_case *tc) { check_case(tc, &cases[3]); }

// Document starts that contradict each other are rejected, not silently used.
static void inconsistent_documents(test_case *tc) {
    micro_model m;
    micro_setup(&m, &cases[0], 99);
    gk_err err = {0};
    m.doc_begin[2] = 1; // token 2 claims a document starting at 1, but token 1 belongs to the one at 0
    CHECK(tc, model_forward_f64(&m.cfg, &m.w, &m.acts, &m.batch, 0, &err) != 0, "accepted doc_begin 0,0,1");
    CHECK(tc, strstr(err.msg, "document start") != NULL, "message: %s", err.msg);
    m.doc_begin[2] = 0;
    m.tokens[5] = m.cfg.vocab_size; // and a token outside the vocabulary
    CHECK(tc, model_forward_f64(&m.cfg, &m.w, &m.acts, &m.batch, 0, &err) != 0, "accepted a token id = vocab_size");
    CHECK(tc, strstr(err.msg, "outside the vocabulary") != NULL, "message: %s", err.msg);
    micro_free(&m);
}

int main(void) {
    test_run("local_window_softcaps_gqa2", local_window);
    test_run("global_softcaps_gqa2", global_layer);
    test_run("local_global_packed_docs_gqa4_strong_softcaps", local_global_packed);
    test_run("mha_no_softcaps_packed_docs", mha_without_softcaps);
    test_run("inconsistent_documents_rejected", inconsistent_documents);
    return test_main_result();
}

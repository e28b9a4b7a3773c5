// Model configs (model/config.h): the published Gemma 2 configs field by
// field, the config.json variants transformers writes, rejections that name
// the offending field, and a config.json write/read round trip.
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/strbuf.h"
#include "model/config.h"
#include "tests/check.h"

const char *test_program = "test_config";

// ---------------------------------------------------------------- published configs

// Values typed in from reference/gemma2-spec.md section 2 (HF vocab 256000,
// special ids pad 0 / eos 1 / bos 2 from section 1.8).
typedef struct {
    const char *path;
    int d_model, d_ff, n_layers, n_heads, n_kv_heads, head_dim;
    double query_pre_attn_scalar;
} published;

static const published gemma2[] = {
    {"configs/models/gemma2-2b.json", 2304, 9216, 26, 8, 4, 256, 256},
    {"configs/models/gemma2-9b.json", 3584, 14336, 42, 16, 8, 256, 256},
    {"configs/models/gemma2-27b.json", 4608, 36864, 46, 32, 16, 128, 144},
};

#define EXPECT_EQ(tc, what, got, want)                                                                       \
    CHECK(tc, (got) == (want), "%s: %s is %.17g, expected %.17g", p->path, what, (double)(got), (double)(want))

static void check_published(test_case *tc, const published *p) {
    model_config c;
    gk_err err = {0};
    if (model_config_load(p->path, &c, &err)) {
        CHECK(tc, 0, "%s rejected: %s", p->path, err.msg);
        return;
    }
    EXPECT_EQ(tc, "hidden_size", c.d_model, p->d_model);
    EXPECT_EQ(tc, "intermediate_size", c.d_ff, p->d_ff);
    EXPECT_EQ(tc, "num_hidden_layers", c.n_layers, p->n_layers);
    EXPECT_EQ(tc, "num_attention_heads", c.n_heads, p->n_heads);
    EXPECT_EQ(tc, "num_key_value_heads", c.n_kv_heads, p->n_kv_heads);
    EXPECT_EQ(tc, "head_dim", c.head_dim, p->head_dim);
    EXPECT_EQ(tc, "query_pre_attn_scalar", c.query_pre_attn_scalar, p->query_pre_attn_scalar);
    EXPECT_EQ(tc, "sliding_window", c.sliding_window, 4096);
    EXPECT_EQ(tc, "attn_logit_softcapping", c.attn_softcap, 50.0);
    EXPECT_EQ(tc, "final_logit_softcapping", c.final_softcap, 30.0);
    EXPECT_EQ(tc, "rope_theta", c.rope_theta, 10000.0);
    EXPECT_EQ(tc, "rms_norm_eps", c.rms_eps, 1e-6);
    EXPECT_EQ(tc, "vocab_size", c.vocab_size, 256000);
    EXPECT_EQ(tc, "max_position_embeddings", c.max_seq_len, 8192);
    EXPECT_EQ(tc, "pad_token_id", c.pad_id, 0);
    EXPECT_EQ(tc, "eos_token_id", c.eos_id, 1);
    EXPECT_EQ(tc, "bos_token_id", c.bos_id, 2);
    EXPECT_EQ(tc, "q width", cfg_q_dim(&c), p->n_heads * p->head_dim);
    CHECK(tc, c.is_local[0] && !c.is_local[1], "%s: layer 0 must be local and layer 1 global", p->path);
    for (int l = 0; l < c.n_layers; l++)
        CHECK(tc, c.is_local[l] == (l % 2 == 0), "%s: layer %d local=%d", p->path, l, c.is_local[l]);
}

static void gemma2_2b(test_case *tc) { check_published(tc, &gemma2[0]); }
static void gemma2_9b(test_case *tc) { check_published(tc, &gemma2[1]); }
static void gemma2_27b(test_case *tc) { check_published(tc, &gemma2[2]); }

// ---------------------------------------------------------------- configs built from a base

// A small valid config.json, one member per entry (key, JSON value).
static const char *const base_members[][2] = {
    {"model_type", "\"gemma2\""},
    {"architectures", "[\"Gemma2ForCausalLM\"]"},
    {"hidden_size", "64"},
    {"intermediate_size", "256"},
    {"num_hidden_layers", "4"},
    {"num_attention_heads", "4"},
    {"num_key_value_heads", "2"},
    {"head_dim", "16"},
    {"query_pre_attn_scalar", "16"},
    {"sliding_window", "32"},
    {"attn_logit_softcapping", "50.0"},
    {"final_logit_softcapping", "30.0"},
    {"rope_theta", "10000.0"},
    {"rms_norm_eps", "1e-06"},
    {"vocab_size", "512"},
    {"max_position_embeddings", "1024"},
    {"hidden_activation", "\"gelu_pytorch_tanh\""},
    {"pad_token_id", "0"},
    {"eos_token_id", "1"},
    {"bos_token_id", "2"},
    {"attention_bias", "false"},
    {"tie_word_embeddings", "true"},
};
enum { N_BASE = sizeof base_members / sizeof base_members[0] };

static const char *SOURCE = "cfg-under-test.json";

// The base config with `drop` (NULL-terminated, may be NULL) removed, the
// members listed in `set` ("key", "value", ..., NULL) replacing or adding.
static char *build_config(const char *const *drop, const char *const *set) {
    strbuf sb = {0};
    sb_puts(&sb, "{\n");
    int first = 1;
    for (int i = 0; i < N_BASE; i++) {
        const char *key = base_members[i][0], *value = base_members[i][1];
        int skip = 0;
        for (const char *const *d = drop; d && *d; d++) skip |= !strcmp(*d, key);
        for (const char *const *s = set; s && *s; s += 2) skip |= !strcmp(s[0], key);
        if (skip) continue;
        sb_printf(&sb, "%s  \"%s\": %s", first ? "" : ",\n", key, value);
        first = 0;
    }
    for (const char *const *s = set; s && *s; s += 2) {
        sb_printf(&sb, "%s  \"%s\": %s", first ? "" : ",\n", s[0], s[1]);
        first = 0;
    }
    sb_puts(&sb, "\n}\n");
    if (sb.failed) abort();
    return sb.data;
}

static int parse_config(const char *const *drop, const char *const *set, model_config *c, gk_err *err) {
    char *text = build_config(drop, set);
    memset(err, 0, sizeof *err);
    int rc = model_config_parse(text, strlen(text), SOURCE, c, err);
    free(text);
    return rc;
}

#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})

static void base_is_valid(test_case *tc) {
    model_config c;
    gk_err err;
    CHECK(tc, parse_config(NULL, NULL, &c, &err) == 0, "base config rejected: %s", err.msg);
    CHECK(tc, c.d_model == 64 && c.n_layers == 4 && c.sliding_window == 32 && c.vocab_size == 512, "base values");
}

// transformers 5 writes rope_parameters and no top-level rope_theta.
static void rope_parameters(test_case *tc) {
    model_config c;
    gk_err err;
    int rc = parse_config(LIST("rope_theta"),
                          LIST("rope_parameters", "{\"rope_type\": \"default\", \"rope_theta\": 1000000.0}"), &c, &err);
    CHECK(tc, rc == 0, "rejected: %s", err.msg);
    CHECK(tc, rc || c.rope_theta == 1e6, "rope_theta %g, expected 1e6", c.rope_theta);
    rc = parse_config(LIST("rope_theta"), LIST("rope_parameters", "{\"rope_theta\": 500.0}"), &c, &err);
    CHECK(tc, rc == 0 && c.rope_theta == 500.0, "rope_parameters without rope_type: rc %d, %s", rc, err.msg);
}

static void explicit_layer_types(test_case *tc) {
    model_config c;
    gk_err err;
    int rc = parse_config(NULL,
                          LIST("layer_types", "[\"full_attention\", \"full_attention\", \"full_attention\", "
                                              "\"full_attention\"]"),
                          &c, &err);
    CHECK(tc, rc == 0, "rejected: %s", err.msg);
    for (int l = 0; rc == 0 && l < 4; l++) CHECK(tc, !c.is_local[l], "layer %d should be global", l);
    rc = parse_config(NULL,
                      LIST("layer_types", "[\"full_attention\", \"sliding_attention\", \"sliding_attention\", "
                                          "\"full_attention\"]"),
                      &c, &err);
    CHECK(tc, rc == 0 && !c.is_local[0] && c.is_local[1] && c.is_local[2] && !c.is_local[3],
          "mixed layer_types: rc %d, %s", rc, err.msg);
    rc = parse_config(NULL, LIST("layer_types", "null"), &c, &err);
    CHECK(tc, rc == 0 && c.is_local[0] && !c.is_local[1] && c.is_local[2] && !c.is_local[3],
          "null layer_types should mean the alternation: rc %d, %s", rc, err.msg);
}

static void hidden_act_fallback(test_case *tc) {
    model_config c;
    gk_err err;
    CHECK(tc, parse_config(LIST("hidden_activation"), LIST("hidden_act", "\"gelu_pytorch_tanh\""), &c, &err) == 0,
          "hidden_act alone rejected: %s", err.msg);
    CHECK(tc,
          parse_config(NULL, LIST("hidden_activation", "null", "hidden_act", "\"gelu_pytorch_tanh\""), &c, &err) == 0,
          "null hidden_activation + hidden_act rejected: %s", err.msg);
}

static void null_softcaps(test_case *tc) {
    model_config c;
    gk_err err;
    int rc = parse_config(NULL, LIST("attn_logit_softcapping", "null"), &c, &err);
    CHECK(tc, rc == 0, "rejected: %s", err.msg);
    CHECK(tc, rc || (c.attn_softcap == 0 && c.final_softcap == 30.0), "attn %g final %g", c.attn_softcap,
          c.final_softcap);
    rc = parse_config(NULL, LIST("final_logit_softcapping", "null"), &c, &err);
    CHECK(tc, rc == 0 && c.final_softcap == 0 && c.attn_softcap == 50.0, "null final cap: rc %d, %s", rc, err.msg);
}

// ---------------------------------------------------------------- rejections

// `needles` (NULL-terminated) must all occur in the message, as must SOURCE.
static void expect_rejected(test_case *tc, const char *what, const char *const *drop, const char *const *set,
                            const char *const *needles) {
    model_config c;
    gk_err err;
    int rc = parse_config(drop, set, &c, &err);
    CHECK(tc, rc != 0, "%s: accepted", what);
    if (rc == 0) return;
    CHECK(tc, err.code == GK_EINPUT, "%s: error code %d", what, err.code);
    CHECK(tc, strstr(err.msg, SOURCE) != NULL, "%s: message does not name the file: %s", what, err.msg);
    for (const char *const *n = needles; *n; n++)
        CHECK(tc, strstr(err.msg, *n) != NULL, "%s: message does not mention '%s': %s", what, *n, err.msg);
}

// True when the decimal number appears in msg as a whole number (not inside another).
static int has_number(const char *msg, long long v) {
    char num[32];
    int n = snprintf(num, sizeof num, "%lld", v);
    for (const char *p = msg; (p = strstr(p, num)); p++) {
        int before = p > msg && p[-1] >= '0' && p[-1] <= '9';
        int after = p[n] >= '0' && p[n] <= '9';
        if (!before && !after) return 1;
    }
    return 0;
}

static const char *const required[] = {
    "hidden_size",        "intermediate_size",     "num_hidden_layers",     "num_attention_heads",
    "num_key_value_heads", "head_dim",             "query_pre_attn_scalar", "sliding_window",
    "rms_norm_eps",       "vocab_size",            "max_position_embeddings", "hidden_activation",
    "rope_theta",         "model_type",
};

static void missing_fields(test_case *tc) {
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        expect_rejected(tc, required[i], LIST(required[i]), NULL, LIST(required[i]));
}

static const char *const sizes[] = {
    "hidden_size", "intermediate_size", "num_hidden_layers",       "num_attention_heads", "num_key_value_heads",
    "head_dim",    "sliding_window",    "max_position_embeddings", "vocab_size",
};

static void bad_sizes(test_case *tc) {
    static const char *const values[] = {"0", "-4", "\"64\"", "16.5", "true", "null", "[64]"};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (size_t j = 0; j < sizeof values / sizeof values[0]; j++) {
            char what[96];
            snprintf(what, sizeof what, "%s = %s", sizes[i], values[j]);
            expect_rejected(tc, what, NULL, LIST(sizes[i], values[j]), LIST(sizes[i]));
        }
    }
}

static void bad_scalars(test_case *tc) {
    static const char *const fields[] = {"rms_norm_eps", "query_pre_attn_scalar", "rope_theta",
                                         "attn_logit_softcapping", "final_logit_softcapping"};
    static const char *const values[] = {"0", "-1.0", "\"1e-6\"", "false", "{}"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        for (size_t j = 0; j < sizeof values / sizeof values[0]; j++) {
            char what[96];
            snprintf(what, sizeof what, "%s = %s", fields[i], values[j]);
            expect_rejected(tc, what, NULL, LIST(fields[i], values[j]), LIST(fields[i]));
        }
    }
}

static void heads_not_divisible(test_case *tc) {
    model_config c;
    gk_err err;
    int rc = parse_config(NULL, LIST("num_attention_heads", "6", "num_key_value_heads", "4"), &c, &err);
    CHECK(tc, rc != 0, "6 heads with 4 kv heads accepted");
    CHECK(tc, rc == 0 || (has_number(err.msg, 6) && has_number(err.msg, 4)), "message must give 6 and 4: %s",
          err.msg);
    expect_rejected(tc, "6 heads / 4 kv heads", NULL, LIST("num_attention_heads", "6", "num_key_value_heads", "4"),
                    LIST("num_attention_heads", "num_key_value_heads"));
    expect_rejected(tc, "more kv heads than heads", NULL, LIST("num_key_value_heads", "8"),
                    LIST("num_key_value_heads"));
}

static void odd_head_dim(test_case *tc) {
    model_config c;
    gk_err err;
    expect_rejected(tc, "head_dim 15", NULL, LIST("head_dim", "15"), LIST("head_dim"));
    CHECK(tc, parse_config(NULL, LIST("head_dim", "15"), &c, &err) != 0 && has_number(err.msg, 15),
          "message must give 15: %s", err.msg);
}

static void unsupported_values(test_case *tc) {
    expect_rejected(tc, "relu", NULL, LIST("hidden_activation", "\"relu\""), LIST("hidden_activation", "relu"));
    expect_rejected(tc, "hidden_act relu", LIST("hidden_activation"), LIST("hidden_act", "\"relu\""),
                    LIST("hidden_act", "relu"));
    expect_rejected(tc, "hidden_activation 5", NULL, LIST("hidden_activation", "5"), LIST("hidden_activation"));
    expect_rejected(tc, "llama", NULL, LIST("model_type", "\"llama\""), LIST("model_type"));
    expect_rejected(tc, "rope_scaling", NULL, LIST("rope_scaling", "{\"type\": \"linear\", \"factor\": 2.0}"),
                    LIST("rope_scaling"));
    expect_rejected(tc, "rope_type linear", LIST("rope_theta"),
                    LIST("rope_parameters", "{\"rope_type\": \"linear\", \"rope_theta\": 10000.0, \"factor\": 2.0}"),
                    LIST("rope_type"));
    expect_rejected(tc, "rope_scaling next to rope_parameters", LIST("rope_theta"),
                    LIST("rope_parameters", "{\"rope_type\": \"default\", \"rope_theta\": 10000.0}", "rope_scaling",
                         "{\"rope_type\": \"linear\", \"factor\": 2.0}"),
                    LIST("rope_scaling"));
    expect_rejected(tc, "rope_parameters without rope_theta", LIST("rope_theta"),
                    LIST("rope_parameters", "{\"rope_type\": \"default\"}"), LIST("rope_theta"));
    expect_rejected(tc, "tie_word_embeddings false", NULL, LIST("tie_word_embeddings", "false"),
                    LIST("tie_word_embeddings"));
    expect_rejected(tc, "attention_bias true", NULL, LIST("attention_bias", "true"), LIST("attention_bias"));
}

static void bad_layer_types(test_case *tc) {
    expect_rejected(tc, "3 layer types for 4 layers", NULL,
                    LIST("layer_types", "[\"sliding_attention\", \"full_attention\", \"sliding_attention\"]"),
                    LIST("layer_types"));
    expect_rejected(tc, "5 layer types for 4 layers", NULL,
                    LIST("layer_types", "[\"sliding_attention\", \"full_attention\", \"sliding_attention\", "
                                        "\"full_attention\", \"full_attention\"]"),
                    LIST("layer_types"));
    expect_rejected(tc, "unknown layer type", NULL,
                    LIST("layer_types", "[\"sliding_attention\", \"full_attention\", \"chunked_attention\", "
                                        "\"full_attention\"]"),
                    LIST("layer_types[2]"));
    expect_rejected(tc, "layer type not a string", NULL,
                    LIST("layer_types", "[\"sliding_attention\", 1, \"sliding_attention\", \"full_attention\"]"),
                    LIST("layer_types"));
    expect_rejected(tc, "layer_types not an array", NULL, LIST("layer_types", "\"full_attention\""),
                    LIST("layer_types"));
}

static void special_ids_outside_vocab(test_case *tc) {
    static const char *const ids[] = {"pad_token_id", "eos_token_id", "bos_token_id"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s = vocab_size", ids[i]);
        expect_rejected(tc, what, NULL, LIST(ids[i], "512"), LIST(ids[i]));
        snprintf(what, sizeof what, "%s = -1", ids[i]);
        expect_rejected(tc, what, NULL, LIST(ids[i], "-1"), LIST(ids[i]));
    }
}

static void invalid_json(test_case *tc) {
    static const struct {
        const char *text, *where;
    } cases[] = {
        {"{\n  \"hidden_size\": 64,\n  \"vocab_size\": 512,\n}\n", ":4:1:"},
        {"{\"hidden_size\": 064}", ":1:18:"},
        {"", ":1:1:"},
        {"{\"model_type\": \"gemma2\"} {}", ":1:26:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        model_config c;
        gk_err err = {0};
        int rc = model_config_parse(cases[i].text, strlen(cases[i].text), SOURCE, &c, &err);
        char want[96];
        snprintf(want, sizeof want, "%s%s", SOURCE, cases[i].where);
        CHECK(tc, rc != 0 && strstr(err.msg, want), "case %zu: rc %d, message '%s' should contain '%s'", i, rc,
              err.msg, want);
    }
    model_config c;
    gk_err err = {0};
    CHECK(tc, model_config_parse("[1, 2]", 6, SOURCE, &c, &err) != 0 && strstr(err.msg, SOURCE),
          "a JSON array is not a config: %s", err.msg);
    CHECK(tc, model_config_load("/nonexistent/config.json", &c, &err) != 0 &&
                  strstr(err.msg, "/nonexistent/config.json"),
          "missing file: %s", err.msg);
}

// ---------------------------------------------------------------- round trip

static void expect_same(test_case *tc, const char *name, const model_config *a, const model_config *b) {
#define SAME(field) CHECK(tc, a->field == b->field, "%s: " #field " %.17g became %.17g", name, (double)a->field, (double)b->field)
    SAME(d_model);
    SAME(d_ff);
    SAME(n_layers);
    SAME(n_heads);
    SAME(n_kv_heads);
    SAME(head_dim);
    SAME(vocab_size);
    SAME(max_seq_len);
    SAME(sliding_window);
    SAME(query_pre_attn_scalar);
    SAME(attn_softcap);
    SAME(final_softcap);
    SAME(rope_theta);
    SAME(rms_eps);
    SAME(pad_id);
    SAME(eos_id);
    SAME(bos_id);
#undef SAME
    for (int l = 0; l < MODEL_MAX_LAYERS; l++)
        CHECK(tc, a->is_local[l] == b->is_local[l], "%s: is_local[%d] %d became %d", name, l, a->is_local[l],
              b->is_local[l]);
}

static void round_trip_one(test_case *tc, const char *name, const model_config *c) {
    strbuf sb = {0};
    model_config_to_json(c, "float32", &sb);
    CHECK(tc, !sb.failed, "%s: out of memory", name);
    if (sb.failed) return;
    json_doc doc;
    gk_err err = {0};
    int rc = json_parse(sb.data, sb.len, name, &doc, &err);
    CHECK(tc, rc == 0, "%s: written config is not JSON: %s", name, err.msg);
    if (rc == 0) {
        const char *dup = json_duplicate_key(doc.root);
        CHECK(tc, dup == NULL, "%s: written config repeats '%s'", name, dup);
        const json_value *mt = json_get(doc.root, "model_type");
        CHECK(tc, mt && mt->type == JSON_STRING && !strcmp(mt->string, "gemma2"), "%s: model_type", name);
        json_free(&doc);
    }
    model_config back;
    rc = model_config_parse(sb.data, sb.len, name, &back, &err);
    CHECK(tc, rc == 0, "%s: written config rejected: %s", name, err.msg);
    if (rc == 0) expect_same(tc, name, c, &back);
    sb_free(&sb);
}

static void round_trip(test_case *tc) {
    for (size_t i = 0; i < sizeof gemma2 / sizeof gemma2[0]; i++) {
        model_config c;
        gk_err err = {0};
        if (model_config_load(gemma2[i].path, &c, &err)) {
            CHECK(tc, 0, "%s: %s", gemma2[i].path, err.msg);
            return;
        }
        round_trip_one(tc, gemma2[i].path, &c);
    }
    // Values that do not print exactly with few digits, caps off, a custom layer pattern.
    model_config c = {.d_model = 96,
                      .d_ff = 200,
                      .n_layers = 5,
                      .n_heads = 6,
                      .n_kv_heads = 3,
                      .head_dim = 10,
                      .vocab_size = 1000,
                      .max_seq_len = 333,
                      .sliding_window = 7,
                      .query_pre_attn_scalar = 224.5,
                      .attn_softcap = 0,
                      .final_softcap = 0.1,
                      .rope_theta = 12345.678901234567,
                      .rms_eps = 1.0 / 3.0 * 1e-5,
                      .pad_id = 999,
                      .eos_id = 7,
                      .bos_id = 0};
    c.is_local[0] = false;
    c.is_local[1] = true;
    c.is_local[2] = true;
    c.is_local[3] = false;
    c.is_local[4] = true;
    gk_err err = {0};
    CHECK(tc, model_config_validate(&c, "custom", &err) == 0, "custom config invalid: %s", err.msg);
    round_trip_one(tc, "custom", &c);
    c.query_pre_attn_scalar = 144;
    c.attn_softcap = 50;
    c.final_softcap = 0;
    c.n_layers = 1;
    c.is_local[1] = c.is_local[2] = c.is_local[4] = false;
    round_trip_one(tc, "custom-1-layer", &c);
}

int main(void) {
    test_run("gemma2_2b", gemma2_2b);
    test_run("gemma2_9b", gemma2_9b);
    test_run("gemma2_27b", gemma2_27b);
    test_run("base_is_valid", base_is_valid);
    test_run("rope_parameters", rope_parameters);
    test_run("explicit_layer_types", explicit_layer_types);
    test_run("hidden_act_fallback", hidden_act_fallback);
    test_run("null_softcaps", null_softcaps);
    test_run("missing_fields", missing_fields);
    test_run("bad_sizes", bad_sizes);
    test_run("bad_scalars", bad_scalars);
    test_run("heads_not_divisible", heads_not_divisible);
    test_run("odd_head_dim", odd_head_dim);
    test_run("unsupported_values", unsupported_values);
    test_run("bad_layer_types", bad_layer_types);
    test_run("special_ids_outside_vocab", special_ids_outside_vocab);
    test_run("invalid_json", invalid_json);
    test_run("round_trip", round_trip);
    return test_main_result();
}

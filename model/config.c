#include "model/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/json.h"

typedef struct {
    const json_value *root;
    const char *source;
    gk_err *err;
} reader;

static int missing(reader *r, const char *key) {
    return gk_fail(r->err, GK_EINPUT, "%s: '%s' is missing", r->source, key);
}

// Reads a positive integer field (or, when min is 0, a non-negative one).
static int read_int(reader *r, const char *key, int min, bool required, int fallback, int *out) {
    const json_value *v = json_get(r->root, key);
    if (!v || v->type == JSON_NULL) {
        if (required) return missing(r, key);
        *out = fallback;
        return 0;
    }
    if (v->type != JSON_NUMBER || !v->is_integer || v->integer < min || v->integer > 1000000000)
        return gk_fail(r->err, GK_EINPUT, "%s:%d: '%s' must be an integer >= %d", r->source, v->line, key, min);
    *out = (int)v->integer;
    return 0;
}

// Reads a positive number; when `nullable`, JSON null (or absence) means 0 = off.
static int read_positive(reader *r, const char *key, bool nullable, double *out) {
    const json_value *v = json_get(r->root, key);
    if (!v || v->type == JSON_NULL) {
        if (!nullable || !v) return missing(r, key);
        *out = 0;
        return 0;
    }
    if (v->type != JSON_NUMBER || !(v->number > 0) || !isfinite(v->number))
        return gk_fail(r->err, GK_EINPUT, "%s:%d: '%s' must be a positive number", r->source, v->line, key);
    *out = v->number;
    return 0;
}

static int read_string_is(reader *r, const char *key, const char *want, bool required) {
    const json_value *v = json_get(r->root, key);
    if (!v) return required ? missing(r, key) : 0;
    if (v->type != JSON_STRING || strcmp(v->string, want) != 0)
        return gk_fail(r->err, GK_EINPUT, "%s:%d: '%s' must be \"%s\"", r->source, v->line, key, want);
    return 0;
}

static int read_activation(reader *r) {
    const json_value *v = json_get(r->root, "hidden_activation");
    const char *key = "hidden_activation";
    if (!v || v->type == JSON_NULL) {
        v = json_get(r->root, "hidden_act");
        key = "hidden_act";
    }
    if (!v) return missing(r, "hidden_activation");
    if (v->type != JSON_STRING)
        return gk_fail(r->err, GK_EINPUT, "%s:%d: '%s' must be a string", r->source, v->line, key);
    // gelu_new is the same tanh approximation under another name.
    if (strcmp(v->string, "gelu_pytorch_tanh") && strcmp(v->string, "gelu_new"))
        return gk_fail(r->err, GK_EINPUT, "%s:%d: unsupported %s \"%s\" (Gemma 2 uses gelu_pytorch_tanh)",
                       r->source, v->line, key, v->string);
    return 0;
}

// rope_theta at top level (transformers 4.x) or rope_parameters.rope_theta (5.x).
static int read_rope(reader *r, double *theta) {
    const json_value *scaling = json_get(r->root, "rope_scaling");
    if (scaling && scaling->type != JSON_NULL)
        return gk_fail(r->err, GK_EINPUT, "%s:%d: rope_scaling is not supported", r->source, scaling->line);
    const json_value *params = json_get(r->root, "rope_parameters");
    if (params && params->type != JSON_NULL && params->type != JSON_OBJECT)
        return gk_fail(r->err, GK_EINPUT, "%s:%d: 'rope_parameters' must be an object", r->source, params->line);
    if (params && params->type == JSON_OBJECT) {
        const json_value *type = json_get(params, "rope_type");
        if (type && (type->type != JSON_STRING || strcmp(type->string, "default")))
            return gk_fail(r->err, GK_EINPUT, "%s:%d: only rope_type \"default\" is supported", r->source,
                           type->line);
        reader sub = {params, r->source, r->err};
        if (json_get(params, "rope_theta")) return read_positive(&sub, "rope_theta", false, theta);
    }
    return read_positive(r, "rope_theta", false, theta);
}

// Optional layer_types: "sliding_attention" / "full_attention" per layer.
static int read_layer_types(reader *r, model_config *cfg) {
    const json_value *v = json_get(r->root, "layer_types");
    for (int l = 0; l < cfg->n_layers; l++) cfg->is_local[l] = l % 2 == 0;
    if (!v || v->type == JSON_NULL) return 0;
    if (v->type != JSON_ARRAY || v->count != (size_t)cfg->n_layers)
        return gk_fail(r->err, GK_EINPUT, "%s:%d: 'layer_types' must list one type per layer (%d)", r->source,
                       v->line, cfg->n_layers);
    for (int l = 0; l < cfg->n_layers; l++) {
        const json_value *t = v->items[l];
        bool local = t->type == JSON_STRING && !strcmp(t->string, "sliding_attention");
        bool global = t->type == JSON_STRING && !strcmp(t->string, "full_attention");
        if (!local && !global)
            return gk_fail(r->err, GK_EINPUT,
                           "%s:%d: layer_types[%d] must be \"sliding_attention\" or \"full_attention\"",
                           r->source, t->line, l);
        cfg->is_local[l] = local;
    }
    return 0;
}

static int read_false(reader *r, const char *key, bool want) {
    const json_value *v = json_get(r->root, key);
    if (!v || v->type == JSON_NULL) return 0;
    if (v->type != JSON_BOOL || v->boolean != want)
        return gk_fail(r->err, GK_EINPUT, "%s:%d: '%s' must be %s (the only form gemmakd supports)", r->source,
                       v->line, key, want ? "true" : "false");
    return 0;
}

int model_config_parse(const char *text, size_t len, const char *source, model_config *cfg, gk_err *err) {
    json_doc doc;
    if (json_parse(text, len, source, &doc, err)) return -1;
    memset(cfg, 0, sizeof *cfg);
    reader r = {doc.root, source, err};
    int rc = -1;
    if (doc.root->type != JSON_OBJECT) {
        gk_fail(err, GK_EINPUT, "%s: expected a JSON object", source);
        goto done;
    }
    if (read_string_is(&r, "model_type", "gemma2", true) || read_int(&r, "hidden_size", 1, true, 0, &cfg->d_model) ||
        read_int(&r, "intermediate_size", 1, true, 0, &cfg->d_ff) ||
        read_int(&r, "num_hidden_layers", 1, true, 0, &cfg->n_layers) ||
        read_int(&r, "num_attention_heads", 1, true, 0, &cfg->n_heads) ||
        read_int(&r, "num_key_value_heads", 1, true, 0, &cfg->n_kv_heads) ||
        read_int(&r, "head_dim", 1, true, 0, &cfg->head_dim) || read_int(&r, "vocab_size", 1, true, 0, &cfg->vocab_size) ||
        read_int(&r, "max_position_embeddings", 1, true, 0, &cfg->max_seq_len) ||
        read_int(&r, "sliding_window", 1, true, 0, &cfg->sliding_window) ||
        read_positive(&r, "query_pre_attn_scalar", false, &cfg->query_pre_attn_scalar) ||
        read_positive(&r, "attn_logit_softcapping", true, &cfg->attn_softcap) ||
        read_positive(&r, "final_logit_softcapping", true, &cfg->final_softcap) || read_rope(&r, &cfg->rope_theta) ||
        read_positive(&r, "rms_norm_eps", false, &cfg->rms_eps) || read_activation(&r) ||
        read_int(&r, "pad_token_id", 0, false, 0, &cfg->pad_id) || read_int(&r, "eos_token_id", 0, false, 1, &cfg->eos_id) ||
        read_int(&r, "bos_token_id", 0, false, 2, &cfg->bos_id) || read_false(&r, "attention_bias", false) ||
        read_false(&r, "tie_word_embeddings", true))
        goto done;
    if (cfg->n_layers > MODEL_MAX_LAYERS) {
        gk_fail(err, GK_EINPUT, "%s: num_hidden_layers %d exceeds the supported %d", source, cfg->n_layers,
                MODEL_MAX_LAYERS);
        goto done;
    }
    if (read_layer_types(&r, cfg)) goto done;
    rc = model_config_validate(cfg, source, err);
done:
    json_free(&doc);
    return rc;
}

int model_config_validate(const model_config *c, const char *source, gk_err *err) {
    if (c->d_model <= 0 || c->d_ff <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 ||
        c->head_dim <= 0 || c->vocab_size <= 0 || c->max_seq_len <= 0 || c->sliding_window <= 0)
        return gk_fail(err, GK_EINPUT, "%s: sizes must be positive", source);
    if (c->n_layers > MODEL_MAX_LAYERS)
        return gk_fail(err, GK_EINPUT, "%s: at most %d layers are supported", source, MODEL_MAX_LAYERS);
    if (c->d_model > MODEL_MAX_D_MODEL)
        return gk_fail(err, GK_EINPUT, "%s: hidden_size %d exceeds the supported %d", source, c->d_model,
                       MODEL_MAX_D_MODEL);
    if ((int64_t)c->n_heads * c->head_dim > MODEL_MAX_Q_DIM)
        return gk_fail(err, GK_EINPUT, "%s: num_attention_heads x head_dim (%d x %d = %lld) exceeds the supported %d",
                       source, c->n_heads, c->head_dim, (long long)c->n_heads * c->head_dim, MODEL_MAX_Q_DIM);
    if (c->n_heads % c->n_kv_heads)
        return gk_fail(err, GK_EINPUT, "%s: num_attention_heads (%d) is not divisible by num_key_value_heads (%d)",
                       source, c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2)
        return gk_fail(err, GK_EINPUT, "%s: head_dim (%d) must be even for RoPE", source, c->head_dim);
    const struct {
        const char *name;
        int id;
    } special[] = {{"pad_token_id", c->pad_id}, {"eos_token_id", c->eos_id}, {"bos_token_id", c->bos_id}};
    for (int i = 0; i < 3; i++)
        if (special[i].id >= c->vocab_size)
            return gk_fail(err, GK_EINPUT, "%s: %s (%d) must be below vocab_size (%d)", source, special[i].name,
                           special[i].id, c->vocab_size);
    if (!(c->rms_eps > 0) || !(c->query_pre_attn_scalar > 0) || !(c->rope_theta > 0) || c->attn_softcap < 0 ||
        c->final_softcap < 0)
        return gk_fail(err, GK_EINPUT, "%s: eps, scalars and caps must be positive", source);
    return 0;
}

int model_config_check_seq_len(const model_config *c, int64_t seq_len, const char *source, const char *model,
                               gk_err *err) {
    if (seq_len <= c->max_seq_len) return 0;
    return gk_fail(err, GK_EINPUT, "%s: sequences of %lld tokens exceed the %d positions (max_position_embeddings) of %s",
                   source, (long long)seq_len, c->max_seq_len, model);
}

int model_config_load(const char *path, model_config *cfg, gk_err *err) {
    char *text;
    size_t len;
    if (file_read_all(path, &text, &len, err)) return -1;
    int rc = model_config_parse(text, len, path, cfg, err);
    free(text);
    return rc;
}

// A JSON float that stays a float when read back ("30.0", not "30"):
// transformers 5 checks the types of config fields strictly.
static const char *float_text(double v, char num[48]) {
    snprintf(num, 40, "%.17g", v);
    if (!strpbrk(num, ".eE")) strcat(num, ".0");
    return num;
}

static void put_float(strbuf *sb, const char *key, double v) {
    char num[48];
    sb_printf(sb, "  \"%s\": %s,\n", key, float_text(v, num));
}

static void put_float_or_null(strbuf *sb, const char *key, double v) {
    if (v > 0) put_float(sb, key, v);
    else sb_printf(sb, "  \"%s\": null,\n", key);
}

// query_pre_attn_scalar is an int in transformers 5 configs; keep others as floats.
static void put_scalar(strbuf *sb, const char *key, double v) {
    if (v == floor(v) && v < 1e15) sb_printf(sb, "  \"%s\": %.0f,\n", key, v);
    else put_float(sb, key, v);
}

void model_config_to_json(const model_config *c, const char *torch_dtype, strbuf *sb) {
    sb_puts(sb, "{\n  \"architectures\": [\"Gemma2ForCausalLM\"],\n  \"model_type\": \"gemma2\",\n");
    sb_printf(sb, "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n", c->d_model,
              c->d_ff, c->n_layers);
    sb_printf(sb, "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n", c->n_heads,
              c->n_kv_heads, c->head_dim);
    put_scalar(sb, "query_pre_attn_scalar", c->query_pre_attn_scalar);
    sb_printf(sb, "  \"sliding_window\": %d,\n", c->sliding_window);
    put_float_or_null(sb, "attn_logit_softcapping", c->attn_softcap);
    put_float_or_null(sb, "final_logit_softcapping", c->final_softcap);
    put_float(sb, "rope_theta", c->rope_theta); // transformers 4 reads this, 5 the rope_parameters below
    char theta[48];
    sb_printf(sb, "  \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": %s},\n",
              float_text(c->rope_theta, theta));
    put_float(sb, "rms_norm_eps", c->rms_eps);
    sb_printf(sb, "  \"vocab_size\": %d,\n  \"max_position_embeddings\": %d,\n", c->vocab_size, c->max_seq_len);
    sb_puts(sb, "  \"hidden_activation\": \"gelu_pytorch_tanh\",\n  \"hidden_act\": \"gelu_pytorch_tanh\",\n");
    sb_puts(sb, "  \"layer_types\": [");
    for (int l = 0; l < c->n_layers; l++)
        sb_printf(sb, "%s\"%s\"", l ? ", " : "", c->is_local[l] ? "sliding_attention" : "full_attention");
    sb_puts(sb, "],\n");
    sb_printf(sb, "  \"pad_token_id\": %d,\n  \"eos_token_id\": %d,\n  \"bos_token_id\": %d,\n", c->pad_id, c->eos_id,
              c->bos_id);
    sb_puts(sb, "  \"attention_bias\": false,\n  \"attention_dropout\": 0.0,\n  \"tie_word_embeddings\": true,\n");
    sb_puts(sb, "  \"use_cache\": true,\n  \"initializer_range\": 0.02,\n");
    sb_printf(sb, "  \"torch_dtype\": \"%s\"\n}\n", torch_dtype);
}

int model_config_save(const model_config *cfg, const char *path, const char *torch_dtype, gk_err *err) {
    strbuf sb = {0};
    model_config_to_json(cfg, torch_dtype, &sb);
    int rc = sb.failed ? gk_fail(err, GK_ENOMEM, "out of memory") : file_write_atomic(path, sb.data, sb.len, err);
    sb_free(&sb);
    return rc;
}

int model_config_difference(const model_config *a, const model_config *b, char *what, size_t n) {
#define INT_FIELD(f, name) \
    if (a->f != b->f) return snprintf(what, n, "%s %d vs %d", name, a->f, b->f), 1;
#define REAL_FIELD(f, name) \
    if (a->f != b->f) return snprintf(what, n, "%s %.9g vs %.9g", name, a->f, b->f), 1;
    INT_FIELD(d_model, "hidden_size")
    INT_FIELD(d_ff, "intermediate_size")
    INT_FIELD(n_layers, "num_hidden_layers")
    INT_FIELD(n_heads, "num_attention_heads")
    INT_FIELD(n_kv_heads, "num_key_value_heads")
    INT_FIELD(head_dim, "head_dim")
    INT_FIELD(vocab_size, "vocab_size")
    INT_FIELD(max_seq_len, "max_position_embeddings")
    INT_FIELD(sliding_window, "sliding_window")
    REAL_FIELD(query_pre_attn_scalar, "query_pre_attn_scalar")
    REAL_FIELD(attn_softcap, "attn_logit_softcapping")
    REAL_FIELD(final_softcap, "final_logit_softcapping")
    REAL_FIELD(rope_theta, "rope_theta")
    REAL_FIELD(rms_eps, "rms_norm_eps")
    INT_FIELD(pad_id, "pad_token_id")
    INT_FIELD(eos_id, "eos_token_id")
    INT_FIELD(bos_id, "bos_token_id")
    for (int l = 0; l < a->n_layers; l++)
        if (a->is_local[l] != b->is_local[l])
            return snprintf(what, n, "layer_types[%d] %s vs %s", l, a->is_local[l] ? "sliding_attention" : "full_attention",
                            b->is_local[l] ? "sliding_attention" : "full_attention"),
                   1;
#undef INT_FIELD
#undef REAL_FIELD
    return 0;
}

// Model directories: single-file and sharded round trips, stale-file cleanup,
// and rejection of checkpoints that do not hold exactly the layout's tensors.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/json.h"
#include "common/rng.h"
#include "model/checkpoint.h"
#include "model/gemma2.h"
#include "tests/check.h"
#include "tests/fixtures.h"

const char *test_program = "test_checkpoint";

// ---------------------------------------------------------------- helpers

static int make_dir(test_case *tc, char dir[64]) { return test_scratch_dir(tc, "ckpt", dir, 64); }

static void remove_dir(const char *dir) {
    gk_err err;
    dir_remove_tree(dir, &err);
}

static char *join(const char *dir, const char *name) {
    static char buf[4][256]; // a few live at once
    static int next;
    char *out = buf[next++ % 4];
    snprintf(out, 256, "%s/%s", dir, name);
    return out;
}

// d_model 8, d_ff 12, 3 layers, 4 heads, 2 kv heads, head_dim 4, vocab 16.
static void tiny_config(model_config *c) {
    memset(c, 0, sizeof *c);
    *c = (model_config){.d_model = 8,
                        .d_ff = 12,
                        .n_layers = 3,
                        .n_heads = 4,
                        .n_kv_heads = 2,
                        .head_dim = 4,
                        .vocab_size = 16,
                        .max_seq_len = 64,
                        .sliding_window = 16,
                        .query_pre_attn_scalar = 4,
                        .attn_softcap = 50,
                        .final_softcap = 30,
                        .rope_theta = 10000,
                        .rms_eps = 1e-6,
                        .pad_id = 0,
                        .eos_id = 1,
                        .bos_id = 2};
    for (int l = 0; l < c->n_layers; l++) c->is_local[l] = l % 2 == 0;
}

// A tiny model with random normal parameters.
static int random_model(test_case *tc, model_state *m, uint64_t seed) {
    gk_err err = {0};
    memset(m, 0, sizeof *m);
    tiny_config(&m->cfg);
    CHECK(tc, model_config_validate(&m->cfg, "tiny", &err) == 0, "config: %s", err.msg);
    CHECK(tc, !tc->failed && param_layout_build(&m->cfg, &m->layout, &err) == 0, "layout: %s", err.msg);
    CHECK(tc, !tc->failed && (m->params = param_buffer_alloc(&m->layout, &err)), "alloc: %s", err.msg);
    if (tc->failed) return -1;
    rng_state r;
    rng_seed(&r, seed);
    for (int p = 0; p < m->layout.n_tensors; p++)
        for (size_t i = 0; i < m->layout.tensors[p].numel; i++)
            m->params[m->layout.tensors[p].offset + i] = (float)rng_normal(&r);
    return 0;
}

// The layout's tensors as writer input (caller frees).
static st_out_tensor *layout_outs(const model_state *m) {
    st_out_tensor *outs = calloc((size_t)m->layout.n_tensors + 1, sizeof *outs);
    if (!outs) abort();
    for (int p = 0; p < m->layout.n_tensors; p++) {
        const param_tensor *t = &m->layout.tensors[p];
        outs[p] = (st_out_tensor){.name = t->name, .ndim = t->ndim, .data = m->params + t->offset};
        outs[p].shape[0] = t->shape[0];
        outs[p].shape[1] = t->shape[1];
    }
    return outs;
}

static int write_config(const char *dir, const model_state *m) {
    gk_err err;
    return model_config_save(&m->cfg, join(dir, "config.json"), "float32", &err);
}

// Writes an index mapping outs[i].name -> shard[i].
static int write_index(const char *dir, const st_out_tensor *outs, const char *const *shard, int n) {
    FILE *f = fopen(join(dir, "model.safetensors.index.json"), "w");
    if (!f) return -1;
    fprintf(f, "{\"metadata\": {\"total_size\": 0},\n \"weight_map\": {");
    for (int i = 0; i < n; i++) fprintf(f, "%s\n  \"%s\": \"%s\"", i ? "," : "", outs[i].name, shard[i]);
    fprintf(f, "\n }\n}\n");
    return fclose(f);
}

// model_load_weights must fail with a message holding both needles.
static void expect_load_fails(test_case *tc, const char *dir, const model_state *m, const char *needle1,
                              const char *needle2) {
    gk_err err = {0};
    float *buf = param_buffer_alloc(&m->layout, &err);
    int rc = model_load_weights(dir, &m->layout, buf, &err);
    CHECK(tc, rc == -1, "accepted (expected '%s')", needle1);
    CHECK(tc, rc == 0 || strstr(err.msg, needle1), "message lacks '%s': %s", needle1, err.msg);
    CHECK(tc, rc == 0 || !needle2 || strstr(err.msg, needle2), "message lacks '%s': %s", needle2, err.msg);
    free(buf);
}

static int same_params(const model_state *a, const float *b) {
    for (int p = 0; p < a->layout.n_tensors; p++) {
        const param_tensor *t = &a->layout.tensors[p];
        if (memcmp(a->params + t->offset, b + t->offset, t->numel * sizeof(float))) return 0;
    }
    return 1;
}

// RNE on the bit pattern (finite inputs): keep the high half, round the low half.
static float ref_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t hi = u >> 16, lo = u & 0xFFFF;
    if (lo > 0x8000 || (lo == 0x8000 && (hi & 1))) hi++;
    u = hi << 16;
    memcpy(&x, &u, 4);
    return x;
}

static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

// Header starts with '{' and the data with an 8-aligned offset.
static void check_framing(test_case *tc, const char *path) {
    char *bytes = NULL;
    size_t len = 0;
    gk_err err = {0};
    CHECK(tc, file_read_all(path, &bytes, &len, &err) == 0, "%s", err.msg);
    if (tc->failed) return;
    uint64_t n = len >= 9 ? get_u64((const unsigned char *)bytes) : 0;
    CHECK(tc, len >= 9 && bytes[8] == '{', "%s: header does not start with '{'", path);
    CHECK(tc, (8 + n) % 8 == 0, "%s: data offset %llu is not a multiple of 8", path, (unsigned long long)(8 + n));
    free(bytes);
}

// ---------------------------------------------------------------- round trips

static void save_load_single_f32(test_case *tc) {
    char dir[64];
    model_state m, back;
    if (make_dir(tc, dir) || random_model(tc, &m, 1)) return;
    gk_err err = {0};
    CHECK(tc, model_save_dir(dir, &m, ST_F32, 0, NULL, &err) == 0, "save: %s", err.msg);
    CHECK(tc,
          dir_entry_count(dir) == 2 && path_exists(join(dir, "model.safetensors")) && path_exists(join(dir, "config.json")),
          "expected config.json + model.safetensors");
    check_framing(tc, join(dir, "model.safetensors"));
    CHECK(tc, !tc->failed && model_load_dir(dir, &back, &err) == 0, "load: %s", err.msg);
    if (!tc->failed) {
        CHECK(tc,
              back.cfg.d_model == 8 && back.cfg.d_ff == 12 && back.cfg.n_layers == 3 && back.cfg.n_kv_heads == 2 &&
                  back.cfg.vocab_size == 16,
              "config changed");
        CHECK(tc, back.layout.n_tensors == m.layout.n_tensors && same_params(&m, back.params), "values differ");
        model_state_free(&back);
    }
    st_file f;
    CHECK(tc, !tc->failed && st_open(join(dir, "model.safetensors"), &f, &err) == 0, "open: %s", err.msg);
    if (!tc->failed) { // layout order, layout shapes, no lm_head
        CHECK(tc, f.n_tensors == (size_t)m.layout.n_tensors, "%zu tensors", f.n_tensors);
        for (size_t i = 0; i < f.n_tensors && !tc->failed; i++)
            CHECK(tc,
                  !strcmp(f.tensors[i].name, m.layout.tensors[i].name) && f.tensors[i].dtype == ST_F32 &&
                      f.tensors[i].ndim == m.layout.tensors[i].ndim &&
                      f.tensors[i].shape[0] == m.layout.tensors[i].shape[0],
                  "tensor %zu is %s", i, f.tensors[i].name);
        st_close(&f);
    }
    model_state_free(&m);
    remove_dir(dir);
}

// Checks the index against the layout and the shard files; returns the number of shards.
static int check_index(test_case *tc, const char *dir, const model_state *m, size_t elem, size_t max_bytes) {
    char *text = NULL, name[64];
    size_t len = 0;
    gk_err err = {0};
    json_doc doc;
    CHECK(tc, file_read_all(join(dir, "model.safetensors.index.json"), &text, &len, &err) == 0, "%s", err.msg);
    CHECK(tc, !tc->failed && json_parse(text, len, "index", &doc, &err) == 0, "%s", err.msg);
    free(text);
    if (tc->failed) return 0;
    const json_value *total = json_get(json_get(doc.root, "metadata"), "total_size"),
                     *map = json_get(doc.root, "weight_map");
    size_t want_total = 0;
    for (int p = 0; p < m->layout.n_tensors; p++) want_total += m->layout.tensors[p].numel * elem;
    CHECK(tc, total && total->is_integer && (size_t)total->integer == want_total, "total_size is not %zu", want_total);
    CHECK(tc, map && map->count == (size_t)m->layout.n_tensors, "weight_map size");
    int n_shards = 0;
    CHECK(tc, map->count && sscanf(map->items[0]->string, "model-00001-of-%5d.safetensors", &n_shards) == 1,
          "first shard name %s", map->count ? map->items[0]->string : "-");
    int p = 0; // shard k holds the next tensors in layout order, within the byte limit
    for (int k = 0; k < n_shards && !tc->failed; k++) {
        st_file f;
        snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", k + 1, n_shards);
        CHECK(tc, st_open(join(dir, name), &f, &err) == 0, "%s", err.msg);
        if (tc->failed) break;
        check_framing(tc, join(dir, name));
        size_t bytes = 0;
        for (size_t i = 0; i < f.n_tensors && !tc->failed; i++, p++) {
            const json_value *v = json_get(map, f.tensors[i].name);
            CHECK(tc, !strcmp(f.tensors[i].name, m->layout.tensors[p].name), "shard %d: %s out of order", k + 1,
                  f.tensors[i].name);
            CHECK(tc, v && !strcmp(v->string, name), "weight_map does not put %s in %s", f.tensors[i].name, name);
            bytes += f.tensors[i].nbytes;
        }
        CHECK(tc, bytes <= max_bytes || f.n_tensors == 1, "%s holds %zu bytes > %zu", name, bytes, max_bytes);
        st_close(&f);
    }
    CHECK(tc, p == m->layout.n_tensors, "shards hold %d of %d tensors", p, m->layout.n_tensors);
    CHECK(tc, dir_entry_count(dir) == n_shards + 2, "%d files for %d shards", dir_entry_count(dir), n_shards);
    json_free(&doc);
    return n_shards;
}

static void save_load_sharded(test_case *tc, st_dtype dtype, size_t max_bytes, int min_shards) {
    char dir[64];
    model_state m, back;
    if (make_dir(tc, dir) || random_model(tc, &m, 2)) return;
    gk_err err = {0};
    CHECK(tc, model_save_dir(dir, &m, dtype, max_bytes, NULL, &err) == 0, "save: %s", err.msg);
    CHECK(tc, !path_exists(join(dir, "model.safetensors")), "model.safetensors written with shards");
    int n = tc->failed ? 0 : check_index(tc, dir, &m, st_dtype_size(dtype), max_bytes);
    CHECK(tc, n >= min_shards, "%d shards, expected at least %d", n, min_shards);
    CHECK(tc, !tc->failed && model_load_dir(dir, &back, &err) == 0, "load: %s", err.msg);
    if (!tc->failed) {
        if (dtype == ST_BF16) // the stored values are the bf16 roundings of the saved ones
            for (size_t i = 0; i < m.layout.n_floats; i++) m.params[i] = ref_bf16_round(m.params[i]);
        CHECK(tc, same_params(&m, back.params), "reloaded values differ");
        model_state_free(&back);
    }
    char *config = NULL;
    size_t len;
    CHECK(tc,
          file_read_all(join(dir, "config.json"), &config, &len, &err) == 0 &&
              strstr(config, dtype == ST_BF16 ? "\"bfloat16\"" : "\"float32\""),
          "config torch_dtype");
    free(config);
    model_state_free(&m);
    remove_dir(dir);
}

static void save_load_sharded_f32(test_case *tc) { save_load_sharded(tc, ST_F32, 300, 3); }
static void save_load_sharded_bf16(test_case *tc) { save_load_sharded(tc, ST_BF16, 200, 3); }

static void save_removes_stale_files(test_case *tc) {
    char dir[64];
    model_state m;
    if (make_dir(tc, dir) || random_model(tc, &m, 3)) return;
    gk_err err = {0};
    FILE *keep = fopen(join(dir, "tokenizer.json"), "w");
    if (keep) fclose(keep);
    CHECK(tc, model_save_dir(dir, &m, ST_F32, 300, NULL, &err) == 0, "save: %s", err.msg);
    int many = dir_entry_count(dir);
    CHECK(tc, many > 5, "only %d files", many);
    CHECK(tc, model_save_dir(dir, &m, ST_F32, 0, NULL, &err) == 0, "save: %s", err.msg);
    CHECK(tc,
          dir_entry_count(dir) == 3 && path_exists(join(dir, "model.safetensors")) &&
              path_exists(join(dir, "tokenizer.json")),
          "single save left %d files", dir_entry_count(dir));
    CHECK(tc, model_save_dir(dir, &m, ST_F32, 300, NULL, &err) == 0, "save: %s", err.msg);
    CHECK(tc, dir_entry_count(dir) == many && !path_exists(join(dir, "model.safetensors")), "sharded save after single");
    CHECK(tc, model_save_dir(dir, &m, ST_BF16, 1000, NULL, &err) == 0, "save: %s", err.msg);
    int fewer = dir_entry_count(dir);
    CHECK(tc, fewer < many && fewer > 4, "%d files after a save with fewer shards", fewer);
    model_state back;
    CHECK(tc, !tc->failed && model_load_dir(dir, &back, &err) == 0, "load: %s", err.msg);
    if (!tc->failed) model_state_free(&back);
    CHECK(tc, path_exists(join(dir, "tokenizer.json")), "unrelated file removed");
    model_state_free(&m);
    remove_dir(dir);
}

// ---------------------------------------------------------------- rejections

// A directory with config.json and model.safetensors holding outs[0..n) as F32.
static int single_file_dir(test_case *tc, char dir[64], const model_state *m, const st_out_tensor *outs, size_t n) {
    gk_err err = {0};
    if (make_dir(tc, dir)) return -1;
    CHECK(tc, write_config(dir, m) == 0, "config");
    CHECK(tc, st_write(join(dir, "model.safetensors"), outs, n, ST_F32, &err) == 0, "write: %s", err.msg);
    return tc->failed ? -1 : 0;
}

static void reject_missing_tensor(test_case *tc) {
    char dir[64];
    model_state m;
    if (random_model(tc, &m, 4)) return;
    st_out_tensor *outs = layout_outs(&m);
    int n = m.layout.n_tensors, gone = 20;
    const char *name = outs[gone].name;
    outs[gone] = outs[n - 1];
    if (single_file_dir(tc, dir, &m, outs, (size_t)n - 1) == 0) expect_load_fails(tc, dir, &m, "missing tensor", name);
    remove_dir(dir);
    free(outs);
    model_state_free(&m);
}

static void reject_extra_tensor(test_case *tc) {
    char dir[64];
    model_state m;
    if (random_model(tc, &m, 5)) return;
    st_out_tensor *outs = layout_outs(&m);
    int n = m.layout.n_tensors;
    outs[n] = outs[n - 2]; // model.layers.2.mlp.down_proj.weight's data under a layer that does not exist
    outs[n].name = "model.layers.3.mlp.down_proj.weight";
    if (single_file_dir(tc, dir, &m, outs, (size_t)n + 1) == 0)
        expect_load_fails(tc, dir, &m, "unexpected tensor 'model.layers.3.mlp.down_proj.weight'", NULL);
    remove_dir(dir);
    free(outs);
    model_state_free(&m);
}

static void reject_wrong_shape(test_case *tc) {
    char dir[64];
    model_state m;
    if (random_model(tc, &m, 6)) return;
    st_out_tensor *outs = layout_outs(&m);
    outs[2].shape[0] = 8; // model.layers.0.self_attn.q_proj.weight [16, 8] stored transposed
    outs[2].shape[1] = 16;
    if (single_file_dir(tc, dir, &m, outs, (size_t)m.layout.n_tensors) == 0)
        expect_load_fails(tc, dir, &m, "'model.layers.0.self_attn.q_proj.weight' has shape [8, 16], expected [16, 8]",
                          NULL);
    remove_dir(dir);
    free(outs);
    model_state_free(&m);
}

// Shards A = outs[0..split_a), B = outs[split_b..n); the index maps names[i] -> shard[i].
static int two_shard_dir(test_case *tc, char dir[64], const model_state *m, const st_out_tensor *outs, int split_a,
                         int split_b, const char *const *shard, const st_out_tensor *map_outs, int map_n) {
    gk_err err = {0};
    int n = m->layout.n_tensors;
    if (make_dir(tc, dir)) return -1;
    CHECK(tc, write_config(dir, m) == 0, "config");
    CHECK(tc, st_write(join(dir, "a.safetensors"), outs, (size_t)split_a, ST_F32, &err) == 0, "%s", err.msg);
    CHECK(tc, st_write(join(dir, "b.safetensors"), outs + split_b, (size_t)(n - split_b), ST_F32, &err) == 0, "%s",
          err.msg);
    CHECK(tc, write_index(dir, map_outs, shard, map_n) == 0, "index");
    return tc->failed ? -1 : 0;
}

// Index cases: `edit` changes the weight_map (names, shard per tensor) before it is written.
typedef void (*map_edit)(st_out_tensor *names, const char **shard, int *n);

static void index_case(test_case *tc, int split_a, int split_b, map_edit edit, const char *needle1,
                       const char *needle2) {
    char dir[64];
    model_state m;
    if (random_model(tc, &m, 7)) return;
    st_out_tensor *outs = layout_outs(&m), *names = layout_outs(&m);
    int n = m.layout.n_tensors;
    const char **shard = calloc((size_t)n + 1, sizeof *shard);
    if (!shard) abort();
    for (int i = 0; i < n; i++) shard[i] = i < split_a ? "a.safetensors" : "b.safetensors";
    if (edit) edit(names, shard, &n);
    if (two_shard_dir(tc, dir, &m, outs, split_a, split_b, shard, names, n) == 0) {
        if (needle1) {
            expect_load_fails(tc, dir, &m, needle1, needle2);
        } else {
            gk_err err = {0};
            model_state back;
            CHECK(tc, model_load_dir(dir, &back, &err) == 0, "valid split rejected: %s", err.msg);
            CHECK(tc, !tc->failed && same_params(&m, back.params), "values differ");
            if (!tc->failed) model_state_free(&back);
        }
    }
    remove_dir(dir);
    free(shard);
    free(outs);
    free(names);
    model_state_free(&m);
}

static void accept_hand_written_index(test_case *tc) { index_case(tc, 10, 10, NULL, NULL, NULL); }

static void reject_tensor_in_two_shards(test_case *tc) { // tensor 10 is in a.safetensors and b.safetensors
    index_case(tc, 11, 10, NULL,
               "'model.layers.0.mlp.down_proj.weight' is in two shards, a.safetensors and b.safetensors", NULL);
}

static void drop_last(st_out_tensor *names, const char **shard, int *n) { (void)names, (void)shard, (*n)--; }
static void reject_tensor_not_in_map(test_case *tc) {
    index_case(tc, 10, 10, drop_last, "'model.norm.weight' in shard b.safetensors is not listed in weight_map", NULL);
}

static void move_first(st_out_tensor *names, const char **shard, int *n) {
    (void)names, (void)n, shard[0] = "b.safetensors";
}
static void reject_map_names_wrong_shard(test_case *tc) {
    index_case(tc, 10, 10, move_first,
               "'model.embed_tokens.weight' is in shard a.safetensors but weight_map puts it in b", NULL);
}

static void add_ghost(st_out_tensor *names, const char **shard, int *n) {
    names[*n].name = "model.layers.0.mlp.ghost.weight";
    shard[(*n)++] = "b.safetensors";
}
static void reject_map_tensor_absent(test_case *tc) {
    index_case(tc, 10, 10, add_ghost, "weight_map puts tensor 'model.layers.0.mlp.ghost.weight' in b.safetensors",
               "does not contain it");
}

static void missing_shard(st_out_tensor *names, const char **shard, int *n) {
    (void)names;
    shard[*n - 1] = "model-00003-of-00003.safetensors";
}
static void reject_missing_shard_file(test_case *tc) {
    index_case(tc, 10, 10, missing_shard, "weight_map names shard model-00003-of-00003.safetensors", "does not exist");
}

static void slash_shard(st_out_tensor *names, const char **shard, int *n) {
    (void)names, shard[*n - 1] = "sub/b.safetensors";
}
static void reject_shard_name_with_slash(test_case *tc) {
    index_case(tc, 10, 10, slash_shard, "shard name 'sub/b.safetensors' must be a plain file name", NULL);
}

static void dotdot_shard(st_out_tensor *names, const char **shard, int *n) { (void)names, shard[*n - 1] = ".."; }
static void reject_shard_name_dotdot(test_case *tc) {
    index_case(tc, 10, 10, dotdot_shard, "shard name '..' must be a plain file name", NULL);
}

// lm_head.weight next to the embedding: a copy (BF16, so compared after conversion) or a changed copy.
static void lm_head_case(test_case *tc, int change) {
    char dir[64];
    model_state m;
    if (random_model(tc, &m, 8) || make_dir(tc, dir)) return;
    st_out_tensor *outs = layout_outs(&m);
    int n = m.layout.n_tensors;
    size_t embed_n = m.layout.tensors[0].numel;
    float *head = malloc(embed_n * sizeof *head); // [V, d]
    if (!head) abort();
    memcpy(head, outs[0].data, embed_n * sizeof *head);
    if (change) head[embed_n - 1] = ref_bf16_round(head[embed_n - 1]) * 2 + 1;
    outs[n] = outs[0];
    outs[n].name = "lm_head.weight";
    outs[n].data = head;
    gk_err err = {0};
    CHECK(tc, write_config(dir, &m) == 0, "config");
    CHECK(tc, st_write(join(dir, "model.safetensors"), outs, (size_t)n + 1, ST_BF16, &err) == 0, "%s", err.msg);
    if (!tc->failed && change) {
        expect_load_fails(tc, dir, &m, "'lm_head.weight' differs from 'model.embed_tokens.weight'", "ties");
    } else if (!tc->failed) {
        model_state back;
        CHECK(tc, model_load_dir(dir, &back, &err) == 0, "tied lm_head rejected: %s", err.msg);
        if (!tc->failed) {
            for (size_t i = 0; i < m.layout.n_floats; i++) m.params[i] = ref_bf16_round(m.params[i]);
            CHECK(tc, same_params(&m, back.params), "values differ");
            model_state_free(&back);
        }
    }
    free(head);
    free(outs);
    model_state_free(&m);
    remove_dir(dir);
}

static void lm_head_tied_accepted(test_case *tc) { lm_head_case(tc, 0); }
static void lm_head_untied_rejected(test_case *tc) { lm_head_case(tc, 1); }

static void reject_no_weights(test_case *tc) {
    char dir[64];
    model_state m;
    if (random_model(tc, &m, 9) || make_dir(tc, dir)) return;
    CHECK(tc, write_config(dir, &m) == 0, "config");
    expect_load_fails(tc, dir, &m, dir, "neither model.safetensors nor model.safetensors.index.json");
    model_state back;
    gk_err err = {0};
    CHECK(tc, model_load_dir(dir, &back, &err) == -1 && !back.params && !back.layout.tensors, "state not cleared");
    remove(join(dir, "config.json"));
    CHECK(tc, model_load_dir(dir, &back, &err) == -1 && strstr(err.msg, "config.json"), "no config: %s", err.msg);
    model_state_free(&m);
    remove_dir(dir);
}

// ---------------------------------------------------------------- hand-built F16 / BF16 files

typedef struct {
    const char *name, *dtype;
    size_t elem, numel;
    int ndim;
    size_t shape[2];
    const unsigned char *data;
} raw_tensor;

// Writes a safetensors file byte by byte; the data starts at an odd offset (unaligned).
static int write_raw_st(const char *path, const raw_tensor *ts, int n) {
    size_t cap = 256 * (size_t)n + 64, len = 0, offset = 0;
    char *h = malloc(cap);
    if (!h) abort();
    len += (size_t)snprintf(h + len, cap - len, "{");
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(h + len, cap - len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%zu", i ? "," : "",
                                ts[i].name, ts[i].dtype, ts[i].shape[0]);
        if (ts[i].ndim == 2) len += (size_t)snprintf(h + len, cap - len, ",%zu", ts[i].shape[1]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", offset,
                                offset + ts[i].numel * ts[i].elem);
        offset += ts[i].numel * ts[i].elem;
    }
    len += (size_t)snprintf(h + len, cap - len, (8 + len + 1) % 2 ? "}" : "} ");
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned char n8[8];
    for (int i = 0; i < 8; i++) n8[i] = (unsigned char)((uint64_t)len >> (8 * i));
    fwrite(n8, 1, 8, f);
    fwrite(h, 1, len, f);
    for (int i = 0; i < n; i++) fwrite(ts[i].data, ts[i].elem, ts[i].numel, f);
    free(h);
    return fclose(f);
}

// Independent decoders from the IEEE field definitions.
static float ref_f16(uint16_t h) {
    int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
    double v = exp == 0 ? ldexp(mant, -24) : ldexp(1024 + mant, exp - 25);
    return (float)(sign ? -v : v);
}

static float ref_bf16(uint16_t h) {
    int sign = h >> 15, exp = (h >> 7) & 255, mant = h & 127;
    double v = exp == 0 ? ldexp(mant, -133) : ldexp(128 + mant, exp - 134);
    return (float)(sign ? -v : v);
}

// Tensor p stored as F16 (p % 3 == 0), BF16 (p % 3 == 1) or F32, from random finite bit patterns.
// weights_point ties every field to the tensor of its Hugging Face name (a
// list written here by hand, not the layout's own table).
static void weights_point_ties_fields_by_name(test_case *tc) {
    model_state m;
    if (random_model(tc, &m, 5) != 0) return;
    weights_f32 w;
    weights_point_f32(&m.layout, m.params, &w);
    const param_tensor *embed = param_find(&m.layout, "model.embed_tokens.weight");
    const param_tensor *norm = param_find(&m.layout, "model.norm.weight");
    CHECK(tc, embed && w.embed == m.params + embed->offset, "embed");
    CHECK(tc, norm && w.final_norm == m.params + norm->offset, "final_norm");
    for (int l = 0; l < m.cfg.n_layers; l++) {
        const layer_weights_f32 *lw = &w.layers[l];
        const struct {
            const float *field;
            const char *suffix;
        } ties[] = {{lw->input_norm, "input_layernorm"},           {lw->wq, "self_attn.q_proj"},
                    {lw->wk, "self_attn.k_proj"},                  {lw->wv, "self_attn.v_proj"},
                    {lw->wo, "self_attn.o_proj"},                  {lw->post_attn_norm, "post_attention_layernorm"},
                    {lw->pre_ffw_norm, "pre_feedforward_layernorm"}, {lw->w_gate, "mlp.gate_proj"},
                    {lw->w_up, "mlp.up_proj"},                     {lw->w_down, "mlp.down_proj"},
                    {lw->post_ffw_norm, "post_feedforward_layernorm"}};
        for (size_t i = 0; i < sizeof ties / sizeof ties[0]; i++) {
            char name[96];
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, ties[i].suffix);
            const param_tensor *t = param_find(&m.layout, name);
            CHECK(tc, t && ties[i].field == m.params + t->offset, "%s is not its field", name);
        }
    }
    model_state_free(&m);
}

static void load_f16_bf16_hand_built(test_case *tc) {
    char dir[64];
    model_state m;
    if (random_model(tc, &m, 10) || make_dir(tc, dir)) return;
    int n = m.layout.n_tensors;
    raw_tensor *ts = calloc((size_t)n, sizeof *ts);
    unsigned char *bytes = malloc(m.layout.n_floats * 4);
    float *want = param_buffer_alloc(&m.layout, NULL), *got = param_buffer_alloc(&m.layout, NULL);
    if (!ts || !bytes || !want || !got) abort();
    rng_state r;
    rng_seed(&r, 99);
    size_t at = 0;
    for (int p = 0; p < n; p++) {
        const param_tensor *t = &m.layout.tensors[p];
        int kind = p % 3;
        ts[p] = (raw_tensor){t->name,           kind == 0 ? "F16" : kind == 1 ? "BF16" : "F32",
                             kind == 2 ? 4 : 2, t->numel,
                             t->ndim,           {t->shape[0], t->shape[1]},
                             bytes + at};
        for (size_t i = 0; i < t->numel; i++, at += ts[p].elem) {
            uint32_t u = (uint32_t)rng_next(&r);
            float *w = &want[t->offset + i];
            if (kind == 0) {
                u &= 0xFFFF;
                if (((u >> 10) & 31) == 31) u &= ~0x4000u; // keep it finite
                *w = ref_f16((uint16_t)u);
            } else if (kind == 1) {
                u &= 0xFFFF;
                if (((u >> 7) & 255) == 255) u &= ~0x4000u;
                *w = ref_bf16((uint16_t)u);
            } else {
                *w = (float)ldexp((double)(u & 0xFFFFFF) - 8388608.0, -20); // exact in float32
                memcpy(&u, w, 4);
            }
            for (size_t b = 0; b < ts[p].elem; b++) bytes[at + b] = (unsigned char)(u >> (8 * b));
        }
    }
    gk_err err = {0};
    CHECK(tc, write_config(dir, &m) == 0, "config");
    CHECK(tc, write_raw_st(join(dir, "model.safetensors"), ts, n) == 0, "write");
    CHECK(tc, !tc->failed && model_load_weights(dir, &m.layout, got, &err) == 0, "load: %s", err.msg);
    for (int p = 0; p < n && !tc->failed; p++) {
        const param_tensor *t = &m.layout.tensors[p];
        for (size_t i = 0; i < t->numel && !tc->failed; i++) {
            float a = got[t->offset + i], b = want[t->offset + i];
            CHECK(tc, a == b && signbit(a) == signbit(b), "%s[%zu] (%s) = %a, expected %a", t->name, i, ts[p].dtype, a,
                  b);
        }
    }
    // The same file with one tensor as I32 is rejected, naming it.
    ts[5].dtype = "I32"; // tensor 5 was F32: same byte size
    CHECK(tc, !tc->failed && write_raw_st(join(dir, "model.safetensors"), ts, n) == 0, "write");
    if (!tc->failed) expect_load_fails(tc, dir, &m, "model.layers.0.self_attn.o_proj.weight", "I32");
    free(ts);
    free(bytes);
    free(want);
    free(got);
    model_state_free(&m);
    remove_dir(dir);
}

int main(void) {
    test_run("save_load_single_f32", save_load_single_f32);
    test_run("save_load_sharded_f32", save_load_sharded_f32);
    test_run("save_load_sharded_bf16", save_load_sharded_bf16);
    test_run("save_removes_stale_files", save_removes_stale_files);
    test_run("reject_missing_tensor", reject_missing_tensor);
    test_run("reject_extra_tensor", reject_extra_tensor);
    test_run("reject_wrong_shape", reject_wrong_shape);
    test_run("accept_hand_written_index", accept_hand_written_index);
    test_run("reject_tensor_in_two_shards", reject_tensor_in_two_shards);
    test_run("reject_tensor_not_in_map", reject_tensor_not_in_map);
    test_run("reject_map_names_wrong_shard", reject_map_names_wrong_shard);
    test_run("reject_map_tensor_absent", reject_map_tensor_absent);
    test_run("reject_missing_shard_file", reject_missing_shard_file);
    test_run("reject_shard_name_with_slash", reject_shard_name_with_slash);
    test_run("reject_shard_name_dotdot", reject_shard_name_dotdot);
    test_run("lm_head_tied_accepted", lm_head_tied_accepted);
    test_run("lm_head_untied_rejected", lm_head_untied_rejected);
    test_run("reject_no_weights", reject_no_weights);
    test_run("load_f16_bf16_hand_built", load_f16_bf16_hand_built);
    test_run("weights_point_ties_fields_by_name", weights_point_ties_fields_by_name);
    return test_main_result();
}

// The tokenizers against reference ids, offsets and decodes from the Python
// libraries (scripts/reference/tokenizer_fixtures.py): the real Gemma 3
// tokenizer.json (tokenizers), two SentencePiece BPE models (sentencepiece),
// small tokenizer.json files for the features Gemma's do not use, and the UTF-8
// repair (bytes.decode("utf-8", errors="replace")).
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "data/tokenizer/tokenizer.h"
#include "data/tokenizer/tokenizer_json.h"
#include "tests/check.h"

const char *test_program = "test_tokenizer";

#define GEMMA3_JSON "../shared/data/tokenizers/gemma3/tokenizer.json"

// ---------------------------------------------------------------- fixture helpers

typedef struct {
    char *data;
    size_t len;
} bytes;

static bytes read_fixture(test_case *tc, const char *name) {
    bytes b = {0};
    gk_err err = {0};
    if (file_read_all(fixture_path(name), &b.data, &b.len, &err)) CHECK(tc, 0, "%s", err.msg);
    return b;
}

// .ids: unsigned LEB128 varints.
static uint32_t *read_varints(test_case *tc, const char *name, size_t *n) {
    bytes b = read_fixture(tc, name);
    uint32_t *v = malloc((b.len + 1) * sizeof *v);
    *n = 0;
    for (size_t i = 0; v && i < b.len;) {
        uint32_t x = 0;
        for (int shift = 0; i < b.len; shift += 7) {
            unsigned char c = (unsigned char)b.data[i++];
            x |= (uint32_t)(c & 0x7f) << shift;
            if (!(c & 0x80)) break;
        }
        v[(*n)++] = x;
    }
    free(b.data);
    return v;
}

// .offs: per token zigzag(start - previous start), end - start.
static size_t *read_offsets(test_case *tc, const char *name, size_t *n) {
    size_t m;
    uint32_t *v = read_varints(tc, name, &m);
    size_t *o = malloc((m + 1) * sizeof *o), prev = 0;
    for (size_t i = 0; o && v && i + 1 < m; i += 2) {
        long long d = v[i] & 1 ? -(long long)(v[i] >> 1) - 1 : (long long)(v[i] >> 1);
        o[i] = (size_t)((long long)prev + d);
        o[i + 1] = o[i] + v[i + 1];
        prev = o[i];
    }
    free(v);
    *n = m / 2;
    return o;
}

static bytes from_hex(const char *hex) {
    size_t n = strlen(hex) / 2;
    bytes b = {malloc(n + 1), n};
    for (size_t i = 0; i < n; i++) {
        unsigned x;
        sscanf(hex + 2 * i, "%2x", &x);
        b.data[i] = (char)x;
    }
    b.data[n] = 0;
    return b;
}

static int32_t *json_ids(const json_value *a, size_t *n) {
    *n = a && a->type == JSON_ARRAY ? a->count : 0;
    int32_t *ids = malloc((*n + 1) * sizeof *ids);
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)a->items[i]->integer;
    return ids;
}

// Calls fn on each element of the file's top-level array (each parsed as a small tree).
static void each_element(test_case *tc, const char *name, void (*fn)(test_case *, const json_value *, void *), void *ctx) {
    bytes b = read_fixture(tc, name);
    if (!b.data) return;
    gk_err err = {0};
    tj_reader r;
    tj_init(&r, b.data, b.len, name, &err);
    bool first = true;
    int rc = tj_open(&r, '[');
    while (rc == 0 && (rc = tj_next(&r, ']', &first)) == 1 && !tc->failed) {
        json_doc d;
        int line;
        rc = tj_tree(&r, &d, &line);
        if (rc == 0) {
            fn(tc, d.root, ctx);
            json_free(&d);
            rc = 0;
        }
    }
    CHECK(tc, rc >= 0, "%s", err.msg);
    tj_free(&r);
    free(b.data);
}

static tokenizer *load(test_case *tc, const char *path) {
    tokenizer *t = NULL;
    gk_err err = {0};
    if (tokenizer_load(path, &t, &err)) CHECK(tc, 0, "%s", err.msg);
    return t;
}

// The 33 MB file is loaded once for all cases (freed at the end of main).
static tokenizer *gemma3;

static tokenizer *load_gemma3(test_case *tc) {
    if (!path_exists(GEMMA3_JSON)) {
        SKIP(tc, "%s is absent (CI clones ../shared beside the repository)", GEMMA3_JSON);
        return NULL;
    }
    if (!gemma3) gemma3 = load(tc, GEMMA3_JSON);
    return gemma3;
}

// Compares an encoding with expected ids (and offsets when given); names the first difference.
static void check_encoding(test_case *tc, const char *what, const tokenizer *t, const bytes *text, bool add_bos,
                           const int32_t *want, size_t n_want, const size_t *want_offs) {
    int32_t *ids;
    size_t *offs, n;
    gk_err err = {0};
    if (tokenizer_encode(t, text->data, text->len, add_bos, &ids, &offs, &n, &err)) {
        CHECK(tc, 0, "%s: %s", what, err.msg);
        return;
    }
    size_t i = 0;
    while (i < n && i < n_want && ids[i] == want[i]) i++;
    CHECK(tc, i == n && n == n_want, "%s: %zu ids, expected %zu; first difference at token %zu: %d vs %d (byte %zu)",
          what, n, n_want, i, i < n ? ids[i] : -1, i < n_want ? want[i] : -1, i < n ? offs[2 * i] : 0);
    for (size_t k = 0; want_offs && !tc->failed && k < n; k++)
        CHECK(tc, offs[2 * k] == want_offs[2 * k] && offs[2 * k + 1] == want_offs[2 * k + 1],
              "%s: token %zu (id %d) has bytes [%zu, %zu), expected [%zu, %zu)", what, k, ids[k], offs[2 * k],
              offs[2 * k + 1], want_offs[2 * k], want_offs[2 * k + 1]);
    free(ids);
    free(offs);
}

static void check_mixed(test_case *tc, tokenizer *t, const char *base) {
    char ids_name[128], offs_name[128];
    snprintf(ids_name, sizeof ids_name, "tokenizer/%s_mixed.ids", base);
    snprintf(offs_name, sizeof offs_name, "tokenizer/%s_mixed.offs", base);
    bytes text = read_fixture(tc, "tokenizer/mixed.txt");
    size_t n, n_offs;
    uint32_t *want = read_varints(tc, ids_name, &n);
    size_t *offs = read_offsets(tc, offs_name, &n_offs);
    if (text.data && want && offs) {
        CHECK(tc, n == n_offs, "%s: %zu ids but %zu offsets", base, n, n_offs);
        check_encoding(tc, "mixed.txt", t, &text, false, (const int32_t *)want, n, offs);
    }
    free(text.data);
    free(want);
    free(offs);
}

// decode(encode(x)) == x after the UTF-8 repair, with U+2581 read back as a space.
static void check_round_trip(test_case *tc, const tokenizer *t, const bytes *text) {
    gk_err err = {0};
    char *fixed, *out;
    size_t fixed_len, n, out_len;
    int32_t *ids;
    if (tokenizer_repair_utf8(text->data, text->len, &fixed, &fixed_len, &err) ||
        tokenizer_encode(t, text->data, text->len, false, &ids, NULL, &n, &err)) {
        CHECK(tc, 0, "%s", err.msg);
        return;
    }
    const char *s = fixed ? fixed : text->data;
    size_t len = fixed ? fixed_len : text->len, k = 0;
    char *want = malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        if (i + 2 < len && !memcmp(s + i, "\xE2\x96\x81", 3)) {
            want[k++] = ' ';
            i += 2;
        } else {
            want[k++] = s[i];
        }
    }
    if (tokenizer_decode(t, ids, n, false, &out, &out_len, &err)) {
        CHECK(tc, 0, "%s", err.msg);
    } else {
        size_t i = 0;
        while (i < k && i < out_len && want[i] == out[i]) i++;
        CHECK(tc, out_len == k && i == k, "decode(encode(text)) differs from the text at byte %zu of %zu (%zu decoded)", i,
              k, out_len);
        free(out);
    }
    free(want);
    free(fixed);
    free(ids);
}

// ---------------------------------------------------------------- UTF-8 repair

static void repair_case(test_case *tc, const json_value *v, void *ctx) {
    (void)ctx;
    bytes in = from_hex(json_get(v, "in_hex")->string), want = from_hex(json_get(v, "out_hex")->string);
    char *out;
    size_t n;
    gk_err err = {0};
    int rc = tokenizer_repair_utf8(in.data, in.len, &out, &n, &err);
    const char *got = out ? out : in.data;
    size_t got_len = out ? n : in.len;
    CHECK(tc, rc == 0 && got_len == want.len && !memcmp(got, want.data, want.len), "repair of %s differs from Python's",
          json_get(v, "in_hex")->string);
    free(out);
    free(in.data);
    free(want.data);
}

static void utf8_repair(test_case *tc) { each_element(tc, "tokenizer/utf8_repair.json", repair_case, NULL); }

// ---------------------------------------------------------------- Gemma 3 tokenizer.json

static void gemma3_mixed(test_case *tc) {
    tokenizer *t = load_gemma3(tc);
    if (!t) return;
    check_mixed(tc, t, "gemma3");
}

static void encode_case(test_case *tc, const tokenizer *t, const json_value *c, const char *what) {
    bytes in = from_hex(json_get(c, "input_hex")->string);
    const json_value *o = json_get(c, "offsets");
    size_t n;
    int32_t *want = json_ids(json_get(c, "ids"), &n);
    size_t *offs = malloc((2 * n + 1) * sizeof *offs);
    for (size_t i = 0; i < n; i++)
        offs[2 * i] = (size_t)o->items[i]->items[0]->integer, offs[2 * i + 1] = (size_t)o->items[i]->items[1]->integer;
    char name[256];
    snprintf(name, sizeof name, "%s: input %.80s (add_bos %d)", what, json_get(c, "input_hex")->string,
             json_get(c, "add_bos")->boolean);
    check_encoding(tc, name, t, &in, json_get(c, "add_bos")->boolean, want, n, offs);
    free(in.data);
    free(want);
    free(offs);
}

static void decode_case(test_case *tc, const tokenizer *t, const json_value *c, const char *what) {
    size_t n, len;
    int32_t *ids = json_ids(json_get(c, "ids"), &n);
    const json_value *skip = json_get(c, "skip_special");
    bytes want = from_hex(json_get(c, "text_hex")->string);
    char *text;
    gk_err err = {0};
    if (tokenizer_decode(t, ids, n, skip && skip->boolean, &text, &len, &err)) {
        CHECK(tc, 0, "%s: decode: %s", what, err.msg);
    } else {
        CHECK(tc, len == want.len && !memcmp(text, want.data, len), "%s: decode of %zu ids (skip_special %d) gives "
              "\"%.60s\", expected \"%.60s\"", what, n, skip && skip->boolean, text, want.data);
        free(text);
    }
    free(ids);
    free(want.data);
}

static void gemma3_cases(test_case *tc) {
    tokenizer *t = load_gemma3(tc);
    if (!t) return;
    bytes b = read_fixture(tc, "tokenizer/gemma3_cases.json");
    json_doc d = {0};
    gk_err err = {0};
    if (b.data && json_parse(b.data, b.len, "gemma3_cases.json", &d, &err) == 0) {
        const json_value *enc = json_get(d.root, "encode"), *dec = json_get(d.root, "decode");
        for (size_t i = 0; i < enc->count; i++) encode_case(tc, t, enc->items[i], "gemma3");
        for (size_t i = 0; i < dec->count; i++) decode_case(tc, t, dec->items[i], "gemma3");
        const json_value *ids = json_get(d.root, "token_ids");
        for (size_t i = 0; i < ids->count; i++)
            CHECK(tc, tokenizer_token_id(t, ids->keys[i]) == ids->items[i]->integer, "token_id(\"%s\") = %d, expected %lld",
                  ids->keys[i], tokenizer_token_id(t, ids->keys[i]), ids->items[i]->integer);
        CHECK(tc, tokenizer_vocab_size(t) == json_get(d.root, "vocab_size")->integer, "vocab size %d", tokenizer_vocab_size(t));
        CHECK(tc, !strcmp(tokenizer_sha256(t), json_get(d.root, "sha256")->string), "sha256 %s", tokenizer_sha256(t));
        CHECK(tc, tokenizer_bos_id(t) == json_get(d.root, "bos_id")->integer && tokenizer_eos_id(t) == json_get(d.root, "eos_id")->integer &&
                      tokenizer_pad_id(t) == json_get(d.root, "pad_id")->integer && tokenizer_unk_id(t) == json_get(d.root, "unk_id")->integer,
              "bos/eos/pad/unk %d %d %d %d", tokenizer_bos_id(t), tokenizer_eos_id(t), tokenizer_pad_id(t), tokenizer_unk_id(t));
        CHECK(tc, tokenizer_kind(t) == TOKENIZER_HF_JSON, "kind %d", tokenizer_kind(t));
        size_t len;
        const char *s = tokenizer_token_text(t, 105, &len);
        CHECK(tc, s && len == 15 && !memcmp(s, "<start_of_turn>", 15), "token_text(105)");
        json_free(&d);
    } else if (b.data) {
        CHECK(tc, 0, "%s", err.msg);
    }
    free(b.data);
}

static void gemma3_round_trip(test_case *tc) {
    tokenizer *t = load_gemma3(tc);
    if (!t) return;
    bytes text = read_fixture(tc, "tokenizer/mixed.txt");
    if (text.data) check_round_trip(tc, t, &text);
    free(text.data);
}

// ---------------------------------------------------------------- SentencePiece models

static void spm_mixed(test_case *tc) {
    const char *names[] = {"spm_bpe", "spm_bpe_defaults"};
    for (int i = 0; i < 2 && !tc->failed; i++) {
        char path[256];
        snprintf(path, sizeof path, "tokenizer/%s.model", names[i]);
        tokenizer *t = load(tc, fixture_path(path));
        if (!t) return;
        check_mixed(tc, t, names[i]);
        tokenizer_free(t);
    }
}

static void spm_model_cases(test_case *tc, const json_value *m, void *ctx) {
    (void)ctx;
    char name[300];
    snprintf(name, sizeof name, "tokenizer/%s", json_get(m, "model")->string);
    tokenizer *t = load(tc, fixture_path(name));
    if (!t) return;
    const json_value *enc = json_get(m, "encode"), *dec = json_get(m, "decode");
    for (size_t i = 0; i < enc->count; i++) encode_case(tc, t, enc->items[i], name);
    for (size_t i = 0; i < dec->count; i++) decode_case(tc, t, dec->items[i], name);
    CHECK(tc, tokenizer_vocab_size(t) == json_get(m, "vocab_size")->integer, "%s: vocab size %d", name, tokenizer_vocab_size(t));
    CHECK(tc, !strcmp(tokenizer_sha256(t), json_get(m, "sha256")->string), "%s: sha256 %s", name, tokenizer_sha256(t));
    CHECK(tc, tokenizer_bos_id(t) == json_get(m, "bos_id")->integer && tokenizer_eos_id(t) == json_get(m, "eos_id")->integer &&
                  tokenizer_pad_id(t) == json_get(m, "pad_id")->integer && tokenizer_unk_id(t) == json_get(m, "unk_id")->integer,
          "%s: bos/eos/pad/unk %d %d %d %d", name, tokenizer_bos_id(t), tokenizer_eos_id(t), tokenizer_pad_id(t),
          tokenizer_unk_id(t));
    CHECK(tc, tokenizer_token_id(t, "<start_of_turn>") >= 0 && tokenizer_token_id(t, "no such piece") == -1,
          "%s: token_id lookups", name);
    CHECK(tc, tokenizer_kind(t) == TOKENIZER_SPM_MODEL, "%s: kind", name);
    tokenizer_free(t);
}

static void spm_cases(test_case *tc) { each_element(tc, "tokenizer/spm_cases.json", spm_model_cases, NULL); }

// spm_bpe (identity rules, no dummy prefix, byte fallback) loses nothing but U+2581.
static void spm_round_trip(test_case *tc) {
    tokenizer *t = load(tc, fixture_path("tokenizer/spm_bpe.model"));
    bytes text = read_fixture(tc, "tokenizer/mixed.txt");
    if (t && text.data) check_round_trip(tc, t, &text);
    free(text.data);
    tokenizer_free(t);
}

// ---------------------------------------------------------------- tokenizer.json features

static void feature_case(test_case *tc, const json_value *v, void *ctx) {
    (void)ctx;
    const char *name = json_get(v, "name")->string;
    const json_value *json = json_get(v, "tokenizer_json");
    tokenizer *t = NULL;
    gk_err err = {0};
    if (tokenizer_load_bytes(json->string, json->length, name, &t, &err)) {
        CHECK(tc, 0, "%s: %s", name, err.msg);
        return;
    }
    const json_value *enc = json_get(v, "encode"), *dec = json_get(v, "decode");
    for (size_t i = 0; i < enc->count; i++) encode_case(tc, t, enc->items[i], name);
    for (size_t i = 0; i < dec->count; i++) decode_case(tc, t, dec->items[i], name);
    tokenizer_free(t);
}

static void hf_features(test_case *tc) { each_element(tc, "tokenizer/hf_features.json", feature_case, NULL); }

// ---------------------------------------------------------------- threads

// Paragraphs encoded on many threads at once equal the one-thread encodings.
static void parallel_encode(test_case *tc) {
    tokenizer *t = load(tc, fixture_path("tokenizer/spm_bpe.model"));
    tokenizer *g = path_exists(GEMMA3_JSON) ? load_gemma3(tc) : NULL;
    bytes text = read_fixture(tc, "tokenizer/mixed.txt");
    if (!t || !text.data) goto out;
    size_t n_docs = 0, starts[4096], lens[4096];
    for (size_t at = 0; at < text.len && n_docs < 4096;) {
        const char *end = memmem(text.data + at, text.len - at, "\n\n", 2);
        size_t stop = end ? (size_t)(end - text.data) : text.len;
        starts[n_docs] = at, lens[n_docs++] = stop - at;
        at = stop + 2;
    }
    const tokenizer *tks[2] = {t, g};
    for (int k = 0; k < 2 && tks[k]; k++) {
        size_t *counts = calloc(n_docs, sizeof *counts);
        uint64_t *sums = calloc(n_docs, sizeof *sums);
        int failures = 0;
        for (int pass = 0; pass < 2; pass++) {
#pragma omp parallel for schedule(dynamic, 4) num_threads(pass ? 4 : 1) reduction(+ : failures)
            for (size_t i = 0; i < n_docs; i++) {
                int32_t *ids;
                size_t *offs, n;
                gk_err err = {0};
                if (tokenizer_encode(tks[k], text.data + starts[i], lens[i], true, &ids, &offs, &n, &err)) {
                    failures++;
                    continue;
                }
                uint64_t h = 1469598103934665603ull;
                for (size_t j = 0; j < n; j++) h = (h ^ (uint64_t)ids[j] ^ (uint64_t)offs[2 * j] << 32) * 1099511628211ull;
                if (pass == 0) counts[i] = n, sums[i] = h;
                else if (counts[i] != n || sums[i] != h) failures++;
                free(ids);
                free(offs);
            }
        }
        CHECK(tc, failures == 0, "%d of %zu documents differ between 1 and 4 threads", failures, n_docs);
        free(counts);
        free(sums);
    }
out:
    free(text.data);
    tokenizer_free(t);
}

int main(void) {
    test_run("utf8_repair_as_python", utf8_repair);
    test_run("gemma3_json_mixed_text", gemma3_mixed);
    test_run("gemma3_json_cases", gemma3_cases);
    test_run("gemma3_json_round_trip", gemma3_round_trip);
    test_run("spm_models_mixed_text", spm_mixed);
    test_run("spm_models_cases", spm_cases);
    test_run("spm_bpe_round_trip", spm_round_trip);
    test_run("hf_json_features", hf_features);
    test_run("parallel_encode", parallel_encode);
    tokenizer_free(gemma3);
    return test_main_result();
}

// Tokenizer files that must be rejected (malformed tokenizer.json, truncated or
// garbled tokenizer.model), and a fuzz loop: random and mutated text through
// every tokenizer, checking ids, offsets and decode(encode(x)) — meant to run
// under the sanitizer build as well.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "data/tokenizer/tokenizer.h"
#include "tests/check.h"

const char *test_program = "test_tokenizer_robust";

#define GEMMA3_JSON "../shared/data/tokenizers/gemma3/tokenizer.json"

// ---------------------------------------------------------------- malformed tokenizer.json

static const char BASE_JSON[] =
    "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\n"
    "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
    "\"normalized\":false,\"special\":true},\n"
    "{\"id\":1,\"content\":\"<bos>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,"
    "\"special\":true}],\n"
    "\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xE2\x96\x81\"},\n"
    "\"pre_tokenizer\":null,\n"
    "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<bos>\",\"type_id\":0}},"
    "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{\"<bos>\":{\"id\":\"<bos>\",\"ids\":[1],"
    "\"tokens\":[\"<bos>\"]}}},\n"
    "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\xE2\x96\x81\"},"
    "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]},\n"
    "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\",\"continuing_subword_prefix\":null,"
    "\"end_of_word_suffix\":null,\"fuse_unk\":true,\"byte_fallback\":false,\"ignore_merges\":false,\n"
    "\"vocab\":{\"<unk>\":0,\"<bos>\":1,\"a\":2,\"b\":3,\"ab\":4,\"\xE2\x96\x81\":5,\"\xE2\x96\x81" "ab\":6},\n"
    "\"merges\":[[\"a\",\"b\"],[\"\xE2\x96\x81\",\"ab\"]]}}\n";

// BASE_JSON with the first `from` replaced by `to` (the whole text when from is NULL).
static char *variant(const char *from, const char *to) {
    if (!from) return strdup(to);
    const char *at = strstr(BASE_JSON, from);
    if (!at) return NULL;
    size_t a = (size_t)(at - BASE_JSON), nf = strlen(from), nt = strlen(to), n = strlen(BASE_JSON);
    char *s = malloc(n - nf + nt + 1);
    memcpy(s, BASE_JSON, a);
    memcpy(s + a, to, nt);
    memcpy(s + a + nt, BASE_JSON + a + nf, n - a - nf + 1);
    return s;
}

static void base_json_loads(test_case *tc) {
    tokenizer *t;
    gk_err err = {0};
    if (tokenizer_load_bytes(BASE_JSON, strlen(BASE_JSON), "base.json", &t, &err)) {
        CHECK(tc, 0, "%s", err.msg);
        return;
    }
    int32_t *ids;
    size_t n;
    CHECK(tc, tokenizer_encode(t, "ab ab", 5, true, &ids, NULL, &n, &err) == 0, "%s", err.msg);
    CHECK(tc, n == 3 && ids[0] == 1 && ids[1] == 4 && ids[2] == 6, "\"ab ab\" -> %zu ids", n);
    free(ids);
    CHECK(tc, tokenizer_encode(t, NULL, 0, false, &ids, NULL, &n, &err) == 0 && n == 0 && ids, "empty text");
    free(ids);
    tokenizer_free(t);
    // the merges before the vocab (read after it)
    const char *v = strstr(BASE_JSON, "\"vocab\""), *m = strstr(BASE_JSON, "\"merges\""), *end = strstr(m, "]]}");
    size_t n_base = strlen(BASE_JSON), n_v = (size_t)(m - v), n_m = (size_t)(end + 2 - m);
    char *swapped = malloc(n_base + 2);
    size_t at = (size_t)(v - BASE_JSON);
    memcpy(swapped, BASE_JSON, at);
    memcpy(swapped + at, m, n_m);
    memcpy(swapped + at + n_m, ",", 1);
    memcpy(swapped + at + n_m + 1, v, n_v - 2); // without ",\n"
    strcpy(swapped + at + n_m + 1 + n_v - 2, end + 2);
    if (tokenizer_load_bytes(swapped, strlen(swapped), "swapped.json", &t, &err)) {
        CHECK(tc, 0, "%s", err.msg);
    } else {
        CHECK(tc, tokenizer_encode(t, "ab ab", 5, true, &ids, NULL, &n, &err) == 0 && n == 3 && ids[2] == 6,
              "merges before vocab: %zu ids", n);
        free(ids);
        tokenizer_free(t);
    }
    free(swapped);
}

static void rejects_bad_json(test_case *tc) {
    static const struct {
        const char *from, *to, *want;
    } cases[] = {
        {"\"merges\":[[\"a\"", "\"merges\":[[\"a", "invalid JSON"},
        {NULL, "[1, 2]", "top level must be a JSON object"},
        {NULL, "{\"model\": 5}", "model must be a JSON object"},
        {"\"type\":\"BPE\"", "\"type\":\"WordPiece\"", "model.type \"WordPiece\" is not supported"},
        {"\"type\":\"BPE\"", "\"type\":5", "model.type must be a string or null, not number"},
        {"\"type\":\"Replace\"", "\"type\":[1]", "normalizer type (none) is not supported"},
        {"\"b\":3", "\"b\":2", "id 2 is given to both \"a\" and \"b\""},
        {"\"ab\":4", "\"ab\":4,\"a\":7", "token \"a\" appears twice"},
        {"\"a\":2", "\"a\":\"2\"", "expected an integer"},
        {"\"a\":2", "\"a\":-2", "outside"},
        {"\"a\":2", "\"\xff\":2", "invalid UTF-8"},
        {"[\"\xE2\x96\x81\",\"ab\"]", "[\"\xE2\x96\x81\",\"zz\"]", "merges[1]: token \"zz\" is not in model.vocab"},
        {"[\"\xE2\x96\x81\",\"ab\"]", "[\"b\",\"a\"]", "\"ba\" is not in model.vocab"},
        {"[\"\xE2\x96\x81\",\"ab\"]", "\"\xE2\x96\x81 ab\"", "strings and pairs are mixed"},
        {"[\"\xE2\x96\x81\",\"ab\"]", "[\"\xE2\x96\x81\",\"ab\",\"b\"]", "pair of two token strings"},
        {"\"merges\":[[\"a\",\"b\"],", "\"merges\":[\"a  b\",", "not two tokens separated by one space"},
        {",\n\"merges\":[[\"a\",\"b\"],[\"\xE2\x96\x81\",\"ab\"]]", "", "model.merges is missing"},
        {"{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xE2\x96\x81\"}", "{\"type\":\"NFKC\"}",
         "normalizer type NFKC is not supported"},
        {"\"pattern\":{\"String\":\" \"}", "\"pattern\":{\"Regex\":\" \"}", "Regex pattern is not supported"},
        {"\"pre_tokenizer\":null", "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}", "pre_tokenizer type ByteLevel"},
        {"{\"type\":\"ByteFallback\"}", "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}",
         "decoder type Strip is not supported"},
        {"\"type\":\"TemplateProcessing\"", "\"type\":\"RobertaProcessing\"", "post_processor type RobertaProcessing"},
        {"{\"Sequence\":{\"id\":\"A\"", "{\"Sequence\":{\"id\":\"B\"", "only the sequence $A"},
        {"\"ids\":[1]", "\"ids\":[99]", "id 99 is not in the vocabulary"},
        {"{\"id\":1,\"content\":\"<bos>\"", "{\"id\":9,\"content\":\"<bos>\"", "\"<bos>\" has id 9, but model.vocab gives it id 1"},
        {"{\"id\":1,\"content\":\"<bos>\"", "{\"id\":1,\"content\":\"\"", "content must be a non-empty string"},
        {"{\"id\":1,\"content\":\"<bos>\"", "{\"id\":0,\"content\":\"<unk>\"", "\"<unk>\" appears twice"},
        {"\"unk_token\":\"<unk>\"", "\"unk_token\":\"<nope>\"", "unk_token \"<nope>\" is not in model.vocab"},
        {"\"dropout\":null", "\"dropout\":0.1", "model.dropout must be null or 0"},
        {"\"continuing_subword_prefix\":null", "\"continuing_subword_prefix\":\"##\"", "continuing_subword_prefix"},
        {"\"fuse_unk\":true", "\"fuse_unk\":\"yes\"", "model.fuse_unk must be true or false"},
        {"\"truncation\":null", "\"truncation\":{\"max_length\":5}", "truncation/padding settings are not supported"},
        {"\"padding\":null", "\"padding\":{\"strategy\":\"BatchLongest\"}", "truncation/padding settings are not supported"},
        {"]]}}\n", "]]},\"model\":{}}\n", "has the key \"model\" twice"},
        {"\"pre_tokenizer\":null", "\"pre_tokenizer\":null,\"deep\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                                   "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                                   "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                                   "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
         "nesting too deep"},
        {"}}\n", "}} x\n", "trailing characters"},
        {"\"model\":{", "\"modelx\":{", "the key \"model\" is missing"},
    };
    int n = sizeof cases / sizeof cases[0];
    for (int i = 0; i < n; i++) {
        char *json = variant(cases[i].from, cases[i].to);
        if (!json) {
            CHECK(tc, 0, "case %d: \"%s\" is not in the base file", i, cases[i].from);
            continue;
        }
        tokenizer *t = NULL;
        gk_err err = {0};
        int rc = tokenizer_load_bytes(json, strlen(json), "bad.json", &t, &err);
        // The file name first, as in every message: "bad.json:LINE: what" (not "key: bad.json:...").
        CHECK(tc, rc == -1 && !t && err.code == GK_EINPUT && !strncmp(err.msg, "bad.json:", 9) && strstr(err.msg, cases[i].want),
              "case %d (%s): rc %d, message \"%s\"", i, cases[i].want, rc, err.msg);
        tokenizer_free(t);
        free(json);
    }
}

// ---------------------------------------------------------------- malformed tokenizer.model

typedef struct {
    unsigned char *d;
    size_t n, cap;
} pbw; // a protobuf writer

static void put(pbw *w, const void *p, size_t n) {
    if (!n) return;
    if (w->n + n > w->cap) {
        w->cap = 2 * (w->n + n) + 64;
        w->d = realloc(w->d, w->cap);
    }
    memcpy(w->d + w->n, p, n);
    w->n += n;
}
static void varint(pbw *w, uint64_t v) {
    do {
        unsigned char b = (unsigned char)(v & 0x7f) | (v > 0x7f ? 0x80 : 0);
        put(w, &b, 1);
        v >>= 7;
    } while (v);
}
static void key(pbw *w, unsigned field, unsigned wire) { varint(w, (uint64_t)field << 3 | wire); }
static void bytes_field(pbw *w, unsigned field, const void *p, size_t n) {
    key(w, field, 2);
    varint(w, n);
    put(w, p, n);
}
static void int_field(pbw *w, unsigned field, uint64_t v) {
    key(w, field, 0);
    varint(w, v);
}

typedef struct {
    const char *piece;
    float score;
    int type;
} piece_spec;

static void piece(pbw *w, const char *s, size_t len, float score, int type) {
    pbw p = {0};
    bytes_field(&p, 1, s, len);
    key(&p, 2, 5);
    put(&p, &score, 4);
    int_field(&p, 3, (uint64_t)type);
    bytes_field(w, 1, p.d, p.n);
    free(p.d);
}

// A small valid BPE model; `edit` picks one defect.
static pbw model(int edit) {
    static const piece_spec base[] = {{"<unk>", 0, 2}, {"<s>", 0, 3},  {"</s>", 0, 3},        {"a", -1, 1},
                                      {"b", -2, 1},    {"ab", -0.5f, 1}, {"\xE2\x96\x81", -3, 1}, {"\xE2\x96\x81" "ab", -0.25f, 1}};
    pbw w = {0}, t = {0}, nz = {0};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
        piece_spec p = base[i];
        if (edit == 1 && i == 0) p.type = 1;                 // no UNKNOWN piece
        if (edit == 2 && i == 1) p.type = 2;                 // two UNKNOWN pieces
        if (edit == 3 && i == 4) p.piece = "a";              // duplicate piece
        if (edit == 4 && i == 4) p.piece = "";               // empty piece
        if (edit == 5 && i == 4) p.type = 9;                 // bad type
        if (edit == 6 && i == 4) p.score = NAN;
        if (edit == 7 && i == 4) p.piece = "\xff";           // invalid UTF-8
        if (edit == 8 && i == 1) p.piece = "!";              // one-character control piece
        if (edit == 9 && i == 4) p.piece = "<0x41>", p.type = 6; // byte piece without byte_fallback
        piece(&w, p.piece, strlen(p.piece), p.score, p.type);
    }
    if (edit == 10) { // score as a varint
        pbw p = {0};
        bytes_field(&p, 1, "zz", 2);
        int_field(&p, 2, 3);
        bytes_field(&w, 1, p.d, p.n);
        free(p.d);
    }
    if (edit != 11) int_field(&t, 3, edit == 12 ? 1 : 2); // model_type BPE (11: absent -> UNIGRAM)
    if (edit == 13) int_field(&t, 24, 1);                  // treat_whitespace_as_suffix
    if (edit == 14) int_field(&t, 35, 1);                  // byte_fallback without the 256 byte pieces
    bytes_field(&w, 2, t.d, t.n);
    bytes_field(&nz, 1, "identity", 8);
    if (edit == 15) bytes_field(&nz, 2, "\x10\0\0\0", 4); // a precompiled charsmap
    int_field(&nz, 3, 0);
    bytes_field(&w, 3, nz.d, nz.n);
    if (edit == 16) key(&w, 7, 3);                         // a group
    if (edit == 17) put(&w, "\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11); // endless varint
    if (edit == 18) put(&w, "\x0a\x7f", 2);                // length past the end
    free(t.d);
    free(nz.d);
    return w;
}

static void rejects_bad_model(test_case *tc) {
    static const char *want[] = {
        NULL, "unk is not defined", "unk is already defined", "\"a\" (id 4) is already defined", "piece 4 is empty",
        "piece type 9", "NaN score", "not valid UTF-8", "control piece \"!\"", "byte_fallback is false",
        "wire type 0, expected 5", "model_type is UNIGRAM", "model_type is UNIGRAM", "treat_whitespace_as_suffix",
        "not 256 byte pieces", "precompiled_charsmap is not empty (rule \"identity\")", "wire type 3",
        "varint longer than 10 bytes", "longer than the rest of the file",
    };
    for (int e = 0; e < (int)(sizeof want / sizeof want[0]); e++) {
        pbw w = model(e);
        tokenizer *t = NULL;
        gk_err err = {0};
        int rc = tokenizer_load_bytes(w.d, w.n, "bad.model", &t, &err);
        if (!want[e]) {
            CHECK(tc, rc == 0, "the valid model fails: %s", err.msg);
            int32_t *ids;
            size_t n;
            if (rc == 0 && tokenizer_encode(t, "ab ab", 5, true, &ids, NULL, &n, &err) == 0) {
                CHECK(tc, n == 3 && ids[0] == 1 && ids[1] == 5 && ids[2] == 7, "\"ab ab\" -> %zu ids", n);
                free(ids);
            }
        } else {
            CHECK(tc, rc == -1 && !t && err.code == GK_EINPUT && strstr(err.msg, "bad.model") && strstr(err.msg, want[e]),
                  "defect %d (%s): rc %d, message \"%s\"", e, want[e], rc, err.msg);
        }
        tokenizer_free(t);
        free(w.d);
    }
}

// Every cut of a real model's first bytes, and many later ones, load or fail cleanly.
static void truncated_and_garbled_models(test_case *tc) {
    char *data;
    size_t len;
    gk_err err = {0};
    if (file_read_all(fixture_path("tokenizer/spm_bpe.model"), &data, &len, &err)) {
        CHECK(tc, 0, "%s", err.msg);
        return;
    }
    int failed_cleanly = 0;
    for (size_t cut = 0; cut < len; cut += cut < 2048 ? 1 : 997) {
        tokenizer *t = NULL;
        if (tokenizer_load_bytes(data, cut, "cut.model", &t, &err)) {
            failed_cleanly += err.code == GK_EINPUT && strstr(err.msg, "cut.model") != NULL;
        } else {
            tokenizer_free(t);
        }
    }
    CHECK(tc, failed_cleanly > 100, "only %d truncated files were rejected", failed_cleanly);
    CHECK(tc, tokenizer_load_bytes(data, 1000, "cut.model", &(tokenizer *){NULL}, &err) == -1 &&
                  strstr(err.msg, "not a valid SentencePiece model"), "a cut inside a piece: %s", err.msg);
    uint64_t state = 12345;
    for (int round = 0; round < 300; round++) { // flip a few bytes
        char *copy = malloc(len);
        memcpy(copy, data, len);
        for (int k = 0; k < 1 + round % 4; k++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            copy[(state >> 33) % len] ^= (char)(1 + (state >> 20) % 255);
        }
        tokenizer *t = NULL;
        if (tokenizer_load_bytes(copy, len, "garbled.model", &t, &err) == 0) {
            int32_t *ids;
            size_t n;
            if (tokenizer_encode(t, "Hello, world! 123", 17, true, &ids, NULL, &n, &err) == 0) free(ids);
            tokenizer_free(t);
        } else {
            CHECK(tc, err.code == GK_EINPUT || err.code == GK_ENOMEM, "garbled model: %s", err.msg);
        }
        free(copy);
    }
    free(data);
}

static void load_errors(test_case *tc) {
    tokenizer *t = NULL;
    gk_err err = {0};
    CHECK(tc, tokenizer_load("no/such/tokenizer.json", &t, &err) == -1 && err.code == GK_EIO &&
                  strstr(err.msg, "no/such/tokenizer.json"), "missing file: %s", err.msg);
    CHECK(tc, tokenizer_load_bytes("", 0, "empty.json", &t, &err) == -1 && strstr(err.msg, "empty.json: empty file"),
          "empty file: %s", err.msg);
    CHECK(tc, tokenizer_load_bytes("hello", 5, "text.model", &t, &err) == -1 && strstr(err.msg, "text.model"),
          "plain text: %s", err.msg);
}

// ---------------------------------------------------------------- fuzz

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (uint32_t)((rng_state >> 11) % n);
}

// Random text made of the pieces tokenizers care about.
static size_t random_text(char *out, size_t cap) {
    static const char *parts[] = {"a", "the", " ", "  ", "\n", "\n\n", "\t", "\r\n", "e\xCC\x81", "\xE4\xB8\xAD",
                                  "\xF0\x9F\x98\x80", "\xE2\x80\x8D", "\xE2\x96\x81", "<start_of_turn>", "<end_of_turn>",
                                  "<start_of_tur", "<bos>", "<0x41>", "<mask>", "[X]", "word", "1234", "\xC3\xA9",
                                  "\xEF\xBF\xBD", "\x00", "\x80", "\xFF", "\xE4\xB8", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                                  "\xC0\xAF", "<", ">", "\xD7\xA9", "\xE0\xB8\x81"};
    size_t n = 0, want = rnd(48);
    while (n < want) {
        if (rnd(4) == 0) {
            out[n++] = (char)rnd(256);
            continue;
        }
        const char *p = parts[rnd(sizeof parts / sizeof parts[0])];
        size_t k = p[0] ? strlen(p) : 1;
        if (n + k > cap) break;
        memcpy(out + n, p, k);
        n += k;
    }
    return n;
}

// A slice of mixed.txt with a few bytes flipped, inserted or deleted.
static size_t mutated_slice(const char *text, size_t len, char *out, size_t cap) {
    size_t n = 1 + rnd(cap / 2), at = rnd((uint32_t)(len - n));
    memcpy(out, text + at, n);
    for (int k = rnd(4); k > 0; k--) {
        size_t i = rnd((uint32_t)n);
        int op = rnd(3);
        if (op == 0) out[i] = (char)rnd(256);
        else if (op == 1 && n + 1 < cap) memmove(out + i + 1, out + i, n - i), out[i] = (char)rnd(256), n++;
        else if (n > 1) memmove(out + i, out + i + 1, n - i - 1), n--;
    }
    return n;
}

typedef struct {
    const char *name;
    tokenizer *t;
    bool lossless;  // decode(encode(x)) == repair(x) with U+2581 -> ' ', and the offsets tile the text
} fuzz_target;

static void check_one(test_case *tc, const fuzz_target *f, const char *text, size_t len, bool add_bos) {
    int32_t *ids;
    size_t *offs, n;
    gk_err err = {0};
    if (tokenizer_encode(f->t, text, len, add_bos, &ids, &offs, &n, &err)) {
        CHECK(tc, 0, "%s: encode failed: %s", f->name, err.msg);
        return;
    }
    size_t first = add_bos && n && ids[0] == tokenizer_bos_id(f->t) ? 1 : 0, at = 0;
    for (size_t i = 0; i < n && !tc->failed; i++) {
        CHECK(tc, ids[i] >= 0 && ids[i] < tokenizer_vocab_size(f->t) && tokenizer_token_text(f->t, ids[i], NULL),
              "%s: id %d", f->name, ids[i]);
        CHECK(tc, offs[2 * i] <= offs[2 * i + 1] && offs[2 * i + 1] <= len, "%s: token %zu has [%zu, %zu) in %zu bytes",
              f->name, i, offs[2 * i], offs[2 * i + 1], len);
        if (f->lossless && i >= first) { // ranges follow each other (byte-fallback pieces share one)
            bool same = i > first && offs[2 * i] == offs[2 * i - 2] && offs[2 * i + 1] == offs[2 * i - 1];
            CHECK(tc, same || offs[2 * i] == at, "%s: token %zu starts at %zu, not %zu", f->name, i, offs[2 * i], at);
            at = offs[2 * i + 1];
        }
    }
    if (f->lossless) CHECK(tc, at == len, "%s: tokens cover %zu of %zu bytes", f->name, at, len);
    char *dec = NULL, *fixed;
    size_t dec_len, fixed_len;
    if (tokenizer_decode(f->t, ids + first, n - first, false, &dec, &dec_len, &err)) { // without the <bos>
        CHECK(tc, 0, "%s: decode failed: %s", f->name, err.msg);
    } else if (f->lossless && tokenizer_repair_utf8(text, len, &fixed, &fixed_len, &err) == 0) {
        const char *s = fixed ? fixed : text;
        size_t sl = fixed ? fixed_len : len, j = 0, k = 0;
        bool same = true;
        for (; same && j < sl; j++, k++) { // U+2581 decodes as ' '
            if (j + 2 < sl && !memcmp(s + j, "\xE2\x96\x81", 3)) same = k < dec_len && dec[k] == ' ', j += 2;
            else same = k < dec_len && dec[k] == s[j];
        }
        char hex[2 * 64 + 1] = {0};
        for (size_t j = 0; j < len && j < 64; j++) snprintf(hex + 2 * j, 3, "%02x", (unsigned char)text[j]);
        CHECK(tc, same && k == dec_len, "%s: decode(encode(x)) != x for the %zu-byte text %s", f->name, len, hex);
        free(fixed);
    }
    free(dec);
    free(ids);
    free(offs);
}

static void fuzz(test_case *tc) {
    gk_err err = {0};
    char *mixed;
    size_t mixed_len;
    if (file_read_all(fixture_path("tokenizer/mixed.txt"), &mixed, &mixed_len, &err)) {
        CHECK(tc, 0, "%s", err.msg);
        return;
    }
    fuzz_target f[4] = {{"spm_bpe", NULL, true}, {"spm_bpe_defaults", NULL, false}, {"base.json", NULL, false},
                        {"gemma3", NULL, true}};
    int n_targets = 3;
    int rc = tokenizer_load(fixture_path("tokenizer/spm_bpe.model"), &f[0].t, &err);
    if (rc == 0) rc = tokenizer_load(fixture_path("tokenizer/spm_bpe_defaults.model"), &f[1].t, &err);
    if (rc == 0) rc = tokenizer_load_bytes(BASE_JSON, strlen(BASE_JSON), "base.json", &f[2].t, &err);
    if (rc == 0 && path_exists(GEMMA3_JSON) && (rc = tokenizer_load(GEMMA3_JSON, &f[3].t, &err)) == 0) n_targets = 4;
    CHECK(tc, rc == 0, "%s", err.msg);
    char buf[512];
    for (int k = 0; rc == 0 && k < n_targets && !tc->failed; k++)
        for (int i = 0; i < 60000 && !tc->failed; i++) {
            size_t n = i % 2 ? random_text(buf, sizeof buf) : mutated_slice(mixed, mixed_len, buf, sizeof buf);
            check_one(tc, &f[k], buf, n, i % 3 == 0);
        }
    for (int k = 0; rc == 0 && k < n_targets && !tc->failed; k++) // random ids decode
        for (int i = 0; i < 3000; i++) {
            int32_t ids[24];
            size_t n = rnd(24), len;
            for (size_t j = 0; j < n; j++)
                do ids[j] = (int32_t)rnd((uint32_t)tokenizer_vocab_size(f[k].t));
                while (!tokenizer_token_text(f[k].t, ids[j], NULL));
            char *text;
            if (tokenizer_decode(f[k].t, ids, n, i % 2, &text, &len, &err)) {
                CHECK(tc, 0, "%s: decode: %s", f[k].name, err.msg);
                break;
            }
            free(text);
        }
    for (int k = 0; k < 4; k++) tokenizer_free(f[k].t);
    free(mixed);
}

int main(void) {
    test_run("base_json_loads", base_json_loads);
    test_run("rejects_malformed_tokenizer_json", rejects_bad_json);
    test_run("rejects_malformed_tokenizer_model", rejects_bad_model);
    test_run("truncated_and_garbled_models", truncated_and_garbled_models);
    test_run("load_errors", load_errors);
    test_run("fuzz_encode_decode", fuzz);
    return test_main_result();
}

// The strict JSON reader (common/json.h) against hand-written expectations:
// values, escapes and UTF-8, duplicate keys, malformed inputs with the
// line:column of the problem, and a random-mutation robustness loop.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "tests/check.h"

const char *test_program = "test_json";

// ---------------------------------------------------------------- helpers

// Parses text[0..len) from an exact-size heap copy without a terminating NUL,
// so that a read past the end is caught by the sanitizer build.
static int parse_bytes(const char *text, size_t len, const char *source, json_doc *doc, gk_err *err) {
    char *copy = malloc(len ? len : 1);
    if (!copy) abort();
    memcpy(copy, text, len);
    memset(err, 0, sizeof *err);
    int rc = json_parse(copy, len, source, doc, err);
    // The tree must not point into the input: free it before anyone looks.
    free(copy);
    return rc;
}

static int parse_text(test_case *tc, const char *text, json_doc *doc) {
    gk_err err;
    int rc = parse_bytes(text, strlen(text), "t.json", doc, &err);
    CHECK(tc, rc == 0, "valid JSON rejected: %s", err.msg);
    CHECK(tc, rc != 0 || doc->root != NULL, "no root");
    return rc;
}

static const json_value *member(test_case *tc, const json_value *obj, const char *key, json_type type) {
    const json_value *v = json_get(obj, key);
    CHECK(tc, v != NULL, "member '%s' not found", key);
    CHECK(tc, !v || v->type == type, "member '%s' is a %s, expected a %s", key, v ? json_type_name(v->type) : "-",
          json_type_name(type));
    return v && v->type == type ? v : NULL;
}

static int same_bytes(const json_value *v, const char *want, size_t want_len) {
    return v && v->type == JSON_STRING && v->length == want_len && memcmp(v->string, want, want_len) == 0 &&
           v->string[want_len] == 0;
}

// ---------------------------------------------------------------- valid documents

static void nested_document(test_case *tc) {
    const char *text = "{\"model\": {\"layers\": [1, [2, 3], {\"x\": null}, []], \"on\": true, \"off\": false},\n"
                       " \"name\": \"gemma\", \"empty\": {}}";
    json_doc doc;
    if (parse_text(tc, text, &doc)) return;
    const json_value *root = doc.root;
    CHECK(tc, root->type == JSON_OBJECT && root->count == 3, "root: %s with %zu members", json_type_name(root->type),
          root->count);
    CHECK(tc, root->keys && !strcmp(root->keys[0], "model") && !strcmp(root->keys[1], "name") &&
                  !strcmp(root->keys[2], "empty"),
          "keys not in file order");
    const json_value *model = member(tc, root, "model", JSON_OBJECT);
    const json_value *layers = model ? member(tc, model, "layers", JSON_ARRAY) : NULL;
    if (layers) {
        CHECK(tc, layers->count == 4 && layers->keys == NULL, "layers: %zu items", layers->count);
        CHECK(tc, layers->items[0]->type == JSON_NUMBER && layers->items[0]->integer == 1, "layers[0]");
        const json_value *pair = layers->items[1];
        CHECK(tc, pair->type == JSON_ARRAY && pair->count == 2 && pair->items[0]->integer == 2 &&
                      pair->items[1]->integer == 3,
              "layers[1]");
        CHECK(tc, layers->items[2]->type == JSON_OBJECT && json_get(layers->items[2], "x") &&
                      json_get(layers->items[2], "x")->type == JSON_NULL,
              "layers[2]");
        CHECK(tc, layers->items[3]->type == JSON_ARRAY && layers->items[3]->count == 0, "layers[3]");
    }
    const json_value *on = model ? member(tc, model, "on", JSON_BOOL) : NULL;
    const json_value *off = model ? member(tc, model, "off", JSON_BOOL) : NULL;
    CHECK(tc, on && on->boolean && off && !off->boolean, "booleans");
    CHECK(tc, same_bytes(member(tc, root, "name", JSON_STRING), "gemma", 5), "name");
    const json_value *empty = member(tc, root, "empty", JSON_OBJECT);
    CHECK(tc, empty && empty->count == 0, "empty object");
    CHECK(tc, json_get(root, "missing") == NULL, "json_get found a missing key");
    CHECK(tc, json_get(layers, "x") == NULL, "json_get on an array");
    CHECK(tc, json_get(NULL, "x") == NULL, "json_get on NULL");
    CHECK(tc, member(tc, root, "name", JSON_STRING) && member(tc, root, "name", JSON_STRING)->line == 2,
          "'name' value should start on line 2");
    json_free(&doc);
    CHECK(tc, doc.root == NULL && doc.blocks == NULL, "json_free leaves the doc empty");
}

static void top_level_scalars(test_case *tc) {
    static const struct {
        const char *text;
        json_type type;
    } cases[] = {{"42", JSON_NUMBER}, {"\"x\"", JSON_STRING}, {"null", JSON_NULL},
                 {"true", JSON_BOOL}, {"false", JSON_BOOL},   {"[]", JSON_ARRAY}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_doc doc;
        if (parse_text(tc, cases[i].text, &doc)) return;
        CHECK(tc, doc.root->type == cases[i].type, "%s parsed as %s", cases[i].text, json_type_name(doc.root->type));
        json_free(&doc);
    }
}

static void numbers(test_case *tc) {
    static const struct {
        const char *text;
        double number;
        bool is_integer;
        long long integer;
    } cases[] = {
        {"0", 0.0, true, 0},
        {"-0", -0.0, true, 0},
        {"-0.0", -0.0, false, 0},
        {"7", 7.0, true, 7},
        {"-12", -12.0, true, -12},
        {"1.5", 1.5, false, 0},
        {"1E2", 100.0, false, 0},
        {"1e+2", 100.0, false, 0},
        {"25e-2", 0.25, false, 0},
        {"1e300", 1e300, false, 0},
        {"-1.25e-300", -1.25e-300, false, 0},
        {"2.0", 2.0, false, 0},
        {"9223372036854775807", 9223372036854775807.0, true, INT64_MAX},
        {"-9223372036854775808", -9223372036854775808.0, true, INT64_MIN},
        {"9223372036854775808", 9223372036854775808.0, false, 0},
        {"-9223372036854775809", -9223372036854775809.0, false, 0},
        {"123456789012345678901234567890", 123456789012345678901234567890.0, false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[80];
        snprintf(text, sizeof text, " [%s] ", cases[i].text);
        json_doc doc;
        if (parse_text(tc, text, &doc)) return;
        const json_value *v = doc.root->count == 1 ? doc.root->items[0] : NULL;
        CHECK(tc, v && v->type == JSON_NUMBER, "%s: not one number", cases[i].text);
        if (v) {
            CHECK(tc, v->number == cases[i].number && !signbit(v->number) == !signbit(cases[i].number),
                  "%s: number %.17g, expected %.17g", cases[i].text, v->number, cases[i].number);
            CHECK(tc, v->is_integer == cases[i].is_integer, "%s: is_integer %d", cases[i].text, v->is_integer);
            CHECK(tc, !v->is_integer || v->integer == cases[i].integer, "%s: integer %lld", cases[i].text,
                  v->integer);
        }
        json_free(&doc);
    }
}

static void string_escapes(test_case *tc) {
    static const struct {
        const char *text; // a JSON string literal
        const char *bytes;
        size_t length;
    } cases[] = {
        {"\"plain\"", "plain", 5},
        {"\"\"", "", 0},
        {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8},
        {"\"caf\\u00e9\"", "caf\xc3\xa9", 5},
        {"\"caf\\u00E9\"", "caf\xc3\xa9", 5},
        {"\"\\u0041\\u07ff\\u0800\\uffff\"", "A\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 9},
        {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4},
        {"\"\\uD83D\\uDE00!\"", "\xf0\x9f\x98\x80!", 5},
        {"\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf", 4}, // U+10FFFF
        {"\"a\\u0000b\"", "a\0b", 3},
        {"\"\\u0000\"", "\0", 1},
        {"\"raw caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac\"", "raw caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac", 18},
        {"\"\x7f\"", "\x7f", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_doc doc;
        if (parse_text(tc, cases[i].text, &doc)) return;
        const json_value *v = doc.root;
        CHECK(tc, same_bytes(v, cases[i].bytes, cases[i].length), "case %zu %s: got %zu bytes", i, cases[i].text,
              v->type == JSON_STRING ? v->length : 0);
        json_free(&doc);
    }
}

// Keys are compared by length too: "a\u0000b" is not "a".
static void keys_with_nul(test_case *tc) {
    json_doc doc;
    if (parse_text(tc, "{\"a\\u0000b\": 1, \"ab\": 2}", &doc)) return;
    CHECK(tc, json_get(doc.root, "a") == NULL, "\"a\\u0000b\" matched \"a\"");
    CHECK(tc, doc.root->key_lengths[0] == 3 && doc.root->key_lengths[1] == 2, "key lengths %zu %zu",
          doc.root->key_lengths[0], doc.root->key_lengths[1]);
    const json_value *ab = json_get(doc.root, "ab");
    CHECK(tc, ab && ab->integer == 2, "json_get(\"ab\")");
    CHECK(tc, json_duplicate_key(doc.root) == NULL, "no key is duplicated");
    json_free(&doc);
}

static void whitespace(test_case *tc) {
    const char *text = " \t\r\n{ \"a\" \t:\r\n [ 1 ,\t2 ] ,\n\n\"b\":\"x\"\r\n}\n\t \r\n";
    json_doc doc;
    if (parse_text(tc, text, &doc)) return;
    const json_value *a = member(tc, doc.root, "a", JSON_ARRAY);
    CHECK(tc, a && a->count == 2 && a->items[1]->integer == 2, "array a");
    CHECK(tc, a && a->line == 3, "a starts on line %d, expected 3", a ? a->line : 0);
    const json_value *b = member(tc, doc.root, "b", JSON_STRING);
    CHECK(tc, same_bytes(b, "x", 1) && b->line == 5, "b on line %d", b ? b->line : 0);
    CHECK(tc, doc.root->line == 2, "root starts on line %d, expected 2", doc.root->line);
    json_free(&doc);
}

static void duplicate_keys(test_case *tc) {
    json_doc doc;
    if (parse_text(tc, "{\"a\": 1, \"b\": 2, \"ab\": 5, \"a\": 3, \"c\": {\"a\": 9}}", &doc)) return;
    const json_value *a = json_get(doc.root, "a");
    CHECK(tc, a && a->integer == 3, "json_get must return the last duplicate (3), got %lld", a ? a->integer : -1);
    const char *dup = json_duplicate_key(doc.root);
    CHECK(tc, dup && !strcmp(dup, "a"), "json_duplicate_key: %s", dup ? dup : "(null)");
    CHECK(tc, doc.root->count == 5, "duplicates are all kept (%zu members)", doc.root->count);
    json_free(&doc);

    if (parse_text(tc, "{\"ab\": 1, \"a\": 2, \"b\": 3, \"ba\": 4}", &doc)) return;
    CHECK(tc, json_duplicate_key(doc.root) == NULL, "no duplicates but json_duplicate_key says '%s'",
          json_duplicate_key(doc.root));
    json_free(&doc);

    if (parse_text(tc, "[1, 1]", &doc)) return;
    CHECK(tc, json_duplicate_key(doc.root) == NULL, "json_duplicate_key on an array");
    json_free(&doc);
}

// Deeply nested arrays: depth up to 256 below the root is fine.
static char *nested(int depth) {
    char *text = malloc(2 * (size_t)depth + 1);
    if (!text) abort();
    memset(text, '[', (size_t)depth);
    memset(text + depth, ']', (size_t)depth);
    text[2 * depth] = 0;
    return text;
}

static void deep_nesting_accepted(test_case *tc) {
    char *text = nested(256);
    json_doc doc;
    if (parse_text(tc, text, &doc) == 0) json_free(&doc);
    free(text);
}

// ---------------------------------------------------------------- malformed inputs

typedef struct {
    const char *name;
    const char *text;
    size_t len;        // 0: strlen(text)
    const char *where; // "line:col" of the problem
} bad_case;

static const bad_case bad_cases[] = {
    {"empty input", "", 0, "1:1"},
    {"only whitespace", "  \n ", 0, "2:2"},
    {"trailing comma in array", "[1,2,]", 0, "1:6"},
    {"trailing comma in object", "{\"a\":1,}", 0, "1:8"},
    {"leading zero", "01", 0, "1:2"},
    {"leading zero in array", "[01]", 0, "1:3"},
    {"leading zero negative", "{\"n\": -01}", 0, "1:9"},
    {"fraction without digits", "[1.]", 0, "1:2"},
    {"fraction without integer", "[.5]", 0, "1:2"},
    {"exponent without digits", "[1e]", 0, "1:2"},
    {"plus sign", "[+1]", 0, "1:2"},
    {"lone minus", "[-]", 0, "1:2"},
    {"hex number", "0x10", 0, "1:2"},
    {"NaN", "NaN", 0, "1:1"},
    {"NaN in array", "[1, NaN]", 0, "1:5"},
    {"Infinity", "{\"x\":\n  -Infinity}", 0, "2:3"},
    {"lone high surrogate", "{\n  \"k\": \"\\ud83d x\"\n}", 0, "2:10"},
    {"lone low surrogate", "\"\\ude00\"", 0, "1:3"},
    {"high surrogate then non-surrogate", "\"\\ud83d\\u0041\"", 0, "1:3"},
    {"high surrogate at end of string", "\"\\ud83d\"", 0, "1:3"},
    {"invalid UTF-8 byte", "\"a\xff" "b\"", 0, "1:3"},
    {"overlong UTF-8", "[\"\xc0\xaf\"]", 0, "1:3"},
    {"UTF-8 encoded surrogate", "\"\xed\xa0\x80\"", 0, "1:2"},
    {"truncated UTF-8 sequence", "\"x\xe2\x82\"", 0, "1:3"},
    {"UTF-8 above U+10FFFF", "\"\xf4\x90\x80\x80\"", 0, "1:2"},
    {"tab in string", "{\"a\": \"x\ty\"}", 0, "1:9"},
    {"newline in string", "[\"ab\ncd\"]", 0, "1:5"},
    {"NUL byte in string", "\"a\0b\"", 5, "1:3"},
    {"unknown escape", "\"\\x41\"", 0, "1:3"},
    {"bad hex digit", "\"\\u12G4\"", 0, "1:6"},
    {"truncated \\u escape", "\"\\u12\"", 0, "1:4"},
    {"unterminated string", "{\"a\":\n \"abc", 0, "2:2"},
    {"unterminated string after escape", "\"abc\\\"", 0, "1:1"},
    {"unterminated array", "[1, 2", 0, "1:1"},
    {"unterminated array after comma", "[1,", 0, "1:4"},
    {"unterminated object", "\n{\"a\": 1", 0, "2:1"},
    {"unterminated object after colon", "{\"a\":", 0, "1:6"},
    {"bare word", "hello", 0, "1:1"},
    {"bare word as value", "{\"a\": yes}", 0, "1:7"},
    {"truncated literal", "[tru]", 0, "1:2"},
    {"misspelt null", "{\"a\": nul}", 0, "1:7"},
    {"capitalised True", "True", 0, "1:1"},
    {"trailing garbage", "{} x", 0, "1:4"},
    {"two documents", "[1]\n[2]", 0, "2:1"},
    {"trailing NUL", "{}\0", 3, "1:3"},
    {"single-quoted string", "['a']", 0, "1:2"},
    {"single-quoted key", "{'a': 1}", 0, "1:2"},
    {"unquoted key", "{a: 1}", 0, "1:2"},
    {"number as key", "{1: 2}", 0, "1:2"},
    {"missing colon", "{\"a\" 1}", 0, "1:6"},
    {"missing comma in array", "[1 2]", 0, "1:4"},
    {"missing comma in object", "{\"a\":1 \"b\":2}", 0, "1:8"},
    {"missing value", "{\"a\":,}", 0, "1:6"},
    {"leading comma", "[,1]", 0, "1:2"},
    {"mismatched bracket", "[1}", 0, "1:3"},
    {"line comment", "// config\n{}", 0, "1:1"},
    {"block comment", "{} /* x */", 0, "1:4"},
    {"form feed as whitespace", "\f{}", 0, "1:1"},
    {"vertical tab as whitespace", "[1,\v2]", 0, "1:4"},
    {"error on line 3 after CRLF", "{\r\n\"a\":\r\n x}", 0, "3:2"},
    {"nesting deeper than 256", NULL, 0, "1:258"}, // 300 '[': the first one beyond depth 256 is at column 258
};

static void check_rejected(test_case *tc, const bad_case *c) {
    char *deep = NULL;
    const char *text = c->text;
    size_t len = c->len ? c->len : text ? strlen(text) : 0;
    if (!text) {
        deep = nested(300);
        text = deep;
        len = strlen(deep);
    }
    json_doc doc = {0};
    gk_err err;
    int rc = parse_bytes(text, len, "t.json", &doc, &err);
    char want[64];
    snprintf(want, sizeof want, "t.json:%s:", c->where);
    CHECK(tc, rc != 0, "%s: accepted", c->name);
    CHECK(tc, rc == 0 || err.code == GK_EINPUT, "%s: error code %d", c->name, err.code);
    CHECK(tc, rc == 0 || strstr(err.msg, want), "%s: message '%s' does not name %s", c->name, err.msg, want);
    CHECK(tc, rc == 0 || (doc.root == NULL && doc.blocks == NULL), "%s: doc not emptied after failure", c->name);
    CHECK(tc, rc == 0 || strchr(err.msg, '\n') == NULL, "%s: message has a newline", c->name);
    if (rc == 0) json_free(&doc);
    free(deep);
}

static void malformed_inputs(test_case *tc) {
    size_t n = sizeof bad_cases / sizeof bad_cases[0];
    for (size_t i = 0; i < n; i++) check_rejected(tc, &bad_cases[i]);
}

// A very deep document must be rejected without recursing to its depth.
static void very_deep_rejected(test_case *tc) {
    char *text = nested(200000);
    json_doc doc;
    gk_err err;
    int rc = parse_bytes(text, strlen(text), "t.json", &doc, &err);
    CHECK(tc, rc != 0 && strstr(err.msg, "t.json:1:258:"), "200000 nested arrays: rc %d, '%s'", rc, err.msg);
    free(text);
}

// ---------------------------------------------------------------- robustness

static const char fuzz_seed[] =
    "{\n"
    "  \"architectures\": [\"Gemma2ForCausalLM\"],\n"
    "  \"model_type\": \"gemma2\",\n"
    "  \"attn_logit_softcapping\": 50.0,\n"
    "  \"final_logit_softcapping\": null,\n"
    "  \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 1e4},\n"
    "  \"rms_norm_eps\": 1e-06,\n"
    "  \"hidden_activation\": \"gelu_pytorch_tanh\",\n"
    "  \"name\": \"caf\\u00e9 \\ud83d\\ude00 \xc3\xa9\\n\\\"q\\\"\",\n"
    "  \"layer_types\": [\"sliding_attention\", \"full_attention\", \"sliding_attention\"],\n"
    "  \"vocab_size\": 256000, \"pad_token_id\": 0, \"eos_token_id\": -1, \"big\": 9223372036854775807,\n"
    "  \"nested\": [[[{\"a\": [true, false, {}, []]}]]],\n"
    "  \"tie_word_embeddings\": true\n"
    "}\n";

typedef struct {
    uint64_t s;
} fuzz_rng;

static uint64_t fuzz_next(fuzz_rng *r) { // splitmix64
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t fuzz_below(fuzz_rng *r, size_t n) { return n ? (size_t)(fuzz_next(r) % n) : 0; }

// One random edit of buf[0..*len) (capacity cap).
static void mutate(fuzz_rng *r, unsigned char *buf, size_t *len, size_t cap) {
    static const char interesting[] = "{}[],:\"\\ 0123456789.eE+-tfnu\n\t\x7f\x80\xbf\xc3\xed\xf0\xff";
    size_t n = *len;
    switch (fuzz_below(r, 6)) {
    case 0: // flip a bit
        if (n) buf[fuzz_below(r, n)] ^= (unsigned char)(1u << fuzz_below(r, 8));
        break;
    case 1: // replace a byte
        if (n)
            buf[fuzz_below(r, n)] = fuzz_below(r, 2) ? (unsigned char)fuzz_next(r)
                                                     : (unsigned char)interesting[fuzz_below(r, sizeof interesting - 1)];
        break;
    case 2: // truncate
        *len = fuzz_below(r, n + 1);
        break;
    case 3: // insert a byte
        if (n < cap) {
            size_t at = fuzz_below(r, n + 1);
            memmove(buf + at + 1, buf + at, n - at);
            buf[at] = fuzz_below(r, 2) ? (unsigned char)fuzz_next(r)
                                       : (unsigned char)interesting[fuzz_below(r, sizeof interesting - 1)];
            *len = n + 1;
        }
        break;
    case 4: // delete a run
        if (n) {
            size_t at = fuzz_below(r, n), k = 1 + fuzz_below(r, n - at < 16 ? n - at : 16);
            memmove(buf + at, buf + at + k, n - at - k);
            *len = n - k;
        }
        break;
    default: // copy a run of the document elsewhere
        if (n) {
            size_t from = fuzz_below(r, n), k = 1 + fuzz_below(r, 32);
            if (k > n - from) k = n - from;
            if (n + k <= cap) {
                size_t at = fuzz_below(r, n + 1);
                unsigned char tmp[32];
                memcpy(tmp, buf + from, k);
                memmove(buf + at + k, buf + at, n - at);
                memcpy(buf + at, tmp, k);
                *len = n + k;
            }
        }
        break;
    }
}

// Touches every value of a parsed tree; returns the number of values.
static size_t walk(const json_value *v, int *bad) {
    size_t n = 1;
    if (v->type == JSON_STRING && v->string[v->length] != 0) *bad = 1;
    if (v->type == JSON_OBJECT) {
        for (size_t i = 0; i < v->count; i++)
            if (v->keys[i][v->key_lengths[i]] != 0) *bad = 1;
        (void)json_get(v, "model_type");
        (void)json_duplicate_key(v);
    }
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT)
        for (size_t i = 0; i < v->count; i++) n += walk(v->items[i], bad);
    return n;
}

static void random_mutations(test_case *tc) {
    enum { ROUNDS = 200000 };
    size_t seed_len = sizeof fuzz_seed - 1, cap = seed_len + 512;
    unsigned char *work = malloc(cap);
    if (!work) abort();
    fuzz_rng r = {20240731};
    int accepted = 0, bad_tree = 0, bad_error = 0;
    {
        json_doc doc;
        if (parse_text(tc, fuzz_seed, &doc)) {
            free(work);
            return;
        }
        json_free(&doc);
    }
    for (int round = 0; round < ROUNDS; round++) {
        size_t len = seed_len;
        memcpy(work, fuzz_seed, seed_len);
        int edits = 1 + (int)fuzz_below(&r, 4);
        for (int e = 0; e < edits; e++) mutate(&r, work, &len, cap);
        json_doc doc;
        gk_err err;
        if (parse_bytes((const char *)work, len, "fuzz.json", &doc, &err) == 0) {
            accepted++;
            walk(doc.root, &bad_tree);
            json_free(&doc);
        } else if (strncmp(err.msg, "fuzz.json:", 10) != 0 || doc.root != NULL) {
            if (!bad_error) CHECK(tc, 0, "round %d: bad error '%s'", round, err.msg);
            bad_error = 1;
        }
    }
    CHECK(tc, !bad_tree, "a parsed tree had an unterminated string");
    // Some mutations (e.g. a changed digit) keep the document valid.
    CHECK(tc, accepted > 0 && accepted < ROUNDS, "%d of %d mutations accepted", accepted, ROUNDS);
    free(work);
}

int main(void) {
    test_run("nested_document", nested_document);
    test_run("top_level_scalars", top_level_scalars);
    test_run("numbers", numbers);
    test_run("string_escapes", string_escapes);
    test_run("keys_with_nul", keys_with_nul);
    test_run("whitespace", whitespace);
    test_run("duplicate_keys", duplicate_keys);
    test_run("deep_nesting_accepted", deep_nesting_accepted);
    test_run("malformed_inputs", malformed_inputs);
    test_run("very_deep_rejected", very_deep_rejected);
    test_run("random_mutations", random_mutations);
    return test_main_result();
}

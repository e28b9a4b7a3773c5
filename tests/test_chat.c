// The chat template and JSONL records against transformers' apply_chat_template
// with Gemma's tokenizer_config.json (scripts/reference/chat_fixtures.py).
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/json.h"
#include "data/chat.h"
#include "data/records.h"
#include "tests/check.h"

const char *test_program = "test_chat";

typedef void (*case_fn)(test_case *tc, const json_value *fixture, size_t line);

// Calls fn for every fixture line.
static void each_case(test_case *tc, case_fn fn) {
    char *text;
    size_t len;
    gk_err err;
    const char *path = fixture_path("chat/cases.jsonl");
    if (file_read_all(path, &text, &len, &err)) {
        CHECK(tc, 0, "%s", err.msg);
        return;
    }
    size_t line = 0;
    for (char *p = text, *nl; p < text + len; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(text + len - p));
        if (!nl) nl = text + len;
        line++;
        json_doc doc;
        if (json_parse(p, (size_t)(nl - p), path, &doc, &err)) {
            CHECK(tc, 0, "%s", err.msg);
            break;
        }
        fn(tc, doc.root, line);
        json_free(&doc);
    }
    free(text);
}

static void check_render(test_case *tc, const json_value *fx, size_t line) {
    const json_value *rec = json_get(fx, "record"), *gen = json_get(fx, "add_generation_prompt");
    const json_value *want = json_get(fx, "text"), *error = json_get(fx, "error");
    record r;
    gk_err err = {0};
    if (record_parse(rec->string, rec->length, "cases.jsonl", line, &r, &err)) {
        CHECK(tc, 0, "case %zu: %s", line, err.msg);
        return;
    }
    chat_rendered out;
    int rc = chat_render(r.messages, r.n_messages, gen->boolean, &out, &err);
    if (error) {
        CHECK(tc, rc != 0, "case %zu: rendered a conversation transformers refuses (%s)", line, error->string);
        CHECK(tc, strstr(err.msg, "alternate") != NULL, "case %zu: message: %s", line, err.msg);
    } else {
        CHECK(tc, rc == 0, "case %zu: %s", line, err.msg);
        if (rc == 0)
            CHECK(tc, out.len == want->length && !memcmp(out.text, want->string, out.len),
                  "case %zu: rendered\n%s\nexpected\n%s", line, out.text, want->string);
    }
    if (rc == 0) chat_rendered_free(&out);
    record_free(&r);
}

static void renders_like_transformers(test_case *tc) { each_case(tc, check_render); }

// Trained spans: each model turn's content and <end_of_turn>, nothing else.
static void trained_spans(test_case *tc) {
    chat_message m[] = {{ROLE_SYSTEM, "sys", 3}, {ROLE_USER, " q ", 3}, {ROLE_MODEL, " a ", 3}, {ROLE_USER, "q2", 2},
                        {ROLE_MODEL, "b", 1}};
    chat_rendered r;
    gk_err err;
    CHECK(tc, chat_render(m, 5, false, &r, &err) == 0, "%s", err.msg);
    CHECK(tc, r.n_trained == 2, "%zu trained spans", r.n_trained);
    const char *want[2] = {"a<end_of_turn>", "b<end_of_turn>"};
    for (size_t i = 0; i < r.n_trained && i < 2; i++) {
        size_t n = r.trained[i].end - r.trained[i].begin;
        CHECK(tc, n == strlen(want[i]) && !memcmp(r.text + r.trained[i].begin, want[i], n), "span %zu is \"%.*s\"", i,
              (int)n, r.text + r.trained[i].begin);
    }
    // Tokens: inside, straddling a boundary, and outside.
    size_t a = r.trained[0].begin, e = r.trained[0].end;
    size_t offsets[8] = {a, a + 1, a - 1, a + 1, e - 2, e, e, e + 1}; // [begin, end) per token
    uint8_t mask[4];
    chat_loss_mask(offsets, 4, &r, mask);
    CHECK(tc, mask[0] == 1 && mask[1] == 0 && mask[2] == 1 && mask[3] == 0, "mask %d %d %d %d", mask[0], mask[1],
          mask[2], mask[3]);
    chat_rendered_free(&r);
}

static void record_forms(test_case *tc) {
    const char *good[] = {"{\"text\": \"plain\"}", "{\"prompt\": \"a question\"}",
                          "{\"conversation\": [{\"role\": \"user\", \"content\": \"x\"}]}"};
    for (int i = 0; i < 3; i++) {
        record r;
        gk_err err;
        CHECK(tc, record_parse(good[i], strlen(good[i]), "f.jsonl", 1, &r, &err) == 0, "%s: %s", good[i], err.msg);
        record_free(&r);
    }
    const char *bad[][2] = {
        {"[1, 2]", "expected a JSON object"},
        {"{\"txt\": \"x\"}", "expected a \"text\""},
        {"{\"text\": 5}", "must be a string"},
        {"{\"messages\": []}", "non-empty array"},
        {"{\"messages\": [{\"role\": \"user\"}]}", "\"content\""},
        {"{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}", "unknown role"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image\"}]}]}", "text"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": 3}]}", "string or a list"},
        {"{\"text\": \"unterminated}", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        record r;
        gk_err err = {0};
        int rc = record_parse(bad[i][0], strlen(bad[i][0]), "f.jsonl", 7, &r, &err);
        CHECK(tc, rc != 0, "accepted %s", bad[i][0]);
        CHECK(tc, strstr(err.msg, "f.jsonl:7") && strstr(err.msg, bad[i][1]), "%s: message \"%s\"", bad[i][0], err.msg);
    }
}

static void unicode_strip_like_python(test_case *tc) {
    const char *cases[][2] = {{" \t\n x y \r\f\v", "x y"},
                              {"\xc2\xa0\xe3\x80\x80mid\xe2\x80\xa8", "mid"},   // NBSP, ideographic space, LS
                              {"\xe2\x80\x8bzw\xe2\x80\x8b", "\xe2\x80\x8bzw\xe2\x80\x8b"}, // U+200B is not whitespace
                              {"\x1c\x1f\xc2\x85x", "x"}, {"", ""}, {"   ", ""}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        const char *s = unicode_strip(cases[i][0], strlen(cases[i][0]), &n);
        CHECK(tc, n == strlen(cases[i][1]) && !memcmp(s, cases[i][1], n), "case %zu", i);
    }
}

int main(void) {
    test_run("renders_like_transformers", renders_like_transformers);
    test_run("trained_spans_and_mask", trained_spans);
    test_run("record_forms_and_errors", record_forms);
    test_run("unicode_strip_like_python", unicode_strip_like_python);
    return test_main_result();
}

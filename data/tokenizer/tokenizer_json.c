#include "data/tokenizer/tokenizer_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

enum { TJ_MAX_DEPTH = 256, TJ_MAX_NUMBER = 127 };

void tj_init(tj_reader *r, const char *text, size_t len, const char *name, gk_err *err) {
    memset(r, 0, sizeof *r);
    r->text = text;
    r->len = len;
    r->line = 1;
    r->name = name;
    r->err = err;
}

void tj_free(tj_reader *r) {
    free(r->buf);
    r->buf = NULL;
    r->buf_cap = 0;
}

static void skip_space(tj_reader *r) {
    while (r->pos < r->len) {
        char c = r->text[r->pos];
        if (c == '\n') r->line++;
        else if (c != ' ' && c != '\t' && c != '\r') break;
        r->pos++;
    }
}

int tj_fail(tj_reader *r, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gk_fail(r->err, GK_EINPUT, "%s:%d: %s", r->name, r->line, msg);
}

static int syntax(tj_reader *r, const char *what) { return tj_fail(r, "invalid JSON: %s", what); }

int tj_rewrap(tj_reader *r, int shift, const char *context) {
    size_t n = strlen(r->name);
    const char *msg = r->err->msg;
    char *end;
    long line = strncmp(msg, r->name, n) || msg[n] != ':' ? -1 : strtol(msg + n + 1, &end, 10);
    if (line < 0 || strncmp(end, ": ", 2)) // not "name:LINE: ": prefix the context
        return context ? gk_wrap(r->err, "%s", context) : -1;
    char rest[sizeof r->err->msg];
    snprintf(rest, sizeof rest, "%s", end + 2);
    return gk_fail(r->err, r->err->code, "%s:%ld: %s%s%s", r->name, line + shift, context ? context : "", context ? ": " : "",
                   rest);
}

int tj_peek(tj_reader *r) {
    skip_space(r);
    return r->pos < r->len ? (unsigned char)r->text[r->pos] : -1;
}

// An escape after the backslash at r->pos - 1; writes its UTF-8 to out.
static int escape(tj_reader *r, char *out, size_t *n) {
    size_t bad;
    const char *why = json_decode_escape(r->text, r->len, &r->pos, out, n, &bad);
    return why ? syntax(r, why) : 0;
}

int tj_string(tj_reader *r, const char **out, size_t *out_len) {
    skip_space(r);
    if (r->pos >= r->len || r->text[r->pos] != '"') return syntax(r, "expected a string");
    const unsigned char *t = (const unsigned char *)r->text;
    size_t start = ++r->pos, i = start;
    for (;;) { // fast path: no escapes, the string stays in the text
        if (i >= r->len) return syntax(r, "unterminated string");
        unsigned char c = t[i];
        if (c == '"') {
            *out = r->text + start;
            *out_len = i - start;
            r->pos = i + 1;
            return 0;
        }
        if (c == '\\') break;
        r->pos = i;
        if (c < 0x20) return syntax(r, "control character in string");
        size_t k = c < 0x80 ? 1 : utf8_scan(t + i, r->len - i, NULL);
        if (!k) return syntax(r, "invalid UTF-8 in string");
        i += k;
    }
    size_t raw_end = i; // escapes never grow: size the buffer by the raw length
    while (raw_end < r->len && t[raw_end] != '"') raw_end += t[raw_end] == '\\' ? 2 : 1;
    if (raw_end >= r->len) return syntax(r, "unterminated string");
    if (raw_end - start + 1 > r->buf_cap) {
        size_t cap = 2 * (raw_end - start) + 64;
        char *b = realloc(r->buf, cap);
        if (!b) return gk_fail(r->err, GK_ENOMEM, "%s: out of memory reading a string", r->name);
        r->buf = b;
        r->buf_cap = cap;
    }
    size_t n = i - start;
    memcpy(r->buf, r->text + start, n);
    r->pos = i;
    while (t[r->pos] != '"') {
        unsigned char c = t[r->pos];
        if (c == '\\') {
            size_t k = 0;
            r->pos++;
            if (escape(r, r->buf + n, &k)) return -1;
            n += k;
            continue;
        }
        if (c < 0x20) return syntax(r, "control character in string");
        size_t k = c < 0x80 ? 1 : utf8_scan(t + r->pos, r->len - r->pos, NULL);
        if (!k) return syntax(r, "invalid UTF-8 in string");
        memcpy(r->buf + n, t + r->pos, k);
        n += k;
        r->pos += k;
    }
    r->pos++;
    r->buf[n] = 0;
    *out = r->buf;
    *out_len = n;
    return 0;
}

// Scans a number at r->pos; *integral tells whether it has no fraction/exponent.
static int scan_number(tj_reader *r, size_t *start, bool *integral) {
    const char *t = r->text;
    *start = r->pos;
    *integral = true;
    if (r->pos < r->len && t[r->pos] == '-') r->pos++;
    if (r->pos >= r->len) return syntax(r, "bad number");
    if (t[r->pos] == '0') {
        r->pos++;
    } else if (t[r->pos] >= '1' && t[r->pos] <= '9') {
        while (r->pos < r->len && t[r->pos] >= '0' && t[r->pos] <= '9') r->pos++;
    } else {
        return syntax(r, "unexpected character");
    }
    if (r->pos < r->len && t[r->pos] == '.') {
        *integral = false;
        size_t digits = ++r->pos;
        while (r->pos < r->len && t[r->pos] >= '0' && t[r->pos] <= '9') r->pos++;
        if (r->pos == digits) return syntax(r, "bad number");
    }
    if (r->pos < r->len && (t[r->pos] == 'e' || t[r->pos] == 'E')) {
        *integral = false;
        r->pos++;
        if (r->pos < r->len && (t[r->pos] == '+' || t[r->pos] == '-')) r->pos++;
        size_t digits = r->pos;
        while (r->pos < r->len && t[r->pos] >= '0' && t[r->pos] <= '9') r->pos++;
        if (r->pos == digits) return syntax(r, "bad number");
    }
    if (r->pos - *start > TJ_MAX_NUMBER) return syntax(r, "number too long");
    return 0;
}

int tj_integer(tj_reader *r, long long *value) {
    skip_space(r);
    size_t start;
    bool integral;
    if (r->pos >= r->len) return syntax(r, "unexpected end of input");
    char c = r->text[r->pos];
    if (c != '-' && (c < '0' || c > '9')) return tj_fail(r, "expected an integer");
    if (scan_number(r, &start, &integral)) return -1;
    if (!integral) return tj_fail(r, "expected an integer, found %.*s", (int)(r->pos - start), r->text + start);
    char buf[TJ_MAX_NUMBER + 1];
    memcpy(buf, r->text + start, r->pos - start);
    buf[r->pos - start] = 0;
    errno = 0;
    *value = strtoll(buf, NULL, 10);
    if (errno) return tj_fail(r, "integer %s is out of range", buf);
    return 0;
}

int tj_null(tj_reader *r, bool *is_null) {
    skip_space(r);
    *is_null = r->len - r->pos >= 4 && memcmp(r->text + r->pos, "null", 4) == 0;
    if (*is_null) r->pos += 4;
    return 0;
}

int tj_open(tj_reader *r, char open) {
    skip_space(r);
    if (r->pos >= r->len || r->text[r->pos] != open)
        return tj_fail(r, "expected %s", open == '{' ? "an object" : "an array");
    r->pos++;
    return 0;
}

int tj_next(tj_reader *r, char close, bool *first) {
    skip_space(r);
    if (r->pos >= r->len) return syntax(r, close == '}' ? "unterminated object" : "unterminated array");
    char c = r->text[r->pos];
    if (c == close) {
        r->pos++;
        *first = false;
        return 0;
    }
    if (*first) {
        *first = false;
        return 1;
    }
    if (c != ',') return syntax(r, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    r->pos++;
    skip_space(r);
    if (r->pos < r->len && r->text[r->pos] == close) return syntax(r, "trailing comma");
    return 1;
}

int tj_key(tj_reader *r, const char **key, size_t *len) {
    if (tj_string(r, key, len)) return -1;
    skip_space(r);
    if (r->pos >= r->len || r->text[r->pos] != ':') return syntax(r, "expected ':'");
    r->pos++;
    return 0;
}

static int skip_literal(tj_reader *r) {
    static const char *words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if (r->len - r->pos >= n && memcmp(r->text + r->pos, words[i], n) == 0) {
            r->pos += n;
            return 0;
        }
    }
    return syntax(r, "unexpected character");
}

// One scalar at r->pos (after whitespace).
static int skip_scalar(tj_reader *r) {
    char c = r->text[r->pos];
    if (c == '"') {
        const char *s;
        size_t n;
        return tj_string(r, &s, &n);
    }
    if (c == 't' || c == 'f' || c == 'n') return skip_literal(r);
    size_t start;
    bool integral;
    return scan_number(r, &start, &integral);
}

int tj_skip(tj_reader *r, size_t *start, size_t *end, int *line) {
    char closer[TJ_MAX_DEPTH + 2]; // closing bracket of each open container
    int depth = 0;
    skip_space(r);
    if (start) *start = r->pos;
    if (line) *line = r->line;
    for (;;) { // at a value
        skip_space(r);
        if (r->pos >= r->len) return syntax(r, "unexpected end of input");
        if (depth > TJ_MAX_DEPTH) return syntax(r, "nesting too deep");
        char c = r->text[r->pos];
        bool done_value = true;
        if (c == '{' || c == '[') {
            closer[depth++] = c == '{' ? '}' : ']';
            r->pos++;
            skip_space(r);
            if (r->pos < r->len && r->text[r->pos] == closer[depth - 1]) {
                r->pos++;
                depth--;
            } else {
                done_value = false;
                if (c == '{') {
                    const char *k;
                    size_t kn;
                    if (tj_key(r, &k, &kn)) return -1;
                }
            }
        } else if (skip_scalar(r)) {
            return -1;
        }
        while (done_value) { // after a value: commas and closing brackets
            if (depth == 0) {
                if (end) *end = r->pos;
                return 0;
            }
            skip_space(r);
            if (r->pos >= r->len)
                return syntax(r, closer[depth - 1] == '}' ? "unterminated object" : "unterminated array");
            char d = r->text[r->pos++];
            if (d == closer[depth - 1]) {
                depth--;
                continue;
            }
            if (d != ',') {
                r->pos--;
                return syntax(r, closer[depth - 1] == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
            }
            if (closer[depth - 1] == '}') {
                const char *k;
                size_t kn;
                if (tj_key(r, &k, &kn)) return -1;
            }
            done_value = false;
        }
    }
}

int tj_tree(tj_reader *r, json_doc *doc, int *line) {
    size_t start, end;
    if (tj_skip(r, &start, &end, line)) return -1;
    if (json_parse(r->text + start, end - start, r->name, doc, r->err)) return tj_rewrap(r, *line - 1, NULL);
    return 0;
}

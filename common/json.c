#include "common/json.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

enum { JSON_MAX_DEPTH = 256, ARENA_BLOCK_BYTES = 1 << 16 };

struct json_arena_block {
    json_arena_block *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

typedef struct {
    const char *text;
    size_t len, pos;
    int line; // of pos: raw newlines occur only in whitespace, so skip_space counts them
    const char *source;
    json_doc *doc;
    gk_err *err;
} parser;

// ---------------------------------------------------------------- arena

static void *arena_alloc(parser *p, size_t bytes) {
    bytes = (bytes + 15) & ~(size_t)15;
    json_arena_block *b = p->doc->blocks;
    if (!b || b->size - b->used < bytes) {
        size_t size = bytes > ARENA_BLOCK_BYTES ? bytes : ARENA_BLOCK_BYTES;
        b = malloc(sizeof *b + size);
        if (!b) {
            gk_fail(p->err, GK_ENOMEM, "%s: out of memory parsing JSON", p->source);
            return NULL;
        }
        b->next = p->doc->blocks;
        b->used = 0;
        b->size = size;
        p->doc->blocks = b;
    }
    void *out = b->data + b->used;
    b->used += bytes;
    return out;
}

// ---------------------------------------------------------------- errors

// Line and column of pos, for error messages only (a rescan from the start).
static void position_of(const parser *p, size_t pos, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < pos && i < p->len; i++) {
        if (p->text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static int fail_at(parser *p, size_t pos, const char *what) {
    int line, col;
    position_of(p, pos, &line, &col);
    return gk_fail(p->err, GK_EINPUT, "%s:%d:%d: invalid JSON: %s", p->source, line, col, what);
}

// ---------------------------------------------------------------- lexing

static void skip_space(parser *p) {
    while (p->pos < p->len) {
        char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->line += c == '\n';
        p->pos++;
    }
}

static int expect_literal(parser *p, const char *word) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->text + p->pos, word, n) != 0)
        return fail_at(p, p->pos, "unexpected character");
    p->pos += n;
    return 0;
}

// Four hex digits at text[*pos]; NULL, or why not with *bad at the offending character.
static const char *hex4(const char *text, size_t len, size_t *pos, uint32_t *out, size_t *bad) {
    *bad = *pos;
    if (len - *pos < 4) return "truncated \\u escape";
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = text[*pos + (size_t)i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else {
            *bad = *pos + (size_t)i;
            return "bad hex digit in \\u escape";
        }
    }
    *pos += 4;
    *out = v;
    return NULL;
}

const char *json_decode_escape(const char *text, size_t len, size_t *pos, char out[4], size_t *n, size_t *bad) {
    size_t at = *pos;
    *bad = at;
    if (*pos >= len) return "unterminated string";
    char c = text[(*pos)++];
    const char *simple = "\"\"\\\\//b\bf\fn\nr\rt\t";
    for (const char *s = simple; *s; s += 2) {
        if (c == s[0]) {
            out[0] = s[1];
            *n = 1;
            return NULL;
        }
    }
    if (c != 'u') return "unknown escape";
    uint32_t cp, lo;
    const char *why = hex4(text, len, pos, &cp, bad);
    if (why) return why;
    *bad = at;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return "unpaired low surrogate";
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (len - *pos < 2 || text[*pos] != '\\' || text[*pos + 1] != 'u') return "unpaired high surrogate";
        *pos += 2;
        if ((why = hex4(text, len, pos, &lo, bad))) return why;
        *bad = at;
        if (lo < 0xDC00 || lo > 0xDFFF) return "unpaired high surrogate";
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    *n = utf8_encode(cp, out);
    return NULL;
}

static int read_escape(parser *p, char *out, size_t *out_len) {
    size_t bad;
    const char *why = json_decode_escape(p->text, p->len, &p->pos, out, out_len, &bad);
    return why ? fail_at(p, bad, why) : 0;
}

// Parses a string at p->pos (which is at the opening quote).
static int parse_string(parser *p, const char **out, size_t *out_len) {
    size_t start = ++p->pos;
    size_t raw_end = start; // find the closing quote to size the buffer
    while (raw_end < p->len && p->text[raw_end] != '"') raw_end += p->text[raw_end] == '\\' ? 2 : 1;
    if (raw_end >= p->len) return fail_at(p, start - 1, "unterminated string");
    char *buf = arena_alloc(p, raw_end - start + 1);
    if (!buf) return -1;
    size_t n = 0;
    while (p->text[p->pos] != '"') {
        unsigned char c = (unsigned char)p->text[p->pos];
        if (c < 0x20) return fail_at(p, p->pos, "control character in string");
        if (c == '\\') {
            p->pos++;
            size_t k = 0;
            if (read_escape(p, buf + n, &k)) return -1;
            n += k;
            continue;
        }
        size_t k = utf8_scan((const unsigned char *)p->text + p->pos, p->len - p->pos, NULL);
        if (!k) return fail_at(p, p->pos, "invalid UTF-8 in string");
        memcpy(buf + n, p->text + p->pos, k);
        n += k;
        p->pos += k;
    }
    p->pos++;
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    return 0;
}

static int parse_number(parser *p, json_value *v) {
    size_t start = p->pos;
    bool integral = true;
    const char *t = p->text;
    if (p->pos < p->len && t[p->pos] == '-') p->pos++;
    if (p->pos >= p->len) return fail_at(p, start, "bad number");
    if (t[p->pos] == '0') {
        p->pos++;
    } else if (t[p->pos] >= '1' && t[p->pos] <= '9') {
        while (p->pos < p->len && t[p->pos] >= '0' && t[p->pos] <= '9') p->pos++;
    } else {
        return fail_at(p, start, "bad number");
    }
    if (p->pos < p->len && t[p->pos] == '.') {
        integral = false;
        p->pos++;
        size_t digits = p->pos;
        while (p->pos < p->len && t[p->pos] >= '0' && t[p->pos] <= '9') p->pos++;
        if (p->pos == digits) return fail_at(p, start, "bad number");
    }
    if (p->pos < p->len && (t[p->pos] == 'e' || t[p->pos] == 'E')) {
        integral = false;
        p->pos++;
        if (p->pos < p->len && (t[p->pos] == '+' || t[p->pos] == '-')) p->pos++;
        size_t digits = p->pos;
        while (p->pos < p->len && t[p->pos] >= '0' && t[p->pos] <= '9') p->pos++;
        if (p->pos == digits) return fail_at(p, start, "bad number");
    }
    char buf[128];
    size_t n = p->pos - start;
    if (n >= sizeof buf) return fail_at(p, start, "number too long");
    memcpy(buf, t + start, n);
    buf[n] = 0;
    v->type = JSON_NUMBER;
    v->number = strtod(buf, NULL);
    if (integral) {
        errno = 0;
        long long i = strtoll(buf, NULL, 10);
        if (errno == 0) {
            v->is_integer = true;
            v->integer = i;
        }
    }
    return 0;
}

static json_value *parse_value(parser *p, int depth);

// Grows a temporary pointer list; elements are copied into the arena at the end.
typedef struct {
    void **data;
    size_t count, cap;
} ptr_list;

static int list_push(parser *p, ptr_list *l, void *x) {
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        void **d = realloc(l->data, cap * sizeof *d);
        if (!d) return gk_fail(p->err, GK_ENOMEM, "%s: out of memory parsing JSON", p->source);
        l->data = d;
        l->cap = cap;
    }
    l->data[l->count++] = x;
    return 0;
}

static void *list_to_arena(parser *p, const ptr_list *l) {
    void *out = arena_alloc(p, (l->count ? l->count : 1) * sizeof(void *));
    if (out && l->count) memcpy(out, l->data, l->count * sizeof(void *));
    return out;
}

static int parse_container(parser *p, json_value *v, int depth) {
    bool object = p->text[p->pos] == '{';
    char close = object ? '}' : ']';
    size_t open_at = p->pos++;
    ptr_list items = {0}, keys = {0}, key_lengths = {0};
    int rc = -1;
    skip_space(p);
    if (p->pos < p->len && p->text[p->pos] == close) {
        p->pos++;
    } else {
        for (;;) {
            skip_space(p);
            if (object) {
                if (p->pos >= p->len || p->text[p->pos] != '"') {
                    fail_at(p, p->pos, "expected a string key");
                    goto done;
                }
                const char *key;
                size_t key_len;
                if (parse_string(p, &key, &key_len)) goto done;
                if (list_push(p, &keys, (void *)key)) goto done;
                if (list_push(p, &key_lengths, (void *)(uintptr_t)key_len)) goto done;
                skip_space(p);
                if (p->pos >= p->len || p->text[p->pos] != ':') {
                    fail_at(p, p->pos, "expected ':'");
                    goto done;
                }
                p->pos++;
            }
            json_value *item = parse_value(p, depth + 1);
            if (!item || list_push(p, &items, item)) goto done;
            skip_space(p);
            if (p->pos >= p->len) {
                fail_at(p, open_at, object ? "unterminated object" : "unterminated array");
                goto done;
            }
            char c = p->text[p->pos++];
            if (c == close) break;
            if (c != ',') {
                fail_at(p, p->pos - 1, object ? "expected ',' or '}'" : "expected ',' or ']'");
                goto done;
            }
        }
    }
    v->type = object ? JSON_OBJECT : JSON_ARRAY;
    v->count = items.count;
    if (!(v->items = list_to_arena(p, &items))) goto done;
    if (object) {
        if (!(v->keys = list_to_arena(p, &keys))) goto done;
        v->key_lengths = arena_alloc(p, (keys.count ? keys.count : 1) * sizeof(size_t));
        if (!v->key_lengths) goto done;
        for (size_t i = 0; i < keys.count; i++) v->key_lengths[i] = (size_t)(uintptr_t)key_lengths.data[i];
    }
    rc = 0;
done:
    free(items.data);
    free(keys.data);
    free(key_lengths.data);
    return rc;
}

static json_value *parse_value(parser *p, int depth) {
    skip_space(p);
    if (depth > JSON_MAX_DEPTH) {
        fail_at(p, p->pos, "nesting too deep");
        return NULL;
    }
    if (p->pos >= p->len) {
        fail_at(p, p->pos, "unexpected end of input");
        return NULL;
    }
    json_value *v = arena_alloc(p, sizeof *v);
    if (!v) return NULL;
    memset(v, 0, sizeof *v);
    v->line = p->line;
    int rc;
    switch (p->text[p->pos]) {
    case '{':
    case '[': rc = parse_container(p, v, depth); break;
    case '"':
        v->type = JSON_STRING;
        rc = parse_string(p, &v->string, &v->length);
        break;
    case 't':
        v->type = JSON_BOOL;
        v->boolean = true;
        rc = expect_literal(p, "true");
        break;
    case 'f':
        v->type = JSON_BOOL;
        rc = expect_literal(p, "false");
        break;
    case 'n':
        v->type = JSON_NULL;
        rc = expect_literal(p, "null");
        break;
    default: rc = parse_number(p, v); break;
    }
    return rc ? NULL : v;
}

int json_parse(const char *text, size_t len, const char *source, json_doc *doc, gk_err *err) {
    memset(doc, 0, sizeof *doc);
    parser p = {.text = text, .len = len, .line = 1, .source = source, .doc = doc, .err = err};
    json_value *root = parse_value(&p, 0);
    if (root) {
        skip_space(&p);
        if (p.pos != p.len) {
            fail_at(&p, p.pos, "trailing characters after the value");
            root = NULL;
        }
    }
    if (!root) {
        json_free(doc);
        return -1;
    }
    doc->root = root;
    return 0;
}

void json_free(json_doc *doc) {
    json_arena_block *b = doc->blocks;
    while (b) {
        json_arena_block *next = b->next;
        free(b);
        b = next;
    }
    doc->blocks = NULL;
    doc->root = NULL;
}

const json_value *json_get(const json_value *object, const char *key) {
    if (!object || object->type != JSON_OBJECT) return NULL;
    size_t n = strlen(key);
    for (size_t i = object->count; i-- > 0;)
        if (object->key_lengths[i] == n && memcmp(object->keys[i], key, n) == 0) return object->items[i];
    return NULL;
}

static int compare_key_index(const void *a, const void *b, void *context) {
    const json_value *o = context;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    size_t li = o->key_lengths[i], lj = o->key_lengths[j];
    int c = memcmp(o->keys[i], o->keys[j], li < lj ? li : lj);
    if (c) return c;
    return (li > lj) - (li < lj);
}

const char *json_duplicate_key(const json_value *object) {
    if (!object || object->type != JSON_OBJECT || object->count < 2) return NULL;
    size_t *order = malloc(object->count * sizeof *order);
    if (!order) return NULL;
    for (size_t i = 0; i < object->count; i++) order[i] = i;
    qsort_r(order, object->count, sizeof *order, compare_key_index, (void *)object);
    const char *dup = NULL;
    for (size_t i = 1; i < object->count && !dup; i++)
        if (compare_key_index(&order[i - 1], &order[i], (void *)object) == 0) dup = object->keys[order[i]];
    free(order);
    return dup;
}

const char *json_type_name(json_type type) {
    static const char *names[] = {"null", "boolean", "number", "string", "array", "object"};
    return names[type];
}

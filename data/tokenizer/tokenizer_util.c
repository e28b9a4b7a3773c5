// String map, byte trie, UTF-8 repair and the output vector of the tokenizers.
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "data/tokenizer/tokenizer_impl.h"

// ---------------------------------------------------------------- string map

static uint32_t str_hash(const char *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, s, n);
    h = (h ^ v) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (uint32_t)h;
}

static int slots_alloc(tok_strmap *m, size_t cap, gk_err *err) {
    m->slots = gk_malloc(cap * sizeof *m->slots, err);
    if (!m->slots) return -1;
    for (size_t i = 0; i < cap; i++) m->slots[i].value = -1;
    m->mask = cap - 1;
    return 0;
}

int strmap_init(tok_strmap *m, size_t expected, gk_err *err) {
    memset(m, 0, sizeof *m);
    size_t cap = 16;
    while (cap < 2 * expected + 16) cap *= 2;
    return slots_alloc(m, cap, err);
}

void strmap_free(tok_strmap *m) {
    free(m->slots);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

static int strmap_grow(tok_strmap *m, gk_err *err) {
    tok_strslot *old = m->slots;
    size_t old_cap = m->mask + 1;
    if (slots_alloc(m, 2 * old_cap, err)) {
        m->slots = old;
        return -1;
    }
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].value < 0) continue;
        size_t j = old[i].hash & m->mask;
        while (m->slots[j].value >= 0) j = (j + 1) & m->mask;
        m->slots[j] = old[i];
    }
    free(old);
    return 0;
}

int strmap_put(tok_strmap *m, const char *key, size_t len, int32_t value, int32_t *old, gk_err *err) {
    *old = -1;
    if (value < 0) return gk_fail(err, GK_EINTERNAL, "negative value in a string map");
    uint32_t h = str_hash(key, len);
    size_t i = h & m->mask;
    for (; m->slots[i].value >= 0; i = (i + 1) & m->mask) {
        const tok_strslot *s = &m->slots[i];
        if (s->hash == h && s->len == len && memcmp(m->arena + s->off, key, len) == 0) {
            *old = s->value;
            return 0;
        }
    }
    if (m->arena_len + len + 1 > UINT32_MAX) return gk_fail(err, GK_EINPUT, "token strings exceed 4 GiB");
    if (m->arena_len + len + 1 > m->arena_cap) {
        size_t cap = m->arena_cap ? m->arena_cap : 4096;
        while (cap < m->arena_len + len + 1) cap *= 2;
        char *a = realloc(m->arena, cap);
        if (!a) return gk_fail(err, GK_ENOMEM, "out of memory for token strings (%zu bytes)", cap);
        m->arena = a;
        m->arena_cap = cap;
    }
    if (len) memcpy(m->arena + m->arena_len, key, len);
    m->arena[m->arena_len + len] = 0;
    m->slots[i] = (tok_strslot){.off = (uint32_t)m->arena_len, .len = (uint32_t)len, .hash = h, .value = value};
    m->arena_len += len + 1;
    m->count++;
    if (2 * m->count > m->mask + 1) return strmap_grow(m, err);
    return 0;
}

int32_t strmap_get(const tok_strmap *m, const char *key, size_t len) {
    if (!m->slots) return -1;
    uint32_t h = str_hash(key, len);
    for (size_t i = h & m->mask; m->slots[i].value >= 0; i = (i + 1) & m->mask) {
        const tok_strslot *s = &m->slots[i];
        if (s->hash == h && s->len == len && memcmp(m->arena + s->off, key, len) == 0) return s->value;
    }
    return -1;
}

// ---------------------------------------------------------------- trie

int trie_init(tok_trie *t, gk_err *err) {
    memset(t, 0, sizeof *t);
    for (int i = 0; i < 256; i++) t->first[i] = -1;
    return bpe_pairs_init(&t->edges, 16, err);
}

void trie_free(tok_trie *t) {
    bpe_pairs_free(&t->edges);
    free(t->value);
    memset(t, 0, sizeof *t);
}

static int32_t new_node(tok_trie *t, gk_err *err) {
    if (t->n_nodes == t->cap_nodes) {
        size_t cap = t->cap_nodes ? 2 * t->cap_nodes : 64;
        if (cap > (size_t)INT32_MAX) return gk_fail(err, GK_EINPUT, "too many added-token bytes");
        int32_t *v = realloc(t->value, cap * sizeof *v);
        if (!v) return gk_fail(err, GK_ENOMEM, "out of memory for the token trie");
        t->value = v;
        t->cap_nodes = cap;
    }
    t->value[t->n_nodes] = -1;
    return (int32_t)t->n_nodes++;
}

int trie_add(tok_trie *t, const char *s, size_t len, int32_t value, gk_err *err) {
    if (!len) return gk_fail(err, GK_EINTERNAL, "empty trie pattern");
    const unsigned char *u = (const unsigned char *)s;
    int32_t node = t->first[u[0]];
    if (node < 0) {
        if ((node = new_node(t, err)) < 0) return -1;
        t->first[u[0]] = node;
    }
    for (size_t i = 1; i < len; i++) {
        const bpe_pair_slot *e = bpe_pairs_get(&t->edges, node, u[i]);
        if (e) {
            node = (int32_t)e->value;
            continue;
        }
        int32_t child = new_node(t, err);
        if (child < 0 || bpe_pairs_put(&t->edges, node, u[i], 0, (uint32_t)child, err)) return -1;
        node = child;
    }
    if (t->value[node] < 0) t->value[node] = value;
    t->n_patterns++;
    return 0;
}

size_t trie_longest(const tok_trie *t, const char *s, size_t n, int32_t *value) {
    if (!n) return 0;
    const unsigned char *u = (const unsigned char *)s;
    int32_t node = t->first[u[0]];
    size_t best = 0;
    for (size_t i = 1; node >= 0; i++) {
        if (t->value[node] >= 0) {
            best = i;
            *value = t->value[node];
        }
        if (i >= n) break;
        const bpe_pair_slot *e = bpe_pairs_get(&t->edges, node, u[i]);
        node = e ? (int32_t)e->value : -1;
    }
    return best;
}

// ---------------------------------------------------------------- UTF-8


bool utf8_is_valid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, bad;
    while (i < n) {
        if (n - i >= 8) { // fast path over ASCII words
            uint64_t v;
            memcpy(&v, u + i, 8);
            if (!(v & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        size_t k = utf8_scan(u + i, n - i, &bad);
        if (!k) return false;
        i += k;
    }
    return true;
}

int utf8_repair(const char *text, size_t len, char **out, size_t *out_len, uint32_t **map, gk_err *err) {
    *out = NULL;
    *out_len = 0;
    if (map) *map = NULL;
    if (utf8_is_valid(text, len)) return 0;
    if (len > TOK_MAX_TEXT) return gk_fail(err, GK_EINPUT, "text of %zu bytes is longer than 1 GiB", len);
    const unsigned char *u = (const unsigned char *)text;
    size_t cap = 3 * len + 1, n = 0, bad; // each invalid byte becomes at most 3 bytes
    char *o = gk_malloc(cap, err);
    uint32_t *m = map ? gk_malloc((cap + 1) * sizeof *m, err) : NULL;
    if (!o || (map && !m)) {
        free(o);
        free(m);
        return -1;
    }
    for (size_t i = 0; i < len;) {
        size_t k = utf8_scan(u + i, len - i, &bad);
        const char *src = k ? text + i : "\xEF\xBF\xBD";
        size_t w = k ? k : 3;
        memcpy(o + n, src, w);
        if (m)
            for (size_t j = 0; j < w; j++) m[n + j] = (uint32_t)i;
        n += w;
        i += k ? k : bad;
    }
    o[n] = 0;
    if (m) m[n] = (uint32_t)len;
    *out = o;
    *out_len = n;
    if (map) *map = m;
    return 0;
}

// ---------------------------------------------------------------- output

int tok_out_push(tok_out *o, int32_t id, size_t start, size_t end, gk_err *err) {
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 256;
        int32_t *ids = realloc(o->ids, cap * sizeof *ids);
        if (!ids) return gk_fail(err, GK_ENOMEM, "out of memory for %zu token ids", cap);
        o->ids = ids;
        if (o->want_offsets) {
            size_t *offs = realloc(o->offs, 2 * cap * sizeof *offs);
            if (!offs) return gk_fail(err, GK_ENOMEM, "out of memory for %zu token offsets", cap);
            o->offs = offs;
        }
        o->cap = cap;
    }
    o->ids[o->n] = id;
    if (o->want_offsets) {
        o->offs[2 * o->n] = start;
        o->offs[2 * o->n + 1] = end;
    }
    o->n++;
    return 0;
}

// ---------------------------------------------------------------- id -> text

int tok_set_strings(tokenizer *t, int32_t vocab_size, const char *const *text, const size_t *len, gk_err *err) {
    size_t total = 0;
    for (int32_t i = 0; i < vocab_size; i++) total += text[i] ? len[i] : 0;
    t->strings = gk_malloc(total + 1, err);
    t->string_off = gk_malloc(((size_t)vocab_size + 1) * sizeof *t->string_off, err);
    t->assigned = gk_calloc((size_t)vocab_size + 1, 1, err);
    if (!t->strings || !t->string_off || !t->assigned) return -1;
    size_t at = 0;
    for (int32_t i = 0; i < vocab_size; i++) {
        t->string_off[i] = at;
        if (!text[i]) continue;
        memcpy(t->strings + at, text[i], len[i]);
        at += len[i];
        t->assigned[i] = 1;
    }
    t->string_off[vocab_size] = at;
    t->strings[at] = 0;
    t->vocab_size = vocab_size;
    return 0;
}

#include "data/tokenizer/bpe.h"

#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------- pair map

static inline uint64_t pair_key(int32_t left, int32_t right) {
    return (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
}

static inline size_t pair_hash(uint64_t key, size_t mask) {
    key ^= key >> 29;
    key *= 0xbf58476d1ce4e5b9ull;
    key ^= key >> 32;
    return (size_t)key & mask;
}

int bpe_pairs_init(bpe_pairs *p, size_t expected, gk_err *err) {
    size_t cap = 16;
    while (cap < 2 * expected + 16) cap *= 2; // load factor <= 1/2
    p->slots = gk_malloc(cap * sizeof *p->slots, err);
    if (!p->slots) return -1;
    memset(p->slots, 0xff, cap * sizeof *p->slots);
    p->mask = cap - 1;
    p->count = 0;
    p->left_bits = p->right_bits = NULL;
    p->bit_words = 0;
    return 0;
}

void bpe_pairs_free(bpe_pairs *p) {
    free(p->slots);
    free(p->left_bits);
    free(p->right_bits);
    memset(p, 0, sizeof *p);
}

// Grows both bit sets to cover ids up to `id`.
static int cover(bpe_pairs *p, uint32_t id, gk_err *err) {
    size_t need = id / 64 + 1, n = p->bit_words ? p->bit_words : 64;
    if (need <= p->bit_words) return 0;
    while (n < need) n *= 2;
    uint64_t *l = realloc(p->left_bits, n * sizeof *l);
    if (l) p->left_bits = l;
    uint64_t *r = l ? realloc(p->right_bits, n * sizeof *r) : NULL;
    if (r) p->right_bits = r;
    if (!l || !r) return gk_fail(err, GK_ENOMEM, "out of memory for the merge table");
    memset(l + p->bit_words, 0, (n - p->bit_words) * sizeof *l);
    memset(r + p->bit_words, 0, (n - p->bit_words) * sizeof *r);
    p->bit_words = n;
    return 0;
}

static int grow(bpe_pairs *p, gk_err *err) {
    bpe_pairs bigger;
    if (bpe_pairs_init(&bigger, p->mask + 1, err)) return -1;
    bigger.left_bits = p->left_bits, bigger.right_bits = p->right_bits, bigger.bit_words = p->bit_words;
    for (size_t i = 0; i <= p->mask; i++) {
        const bpe_pair_slot *s = &p->slots[i];
        if (s->key == UINT64_MAX) continue;
        size_t j = pair_hash(s->key, bigger.mask);
        while (bigger.slots[j].key != UINT64_MAX) j = (j + 1) & bigger.mask;
        bigger.slots[j] = *s;
    }
    bigger.count = p->count;
    free(p->slots);
    *p = bigger;
    return 0;
}

int bpe_pairs_put(bpe_pairs *p, int32_t left, int32_t right, uint32_t rank, uint32_t value, gk_err *err) {
    if (left < 0 || right < 0) return gk_fail(err, GK_EINTERNAL, "bpe pair with a negative id");
    if (2 * (p->count + 1) > p->mask + 1 && grow(p, err)) return -1;
    uint64_t key = pair_key(left, right);
    size_t i = pair_hash(key, p->mask);
    while (p->slots[i].key != UINT64_MAX && p->slots[i].key != key) i = (i + 1) & p->mask;
    if (p->slots[i].key == UINT64_MAX) p->count++;
    p->slots[i] = (bpe_pair_slot){.key = key, .rank = rank, .value = value};
    if (cover(p, (uint32_t)(left > right ? left : right), err)) return -1;
    p->left_bits[left / 64] |= 1ull << (left % 64);
    p->right_bits[right / 64] |= 1ull << (right % 64);
    return 0;
}

const bpe_pair_slot *bpe_pairs_get(const bpe_pairs *p, int32_t left, int32_t right) {
    if (left < 0 || right < 0 || !p->slots) return NULL; // negative ids never merge
    size_t wl = (uint32_t)left / 64, wr = (uint32_t)right / 64;
    if (wl >= p->bit_words || wr >= p->bit_words || !(p->left_bits[wl] >> (left % 64) & 1) ||
        !(p->right_bits[wr] >> (right % 64) & 1))
        return NULL;
    uint64_t key = pair_key(left, right);
    for (size_t i = pair_hash(key, p->mask);; i = (i + 1) & p->mask) {
        const bpe_pair_slot *s = &p->slots[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
    }
}

// ---------------------------------------------------------------- work space

int bpe_work_push(bpe_work *w, int32_t id, uint32_t start, uint32_t len, gk_err *err) {
    if (w->n_sym == w->cap_sym) {
        size_t cap = w->cap_sym ? 2 * w->cap_sym : 256;
        bpe_symbol *s = realloc(w->sym, cap * sizeof *s);
        if (!s) return gk_fail(err, GK_ENOMEM, "out of memory for %zu BPE symbols", cap);
        w->sym = s;
        w->cap_sym = cap;
    }
    int32_t i = (int32_t)w->n_sym++;
    w->sym[i] = (bpe_symbol){.id = id, .start = start, .len = len, .prev = i - 1, .next = BPE_NONE};
    if (i > 0) w->sym[i - 1].next = i;
    return 0;
}

void bpe_work_reset(bpe_work *w) {
    w->n_sym = 0;
    w->n_heap = 0;
    w->n_rev = 0;
}

void bpe_work_free(bpe_work *w) {
    free(w->sym);
    free(w->heap);
    free(w->rev);
    memset(w, 0, sizeof *w);
}

// ---------------------------------------------------------------- heap (min on key)

static inline void heap_push(bpe_work *w, bpe_entry e) {
    bpe_entry *h = w->heap;
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h[parent].key <= e.key) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = e;
}

static inline bpe_entry heap_pop(bpe_work *w) {
    bpe_entry *h = w->heap, top = h[0], last = h[--w->n_heap];
    size_t n = w->n_heap, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1].key < h[c].key) c++;
        if (last.key <= h[c].key) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = last;
    return top;
}

static int remember_split(bpe_work *w, int32_t id, uint32_t left_len, gk_err *err) {
    if (w->n_rev == w->cap_rev) {
        size_t cap = w->cap_rev ? 2 * w->cap_rev : 16;
        bpe_rev *r = realloc(w->rev, cap * sizeof *r);
        if (!r) return gk_fail(err, GK_ENOMEM, "out of memory for BPE splits");
        w->rev = r;
        w->cap_rev = cap;
    }
    w->rev[w->n_rev++] = (bpe_rev){.id = id, .left_len = left_len};
    return 0;
}

// Queues the pair (left, right) if the vocabulary merges it.
static inline int try_queue(const bpe_pairs *pairs, bpe_work *w, int32_t left, int32_t right, gk_err *err) {
    const bpe_symbol *l = &w->sym[left], *r = &w->sym[right];
    const bpe_pair_slot *s = bpe_pairs_get(pairs, l->id, r->id);
    if (!s) return 0;
    heap_push(w, (bpe_entry){.key = (uint64_t)s->rank << 32 | (uint32_t)left, .value = s->value, .len = l->len + r->len});
    if (s->value & BPE_REV) return remember_split(w, (int32_t)(s->value & ~BPE_REV), l->len, err);
    return 0;
}

int bpe_merge(const bpe_pairs *pairs, bpe_work *w, bpe_stale_rule rule, gk_err *err) {
    size_t n = w->n_sym;
    w->n_heap = 0;
    w->n_rev = 0;
    if (n < 2) return 0;
    if (n > (size_t)INT32_MAX / 3) return gk_fail(err, GK_EINPUT, "a word of %zu symbols is too long to merge", n);
    if (w->cap_heap < 3 * n) { // each merge queues at most two pairs
        free(w->heap);
        w->heap = gk_malloc(3 * n * sizeof *w->heap, err);
        w->cap_heap = w->heap ? 3 * n : 0;
        if (!w->heap) return -1;
    }
    bpe_symbol *sym = w->sym;
    for (size_t i = 0; i + 1 < n; i++)
        if (try_queue(pairs, w, (int32_t)i, (int32_t)i + 1, err)) return -1;
    while (w->n_heap) {
        bpe_entry e = heap_pop(w);
        int32_t pos = (int32_t)(uint32_t)e.key;
        bpe_symbol *l = &sym[pos];
        if (l->len == 0 || l->next == BPE_NONE) continue;
        bpe_symbol *r = &sym[l->next];
        uint32_t merged = e.value & ~BPE_REV;
        if (l->len + r->len != e.len) { // one side changed since it was queued
            if (rule == BPE_STALE_BY_LENGTH) continue;
            const bpe_pair_slot *now = bpe_pairs_get(pairs, l->id, r->id);
            if (!now || (now->value & ~BPE_REV) != merged) continue;
        }
        l->id = (int32_t)merged;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next != BPE_NONE) sym[r->next].prev = pos;
        if (l->prev != BPE_NONE && try_queue(pairs, w, l->prev, pos, err)) return -1;
        if (l->next != BPE_NONE && try_queue(pairs, w, pos, l->next, err)) return -1;
    }
    return 0;
}

// Encoding and decoding with a tokenizer.json, step for step as the tokenizers
// library (AddedVocabulary::extract_and_normalize, NormalizedString, Split,
// BPE::merge_word, TemplateProcessing; decoders Replace, ByteFallback, Fuse).
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer/tokenizer_hf.h"

// Per-call scratch: the normalized text of the current segment and, when
// offsets are wanted, each normalized byte's range in the encoded text
// (NormalizedString's alignments).
typedef struct {
    char *norm, *tmp;            // [norm_len], [cap]
    uint32_t *al[2], *tal[2];    // alignments of norm / tmp: start and end
    size_t norm_len, cap;
    bool align;
    uint32_t *seg;               // pre-tokenizer pieces: start, end, is_match triples [3 * n_seg]
    size_t n_seg, cap_seg;
    bpe_work bpe;
} hf_scratch;

typedef struct {
    const tokenizer *t;
    const hf_model *m;
    const char *s; // the text being encoded
    hf_scratch sc;
    tok_out *out;
    gk_err *err;
} hf_encoder;

static void scratch_free(hf_scratch *sc) {
    free(sc->norm);
    free(sc->tmp);
    for (int k = 0; k < 2; k++) free(sc->al[k]), free(sc->tal[k]);
    free(sc->seg);
    bpe_work_free(&sc->bpe);
}

static int reserve(hf_scratch *sc, size_t need, gk_err *err) {
    if (need <= sc->cap) return 0;
    size_t cap = sc->cap ? sc->cap : 256;
    while (cap < need) cap *= 2;
    char *a = realloc(sc->norm, cap), *b = a ? realloc(sc->tmp, cap) : NULL;
    if (a) sc->norm = a;
    if (b) sc->tmp = b;
    if (!a || !b) return gk_fail(err, GK_ENOMEM, "out of memory normalizing %zu bytes", need);
    for (int k = 0; sc->align && k < 2; k++) {
        uint32_t *x = realloc(sc->al[k], cap * sizeof *x);
        if (x) sc->al[k] = x;
        uint32_t *y = x ? realloc(sc->tal[k], cap * sizeof *y) : NULL;
        if (y) sc->tal[k] = y;
        if (!x || !y) return gk_fail(err, GK_ENOMEM, "out of memory normalizing %zu bytes", need);
    }
    sc->cap = cap;
    return 0;
}

// Appends norm[from .. from + len) to tmp with its alignments.
static void copy(hf_scratch *sc, size_t *n, size_t from, size_t len) {
    memcpy(sc->tmp + *n, sc->norm + from, len);
    if (sc->align)
        for (int k = 0; k < 2; k++) memcpy(sc->tal[k] + *n, sc->al[k] + from, len * sizeof(uint32_t));
    *n += len;
}

// Appends new bytes to tmp, each aligned to [start, end).
static void insert(hf_scratch *sc, size_t *n, const char *bytes, size_t len, uint32_t start, uint32_t end) {
    memcpy(sc->tmp + *n, bytes, len);
    for (size_t i = 0; sc->align && i < len; i++) sc->tal[0][*n + i] = start, sc->tal[1][*n + i] = end;
    *n += len;
}

static void swap_buffers(hf_scratch *sc, size_t n) {
    char *c = sc->norm;
    sc->norm = sc->tmp, sc->tmp = c;
    for (int k = 0; k < 2; k++) {
        uint32_t *a = sc->al[k];
        sc->al[k] = sc->tal[k], sc->tal[k] = a;
    }
    sc->norm_len = n;
}

static const char *find(const char *hay, size_t n, const char *needle, size_t k) {
    if (k == 1) return memchr(hay, needle[0], n);
    return memmem(hay, n, needle, k);
}

// Replace: each match's replacement takes the alignment of the match's last
// byte (NormalizedString::replace, all new characters "inserted").
static int step_replace(hf_scratch *sc, const hf_step *st, gk_err *err) {
    size_t n = 0, i = 0, len = sc->norm_len;
    for (;;) {
        const char *hit = find(sc->norm + i, len - i, st->pattern, st->pattern_len);
        size_t j = hit ? (size_t)(hit - sc->norm) : len;
        if (reserve(sc, n + (j - i) + st->content_len + 1, err)) return -1;
        copy(sc, &n, i, j - i);
        if (!hit) break;
        size_t last = j + st->pattern_len - 1;
        insert(sc, &n, st->content, st->content_len, sc->align ? sc->al[0][last] : 0, sc->align ? sc->al[1][last] : 0);
        i = j + st->pattern_len;
    }
    swap_buffers(sc, n);
    return 0;
}

// Prepend: the prefix takes the first character's alignment.
static int step_prepend(hf_scratch *sc, const hf_step *st, gk_err *err) {
    size_t n = 0, len = sc->norm_len;
    if (!len) return 0;
    if (reserve(sc, len + st->content_len + 1, err)) return -1;
    insert(sc, &n, st->content, st->content_len, sc->align ? sc->al[0][0] : 0, sc->align ? sc->al[1][0] : 0);
    copy(sc, &n, 0, len);
    swap_buffers(sc, n);
    return 0;
}

// Normalizes src[0..n), whose bytes are at base.. in the encoded text, into sc->norm.
static int normalize(const hf_model *m, hf_scratch *sc, const char *src, size_t n, uint32_t base, gk_err *err) {
    if (reserve(sc, n + 1, err)) return -1;
    memcpy(sc->norm, src, n);
    sc->norm_len = n;
    if (sc->align) // every byte of a character is aligned to the whole character
        for (size_t i = 0; i < n;) {
            size_t k = utf8_char_len((unsigned char)src[i]);
            for (size_t j = 0; j < k; j++) sc->al[0][i + j] = base + (uint32_t)i, sc->al[1][i + j] = base + (uint32_t)(i + k);
            i += k;
        }
    for (size_t i = 0; i < m->n_norm; i++) {
        int rc = m->norm[i].op == HF_NORM_REPLACE ? step_replace(sc, &m->norm[i], err) : step_prepend(sc, &m->norm[i], err);
        if (rc) return -1;
    }
    return 0;
}

int hf_normalize_string(const hf_model *m, const char *text, size_t n, char **out, size_t *out_len, gk_err *err) {
    hf_scratch sc = {0};
    *out = NULL;
    int rc = normalize(m, &sc, text, n, 0, err);
    if (rc == 0) {
        *out = sc.norm;
        *out_len = sc.norm_len;
        sc.norm = NULL;
    }
    scratch_free(&sc);
    return rc;
}

// ---------------------------------------------------------------- added tokens

static bool is_space(uint32_t c) { // Unicode White_Space (Rust's \s)
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Rust's \w: exact for ASCII; other characters count as word characters except
// white space and the common punctuation blocks (an approximation).
static bool is_word(uint32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    if (is_space(c)) return false;
    if (c == 0x200C || c == 0x200D) return true;
    if ((c >= 0xA1 && c <= 0xBF && c != 0xAA && c != 0xB2 && c != 0xB3 && c != 0xB5 && c != 0xB9 && c != 0xBA &&
         !(c >= 0xBC && c <= 0xBE)) || c == 0xD7 || c == 0xF7)
        return false;
    return !((c >= 0x2000 && c <= 0x206F) || (c >= 0x3000 && c <= 0x303F) || (c >= 0xFF01 && c <= 0xFF0F) ||
             (c >= 0xFF1A && c <= 0xFF20));
}

static size_t char_before(const char *s, size_t at) {
    size_t p = at - 1;
    while (p > 0 && ((unsigned char)s[p] & 0xC0) == 0x80) p--;
    return p;
}

typedef int (*piece_fn)(hf_encoder *e, size_t start, size_t end, int32_t added);

// AddedVocabulary::find_matches: leftmost-longest matches of the trie over
// sen[0..n), with the single_word / lstrip / rstrip rules; calls fn for the
// text between matches (added = -1) and for each kept match.
static int find_matches(hf_encoder *e, const tok_trie *trie, const char *sen, size_t n, piece_fn fn) {
    const hf_model *m = e->m;
    if (!trie->n_patterns) return n ? fn(e, 0, n, -1) : 0;
    size_t start_offset = 0;
    for (size_t i = 0; i < n;) {
        int32_t idx;
        size_t len = trie_longest(trie, sen + i, n - i, &idx);
        if (!len) {
            i++;
            continue;
        }
        size_t start = i, stop = i + len;
        i = stop;
        const hf_added *a = &m->added[idx];
        if (a->single_word) {
            bool start_space = start == 0 || !is_word(utf8_code_point((const unsigned char *)sen + char_before(sen, start)));
            bool stop_space = stop == n || !is_word(utf8_code_point((const unsigned char *)sen + stop));
            if (!start_space || !stop_space) continue;
        }
        if (a->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t p = char_before(sen, ns);
                if (!is_space(utf8_code_point((const unsigned char *)sen + p))) break;
                ns = p;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip)
            while (stop < n && is_space(utf8_code_point((const unsigned char *)sen + stop)))
                stop += utf8_char_len((unsigned char)sen[stop]);
        if (start_offset < start && fn(e, start_offset, start, -1)) return -1;
        if (fn(e, start, stop, idx)) return -1;
        start_offset = stop;
    }
    if (start_offset < n) return fn(e, start_offset, n, -1);
    return 0;
}

// ---------------------------------------------------------------- model

static int emit(hf_encoder *e, int32_t id, size_t a, size_t b) { // normalized bytes [a, b)
    const hf_scratch *sc = &e->sc;
    if (!sc->align) return tok_out_push(e->out, id, 0, 0, e->err);
    return tok_out_push(e->out, id, sc->al[0][a], sc->al[1][b - 1], e->err);
}

static bool bytes_known(const hf_model *m, const unsigned char *c, size_t k) {
    for (size_t j = 0; j < k; j++)
        if (m->byte_ids[c[j]] < 0) return false;
    return true;
}

// BPE::merge_word over norm[a..b), then Word::merge_all; offsets are the
// running sum of symbol lengths, as tokenizers computes them.
static int bpe_word(hf_encoder *e, size_t a, size_t b) {
    const hf_model *m = e->m;
    const unsigned char *w = (const unsigned char *)e->sc.norm + a;
    size_t n = b - a;
    if (!n) return 0;
    if (m->ignore_merges) {
        int32_t id = strmap_get(&m->vocab, (const char *)w, n);
        if (id >= 0) return emit(e, id, a, b);
    }
    bpe_work *bw = &e->sc.bpe;
    bpe_work_reset(bw);
    uint32_t pos = 0, unk_len = 0;
    bool unk_pending = false;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_char_len(w[i]);
        int32_t id = k <= 3 ? m->bmp_ids[utf8_code_point(w + i)] : strmap_get(&m->vocab, (const char *)w + i, k);
        if (id >= 0) {
            if (unk_pending && bpe_work_push(bw, m->unk, pos, unk_len, e->err)) return -1;
            if (unk_pending) pos += unk_len, unk_pending = false;
            if (bpe_work_push(bw, id, pos, (uint32_t)k, e->err)) return -1;
            pos += (uint32_t)k;
        } else if (m->byte_fallback && bytes_known(m, w + i, k)) {
            for (size_t j = 0; j < k; j++, pos++) // a pending unknown stays pending (as in merge_word)
                if (bpe_work_push(bw, m->byte_ids[w[i + j]], pos, 1, e->err)) return -1;
        } else if (m->unk >= 0) {
            if (unk_pending && m->fuse_unk) {
                unk_len += (uint32_t)k;
            } else {
                if (unk_pending && bpe_work_push(bw, m->unk, pos, unk_len, e->err)) return -1;
                if (unk_pending) pos += unk_len;
                unk_pending = true;
                unk_len = (uint32_t)k;
            }
        } // no unk_token: the character is dropped
        i += k;
    }
    if (unk_pending && bpe_work_push(bw, m->unk, pos, unk_len, e->err)) return -1;
    if (!bw->n_sym) return 0;
    if (bpe_merge(&m->merges, bw, BPE_STALE_BY_PAIR, e->err)) return -1;
    for (int32_t i = 0; i != BPE_NONE; i = bw->sym[i].next)
        if (emit(e, bw->sym[i].id, a + bw->sym[i].start, a + bw->sym[i].start + bw->sym[i].len)) return -1;
    return 0;
}

// ---------------------------------------------------------------- pre-tokenizer

static int push_seg(hf_scratch *sc, size_t start, size_t end, bool match, gk_err *err) {
    if (sc->n_seg == sc->cap_seg) {
        size_t cap = sc->cap_seg ? 2 * sc->cap_seg : 64;
        uint32_t *g = realloc(sc->seg, 3 * cap * sizeof *g);
        if (!g) return gk_fail(err, GK_ENOMEM, "out of memory pre-tokenizing");
        sc->seg = g;
        sc->cap_seg = cap;
    }
    uint32_t *s = sc->seg + 3 * sc->n_seg++;
    s[0] = (uint32_t)start, s[1] = (uint32_t)end, s[2] = match;
    return 0;
}

// Split with a String pattern over norm[a..b) (NormalizedString::split).
static int pre_tokenize(hf_encoder *e, size_t a, size_t b) {
    const hf_model *m = e->m;
    hf_scratch *sc = &e->sc;
    if (!m->split) return bpe_word(e, a, b);
    const hf_step *p = &m->split_pattern;
    sc->n_seg = 0;
    for (size_t i = a; i < b;) { // alternating (text, match) pieces
        const char *hit = find(sc->norm + i, b - i, p->pattern, p->pattern_len);
        size_t j = hit ? (size_t)(hit - sc->norm) : b;
        if (j > i && push_seg(sc, i, j, m->split_invert, e->err)) return -1;
        if (!hit) break;
        if (push_seg(sc, j, j + p->pattern_len, !m->split_invert, e->err)) return -1;
        i = j + p->pattern_len;
    }
    // the behaviour folds the pieces into words (in place); removed pieces get end = start
    uint32_t *s = sc->seg;
    size_t n = sc->n_seg, w = 0;
    switch (m->split_behavior) {
    case HF_SPLIT_REMOVED:
        for (size_t i = 0; i < n; i++)
            if (!s[3 * i + 2]) memmove(s + 3 * w++, s + 3 * i, 3 * sizeof *s);
        break;
    case HF_SPLIT_ISOLATED: w = n; break;
    case HF_SPLIT_MERGED_WITH_PREVIOUS: {
        bool prev_match = false;
        for (size_t i = 0; i < n; i++) {
            bool match = s[3 * i + 2];
            if (match && !prev_match && w > 0) s[3 * (w - 1) + 1] = s[3 * i + 1];
            else memmove(s + 3 * w++, s + 3 * i, 3 * sizeof *s);
            prev_match = match;
        }
        break;
    }
    case HF_SPLIT_MERGED_WITH_NEXT: { // the same from the right
        bool prev_match = false;
        size_t top = n;
        for (size_t i = n; i-- > 0;) {
            bool match = s[3 * i + 2];
            if (match && !prev_match && top < n) s[3 * top] = s[3 * i];
            else memmove(s + 3 * --top, s + 3 * i, 3 * sizeof *s);
            prev_match = match;
        }
        memmove(s, s + 3 * top, 3 * (n - top) * sizeof *s);
        w = n - top;
        break;
    }
    case HF_SPLIT_CONTIGUOUS: {
        bool prev_match = false;
        for (size_t i = 0; i < n; i++) {
            bool match = s[3 * i + 2];
            if (match == prev_match && w > 0) s[3 * (w - 1) + 1] = s[3 * i + 1];
            else memmove(s + 3 * w++, s + 3 * i, 3 * sizeof *s);
            prev_match = match;
        }
        break;
    }
    }
    for (size_t i = 0; i < w; i++) { // bpe_word reuses nothing of seg
        uint32_t start = sc->seg[3 * i], end = sc->seg[3 * i + 1];
        if (end > start && bpe_word(e, start, end)) return -1;
    }
    return 0;
}

// ---------------------------------------------------------------- the pipeline

static int on_normalized_piece(hf_encoder *e, size_t start, size_t end, int32_t added) {
    if (added >= 0) return emit(e, e->m->added[added].id, start, end);
    return pre_tokenize(e, start, end);
}

static int on_input_piece(hf_encoder *e, size_t start, size_t end, int32_t added) {
    if (added >= 0) return tok_out_push(e->out, e->m->added[added].id, start, end, e->err);
    if (normalize(e->m, &e->sc, e->s + start, end - start, (uint32_t)start, e->err)) return -1;
    return find_matches(e, &e->m->norm_trie, e->sc.norm, e->sc.norm_len, on_normalized_piece);
}

static int push_ids(tok_out *out, const int32_t *ids, size_t n, gk_err *err) {
    for (size_t i = 0; i < n; i++)
        if (tok_out_push(out, ids[i], 0, 0, err)) return -1;
    return 0;
}

int hf_encode(const tokenizer *t, const char *s, size_t n, bool add_bos, tok_out *out, gk_err *err) {
    const hf_model *m = t->hf;
    hf_encoder e = {.t = t, .m = m, .s = s, .out = out, .err = err, .sc = {.align = out->want_offsets}};
    int rc = 0;
    if (add_bos && m->has_template) rc = push_ids(out, m->tmpl_before, m->n_before, err);
    else if (add_bos && t->bos_id >= 0) rc = tok_out_push(out, t->bos_id, 0, 0, err);
    if (rc == 0) rc = find_matches(&e, &m->raw_trie, s, n, on_input_piece);
    if (rc == 0 && add_bos && m->has_template) rc = push_ids(out, m->tmpl_after, m->n_after, err);
    scratch_free(&e.sc);
    return rc;
}

// ---------------------------------------------------------------- decode

typedef struct {
    strbuf text;    // the tokens' bytes
    size_t *at;     // [n + 1] token i is text[at[i] .. at[i+1])
    size_t n, cap;
} token_list;

static int list_add(token_list *l, const char *s, size_t len, gk_err *err) {
    if (l->n + 1 >= l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        size_t *at = realloc(l->at, cap * sizeof *at);
        if (!at) return gk_fail(err, GK_ENOMEM, "out of memory decoding");
        l->at = at;
        l->cap = cap;
    }
    if (l->n == 0) l->at[0] = l->text.len;
    sb_append(&l->text, s, len);
    if (l->text.failed) return gk_fail(err, GK_ENOMEM, "out of memory decoding");
    l->at[++l->n] = l->text.len;
    return 0;
}

static void list_free(token_list *l) {
    sb_free(&l->text);
    free(l->at);
    memset(l, 0, sizeof *l);
}

static int hex(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

// "<0xXX>" as the ByteFallback decoder reads it (u8::from_str_radix, which also takes "+X").
static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    if (s[3] == '+') return hex(s[4]);
    int hi = hex(s[3]), lo = hex(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static int decode_step(const hf_step *st, const token_list *in, token_list *out, gk_err *err) {
    const char *base = in->text.data;
    if (st->op == HF_DEC_FUSE) return list_add(out, base ? base + in->at[0] : "", in->n ? in->at[in->n] - in->at[0] : 0, err);
    strbuf bytes = {0}; // ByteFallback: the current run of byte tokens
    size_t run = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i <= in->n; i++) {
        const char *s = i < in->n ? base + in->at[i] : NULL;
        size_t len = i < in->n ? in->at[i + 1] - in->at[i] : 0;
        if (st->op == HF_DEC_REPLACE) {
            if (i == in->n) break;
            strbuf r = {0};
            sb_append(&r, "", 0);
            for (size_t k = 0; k < len;) {
                const char *hit = find(s + k, len - k, st->pattern, st->pattern_len);
                size_t j = hit ? (size_t)(hit - s) : len;
                sb_append(&r, s + k, j - k);
                if (!hit) break;
                sb_append(&r, st->content, st->content_len);
                k = j + st->pattern_len;
            }
            rc = r.failed ? gk_fail(err, GK_ENOMEM, "out of memory decoding") : list_add(out, r.data, r.len, err);
            sb_free(&r);
            continue;
        }
        int b = s ? byte_token(s, len) : -1;
        if (b >= 0) {
            char c = (char)b;
            sb_append(&bytes, &c, 1);
            run++;
            continue;
        }
        if (run) { // a whole valid run becomes its text, else one U+FFFD per byte
            if (utf8_is_valid(bytes.data, bytes.len)) rc = list_add(out, bytes.data, bytes.len, err);
            for (size_t k = 0; rc == 0 && !utf8_is_valid(bytes.data, bytes.len) && k < run; k++)
                rc = list_add(out, "\xEF\xBF\xBD", 3, err);
            bytes.len = 0;
            run = 0;
        }
        if (rc == 0 && s) rc = list_add(out, s, len, err);
    }
    if (rc == 0 && bytes.failed) rc = gk_fail(err, GK_ENOMEM, "out of memory decoding");
    sb_free(&bytes);
    return rc;
}

int hf_decode(const tokenizer *t, const int32_t *ids, size_t n, bool skip_special, strbuf *text, gk_err *err) {
    const hf_model *m = t->hf;
    token_list list = {0}, next = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (skip_special && m->special[ids[i]]) continue;
        rc = list_add(&list, t->strings + t->string_off[ids[i]], t->string_off[ids[i] + 1] - t->string_off[ids[i]], err);
    }
    for (size_t k = 0; rc == 0 && m->has_decoder && k < m->n_dec; k++) {
        rc = decode_step(&m->dec[k], &list, &next, err);
        list_free(&list);
        list = next;
        memset(&next, 0, sizeof next);
    }
    for (size_t i = 0; rc == 0 && i < list.n; i++) { // no decoder: tokens joined by spaces
        if (i && !m->has_decoder) sb_append(text, " ", 1);
        sb_append(text, list.text.data + list.at[i], list.at[i + 1] - list.at[i]);
    }
    list_free(&list);
    list_free(&next);
    return rc;
}

// Encoding and decoding with a SentencePiece BPE model, as
// SentencePieceProcessor::Encode (Normalizer::Normalize, bpe::Model::SampleEncode,
// PopulateSentencePieceText) and ::Decode do it.
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "data/tokenizer/tokenizer_spm.h"

typedef struct {
    char *norm;     // [len] normalized text
    uint32_t *n2o;  // [len + 1] normalized byte -> position in the encoded text
    size_t len;
    bpe_work bpe;
} spm_scratch;

// NormalizePrefix without a charsmap: a user-defined piece, else one character.
static size_t prefix(const spm_model *m, const char *s, size_t n) {
    int32_t id;
    size_t k = trie_longest(&m->user, s, n, &id);
    if (k) return k;
    k = utf8_char_len((unsigned char)s[0]);
    return k < n ? k : n;
}

// Normalizer::Normalize (identity rules): strip/collapse spaces, dummy prefix, escape ' ' as U+2581.
static int normalize(const spm_model *m, const char *s, size_t n, spm_scratch *sc, gk_err *err) {
    static const char space[] = "\xE2\x96\x81";
    sc->len = 0;
    sc->norm = gk_malloc(3 * n + 4, err);
    sc->n2o = gk_malloc((3 * n + 4) * sizeof *sc->n2o, err);
    if (!sc->norm || !sc->n2o) return -1;
    size_t at = 0, out = 0; // at: consumed input bytes
    if (m->remove_extra_whitespaces)
        while (at < n) {
            size_t k = prefix(m, s + at, n - at);
            if (k != 1 || s[at] != ' ') break;
            at += k;
        }
    if (at == n) {
        sc->n2o[0] = (uint32_t)at;
        return 0;
    }
    if (m->add_dummy_prefix) {
        size_t w = m->escape_whitespaces ? 3 : 1;
        memcpy(sc->norm, m->escape_whitespaces ? space : " ", w);
        for (size_t j = 0; j < w; j++) sc->n2o[out++] = (uint32_t)at;
    }
    bool prev_space = m->remove_extra_whitespaces;
    while (at < n) {
        size_t k = prefix(m, s + at, n - at), b = 0;
        while (prev_space && b < k && s[at + b] == ' ') b++;
        if (b < k) {
            for (size_t j = b; j < k; j++) {
                if (m->escape_whitespaces && s[at + j] == ' ') {
                    memcpy(sc->norm + out, space, 3);
                    for (int q = 0; q < 3; q++) sc->n2o[out++] = (uint32_t)at;
                } else {
                    sc->norm[out] = s[at + j];
                    sc->n2o[out++] = (uint32_t)at;
                }
            }
            prev_space = s[at + k - 1] == ' ';
        }
        at += k;
        if (!m->remove_extra_whitespaces) prev_space = false;
    }
    if (m->remove_extra_whitespaces) { // trailing spaces (or U+2581 characters) go
        size_t w = m->escape_whitespaces ? 3 : 1;
        while (out >= w && memcmp(sc->norm + out - w, m->escape_whitespaces ? space : " ", w) == 0) {
            out -= w;
            at = sc->n2o[out];
        }
    }
    sc->n2o[out] = (uint32_t)at;
    sc->len = out;
    return 0;
}

// PieceToId: the reserved map first, then the pieces, else unk.
static int32_t piece_to_id(const spm_model *m, const char *s, size_t n) {
    int32_t id = strmap_get(&m->reserved, s, n);
    if (id < 0) id = strmap_get(&m->pieces, s, n);
    return id < 0 ? m->unk : id;
}

// The output id of a merged symbol from its merge key.
static int32_t symbol_id(const spm_model *m, int32_t key, const char *s, size_t n) {
    if (key < 0) return m->out_id[~key];                  // frozen user-defined piece
    if (key < m->n_pieces) return m->out_id[key];
    if (key < m->n_pieces + m->n_pseudo) return m->pseudo_out[key - m->n_pieces];
    return piece_to_id(m, s, n);                          // a character no piece contains
}

static int32_t merge_key(const spm_model *m, const char *s, size_t n) {
    int32_t key = n <= 3 ? m->bmp_key[utf8_code_point((const unsigned char *)s)] : strmap_get(&m->pieces, s, n);
    if (key < 0 && n > 3) key = strmap_get(&m->char_keys, s, n);
    return key < 0 ? BPE_NO_ID : key;
}

typedef struct {
    const spm_model *m;
    const spm_scratch *sc;
    tok_out *out;
    bool prev_unk;
    gk_err *err;
} emitter;

// One piece of PopulateSentencePieceText: byte fallback for unknowns, or runs of unknowns merged.
static int emit(emitter *e, int32_t id, size_t start, size_t len) {
    const spm_model *m = e->m;
    size_t a = e->sc->n2o[start], b = e->sc->n2o[start + len];
    bool unk = m->type[id] == SPM_UNKNOWN;
    int rc = 0;
    if (unk && m->byte_fallback) {
        for (size_t j = 0; rc == 0 && j < len; j++)
            rc = tok_out_push(e->out, m->byte_ids[(unsigned char)e->sc->norm[start + j]], a, b, e->err);
    } else if (unk && e->prev_unk) {
        if (e->out->want_offsets) e->out->offs[2 * e->out->n - 1] = b;
    } else {
        rc = tok_out_push(e->out, id, a, b, e->err);
    }
    e->prev_unk = unk;
    return rc;
}

// An UNUSED piece is split again the way it was last queued (rev_merge), recursively.
static int resegment(emitter *e, const bpe_work *w, size_t start, size_t len, int32_t id) {
    const spm_model *m = e->m;
    typedef struct {
        uint32_t start, len;
    } span;
    span stack[64], *st = stack;
    size_t top = 0, cap = 64;
    int rc = 0;
    st[top++] = (span){(uint32_t)start, (uint32_t)len};
    bool first = true;
    while (rc == 0 && top) {
        span s = st[--top];
        int32_t sid = first ? id : piece_to_id(m, e->sc->norm + s.start, s.len);
        first = false;
        const bpe_rev *r = NULL;
        if (m->type[sid] == SPM_UNUSED)
            for (size_t k = w->n_rev; k-- > 0 && !r;)
                if (w->rev[k].id == sid) r = &w->rev[k];
        if (!r) {
            rc = emit(e, sid, s.start, s.len);
            continue;
        }
        if (top + 2 > cap) {
            span *g = st == stack ? malloc(2 * cap * sizeof *g) : realloc(st, 2 * cap * sizeof *g);
            if (!g) {
                rc = gk_fail(e->err, GK_ENOMEM, "out of memory");
                break;
            }
            if (st == stack) memcpy(g, stack, sizeof stack);
            st = g;
            cap *= 2;
        }
        st[top++] = (span){s.start + r->left_len, s.len - r->left_len}; // right, then left on top
        st[top++] = (span){s.start, r->left_len};
    }
    if (st != stack) free(st);
    return rc;
}

int spm_encode(const tokenizer *t, const char *s, size_t n, bool add_bos, tok_out *out, gk_err *err) {
    const spm_model *m = t->spm;
    spm_scratch sc = {0};
    int rc = 0;
    if (add_bos && t->bos_id >= 0) rc = tok_out_push(out, t->bos_id, 0, 0, err);
    if (rc == 0) rc = normalize(m, s, n, &sc, err);
    bpe_work *w = &sc.bpe;
    for (size_t i = 0; rc == 0 && i < sc.len;) {
        int32_t pid;
        size_t k = trie_longest(&m->user, sc.norm + i, sc.len - i, &pid);
        int32_t key = k ? ~pid : BPE_NO_ID; // user-defined pieces are frozen
        if (!k) {
            k = utf8_char_len((unsigned char)sc.norm[i]);
            if (k > sc.len - i) k = sc.len - i;
            key = merge_key(m, sc.norm + i, k);
        }
        rc = bpe_work_push(w, key, (uint32_t)i, (uint32_t)k, err);
        i += k;
    }
    if (rc == 0 && w->n_sym) rc = bpe_merge(&m->pairs, w, BPE_STALE_BY_LENGTH, err);
    emitter e = {.m = m, .sc = &sc, .out = out, .err = err};
    for (int32_t i = 0; rc == 0 && w->n_sym && i != BPE_NONE; i = w->sym[i].next) {
        const bpe_symbol *y = &w->sym[i];
        int32_t id = symbol_id(m, y->id, sc.norm + y->start, y->len);
        rc = m->type[id] == SPM_UNUSED ? resegment(&e, w, y->start, y->len, id) : emit(&e, id, y->start, y->len);
    }
    free(sc.norm);
    free(sc.n2o);
    bpe_work_free(w);
    return rc;
}

// ---------------------------------------------------------------- decode

// A run of byte pieces: each valid UTF-8 character as is, each other byte as
// U+FFFD (string_util::IsValidDecodeUTF8 consumes one byte when invalid).
static void flush_bytes(const tokenizer *t, const int32_t *ids, size_t a, size_t b, strbuf *text) {
    if (a >= b) return;
    unsigned char small[64], *buf = b - a <= sizeof small ? small : malloc(b - a);
    if (!buf) {
        text->failed = 1;
        return;
    }
    size_t n = 0;
    for (size_t i = a; i < b; i++) { // "<0xXX>", checked when the model was loaded
        const char *p = t->strings + t->string_off[t->spm->out_id[ids[i]]];
        int hi = p[3] <= '9' ? p[3] - '0' : p[3] - 'A' + 10, lo = p[4] <= '9' ? p[4] - '0' : p[4] - 'A' + 10;
        buf[n++] = (unsigned char)(hi * 16 + lo);
    }
    for (size_t k = 0; k < n;) {
        size_t v = utf8_scan(buf + k, n - k, NULL);
        sb_append(text, v ? (const char *)buf + k : "\xEF\xBF\xBD", v ? v : 3);
        k += v ? v : 1;
    }
    if (buf != small) free(buf);
}

int spm_decode(const tokenizer *t, const int32_t *ids, size_t n, strbuf *text, gk_err *err) {
    (void)err;
    const spm_model *m = t->spm;
    static const char space[] = "\xE2\x96\x81";
    bool is_bos_ws = true, bos_ws_seen = false;
    size_t byte_start = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = m->out_id[ids[i]];
        if (m->type[id] == SPM_BYTE) continue;
        flush_bytes(t, ids, byte_start, i, text);
        byte_start = i + 1;
        if (bos_ws_seen || text->len) is_bos_ws = false;
        bos_ws_seen = false;
        if (m->type[id] == SPM_CONTROL) continue;
        if (m->type[id] == SPM_UNKNOWN) {
            sb_append(text, m->unk_surface, m->unk_surface_len);
            continue;
        }
        const char *p = t->strings + t->string_off[id];
        size_t len = t->string_off[id + 1] - t->string_off[id];
        if (is_bos_ws && (m->add_dummy_prefix || m->remove_extra_whitespaces) && len >= 3 && !memcmp(p, space, 3)) {
            p += 3, len -= 3;
            bos_ws_seen = !m->remove_extra_whitespaces;
        }
        for (size_t k = 0; k < len;) { // U+2581 -> ' '
            const char *hit = memmem(p + k, len - k, space, 3);
            size_t j = hit ? (size_t)(hit - p) : len;
            sb_append(text, p + k, j - k);
            if (!hit) break;
            sb_append(text, " ", 1);
            k = j + 3;
        }
    }
    flush_bytes(t, ids, byte_start, n, text);
    return 0;
}

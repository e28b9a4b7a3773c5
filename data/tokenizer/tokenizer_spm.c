// Loading a SentencePiece tokenizer.model: the ModelProto protobuf read
// directly (proto2 wire format, defaults for absent fields), validated as
// ModelInterface::InitializePieces does, and turned into BPE merge tables.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "data/tokenizer/tokenizer_spm.h"

// ---------------------------------------------------------------- protobuf wire format

typedef struct {
    const unsigned char *p, *end, *base; // base: start of the file (offsets in messages)
    const char *name;
    gk_err *err;
} pb_reader;

static int pb_fail(const pb_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int pb_fail(const pb_reader *r, const char *fmt, ...) {
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gk_fail(r->err, GK_EINPUT, "%s: not a valid SentencePiece model: %s (at byte %zu)", r->name, msg,
                   (size_t)(r->p - r->base));
}

static int varint(pb_reader *r, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) return pb_fail(r, "truncated varint");
        unsigned b = *r->p++;
        if (shift < 64) *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 0;
    }
    return pb_fail(r, "varint longer than 10 bytes");
}

typedef struct {
    uint32_t field;
    int wire;                    // 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
    uint64_t value;              // varint / fixed
    const unsigned char *data;   // length-delimited [len]
    size_t len;
} pb_field;

static int next_field(pb_reader *r, pb_field *f) {
    uint64_t key;
    const unsigned char *at = r->p;
    if (varint(r, &key)) return -1;
    f->field = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    if (key >> 3 == 0 || key >> 3 > 536870911u) return r->p = at, pb_fail(r, "field number %llu", (unsigned long long)(key >> 3));
    switch (f->wire) {
    case 0: return varint(r, &f->value);
    case 1:
    case 5: {
        size_t n = f->wire == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n) return pb_fail(r, "truncated field %u", f->field);
        f->value = 0;
        for (size_t i = 0; i < n; i++) f->value |= (uint64_t)r->p[i] << (8 * i);
        r->p += n;
        return 0;
    }
    case 2: {
        uint64_t n;
        if (varint(r, &n)) return -1;
        if (n > (uint64_t)(r->end - r->p)) return pb_fail(r, "field %u is longer than the rest of the file", f->field);
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        return 0;
    }
    default: return r->p = at, pb_fail(r, "field %u has wire type %d (groups are not used by ModelProto)", f->field, f->wire);
    }
}

static pb_reader sub_reader(const pb_reader *r, const pb_field *f) {
    return (pb_reader){.p = f->data, .end = f->data + f->len, .base = r->base, .name = r->name, .err = r->err};
}

static int want_wire(const pb_reader *r, const pb_field *f, int wire, const char *what) {
    if (f->wire == wire) return 0;
    return pb_fail(r, "%s (field %u) has wire type %d, expected %d", what, f->field, f->wire, wire);
}

// ---------------------------------------------------------------- ModelProto

typedef struct {
    const unsigned char *piece;
    size_t len;
    float score;
    int type;
} raw_piece;

typedef struct {
    const unsigned char *s;
    size_t len;
    bool set;
} raw_string;

typedef struct {
    raw_piece *pieces;
    size_t n_pieces, cap;
    // TrainerSpec
    int model_type;                     // default UNIGRAM (1)
    bool byte_fallback, ws_suffix;
    raw_string unk_surface, unk_piece, bos_piece, eos_piece, pad_piece;
    // NormalizerSpec (and the denormalizer's charsmap)
    raw_string norm_name;
    size_t charsmap_len, denorm_charsmap_len;
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
} model_proto;

static int read_piece(pb_reader *r, raw_piece *out) {
    *out = (raw_piece){.type = SPM_NORMAL};
    pb_field f;
    while (r->p < r->end) {
        if (next_field(r, &f)) return -1;
        if (f.field == 1) {
            if (want_wire(r, &f, 2, "SentencePiece.piece")) return -1;
            out->piece = f.data, out->len = f.len;
        } else if (f.field == 2) {
            if (want_wire(r, &f, 5, "SentencePiece.score")) return -1;
            uint32_t bits = (uint32_t)f.value;
            memcpy(&out->score, &bits, 4);
        } else if (f.field == 3) {
            if (want_wire(r, &f, 0, "SentencePiece.type")) return -1;
            if (f.value < 1 || f.value > 6) return pb_fail(r, "piece type %llu is not one of 1..6", (unsigned long long)f.value);
            out->type = (int)f.value;
        }
    }
    return 0;
}

static int read_trainer(pb_reader *r, model_proto *mp) {
    pb_field f;
    while (r->p < r->end) {
        if (next_field(r, &f)) return -1;
        raw_string *s = f.field == 44 ? &mp->unk_surface : f.field == 45 ? &mp->unk_piece : f.field == 46 ? &mp->bos_piece
                      : f.field == 47 ? &mp->eos_piece : f.field == 48 ? &mp->pad_piece : NULL;
        if (s) {
            if (want_wire(r, &f, 2, "TrainerSpec string")) return -1;
            *s = (raw_string){.s = f.data, .len = f.len, .set = true};
        } else if (f.field == 3 || f.field == 24 || f.field == 35) {
            if (want_wire(r, &f, 0, "TrainerSpec field")) return -1;
            if (f.field == 3) mp->model_type = (int)f.value;
            if (f.field == 24) mp->ws_suffix = f.value != 0;
            if (f.field == 35) mp->byte_fallback = f.value != 0;
        }
    }
    return 0;
}

static int read_normalizer(pb_reader *r, model_proto *mp, bool denormalizer) {
    pb_field f;
    while (r->p < r->end) {
        if (next_field(r, &f)) return -1;
        if (f.field == 1 || f.field == 2) {
            if (want_wire(r, &f, 2, "NormalizerSpec string")) return -1;
            if (f.field == 1 && !denormalizer) mp->norm_name = (raw_string){.s = f.data, .len = f.len, .set = true};
            if (f.field == 2) *(denormalizer ? &mp->denorm_charsmap_len : &mp->charsmap_len) = f.len;
        } else if (!denormalizer && f.field >= 3 && f.field <= 5) {
            if (want_wire(r, &f, 0, "NormalizerSpec flag")) return -1;
            bool v = f.value != 0;
            if (f.field == 3) mp->add_dummy_prefix = v;
            if (f.field == 4) mp->remove_extra_whitespaces = v;
            if (f.field == 5) mp->escape_whitespaces = v;
        }
    }
    return 0;
}

static int read_model_proto(pb_reader *r, model_proto *mp) {
    *mp = (model_proto){.model_type = 1, .add_dummy_prefix = true, .remove_extra_whitespaces = true,
                        .escape_whitespaces = true};
    pb_field f;
    while (r->p < r->end) {
        if (next_field(r, &f)) return -1;
        if (f.field < 1 || f.field > 5 || f.field == 4) continue; // self_test_data and unknown fields
        if (want_wire(r, &f, 2, "ModelProto message")) return -1;
        pb_reader sub = sub_reader(r, &f);
        if (f.field == 1) {
            if (mp->n_pieces == mp->cap) {
                size_t cap = mp->cap ? 2 * mp->cap : 1024;
                raw_piece *g = realloc(mp->pieces, cap * sizeof *g);
                if (!g) return gk_fail(r->err, GK_ENOMEM, "out of memory reading %s", r->name);
                mp->pieces = g;
                mp->cap = cap;
            }
            if (read_piece(&sub, &mp->pieces[mp->n_pieces++])) return -1;
        } else if (f.field == 2) {
            if (read_trainer(&sub, mp)) return -1;
        } else if (read_normalizer(&sub, mp, f.field == 5)) {
            return -1;
        }
    }
    return 0;
}

// ---------------------------------------------------------------- validation and tables

static const char *quote(const unsigned char *s, size_t n, char buf[160]) {
    size_t k = 0;
    buf[k++] = '"';
    for (size_t i = 0; i < n && i < 60; i++) {
        unsigned char c = s[i];
        if (c < 0x20 || c == '"' || c == '\\') k += (size_t)snprintf(buf + k, 8, "\\x%02x", c);
        else buf[k++] = (char)c;
    }
    if (n > 60) memcpy(buf + k, "...", 3), k += 3;
    buf[k++] = '"';
    buf[k] = 0;
    return buf;
}

static int fail(tokenizer *t, gk_err *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(tokenizer *t, gk_err *err, const char *fmt, ...) {
    char msg[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gk_fail(err, GK_EINPUT, "%s: %s", t->name, msg);
}

static int check_proto(tokenizer *t, const model_proto *mp, gk_err *err) {
    static const char *const types[] = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};
    if (mp->model_type != 2)
        return fail(t, err, "trainer_spec.model_type is %s (%d); only BPE (2) is supported",
                    mp->model_type >= 1 && mp->model_type <= 4 ? types[mp->model_type] : "unknown", mp->model_type);
    if (mp->charsmap_len) {
        char q[160];
        return fail(t, err, "normalizer_spec.precompiled_charsmap is not empty (rule %s); only identity normalization "
                    "(normalization_rule_name=identity) is implemented",
                    mp->norm_name.set ? quote(mp->norm_name.s, mp->norm_name.len, q) : "\"\"");
    }
    if (mp->denorm_charsmap_len) return fail(t, err, "denormalizer_spec.precompiled_charsmap is not supported");
    if (mp->ws_suffix) return fail(t, err, "trainer_spec.treat_whitespace_as_suffix is not supported");
    if (!mp->n_pieces) return fail(t, err, "the model has no pieces");
    if (mp->n_pieces >= TOK_MAX_IDS) return fail(t, err, "%zu pieces are more than %d", mp->n_pieces, TOK_MAX_IDS);
    return 0;
}

// PieceToByte: exactly "<0xXX>" with upper-case hex.
static int piece_byte(const unsigned char *s, size_t n) {
    static const char digits[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    const char *hi = memchr(digits, s[3], 16), *lo = memchr(digits, s[4], 16);
    return hi && lo && s[3] && s[4] ? (int)((hi - digits) * 16 + (lo - digits)) : -1;
}

// InitializePieces' checks, plus a few of ours (NaN scores, invalid UTF-8,
// control pieces that text could produce).
static int add_pieces(tokenizer *t, spm_model *m, const model_proto *mp, gk_err *err) {
    char q[160];
    bool bytes_found[256] = {0};
    m->unk = -1;
    for (size_t i = 0; i < mp->n_pieces; i++) {
        const raw_piece *p = &mp->pieces[i];
        int32_t old;
        if (!p->len) return fail(t, err, "piece %zu is empty", i);
        if (memchr(p->piece, 0, p->len)) return fail(t, err, "piece %zu contains a NUL byte", i);
        if (p->len >= 8000) return fail(t, err, "piece %zu is %zu bytes long (limit 8000)", i, p->len);
        if (!utf8_is_valid((const char *)p->piece, p->len)) return fail(t, err, "piece %zu is not valid UTF-8", i);
        if (isnan(p->score)) return fail(t, err, "piece %zu %s has a NaN score", i, quote(p->piece, p->len, q));
        bool normal = p->type == SPM_NORMAL || p->type == SPM_USER_DEFINED || p->type == SPM_UNUSED;
        tok_strmap *map = normal ? &m->pieces : &m->reserved;
        if (strmap_put(map, (const char *)p->piece, p->len, (int32_t)i, &old, err)) return -1;
        if (old >= 0) return fail(t, err, "piece %s (id %zu) is already defined (id %d)", quote(p->piece, p->len, q), i, old);
        m->type[i] = (uint8_t)p->type;
        if (p->type == SPM_UNKNOWN) {
            if (m->unk >= 0) return fail(t, err, "unk is already defined (ids %d and %zu)", m->unk, i);
            m->unk = (int32_t)i;
        }
        if (p->type == SPM_USER_DEFINED && trie_add(&m->user, (const char *)p->piece, p->len, (int32_t)i, err)) return -1;
        if (p->type == SPM_BYTE) {
            int b = piece_byte(p->piece, p->len);
            if (!mp->byte_fallback)
                return fail(t, err, "byte piece %s is found although byte_fallback is false", quote(p->piece, p->len, q));
            if (b < 0) return fail(t, err, "byte piece %s is invalid", quote(p->piece, p->len, q));
            bytes_found[b] = true;
            m->byte_ids[b] = (int32_t)i;
        }
    }
    if (m->unk < 0) return fail(t, err, "unk is not defined (no piece of type UNKNOWN)");
    for (int b = 0; mp->byte_fallback && b < 256; b++)
        if (!bytes_found[b]) return fail(t, err, "there are not 256 byte pieces although byte_fallback is true (<0x%02X> is missing)", b);
    for (size_t i = 0; i < mp->n_pieces; i++) { // a control piece must never come out of the text
        const raw_piece *p = &mp->pieces[i];
        if (p->type != SPM_CONTROL) continue;
        if (utf8_char_len(p->piece[0]) == p->len || strmap_get(&m->pieces, (const char *)p->piece, p->len) >= 0)
            return fail(t, err, "control piece %s (id %zu) is a single character or also a normal piece; "
                        "SentencePiece cannot encode text containing it", quote(p->piece, p->len, q), i);
    }
    return 0;
}

static int by_score_desc(const void *a, const void *b, void *ctx) {
    const raw_piece *p = ctx;
    float x = p[*(const int32_t *)a].score, y = p[*(const int32_t *)b].score;
    return (x < y) - (x > y);
}

// The merge key of a one-character string: its piece id, else a new pseudo key.
static int char_key(spm_model *m, const char *s, size_t n, bool create, int32_t *key, gk_err *err) {
    *key = strmap_get(&m->pieces, s, n);
    if (*key >= 0) return 0;
    *key = strmap_get(&m->char_keys, s, n);
    if (*key >= 0 || !create) return 0;
    if (m->n_pseudo % 256 == 0) {
        int32_t *g = realloc(m->pseudo_out, ((size_t)m->n_pseudo + 256) * sizeof *g);
        if (!g) return gk_fail(err, GK_ENOMEM, "out of memory");
        m->pseudo_out = g;
    }
    int32_t r = strmap_get(&m->reserved, s, n), old;
    m->pseudo_out[m->n_pseudo] = r >= 0 ? r : m->unk;
    *key = m->n_pieces + m->n_pseudo++;
    return strmap_put(&m->char_keys, s, n, *key, &old, err);
}

// Pairs: every split of every mergeable piece into two halves that can be
// symbols (a piece, or a single character), ranked by score (ties equal).
static int build_pairs(spm_model *m, const model_proto *mp, gk_err *err) {
    int32_t *order = gk_malloc(mp->n_pieces * sizeof *order, err), *rank = gk_malloc(mp->n_pieces * sizeof *rank, err);
    size_t n = 0;
    int rc = order && rank ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < mp->n_pieces; i++) {
        int t = mp->pieces[i].type;
        if (t == SPM_NORMAL || t == SPM_USER_DEFINED || t == SPM_UNUSED) order[n++] = (int32_t)i;
    }
    if (rc == 0) qsort_r(order, n, sizeof *order, by_score_desc, mp->pieces);
    for (size_t k = 0, r = 0; rc == 0 && k < n; k++) {
        if (k && mp->pieces[order[k]].score != mp->pieces[order[k - 1]].score) r = k;
        rank[order[k]] = (int32_t)r;
    }
    if (rc == 0) rc = bpe_pairs_init(&m->pairs, 4 * n, err);
    for (size_t k = 0; rc == 0 && k < n; k++) {
        const raw_piece *p = &mp->pieces[order[k]];
        const char *s = (const char *)p->piece;
        for (size_t cut = utf8_char_len(p->piece[0]); rc == 0 && cut < p->len; cut += utf8_char_len(p->piece[cut])) {
            int32_t left, right;
            bool one_left = utf8_char_len(p->piece[0]) == cut, one_right = utf8_char_len(p->piece[cut]) == p->len - cut;
            if ((rc = char_key(m, s, cut, one_left, &left, err)) || left < 0) continue;
            if ((rc = char_key(m, s + cut, p->len - cut, one_right, &right, err)) || right < 0) continue;
            uint32_t value = (uint32_t)order[k] | (p->type == SPM_UNUSED ? BPE_REV : 0);
            rc = bpe_pairs_put(&m->pairs, left, right, (uint32_t)rank[order[k]], value, err);
        }
    }
    free(order);
    free(rank);
    return rc;
}

static int build_tables(tokenizer *t, spm_model *m, const model_proto *mp, gk_err *err) {
    if (!(m->out_id = gk_malloc(mp->n_pieces * sizeof *m->out_id, err))) return -1;
    for (size_t i = 0; i < mp->n_pieces; i++) { // PieceToId(piece(i)): reserved first, then pieces
        int32_t r = strmap_get(&m->reserved, (const char *)mp->pieces[i].piece, mp->pieces[i].len);
        m->out_id[i] = r >= 0 ? r : (int32_t)i;
    }
    if (strmap_init(&m->char_keys, 256, err) || build_pairs(m, mp, err)) return -1;
    if (!(m->bmp_key = gk_malloc(0x10000 * sizeof *m->bmp_key, err))) return -1;
    for (uint32_t cp = 0; cp < 0x10000; cp++) {
        char c[4];
        size_t n = utf8_encode(cp, c); // surrogates get their (never looked up) 3-byte pattern
        if (char_key(m, c, n, false, &m->bmp_key[cp], err)) return -1;
    }
    const char **text = gk_malloc(mp->n_pieces * sizeof *text, err);
    size_t *len = gk_malloc(mp->n_pieces * sizeof *len, err);
    int rc = text && len ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < mp->n_pieces; i++) text[i] = (const char *)mp->pieces[i].piece, len[i] = mp->pieces[i].len;
    if (rc == 0) rc = tok_set_strings(t, (int32_t)mp->n_pieces, text, len, err);
    free(text);
    free(len);
    return rc;
}

// SentencePieceProcessor::bos_id() etc.: the id of the named piece when it has the wanted type.
static int32_t special_id(const spm_model *m, const raw_string *name, const char *dflt, int type) {
    const char *s = name->set && name->len ? (const char *)name->s : dflt;
    size_t n = name->set && name->len ? name->len : strlen(dflt);
    int32_t id = strmap_get(&m->reserved, s, n);
    if (id < 0) id = strmap_get(&m->pieces, s, n);
    if (id < 0) id = m->unk;
    return m->type[id] == type ? id : -1;
}

int spm_load(tokenizer *t, const unsigned char *data, size_t len, gk_err *err) {
    pb_reader r = {.p = data, .end = data + len, .base = data, .name = t->name, .err = err};
    model_proto mp;
    spm_model *m = t->spm = gk_calloc(1, sizeof *t->spm, err);
    int rc = m ? read_model_proto(&r, &mp) : -1;
    if (rc && !m) return -1;
    if (rc == 0) rc = check_proto(t, &mp, err);
    if (rc == 0) {
        m->n_pieces = (int32_t)mp.n_pieces;
        m->byte_fallback = mp.byte_fallback;
        m->add_dummy_prefix = mp.add_dummy_prefix;
        m->remove_extra_whitespaces = mp.remove_extra_whitespaces;
        m->escape_whitespaces = mp.escape_whitespaces;
        for (int b = 0; b < 256; b++) m->byte_ids[b] = -1;
        m->type = gk_calloc(mp.n_pieces, 1, err);
        rc = m->type ? 0 : -1;
    }
    if (rc == 0) rc = strmap_init(&m->pieces, mp.n_pieces, err);
    if (rc == 0) rc = strmap_init(&m->reserved, 300, err);
    if (rc == 0) rc = trie_init(&m->user, err);
    if (rc == 0) rc = add_pieces(t, m, &mp, err);
    if (rc == 0) rc = build_tables(t, m, &mp, err);
    if (rc == 0) {
        const raw_string *u = &mp.unk_surface;
        m->unk_surface_len = u->set ? u->len : 5;
        m->unk_surface = gk_malloc(m->unk_surface_len + 1, err);
        if (!m->unk_surface) rc = -1;
        else memcpy(m->unk_surface, u->set ? (const char *)u->s : " \xE2\x81\x87 ", m->unk_surface_len);
    }
    if (rc == 0) {
        t->unk_id = m->unk;
        t->bos_id = special_id(m, &mp.bos_piece, "<s>", SPM_CONTROL);
        t->eos_id = special_id(m, &mp.eos_piece, "</s>", SPM_CONTROL);
        t->pad_id = special_id(m, &mp.pad_piece, "<pad>", SPM_CONTROL);
    }
    free(mp.pieces);
    return rc;
}

void spm_free(spm_model *m) {
    free(m->type);
    strmap_free(&m->pieces);
    strmap_free(&m->reserved);
    strmap_free(&m->char_keys);
    free(m->out_id);
    free(m->bmp_key);
    free(m->pseudo_out);
    bpe_pairs_free(&m->pairs);
    trie_free(&m->user);
    free(m->unk_surface);
    free(m);
}

int32_t spm_token_id(const tokenizer *t, const char *token, size_t len) {
    int32_t id = strmap_get(&t->spm->reserved, token, len);
    return id >= 0 ? id : strmap_get(&t->spm->pieces, token, len);
}

// Loading a Hugging Face tokenizer.json (model type BPE) the way the
// `tokenizers` library reads it, streaming through the big vocab and merges
// lists, and rejecting every setting this reader does not implement.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_json.h"

typedef struct {
    size_t start, end;
    int line;
    bool present;
} ext; // where a member's value is in the file

typedef struct {
    tokenizer *t;
    hf_model *m;
    tj_reader r;
    gk_err *err;
    uint32_t *voff, *vlen; // [vcap] id -> key in m->vocab.arena (voff UINT32_MAX: unassigned)
    size_t vcap, n_vocab;
    int32_t max_id;        // largest id in vocab and added tokens
    char *cat;             // merge concatenation scratch
    size_t cat_cap;
    bool vocab_read, merges_read;
} loader;


// A token for messages: JSON-quoted, cut after 60 bytes.
static const char *quote(const char *s, size_t n, char buf[160]) {
    size_t k = 0;
    buf[k++] = '"';
    for (size_t i = 0; i < n && k < 150; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= 60) {
            memcpy(buf + k, "...", 3);
            k += 3;
            break;
        }
        if (c == '"' || c == '\\') buf[k++] = '\\', buf[k++] = (char)c;
        else if (c == '\n') buf[k++] = '\\', buf[k++] = 'n';
        else if (c == '\t') buf[k++] = '\\', buf[k++] = 't';
        else if (c < 0x20) k += (size_t)snprintf(buf + k, 8, "\\u%04x", c);
        else buf[k++] = (char)c;
    }
    buf[k++] = '"';
    buf[k] = 0;
    return buf;
}

char *hf_dup_bytes(const char *s, size_t n, gk_err *err) {
    char *d = gk_malloc(n + 1, err);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static void seek(loader *L, const ext *e) {
    L->r.pos = e->start;
    L->r.line = e->line;
}

typedef int (*inline_fn)(loader *L, int which, ext *e);

// Reads an object's members into ext slots named by `keys` (others are
// skipped); the members in `inline_mask` are read in place by `read_inline`
// (the big ones, so that 33 MB are not scanned twice). `what` names the object.
static int read_members(loader *L, const char *what, const char *const *keys, ext *out, int n_keys,
                        unsigned inline_mask, inline_fn read_inline) {
    bool first = true;
    int rc;
    if (tj_peek(&L->r) != '{') return tj_fail(&L->r, "%s must be a JSON object", what);
    if (tj_open(&L->r, '{')) return -1;
    while ((rc = tj_next(&L->r, '}', &first)) == 1) {
        const char *key;
        size_t len;
        if (tj_key(&L->r, &key, &len)) return -1;
        int which = -1;
        for (int i = 0; i < n_keys && which < 0; i++)
            if (strlen(keys[i]) == len && memcmp(keys[i], key, len) == 0) which = i;
        ext e = {.present = true};
        if (which >= 0 && out[which].present) return tj_fail(&L->r, "%s has the key \"%s\" twice", what, keys[which]);
        if (which >= 0 && (inline_mask >> which & 1)) {
            tj_peek(&L->r); // the value's line
            e.line = L->r.line;
            e.start = L->r.pos;
            out[which] = e; // marks it seen before it is read
            if (read_inline(L, which, &out[which])) return -1;
            continue;
        }
        if (tj_skip(&L->r, &e.start, &e.end, &e.line)) return -1;
        if (which >= 0) out[which] = e;
    }
    return rc;
}

// A small member as a tree (NULL when absent); lines in messages are absolute.
static int small_value(loader *L, const ext *e, json_doc *doc) {
    memset(doc, 0, sizeof *doc);
    if (!e->present) return 0;
    seek(L, e);
    int line;
    return tj_tree(&L->r, doc, &line);
}

static int get_bool(loader *L, const ext *e, const char *what, bool *out) {
    json_doc d;
    if (!e->present) return 0;
    if (small_value(L, e, &d)) return -1;
    int rc = 0;
    if (d.root->type != JSON_BOOL)
        rc = hf_fail_line(L->t->name, L->err, e->line, "%s must be true or false, not %s", what, json_type_name(d.root->type));
    else
        *out = d.root->boolean;
    json_free(&d);
    return rc;
}

// A string or null member; *s is malloc'd (NULL for null or absent).
static int get_opt_string(loader *L, const ext *e, const char *what, char **s, size_t *len) {
    json_doc d;
    *s = NULL;
    *len = 0;
    if (!e->present) return 0;
    if (small_value(L, e, &d)) return -1;
    int rc = 0;
    if (d.root->type == JSON_STRING) {
        *len = d.root->length;
        if (!(*s = hf_dup_bytes(d.root->string, d.root->length, L->err))) rc = -1;
    } else if (d.root->type != JSON_NULL) {
        rc = hf_fail_line(L->t->name, L->err, e->line, "%s must be a string or null, not %s", what, json_type_name(d.root->type));
    }
    json_free(&d);
    return rc;
}

// ---------------------------------------------------------------- vocab and merges

static int vocab_slot(loader *L, size_t id) {
    if (id < L->vcap) return 0;
    size_t cap = L->vcap ? L->vcap : 1024;
    while (cap <= id) cap *= 2;
    uint32_t *o = realloc(L->voff, cap * sizeof *o), *n = o ? realloc(L->vlen, cap * sizeof *n) : NULL;
    if (o) L->voff = o;
    if (!o || !n) return gk_fail(L->err, GK_ENOMEM, "out of memory for the vocabulary");
    L->vlen = n;
    for (size_t i = L->vcap; i < cap; i++) L->voff[i] = UINT32_MAX;
    L->vcap = cap;
    return 0;
}

// model.vocab at the reader's position.
static int read_vocab(loader *L) {
    hf_model *m = L->m;
    char q1[160], q2[160];
    if (tj_peek(&L->r) != '{') return tj_fail(&L->r, "model.vocab must be a JSON object of token: id");
    if (strmap_init(&m->vocab, (L->r.len - L->r.pos) / 64, L->err) || tj_open(&L->r, '{')) return -1;
    bool first = true;
    int rc;
    while ((rc = tj_next(&L->r, '}', &first)) == 1) {
        const char *key;
        size_t len;
        long long id;
        if (tj_key(&L->r, &key, &len)) return -1;
        if (tj_integer(&L->r, &id)) {
            char context[200];
            snprintf(context, sizeof context, "model.vocab[%s]", quote(key, len, q1));
            return tj_rewrap(&L->r, 0, context);
        }
        if (id < 0 || id >= TOK_MAX_IDS)
            return tj_fail(&L->r, "model.vocab[%s]: id %lld is outside 0..%d", quote(key, len, q1), id, TOK_MAX_IDS - 1);
        uint32_t off = (uint32_t)m->vocab.arena_len;
        int32_t old;
        if (strmap_put(&m->vocab, key, len, (int32_t)id, &old, L->err)) return -1;
        if (old >= 0) return tj_fail(&L->r, "model.vocab: token %s appears twice", quote(key, len, q1));
        if (vocab_slot(L, (size_t)id)) return -1;
        if (L->voff[id] != UINT32_MAX)
            return tj_fail(&L->r, "model.vocab: id %lld is given to both %s and %s", id,
                           quote(m->vocab.arena + L->voff[id], L->vlen[id], q1), quote(key, len, q2));
        L->voff[id] = off;
        L->vlen[id] = (uint32_t)len;
        L->n_vocab++;
        if (id > L->max_id) L->max_id = (int32_t)id;
    }
    return rc;
}

static int merge_one(loader *L, size_t index, uint32_t rank, const char *a, size_t an, const char *b, size_t bn) {
    char q1[160], q2[160], q3[160];
    hf_model *m = L->m;
    int32_t ia = strmap_get(&m->vocab, a, an), ib = strmap_get(&m->vocab, b, bn);
    if (ia < 0 || ib < 0)
        return tj_fail(&L->r, "model.merges[%zu]: token %s is not in model.vocab", index,
                       ia < 0 ? quote(a, an, q1) : quote(b, bn, q1));
    bool in_cat = a == L->cat; // the pair form keeps a in the scratch already
    if (an + bn > L->cat_cap) {
        size_t cap = 2 * (an + bn) + 64;
        char *c = realloc(L->cat, cap);
        if (!c) return gk_fail(L->err, GK_ENOMEM, "out of memory");
        L->cat = c;
        L->cat_cap = cap;
    }
    if (!in_cat) memcpy(L->cat, a, an);
    a = L->cat;
    memcpy(L->cat + an, b, bn);
    int32_t merged = strmap_get(&m->vocab, L->cat, an + bn);
    if (merged < 0)
        return tj_fail(&L->r, "model.merges[%zu]: %s + %s = %s is not in model.vocab", index, quote(a, an, q1),
                       quote(b, bn, q2), quote(L->cat, an + bn, q3));
    return bpe_pairs_put(&m->merges, ia, ib, rank, (uint32_t)merged, L->err);
}

// model.merges at the reader's position: "a b" strings (legacy) or ["a", "b"]
// pairs; rank = position, a later duplicate wins (tokenizers collects them
// into a HashMap).
static int read_merges(loader *L) {
    if (tj_peek(&L->r) != '[') return tj_fail(&L->r, "model.merges must be a JSON array");
    if (bpe_pairs_init(&L->m->merges, L->n_vocab, L->err) || tj_open(&L->r, '[')) return -1;
    bool first = true;
    int rc, form = 0; // 1: "a b" strings, 2: pairs
    size_t index = 0;
    uint32_t rank = 0;
    char q[160];
    for (; (rc = tj_next(&L->r, ']', &first)) == 1; index++) {
        int c = tj_peek(&L->r);
        int this_form = c == '"' ? 1 : c == '[' ? 2 : 0;
        if (!this_form) return tj_fail(&L->r, "model.merges[%zu] must be a string \"a b\" or a pair [\"a\", \"b\"]", index);
        if (form && this_form != form)
            return tj_fail(&L->r, "model.merges[%zu]: strings and pairs are mixed in one list", index);
        form = this_form;
        const char *a, *b;
        size_t an, bn;
        if (form == 1) {
            const char *s;
            size_t n, spaces = 0, at = 0;
            if (tj_string(&L->r, &s, &n)) return -1;
            if (n >= 8 && memcmp(s, "#version", 8) == 0) continue; // skipped like a merges.txt header
            for (size_t i = 0; i < n; i++)
                if (s[i] == ' ') spaces++, at = i;
            if (spaces != 1)
                return tj_fail(&L->r, "model.merges[%zu]: %s is not two tokens separated by one space", index,
                               quote(s, n, q));
            a = s, an = at, b = s + at + 1, bn = n - at - 1;
        } else {
            bool f2 = true;
            int k;
            if (tj_open(&L->r, '[') || (k = tj_next(&L->r, ']', &f2)) < 0) return -1;
            if (k == 0 || tj_peek(&L->r) != '"') goto bad_pair;
            if (tj_string(&L->r, &a, &an)) return -1;
            if (an > L->cat_cap) { // the next string may reuse the reader's buffer
                char *cp = realloc(L->cat, 2 * an + 64);
                if (!cp) return gk_fail(L->err, GK_ENOMEM, "out of memory");
                L->cat = cp;
                L->cat_cap = 2 * an + 64;
            }
            memcpy(L->cat, a, an);
            a = L->cat;
            if ((k = tj_next(&L->r, ']', &f2)) < 0) return -1;
            if (k == 0 || tj_peek(&L->r) != '"') goto bad_pair;
            if (tj_string(&L->r, &b, &bn) || (k = tj_next(&L->r, ']', &f2)) < 0) return -1;
            if (k != 0) goto bad_pair;
        }
        if (merge_one(L, index, rank++, a, an, b, bn)) return -1;
    }
    return rc;
bad_pair:
    return tj_fail(&L->r, "model.merges[%zu] must be a pair of two token strings", index);
}

// ---------------------------------------------------------------- model

enum { K_TYPE, K_DROPOUT, K_UNK, K_PREFIX, K_SUFFIX, K_FUSE, K_BYTE, K_IGNORE, K_VOCAB, K_MERGES, N_MODEL_KEYS };

// vocab is read where it stands; so are merges when the vocab came first.
static int model_inline(loader *L, int which, ext *e) {
    if (which == K_VOCAB) {
        L->vocab_read = true;
        return read_vocab(L);
    }
    if (L->vocab_read) {
        L->merges_read = true;
        return read_merges(L);
    }
    return tj_skip(&L->r, &e->start, &e->end, &e->line);
}

static int finish_model(loader *L, int line, const ext *e, const char *const *keys);

// The model object at the reader's position (its value starts on `line`).
static int read_model(loader *L, int line) {
    static const char *const keys[] = {"type",          "dropout",      "unk_token",     "continuing_subword_prefix",
                                       "end_of_word_suffix", "fuse_unk", "byte_fallback", "ignore_merges",
                                       "vocab",         "merges"};
    ext e[N_MODEL_KEYS] = {0};
    if (read_members(L, "model", keys, e, N_MODEL_KEYS, 1u << K_VOCAB | 1u << K_MERGES, model_inline)) return -1;
    size_t after = L->r.pos; // small members are read from their places, then the reader comes back here
    int after_line = L->r.line;
    int rc = finish_model(L, line, e, keys);
    L->r.pos = after;
    L->r.line = after_line;
    return rc;
}

static int finish_model(loader *L, int line, const ext *e, const char *const *keys) {
    hf_model *m = L->m;
    char *s;
    size_t n;
    if (get_opt_string(L, &e[K_TYPE], "model.type", &s, &n)) return -1;
    if (!s) return hf_fail_line(L->t->name, L->err, line, "model.type is missing (expected \"BPE\")");
    bool bpe = n == 3 && memcmp(s, "BPE", 3) == 0;
    char q[160];
    if (!bpe) hf_fail_line(L->t->name, L->err, e[K_TYPE].line, "model.type %s is not supported (only \"BPE\")", quote(s, n, q));
    free(s);
    if (!bpe) return -1;
    if (e[K_DROPOUT].present) {
        json_doc d;
        if (small_value(L, &e[K_DROPOUT], &d)) return -1;
        bool ok = d.root->type == JSON_NULL || (d.root->type == JSON_NUMBER && d.root->number == 0);
        json_free(&d);
        if (!ok) return hf_fail_line(L->t->name, L->err, e[K_DROPOUT].line, "model.dropout must be null or 0 (BPE dropout is random)");
    }
    for (int k = K_PREFIX; k <= K_SUFFIX; k++) {
        if (get_opt_string(L, &e[k], k == K_PREFIX ? "model.continuing_subword_prefix" : "model.end_of_word_suffix",
                           &s, &n))
            return -1;
        free(s);
        if (n) return hf_fail_line(L->t->name, L->err, e[k].line, "model.%s is not supported (only null)", keys[k]);
    }
    if (get_bool(L, &e[K_FUSE], "model.fuse_unk", &m->fuse_unk) ||
        get_bool(L, &e[K_BYTE], "model.byte_fallback", &m->byte_fallback) ||
        get_bool(L, &e[K_IGNORE], "model.ignore_merges", &m->ignore_merges))
        return -1;
    if (!L->vocab_read) return hf_fail_line(L->t->name, L->err, line, "model.vocab is missing");
    if (!e[K_MERGES].present) return hf_fail_line(L->t->name, L->err, line, "model.merges is missing");
    if (!L->merges_read) { // the merges came before the vocab
        seek(L, &e[K_MERGES]);
        if (read_merges(L)) return -1;
    }
    m->unk = -1;
    if (get_opt_string(L, &e[K_UNK], "model.unk_token", &s, &n)) return -1;
    if (s) {
        m->unk = strmap_get(&m->vocab, s, n);
        if (m->unk < 0) hf_fail_line(L->t->name, L->err, e[K_UNK].line, "model.unk_token %s is not in model.vocab", quote(s, n, q));
        free(s);
        if (m->unk < 0) return -1;
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        m->byte_ids[b] = strmap_get(&m->vocab, name, 6);
    }
    m->bmp_ids = gk_malloc(0x10000 * sizeof *m->bmp_ids, L->err);
    if (!m->bmp_ids) return -1;
    for (size_t i = 0; i < 0x10000; i++) m->bmp_ids[i] = -1;
    for (size_t id = 0; id < L->vcap; id++) {
        if (L->voff[id] == UINT32_MAX) continue;
        const unsigned char *k = (const unsigned char *)m->vocab.arena + L->voff[id];
        if (L->vlen[id] && L->vlen[id] <= 3 && utf8_char_len(k[0]) == L->vlen[id])
            m->bmp_ids[utf8_code_point(k)] = (int32_t)id;
    }
    return 0;
}

// ---------------------------------------------------------------- added tokens

static int json_flag(loader *L, const json_value *o, const char *key, bool dflt, int line, size_t index, bool *out) {
    const json_value *v = json_get(o, key);
    *out = dflt;
    if (!v) return 0;
    if (v->type != JSON_BOOL)
        return hf_fail_line(L->t->name, L->err, line + v->line - 1, "added_tokens[%zu].%s must be true or false", index, key);
    *out = v->boolean;
    return 0;
}

// Ids as tokenizers assigns them: a content already known keeps its id, a new
// one gets the next id after the vocabulary (Tokenizer::add_tokens); the file's
// "id" must agree.
static int read_added(loader *L, const ext *e) {
    hf_model *m = L->m;
    char q[160], q2[160];
    if (strmap_init(&m->added_ids, 64, L->err)) return -1;
    if (!e->present) return 0;
    seek(L, e);
    bool is_null;
    if (tj_null(&L->r, &is_null)) return -1;
    if (is_null) return 0;
    if (tj_peek(&L->r) != '[') return tj_fail(&L->r, "added_tokens must be a JSON array or null");
    if (tj_open(&L->r, '[')) return -1;
    bool first = true;
    int rc;
    int32_t max_added = -1, vocab_len = (int32_t)L->n_vocab;
    for (size_t i = 0; (rc = tj_next(&L->r, ']', &first)) == 1; i++) {
        json_doc d;
        int line;
        if (tj_tree(&L->r, &d, &line)) return -1;
        const json_value *o = d.root, *id = json_get(o, "id"), *content = json_get(o, "content");
        hf_added a = {0};
        rc = -1;
        if (o->type != JSON_OBJECT) {
            hf_fail_line(L->t->name, L->err, line, "added_tokens[%zu] must be an object", i);
        } else if (!id || id->type != JSON_NUMBER || !id->is_integer || id->integer < 0 || id->integer >= TOK_MAX_IDS) {
            hf_fail_line(L->t->name, L->err, line, "added_tokens[%zu].id must be an integer in 0..%d", i, TOK_MAX_IDS - 1);
        } else if (!content || content->type != JSON_STRING || !content->length) {
            hf_fail_line(L->t->name, L->err, line, "added_tokens[%zu].content must be a non-empty string", i);
        } else if (!json_flag(L, o, "special", false, line, i, &a.special) &&
                   !json_flag(L, o, "normalized", !a.special, line, i, &a.normalized) &&
                   !json_flag(L, o, "lstrip", false, line, i, &a.lstrip) &&
                   !json_flag(L, o, "rstrip", false, line, i, &a.rstrip) &&
                   !json_flag(L, o, "single_word", false, line, i, &a.single_word)) {
            rc = 0;
        }
        int32_t assigned = -1, in_vocab = -1;
        if (rc == 0) {
            if (strmap_get(&m->added_ids, content->string, content->length) >= 0) {
                rc = hf_fail_line(L->t->name, L->err, line, "added_tokens[%zu]: %s appears twice", i,
                               quote(content->string, content->length, q));
            } else if ((in_vocab = strmap_get(&m->vocab, content->string, content->length)) >= 0) {
                assigned = in_vocab;
            } else {
                assigned = max_added < 0 ? vocab_len : max_added >= vocab_len || vocab_len == 0 ? max_added + 1 : vocab_len;
            }
        }
        if (rc == 0 && assigned != id->integer)
            rc = hf_fail_line(L->t->name, L->err, line, "added_tokens[%zu]: %s has id %lld, but %s gives it id %d", i,
                           quote(content->string, content->length, q), id->integer,
                           in_vocab >= 0 ? "model.vocab" : "the tokenizers library", assigned);
        if (rc == 0 && in_vocab < 0 && (size_t)assigned < L->vcap && L->voff[assigned] != UINT32_MAX)
            rc = hf_fail_line(L->t->name, L->err, line, "added_tokens[%zu]: %s gets id %d, which model.vocab gives to %s", i,
                           quote(content->string, content->length, q), assigned,
                           quote(m->vocab.arena + L->voff[assigned], L->vlen[assigned], q2));
        int32_t old;
        if (rc == 0) rc = strmap_put(&m->added_ids, content->string, content->length, assigned, &old, L->err);
        if (rc == 0 && m->n_added % 64 == 0) {
            hf_added *grown = realloc(m->added, (m->n_added + 64) * sizeof *grown);
            if (!grown) rc = gk_fail(L->err, GK_ENOMEM, "out of memory for added tokens");
            else m->added = grown;
        }
        if (rc == 0 && !(a.content = hf_dup_bytes(content->string, content->length, L->err))) rc = -1;
        if (rc == 0) a.len = content->length;
        json_free(&d);
        if (rc) return -1;
        a.id = assigned;
        m->added[m->n_added++] = a;
        if (assigned > max_added) max_added = assigned;
        if (assigned > L->max_id) L->max_id = assigned;
    }
    return rc;
}

// A pipeline member: null/absent is "none"; otherwise `read` handles the tree.
static int read_part(loader *L, const ext *e, const char *what, int (*read)(hf_parse *, const json_value *, int, int),
                     bool *non_null) {
    json_doc d;
    if (non_null) *non_null = false;
    if (!e->present) return 0;
    if (small_value(L, e, &d)) return -1;
    int rc = 0;
    if (d.root->type != JSON_NULL) {
        if (non_null) *non_null = true;
        if (d.root->type != JSON_OBJECT) rc = hf_fail_line(L->t->name, L->err, e->line, "%s must be an object or null", what);
        else rc = read(&(hf_parse){.t = L->t, .m = L->m, .err = L->err}, d.root, e->line, 0);
    }
    json_free(&d);
    return rc;
}

static int reject_part(hf_parse *p, const json_value *v, int base, int depth) {
    (void)depth;
    return gk_fail(p->err, GK_EINPUT, "%s:%d: truncation/padding settings are not supported (must be null)", p->t->name,
                   base + v->line - 1);
}

// ---------------------------------------------------------------- assembly

static int build_tables(loader *L) {
    tokenizer *t = L->t;
    hf_model *m = L->m;
    int32_t vocab_size = L->max_id + 1;
    const char **text = gk_calloc((size_t)vocab_size, sizeof *text, L->err);
    size_t *len = gk_calloc((size_t)vocab_size, sizeof *len, L->err);
    int rc = text && len ? 0 : -1;
    for (size_t id = 0; rc == 0 && id < L->vcap && id < (size_t)vocab_size; id++)
        if (L->voff[id] != UINT32_MAX) text[id] = m->vocab.arena + L->voff[id], len[id] = L->vlen[id];
    for (size_t i = 0; rc == 0 && i < m->n_added; i++) // added contents win (AddedVocabulary::id_to_token)
        text[m->added[i].id] = m->added[i].content, len[m->added[i].id] = m->added[i].len;
    if (rc == 0) rc = tok_set_strings(t, vocab_size, text, len, L->err);
    free(text);
    free(len);
    if (rc) return -1;
    if (!(m->special = gk_calloc((size_t)vocab_size, 1, L->err))) return -1;
    for (size_t i = 0; i < m->n_added; i++) m->special[m->added[i].id] = m->added[i].special;
    return 0;
}

// Added-token tries: special tokens first, then the others (refresh_added_tokens).
static int build_tries(loader *L) {
    hf_model *m = L->m;
    char q[160];
    if (trie_init(&m->raw_trie, L->err) || trie_init(&m->norm_trie, L->err)) return -1;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < m->n_added; i++) {
            const hf_added *a = &m->added[i];
            if (a->special != (pass == 0)) continue;
            if (!a->normalized) {
                if (trie_add(&m->raw_trie, a->content, a->len, (int32_t)i, L->err)) return -1;
                continue;
            }
            char *pattern;
            size_t n;
            if (hf_normalize_string(m, a->content, a->len, &pattern, &n, L->err)) return -1;
            int rc = n ? trie_add(&m->norm_trie, pattern, n, (int32_t)i, L->err)
                       : hf_fail_line(L->t->name, L->err, 1, "added token %s normalizes to an empty string", quote(a->content, a->len, q));
            free(pattern);
            if (rc) return -1;
        }
    return 0;
}

static int32_t first_known(const tokenizer *t, const char *a, const char *b) {
    int32_t id = hf_token_id(t, a, strlen(a));
    return id >= 0 ? id : hf_token_id(t, b, strlen(b));
}

// The model is read where it stands (nothing it needs comes before it).
static int top_inline(loader *L, int which, ext *e) {
    (void)which;
    return read_model(L, e->line);
}

int hf_load(tokenizer *t, const char *json, size_t len, gk_err *err) {
    static const char *const keys[] = {"model",          "added_tokens", "normalizer", "pre_tokenizer",
                                       "post_processor", "decoder",      "truncation", "padding"};
    enum { K_MODEL, K_ADDED, K_NORM, K_PRE, K_POST, K_DEC, K_TRUNC, K_PAD, N_KEYS };
    ext e[N_KEYS] = {0};
    loader L = {.t = t, .err = err, .max_id = -1};
    if (!(L.m = t->hf = gk_calloc(1, sizeof *t->hf, err))) return -1;
    tj_init(&L.r, json, len, t->name, err);
    int rc = read_members(&L, "the top level", keys, e, N_KEYS, 1u << K_MODEL, top_inline);
    if (rc == 0 && tj_peek(&L.r) >= 0) rc = tj_fail(&L.r, "invalid JSON: trailing characters after the object");
    if (rc == 0 && !e[K_MODEL].present) rc = hf_fail_line(L.t->name, L.err, 1, "the key \"model\" is missing");
    if (rc == 0) rc = read_added(&L, &e[K_ADDED]);
    if (rc == 0 && L.max_id < 0) rc = hf_fail_line(L.t->name, L.err, e[K_MODEL].line, "model.vocab is empty");
    if (rc == 0) rc = build_tables(&L);
    if (rc == 0) rc = read_part(&L, &e[K_NORM], "normalizer", hf_read_normalizer, NULL);
    if (rc == 0) rc = read_part(&L, &e[K_PRE], "pre_tokenizer", hf_read_pre_tokenizer, NULL);
    if (rc == 0) rc = read_part(&L, &e[K_DEC], "decoder", hf_read_decoder, &t->hf->has_decoder);
    if (rc == 0) rc = read_part(&L, &e[K_POST], "post_processor", hf_read_post_processor, NULL);
    if (rc == 0) rc = read_part(&L, &e[K_TRUNC], "truncation", reject_part, NULL);
    if (rc == 0) rc = read_part(&L, &e[K_PAD], "padding", reject_part, NULL);
    if (rc == 0) rc = build_tries(&L);
    if (rc == 0) {
        hf_model *m = t->hf;
        t->unk_id = m->unk;
        t->bos_id = m->n_before ? m->tmpl_before[0] : first_known(t, "<bos>", "<s>");
        t->eos_id = first_known(t, "<eos>", "</s>");
        t->pad_id = hf_token_id(t, "<pad>", 5);
    }
    tj_free(&L.r);
    free(L.voff);
    free(L.vlen);
    free(L.cat);
    return rc;
}

void hf_free(hf_model *m) {
    strmap_free(&m->vocab);
    strmap_free(&m->added_ids);
    free(m->bmp_ids);
    bpe_pairs_free(&m->merges);
    for (size_t i = 0; i < m->n_added; i++) free(m->added[i].content);
    free(m->added);
    trie_free(&m->raw_trie);
    trie_free(&m->norm_trie);
    free(m->special);
    for (size_t i = 0; i < m->n_norm; i++) free(m->norm[i].pattern), free(m->norm[i].content);
    free(m->norm);
    for (size_t i = 0; i < m->n_dec; i++) free(m->dec[i].pattern), free(m->dec[i].content);
    free(m->dec);
    free(m->split_pattern.pattern);
    free(m->tmpl_before);
    free(m->tmpl_after);
    free(m);
}

int32_t hf_token_id(const tokenizer *t, const char *token, size_t len) {
    int32_t id = strmap_get(&t->hf->added_ids, token, len);
    return id >= 0 ? id : strmap_get(&t->hf->vocab, token, len);
}

// The tokenizer API: format detection, loading, UTF-8 repair around encode,
// decode, and the lookups. The formats live in tokenizer_hf*.c / tokenizer_spm*.c.
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/sha256.h"
#include "data/tokenizer/tokenizer_impl.h"

static bool has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

// JSON (first non-space byte '{', or '[' to report a misshapen file as JSON),
// else a protobuf. A ModelProto
// starts with byte 0x0A (field 1, a piece), which is also a JSON newline; a
// ".model" name settles that case.
static tokenizer_format sniff(const unsigned char *d, size_t n, const char *name) {
    if (n && d[0] == 0x0A && has_suffix(name, ".model")) return TOKENIZER_SPM_MODEL;
    size_t i = 0;
    while (i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n')) i++;
    return i < n && (d[i] == '{' || d[i] == '[') ? TOKENIZER_HF_JSON : TOKENIZER_SPM_MODEL;
}

int tokenizer_load_bytes(const void *data, size_t len, const char *name, tokenizer **out, gk_err *err) {
    *out = NULL;
    if (!name) name = "tokenizer";
    if (!len) return gk_fail(err, GK_EINPUT, "%s: empty file; expected a tokenizer.json or tokenizer.model", name);
    tokenizer *t = gk_calloc(1, sizeof *t, err);
    if (!t) return -1;
    t->bos_id = t->eos_id = t->pad_id = t->unk_id = -1;
    t->name = strdup(name);
    if (!t->name) {
        free(t);
        return gk_fail(err, GK_ENOMEM, "out of memory");
    }
    t->format = sniff(data, len, name);
    int rc = 0;
    // the digest of a big file is taken on a second thread while the first one parses
#pragma omp parallel sections num_threads(2) if (len > ((size_t)4 << 20) && omp_get_max_threads() > 1)
    {
#pragma omp section
        sha256_hex(data, len, t->sha256);
#pragma omp section
        rc = t->format == TOKENIZER_HF_JSON ? hf_load(t, data, len, err) : spm_load(t, data, len, err);
    }
    if (rc) {
        tokenizer_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int tokenizer_load(const char *path, tokenizer **out, gk_err *err) {
    file_map map;
    *out = NULL;
    if (file_map_open(path, &map, err)) return -1;
    int rc = tokenizer_load_bytes(map.data, map.size, path, out, err);
    file_map_close(&map);
    return rc;
}

void tokenizer_free(tokenizer *t) {
    if (!t) return;
    if (t->hf) hf_free(t->hf);
    if (t->spm) spm_free(t->spm);
    free(t->strings);
    free(t->string_off);
    free(t->assigned);
    free(t->name);
    free(t);
}

int tokenizer_repair_utf8(const char *text, size_t len, char **out, size_t *out_len, gk_err *err) {
    return utf8_repair(text, len, out, out_len, NULL, err);
}

int tokenizer_encode(const tokenizer *t, const char *text, size_t len, bool add_bos, int32_t **ids,
                     size_t **offsets, size_t *n, gk_err *err) {
    *ids = NULL;
    *n = 0;
    if (offsets) *offsets = NULL;
    if (len > TOK_MAX_TEXT) return gk_fail(err, GK_EINPUT, "text of %zu bytes is longer than 1 GiB", len);
    if (!text) text = "";
    char *fixed;
    size_t fixed_len;
    uint32_t *map = NULL; // [fixed_len + 1] repaired byte -> input byte
    if (utf8_repair(text, len, &fixed, &fixed_len, offsets ? &map : NULL, err)) return -1;
    const char *s = fixed ? fixed : text;
    size_t sn = fixed ? fixed_len : len;
    tok_out o = {.want_offsets = offsets != NULL};
    int rc = t->format == TOKENIZER_HF_JSON ? hf_encode(t, s, sn, add_bos, &o, err)
                                            : spm_encode(t, s, sn, add_bos, &o, err);
    if (rc == 0 && !o.ids && !(o.ids = malloc(sizeof *o.ids))) rc = gk_fail(err, GK_ENOMEM, "out of memory");
    if (rc == 0 && offsets && !o.offs && !(o.offs = malloc(2 * sizeof *o.offs)))
        rc = gk_fail(err, GK_ENOMEM, "out of memory"); // valid (empty) arrays when no token came out
    if (rc == 0 && map)
        for (size_t i = 0; i < 2 * o.n; i++) o.offs[i] = map[o.offs[i]];
    free(fixed);
    free(map);
    if (rc) {
        free(o.ids);
        free(o.offs);
        return -1;
    }
    *ids = o.ids;
    if (offsets) *offsets = o.offs;
    *n = o.n;
    return 0;
}

int tokenizer_decode(const tokenizer *t, const int32_t *ids, size_t n, bool skip_special, char **text,
                     size_t *len, gk_err *err) {
    *text = NULL;
    if (len) *len = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->vocab_size || !t->assigned[ids[i]])
            return gk_fail(err, GK_EINPUT, "token id %d at position %zu is not in the vocabulary of %s (%d ids)",
                           ids[i], i, t->name, t->vocab_size);
    strbuf sb = {0};
    sb_append(&sb, "", 0);
    int rc = t->format == TOKENIZER_HF_JSON ? hf_decode(t, ids, n, skip_special, &sb, err)
                                            : spm_decode(t, ids, n, &sb, err);
    if (rc == 0 && sb.failed) rc = gk_fail(err, GK_ENOMEM, "out of memory decoding %zu ids", n);
    if (rc) {
        sb_free(&sb);
        return -1;
    }
    *text = sb.data;
    if (len) *len = sb.len;
    return 0;
}

tokenizer_format tokenizer_kind(const tokenizer *t) { return t->format; }
int32_t tokenizer_vocab_size(const tokenizer *t) { return t->vocab_size; }
int32_t tokenizer_bos_id(const tokenizer *t) { return t->bos_id; }
int32_t tokenizer_eos_id(const tokenizer *t) { return t->eos_id; }
int32_t tokenizer_pad_id(const tokenizer *t) { return t->pad_id; }
int32_t tokenizer_unk_id(const tokenizer *t) { return t->unk_id; }
const char *tokenizer_sha256(const tokenizer *t) { return t->sha256; }

int32_t tokenizer_token_id(const tokenizer *t, const char *token) {
    size_t len = strlen(token);
    return t->format == TOKENIZER_HF_JSON ? hf_token_id(t, token, len) : spm_token_id(t, token, len);
}

const char *tokenizer_token_text(const tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->vocab_size || !t->assigned[id]) return NULL;
    if (len) *len = t->string_off[id + 1] - t->string_off[id];
    return t->strings + t->string_off[id];
}

#include "data/loader.h"

#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/rng.h"
#include "data/shard_set.h"

struct loader {
    size_t seq_len;        // T
    bool shuffle;
    uint64_t seed;
    size_t n_shards;
    shard_file *shards;    // [n_shards], sorted by path
    uint64_t *first;       // [n_shards + 1]: global id of each shard's first window; first[n_shards] = total
    uint64_t total;        // N: windows in all shards
    uint64_t epoch, index, step; // the cursor
    uint32_t *tokens_buf;  // [T+1] one window as stored
    uint8_t *mask_buf;     // [T+1]
};

// ---------------------------------------------------------------- paths

typedef struct {
    char **items;
    size_t n, cap;
} path_list;

static int list_add(path_list *p, const char *s, gk_err *err) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 16;
        char **items = realloc(p->items, cap * sizeof *items);
        if (!items) return gk_fail(err, GK_ENOMEM, "out of memory");
        p->items = items;
        p->cap = cap;
    }
    if (!(p->items[p->n] = strdup(s))) return gk_fail(err, GK_ENOMEM, "out of memory");
    p->n++;
    return 0;
}

static void list_free(path_list *p) {
    for (size_t i = 0; i < p->n; i++) free(p->items[i]);
    free(p->items);
    memset(p, 0, sizeof *p);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Expands names and glob patterns, sorts, and drops duplicates (the same file
// reached under two names counts once). Names without glob characters are kept
// as given so that a missing file is reported by shard_open.
static int expand_paths(const char *const *patterns, size_t n, path_list *out, gk_err *err) {
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        if (!strpbrk(patterns[i], "*?[")) {
            if (list_add(out, patterns[i], err) < 0) goto fail;
            continue;
        }
        glob_t g;
        int rc = glob(patterns[i], 0, NULL, &g);
        if (rc == GLOB_NOMATCH) {
            globfree(&g);
            gk_fail(err, GK_EINPUT, "no files match '%s'", patterns[i]);
            goto fail;
        }
        if (rc != 0) {
            globfree(&g);
            gk_fail(err, GK_EIO, "cannot expand '%s'%s", patterns[i], rc == GLOB_NOSPACE ? ": out of memory" : "");
            goto fail;
        }
        for (size_t j = 0; j < g.gl_pathc; j++) {
            if (list_add(out, g.gl_pathv[j], err) < 0) {
                globfree(&g);
                goto fail;
            }
        }
        globfree(&g);
    }
    if (out->n == 0) {
        gk_fail(err, GK_EINPUT, "no shard files given");
        goto fail;
    }
    qsort(out->items, out->n, sizeof *out->items, cmp_str);
    // Keep the first of each (device, inode); unreadable names are kept.
    struct stat *st = calloc(out->n, sizeof *st);
    int *ok = calloc(out->n, sizeof *ok);
    if (!st || !ok) {
        free(st);
        free(ok);
        gk_fail(err, GK_ENOMEM, "out of memory");
        goto fail;
    }
    size_t kept = 0;
    for (size_t i = 0; i < out->n; i++) {
        int dup = 0;
        ok[kept] = stat(out->items[i], &st[kept]) == 0;
        for (size_t j = 0; j < kept && !dup; j++)
            dup = ok[kept] ? ok[j] && st[j].st_dev == st[kept].st_dev && st[j].st_ino == st[kept].st_ino
                           : strcmp(out->items[j], out->items[i]) == 0;
        if (dup) {
            free(out->items[i]);
        } else {
            out->items[kept++] = out->items[i];
        }
    }
    out->n = kept;
    free(st);
    free(ok);
    return 0;
fail:
    list_free(out);
    return -1;
}

// ---------------------------------------------------------------- order

// A keyed bijection of [0, n): a balanced Feistel network over the smallest
// even number of bits that covers n, cycle-walked until the value is < n
// (at most 4x the domain, so ~2 passes on average).
static uint64_t feistel_permute(uint64_t x, uint64_t n, uint64_t key) {
    if (n <= 1) return 0;
    int bits = 64 - __builtin_clzll(n - 1);
    bits += bits & 1;
    int half = bits / 2;
    uint64_t mask = half == 64 ? ~0ull : (1ull << half) - 1;
    do {
        uint64_t left = x >> half, right = x & mask;
        for (uint64_t r = 0; r < 6; r++) {
            uint64_t f = hash64(right ^ hash64(key + r)) & mask;
            uint64_t next = left ^ f;
            left = right;
            right = next;
        }
        x = (left << half) | right;
    } while (x >= n);
    return x;
}

uint64_t loader_order(const loader *l, uint64_t epoch, uint64_t index) {
    if (!l->shuffle) return index;
    return feistel_permute(index, l->total, hash64(l->seed) ^ hash64(epoch));
}

// ---------------------------------------------------------------- open/close

void loader_close(loader *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n_shards; i++) shard_close(&l->shards[i]);
    free(l->shards);
    free(l->first);
    free(l->tokens_buf);
    free(l->mask_buf);
    free(l);
}

// Whether shard s has a target among its first `windows` windows of T: a token p in
// [1, windows*T] that does not start a document and, in a chat shard, has its loss mask set.
static int shard_has_target(shard_file *s, uint64_t windows, size_t T, bool *found, gk_err *err) {
    uint64_t end = windows * T, k = 1; // doc_starts[k]: the next document start at or after p
    *found = false;
    if (!s->meta.has_loss_mask) {
        uint64_t starts = 0;
        for (uint64_t i = 1; i < s->n_docs && s->doc_starts[i] <= end; i++) starts++;
        *found = starts < end;
        return 0;
    }
    enum { CHUNK = 1 << 16 };
    uint8_t *mask = gk_malloc(CHUNK, err);
    if (!mask) return -1;
    for (uint64_t p0 = 1; !*found && p0 <= end; p0 += CHUNK) {
        size_t n = end - p0 + 1 < CHUNK ? (size_t)(end - p0 + 1) : CHUNK;
        if (shard_read_mask(s, p0, n, mask, err) < 0) {
            free(mask);
            return -1;
        }
        for (size_t i = 0; i < n && !*found; i++) {
            while (k < s->n_docs && s->doc_starts[k] < p0 + i) k++;
            *found = mask[i] && !(k < s->n_docs && s->doc_starts[k] == p0 + i);
        }
    }
    free(mask);
    return 0;
}

// An error naming the shards when none of their windows has a target.
static int require_targets(loader *l, gk_err *err) {
    for (size_t i = 0; i < l->n_shards; i++) {
        bool found;
        if (shard_has_target(&l->shards[i], l->first[i + 1] - l->first[i], l->seq_len, &found, err)) return -1;
        if (found) return 0;
    }
    char names[600] = "";
    size_t shown = 0, used = 0;
    for (; shown < l->n_shards && shown < 3; shown++)
        used += (size_t)snprintf(names + used, used < sizeof names ? sizeof names - used : 0, "%s%s", shown ? ", " : "",
                                 l->shards[shown].path);
    if (shown < l->n_shards && used < sizeof names)
        snprintf(names + used, sizeof names - used, " and %zu more", l->n_shards - shown);
    return gk_fail(err, GK_EINPUT,
                   "%s: no trainable targets: every target position of the windows has loss mask 0 or starts a "
                   "document (chat records without a model turn?)",
                   names);
}

int loader_open(loader **out, const char *const *paths, size_t n_paths, const loader_options *opt, gk_err *err) {
    *out = NULL;
    if (opt->seq_len < 1 || opt->seq_len > (1u << 30))
        return gk_fail(err, GK_EINPUT, "seq_len %zu is not in 1..%u", opt->seq_len, 1u << 30);
    path_list list;
    if (expand_paths(paths, n_paths, &list, err) < 0) return -1;
    loader *l = gk_calloc(1, sizeof *l, err);
    if (!l) {
        list_free(&list);
        return -1;
    }
    l->seq_len = opt->seq_len;
    l->shuffle = opt->shuffle;
    l->seed = opt->seed;
    l->shards = gk_calloc(list.n, sizeof *l->shards, err);
    l->first = l->shards ? gk_calloc(list.n + 1, sizeof *l->first, err) : NULL;
    l->tokens_buf = l->first ? gk_calloc(opt->seq_len + 1, sizeof *l->tokens_buf, err) : NULL;
    l->mask_buf = l->tokens_buf ? gk_calloc(opt->seq_len + 1, 1, err) : NULL;
    if (!l->mask_buf) goto fail;
    uint64_t all_tokens = 0;
    for (size_t i = 0; i < list.n; i++) {
        shard_file *s = &l->shards[i];
        if (shard_open(list.items[i], s, err) < 0) goto fail;
        l->n_shards++;
        if (shard_check_tokenizer(s, opt->tokenizer_sha256, opt->vocab_size, err) < 0) goto fail;
        const shard_file *s0 = &l->shards[0];
        if (strcmp(s->meta.tokenizer_sha256, s0->meta.tokenizer_sha256) != 0) {
            gk_fail(err, GK_EINPUT, "%s: tokenizer sha256 %s differs from %s in %s", s->path, s->meta.tokenizer_sha256,
                    s0->meta.tokenizer_sha256, s0->path);
            goto fail;
        }
        if (s->meta.vocab_size != s0->meta.vocab_size) {
            gk_fail(err, GK_EINPUT, "%s: vocab_size %" PRId64 " differs from %" PRId64 " in %s", s->path,
                    s->meta.vocab_size, s0->meta.vocab_size, s0->path);
            goto fail;
        }
        if (opt->max_vocab > 0 && s->meta.vocab_size > opt->max_vocab) {
            gk_fail(err, GK_EINPUT, "%s: the shards' vocabulary has %" PRId64 " ids but the model's only %" PRId64, s->path,
                    s->meta.vocab_size, opt->max_vocab);
            goto fail;
        }
        uint64_t windows = (s->n_tokens - 1) / opt->seq_len;
        l->first[i + 1] = l->first[i] + windows;
        all_tokens += s->n_tokens;
    }
    if (shard_set_check(l->shards, l->n_shards, err) < 0) goto fail; // not part of a killed tokenize's set
    l->total = l->first[l->n_shards];
    if (l->total == 0) {
        gk_fail(err, GK_EINPUT,
                "no training windows: %zu shard(s) with %" PRIu64 " tokens in all, and a window needs seq_len + 1 = %zu "
                "tokens from one shard",
                l->n_shards, all_tokens, opt->seq_len + 1);
        goto fail;
    }
    if (opt->require_targets && require_targets(l, err)) goto fail;
    list_free(&list);
    *out = l;
    return 0;
fail:
    list_free(&list);
    loader_close(l);
    return -1;
}

uint64_t loader_total_windows(const loader *l) { return l->total; }
size_t loader_n_shards(const loader *l) { return l->n_shards; }
const shard_file *loader_shard(const loader *l, size_t i) { return &l->shards[i]; }
uint64_t loader_shard_windows(const loader *l, size_t i) { return l->first[i + 1] - l->first[i]; }

// ---------------------------------------------------------------- batches

int loader_batch_alloc(loader_batch *b, size_t capacity, size_t seq_len, gk_err *err) {
    memset(b, 0, sizeof *b);
    size_t rows_in, rows_tgt;
    if (capacity < 1 || seq_len < 1 || !gk_mul_ok(capacity, seq_len + 1, &rows_in) ||
        !gk_mul_ok(capacity, seq_len, &rows_tgt))
        return gk_fail(err, GK_EINPUT, "bad batch shape [%zu, %zu]", capacity, seq_len);
    b->capacity = capacity;
    b->seq_len = seq_len;
    b->tokens = gk_calloc(rows_in, sizeof *b->tokens, err);
    b->doc_begin = b->tokens ? gk_calloc(rows_tgt, sizeof *b->doc_begin, err) : NULL;
    b->target_mask = b->doc_begin ? gk_calloc(rows_tgt, 1, err) : NULL;
    b->shard = b->target_mask ? gk_calloc(capacity, sizeof *b->shard, err) : NULL;
    b->window = b->shard ? gk_calloc(capacity, sizeof *b->window, err) : NULL;
    b->row_epoch = b->window ? gk_calloc(capacity, sizeof *b->row_epoch, err) : NULL;
    if (!b->row_epoch) {
        loader_batch_free(b);
        return -1;
    }
    return 0;
}

void loader_batch_stage(const loader_batch *b, size_t B, int32_t *tokens, int32_t *doc_begin, int32_t *targets) {
    size_t T = b->seq_len;
    for (size_t r = 0; r < B; r++) {
        bool live = r < b->batch_size;
        const int32_t *w = b->tokens + r * (T + 1); // [T + 1]: inputs, then one more for the last target
        for (size_t t = 0; t < T; t++) {
            size_t i = r * T + t;
            tokens[i] = live ? w[t] : 0;
            doc_begin[i] = live ? b->doc_begin[i] : 0;
            if (targets) targets[i] = live && b->target_mask[i] ? w[t + 1] : -1;
        }
    }
}

size_t loader_batch_targets(const loader_batch *b) {
    size_t n = 0;
    for (size_t i = 0; i < b->batch_size * b->seq_len; i++) n += b->target_mask[i];
    return n;
}

void loader_batch_free(loader_batch *b) {
    free(b->tokens);
    free(b->doc_begin);
    free(b->target_mask);
    free(b->shard);
    free(b->window);
    free(b->row_epoch);
    memset(b, 0, sizeof *b);
}

// The last index i < n with a[i] <= x, for a sorted a with a[0] <= x.
static size_t last_at_or_below(const uint64_t *a, size_t n, uint64_t x) {
    size_t lo = 0, hi = n; // a[lo] <= x < a[hi] (a[n] taken as infinite)
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] <= x) lo = mid;
        else hi = mid;
    }
    return lo;
}

// The shard holding global window g: the last shard whose first window is <= g
// (shards without windows share their successor's first id and are skipped).
static size_t shard_of(const loader *l, uint64_t g) { return last_at_or_below(l->first, l->n_shards, g); }

// Index of the last document starting at or before token pos.
static uint64_t doc_at(const shard_file *s, uint64_t pos) { return last_at_or_below(s->doc_starts, s->n_docs, pos); }

// Fills row b with global window g.
static int fill_row(loader *l, uint64_t g, size_t b, loader_batch *batch, gk_err *err) {
    size_t T = l->seq_len, si = shard_of(l, g);
    shard_file *s = &l->shards[si];
    uint64_t w = g - l->first[si], start = w * T;
    batch->shard[b] = (uint32_t)si;
    batch->window[b] = w;
    if (shard_read_tokens(s, start, T + 1, l->tokens_buf, err) < 0) return -1;
    if (s->meta.has_loss_mask && shard_read_mask(s, start, T + 1, l->mask_buf, err) < 0) return -1;
    int32_t *tokens = batch->tokens + b * (T + 1); // [T+1]
    for (size_t t = 0; t <= T; t++) {
        if (l->tokens_buf[t] >= (uint64_t)s->meta.vocab_size)
            return gk_fail(err, GK_EINPUT, "%s: token %" PRIu32 " at position %" PRIu64 " is >= vocab_size %" PRId64,
                           s->path, l->tokens_buf[t], start + t, s->meta.vocab_size);
        tokens[t] = (int32_t)l->tokens_buf[t];
    }
    int32_t *doc_begin = batch->doc_begin + b * T; // [T]
    uint8_t *target = batch->target_mask + b * T;  // [T]
    uint64_t k = doc_at(s, start); // document of input position t
    for (size_t t = 0; t < T; t++) {
        uint64_t pos = start + t;
        while (k + 1 < s->n_docs && s->doc_starts[k + 1] <= pos) k++;
        doc_begin[t] = s->doc_starts[k] > start ? (int32_t)(s->doc_starts[k] - start) : 0;
        int next_starts_doc = k + 1 < s->n_docs && s->doc_starts[k + 1] == pos + 1;
        target[t] = !next_starts_doc && (!s->meta.has_loss_mask || l->mask_buf[t + 1] != 0);
    }
    return 0;
}

int loader_next(loader *l, size_t B, loader_batch *batch, gk_err *err) {
    if (B < 1 || B > batch->capacity)
        return gk_fail(err, GK_EINPUT, "batch size %zu is not in 1..%zu (the batch's capacity)", B, batch->capacity);
    if (batch->seq_len != l->seq_len)
        return gk_fail(err, GK_EINPUT, "batch seq_len %zu differs from the loader's %zu", batch->seq_len, l->seq_len);
    uint64_t epoch = l->epoch, index = l->index;
    for (size_t b = 0; b < B; b++) {
        batch->row_epoch[b] = epoch;
        if (fill_row(l, loader_order(l, epoch, index), b, batch, err) < 0) return -1;
        if (++index == l->total) {
            index = 0;
            epoch++;
        }
    }
    batch->batch_size = B;
    batch->epoch = batch->row_epoch[0];
    batch->step = l->step++;
    l->epoch = epoch;
    l->index = index;
    return 0;
}

void loader_skip(loader *l, uint64_t windows, int64_t batches) {
    uint64_t at = l->index + windows;
    l->epoch += at / l->total;
    l->index = at % l->total;
    l->step = (uint64_t)((int64_t)l->step + batches);
}

// ---------------------------------------------------------------- cursor

void loader_get_cursor(const loader *l, loader_cursor *c) {
    c->epoch = l->epoch;
    c->index = l->index;
    c->step = l->step;
    c->seed = l->seed;
    c->total_windows = l->total;
    c->seq_len = l->seq_len;
    c->shuffle = l->shuffle;
}

int loader_set_cursor(loader *l, const loader_cursor *c, gk_err *err) {
    if (c->total_windows != l->total)
        return gk_fail(err, GK_EINPUT,
                       "the cursor was saved for %" PRIu64 " windows, but these %zu shard(s) have %" PRIu64
                       " at seq_len %zu",
                       c->total_windows, l->n_shards, l->total, l->seq_len);
    if (c->seq_len != l->seq_len)
        return gk_fail(err, GK_EINPUT, "the cursor was saved with seq_len %" PRIu64 ", the loader has %zu", c->seq_len,
                       l->seq_len);
    if (c->shuffle != l->shuffle)
        return gk_fail(err, GK_EINPUT, "the cursor was saved with shuffle %s, the loader has shuffle %s",
                       c->shuffle ? "on" : "off", l->shuffle ? "on" : "off");
    if (c->seed != l->seed)
        return gk_fail(err, GK_EINPUT, "the cursor was saved with seed %" PRIu64 ", the loader has seed %" PRIu64, c->seed,
                       l->seed);
    if (c->index >= l->total)
        return gk_fail(err, GK_EINPUT, "cursor index %" PRIu64 " is not below total_windows %" PRIu64, c->index, l->total);
    l->epoch = c->epoch;
    l->index = c->index;
    l->step = c->step;
    return 0;
}

void loader_cursor_to_json(const loader_cursor *c, strbuf *sb) {
    sb_printf(sb,
              "{\"epoch\":%" PRIu64 ",\"index\":%" PRIu64 ",\"step\":%" PRIu64 ",\"seed\":\"%" PRIu64
              "\",\"total_windows\":%" PRIu64 ",\"seq_len\":%" PRIu64 ",\"shuffle\":%s}",
              c->epoch, c->index, c->step, c->seed, c->total_windows, c->seq_len, c->shuffle ? "true" : "false");
}

static int get_u64(const json_value *v, const char *key, uint64_t *out, gk_err *err) {
    const json_value *x = json_get(v, key);
    if (!x) return gk_fail(err, GK_EINPUT, "loader cursor: missing '%s'", key);
    if (x->type == JSON_NUMBER && x->is_integer && x->integer >= 0) {
        *out = (uint64_t)x->integer;
        return 0;
    }
    if (x->type == JSON_STRING && x->length > 0 && x->length <= 20 && strspn(x->string, "0123456789") == x->length) {
        errno = 0;
        unsigned long long u = strtoull(x->string, NULL, 10);
        if (errno == 0) {
            *out = u;
            return 0;
        }
    }
    return gk_fail(err, GK_EINPUT, "loader cursor: '%s' (line %d) is not a non-negative integer", key, x->line);
}

int loader_cursor_from_json(const json_value *v, loader_cursor *c, gk_err *err) {
    if (!v || v->type != JSON_OBJECT) return gk_fail(err, GK_EINPUT, "loader cursor: expected a JSON object");
    loader_cursor r = {0};
    if (get_u64(v, "epoch", &r.epoch, err) < 0 || get_u64(v, "index", &r.index, err) < 0 ||
        get_u64(v, "step", &r.step, err) < 0 || get_u64(v, "seed", &r.seed, err) < 0 ||
        get_u64(v, "total_windows", &r.total_windows, err) < 0 || get_u64(v, "seq_len", &r.seq_len, err) < 0)
        return -1;
    const json_value *sh = json_get(v, "shuffle");
    if (!sh || sh->type != JSON_BOOL) return gk_fail(err, GK_EINPUT, "loader cursor: 'shuffle' must be true or false");
    r.shuffle = sh->boolean;
    *c = r;
    return 0;
}

int loader_cursor_parse(const char *text, size_t len, loader_cursor *c, gk_err *err) {
    json_doc doc;
    if (json_parse(text, len, "loader cursor", &doc, err) < 0) return -1;
    int rc = loader_cursor_from_json(doc.root, c, err);
    json_free(&doc);
    return rc;
}

// The teacher-cache reader: finds and checks the segments of a cache against a
// loader's shards, then reads one window's rows at a time (distill/teacher_cache.h).
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/sha256.h"
#include "common/half.h"
#include "data/h5util.h"
#include "data/zstd_filter.h"
#include "distill/teacher_cache_internal.h"

enum { MAX_OPEN = 64 }; // segment files kept open at once (least recently used closes first)

typedef struct {
    char *path;
    tc_segment s;
    size_t shard;           // loader shard index
    hid_t file, ids, lp, aux; // aux: /leftover (top-k) or /counts (sample); -1 while closed
    uint64_t used;          // last use (LRU); 0 = closed
} segment;

struct teacher_cache {
    teacher_cache_meta meta;
    size_t T, n_shards;
    segment *segs;          // [n_segs] sorted by (shard, first_window)
    size_t n_segs;
    size_t *shard_begin;    // [n_shards + 1]: the shard's segments are segs[shard_begin[i] .. shard_begin[i+1])
    size_t n_open;
    uint64_t tick;
    hid_t f16;              // IEEE half, the memory type of float16 log-probs
};

const teacher_cache_meta *teacher_cache_info(const teacher_cache *c) { return &c->meta; }

// ---------------------------------------------------------------- open

static void seg_close(teacher_cache *c, segment *g) {
    if (!g->used) return;
    h5_quiet q;
    h5_quiet_begin(&q);
    h5_close(&g->aux);
    h5_close(&g->lp);
    h5_close(&g->ids);
    h5_close(&g->file);
    h5_quiet_end(&q);
    g->used = 0;
    c->n_open--;
}

void teacher_cache_close(teacher_cache *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_segs; i++) {
        seg_close(c, &c->segs[i]);
        free(c->segs[i].path);
    }
    h5_close(&c->f16);
    free(c->segs);
    free(c->shard_begin);
    free(c);
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int cmp_seg(const void *a, const void *b) {
    const segment *x = a, *y = b;
    if (x->shard != y->shard) return x->shard < y->shard ? -1 : 1;
    return x->s.first_window < y->s.first_window ? -1 : x->s.first_window > y->s.first_window;
}

// The sorted names DIR/*.h5 (temporary files end in .tmp-PID and are not listed).
static int list_dir(const char *dir, char ***names, size_t *n, gk_err *err) {
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return gk_fail(err, GK_EIO, "teacher cache %s: cannot list: %s", dir, strerror(errno));
    size_t cap = 0;
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".h5")) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(*names, cap * sizeof *p);
            if (!p) {
                rc = gk_fail(err, GK_ENOMEM, "out of memory");
                break;
            }
            *names = p;
        }
        if (!((*names)[*n] = path_join(dir, e->d_name))) rc = gk_fail(err, GK_ENOMEM, "out of memory");
        else (*n)++;
    }
    closedir(d);
    if (rc == 0 && *n) qsort(*names, *n, sizeof **names, cmp_name);
    return rc;
}

// The run's expectations against one segment.
static int check_expected(const char *path, const tc_segment *s, const teacher_cache_expect *e, size_t T, gk_err *err) {
    const teacher_cache_meta *m = &s->meta;
    if (!e->any_method && m->method != e->method)
        return gk_fail(err, GK_EINPUT, "%s: attribute 'method' is '%s', but the run expects '%s'", path,
                       teacher_cache_method_name(m->method), teacher_cache_method_name(e->method));
    if (m->seq_len != T)
        return gk_fail(err, GK_EINPUT, "%s: attribute 'seq_len' is %" PRIu64 ", but the run uses seq_len %zu", path,
                       m->seq_len, T);
    if (e->temperature > 0 && fabs(m->temperature - e->temperature) > 1e-9 * fmax(m->temperature, e->temperature))
        return gk_fail(err, GK_EINPUT, "%s: attribute 'temperature' is %.17g, but the run uses temperature %.17g", path,
                       m->temperature, e->temperature);
    if (e->tokenizer_sha256 && strcmp(m->tokenizer_sha256, e->tokenizer_sha256))
        return gk_fail(err, GK_EINPUT, "%s: attribute 'tokenizer_sha256' is %s, but the run's tokenizer is %s", path,
                       m->tokenizer_sha256, e->tokenizer_sha256);
    if (e->vocab_size && m->vocab_size != e->vocab_size)
        return gk_fail(err, GK_EINPUT, "%s: attribute 'vocab_size' is %" PRId64 ", but the run's vocabulary has %" PRId64,
                       path, m->vocab_size, e->vocab_size);
    return 0;
}

// Each shard's windows must be covered once: segments sorted by first window, no gap, no overlap.
static int check_coverage(teacher_cache *c, loader *l, const char *dir, gk_err *err) {
    for (size_t i = 0; i < c->n_shards; i++) {
        const char *shard = loader_shard(l, i)->path;
        uint64_t W = loader_shard_windows(l, i), next = 0;
        const segment *prev = NULL;
        for (size_t j = c->shard_begin[i]; j < c->shard_begin[i + 1]; j++) {
            const segment *g = &c->segs[j];
            uint64_t first = g->s.first_window, end = first + g->s.n_windows;
            if (first > next)
                return gk_fail(err, GK_EINPUT, "teacher cache %s: no segment covers windows %" PRIu64 "-%" PRIu64
                               " of %s (a missing or unfinished segment file)", dir, next, first, shard);
            if (first < next)
                return gk_fail(err, GK_EINPUT, "teacher cache %s: windows %" PRIu64 "-%" PRIu64 " of %s are in both %s and %s",
                               dir, first, next < end ? next : end, shard, prev->path, g->path);
            next = end;
            prev = g;
        }
        if (next < W)
            return gk_fail(err, GK_EINPUT, "teacher cache %s: no segment covers windows %" PRIu64 "-%" PRIu64
                           " of %s (a missing or unfinished segment file)", dir, next, W, shard);
    }
    return 0;
}

// Reads every segment, keeps those of the loader's shards, checks them.
static int load_segments(teacher_cache *c, const char *dir, loader *l, const teacher_cache_expect *e, char **names,
                         size_t n_names, char (*sha)[65], gk_err *err) {
    const char *ref = NULL;
    for (size_t f = 0; f < n_names; f++) {
        tc_segment s;
        int rc = tc_segment_read(names[f], &s, err);
        if (rc > 0) continue; // another kind of file (a token shard, say)
        if (rc < 0) return -1;
        if (check_expected(names[f], &s, e, c->T, err)) return -1;
        if (!ref) {
            ref = names[f];
            c->meta = s.meta;
        } else {
            char other[1100];
            snprintf(other, sizeof other, "%s has", ref);
            if (tc_meta_compare(names[f], &s.meta, other, &c->meta, err)) return -1;
        }
        size_t i = 0;
        while (i < c->n_shards && strcmp(tc_basename(loader_shard(l, i)->path), s.token_shard)) i++;
        if (i == c->n_shards) continue; // a shard this run does not use
        const char *shard = loader_shard(l, i)->path;
        if (strcmp(s.token_shard_sha256, sha[i]))
            return gk_fail(err, GK_EINPUT, "%s: made from token shard %s with sha256 %s, but %s now has sha256 %s "
                           "(the shard changed after caching)", names[f], s.token_shard, s.token_shard_sha256, shard, sha[i]);
        if (s.shard_windows != loader_shard_windows(l, i))
            return gk_fail(err, GK_EINPUT, "%s: attribute 'shard_windows' is %" PRIu64 ", but %s has %" PRIu64 " windows",
                           names[f], s.shard_windows, shard, loader_shard_windows(l, i));
        segment *g = &c->segs[c->n_segs++];
        g->s = s;
        g->shard = i;
        g->path = names[f];
        names[f] = NULL;
        g->file = g->ids = g->lp = g->aux = H5I_INVALID_HID;
    }
    if (!ref) return gk_fail(err, GK_EINPUT, "teacher cache %s: no segment files (*.h5)", dir);
    qsort(c->segs, c->n_segs, sizeof *c->segs, cmp_seg);
    for (size_t j = 0, i = 0; i <= c->n_shards; i++) {
        while (j < c->n_segs && c->segs[j].shard < i) j++;
        c->shard_begin[i] = j;
    }
    return check_coverage(c, l, dir, err);
}

int teacher_cache_open(teacher_cache **out, const char *dir, loader *l, const teacher_cache_expect *e, gk_err *err) {
    *out = NULL;
    if (zstd_filter_register(err)) return -1;
    loader_cursor cur;
    loader_get_cursor(l, &cur);
    if (e->seq_len && e->seq_len != cur.seq_len)
        return gk_fail(err, GK_EINTERNAL, "teacher cache: expected seq_len %zu but the loader has %" PRIu64, e->seq_len,
                       cur.seq_len);
    teacher_cache *c = gk_calloc(1, sizeof *c, err);
    if (!c) return -1;
    c->f16 = H5I_INVALID_HID;
    c->T = (size_t)cur.seq_len;
    c->n_shards = loader_n_shards(l);
    char **names = NULL, (*sha)[65] = NULL;
    size_t n_names = 0;
    int rc = list_dir(dir, &names, &n_names, err);
    if (rc == 0 && !(c->segs = gk_calloc(n_names + 1, sizeof *c->segs, err))) rc = -1;
    if (rc == 0 && !(c->shard_begin = gk_calloc(c->n_shards + 1, sizeof *c->shard_begin, err))) rc = -1;
    if (rc == 0 && !(sha = gk_calloc(c->n_shards, sizeof *sha, err))) rc = -1;
    if (rc == 0 && (c->f16 = tc_f16_type()) < 0) rc = gk_fail(err, GK_EINTERNAL, "cannot make the float16 type");
    if (rc == 0) rc = tc_hash_shards(l, sha, err);
    if (rc == 0) rc = load_segments(c, dir, l, e, names, n_names, sha, err);
    for (size_t i = 0; i < n_names; i++) free(names[i]);
    free(names);
    free(sha);
    if (rc) {
        teacher_cache_close(c);
        return -1;
    }
    *out = c;
    return 0;
}

// ---------------------------------------------------------------- rows

int teacher_cache_rows_alloc(const teacher_cache *c, size_t windows, teacher_cache_rows *r, gk_err *err) {
    memset(r, 0, sizeof *r);
    size_t K = (size_t)c->meta.k, rows, cells;
    if (windows < 1 || !gk_mul_ok(windows, c->T, &rows) || !gk_mul_ok(rows, K, &cells))
        return gk_fail(err, GK_EINPUT, "teacher cache rows: bad size %zu windows", windows);
    r->windows = windows;
    r->T = c->T;
    r->k = c->meta.k;
    bool sample = c->meta.method == TEACHER_CACHE_SAMPLE;
    int ok = (r->ids = gk_malloc(cells * sizeof *r->ids, err)) && (r->logprobs = gk_malloc(cells * sizeof *r->logprobs, err)) &&
             (r->rows = gk_calloc(rows, sizeof *r->rows, err)) && (r->raw = gk_malloc(c->T * K * 4, err)) &&
             (r->sorted = gk_malloc(K * sizeof *r->sorted, err)) &&
             (sample ? (r->counts = gk_malloc(cells * sizeof *r->counts, err)) != NULL
                     : (r->leftover = gk_malloc(rows * sizeof *r->leftover, err)) != NULL);
    if (!ok) {
        teacher_cache_rows_free(r);
        return -1;
    }
    for (size_t i = 0; i < rows; i++) {
        r->rows[i].ids = r->ids + i * K;
        r->rows[i].logprobs = r->logprobs + i * K;
        r->rows[i].counts = sample ? r->counts + i * K : NULL;
    }
    return 0;
}

void teacher_cache_rows_free(teacher_cache_rows *r) {
    free(r->ids);
    free(r->logprobs);
    free(r->counts);
    free(r->leftover);
    free(r->rows);
    free(r->raw);
    free(r->sorted);
    memset(r, 0, sizeof *r);
}

int teacher_cache_row(const teacher_cache_rows *r, size_t row, sparse_row *out) {
    if (row >= r->windows * r->T) return -1;
    *out = r->rows[row];
    return 0;
}

// Opens a dataset with a chunk cache of two chunks.
static hid_t open_cached(hid_t f, const char *name, uint64_t chunk_bytes) {
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    if (dapl >= 0) H5Pset_chunk_cache(dapl, 101, (size_t)(2 * chunk_bytes), 1.0);
    hid_t d = H5Dopen2(f, name, dapl >= 0 ? dapl : H5P_DEFAULT);
    h5_close(&dapl);
    return d;
}

static int seg_open(teacher_cache *c, segment *g, gk_err *err) {
    if (g->used) return 0;
    if (c->n_open >= MAX_OPEN) {
        segment *oldest = NULL;
        for (size_t i = 0; i < c->n_segs; i++)
            if (c->segs[i].used && (!oldest || c->segs[i].used < oldest->used)) oldest = &c->segs[i];
        seg_close(c, oldest);
    }
    uint64_t chunk = (g->s.chunk_rows ? g->s.chunk_rows : c->T) * (uint64_t)c->meta.k;
    h5_quiet q;
    h5_quiet_begin(&q);
    g->file = h5_open_read(g->path, err);
    if (g->file >= 0) {
        g->ids = open_cached(g->file, "ids", chunk * 4);
        g->lp = open_cached(g->file, "logprobs", chunk * (uint64_t)g->s.logprob_bytes);
        g->aux = c->meta.method == TEACHER_CACHE_TOPK ? open_cached(g->file, "leftover", chunk / (uint64_t)c->meta.k * 4)
                                                      : open_cached(g->file, "counts", chunk * (uint64_t)g->s.count_bytes);
    }
    int rc = 0;
    g->used = ++c->tick;
    c->n_open++;
    if (g->file >= 0 && (g->ids < 0 || g->lp < 0 || g->aux < 0)) {
        char d[256];
        rc = gk_fail(err, GK_EIO, "%s: cannot open: %s", g->path, h5_detail(d, sizeof d));
    } else if (g->file < 0) {
        rc = -1; // err names the file
    }
    h5_quiet_end(&q);
    if (rc) seg_close(c, g);
    return rc;
}

// Reads rows [row, row + T) of a dataset (rank 2 with k columns, or rank 1) into out.
static int read_rows(hid_t ds, hid_t mem_type, uint64_t row, size_t T, size_t k, int rank, void *out) {
    hsize_t start[2] = {row, 0}, count[2] = {T, k};
    hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(rank, count, NULL);
    int rc = fs >= 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
                     H5Dread(ds, mem_type, ms, fs, H5P_DEFAULT, out) >= 0
                 ? 0
                 : -1;
    h5_close(&ms);
    h5_close(&fs);
    return rc;
}

static int by_id(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

// The used entries out[k] of one row (ids in range, finite log-probs): distinct ids, and
// probabilities that with the leftover sum to at most 1, beyond float16 rounding of the
// log-probs (relative |lp| / 2048 each, at most 1/(2048 e) of mass per entry).
static int check_row(const teacher_cache *c, const segment *g, uint64_t window, size_t t, const sparse_row *out,
                     int32_t *sorted, gk_err *err) {
    uint64_t row = (window - g->s.first_window) * c->T + t;
    memcpy(sorted, out->ids, (size_t)out->k * sizeof *sorted);
    qsort(sorted, (size_t)out->k, sizeof *sorted, by_id);
    for (int j = 1; j < out->k; j++)
        if (sorted[j] == sorted[j - 1])
            return gk_fail(err, GK_EINPUT, "%s: row %" PRIu64 " (window %" PRIu64 " position %zu): id %d appears twice",
                           g->path, row, window, t, sorted[j]);
    double mass = out->leftover;
    for (int j = 0; j < out->k; j++) mass += exp((double)out->logprobs[j]);
    double limit = 1.01 + (g->s.logprob_bytes == 2 ? out->k * 2e-4 : 0);
    if (!(mass <= limit))
        return gk_fail(err, GK_EINPUT, "%s: row %" PRIu64 " (window %" PRIu64 " position %zu): probabilities%s sum to %.4g, "
                       "more than 1", g->path, row, window, t, c->meta.method == TEACHER_CACHE_TOPK ? " and leftover" : "", mass);
    return 0;
}

// Checks and completes the rows of one window: ids in range, finite values,
// sampled rows compacted to their used slots with counts summing to k; then check_row.
static int finish_rows(const teacher_cache *c, const segment *g, uint64_t window, teacher_cache_rows *r, size_t slot,
                       gk_err *err) {
    size_t K = (size_t)c->meta.k, T = c->T;
    const uint16_t *counts = c->meta.method == TEACHER_CACHE_SAMPLE ? (const uint16_t *)r->raw + T * K : NULL;
    for (size_t t = 0; t < T; t++) {
        size_t row = slot * T + t;
        int32_t *ids = r->ids + row * K;
        float *lp = r->logprobs + row * K;
        sparse_row *out = &r->rows[row];
        int n = 0;
        uint64_t draws = 0;
        for (size_t j = 0; j < K; j++) {
            uint16_t cnt = counts ? counts[t * K + j] : 1;
            if (!cnt) continue;
            if ((uint32_t)ids[j] >= (uint64_t)c->meta.vocab_size || !isfinite(lp[j]) || lp[j] > 1e-3f)
                return gk_fail(err, GK_EINPUT, "%s: window %" PRIu64 " position %zu slot %zu: id %" PRIu32
                               " / log-prob %g out of range (vocab %" PRId64 ")", g->path, window, t, j, (uint32_t)ids[j],
                               (double)lp[j], c->meta.vocab_size);
            if (counts) {
                ids[n] = ids[j];
                lp[n] = lp[j];
                r->counts[row * K + (size_t)n] = cnt;
                draws += cnt;
            }
            n++;
        }
        out->k = n;
        out->leftover = r->leftover ? r->leftover[row] : 0;
        if (counts && draws != K)
            return gk_fail(err, GK_EINPUT, "%s: window %" PRIu64 " position %zu: counts sum to %" PRIu64 ", expected %zu",
                           g->path, window, t, draws, K);
        if (r->leftover && !(out->leftover >= 0 && out->leftover <= 1.001f))
            return gk_fail(err, GK_EINPUT, "%s: window %" PRIu64 " position %zu: leftover %g is not in [0, 1]", g->path,
                           window, t, (double)out->leftover);
        if (check_row(c, g, window, t, out, r->sorted, err)) return -1;
    }
    return 0;
}

int teacher_cache_window(teacher_cache *c, size_t shard, uint64_t window, teacher_cache_rows *r, size_t slot,
                         gk_err *err) {
    if (shard >= c->n_shards || slot >= r->windows || r->k != c->meta.k || r->T != c->T)
        return gk_fail(err, GK_EINTERNAL, "teacher cache: bad request (shard %zu, slot %zu)", shard, slot);
    size_t lo = c->shard_begin[shard], hi = c->shard_begin[shard + 1]; // the last segment starting at or before window
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->segs[mid].s.first_window <= window) lo = mid;
        else hi = mid;
    }
    segment *g = lo < c->shard_begin[shard + 1] ? &c->segs[lo] : NULL;
    if (!g || window < g->s.first_window || window - g->s.first_window >= g->s.n_windows)
        return gk_fail(err, GK_EINPUT, "teacher cache: no segment holds window %" PRIu64 " of shard %zu", window, shard);
    if (seg_open(c, g, err)) return -1;
    g->used = ++c->tick;
    size_t T = c->T, K = (size_t)c->meta.k;
    uint64_t row = (window - g->s.first_window) * T;
    uint16_t *raw = r->raw; // [T, K] float16 log-probs, then [T, K] counts
    h5_quiet q;
    h5_quiet_begin(&q);
    int bad = read_rows(g->ids, H5T_NATIVE_UINT32, row, T, K, 2, r->ids + slot * T * K) ||
              (g->s.logprob_bytes == 2 ? read_rows(g->lp, c->f16, row, T, K, 2, raw)
                                       : read_rows(g->lp, H5T_NATIVE_FLOAT, row, T, K, 2, r->logprobs + slot * T * K)) ||
              (r->leftover ? read_rows(g->aux, H5T_NATIVE_FLOAT, row, T, 1, 1, r->leftover + slot * T)
                           : read_rows(g->aux, H5T_NATIVE_UINT16, row, T, K, 2, raw + T * K));
    char d[256];
    if (bad) gk_fail(err, GK_EINPUT, "%s: cannot read window %" PRIu64 ": %s", g->path, window, h5_detail(d, sizeof d));
    h5_quiet_end(&q);
    if (bad) return -1;
    if (g->s.logprob_bytes == 2)
        for (size_t i = 0; i < T * K; i++) r->logprobs[slot * T * K + i] = f16_to_f32(raw[i]);
    return finish_rows(c, g, window, r, slot, err);
}

int teacher_cache_batch(teacher_cache *c, const loader_batch *b, teacher_cache_rows *r, gk_err *err) {
    if (b->batch_size > r->windows)
        return gk_fail(err, GK_EINTERNAL, "teacher cache rows hold %zu windows, the batch has %zu", r->windows,
                       b->batch_size);
    for (size_t i = 0; i < b->batch_size; i++)
        if (teacher_cache_window(c, b->shard[i], b->window[i], r, i, err)) return -1;
    return 0;
}

// Teacher-cache metadata: method names, hashes (shard files, teacher
// fingerprint, sampling keys), and a segment file's attributes and datasets
// read, validated and compared (format: distill/teacher_cache.h).
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/json.h"
#include "common/rng.h"
#include "common/sha256.h"
#include "data/h5util.h"
#include "data/zstd_filter.h"
#include "distill/teacher_cache_internal.h"

const char *teacher_cache_method_name(teacher_cache_method m) { return m == TEACHER_CACHE_SAMPLE ? "sample" : "topk"; }

int teacher_cache_method_parse(const char *name, teacher_cache_method *out) {
    if (!strcmp(name, "topk")) return *out = TEACHER_CACHE_TOPK, 0;
    if (!strcmp(name, "sample")) return *out = TEACHER_CACHE_SAMPLE, 0;
    return -1;
}

// ---------------------------------------------------------------- hashes

static void put_u64(sha256_ctx *c, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    sha256_update(c, b, 8);
}

// name, NUL, size, header, 64 sampled 4 KiB blocks of the data.
static int fingerprint_file(sha256_ctx *c, const char *dir, const char *name, gk_err *err) {
    char *path = path_join(dir, name);
    if (!path) return gk_fail(err, GK_ENOMEM, "out of memory");
    file_map m;
    int rc = file_map_open(path, &m, err);
    free(path);
    if (rc) return -1;
    sha256_update(c, name, strlen(name) + 1);
    put_u64(c, m.size);
    uint64_t n = 0;
    for (int i = 0; i < 8 && (size_t)i < m.size; i++) n |= (uint64_t)m.data[i] << (8 * i);
    size_t head = m.size >= 8 && n <= m.size - 8 ? (size_t)(8 + n) : m.size;
    sha256_update(c, m.data ? (const void *)m.data : "", head);
    enum { BLOCKS = 64, BLOCK = 4096 };
    size_t rest = m.size - head;
    if (rest <= (size_t)BLOCKS * BLOCK) {
        sha256_update(c, m.data + head, rest);
    } else {
        for (size_t b = 0; b < BLOCKS; b++) // block b starts at b/(BLOCKS-1) of the way through
            sha256_update(c, m.data + head + (rest - BLOCK) / (BLOCKS - 1) * b, BLOCK);
    }
    file_map_close(&m);
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

// The files named by an index's weight_map, sorted and unique, hashed in turn.
static int fingerprint_index(sha256_ctx *c, const char *dir, const char *index, gk_err *err) {
    char *text;
    size_t len;
    json_doc doc;
    if (file_read_all(index, &text, &len, err)) return -1;
    sha256_update(c, text, len);
    int rc = json_parse(text, len, index, &doc, err);
    if (rc) {
        free(text);
        return -1;
    }
    const json_value *map = json_get(doc.root, "weight_map");
    const char **names = map && map->type == JSON_OBJECT ? calloc(map->count + 1, sizeof *names) : NULL;
    if (!names) rc = gk_fail(err, GK_EINPUT, "%s: no weight_map object", index);
    size_t n = 0;
    for (size_t i = 0; rc == 0 && i < map->count; i++)
        if (map->items[i]->type == JSON_STRING) names[n++] = map->items[i]->string;
    if (rc == 0) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (i == 0 || strcmp(names[i], names[i - 1])) rc = fingerprint_file(c, dir, names[i], err);
    free(names);
    json_free(&doc);
    free(text);
    return rc;
}

int teacher_fingerprint(const char *dir, char hex[65], gk_err *err) {
    sha256_ctx c;
    sha256_init(&c);
    char *config = path_join(dir, "config.json"), *index = path_join(dir, "model.safetensors.index.json"), *text;
    size_t len;
    int rc = config && index ? 0 : gk_fail(err, GK_ENOMEM, "out of memory");
    if (rc == 0) rc = file_read_all(config, &text, &len, err);
    if (rc == 0) {
        sha256_update(&c, text, len);
        free(text);
        rc = path_exists(index) ? fingerprint_index(&c, dir, index, err)
                                : fingerprint_file(&c, dir, "model.safetensors", err);
    }
    free(config);
    free(index);
    if (rc) return -1;
    unsigned char d[32];
    sha256_final(&c, d);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return 0;
}

uint64_t teacher_draw_key(uint64_t seed, uint64_t shard_key, uint64_t window, uint64_t t) {
    uint64_t k = hash64(seed ^ 0x7EAC4E2CAC4E0001ull);
    k = hash64(k ^ shard_key);
    k = hash64(k ^ window);
    return hash64(k ^ t);
}

uint64_t teacher_shard_key(const char *hex) {
    uint64_t k = 0;
    for (int i = 0; i < 16 && hex[i]; i++) k = k << 4 | (uint64_t)(isdigit((unsigned char)hex[i]) ? hex[i] - '0' : (tolower((unsigned char)hex[i]) - 'a' + 10) & 15);
    return k;
}

// ---------------------------------------------------------------- names

const char *tc_basename(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

char *tc_segment_name(const char *shard_path, uint64_t first, uint64_t end) {
    const char *base = tc_basename(shard_path), *dot = strrchr(base, '.');
    int stem = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    size_t n = strlen(base) + 64;
    char *name = malloc(n);
    if (name) snprintf(name, n, "%.*s.%06" PRIu64 "-%06" PRIu64 ".h5", stem, base, first, end);
    return name;
}

hid_t tc_f16_type(void) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t >= 0 && (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 15) < 0))
        h5_close(&t);
    return t;
}

// ---------------------------------------------------------------- reading a segment

static int read_attr_num(hid_t f, const char *path, const char *name, H5T_class_t cls, hid_t mem, void *out,
                         gk_err *err) {
    hid_t type, attr = h5_open_attr(f, path, name, &type, err);
    if (attr < 0) return -1;
    char tn[32], d[256];
    int rc = 0;
    if (H5Tget_class(type) != cls)
        rc = gk_fail(err, GK_EINPUT, "%s: attribute '%s' is %s, expected %s", path, name,
                     h5_type_name(type, tn, sizeof tn), cls == H5T_FLOAT ? "a float" : "an integer");
    else if (H5Aread(attr, mem, out) < 0)
        rc = gk_fail(err, GK_EINPUT, "%s: attribute '%s': %s", path, name, h5_detail(d, sizeof d));
    h5_close(&type);
    h5_close(&attr);
    return rc;
}

// A non-negative integer attribute of any integer type, as uint64.
static int read_u64(hid_t f, const char *path, const char *name, uint64_t *out, gk_err *err) {
    hid_t type, attr = h5_open_attr(f, path, name, &type, err);
    if (attr < 0) return -1;
    char tn[32], d[256];
    int rc = 0;
    int64_t v = 0;
    if (H5Tget_class(type) != H5T_INTEGER)
        rc = gk_fail(err, GK_EINPUT, "%s: attribute '%s' is %s, expected an integer", path, name,
                     h5_type_name(type, tn, sizeof tn));
    else if (H5Tget_sign(type) == H5T_SGN_NONE ? H5Aread(attr, H5T_NATIVE_UINT64, out) < 0
                                                : H5Aread(attr, H5T_NATIVE_INT64, &v) < 0)
        rc = gk_fail(err, GK_EINPUT, "%s: attribute '%s': %s", path, name, h5_detail(d, sizeof d));
    else if (H5Tget_sign(type) != H5T_SGN_NONE && v < 0)
        rc = gk_fail(err, GK_EINPUT, "%s: attribute '%s' is %" PRId64 ", expected >= 0", path, name, v);
    else if (H5Tget_sign(type) != H5T_SGN_NONE)
        *out = (uint64_t)v;
    h5_close(&type);
    h5_close(&attr);
    return rc;
}

static int read_str(hid_t f, const char *path, const char *name, char *out, size_t cap, gk_err *err) {
    char *s;
    if (h5_read_attr_str(f, path, name, &s, err)) return -1;
    int fits = strlen(s) < cap;
    if (fits) memcpy(out, s, strlen(s) + 1);
    free(s);
    return fits ? 0 : gk_fail(err, GK_EINPUT, "%s: attribute '%s' is longer than %zu bytes", path, name, cap - 1);
}

// teacher_precision: "fp32" when absent (files written before bf16 teachers).
static int read_precision(hid_t f, const char *path, char out[8], gk_err *err) {
    if (H5Aexists(f, "teacher_precision") <= 0) return snprintf(out, 8, "fp32"), 0;
    if (read_str(f, path, "teacher_precision", out, 8, err)) return -1;
    if (strcmp(out, "fp32") && strcmp(out, "bf16"))
        return gk_fail(err, GK_EINPUT, "%s: attribute 'teacher_precision' is '%s', expected fp32 or bf16", path, out);
    return 0;
}

static int read_sha(hid_t f, const char *path, const char *name, char out[65], gk_err *err) {
    if (read_str(f, path, name, out, 65, err)) return -1;
    return sha256_hex_valid(out) ? 0 : gk_fail(err, GK_EINPUT, "%s: attribute '%s' is not 64 lowercase hex digits", path, name);
}

// Checks dataset `name`: class, element size (one of sizes[]), rank and dims. Stores the element size.
static int check_dataset(hid_t f, const char *path, const char *name, H5T_class_t cls, const int *sizes, int n_sizes,
                         int rank, const hsize_t *dims, int *elem, uint64_t *chunk_rows, gk_err *err) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return gk_fail(err, GK_EINPUT, "%s: missing dataset /%s", path, name);
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT), type = ds < 0 ? -1 : H5Dget_type(ds), space = ds < 0 ? -1 : H5Dget_space(ds);
    hid_t dcpl = ds < 0 ? -1 : H5Dget_create_plist(ds);
    char tn[32], d[256];
    hsize_t got[2] = {0, 0}, chunk[2] = {0, 0};
    int rc = 0, size_ok = 0;
    if (ds < 0 || type < 0 || space < 0 || dcpl < 0) {
        rc = gk_fail(err, GK_EINPUT, "%s: /%s is not a readable dataset: %s", path, name, h5_detail(d, sizeof d));
    } else {
        for (int i = 0; i < n_sizes; i++) size_ok |= H5Tget_size(type) == (size_t)sizes[i];
        bool sign_ok = cls != H5T_INTEGER || H5Tget_sign(type) == H5T_SGN_NONE;
        if (H5Tget_class(type) != cls || !size_ok || !sign_ok || H5Tget_order(type) != H5T_ORDER_LE) {
            rc = gk_fail(err, GK_EINPUT, "%s: /%s has element type %s, expected %s", path, name,
                         h5_type_name(type, tn, sizeof tn), cls == H5T_FLOAT ? "float16 or float32 (little-endian)"
                                                                            : "unsigned little-endian integers");
        } else if (cls == H5T_FLOAT && H5Tget_size(type) == 2) { // the IEEE half layout, not some other 16-bit float
            size_t spos, epos, esize, mpos, msize;
            if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0 || spos != 15 || epos != 10 || esize != 5 ||
                mpos != 0 || msize != 10 || H5Tget_ebias(type) != 15)
                rc = gk_fail(err, GK_EINPUT, "%s: /%s is a 16-bit float but not IEEE half precision", path, name);
        }
        if (rc == 0 && (H5Sget_simple_extent_ndims(space) != rank || H5Sget_simple_extent_dims(space, got, NULL) < 0 ||
                        got[0] != dims[0] || (rank == 2 && got[1] != dims[1])))
            rc = gk_fail(err, GK_EINPUT, "%s: /%s has shape [%llu, %llu] (rank %d), expected [%llu%s%llu]", path, name,
                         (unsigned long long)got[0], (unsigned long long)got[1], H5Sget_simple_extent_ndims(space),
                         (unsigned long long)dims[0], rank == 2 ? ", " : "] (rank 1", rank == 2 ? (unsigned long long)dims[1] : 0ull);
        if (rc == 0) *elem = (int)H5Tget_size(type);
        if (rc == 0 && chunk_rows)
            *chunk_rows = H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, 2, chunk) >= 1 ? chunk[0] : 0;
    }
    h5_close(&dcpl);
    h5_close(&space);
    h5_close(&type);
    h5_close(&ds);
    return rc;
}

static int read_checked(hid_t f, const char *path, tc_segment *s, gk_err *err) {
    char str[256];
    int64_t v;
    teacher_cache_meta *m = &s->meta;
    if (H5Aexists(f, "format") <= 0)
        return gk_fail(err, GK_EINPUT, "%s: not a gemmakd teacher cache (no 'format' attribute)", path);
    if (read_str(f, path, "format", str, sizeof str, err)) return -1;
    if (strcmp(str, TEACHER_CACHE_FORMAT)) {
        gk_fail(err, GK_EINPUT, "%s: attribute 'format' is '%s', expected '%s'", path, str, TEACHER_CACHE_FORMAT);
        return 1; // another gemmakd file (a token shard, say)
    }
    if (h5_read_attr_int(f, path, "format_version", &v, err)) return -1;
    if (v != TEACHER_CACHE_FORMAT_VERSION)
        return gk_fail(err, GK_EINPUT, "%s: attribute 'format_version' is %" PRId64 ", this build reads version %d", path,
                       v, TEACHER_CACHE_FORMAT_VERSION);
    if (read_str(f, path, "method", str, sizeof str, err)) return -1;
    if (teacher_cache_method_parse(str, &m->method))
        return gk_fail(err, GK_EINPUT, "%s: attribute 'method' is '%s', expected 'topk' or 'sample'", path, str);
    if (h5_read_attr_int(f, path, "k", &v, err)) return -1;
    if (v < 1 || v > SPARSE_MAX_K)
        return gk_fail(err, GK_EINPUT, "%s: attribute 'k' is %" PRId64 ", expected 1..%d", path, v, SPARSE_MAX_K);
    m->k = (int)v;
    if (read_u64(f, path, "seq_len", &m->seq_len, err) ||
        read_attr_num(f, path, "temperature", H5T_FLOAT, H5T_NATIVE_DOUBLE, &m->temperature, err) ||
        (m->method == TEACHER_CACHE_SAMPLE && read_u64(f, path, "seed", &m->seed, err)) ||
        read_str(f, path, "teacher", m->teacher, sizeof m->teacher, err) ||
        read_sha(f, path, "teacher_sha256", m->teacher_sha256, err) ||
        read_precision(f, path, m->teacher_precision, err) ||
        read_attr_num(f, path, "final_softcap", H5T_FLOAT, H5T_NATIVE_DOUBLE, &m->final_softcap, err) ||
        h5_read_attr_int(f, path, "vocab_size", &m->vocab_size, err) ||
        read_sha(f, path, "tokenizer_sha256", m->tokenizer_sha256, err) ||
        read_str(f, path, "token_shard", s->token_shard, sizeof s->token_shard, err) ||
        read_sha(f, path, "token_shard_sha256", s->token_shard_sha256, err) ||
        read_u64(f, path, "first_window", &s->first_window, err) || read_u64(f, path, "n_windows", &s->n_windows, err) ||
        read_u64(f, path, "shard_windows", &s->shard_windows, err) ||
        read_u64(f, path, "segment_windows", &m->segment_windows, err))
        return -1;
    if (m->seq_len < 1 || m->seq_len > (1u << 30))
        return gk_fail(err, GK_EINPUT, "%s: attribute 'seq_len' is %" PRIu64 ", expected 1..%u", path, m->seq_len, 1u << 30);
    if (!(m->temperature > 0) || !isfinite(m->temperature))
        return gk_fail(err, GK_EINPUT, "%s: attribute 'temperature' is %g, expected > 0", path, m->temperature);
    if (m->vocab_size < 1 || m->vocab_size > INT32_MAX)
        return gk_fail(err, GK_EINPUT, "%s: attribute 'vocab_size' is %" PRId64 ", expected 1..%d", path, m->vocab_size,
                       INT32_MAX);
    if (s->n_windows < 1 || s->first_window > s->shard_windows || s->n_windows > s->shard_windows - s->first_window)
        return gk_fail(err, GK_EINPUT, "%s: windows [%" PRIu64 ", +%" PRIu64 ") do not fit the shard's %" PRIu64, path,
                       s->first_window, s->n_windows, s->shard_windows);
    uint64_t rows = s->n_windows * m->seq_len;
    if (rows / m->seq_len != s->n_windows) return gk_fail(err, GK_EINPUT, "%s: n_windows x seq_len overflows", path);
    hsize_t dims[2] = {rows, (hsize_t)m->k};
    const int u32[] = {4}, fl[] = {2, 4}, f32[] = {4}, cnt[] = {1, 2};
    int elem;
    if (check_dataset(f, path, "ids", H5T_INTEGER, u32, 1, 2, dims, &elem, &s->chunk_rows, err) ||
        check_dataset(f, path, "logprobs", H5T_FLOAT, fl, 2, 2, dims, &s->logprob_bytes, NULL, err))
        return -1;
    if (m->method == TEACHER_CACHE_TOPK)
        return check_dataset(f, path, "leftover", H5T_FLOAT, f32, 1, 1, dims, &elem, NULL, err);
    return check_dataset(f, path, "counts", H5T_INTEGER, cnt, 2, 2, dims, &s->count_bytes, NULL, err);
}

int tc_segment_read(const char *path, tc_segment *s, gk_err *err) {
    memset(s, 0, sizeof *s);
    if (zstd_filter_register(err)) return -1;
    h5_quiet q;
    h5_quiet_begin(&q);
    hid_t f = h5_open_read(path, err);
    int rc = f < 0 ? -1 : read_checked(f, path, s, err);
    h5_close(&f);
    h5_quiet_end(&q);
    return rc;
}

// ---------------------------------------------------------------- comparing

static int differs(gk_err *err, const char *path, const char *name, const char *got, const char *other,
                   const char *want) {
    return gk_fail(err, GK_EINPUT, "%s: attribute '%s' is %s, but %s %s", path, name, got, other, want);
}

#define CMP_FMT(name, fmt, a, b)                                                                  \
    do {                                                                                          \
        if ((a) != (b)) {                                                                         \
            char x[64], y[64];                                                                    \
            snprintf(x, sizeof x, fmt, a);                                                        \
            snprintf(y, sizeof y, fmt, b);                                                        \
            return differs(err, path, name, x, other, y);                                         \
        }                                                                                         \
    } while (0)

static int cmp_s(gk_err *err, const char *path, const char *name, const char *a, const char *other, const char *b) {
    if (!strcmp(a, b)) return 0;
    char x[300], y[300];
    snprintf(x, sizeof x, "'%s'", a);
    snprintf(y, sizeof y, "'%s'", b);
    return differs(err, path, name, x, other, y);
}

static int close_enough(double a, double b) { return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b)); }

int tc_meta_compare(const char *path, const teacher_cache_meta *g, const char *other, const teacher_cache_meta *w,
                    gk_err *err) {
    if (g->method != w->method)
        return differs(err, path, "method", teacher_cache_method_name(g->method), other,
                       teacher_cache_method_name(w->method));
    CMP_FMT("k", "%d", g->k, w->k);
    CMP_FMT("seq_len", "%" PRIu64, g->seq_len, w->seq_len);
    if (!close_enough(g->temperature, w->temperature)) CMP_FMT("temperature", "%.17g", g->temperature, w->temperature);
    if (g->method == TEACHER_CACHE_SAMPLE) CMP_FMT("seed", "%" PRIu64, g->seed, w->seed);
    CMP_FMT("vocab_size", "%" PRId64, g->vocab_size, w->vocab_size);
    if (cmp_s(err, path, "tokenizer_sha256", g->tokenizer_sha256, other, w->tokenizer_sha256) ||
        cmp_s(err, path, "teacher_sha256", g->teacher_sha256, other, w->teacher_sha256) ||
        cmp_s(err, path, "teacher_precision", g->teacher_precision, other, w->teacher_precision))
        return -1;
    if (!close_enough(g->final_softcap, w->final_softcap))
        CMP_FMT("final_softcap", "%.17g", g->final_softcap, w->final_softcap);
    return 0;
}

int tc_segment_compare(const char *path, const tc_segment *g, const char *other, const tc_segment *w, gk_err *err) {
    if (tc_meta_compare(path, &g->meta, other, &w->meta, err) ||
        cmp_s(err, path, "token_shard", g->token_shard, other, w->token_shard) ||
        cmp_s(err, path, "token_shard_sha256", g->token_shard_sha256, other, w->token_shard_sha256))
        return -1;
    CMP_FMT("segment_windows", "%" PRIu64, g->meta.segment_windows, w->meta.segment_windows);
    CMP_FMT("first_window", "%" PRIu64, g->first_window, w->first_window);
    CMP_FMT("n_windows", "%" PRIu64, g->n_windows, w->n_windows);
    CMP_FMT("shard_windows", "%" PRIu64, g->shard_windows, w->shard_windows);
    return 0;
}

int tc_hash_shards(const loader *l, char (*sha)[65], gk_err *err) {
    int failed = 0;
    gk_err first_err = {0};
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < loader_n_shards(l); i++) {
        gk_err e = {0};
        if (sha256_file(loader_shard(l, i)->path, sha[i], &e)) {
#pragma omp critical
            if (!failed++) first_err = e;
        }
    }
    return failed ? (*err = first_err, -1) : 0;
}

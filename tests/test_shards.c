// HDF5 token shards and the zstd filter: round trips through the atomic
// writer, the file layout read back with the HDF5 C API, rejection of
// malformed files built with the HDF5 C API (without printing anything), and
// interop with h5py + hdf5plugin in both directions.
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "common/file.h"
#include "common/json.h"
#include "common/rng.h"
#include "common/strbuf.h"
#include "data/shards.h"
#include "data/zstd_filter.h"
#include "tests/check.h"
#include "tests/fixtures.h"

const char *test_program = "test_shards";

#define SHA_A "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define SHA_B "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

// ---------------------------------------------------------------- helpers

typedef struct {
    char dir[64];
} scratch;

static int scratch_open(test_case *tc, scratch *s) { return test_scratch_dir(tc, "shards", s->dir, sizeof s->dir); }

static const char *scratch_path(scratch *s, const char *name) {
    static char buf[4][256];
    static int next;
    char *out = buf[next++ % 4];
    snprintf(out, 256, "%s/%s", s->dir, name);
    return out;
}

static void scratch_close(scratch *s) {
    gk_err err;
    dir_remove_tree(s->dir, &err);
}

// Captures what is written to file descriptor 2 between begin and end.
typedef struct {
    int saved;
    FILE *tmp;
} stderr_capture;

static void capture_begin(stderr_capture *c) {
    fflush(stderr);
    c->tmp = tmpfile();
    c->saved = dup(2);
    if (c->tmp) dup2(fileno(c->tmp), 2);
}

// Returns the number of bytes written to stderr (and prints the start of them).
static long capture_end(stderr_capture *c, char *head, size_t cap) {
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    long n = 0;
    if (head && cap) head[0] = 0;
    if (c->tmp) {
        n = ftell(c->tmp);
        if (n > 0 && head) {
            rewind(c->tmp);
            size_t got = fread(head, 1, cap - 1, c->tmp);
            head[got] = 0;
        }
        fclose(c->tmp);
    }
    return n;
}

static shard_meta test_meta(int has_mask) {
    shard_meta m = {.vocab_size = 256000, .bos_id = 2, .eos_id = 1, .pad_id = 0, .has_loss_mask = has_mask,
                    .source = "test: random documents", .created_by = "gemmakd test_shards"};
    snprintf(m.tokenizer_sha256, sizeof m.tokenizer_sha256, "%s", SHA_A);
    return m;
}

// A shard's content in memory, as written.
typedef struct {
    uint32_t *tokens; // [n_tokens]
    uint8_t *mask;    // [n_tokens] or NULL
    uint64_t *starts; // [n_docs]
    size_t n_tokens, n_docs;
} shard_data;

static void data_free(shard_data *d) {
    free(d->tokens);
    free(d->mask);
    free(d->starts);
    memset(d, 0, sizeof *d);
}

// Random documents with lengths 1..max_len (a few long ones), tokens < vocab.
static void make_data(shard_data *d, uint64_t seed, size_t n_docs, size_t max_len, int with_mask, uint32_t vocab) {
    rng_state r;
    rng_seed(&r, seed);
    size_t *lens = malloc(n_docs * sizeof *lens), total = 0;
    for (size_t i = 0; i < n_docs; i++) {
        lens[i] = 1 + rng_next(&r) % max_len;
        total += lens[i];
    }
    d->n_tokens = total;
    d->n_docs = n_docs;
    d->tokens = malloc(total * sizeof *d->tokens);
    d->mask = with_mask ? malloc(total) : NULL;
    d->starts = malloc(n_docs * sizeof *d->starts);
    size_t at = 0;
    for (size_t i = 0; i < n_docs; i++) {
        d->starts[i] = at;
        for (size_t j = 0; j < lens[i]; j++, at++) {
            d->tokens[at] = j == 0 ? 2 : (uint32_t)(rng_next(&r) % vocab);
            if (with_mask) d->mask[at] = j > 0 && (rng_next(&r) & 3) != 0;
        }
    }
    free(lens);
}

static int write_data(const char *path, const shard_meta *meta, const shard_data *d, gk_err *err) {
    shard_writer *w;
    if (shard_writer_open(&w, path, meta, err) < 0) return -1;
    for (size_t i = 0; i < d->n_docs; i++) {
        size_t end = i + 1 < d->n_docs ? d->starts[i + 1] : d->n_tokens, n = end - d->starts[i];
        if (shard_writer_add_doc(w, d->tokens + d->starts[i], d->mask ? d->mask + d->starts[i] : NULL, n, err) < 0) {
            shard_writer_abort(w);
            return -1;
        }
    }
    return shard_writer_close(w, err);
}

// Compares an open shard with the data and meta it was written from.
static void check_shard(test_case *tc, shard_file *s, const shard_data *d, const shard_meta *m) {
    CHECK(tc, s->n_tokens == d->n_tokens, "%s: n_tokens %" PRIu64 " != %zu", s->path, s->n_tokens, d->n_tokens);
    CHECK(tc, s->n_docs == d->n_docs, "%s: n_docs %" PRIu64 " != %zu", s->path, s->n_docs, d->n_docs);
    if (tc->failed) return;
    CHECK(tc, memcmp(s->doc_starts, d->starts, d->n_docs * 8) == 0, "%s: doc_starts differ", s->path);
    CHECK(tc, strcmp(s->meta.tokenizer_sha256, m->tokenizer_sha256) == 0, "sha %s", s->meta.tokenizer_sha256);
    CHECK(tc, s->meta.vocab_size == m->vocab_size && s->meta.bos_id == m->bos_id && s->meta.eos_id == m->eos_id &&
                  s->meta.pad_id == m->pad_id,
          "ids/vocab differ");
    CHECK(tc, s->meta.has_loss_mask == m->has_loss_mask, "has_loss_mask %d", s->meta.has_loss_mask);
    CHECK(tc, strcmp(s->meta.source, m->source) == 0, "source '%s'", s->meta.source);
    CHECK(tc, strcmp(s->meta.created_by, m->created_by) == 0, "created_by '%s'", s->meta.created_by);
    uint32_t *tok = malloc(d->n_tokens * sizeof *tok);
    uint8_t *mask = malloc(d->n_tokens);
    gk_err err = {0};
    CHECK(tc, shard_read_tokens(s, 0, d->n_tokens, tok, &err) == 0, "read: %s", err.msg);
    CHECK(tc, memcmp(tok, d->tokens, d->n_tokens * 4) == 0, "%s: tokens differ", s->path);
    if (d->mask) {
        CHECK(tc, shard_read_mask(s, 0, d->n_tokens, mask, &err) == 0, "read mask: %s", err.msg);
        CHECK(tc, memcmp(mask, d->mask, d->n_tokens) == 0, "%s: loss masks differ", s->path);
    } else {
        CHECK(tc, shard_read_mask(s, 0, 1, mask, &err) == -1 && strstr(err.msg, "no /loss_mask"),
              "reading a missing mask: '%s'", err.msg);
    }
    // Random ranges, many crossing chunk boundaries.
    rng_state r;
    rng_seed(&r, d->n_tokens);
    for (int i = 0; i < 200 && !tc->failed; i++) {
        uint64_t start = rng_next(&r) % d->n_tokens;
        size_t count = (size_t)(rng_next(&r) % (d->n_tokens - start + 1));
        CHECK(tc, shard_read_tokens(s, start, count, tok, &err) == 0, "read [%" PRIu64 ", +%zu): %s", start, count,
              err.msg);
        CHECK(tc, memcmp(tok, d->tokens + start, count * 4) == 0, "range [%" PRIu64 ", +%zu) differs", start, count);
        if (d->mask) {
            CHECK(tc, shard_read_mask(s, start, count, mask, &err) == 0, "read mask: %s", err.msg);
            CHECK(tc, memcmp(mask, d->mask + start, count) == 0, "mask range differs");
        }
    }
    CHECK(tc, shard_read_tokens(s, d->n_tokens - 1, 2, tok, &err) == -1 && strstr(err.msg, "past its end"),
          "a read past the end: '%s'", err.msg);
    free(tok);
    free(mask);
}

// ---------------------------------------------------------------- writer round trips

static void test_round_trip(test_case *tc) {
    scratch sc;
    if (scratch_open(tc, &sc) < 0) return;
    struct {
        uint64_t seed;
        size_t n_docs, max_len;
        int mask;
    } cases[] = {
        {1, 60, 5000, 0},   // ~150k tokens: three chunks
        {2, 40, 4000, 1},   // a chat shard
        {3, 1, 1, 0},       // one token
        {4, 2, 200000, 1},  // documents longer than a chunk
        {5, 1000, 3, 0},    // many tiny documents
    };
    int n_cases = (int)(sizeof cases / sizeof cases[0]);
    for (int c = 0; c < n_cases && !tc->failed; c++) {
        shard_data d;
        make_data(&d, cases[c].seed, cases[c].n_docs, cases[c].max_len, cases[c].mask, 256000);
        shard_meta m = test_meta(cases[c].mask);
        char name[32];
        snprintf(name, sizeof name, "s%d.h5", c);
        const char *path = scratch_path(&sc, name);
        gk_err err = {0};
        shard_writer *w;
        stderr_capture cap;
        capture_begin(&cap);
        int rc = shard_writer_open(&w, path, &m, &err);
        CHECK(tc, rc == 0, "open: %s", err.msg);
        if (rc == 0) {
            char tmp[300];
            snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
            CHECK(tc, strcmp(shard_writer_tmp_path(w), tmp) == 0, "tmp path %s", shard_writer_tmp_path(w));
            for (size_t i = 0; i < d.n_docs && !tc->failed; i++) {
                size_t end = i + 1 < d.n_docs ? d.starts[i + 1] : d.n_tokens, n = end - d.starts[i];
                CHECK(tc, shard_writer_add_doc(w, d.tokens + d.starts[i], d.mask ? d.mask + d.starts[i] : NULL, n, &err) == 0,
                      "add_doc %zu: %s", i, err.msg);
                CHECK(tc, shard_writer_tokens(w) == end && shard_writer_docs(w) == i + 1, "counts after doc %zu", i);
            }
            CHECK(tc, path_exists(tmp) && !path_exists(path), "while writing: tmp %d final %d", path_exists(tmp),
                  path_exists(path));
            CHECK(tc, shard_writer_close(w, &err) == 0, "close: %s", err.msg);
            CHECK(tc, !path_exists(tmp) && path_exists(path), "after close: tmp %d final %d", path_exists(tmp),
                  path_exists(path));
            CHECK(tc, dir_entry_count(sc.dir) == c + 1, "%d files in the directory", dir_entry_count(sc.dir));
        }
        shard_file s;
        rc = tc->failed ? -1 : shard_open(path, &s, &err);
        CHECK(tc, rc == 0, "shard_open: %s", err.msg);
        if (rc == 0) {
            check_shard(tc, &s, &d, &m);
            shard_close(&s);
        }
        char head[200];
        long printed = capture_end(&cap, head, sizeof head);
        CHECK(tc, printed == 0, "printed to stderr: %s", head);
        data_free(&d);
    }
    scratch_close(&sc);
}

// The layout seen through the HDF5 C API: types, chunking, extendibility, the
// zstd filter, and that every stored chunk is one zstd frame recording its size.
static void test_layout(test_case *tc) {
    scratch sc;
    if (scratch_open(tc, &sc) < 0) return;
    shard_data d;
    make_data(&d, 11, 50, 6000, 1, 256000);
    shard_meta m = test_meta(1);
    m.zstd_level = 7;
    const char *path = scratch_path(&sc, "layout.h5");
    gk_err err = {0};
    CHECK(tc, write_data(path, &m, &d, &err) == 0, "write: %s", err.msg);
    hid_t f = tc->failed ? -1 : H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(tc, f >= 0, "H5Fopen failed");
    const char *names[2] = {"tokens", "loss_mask"};
    hid_t types[2] = {H5T_STD_U32LE, H5T_STD_U8LE};
    for (int k = 0; k < 2 && !tc->failed; k++) {
        hid_t ds = H5Dopen2(f, names[k], H5P_DEFAULT);
        hid_t type = H5Dget_type(ds), space = H5Dget_space(ds), dcpl = H5Dget_create_plist(ds);
        hsize_t dims, maxdims, chunk = 0;
        CHECK(tc, H5Tequal(type, types[k]) > 0, "/%s type", names[k]);
        CHECK(tc, H5Sget_simple_extent_dims(space, &dims, &maxdims) == 1 && dims == d.n_tokens && maxdims == H5S_UNLIMITED,
              "/%s dims", names[k]);
        CHECK(tc, H5Pget_chunk(dcpl, 1, &chunk) == 1 && chunk == SHARD_CHUNK_TOKENS, "/%s chunk %llu", names[k],
              (unsigned long long)chunk);
        unsigned flags, cd[4] = {0}, config;
        size_t n_cd = 4;
        char fname[64];
        CHECK(tc, H5Pget_filter_by_id2(dcpl, ZSTD_FILTER_ID, &flags, &n_cd, cd, sizeof fname, fname, &config) >= 0 &&
                      n_cd == 1 && cd[0] == 7,
              "/%s zstd filter cd_values", names[k]);
        // Raw chunks: one frame each, content size = chunk bytes, decompresses to the data.
        size_t elem = k == 0 ? 4 : 1, chunk_bytes = SHARD_CHUNK_TOKENS * elem;
        unsigned char *raw = malloc(ZSTD_compressBound(chunk_bytes)), *plain = malloc(chunk_bytes);
        for (hsize_t off = 0; off < d.n_tokens && !tc->failed; off += SHARD_CHUNK_TOKENS) {
            hsize_t raw_size = 0;
            uint32_t mask_out = 0;
            CHECK(tc, H5Dget_chunk_storage_size(ds, &off, &raw_size) >= 0 && raw_size > 0, "chunk size");
            CHECK(tc, raw_size <= ZSTD_compressBound(chunk_bytes), "chunk of %llu bytes", (unsigned long long)raw_size);
            if (tc->failed) break;
            CHECK(tc, H5Dread_chunk(ds, H5P_DEFAULT, &off, &mask_out, raw) >= 0 && mask_out == 0, "H5Dread_chunk");
            CHECK(tc, ZSTD_getFrameContentSize(raw, raw_size) == chunk_bytes, "frame content size %llu",
                  ZSTD_getFrameContentSize(raw, raw_size));
            size_t got = ZSTD_decompress(plain, chunk_bytes, raw, raw_size);
            CHECK(tc, got == chunk_bytes, "ZSTD_decompress: %zu", got);
            size_t n = d.n_tokens - off < SHARD_CHUNK_TOKENS ? d.n_tokens - off : SHARD_CHUNK_TOKENS;
            const void *want = k == 0 ? (const void *)(d.tokens + off) : (const void *)(d.mask + off);
            CHECK(tc, memcmp(plain, want, n * elem) == 0, "/%s chunk at %llu differs", names[k], (unsigned long long)off);
        }
        free(raw);
        free(plain);
        H5Pclose(dcpl);
        H5Sclose(space);
        H5Tclose(type);
        H5Dclose(ds);
    }
    // Attributes: types and values.
    struct {
        const char *name;
        hid_t type;
        int64_t value;
    } ints[] = {{"format_version", H5T_STD_I64LE, 1}, {"vocab_size", H5T_STD_I64LE, 256000},
                {"bos_id", H5T_STD_I64LE, 2},         {"eos_id", H5T_STD_I64LE, 1},
                {"pad_id", H5T_STD_I64LE, 0},         {"n_tokens", H5T_STD_U64LE, (int64_t)d.n_tokens},
                {"n_docs", H5T_STD_U64LE, 50},        {"has_loss_mask", H5T_STD_U8LE, 1}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0] && !tc->failed; i++) {
        hid_t a = H5Aopen(f, ints[i].name, H5P_DEFAULT), t = H5Aget_type(a);
        int64_t v = -99;
        CHECK(tc, H5Tequal(t, ints[i].type) > 0 && H5Aread(a, H5T_NATIVE_INT64, &v) >= 0 && v == ints[i].value,
              "attribute %s = %" PRId64, ints[i].name, v);
        H5Tclose(t);
        H5Aclose(a);
    }
    const char *strs[] = {"format", "tokenizer_sha256", "source", "created_by"};
    for (size_t i = 0; i < 4 && !tc->failed; i++) {
        hid_t a = H5Aopen(f, strs[i], H5P_DEFAULT), t = H5Aget_type(a);
        CHECK(tc, H5Tis_variable_str(t) > 0 && H5Tget_cset(t) == H5T_CSET_UTF8, "attribute %s is not vlen UTF-8", strs[i]);
        H5Tclose(t);
        H5Aclose(a);
    }
    if (f >= 0) H5Fclose(f);
    data_free(&d);
    scratch_close(&sc);
}

static void test_abort_and_failures(test_case *tc) {
    scratch sc;
    if (scratch_open(tc, &sc) < 0) return;
    shard_data d;
    make_data(&d, 21, 30, 9000, 0, 256000);
    shard_meta m = test_meta(0);
    const char *path = scratch_path(&sc, "a.h5");
    gk_err err = {0};
    stderr_capture cap;
    capture_begin(&cap);

    // Abort after a chunk has been written: nothing remains.
    shard_writer *w;
    CHECK(tc, shard_writer_open(&w, path, &m, &err) == 0, "open: %s", err.msg);
    if (!tc->failed) {
        CHECK(tc, shard_writer_add_doc(w, d.tokens, NULL, d.n_tokens, &err) == 0, "add: %s", err.msg);
        CHECK(tc, dir_entry_count(sc.dir) == 1, "the temporary file should exist");
        shard_writer_abort(w);
        CHECK(tc, dir_entry_count(sc.dir) == 0, "abort left %d files", dir_entry_count(sc.dir));
    }

    // Rejected input leaves the writer usable; the caller aborts; nothing remains.
    CHECK(tc, shard_writer_open(&w, path, &m, &err) == 0, "open: %s", err.msg);
    if (!tc->failed) {
        uint32_t good[3] = {2, 5, 255999}, bad[4] = {2, 7, 256000, 9};
        uint8_t mask[3] = {0, 1, 1};
        for (int i = 0; i < 3; i++) CHECK(tc, shard_writer_add_doc(w, good, NULL, 3, &err) == 0, "add: %s", err.msg);
        CHECK(tc, shard_writer_add_doc(w, bad, NULL, 4, &err) == -1 && strstr(err.msg, "document 3") &&
                      strstr(err.msg, "256000") && strstr(err.msg, "vocab_size"),
              "token >= vocab: '%s'", err.msg);
        CHECK(tc, shard_writer_add_doc(w, good, NULL, 0, &err) == -1 && strstr(err.msg, "document 3 is empty"),
              "empty document: '%s'", err.msg);
        CHECK(tc, shard_writer_add_doc(w, good, mask, 3, &err) == -1 && strstr(err.msg, "loss mask"),
              "mask on a plain shard: '%s'", err.msg);
        CHECK(tc, shard_writer_tokens(w) == 9 && shard_writer_docs(w) == 3, "rejections changed the counts");
        CHECK(tc, shard_writer_add_doc(w, good, NULL, 3, &err) == 0, "add after rejections: %s", err.msg);
        shard_writer_abort(w);
        CHECK(tc, dir_entry_count(sc.dir) == 0, "abort left %d files", dir_entry_count(sc.dir));
    }

    // Chat shards need 0/1 masks on every document.
    shard_meta mc = test_meta(1);
    CHECK(tc, shard_writer_open(&w, path, &mc, &err) == 0, "open: %s", err.msg);
    if (!tc->failed) {
        uint32_t tok[3] = {2, 5, 6};
        uint8_t mask2[3] = {0, 2, 1};
        CHECK(tc, shard_writer_add_doc(w, tok, NULL, 3, &err) == -1 && strstr(err.msg, "document 0 has no loss mask"),
              "no mask: '%s'", err.msg);
        CHECK(tc, shard_writer_add_doc(w, tok, mask2, 3, &err) == -1 && strstr(err.msg, "not 0 or 1"), "mask 2: '%s'",
              err.msg);
        // Closing a shard without documents fails and leaves nothing.
        CHECK(tc, shard_writer_close(w, &err) == -1 && strstr(err.msg, "at least one document"), "empty close: '%s'",
              err.msg);
        CHECK(tc, dir_entry_count(sc.dir) == 0, "failed close left %d files", dir_entry_count(sc.dir));
    }

    // Bad metadata and unwritable places are refused before anything is created.
    shard_meta bad = test_meta(0);
    bad.tokenizer_sha256[10] = 'G';
    CHECK(tc, shard_writer_open(&w, path, &bad, &err) == -1 && strstr(err.msg, "tokenizer_sha256"), "bad sha: '%s'",
          err.msg);
    bad = test_meta(0);
    bad.bos_id = 256000;
    CHECK(tc, shard_writer_open(&w, path, &bad, &err) == -1 && strstr(err.msg, "bos_id 256000"), "bad bos: '%s'",
          err.msg);
    bad = test_meta(0);
    bad.zstd_level = 23;
    CHECK(tc, shard_writer_open(&w, path, &bad, &err) == -1 && strstr(err.msg, "zstd level 23"), "bad level: '%s'",
          err.msg);
    CHECK(tc, shard_writer_open(&w, scratch_path(&sc, "no/such/dir.h5"), &m, &err) == -1 && strstr(err.msg, "cannot create"),
          "missing directory: '%s'", err.msg);
    CHECK(tc, dir_entry_count(sc.dir) == 0, "%d files left", dir_entry_count(sc.dir));

    // Closing over an existing final file replaces it.
    shard_data small;
    make_data(&small, 22, 3, 10, 0, 256000);
    CHECK(tc, write_data(path, &m, &d, &err) == 0 && write_data(path, &m, &small, &err) == 0, "write: %s", err.msg);
    shard_file s;
    CHECK(tc, shard_open(path, &s, &err) == 0, "open: %s", err.msg);
    if (!tc->failed) {
        CHECK(tc, s.n_tokens == small.n_tokens, "the second write did not replace the first");
        shard_close(&s);
    }
    char head[200];
    long printed = capture_end(&cap, head, sizeof head);
    CHECK(tc, printed == 0, "printed to stderr: %s", head);
    data_free(&small);
    data_free(&d);
    scratch_close(&sc);
}

// ---------------------------------------------------------------- malformed files

// A shard written directly with the HDF5 C API (contiguous, uncompressed), with
// knobs to break one thing at a time.
typedef struct {
    hid_t tokens_type;        // file type of /tokens (default U32LE)
    int tokens_rank;          // 1 (default) or 2
    int omit_format, omit_doc_starts, omit_mask, omit_vocab;
    const char *format;       // default SHARD_FORMAT
    int64_t version;          // default 1
    uint64_t starts[4];       // default {0, 10, 50}
    size_t n_starts;          // default 3
    int64_t n_tokens_attr;    // default 100 (the dataset has 100)
    int has_mask;             // writes has_loss_mask = 1 and /loss_mask
    size_t mask_len;          // default 100
    const char *sha;          // default SHA_A
    int vocab_as_string;
} raw_spec;

static void raw_defaults(raw_spec *r) {
    memset(r, 0, sizeof *r);
    r->tokens_type = H5T_STD_U32LE;
    r->tokens_rank = 1;
    r->format = SHARD_FORMAT;
    r->version = 1;
    r->starts[0] = 0;
    r->starts[1] = 10;
    r->starts[2] = 50;
    r->n_starts = 3;
    r->n_tokens_attr = 100;
    r->mask_len = 100;
    r->sha = SHA_A;
}

static void raw_attr_int(hid_t f, const char *name, hid_t type, int64_t v) {
    hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

static void raw_attr_str(hid_t f, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, &s);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void raw_dataset(hid_t f, const char *name, hid_t type, int rank, const hsize_t *dims, hid_t mem_type,
                        const void *data) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d);
    H5Sclose(sp);
}

static int write_raw(const char *path, const raw_spec *r) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return -1;
    uint32_t tokens[100];
    uint8_t mask[200];
    for (int i = 0; i < 100; i++) tokens[i] = (uint32_t)(i * 37 % 1000);
    memset(mask, 1, sizeof mask);
    hsize_t dims[2] = {r->tokens_rank == 2 ? 50 : 100, 2};
    raw_dataset(f, "tokens", r->tokens_type, r->tokens_rank, dims, H5T_NATIVE_UINT32, tokens);
    hsize_t n_starts = r->n_starts;
    if (!r->omit_doc_starts) raw_dataset(f, "doc_starts", H5T_STD_U64LE, 1, &n_starts, H5T_NATIVE_UINT64, r->starts);
    hsize_t mask_len = r->mask_len;
    if (r->has_mask && !r->omit_mask) raw_dataset(f, "loss_mask", H5T_STD_U8LE, 1, &mask_len, H5T_NATIVE_UINT8, mask);
    if (!r->omit_format) raw_attr_str(f, "format", r->format);
    raw_attr_int(f, "format_version", H5T_STD_I32LE, r->version);
    raw_attr_str(f, "tokenizer_sha256", r->sha);
    if (r->vocab_as_string) raw_attr_str(f, "vocab_size", "1000");
    else if (!r->omit_vocab) raw_attr_int(f, "vocab_size", H5T_STD_U32LE, 1000);
    raw_attr_int(f, "bos_id", H5T_STD_I32LE, 2);
    raw_attr_int(f, "eos_id", H5T_STD_I32LE, 1);
    raw_attr_int(f, "pad_id", H5T_STD_I32LE, -1);
    raw_attr_int(f, "n_tokens", H5T_STD_U64LE, r->n_tokens_attr);
    raw_attr_int(f, "n_docs", H5T_STD_U64LE, (int64_t)r->n_starts);
    raw_attr_int(f, "has_loss_mask", H5T_STD_U8LE, r->has_mask);
    raw_attr_str(f, "source", "raw test file");
    raw_attr_str(f, "created_by", "test_shards write_raw");
    return H5Fclose(f) < 0 ? -1 : 0;
}

// shard_open must fail with a message naming the file and containing needle,
// and print nothing.
static void expect_reject(test_case *tc, const char *path, const char *needle) {
    shard_file s;
    gk_err err = {0};
    stderr_capture cap;
    capture_begin(&cap);
    int rc = shard_open(path, &s, &err);
    char head[300];
    long printed = capture_end(&cap, head, sizeof head);
    if (rc == 0) shard_close(&s);
    CHECK(tc, rc == -1, "%s was accepted (expected '%s')", path, needle);
    CHECK(tc, strncmp(err.msg, path, strlen(path)) == 0, "message does not start with the path: '%s'", err.msg);
    CHECK(tc, strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    CHECK(tc, printed == 0, "printed to stderr: %s", head);
    CHECK(tc, s.path == NULL && s.h5 == NULL && s.doc_starts == NULL, "a rejected shard kept resources");
}

static void test_rejections(test_case *tc) {
    scratch sc;
    if (scratch_open(tc, &sc) < 0) return;
    gk_err err = {0};
    raw_spec r;
    char path[256];
#define RAW_CASE(name, needle, ...)                                                               \
    do {                                                                                          \
        raw_defaults(&r);                                                                         \
        __VA_ARGS__;                                                                              \
        snprintf(path, sizeof path, "%s/%s.h5", sc.dir, name);                                    \
        CHECK(tc, write_raw(path, &r) == 0, "writing %s failed", name);                           \
        expect_reject(tc, path, needle);                                                          \
    } while (0)

    // The reference file itself is accepted.
    raw_defaults(&r);
    snprintf(path, sizeof path, "%s/valid.h5", sc.dir);
    CHECK(tc, write_raw(path, &r) == 0, "writing valid.h5 failed");
    shard_file s;
    CHECK(tc, shard_open(path, &s, &err) == 0, "the raw reference shard was rejected: %s", err.msg);
    if (!tc->failed) {
        CHECK(tc, s.n_tokens == 100 && s.n_docs == 3 && s.meta.vocab_size == 1000 && s.meta.pad_id == -1,
              "raw shard fields");
        shard_close(&s);
    }

    expect_reject(tc, scratch_path(&sc, "missing.h5"), "cannot open");
    FILE *f = fopen(scratch_path(&sc, "text.h5"), "w");
    fputs("this is not an HDF5 file\n", f);
    fclose(f);
    expect_reject(tc, scratch_path(&sc, "text.h5"), "not a readable HDF5 file (file signature not found)");
    expect_reject(tc, sc.dir, "not a regular file");

    // A written shard cut in half.
    shard_data d;
    make_data(&d, 31, 20, 20000, 1, 256000);
    shard_meta m = test_meta(1);
    const char *trunc = scratch_path(&sc, "truncated.h5");
    CHECK(tc, write_data(trunc, &m, &d, &err) == 0, "write: %s", err.msg);
    struct stat st;
    CHECK(tc, stat(trunc, &st) == 0 && truncate(trunc, st.st_size / 2) == 0, "truncate failed");
    expect_reject(tc, trunc, "not a readable HDF5 file (truncated file");

    // A plain HDF5 file without the format attribute (one dataset, nothing else).
    const char *plain = scratch_path(&sc, "plain.h5");
    hid_t h = H5Fcreate(plain, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t n = 4;
    double x[4] = {1, 2, 3, 4};
    raw_dataset(h, "x", H5T_IEEE_F64LE, 1, &n, H5T_NATIVE_DOUBLE, x);
    H5Fclose(h);
    expect_reject(tc, plain, "not a gemmakd token shard (no 'format' attribute)");

    RAW_CASE("no_format", "no 'format' attribute", r.omit_format = 1);
    RAW_CASE("other_format", "'format' is 'gemmakd-teacher', expected 'gemmakd-tokens'", r.format = "gemmakd-teacher");
    RAW_CASE("version2", "'format_version' is 2", r.version = 2);
    RAW_CASE("tokens_int32", "/tokens has element type int32, expected uint32", r.tokens_type = H5T_STD_I32LE);
    RAW_CASE("tokens_float", "/tokens has element type float32, expected uint32", r.tokens_type = H5T_IEEE_F32LE);
    RAW_CASE("tokens_u16", "/tokens has element type uint16, expected uint32", r.tokens_type = H5T_STD_U16LE);
    RAW_CASE("tokens_2d", "/tokens has 2 dimensions", r.tokens_rank = 2);
    RAW_CASE("starts_not_increasing", "/doc_starts is not strictly increasing: [2] = 10 after [1] = 10",
             r.starts[2] = 10);
    RAW_CASE("starts_first", "/doc_starts[0] is 5, expected 0", r.starts[0] = 5);
    RAW_CASE("starts_past_end", "/doc_starts[2] = 100 is not below n_tokens 100", r.starts[2] = 100);
    RAW_CASE("n_tokens_attr", "attribute 'n_tokens' is 101 but /tokens has 100 values", r.n_tokens_attr = 101);
    RAW_CASE("mask_length", "/loss_mask has 99 values but /tokens has 100", r.has_mask = 1; r.mask_len = 99);
    RAW_CASE("mask_missing", "missing dataset /loss_mask", r.has_mask = 1; r.omit_mask = 1);
    RAW_CASE("starts_missing", "missing dataset /doc_starts", r.omit_doc_starts = 1);
    RAW_CASE("vocab_missing", "missing attribute 'vocab_size'", r.omit_vocab = 1);
    RAW_CASE("vocab_string", "attribute 'vocab_size' is string, expected an integer", r.vocab_as_string = 1);
    RAW_CASE("bad_sha", "'tokenizer_sha256' is not 64 lowercase hex digits", r.sha = "abc");
#undef RAW_CASE

    // n_docs attribute disagreeing with /doc_starts.
    raw_defaults(&r);
    snprintf(path, sizeof path, "%s/n_docs_attr2.h5", sc.dir);
    {
        hid_t g;
        CHECK(tc, write_raw(path, &r) == 0, "write");
        g = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        H5Adelete(g, "n_docs");
        raw_attr_int(g, "n_docs", H5T_STD_U64LE, 4);
        H5Fclose(g);
        expect_reject(tc, path, "attribute 'n_docs' is 4 but /doc_starts has 3 values");
    }

    // Tokenizer checks name both values.
    CHECK(tc, write_data(scratch_path(&sc, "ok.h5"), &m, &d, &err) == 0, "write: %s", err.msg);
    CHECK(tc, shard_open(scratch_path(&sc, "ok.h5"), &s, &err) == 0, "open: %s", err.msg);
    if (!tc->failed) {
        CHECK(tc, shard_check_tokenizer(&s, SHA_A, 256000, &err) == 0, "matching tokenizer rejected: %s", err.msg);
        CHECK(tc, shard_check_tokenizer(&s, NULL, 0, &err) == 0, "no expectations rejected: %s", err.msg);
        char upper[65];
        for (int i = 0; i < 65; i++) upper[i] = (char)(SHA_A[i] >= 'a' ? SHA_A[i] - 32 : SHA_A[i]);
        CHECK(tc, shard_check_tokenizer(&s, upper, 0, &err) == 0, "upper-case sha rejected: %s", err.msg);
        CHECK(tc, shard_check_tokenizer(&s, SHA_B, 256000, &err) == -1 && strstr(err.msg, SHA_A) && strstr(err.msg, SHA_B),
              "sha mismatch: '%s'", err.msg);
        CHECK(tc, shard_check_tokenizer(&s, SHA_A, 256128, &err) == -1 && strstr(err.msg, "256000") &&
                      strstr(err.msg, "256128"),
              "vocab mismatch: '%s'", err.msg);
        shard_close(&s);
    }
    data_free(&d);
    scratch_close(&sc);
}

// A chunk whose zstd frame is damaged: opening works (doc_starts is not
// compressed), reading the chunk fails with a message, nothing crashes or prints.
static void test_corrupt_chunk(test_case *tc) {
    scratch sc;
    if (scratch_open(tc, &sc) < 0) return;
    size_t n = 3 * SHARD_CHUNK_TOKENS;
    uint32_t *tok = malloc(n * sizeof *tok);
    for (size_t i = 0; i < n; i++) tok[i] = (uint32_t)(i % 1000);
    shard_meta m = test_meta(0);
    const char *path = scratch_path(&sc, "c.h5");
    gk_err err = {0};
    shard_writer *w;
    CHECK(tc, shard_writer_open(&w, path, &m, &err) == 0, "open: %s", err.msg);
    if (tc->failed) goto done;
    CHECK(tc, shard_writer_add_doc(w, tok, NULL, n, &err) == 0 && shard_writer_close(w, &err) == 0, "write: %s",
          err.msg);
    char *bytes;
    size_t len;
    CHECK(tc, file_read_all(path, &bytes, &len, &err) == 0, "read: %s", err.msg);
    if (tc->failed) goto done;
    // Damage the second frame's magic number, and the body of the third.
    const unsigned char magic[4] = {0x28, 0xB5, 0x2F, 0xFD};
    size_t frames[4], n_frames = 0;
    for (size_t i = 0; i + 4 <= len && n_frames < 4; i++)
        if (memcmp(bytes + i, magic, 4) == 0) frames[n_frames++] = i;
    CHECK(tc, n_frames == 3, "found %zu zstd frames, expected 3", n_frames);
    if (!tc->failed) {
        bytes[frames[1]] = 0;
        for (size_t i = frames[2] + 12; i < frames[2] + 40 && i < len; i++) bytes[i] ^= 0x5A;
        CHECK(tc, file_write_atomic(path, bytes, len, &err) == 0, "rewrite: %s", err.msg);
    }
    free(bytes);
    shard_file s;
    stderr_capture cap;
    capture_begin(&cap);
    int rc = tc->failed ? -1 : shard_open(path, &s, &err);
    CHECK(tc, rc == 0, "open: %s", err.msg);
    if (rc == 0) {
        CHECK(tc, shard_read_tokens(&s, 0, 100, tok, &err) == 0, "the intact first chunk: %s", err.msg);
        CHECK(tc, shard_read_tokens(&s, SHARD_CHUNK_TOKENS + 5, 10, tok, &err) == -1 && strstr(err.msg, path) &&
                      strstr(err.msg, "/tokens"),
              "the damaged chunk was read: '%s'", err.msg);
        // The third chunk's body is garbage: an error or wrong values, never a crash.
        shard_read_tokens(&s, 2 * SHARD_CHUNK_TOKENS, 10, tok, &err);
        shard_close(&s);
    }
    char head[200];
    long printed = capture_end(&cap, head, sizeof head);
    CHECK(tc, printed == 0, "printed to stderr: %s", head);
done:
    free(tok);
    scratch_close(&sc);
}

// ---------------------------------------------------------------- the filter alone

static void test_zstd_filter(test_case *tc) {
    gk_err err = {0};
    for (int i = 0; i < 3; i++) CHECK(tc, zstd_filter_register(&err) == 0, "register #%d: %s", i, err.msg);
    unsigned config = 0;
    CHECK(tc, H5Zfilter_avail(ZSTD_FILTER_ID) > 0, "filter 32015 not available");
    CHECK(tc, H5Zget_filter_info(ZSTD_FILTER_ID, &config) >= 0 &&
                  (config & (H5Z_FILTER_CONFIG_ENCODE_ENABLED | H5Z_FILTER_CONFIG_DECODE_ENABLED)) ==
                      (H5Z_FILTER_CONFIG_ENCODE_ENABLED | H5Z_FILTER_CONFIG_DECODE_ENABLED),
          "filter config %u", config);
    scratch sc;
    if (scratch_open(tc, &sc) < 0) return;
    const char *path = scratch_path(&sc, "levels.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    enum { N = 100000 };
    int32_t *data = malloc(N * sizeof *data), *back = malloc(N * sizeof *back);
    for (int i = 0; i < N; i++) data[i] = (i / 7) % 311 - 100;
    // cd_values: none (default 3), 0 (clamped to 1), 22, 1000 (clamped to 22).
    struct {
        const char *name;
        size_t n_cd;
        unsigned level;
    } cases[] = {{"default", 0, 0}, {"zero", 1, 0}, {"max", 1, 22}, {"huge", 1, 1000}};
    for (int c = 0; c < 4 && !tc->failed; c++) {
        hsize_t dims = N, chunk = 8192;
        hid_t sp = H5Screate_simple(1, &dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, 1, &chunk);
        H5Pset_filter(dcpl, ZSTD_FILTER_ID, H5Z_FLAG_MANDATORY, cases[c].n_cd, &cases[c].level);
        hid_t d = H5Dcreate2(f, cases[c].name, H5T_STD_I32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        CHECK(tc, d >= 0 && H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0, "write %s",
              cases[c].name);
        hsize_t stored = H5Dget_storage_size(d);
        CHECK(tc, stored > 0 && stored < N * 4 / 4, "%s: %llu bytes stored for %d", cases[c].name,
              (unsigned long long)stored, N * 4);
        H5Dclose(d);
        H5Pclose(dcpl);
        H5Sclose(sp);
    }
    H5Fclose(f);
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    for (int c = 0; c < 4 && !tc->failed; c++) {
        hid_t d = H5Dopen2(f, cases[c].name, H5P_DEFAULT);
        memset(back, 0, N * sizeof *back);
        CHECK(tc, H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0 &&
                      memcmp(back, data, N * sizeof *data) == 0,
              "%s: read back differs", cases[c].name);
        H5Dclose(d);
    }
    H5Fclose(f);
    free(data);
    free(back);
    scratch_close(&sc);
}

// ---------------------------------------------------------------- h5py interop

// (a) tests/fixtures/shards/h5py_written.h5, written by scripts/reference/shards_interop.py.
static void test_read_h5py_fixture(test_case *tc) {
    char *text;
    size_t len;
    gk_err err = {0};
    const char *json_path = fixture_path("shards/h5py_written.json");
    if (file_read_all(json_path, &text, &len, &err) < 0) {
        CHECK(tc, 0, "%s", err.msg);
        return;
    }
    json_doc doc;
    if (json_parse(text, len, json_path, &doc, &err) < 0) {
        free(text);
        CHECK(tc, 0, "%s", err.msg);
        return;
    }
    const json_value *attrs = json_get(doc.root, "attrs"), *starts = json_get(doc.root, "doc_starts");
    CHECK(tc, attrs && starts && starts->type == JSON_ARRAY, "fixture JSON lacks attrs/doc_starts");
    shard_file s;
    stderr_capture cap;
    capture_begin(&cap);
    int rc = tc->failed ? -1 : shard_open(fixture_path("shards/h5py_written.h5"), &s, &err);
    char head[200];
    long printed = capture_end(&cap, head, sizeof head);
    CHECK(tc, printed == 0, "printed to stderr: %s", head);
    CHECK(tc, rc == 0, "shard_open: %s", err.msg);
    if (rc == 0) {
        const shard_meta *m = &s.meta;
#define JINT(key) (json_get(attrs, key) ? json_get(attrs, key)->integer : -12345)
#define JSTR(key) (json_get(attrs, key) ? json_get(attrs, key)->string : "?")
        CHECK(tc, (int64_t)s.n_tokens == JINT("n_tokens") && (int64_t)s.n_docs == JINT("n_docs"), "counts");
        CHECK(tc, m->vocab_size == JINT("vocab_size") && m->bos_id == JINT("bos_id") && m->eos_id == JINT("eos_id") &&
                      m->pad_id == JINT("pad_id") && m->has_loss_mask == (JINT("has_loss_mask") == 1),
              "integer attributes");
        CHECK(tc, strcmp(m->tokenizer_sha256, JSTR("tokenizer_sha256")) == 0 && strcmp(m->source, JSTR("source")) == 0 &&
                      strcmp(m->created_by, JSTR("created_by")) == 0,
              "string attributes: '%s' '%s' '%s'", m->tokenizer_sha256, m->source, m->created_by);
#undef JINT
#undef JSTR
        CHECK(tc, starts->count == s.n_docs, "doc_starts count");
        for (size_t i = 0; i < starts->count && !tc->failed; i++)
            CHECK(tc, s.doc_starts[i] == (uint64_t)starts->items[i]->integer, "doc_starts[%zu]", i);
        // Values from the formulas the script documents.
        size_t n = s.n_tokens;
        uint32_t *tok = malloc(n * sizeof *tok);
        uint8_t *mask = malloc(n), *is_start = calloc(n, 1);
        for (size_t i = 0; i < s.n_docs; i++) is_start[s.doc_starts[i]] = 1;
        CHECK(tc, shard_read_tokens(&s, 0, n, tok, &err) == 0 && shard_read_mask(&s, 0, n, mask, &err) == 0, "read: %s",
              err.msg);
        for (size_t i = 0; i < n && !tc->failed; i++) {
            uint32_t want = is_start[i] ? 2u : (uint32_t)((((uint64_t)i * 2654435761u + 12345u) % (1ull << 32)) % 256000u);
            uint8_t want_mask = is_start[i] ? 0 : (uint8_t)((i / 7) % 2);
            CHECK(tc, tok[i] == want, "token %zu: %" PRIu32 " != %" PRIu32, i, tok[i], want);
            CHECK(tc, mask[i] == want_mask, "mask %zu: %u != %u", i, mask[i], want_mask);
        }
        // Windows read one by one, as the loader does, cross the 4096-token chunks.
        for (size_t start = 0; start + 257 <= n && !tc->failed; start += 256) {
            CHECK(tc, shard_read_tokens(&s, start, 257, tok, &err) == 0, "window at %zu: %s", start, err.msg);
            uint32_t want = is_start[start + 256] ? 2u
                                                  : (uint32_t)((((uint64_t)(start + 256) * 2654435761u + 12345u) %
                                                                (1ull << 32)) %
                                                               256000u);
            CHECK(tc, tok[256] == want, "window at %zu", start);
        }
        free(tok);
        free(mask);
        free(is_start);
        shard_close(&s);
    }
    json_free(&doc);
    free(text);
}


static void json_u64_array(strbuf *sb, const char *key, const void *values, size_t n, int width) {
    sb_printf(sb, "\"%s\":[", key);
    for (size_t i = 0; i < n; i++) {
        uint64_t v = width == 8 ? ((const uint64_t *)values)[i]
                     : width == 4 ? ((const uint32_t *)values)[i]
                                  : ((const uint8_t *)values)[i];
        sb_printf(sb, "%s%" PRIu64, i ? "," : "", v);
    }
    sb_puts(sb, "]");
}

// (b) h5py + hdf5plugin read shards written here and compare with a JSON side file.
static void test_h5py_reads_ours(test_case *tc) {
    if (test_h5py_missing()) {
        SKIP(tc, "%s", test_h5py_missing());
        return;
    }
    const char *script = "scripts/reference/shards_interop.py";
    if (!path_exists(script)) {
        CHECK(tc, 0, "%s not found (run the tests from the repository root)", script);
        return;
    }
    scratch sc;
    if (scratch_open(tc, &sc) < 0) return;
    for (int with_mask = 0; with_mask < 2 && !tc->failed; with_mask++) {
        shard_data d;
        make_data(&d, 41 + with_mask, 30, 9000, with_mask, 256000);
        shard_meta m = test_meta(with_mask);
        // Non-UTF-8 bytes (a file name, say) are replaced by '?' so h5py can decode the attribute.
        const char *source_out = with_mask ? "tokenize --input \"ünïcödé.jsonl\" --chat" : "tokenize \"bad?? x\"";
        m.source = with_mask ? source_out : "tokenize \"bad\xff\xc3 x\"";
        m.zstd_level = with_mask ? 9 : 0;
        const char *shard = scratch_path(&sc, with_mask ? "chat.h5" : "plain.h5");
        gk_err err = {0};
        CHECK(tc, write_data(shard, &m, &d, &err) == 0, "write: %s", err.msg);
        strbuf sb = {0};
        sb_printf(&sb, "{\"chunk\":%d,\"zstd_level\":%d,\"attrs\":{\"format\":", SHARD_CHUNK_TOKENS,
                  m.zstd_level ? m.zstd_level : SHARD_ZSTD_LEVEL);
        sb_json_string(&sb, SHARD_FORMAT, strlen(SHARD_FORMAT));
        sb_printf(&sb, ",\"format_version\":1,\"tokenizer_sha256\":\"%s\",\"vocab_size\":%" PRId64 ",\"bos_id\":%" PRId64
                       ",\"eos_id\":%" PRId64 ",\"pad_id\":%" PRId64 ",\"n_tokens\":%zu,\"n_docs\":%zu,\"has_loss_mask\":%d,"
                       "\"source\":",
                  m.tokenizer_sha256, m.vocab_size, m.bos_id, m.eos_id, m.pad_id, d.n_tokens, d.n_docs, with_mask);
        sb_json_string(&sb, source_out, strlen(source_out));
        sb_puts(&sb, ",\"created_by\":");
        sb_json_string(&sb, m.created_by, strlen(m.created_by));
        sb_puts(&sb, "},");
        json_u64_array(&sb, "tokens", d.tokens, d.n_tokens, 4);
        sb_puts(&sb, ",");
        json_u64_array(&sb, "doc_starts", d.starts, d.n_docs, 8);
        sb_puts(&sb, ",");
        if (with_mask) json_u64_array(&sb, "loss_mask", d.mask, d.n_tokens, 1);
        else sb_puts(&sb, "\"loss_mask\":null");
        sb_puts(&sb, "}\n");
        const char *expect = scratch_path(&sc, "expect.json");
        CHECK(tc, !sb.failed && file_write_atomic(expect, sb.data, sb.len, &err) == 0, "writing %s", expect);
        sb_free(&sb);
        char cmd[1024], out[2048] = {0};
        snprintf(cmd, sizeof cmd, "'%s' %s check '%s' '%s' 2>&1", test_python(), script, shard, expect);
        FILE *p = tc->failed ? NULL : popen(cmd, "r");
        size_t got = p ? fread(out, 1, sizeof out - 1, p) : 0;
        out[got] = 0;
        int status = p ? pclose(p) : -1;
        CHECK(tc, status == 0 && strncmp(out, "OK", 2) == 0, "h5py check of %s (status %d): %s", shard, status, out);
        data_free(&d);
    }
    scratch_close(&sc);
}

int main(void) {
    test_run("zstd_filter", test_zstd_filter);
    test_run("round_trip", test_round_trip);
    test_run("layout", test_layout);
    test_run("abort_and_failures", test_abort_and_failures);
    test_run("rejections", test_rejections);
    test_run("corrupt_chunk", test_corrupt_chunk);
    test_run("read_h5py_fixture", test_read_h5py_fixture);
    test_run("h5py_reads_ours", test_h5py_reads_ours);
    return test_main_result();
}

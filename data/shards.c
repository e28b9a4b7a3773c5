// The shard reader (shard_open validates the whole file; windows are read
// through a chunk cache) and the meta checks shared with shard_writer.c.
#include "data/shards.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/sha256.h"
#include "data/h5util.h"
#include "data/shards_internal.h"
#include "data/zstd_filter.h"

// ---------------------------------------------------------------- meta checks

static int id_ok(int64_t id, int64_t vocab) { return id >= -1 && id < vocab; }

int shard_meta_check(const shard_meta *m, const char *where, gk_err *err) {
    if (!sha256_hex_valid(m->tokenizer_sha256))
        return gk_fail(err, GK_EINPUT, "%s: tokenizer_sha256 '%.80s' is not 64 lowercase hex digits", where,
                       m->tokenizer_sha256);
    if (m->vocab_size < 1 || m->vocab_size > INT32_MAX)
        return gk_fail(err, GK_EINPUT, "%s: vocab_size %" PRId64 " is not in 1..%d", where, m->vocab_size, INT32_MAX);
    const char *names[3] = {"bos_id", "eos_id", "pad_id"};
    const int64_t ids[3] = {m->bos_id, m->eos_id, m->pad_id};
    for (int i = 0; i < 3; i++)
        if (!id_ok(ids[i], m->vocab_size))
            return gk_fail(err, GK_EINPUT, "%s: %s %" PRId64 " is not in -1..%" PRId64, where, names[i], ids[i],
                           m->vocab_size - 1);
    return 0;
}

// ---------------------------------------------------------------- reader

struct shard_h5 {
    hid_t file, tokens, mask;           // mask: -1 without a loss mask
    hid_t tokens_space, mask_space;     // file dataspaces, reused for hyperslab selections
};

// Opens a 1-D dataset and checks its element type: integer of `bytes` bytes,
// unsigned. Stores its length in *len. On error closes what it opened.
static hid_t open_stream(hid_t file, const char *path, const char *name, size_t bytes, uint64_t *len, gk_err *err) {
    char d[256], tn[32];
    htri_t exists = H5Lexists(file, name, H5P_DEFAULT);
    if (exists <= 0) {
        gk_fail(err, GK_EINPUT, "%s: missing dataset /%s", path, name);
        return -1;
    }
    hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
    if (ds < 0) {
        gk_fail(err, GK_EINPUT, "%s: /%s is not a readable dataset: %s", path, name, h5_detail(d, sizeof d));
        return -1;
    }
    hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    int rank = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
    hsize_t dims = 0;
    int rc = 0;
    if (type < 0 || space < 0) {
        rc = gk_fail(err, GK_EINPUT, "%s: /%s: %s", path, name, h5_detail(d, sizeof d));
    } else if (H5Tget_class(type) != H5T_INTEGER || H5Tget_size(type) != bytes || H5Tget_sign(type) != H5T_SGN_NONE) {
        rc = gk_fail(err, GK_EINPUT, "%s: /%s has element type %s, expected uint%zu", path, name,
                     h5_type_name(type, tn, sizeof tn), bytes * 8);
    } else if (rank != 1) {
        rc = gk_fail(err, GK_EINPUT, "%s: /%s has %d dimensions, expected 1", path, name, rank);
    } else if (H5Sget_simple_extent_dims(space, &dims, NULL) < 0) {
        rc = gk_fail(err, GK_EINPUT, "%s: /%s: %s", path, name, h5_detail(d, sizeof d));
    }
    h5_close(&type);
    h5_close(&space);
    if (rc < 0) {
        h5_close(&ds);
        return -1;
    }
    *len = dims;
    return ds;
}

// Reopens a chunked dataset with a chunk cache that holds four chunks (at least
// 256 KiB, at most 256 MiB), so overlapping sequential reads decompress each
// chunk once. With this writer's chunks: 1 MiB for /tokens, 256 KiB for /loss_mask.
static hid_t with_chunk_cache(hid_t file, hid_t ds, const char *name, size_t elem_bytes) {
    hid_t dcpl = H5Dget_create_plist(ds);
    hsize_t chunk = 0;
    int chunked = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, 1, &chunk) == 1;
    h5_close(&dcpl);
    if (!chunked) return ds;
    double bytes = 4.0 * (double)chunk * (double)elem_bytes;
    size_t cache = bytes < (256 << 10) ? (256 << 10) : bytes > (256 << 20) ? (256 << 20) : (size_t)bytes;
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    hid_t again = -1;
    if (dapl >= 0 && H5Pset_chunk_cache(dapl, 521, cache, 0.75) >= 0) again = H5Dopen2(file, name, dapl);
    h5_close(&dapl);
    if (again < 0) return ds; // keep the default cache
    H5Dclose(ds);
    return again;
}

static void handles_free(shard_h5 *h) {
    if (!h) return;
    h5_close(&h->mask_space);
    h5_close(&h->tokens_space);
    h5_close(&h->mask);
    h5_close(&h->tokens);
    h5_close(&h->file);
    free(h);
}

void shard_close(shard_file *s) {
    h5_quiet q;
    h5_quiet_begin(&q);
    handles_free(s->h5);
    h5_quiet_end(&q);
    free(s->path);
    free((char *)s->meta.source);
    free((char *)s->meta.created_by);
    free(s->doc_starts);
    memset(s, 0, sizeof *s);
}

// Everything shard_open checks once the file is open. Fills s; returns -1 with err.
static int open_checked(shard_file *s, gk_err *err) {
    const char *path = s->path;
    shard_h5 *h = s->h5;
    hid_t f = h->file;
    char *str = NULL;
    if (H5Aexists(f, "format") <= 0)
        return gk_fail(err, GK_EINPUT, "%s: not a gemmakd token shard (no 'format' attribute)", path);
    if (h5_read_attr_str(f, path, "format", &str, err) < 0) return -1;
    int is_shard = strcmp(str, SHARD_FORMAT) == 0;
    if (!is_shard) gk_fail(err, GK_EINPUT, "%s: attribute 'format' is '%.100s', expected '%s'", path, str, SHARD_FORMAT);
    free(str);
    if (!is_shard) return -1;

    int64_t version, n_tokens, n_docs, has_mask;
    if (h5_read_attr_int(f, path, "format_version", &version, err) < 0) return -1;
    if (version != SHARD_FORMAT_VERSION)
        return gk_fail(err, GK_EINPUT, "%s: attribute 'format_version' is %" PRId64 ", this build reads version %d", path,
                       version, SHARD_FORMAT_VERSION);
    shard_meta *m = &s->meta;
    if (h5_read_attr_str(f, path, "tokenizer_sha256", &str, err) < 0) return -1;
    snprintf(m->tokenizer_sha256, sizeof m->tokenizer_sha256, "%s", str);
    int sha_len_ok = strlen(str) == 64;
    free(str);
    if (!sha_len_ok || !sha256_hex_valid(m->tokenizer_sha256))
        return gk_fail(err, GK_EINPUT, "%s: attribute 'tokenizer_sha256' is not 64 lowercase hex digits", path);
    if (h5_read_attr_int(f, path, "vocab_size", &m->vocab_size, err) < 0 || h5_read_attr_int(f, path, "bos_id", &m->bos_id, err) < 0 ||
        h5_read_attr_int(f, path, "eos_id", &m->eos_id, err) < 0 || h5_read_attr_int(f, path, "pad_id", &m->pad_id, err) < 0 ||
        h5_read_attr_int(f, path, "n_tokens", &n_tokens, err) < 0 || h5_read_attr_int(f, path, "n_docs", &n_docs, err) < 0 ||
        h5_read_attr_int(f, path, "has_loss_mask", &has_mask, err) < 0)
        return -1;
    if (shard_meta_check(m, path, err) < 0) return -1;
    if (has_mask != 0 && has_mask != 1)
        return gk_fail(err, GK_EINPUT, "%s: attribute 'has_loss_mask' is %" PRId64 ", expected 0 or 1", path, has_mask);
    m->has_loss_mask = has_mask;
    if (h5_read_attr_str(f, path, "source", &str, err) < 0) return -1;
    m->source = str;
    if (h5_read_attr_str(f, path, "created_by", &str, err) < 0) return -1;
    m->created_by = str;
    if (n_tokens < 1) return gk_fail(err, GK_EINPUT, "%s: attribute 'n_tokens' is %" PRId64 ", expected >= 1", path, n_tokens);
    if (n_docs < 1) return gk_fail(err, GK_EINPUT, "%s: attribute 'n_docs' is %" PRId64 ", expected >= 1", path, n_docs);

    uint64_t len;
    if ((h->tokens = open_stream(f, path, "tokens", 4, &len, err)) < 0) return -1;
    if (len != (uint64_t)n_tokens)
        return gk_fail(err, GK_EINPUT, "%s: attribute 'n_tokens' is %" PRId64 " but /tokens has %" PRIu64 " values", path,
                       n_tokens, len);
    s->n_tokens = len;
    htri_t mask_exists = H5Lexists(f, "loss_mask", H5P_DEFAULT);
    if (!m->has_loss_mask && mask_exists > 0)
        return gk_fail(err, GK_EINPUT, "%s: /loss_mask exists but attribute 'has_loss_mask' is 0", path);
    if (m->has_loss_mask) {
        if ((h->mask = open_stream(f, path, "loss_mask", 1, &len, err)) < 0) return -1;
        if (len != s->n_tokens)
            return gk_fail(err, GK_EINPUT, "%s: /loss_mask has %" PRIu64 " values but /tokens has %" PRIu64, path, len,
                           s->n_tokens);
    }
    hid_t starts = open_stream(f, path, "doc_starts", 8, &len, err);
    if (starts < 0) return -1;
    int rc = 0;
    char d[256];
    if (len != (uint64_t)n_docs) {
        rc = gk_fail(err, GK_EINPUT, "%s: attribute 'n_docs' is %" PRId64 " but /doc_starts has %" PRIu64 " values", path,
                     n_docs, len);
    } else if (len > s->n_tokens) {
        rc = gk_fail(err, GK_EINPUT, "%s: /doc_starts has %" PRIu64 " values for %" PRIu64 " tokens", path, len, s->n_tokens);
    } else if (!(s->doc_starts = gk_calloc((size_t)len, sizeof *s->doc_starts, err))) {
        rc = -1;
    } else if (H5Dread(starts, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->doc_starts) < 0) {
        rc = gk_fail(err, GK_EINPUT, "%s: cannot read /doc_starts: %s", path, h5_detail(d, sizeof d));
    }
    H5Dclose(starts);
    if (rc < 0) return -1;
    s->n_docs = len;
    if (s->doc_starts[0] != 0)
        return gk_fail(err, GK_EINPUT, "%s: /doc_starts[0] is %" PRIu64 ", expected 0", path, s->doc_starts[0]);
    for (uint64_t i = 1; i < s->n_docs; i++) {
        if (s->doc_starts[i] <= s->doc_starts[i - 1])
            return gk_fail(err, GK_EINPUT, "%s: /doc_starts is not strictly increasing: [%" PRIu64 "] = %" PRIu64
                           " after [%" PRIu64 "] = %" PRIu64, path, i, s->doc_starts[i], i - 1, s->doc_starts[i - 1]);
        if (s->doc_starts[i] >= s->n_tokens)
            return gk_fail(err, GK_EINPUT, "%s: /doc_starts[%" PRIu64 "] = %" PRIu64 " is not below n_tokens %" PRIu64, path,
                           i, s->doc_starts[i], s->n_tokens);
    }

    h->tokens = with_chunk_cache(f, h->tokens, "tokens", 4);
    if (h->mask >= 0) h->mask = with_chunk_cache(f, h->mask, "loss_mask", 1);
    h->tokens_space = H5Dget_space(h->tokens);
    if (h->mask >= 0) h->mask_space = H5Dget_space(h->mask);
    if (h->tokens_space < 0 || (h->mask >= 0 && h->mask_space < 0))
        return gk_fail(err, GK_EINPUT, "%s: %s", path, h5_detail(d, sizeof d));
    return 0;
}

int shard_open(const char *path, shard_file *s, gk_err *err) {
    memset(s, 0, sizeof *s);
    if (zstd_filter_register(err) < 0) return -1;
    s->path = strdup(path);
    s->h5 = calloc(1, sizeof *s->h5);
    if (!s->path || !s->h5) {
        shard_close(s);
        return gk_fail(err, GK_ENOMEM, "out of memory");
    }
    shard_h5 *h = s->h5;
    h->tokens = h->mask = h->tokens_space = h->mask_space = H5I_INVALID_HID;
    h5_quiet q;
    h5_quiet_begin(&q);
    h->file = h5_open_read(path, err);
    int rc = h->file < 0 ? -1 : open_checked(s, err);
    h5_quiet_end(&q);
    if (rc < 0) shard_close(s);
    return rc;
}

static int read_range(shard_file *s, hid_t ds, hid_t space, hid_t mem_type, const char *name, uint64_t start,
                      size_t count, void *out, gk_err *err) {
    if (start > s->n_tokens || count > s->n_tokens - start)
        return gk_fail(err, GK_EINPUT, "%s: reading /%s [%" PRIu64 ", +%zu) past its end %" PRIu64, s->path, name, start,
                       count, s->n_tokens);
    if (count == 0) return 0;
    h5_quiet q;
    h5_quiet_begin(&q);
    hsize_t off = start, n = count;
    hid_t ms = H5Screate_simple(1, &n, NULL);
    int rc = 0;
    if (ms < 0 || H5Sselect_hyperslab(space, H5S_SELECT_SET, &off, NULL, &n, NULL) < 0 ||
        H5Dread(ds, mem_type, ms, space, H5P_DEFAULT, out) < 0) {
        char d[256];
        rc = gk_fail(err, GK_EINPUT, "%s: cannot read /%s [%" PRIu64 ", +%zu): %s", s->path, name, start, count,
                     h5_detail(d, sizeof d));
    }
    h5_close(&ms);
    h5_quiet_end(&q);
    return rc;
}

int shard_read_tokens(shard_file *s, uint64_t start, size_t count, uint32_t *out, gk_err *err) {
    return read_range(s, s->h5->tokens, s->h5->tokens_space, H5T_NATIVE_UINT32, "tokens", start, count, out, err);
}

int shard_read_mask(shard_file *s, uint64_t start, size_t count, uint8_t *out, gk_err *err) {
    if (!s->meta.has_loss_mask) return gk_fail(err, GK_EINPUT, "%s: the shard has no /loss_mask", s->path);
    return read_range(s, s->h5->mask, s->h5->mask_space, H5T_NATIVE_UINT8, "loss_mask", start, count, out, err);
}

int shard_check_tokenizer(const shard_file *s, const char *tokenizer_sha256, int64_t vocab_size, gk_err *err) {
    if (tokenizer_sha256 && strcasecmp(tokenizer_sha256, s->meta.tokenizer_sha256) != 0)
        return gk_fail(err, GK_EINPUT, "%s: tokenized with tokenizer sha256 %s, but the run's tokenizer is %s", s->path,
                       s->meta.tokenizer_sha256, tokenizer_sha256);
    if (vocab_size && vocab_size != s->meta.vocab_size)
        return gk_fail(err, GK_EINPUT, "%s: vocab_size is %" PRId64 ", but the run's tokenizer has %" PRId64, s->path,
                       s->meta.vocab_size, vocab_size);
    return 0;
}

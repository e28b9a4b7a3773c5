// The shard writer: buffers documents, appends whole zstd-compressed chunks to
// "<path>.tmp-<pid>", then writes /doc_starts and the attributes and renames
// the file into place (format: shards.h).
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/file.h"
#include "common/utf8.h"
#include "data/h5util.h"
#include "data/shards.h"
#include "data/shards_internal.h"
#include "data/zstd_filter.h"

struct shard_writer {
    char *path, *tmp_path;
    shard_meta meta;
    char *source, *created_by; // meta's strings, owned
    hid_t file, tokens, mask;  // mask: -1 unless has_loss_mask
    uint32_t *buf;             // [SHARD_CHUNK_TOKENS] tokens not yet written
    uint8_t *mask_buf;         // [SHARD_CHUNK_TOKENS] or NULL
    size_t buf_len;
    uint64_t n_written;        // tokens in the datasets
    uint64_t *doc_starts;      // [n_docs] (capacity cap_docs)
    size_t n_docs, cap_docs;
    int failed;                // an I/O error happened; only abort is useful
};

static hid_t create_stream(hid_t file, const char *name, hid_t type, unsigned level) {
    hsize_t dims = 0, maxdims = H5S_UNLIMITED, chunk = SHARD_CHUNK_TOKENS;
    hid_t space = H5Screate_simple(1, &dims, &maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t d = -1;
    if (space >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, 1, &chunk) >= 0 &&
        H5Pset_filter(dcpl, ZSTD_FILTER_ID, H5Z_FLAG_MANDATORY, 1, &level) >= 0 &&
        H5Pset_obj_track_times(dcpl, 0) >= 0)
        d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    h5_close(&dcpl);
    h5_close(&space);
    return d;
}

// Replaces each byte that is not part of valid UTF-8 with '?', so that the
// attribute, declared UTF-8, decodes in h5py (file names need not be UTF-8).
static void utf8_sanitize(char *s) {
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = utf8_scan(p, strlen((char *)p), NULL);
        if (n == 0) *p++ = '?';
        else p += n;
    }
}

static void writer_free(shard_writer *w) {
    h5_close(&w->mask);
    h5_close(&w->tokens);
    h5_close(&w->file);
    free(w->path);
    free(w->tmp_path);
    free(w->source);
    free(w->created_by);
    free(w->buf);
    free(w->mask_buf);
    free(w->doc_starts);
    free(w);
}

int shard_writer_open(shard_writer **out, const char *path, const shard_meta *meta, gk_err *err) {
    *out = NULL;
    if (shard_meta_check(meta, path, err) < 0) return -1;
    int level = meta->zstd_level ? meta->zstd_level : SHARD_ZSTD_LEVEL;
    if (level < 1 || level > 22) return gk_fail(err, GK_EINPUT, "%s: zstd level %d is not in 1..22", path, level);
    if (zstd_filter_register(err) < 0) return -1;
    shard_writer *w = gk_calloc(1, sizeof *w, err);
    if (!w) return -1;
    w->file = w->tokens = w->mask = H5I_INVALID_HID;
    w->path = strdup(path);
    w->tmp_path = file_tmp_path(path);
    w->source = strdup(meta->source ? meta->source : "");
    w->created_by = strdup(meta->created_by ? meta->created_by : "gemmakd");
    w->buf = malloc(SHARD_CHUNK_TOKENS * sizeof *w->buf);
    w->mask_buf = meta->has_loss_mask ? malloc(SHARD_CHUNK_TOKENS) : NULL;
    if (!w->path || !w->tmp_path || !w->source || !w->created_by || !w->buf || (meta->has_loss_mask && !w->mask_buf)) {
        writer_free(w);
        return gk_fail(err, GK_ENOMEM, "out of memory");
    }
    utf8_sanitize(w->source);
    utf8_sanitize(w->created_by);
    w->meta = *meta;
    w->meta.source = w->source;
    w->meta.created_by = w->created_by;
    w->meta.zstd_level = level;

    h5_quiet q;
    h5_quiet_begin(&q);
    int rc = 0;
    char d[256];
    if ((w->file = h5_create(w->tmp_path, err)) < 0) {
        rc = -1;
    } else if ((w->tokens = create_stream(w->file, "tokens", H5T_STD_U32LE, (unsigned)level)) < 0 ||
               (meta->has_loss_mask && (w->mask = create_stream(w->file, "loss_mask", H5T_STD_U8LE, (unsigned)level)) < 0)) {
        rc = gk_fail(err, GK_EIO, "%s: cannot create datasets: %s", w->tmp_path, h5_detail(d, sizeof d));
    }
    h5_quiet_end(&q);
    if (rc < 0) {
        shard_writer_abort(w);
        return -1;
    }
    *out = w;
    return 0;
}

// Appends buf[0..n) (and the mask) to one extendible dataset.
static int append(hid_t d, hid_t mem_type, uint64_t at, size_t n, const void *buf) {
    hsize_t size = at + n, start = at, count = n;
    if (H5Dset_extent(d, &size) < 0) return -1;
    hid_t fs = H5Dget_space(d);
    hid_t ms = H5Screate_simple(1, &count, NULL);
    int rc = fs >= 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL) >= 0 &&
                     H5Dwrite(d, mem_type, ms, fs, H5P_DEFAULT, buf) >= 0
                 ? 0
                 : -1;
    h5_close(&ms);
    h5_close(&fs);
    return rc;
}

// Writes the buffered tokens (a whole chunk, or the last partial one).
static int flush(shard_writer *w, gk_err *err) {
    if (w->buf_len == 0) return 0;
    h5_quiet q;
    h5_quiet_begin(&q);
    char d[256];
    int rc = 0;
    if (append(w->tokens, H5T_NATIVE_UINT32, w->n_written, w->buf_len, w->buf) < 0 ||
        (w->mask_buf && append(w->mask, H5T_NATIVE_UINT8, w->n_written, w->buf_len, w->mask_buf) < 0)) {
        w->failed = 1;
        rc = gk_fail(err, GK_EIO, "%s: cannot write tokens: %s", w->tmp_path, h5_detail(d, sizeof d));
    }
    h5_quiet_end(&q);
    w->n_written += w->buf_len;
    w->buf_len = 0;
    return rc;
}

int shard_writer_add_doc(shard_writer *w, const uint32_t *tokens, const uint8_t *mask, size_t n, gk_err *err) {
    size_t doc = w->n_docs;
    if (w->failed) return gk_fail(err, GK_EIO, "%s: an earlier write failed", w->tmp_path);
    if (n == 0) return gk_fail(err, GK_EINPUT, "%s: document %zu is empty", w->path, doc);
    if (w->meta.has_loss_mask && !mask)
        return gk_fail(err, GK_EINPUT, "%s: document %zu has no loss mask (chat shard)", w->path, doc);
    if (!w->meta.has_loss_mask && mask)
        return gk_fail(err, GK_EINPUT, "%s: document %zu has a loss mask but the shard has none", w->path, doc);
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] >= (uint64_t)w->meta.vocab_size)
            return gk_fail(err, GK_EINPUT, "%s: document %zu: token %" PRIu32 " at position %zu is >= vocab_size %" PRId64,
                           w->path, doc, tokens[i], i, w->meta.vocab_size);
        if (mask && mask[i] > 1)
            return gk_fail(err, GK_EINPUT, "%s: document %zu: loss mask value %u at position %zu is not 0 or 1", w->path,
                           doc, mask[i], i);
    }
    if (w->n_docs == w->cap_docs) {
        size_t cap = w->cap_docs ? 2 * w->cap_docs : 1024, bytes;
        if (!gk_mul_ok(cap, sizeof *w->doc_starts, &bytes)) return gk_fail(err, GK_ENOMEM, "too many documents");
        uint64_t *p = realloc(w->doc_starts, bytes);
        if (!p) return gk_fail(err, GK_ENOMEM, "out of memory for %zu document starts", cap);
        w->doc_starts = p;
        w->cap_docs = cap;
    }
    w->doc_starts[w->n_docs++] = shard_writer_tokens(w);
    for (size_t i = 0; i < n;) {
        size_t take = SHARD_CHUNK_TOKENS - w->buf_len;
        if (take > n - i) take = n - i;
        memcpy(w->buf + w->buf_len, tokens + i, take * sizeof *tokens);
        if (mask) memcpy(w->mask_buf + w->buf_len, mask + i, take);
        w->buf_len += take;
        i += take;
        if (w->buf_len == SHARD_CHUNK_TOKENS && flush(w, err) < 0) return -1;
    }
    return 0;
}

uint64_t shard_writer_tokens(const shard_writer *w) { return w->n_written + w->buf_len; }
uint64_t shard_writer_docs(const shard_writer *w) { return w->n_docs; }
const char *shard_writer_tmp_path(const shard_writer *w) { return w->tmp_path; }
const char *shard_writer_path(const shard_writer *w) { return w->path; }

static int write_doc_starts(shard_writer *w) {
    hsize_t n = w->n_docs;
    hid_t space = H5Screate_simple(1, &n, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t d = -1;
    if (space >= 0 && dcpl >= 0 && H5Pset_obj_track_times(dcpl, 0) >= 0)
        d = H5Dcreate2(w->file, "doc_starts", H5T_STD_U64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int rc = d >= 0 && H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->doc_starts) >= 0 ? 0 : -1;
    h5_close(&d);
    h5_close(&dcpl);
    h5_close(&space);
    return rc;
}

static int write_attributes(shard_writer *w) {
    const shard_meta *m = &w->meta;
    hid_t f = w->file;
    uint8_t has_mask = m->has_loss_mask;
    if (h5_write_attr_str(f, "format", SHARD_FORMAT) < 0 ||
        h5_write_attr_i64(f, "format_version", SHARD_FORMAT_VERSION) < 0 ||
        h5_write_attr_str(f, "tokenizer_sha256", m->tokenizer_sha256) < 0 ||
        h5_write_attr_i64(f, "vocab_size", m->vocab_size) < 0 || h5_write_attr_i64(f, "bos_id", m->bos_id) < 0 ||
        h5_write_attr_i64(f, "eos_id", m->eos_id) < 0 || h5_write_attr_i64(f, "pad_id", m->pad_id) < 0 ||
        h5_write_attr_u64(f, "n_tokens", w->n_written) < 0 || h5_write_attr_u64(f, "n_docs", w->n_docs) < 0 ||
        h5_write_attr(f, "has_loss_mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, &has_mask) < 0 ||
        h5_write_attr_str(f, "source", m->source) < 0 || h5_write_attr_str(f, "created_by", m->created_by) < 0)
        return -1;
    return 0;
}

int shard_writer_close(shard_writer *w, gk_err *err) {
    if (w->failed) {
        gk_fail(err, GK_EIO, "%s: an earlier write failed; nothing was written", w->path);
        shard_writer_abort(w);
        return -1;
    }
    if (w->n_docs == 0) {
        gk_fail(err, GK_EINPUT, "%s: a shard needs at least one document", w->path);
        shard_writer_abort(w);
        return -1;
    }
    if (flush(w, err) < 0) {
        shard_writer_abort(w);
        return -1;
    }
    h5_quiet q;
    h5_quiet_begin(&q);
    char d[256];
    int rc = 0;
    if (write_doc_starts(w) < 0 || write_attributes(w) < 0) {
        rc = gk_fail(err, GK_EIO, "%s: cannot write doc_starts/attributes: %s", w->tmp_path, h5_detail(d, sizeof d));
    } else {
        h5_close(&w->mask);
        h5_close(&w->tokens);
        herr_t closed = H5Fclose(w->file);
        w->file = H5I_INVALID_HID;
        if (closed < 0) rc = gk_fail(err, GK_EIO, "%s: cannot close: %s", w->tmp_path, h5_detail(d, sizeof d));
    }
    h5_quiet_end(&q);
    if (rc == 0) rc = file_publish(w->tmp_path, w->path, NULL, err);
    if (rc < 0) {
        shard_writer_abort(w);
        return -1;
    }
    writer_free(w);
    return 0;
}

void shard_writer_abort(shard_writer *w) {
    if (!w) return;
    h5_quiet q;
    h5_quiet_begin(&q);
    h5_close(&w->mask);
    h5_close(&w->tokens);
    h5_close(&w->file);
    h5_quiet_end(&q);
    if (w->tmp_path) unlink(w->tmp_path);
    writer_free(w);
}

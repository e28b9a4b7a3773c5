#include "data/shards.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"
#include "data/zstd_filter.h"

// ---------------------------------------------------------------- HDF5 plumbing

// Silences HDF5's automatic error printing for the duration of one public
// call and restores the caller's handler afterwards.
typedef struct {
    H5E_auto2_t func;
    void *data;
} h5_quiet;

static void quiet_begin(h5_quiet *q) {
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void quiet_end(h5_quiet *q) {
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

typedef struct {
    char *buf;
    size_t cap;
} h5_detail_ctx;

// Walking upward visits the innermost (most specific) error first.
static herr_t detail_walk(unsigned n, const H5E_error2_t *e, void *data) {
    h5_detail_ctx *ctx = data;
    if (n == 0 && e->desc && e->desc[0]) snprintf(ctx->buf, ctx->cap, "%s", e->desc);
    return 0;
}

// The most specific message on HDF5's error stack ("file signature not found"),
// or "HDF5 error" when the stack is empty. Clears the stack.
static const char *h5_detail(char *buf, size_t cap) {
    h5_detail_ctx ctx = {buf, cap};
    snprintf(buf, cap, "HDF5 error");
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, detail_walk, &ctx);
    H5Eclear2(H5E_DEFAULT);
    return buf;
}

// Closes an HDF5 object of any kind and sets *id to invalid. Keeps the error
// stack as it was, so a failure's detail survives the cleanup after it.
static void close_id(hid_t *id) {
    if (*id < 0) return;
    hid_t saved = H5Eget_num(H5E_DEFAULT) > 0 ? H5Eget_current_stack() : H5I_INVALID_HID;
    switch (H5Iget_type(*id)) {
    case H5I_FILE: H5Fclose(*id); break;
    case H5I_DATASET: H5Dclose(*id); break;
    case H5I_DATASPACE: H5Sclose(*id); break;
    case H5I_DATATYPE: H5Tclose(*id); break;
    case H5I_ATTR: H5Aclose(*id); break;
    case H5I_GENPROP_LST: H5Pclose(*id); break;
    default: break;
    }
    *id = H5I_INVALID_HID;
    if (saved >= 0) H5Eset_current_stack(saved);
}

// File access: the sec2 driver, close everything with the file, and do not
// fail on file systems without flock.
static hid_t make_fapl(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return fapl;
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    H5Pset_file_locking(fapl, 1, 1);
    return fapl;
}

// "uint32", "int64", "float32", "string", ... for messages.
static const char *type_name(hid_t t, char *buf, size_t cap) {
    size_t bits = H5Tget_size(t) * 8;
    switch (H5Tget_class(t)) {
    case H5T_INTEGER: snprintf(buf, cap, "%s%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "uint" : "int", bits); break;
    case H5T_FLOAT: snprintf(buf, cap, "float%zu", bits); break;
    case H5T_STRING: snprintf(buf, cap, "string"); break;
    case H5T_ENUM: snprintf(buf, cap, "enum (bool?)"); break;
    case H5T_COMPOUND: snprintf(buf, cap, "compound"); break;
    default: snprintf(buf, cap, "a non-numeric type"); break;
    }
    return buf;
}

// ---------------------------------------------------------------- attributes

static int write_attr(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, const void *value) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = space < 0 ? -1 : H5Acreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = attr >= 0 && H5Awrite(attr, mem_type, value) >= 0 ? 0 : -1;
    close_id(&attr);
    close_id(&space);
    return rc;
}

static int write_attr_i64(hid_t loc, const char *name, int64_t v) {
    return write_attr(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

static int write_attr_u64(hid_t loc, const char *name, uint64_t v) {
    return write_attr(loc, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v);
}

// Variable-length UTF-8: h5py returns these as str (fixed-length ones as bytes).
static int write_attr_str(hid_t loc, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    int rc = -1;
    if (H5Tset_size(t, H5T_VARIABLE) >= 0 && H5Tset_cset(t, H5T_CSET_UTF8) >= 0) rc = write_attr(loc, name, t, t, &s);
    H5Tclose(t);
    return rc;
}

// Opens a scalar (one-element) root attribute. Returns the attribute and its
// file type, or -1 with err naming the file and attribute.
static hid_t open_attr(hid_t file, const char *path, const char *name, hid_t *type, gk_err *err) {
    htri_t exists = H5Aexists(file, name);
    if (exists <= 0) {
        gk_fail(err, GK_EINPUT, "%s: missing attribute '%s'", path, name);
        return -1;
    }
    hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
    hid_t space = attr < 0 ? -1 : H5Aget_space(attr);
    hssize_t npoints = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);
    close_id(&space);
    *type = attr < 0 ? -1 : H5Aget_type(attr);
    if (attr < 0 || *type < 0 || npoints != 1) {
        close_id(type);
        close_id(&attr);
        char d[256];
        gk_fail(err, GK_EINPUT, "%s: attribute '%s' %s", path, name,
                npoints >= 0 && npoints != 1 ? "is not a scalar" : h5_detail(d, sizeof d));
        return -1;
    }
    return attr;
}

static int read_attr_int(hid_t file, const char *path, const char *name, int64_t *out, gk_err *err) {
    hid_t type;
    hid_t attr = open_attr(file, path, name, &type, err);
    if (attr < 0) return -1;
    int rc = 0;
    char tn[32];
    if (H5Tget_class(type) != H5T_INTEGER) {
        rc = gk_fail(err, GK_EINPUT, "%s: attribute '%s' is %s, expected an integer", path, name,
                     type_name(type, tn, sizeof tn));
    } else if (H5Aread(attr, H5T_NATIVE_INT64, out) < 0) {
        char d[256];
        rc = gk_fail(err, GK_EINPUT, "%s: attribute '%s': %s", path, name, h5_detail(d, sizeof d));
    }
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

// Reads a variable- or fixed-length string attribute into a malloc'd string.
static int read_attr_str(hid_t file, const char *path, const char *name, char **out, gk_err *err) {
    *out = NULL;
    hid_t type;
    hid_t attr = open_attr(file, path, name, &type, err);
    if (attr < 0) return -1;
    int rc = 0, h5_failed = 0;
    char tn[32];
    hid_t mem = -1;
    if (H5Tget_class(type) != H5T_STRING) {
        rc = gk_fail(err, GK_EINPUT, "%s: attribute '%s' is %s, expected a string", path, name,
                     type_name(type, tn, sizeof tn));
    } else if ((mem = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_cset(mem, H5Tget_cset(type)) < 0) {
        h5_failed = 1;
    } else if (H5Tis_variable_str(type) > 0) {
        char *s = NULL;
        if (H5Tset_size(mem, H5T_VARIABLE) < 0 || H5Aread(attr, mem, &s) < 0) {
            h5_failed = 1;
        } else {
            *out = strdup(s ? s : "");
            if (s) H5free_memory(s);
            if (!*out) rc = gk_fail(err, GK_ENOMEM, "out of memory");
        }
    } else {
        size_t n = H5Tget_size(type);
        if (n > (1u << 24)) {
            rc = gk_fail(err, GK_EINPUT, "%s: attribute '%s' is a %zu-byte string", path, name, n);
        } else if (!(*out = gk_calloc(n + 1, 1, err))) {
            rc = -1;
        } else if (H5Tset_size(mem, n + 1) < 0 || H5Tset_strpad(mem, H5T_STR_NULLTERM) < 0 ||
                   H5Aread(attr, mem, *out) < 0) {
            h5_failed = 1;
        }
    }
    if (h5_failed) {
        char d[256];
        rc = gk_fail(err, GK_EINPUT, "%s: attribute '%s': %s", path, name, h5_detail(d, sizeof d));
    }
    if (rc < 0) {
        free(*out);
        *out = NULL;
    }
    close_id(&mem);
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

// ---------------------------------------------------------------- meta checks

static int sha256_ok(const char *s) {
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) return 0;
    return s[64] == 0;
}

static int id_ok(int64_t id, int64_t vocab) { return id >= -1 && id < vocab; }

// Checks the fields both the writer and the reader require; `where` prefixes messages.
static int meta_check(const shard_meta *m, const char *where, gk_err *err) {
    if (!sha256_ok(m->tokenizer_sha256))
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

// ---------------------------------------------------------------- writer

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
    close_id(&dcpl);
    close_id(&space);
    return d;
}

// Replaces each byte that is not part of valid UTF-8 with '?', so that the
// attribute, declared UTF-8, decodes in h5py (file names need not be UTF-8).
static void utf8_sanitize(char *s) {
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 && *p >= 0xC2 ? 2 : (*p & 0xF0) == 0xE0 ? 3
                 : (*p & 0xF8) == 0xF0 && *p <= 0xF4 ? 4 : 0;
        for (size_t i = 1; i < n; i++)
            if ((p[i] & 0xC0) != 0x80) n = 0;
        // Overlong 3/4-byte forms, UTF-16 surrogates and code points past U+10FFFF.
        if (n == 3 && ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] >= 0xA0))) n = 0;
        if (n == 4 && ((p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] >= 0x90))) n = 0;
        if (n == 0) {
            *p++ = '?';
        } else {
            p += n;
        }
    }
}

static void writer_free(shard_writer *w) {
    close_id(&w->mask);
    close_id(&w->tokens);
    close_id(&w->file);
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
    if (meta_check(meta, path, err) < 0) return -1;
    int level = meta->zstd_level ? meta->zstd_level : SHARD_ZSTD_LEVEL;
    if (level < 1 || level > 22) return gk_fail(err, GK_EINPUT, "%s: zstd level %d is not in 1..22", path, level);
    if (zstd_filter_register(err) < 0) return -1;
    shard_writer *w = gk_calloc(1, sizeof *w, err);
    if (!w) return -1;
    w->file = w->tokens = w->mask = H5I_INVALID_HID;
    size_t n = strlen(path) + 32;
    w->path = strdup(path);
    w->tmp_path = malloc(n);
    w->source = strdup(meta->source ? meta->source : "");
    w->created_by = strdup(meta->created_by ? meta->created_by : "gemmakd");
    w->buf = malloc(SHARD_CHUNK_TOKENS * sizeof *w->buf);
    w->mask_buf = meta->has_loss_mask ? malloc(SHARD_CHUNK_TOKENS) : NULL;
    if (!w->path || !w->tmp_path || !w->source || !w->created_by || !w->buf || (meta->has_loss_mask && !w->mask_buf)) {
        writer_free(w);
        return gk_fail(err, GK_ENOMEM, "out of memory");
    }
    snprintf(w->tmp_path, n, "%s.tmp-%ld", path, (long)getpid());
    utf8_sanitize(w->source);
    utf8_sanitize(w->created_by);
    w->meta = *meta;
    w->meta.source = w->source;
    w->meta.created_by = w->created_by;
    w->meta.zstd_level = level;

    // Create the file first for a plain OS message ("No such file or directory").
    int fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) {
        gk_fail(err, GK_EIO, "%s: cannot create: %s", w->tmp_path, strerror(errno));
        writer_free(w);
        return -1;
    }
    close(fd);
    h5_quiet q;
    quiet_begin(&q);
    hid_t fapl = make_fapl();
    w->file = fapl < 0 ? -1 : H5Fcreate(w->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    close_id(&fapl);
    int rc = 0;
    char d[256];
    if (w->file < 0) {
        rc = gk_fail(err, GK_EIO, "%s: cannot create: %s", w->tmp_path, h5_detail(d, sizeof d));
    } else if ((w->tokens = create_stream(w->file, "tokens", H5T_STD_U32LE, (unsigned)level)) < 0 ||
               (meta->has_loss_mask && (w->mask = create_stream(w->file, "loss_mask", H5T_STD_U8LE, (unsigned)level)) < 0)) {
        rc = gk_fail(err, GK_EIO, "%s: cannot create datasets: %s", w->tmp_path, h5_detail(d, sizeof d));
    }
    quiet_end(&q);
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
    close_id(&ms);
    close_id(&fs);
    return rc;
}

// Writes the buffered tokens (a whole chunk, or the last partial one).
static int flush(shard_writer *w, gk_err *err) {
    if (w->buf_len == 0) return 0;
    h5_quiet q;
    quiet_begin(&q);
    char d[256];
    int rc = 0;
    if (append(w->tokens, H5T_NATIVE_UINT32, w->n_written, w->buf_len, w->buf) < 0 ||
        (w->mask_buf && append(w->mask, H5T_NATIVE_UINT8, w->n_written, w->buf_len, w->mask_buf) < 0)) {
        w->failed = 1;
        rc = gk_fail(err, GK_EIO, "%s: cannot write tokens: %s", w->tmp_path, h5_detail(d, sizeof d));
    }
    quiet_end(&q);
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

static int write_doc_starts(shard_writer *w) {
    hsize_t n = w->n_docs;
    hid_t space = H5Screate_simple(1, &n, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t d = -1;
    if (space >= 0 && dcpl >= 0 && H5Pset_obj_track_times(dcpl, 0) >= 0)
        d = H5Dcreate2(w->file, "doc_starts", H5T_STD_U64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int rc = d >= 0 && H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->doc_starts) >= 0 ? 0 : -1;
    close_id(&d);
    close_id(&dcpl);
    close_id(&space);
    return rc;
}

static int write_attributes(shard_writer *w) {
    const shard_meta *m = &w->meta;
    hid_t f = w->file;
    uint8_t has_mask = m->has_loss_mask;
    if (write_attr_str(f, "format", SHARD_FORMAT) < 0 || write_attr_i64(f, "format_version", SHARD_FORMAT_VERSION) < 0 ||
        write_attr_str(f, "tokenizer_sha256", m->tokenizer_sha256) < 0 ||
        write_attr_i64(f, "vocab_size", m->vocab_size) < 0 || write_attr_i64(f, "bos_id", m->bos_id) < 0 ||
        write_attr_i64(f, "eos_id", m->eos_id) < 0 || write_attr_i64(f, "pad_id", m->pad_id) < 0 ||
        write_attr_u64(f, "n_tokens", w->n_written) < 0 || write_attr_u64(f, "n_docs", w->n_docs) < 0 ||
        write_attr(f, "has_loss_mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, &has_mask) < 0 ||
        write_attr_str(f, "source", m->source) < 0 || write_attr_str(f, "created_by", m->created_by) < 0)
        return -1;
    return 0;
}

static char *parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
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
    quiet_begin(&q);
    char d[256];
    int rc = 0;
    if (write_doc_starts(w) < 0 || write_attributes(w) < 0) {
        rc = gk_fail(err, GK_EIO, "%s: cannot write doc_starts/attributes: %s", w->tmp_path, h5_detail(d, sizeof d));
    } else {
        close_id(&w->mask);
        close_id(&w->tokens);
        herr_t closed = H5Fclose(w->file);
        w->file = H5I_INVALID_HID;
        if (closed < 0) rc = gk_fail(err, GK_EIO, "%s: cannot close: %s", w->tmp_path, h5_detail(d, sizeof d));
    }
    quiet_end(&q);
    if (rc == 0) {
        int fd = open(w->tmp_path, O_RDONLY);
        int bad = fd < 0 || fsync(fd) != 0;
        int e = errno;
        if (fd >= 0) close(fd);
        if (bad || rename(w->tmp_path, w->path) != 0) {
            if (!bad) e = errno;
            rc = gk_fail(err, GK_EIO, "%s: cannot %s: %s", w->path, bad ? "sync" : "rename into place", strerror(e));
        }
    }
    if (rc < 0) {
        shard_writer_abort(w);
        return -1;
    }
    char *dir = parent_dir(w->path);
    if (dir) dir_sync(dir);
    free(dir);
    writer_free(w);
    return 0;
}

void shard_writer_abort(shard_writer *w) {
    if (!w) return;
    h5_quiet q;
    quiet_begin(&q);
    close_id(&w->mask);
    close_id(&w->tokens);
    close_id(&w->file);
    quiet_end(&q);
    if (w->tmp_path) unlink(w->tmp_path);
    writer_free(w);
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
                     type_name(type, tn, sizeof tn), bytes * 8);
    } else if (rank != 1) {
        rc = gk_fail(err, GK_EINPUT, "%s: /%s has %d dimensions, expected 1", path, name, rank);
    } else if (H5Sget_simple_extent_dims(space, &dims, NULL) < 0) {
        rc = gk_fail(err, GK_EINPUT, "%s: /%s: %s", path, name, h5_detail(d, sizeof d));
    }
    close_id(&type);
    close_id(&space);
    if (rc < 0) {
        close_id(&ds);
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
    close_id(&dcpl);
    if (!chunked) return ds;
    double bytes = 4.0 * (double)chunk * (double)elem_bytes;
    size_t cache = bytes < (256 << 10) ? (256 << 10) : bytes > (256 << 20) ? (256 << 20) : (size_t)bytes;
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    hid_t again = -1;
    if (dapl >= 0 && H5Pset_chunk_cache(dapl, 521, cache, 0.75) >= 0) again = H5Dopen2(file, name, dapl);
    close_id(&dapl);
    if (again < 0) return ds; // keep the default cache
    H5Dclose(ds);
    return again;
}

static void h5_free(shard_h5 *h) {
    if (!h) return;
    close_id(&h->mask_space);
    close_id(&h->tokens_space);
    close_id(&h->mask);
    close_id(&h->tokens);
    close_id(&h->file);
    free(h);
}

void shard_close(shard_file *s) {
    h5_quiet q;
    quiet_begin(&q);
    h5_free(s->h5);
    quiet_end(&q);
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
    if (read_attr_str(f, path, "format", &str, err) < 0) return -1;
    int is_shard = strcmp(str, SHARD_FORMAT) == 0;
    if (!is_shard) gk_fail(err, GK_EINPUT, "%s: attribute 'format' is '%.100s', expected '%s'", path, str, SHARD_FORMAT);
    free(str);
    if (!is_shard) return -1;

    int64_t version, n_tokens, n_docs, has_mask;
    if (read_attr_int(f, path, "format_version", &version, err) < 0) return -1;
    if (version != SHARD_FORMAT_VERSION)
        return gk_fail(err, GK_EINPUT, "%s: attribute 'format_version' is %" PRId64 ", this build reads version %d", path,
                       version, SHARD_FORMAT_VERSION);
    shard_meta *m = &s->meta;
    if (read_attr_str(f, path, "tokenizer_sha256", &str, err) < 0) return -1;
    snprintf(m->tokenizer_sha256, sizeof m->tokenizer_sha256, "%s", str);
    int sha_len_ok = strlen(str) == 64;
    free(str);
    if (!sha_len_ok || !sha256_ok(m->tokenizer_sha256))
        return gk_fail(err, GK_EINPUT, "%s: attribute 'tokenizer_sha256' is not 64 lowercase hex digits", path);
    if (read_attr_int(f, path, "vocab_size", &m->vocab_size, err) < 0 || read_attr_int(f, path, "bos_id", &m->bos_id, err) < 0 ||
        read_attr_int(f, path, "eos_id", &m->eos_id, err) < 0 || read_attr_int(f, path, "pad_id", &m->pad_id, err) < 0 ||
        read_attr_int(f, path, "n_tokens", &n_tokens, err) < 0 || read_attr_int(f, path, "n_docs", &n_docs, err) < 0 ||
        read_attr_int(f, path, "has_loss_mask", &has_mask, err) < 0)
        return -1;
    if (meta_check(m, path, err) < 0) return -1;
    if (has_mask != 0 && has_mask != 1)
        return gk_fail(err, GK_EINPUT, "%s: attribute 'has_loss_mask' is %" PRId64 ", expected 0 or 1", path, has_mask);
    m->has_loss_mask = has_mask;
    if (read_attr_str(f, path, "source", &str, err) < 0) return -1;
    m->source = str;
    if (read_attr_str(f, path, "created_by", &str, err) < 0) return -1;
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
    struct stat st;
    if (stat(path, &st) != 0) return gk_fail(err, GK_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return gk_fail(err, GK_EIO, "%s: not a regular file", path);
    s->path = strdup(path);
    s->h5 = calloc(1, sizeof *s->h5);
    if (!s->path || !s->h5) {
        shard_close(s);
        return gk_fail(err, GK_ENOMEM, "out of memory");
    }
    shard_h5 *h = s->h5;
    h->tokens = h->mask = h->tokens_space = h->mask_space = H5I_INVALID_HID;
    h5_quiet q;
    quiet_begin(&q);
    hid_t fapl = make_fapl();
    h->file = fapl < 0 ? -1 : H5Fopen(path, H5F_ACC_RDONLY, fapl);
    close_id(&fapl);
    int rc = 0;
    if (h->file < 0) {
        char d[256];
        rc = gk_fail(err, GK_EINPUT, "%s: not a readable HDF5 file (%s)", path, h5_detail(d, sizeof d));
    } else {
        rc = open_checked(s, err);
    }
    quiet_end(&q);
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
    quiet_begin(&q);
    hsize_t off = start, n = count;
    hid_t ms = H5Screate_simple(1, &n, NULL);
    int rc = 0;
    if (ms < 0 || H5Sselect_hyperslab(space, H5S_SELECT_SET, &off, NULL, &n, NULL) < 0 ||
        H5Dread(ds, mem_type, ms, space, H5P_DEFAULT, out) < 0) {
        char d[256];
        rc = gk_fail(err, GK_EINPUT, "%s: cannot read /%s [%" PRIu64 ", +%zu): %s", s->path, name, start, count,
                     h5_detail(d, sizeof d));
    }
    close_id(&ms);
    quiet_end(&q);
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

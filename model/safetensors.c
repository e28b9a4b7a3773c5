#include "model/safetensors.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "common/json.h"
#include "common/strbuf.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

// The JSON schema's limit on shape entries and offsets ("48 bits").
#define ST_MAX_VALUE ((1LL << 48) - 1)
enum { CONVERT_CHUNK = 1 << 20, PARALLEL_MIN = 1 << 16 };

static const struct {
    const char *name;
    size_t size;
} dtype_info[ST_N_DTYPES] = {
    [ST_BOOL] = {"BOOL", 1},       [ST_U8] = {"U8", 1},   [ST_I8] = {"I8", 1},   [ST_F8_E5M2] = {"F8_E5M2", 1},
    [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_I16] = {"I16", 2}, [ST_U16] = {"U16", 2}, [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2},       [ST_I32] = {"I32", 4}, [ST_U32] = {"U32", 4}, [ST_F32] = {"F32", 4},
    [ST_F64] = {"F64", 8},         [ST_I64] = {"I64", 8}, [ST_U64] = {"U64", 8},
};

const char *st_dtype_name(st_dtype dtype) { return (unsigned)dtype < ST_N_DTYPES ? dtype_info[dtype].name : "?"; }

size_t st_dtype_size(st_dtype dtype) { return (unsigned)dtype < ST_N_DTYPES ? dtype_info[dtype].size : 0; }

const char *st_shape_str(char *buf, size_t cap, int ndim, const size_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++) n += (size_t)snprintf(buf + n, cap - n, "%s%zu", i ? ", " : "", shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

// ---------------------------------------------------------------- reader

// One tensor's byte range, kept while checking that ranges tile the data.
typedef struct {
    size_t begin, end, index;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

// Whether key i of object o is exactly s (keys may hold NUL bytes).
static int key_is(const json_value *o, size_t i, const char *s) {
    return o->key_lengths[i] == strlen(s) && !memcmp(o->keys[i], s, o->key_lengths[i]);
}

static int read_count(const json_value *v, size_t *out) {
    if (v->type != JSON_NUMBER || !v->is_integer || v->integer < 0 || v->integer > ST_MAX_VALUE) return -1;
    *out = (size_t)v->integer;
    return 0;
}

static int parse_dtype(const st_file *f, const char *name, const json_value *v, st_tensor *t, gk_err *err) {
    if (v->type != JSON_STRING)
        return gk_fail(err, GK_EINPUT, "%s: tensor '%s': dtype must be a string", f->path, name);
    for (int d = 0; d < ST_N_DTYPES; d++) {
        if (!strcmp(v->string, dtype_info[d].name) && strlen(v->string) == v->length) {
            t->dtype = (st_dtype)d;
            return 0;
        }
    }
    return gk_fail(err, GK_EINPUT, "%s: tensor '%s': unknown or unsupported dtype '%s'", f->path, name, v->string);
}

// shape -> t->ndim, t->shape, t->numel, t->nbytes (checked arithmetic).
static int parse_shape(const st_file *f, const char *name, const json_value *v, st_tensor *t, gk_err *err) {
    if (v->type != JSON_ARRAY) return gk_fail(err, GK_EINPUT, "%s: tensor '%s': shape must be an array", f->path, name);
    if (v->count > ST_MAX_DIMS)
        return gk_fail(err, GK_EINPUT, "%s: tensor '%s': %zu dimensions exceed the supported %d", f->path, name,
                       v->count, ST_MAX_DIMS);
    t->ndim = (int)v->count;
    t->numel = 1;
    for (size_t i = 0; i < v->count; i++) {
        if (read_count(v->items[i], &t->shape[i]))
            return gk_fail(err, GK_EINPUT, "%s: tensor '%s': shape[%zu] must be an integer in [0, 2^48-1]", f->path,
                           name, i);
        if (!gk_mul_ok(t->numel, t->shape[i], &t->numel))
            return gk_fail(err, GK_EINPUT, "%s: tensor '%s': shape overflows the element count", f->path, name);
    }
    if (!gk_mul_ok(t->numel, st_dtype_size(t->dtype), &t->nbytes))
        return gk_fail(err, GK_EINPUT, "%s: tensor '%s': shape x %s overflows the byte size", f->path, name,
                       st_dtype_name(t->dtype));
    return 0;
}

static int parse_offsets(const st_file *f, const char *name, const json_value *v, span *s, gk_err *err) {
    if (v->type != JSON_ARRAY || v->count != 2 || read_count(v->items[0], &s->begin) ||
        read_count(v->items[1], &s->end))
        return gk_fail(err, GK_EINPUT, "%s: tensor '%s': data_offsets must be two integers in [0, 2^48-1]", f->path,
                       name);
    if (s->end < s->begin)
        return gk_fail(err, GK_EINPUT, "%s: tensor '%s': data_offsets end %zu is before begin %zu", f->path, name,
                       s->end, s->begin);
    return 0;
}

// One header entry {"dtype":..,"shape":[..],"data_offsets":[b,e]} -> *t, *s.
static int parse_tensor(const st_file *f, const char *name, const json_value *v, st_tensor *t, span *s, gk_err *err) {
    static const char *const keys[3] = {"dtype", "shape", "data_offsets"};
    if (v->type != JSON_OBJECT)
        return gk_fail(err, GK_EINPUT, "%s: tensor '%s': entry must be an object, not %s", f->path, name,
                       json_type_name(v->type));
    const char *dup = json_duplicate_key(v);
    if (dup) return gk_fail(err, GK_EINPUT, "%s: tensor '%s': duplicate key '%s'", f->path, name, dup);
    for (size_t i = 0; i < v->count; i++) {
        int known = 0;
        for (int k = 0; k < 3; k++) known |= key_is(v, i, keys[k]);
        if (!known)
            return gk_fail(err, GK_EINPUT, "%s: tensor '%s': unexpected key '%s' (allowed: dtype, shape, data_offsets)",
                           f->path, name, v->keys[i]);
    }
    for (int k = 0; k < 3; k++)
        if (!json_get(v, keys[k]))
            return gk_fail(err, GK_EINPUT, "%s: tensor '%s': '%s' is missing", f->path, name, keys[k]);
    if (parse_dtype(f, name, json_get(v, "dtype"), t, err) || parse_shape(f, name, json_get(v, "shape"), t, err) ||
        parse_offsets(f, name, json_get(v, "data_offsets"), s, err))
        return -1;
    if (s->end - s->begin != t->nbytes) {
        char sh[256];
        return gk_fail(err, GK_EINPUT, "%s: tensor '%s': byte size %zu does not match shape %s x %s (%zu bytes)",
                       f->path, name, s->end - s->begin, st_shape_str(sh, sizeof sh, t->ndim, t->shape),
                       st_dtype_name(t->dtype), t->nbytes);
    }
    return 0;
}

static int check_metadata(const st_file *f, const json_value *v, gk_err *err) {
    if (v->type != JSON_OBJECT)
        return gk_fail(err, GK_EINPUT, "%s: __metadata__ must be an object of strings, not %s", f->path,
                       json_type_name(v->type));
    const char *dup = json_duplicate_key(v);
    if (dup) return gk_fail(err, GK_EINPUT, "%s: __metadata__: duplicate key '%s'", f->path, dup);
    for (size_t i = 0; i < v->count; i++)
        if (v->items[i]->type != JSON_STRING)
            return gk_fail(err, GK_EINPUT, "%s: __metadata__ value of '%s' must be a string, not %s", f->path,
                           v->keys[i], json_type_name(v->items[i]->type));
    return 0;
}

// Sorted by offsets, the ranges must tile [0, data_len) exactly: no gap, no overlap, nothing after.
static int check_tiling(const st_file *f, span *spans, size_t n, size_t data_len, gk_err *err) {
    qsort(spans, n, sizeof *spans, span_cmp);
    size_t end = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = f->tensors[spans[i].index].name;
        if (spans[i].begin > end && i == 0)
            return gk_fail(err, GK_EINPUT, "%s: tensor '%s': data starts at byte %zu; the first tensor must start at 0",
                           f->path, name, spans[i].begin);
        if (spans[i].begin > end)
            return gk_fail(err, GK_EINPUT,
                           "%s: tensor '%s': gap before data_offsets [%zu, %zu] (tensor '%s' ends at %zu)", f->path,
                           name, spans[i].begin, spans[i].end, f->tensors[spans[i - 1].index].name, end);
        if (spans[i].begin < end)
            return gk_fail(err, GK_EINPUT, "%s: tensor '%s': data_offsets [%zu, %zu] overlap tensor '%s' (ends at %zu)",
                           f->path, name, spans[i].begin, spans[i].end, f->tensors[spans[i - 1].index].name, end);
        end = spans[i].end;
    }
    if (end > data_len)
        return gk_fail(err, GK_EINPUT, "%s: truncated: tensors need %zu data bytes but the file holds %zu", f->path,
                       end, data_len);
    if (end < data_len)
        return gk_fail(err, GK_EINPUT, "%s: %zu trailing bytes after the last tensor", f->path, data_len - end);
    return 0;
}

// Fills f->tensors from the parsed header; data begins at data[0..data_len).
static int read_tensors(st_file *f, const json_value *root, const unsigned char *data, size_t data_len, gk_err *err) {
    if (root->type != JSON_OBJECT)
        return gk_fail(err, GK_EINPUT, "%s: header must be a JSON object, not %s", f->path, json_type_name(root->type));
    const char *dup = json_duplicate_key(root);
    if (dup) return gk_fail(err, GK_EINPUT, "%s: duplicate tensor name '%s'", f->path, dup);
    size_t n = 0, string_bytes = 0;
    for (size_t i = 0; i < root->count; i++) {
        if (key_is(root, i, "__metadata__")) {
            if (check_metadata(f, root->items[i], err)) return -1;
            continue;
        }
        if (strlen(root->keys[i]) != root->key_lengths[i])
            return gk_fail(err, GK_EINPUT, "%s: tensor name '%s...' contains a NUL character", f->path, root->keys[i]);
        n++;
        string_bytes += root->key_lengths[i] + 1;
    }
    f->tensors = gk_calloc(n, sizeof *f->tensors, err);
    f->strings = gk_malloc(string_bytes, err);
    span *spans = gk_calloc(n, sizeof *spans, err);
    int rc = f->tensors && f->strings && spans ? 0 : -1;
    char *names = f->strings;
    for (size_t i = 0; i < root->count && rc == 0; i++) {
        if (key_is(root, i, "__metadata__")) continue;
        st_tensor *t = &f->tensors[f->n_tensors];
        memcpy(names, root->keys[i], root->key_lengths[i] + 1);
        t->name = names;
        names += root->key_lengths[i] + 1;
        spans[f->n_tensors].index = f->n_tensors;
        rc = parse_tensor(f, t->name, root->items[i], t, &spans[f->n_tensors], err);
        f->n_tensors++;
    }
    if (rc == 0) rc = check_tiling(f, spans, n, data_len, err);
    for (size_t i = 0; i < n && rc == 0; i++) f->tensors[spans[i].index].data = data + spans[i].begin;
    free(spans);
    return rc;
}

// The 8-byte little-endian header length N, checked against the file size.
static int read_header_len(const st_file *f, size_t *header_len, gk_err *err) {
    if (f->map.size < 8)
        return gk_fail(err, GK_EINPUT, "%s: file is %zu bytes, shorter than the 8-byte header length", f->path,
                       f->map.size);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)f->map.data[i] << (8 * i);
    if (n > ST_MAX_HEADER)
        return gk_fail(err, GK_EINPUT, "%s: header length %llu exceeds the limit of %d bytes", f->path,
                       (unsigned long long)n, ST_MAX_HEADER);
    size_t end;
    if (!gk_add_ok(8, (size_t)n, &end) || end > f->map.size)
        return gk_fail(err, GK_EINPUT, "%s: header length %llu runs past the end of the file (%zu bytes)", f->path,
                       (unsigned long long)n, f->map.size);
    *header_len = (size_t)n;
    return 0;
}

int st_open(const char *path, st_file *f, gk_err *err) {
    memset(f, 0, sizeof *f);
    if (!(f->path = strdup(path))) return gk_fail(err, GK_ENOMEM, "out of memory");
    size_t n = 0;
    int rc = file_map_open(path, &f->map, err);
    if (rc == 0) rc = read_header_len(f, &n, err);
    json_doc doc;
    if (rc == 0 && (rc = json_parse((const char *)f->map.data + 8, n, path, &doc, err)) == 0) {
        rc = read_tensors(f, doc.root, f->map.data + 8 + n, f->map.size - 8 - n, err);
        json_free(&doc);
    }
    if (rc) st_close(f);
    return rc;
}

void st_close(st_file *f) {
    file_map_close(&f->map);
    free(f->path);
    free(f->tensors);
    free(f->strings);
    memset(f, 0, sizeof *f);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (size_t i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

static int convert_f32(const st_file *f, const st_tensor *t, float *dst, gk_err *err) {
    const unsigned char *src = t->data;
    long long n = (long long)t->numel;
    switch (t->dtype) {
    case ST_F32:
        if (n) memcpy(dst, src, (size_t)n * 4);
        return 0;
    case ST_F16:
#pragma omp parallel for if (n >= PARALLEL_MIN) schedule(static)
        for (long long i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2); // may be unaligned
            dst[i] = f16_to_f32(h);
        }
        return 0;
    case ST_BF16:
#pragma omp parallel for if (n >= PARALLEL_MIN) schedule(static)
        for (long long i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = bf16_to_f32(h);
        }
        return 0;
    default:
        return gk_fail(err, GK_EINPUT, "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 convert to float32",
                       f->path, t->name, st_dtype_name(t->dtype));
    }
}

// A tensor's values as float32, in pieces whose file pages leave the resident set
// once converted (loading a model does not hold the file and the weights at once).
int st_to_f32(const st_file *f, const st_tensor *t, float *dst, gk_err *err) {
    enum { PIECE = 1 << 24 }; // elements: 32 - 64 MB of file
    size_t elem = st_dtype_size(t->dtype);
    size_t start = 0;
    do { // once at least: an unknown dtype is an error even for an empty tensor
        st_tensor part = *t; // elements [start, start + part.numel)
        part.numel = t->numel - start < PIECE ? t->numel - start : PIECE;
        part.data = t->data + start * elem;
        if (convert_f32(f, &part, dst + start, err)) return -1;
        file_map_drop(&f->map, part.data, part.numel * elem);
        start += PIECE;
    } while (start < t->numel);
    return 0;
}

// ---------------------------------------------------------------- writer

static int name_cmp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int check_unique_names(const char *path, const st_out_tensor *ts, size_t n, gk_err *err) {
    const char **names = gk_calloc(n, sizeof *names, err);
    if (!names) return -1;
    for (size_t i = 0; i < n; i++) names[i] = ts[i].name;
    qsort(names, n, sizeof *names, name_cmp);
    int rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++)
        if (!strcmp(names[i - 1], names[i]))
            rc = gk_fail(err, GK_EINPUT, "%s: duplicate tensor name '%s'", path, names[i]);
    free(names);
    return rc;
}

// Tensor byte size with checked arithmetic.
static int out_nbytes(const char *path, const st_out_tensor *t, size_t elem, size_t *out, gk_err *err) {
    if (t->ndim < 0 || t->ndim > ST_MAX_DIMS)
        return gk_fail(err, GK_EINPUT, "%s: tensor '%s': %d dimensions (0..%d allowed)", path, t->name, t->ndim,
                       ST_MAX_DIMS);
    if (!strcmp(t->name, "__metadata__"))
        return gk_fail(err, GK_EINPUT, "%s: '__metadata__' is reserved and cannot name a tensor", path);
    size_t n = elem;
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] > (size_t)ST_MAX_VALUE || !gk_mul_ok(n, t->shape[i], &n))
            return gk_fail(err, GK_EINPUT, "%s: tensor '%s': shape too large", path, t->name);
    if (n && !t->data) return gk_fail(err, GK_EINTERNAL, "%s: tensor '%s': no data", path, t->name);
    *out = n;
    return 0;
}

// The JSON header, space-padded so that 8 + length is a multiple of 8.
static int build_header(const char *path, const st_out_tensor *ts, size_t n, st_dtype dtype, strbuf *sb, gk_err *err) {
    sb_puts(sb, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        size_t bytes = 0, end;
        if (out_nbytes(path, &ts[i], st_dtype_size(dtype), &bytes, err)) return -1;
        if (!gk_add_ok(offset, bytes, &end)) return gk_fail(err, GK_EINPUT, "%s: data size overflows", path);
        sb_puts(sb, ",");
        sb_json_string(sb, ts[i].name, strlen(ts[i].name));
        sb_printf(sb, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(dtype));
        for (int d = 0; d < ts[i].ndim; d++) sb_printf(sb, "%s%zu", d ? "," : "", ts[i].shape[d]);
        sb_printf(sb, "],\"data_offsets\":[%zu,%zu]}", offset, end);
        offset = end;
    }
    sb_puts(sb, "}");
    while (!sb->failed && (8 + sb->len) % 8) sb_puts(sb, " ");
    if (sb->failed) return gk_fail(err, GK_ENOMEM, "%s: out of memory building the header", path);
    if (sb->len > ST_MAX_HEADER)
        return gk_fail(err, GK_EINPUT, "%s: header of %zu bytes exceeds the limit of %d", path, sb->len, ST_MAX_HEADER);
    return 0;
}

// Writes t's numel floats as dtype, converting to BF16 chunk by chunk.
static int write_data(atomic_file *af, const st_out_tensor *t, size_t numel, st_dtype dtype, uint16_t *chunk,
                      gk_err *err) {
    if (dtype == ST_F32) {
        if (numel && fwrite(t->data, sizeof(float), numel, af->f) != numel)
            return gk_fail(err, GK_EIO, "%s: write failed: %s", af->path, strerror(errno));
        return 0;
    }
    for (size_t start = 0; start < numel; start += CONVERT_CHUNK) {
        long long m = (long long)(numel - start < CONVERT_CHUNK ? numel - start : CONVERT_CHUNK);
        const float *src = t->data + start;
#pragma omp parallel for if (m >= PARALLEL_MIN) schedule(static)
        for (long long i = 0; i < m; i++) chunk[i] = f32_to_bf16(src[i]);
        if (fwrite(chunk, sizeof *chunk, (size_t)m, af->f) != (size_t)m)
            return gk_fail(err, GK_EIO, "%s: write failed: %s", af->path, strerror(errno));
    }
    return 0;
}

static int write_file(const char *path, const st_out_tensor *ts, size_t n, st_dtype dtype, const strbuf *header,
                      gk_err *err) {
    uint16_t *chunk = dtype == ST_BF16 ? gk_malloc(CONVERT_CHUNK * sizeof *chunk, err) : NULL;
    if (dtype == ST_BF16 && !chunk) return -1;
    atomic_file af;
    if (atomic_file_open(&af, path, err)) {
        free(chunk);
        return -1;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)header->len >> (8 * i));
    int rc = 0;
    if (fwrite(len8, 1, 8, af.f) != 8 || fwrite(header->data, 1, header->len, af.f) != header->len)
        rc = gk_fail(err, GK_EIO, "%s: write failed: %s", path, strerror(errno));
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t numel = 1;
        for (int d = 0; d < ts[i].ndim; d++) numel *= ts[i].shape[d]; // checked in build_header
        rc = write_data(&af, &ts[i], numel, dtype, chunk, err);
    }
    free(chunk);
    if (rc) {
        atomic_file_abort(&af);
        return -1;
    }
    return atomic_file_commit(&af, err);
}

int st_write(const char *path, const st_out_tensor *tensors, size_t n, st_dtype dtype, gk_err *err) {
    if (dtype != ST_F32 && dtype != ST_BF16)
        return gk_fail(err, GK_EINPUT, "%s: cannot write dtype %s (F32 or BF16 only)", path, st_dtype_name(dtype));
    if (check_unique_names(path, tensors, n, err)) return -1;
    strbuf header = {0};
    int rc = build_header(path, tensors, n, dtype, &header, err);
    if (rc == 0) rc = write_file(path, tensors, n, dtype, &header, err);
    sb_free(&header);
    return rc;
}

// safetensors reader/writer: round trips, BF16 rounding, dtype conversions and
// malformed files built byte by byte (formats.md section 1.4).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/rng.h"
#include "model/safetensors.h"
#include "tests/check.h"
#include "tests/fixtures.h"

const char *test_program = "test_safetensors";

// ---------------------------------------------------------------- helpers

typedef struct {
    char dir[64];
    char path[128]; // dir/t.safetensors
} scratch;

static int scratch_open(test_case *tc, scratch *s) {
    if (test_scratch_dir(tc, "st", s->dir, sizeof s->dir)) return -1;
    snprintf(s->path, sizeof s->path, "%s/t.safetensors", s->dir);
    return 0;
}

static void scratch_close(scratch *s) {
    gk_err err;
    dir_remove_tree(s->dir, &err);
}

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static int write_raw(const char *path, const void *bytes, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = len ? fwrite(bytes, 1, len, f) : 0;
    return fclose(f) == 0 && n == len ? 0 : -1;
}

// Writes [u64 header_len][header][data] where header_len defaults to strlen(header).
static int write_st(const char *path, uint64_t header_len, const char *header, const void *data, size_t data_len) {
    size_t hl = strlen(header), total = 8 + hl + data_len;
    unsigned char *buf = malloc(total);
    if (!buf) return -1;
    put_u64(buf, header_len == UINT64_MAX ? hl : header_len);
    memcpy(buf + 8, header, hl);
    for (size_t i = 0; i < data_len; i++) buf[8 + hl + i] = data ? ((const unsigned char *)data)[i] : (unsigned char)i;
    int rc = write_raw(path, buf, total);
    free(buf);
    return rc;
}

// Whether /proc/self/maps still maps `path`.
static int is_mapped(const char *path) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, path) != NULL;
    fclose(f);
    return found;
}

// st_open must fail with a message that starts with the path and holds both needles.
static void expect_open_fails(test_case *tc, const char *path, const char *needle1, const char *needle2) {
    st_file f;
    gk_err err = {0};
    int rc = st_open(path, &f, &err);
    CHECK(tc, rc == -1, "%s was accepted (expected a message with '%s')", path, needle1);
    if (rc == 0) {
        st_close(&f);
        return;
    }
    CHECK(tc, err.code == GK_EINPUT, "code %d for: %s", err.code, err.msg);
    CHECK(tc, strncmp(err.msg, path, strlen(path)) == 0, "message does not start with the path: %s", err.msg);
    CHECK(tc, strstr(err.msg, needle1), "message lacks '%s': %s", needle1, err.msg);
    CHECK(tc, !needle2 || strstr(err.msg, needle2), "message lacks '%s': %s", needle2, err.msg);
    CHECK(tc, !f.map.data && !f.tensors && !f.strings && !f.path, "st_file not cleared after an error");
    CHECK(tc, !is_mapped(path), "file still mapped after an error");
}

// Builds a file from header + data_len bytes and expects rejection.
static void reject(test_case *tc, uint64_t header_len, const char *header, size_t data_len, const char *needle1,
                   const char *needle2) {
    scratch s;
    if (scratch_open(tc, &s)) return;
    CHECK(tc, write_st(s.path, header_len, header, NULL, data_len) == 0, "cannot write test file");
    expect_open_fails(tc, s.path, needle1, needle2);
    scratch_close(&s);
}

#define T16(name, b, e) "\"" name "\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[" #b "," #e "]}"

// ---------------------------------------------------------------- malformed files

static void short_file(test_case *tc) {
    scratch s;
    if (scratch_open(tc, &s)) return;
    CHECK(tc, write_raw(s.path, "\x02\0\0\0\0", 5) == 0, "write");
    expect_open_fails(tc, s.path, "5 bytes", "shorter than");
    scratch_close(&s);
}

static void header_too_large(test_case *tc) { reject(tc, 100000001, "{}", 0, "100000001", "exceeds the limit"); }
static void header_past_eof(test_case *tc) { reject(tc, 1000, "{}      ", 4, "1000", "past the end"); }
static void invalid_utf8(test_case *tc) { reject(tc, UINT64_MAX, "{\"a\xff\":1}", 0, "UTF-8", NULL); }
static void invalid_json(test_case *tc) {
    reject(tc, UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",", 0, "invalid JSON", NULL);
}
static void not_an_object(test_case *tc) { reject(tc, UINT64_MAX, "[]", 0, "must be a JSON object", NULL); }

static void unknown_dtype(test_case *tc) {
    reject(tc, UINT64_MAX, "{\"w\":{\"dtype\":\"F7\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, "tensor 'w'", "'F7'");
}

static void gap(test_case *tc) {
    reject(tc, UINT64_MAX, "{" T16("a", 0, 16) "," T16("b", 20, 36) "}", 36, "tensor 'b'", "gap");
}
static void overlap(test_case *tc) {
    reject(tc, UINT64_MAX, "{" T16("a", 0, 16) "," T16("b", 8, 24) "}", 24, "tensor 'b'", "overlap");
}
static void first_not_at_zero(test_case *tc) {
    reject(tc, UINT64_MAX, "{" T16("a", 4, 20) "}", 20, "tensor 'a'", "start at 0");
}

static void byte_count_mismatch(test_case *tc) {
    reject(tc, UINT64_MAX, "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}", 12,
           "tensor 'model.norm.weight': byte size 12 does not match shape [4] x F32 (16 bytes)", NULL);
}

static void trailing_garbage(test_case *tc) {
    reject(tc, UINT64_MAX, "{" T16("a", 0, 16) "}", 20, "4 trailing bytes", NULL);
}
static void truncated_data(test_case *tc) { reject(tc, UINT64_MAX, "{" T16("a", 0, 16) "}", 10, "truncated", "16"); }

static void duplicate_name(test_case *tc) {
    reject(tc, UINT64_MAX, "{" T16("a", 0, 16) "," T16("a", 16, 32) "}", 32, "duplicate tensor name 'a'", NULL);
}

static void shape_overflow(test_case *tc) {
    reject(tc, UINT64_MAX,
           "{\"big\":{\"dtype\":\"U8\",\"shape\":[281474976710655,281474976710655],\"data_offsets\":[0,1]}}", 1,
           "tensor 'big'", "overflow");
}

static void byte_size_overflow(test_case *tc) { // numel 2^62 fits, 2^62 x 8 bytes does not
    reject(tc, UINT64_MAX, "{\"big\":{\"dtype\":\"F64\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,8]}}", 8,
           "tensor 'big'", "overflow");
}

static void shape_entry_too_large(test_case *tc) {
    reject(tc, UINT64_MAX, "{\"w\":{\"dtype\":\"U8\",\"shape\":[281474976710656],\"data_offsets\":[0,1]}}", 1,
           "tensor 'w'", "shape[0]");
}

static void negative_shape(test_case *tc) {
    reject(tc, UINT64_MAX, "{\"w\":{\"dtype\":\"U8\",\"shape\":[2,-1],\"data_offsets\":[0,0]}}", 0, "tensor 'w'",
           "shape[1]");
}

static void too_many_dims(test_case *tc) {
    reject(tc, UINT64_MAX, "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
           "tensor 'w'", "9 dimensions");
}

static void end_before_begin(test_case *tc) {
    reject(tc, UINT64_MAX, "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, "tensor 'w'",
           "before begin");
}

static void metadata_not_string(test_case *tc) {
    reject(tc, UINT64_MAX, "{\"__metadata__\":{\"format\":\"pt\",\"step\":5}}", 0, "__metadata__", "'step'");
}

static void metadata_not_object(test_case *tc) {
    reject(tc, UINT64_MAX, "{\"__metadata__\":[\"pt\"]}", 0, "__metadata__", "object");
}

static void extra_key(test_case *tc) {
    reject(tc, UINT64_MAX, "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"offset\":0}}", 1,
           "tensor 'w'", "unexpected key 'offset'");
}

static void missing_key(test_case *tc) {
    reject(tc, UINT64_MAX, "{\"w\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, "tensor 'w'", "'data_offsets' is missing");
}

static void entry_not_object(test_case *tc) { reject(tc, UINT64_MAX, "{\"w\":[0,1]}", 1, "tensor 'w'", "object"); }

// ---------------------------------------------------------------- valid hand-built files

// Leading/trailing header whitespace, an empty tensor, a 0-rank tensor and an unaligned F32 tensor.
static void valid_hand_built(test_case *tc) {
    scratch s;
    if (scratch_open(tc, &s)) return;
    const char *header = "  \n{\"__metadata__\":{\"format\":\"pt\"},"
                         "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[2,10]},"
                         "\"empty\":{\"dtype\":\"F16\",\"shape\":[3,0],\"data_offsets\":[10,10]},"
                         "\"s\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[0,2]}}     ";
    // s = bf16 0x3FC0 (1.5); w = {1.5f = 0x3FC00000, -2.0f = 0xC0000000} at data offset 2 (unaligned).
    const unsigned char data[10] = {0xC0, 0x3F, 0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x00, 0xC0};
    CHECK(tc, write_st(s.path, UINT64_MAX, header, data, sizeof data) == 0, "write");
    st_file f;
    gk_err err = {0};
    CHECK(tc, st_open(s.path, &f, &err) == 0, "rejected: %s", err.msg);
    if (!tc->failed) {
        CHECK(tc, f.n_tensors == 3, "n_tensors %zu", f.n_tensors);
        CHECK(tc, is_mapped(s.path), "is_mapped() does not see an open file");
        const st_tensor *w = st_find(&f, "w"), *e = st_find(&f, "empty"), *sc = st_find(&f, "s");
        CHECK(tc, w && e && sc && !st_find(&f, "__metadata__"), "tensors not found");
        if (w && e && sc) {
            CHECK(tc, w == &f.tensors[0] && sc == &f.tensors[2], "tensors not in header order");
            CHECK(tc, e->ndim == 2 && e->shape[0] == 3 && e->shape[1] == 0 && e->numel == 0 && e->nbytes == 0, "empty");
            CHECK(tc, sc->ndim == 0 && sc->numel == 1 && sc->nbytes == 2 && sc->dtype == ST_BF16, "scalar");
            float wv[2] = {0}, sv = 0;
            CHECK(tc, st_to_f32(&f, w, wv, &err) == 0 && wv[0] == 1.5f && wv[1] == -2.0f, "w = %g %g", wv[0], wv[1]);
            CHECK(tc, st_to_f32(&f, sc, &sv, &err) == 0 && sv == 1.5f, "s = %g", sv);
            CHECK(tc, st_to_f32(&f, e, NULL, &err) == 0, "empty conversion failed");
        }
        st_close(&f);
    }
    scratch_close(&s);
}

static void empty_file_of_tensors(test_case *tc) { // tensor.rs test_empty: "{}" + 6 spaces
    scratch s;
    if (scratch_open(tc, &s)) return;
    CHECK(tc, write_st(s.path, UINT64_MAX, "{}      ", NULL, 0) == 0, "write");
    st_file f;
    gk_err err = {0};
    CHECK(tc, st_open(s.path, &f, &err) == 0, "rejected: %s", err.msg);
    if (!tc->failed) {
        CHECK(tc, f.n_tensors == 0, "n_tensors %zu", f.n_tensors);
        st_close(&f);
    }
    scratch_close(&s);
}

// Independent decoders from the IEEE field definitions.
static float ref_f16(uint16_t h) {
    int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
    double v = exp == 0 ? ldexp(mant, -24) : exp == 31 ? (mant ? NAN : INFINITY) : ldexp(1024 + mant, exp - 25);
    return (float)(sign ? -v : v);
}

static float ref_bf16(uint16_t h) {
    int sign = h >> 15, exp = (h >> 7) & 255, mant = h & 127;
    double v = exp == 0 ? ldexp(mant, -133) : exp == 255 ? (mant ? NAN : INFINITY) : ldexp(128 + mant, exp - 134);
    return (float)(sign ? -v : v);
}

static int same_float(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return a == b && signbit(a) == signbit(b);
}

// All 65536 bit patterns of dtype at an odd data offset (unaligned).
static void convert_all_patterns(test_case *tc, const char *dtype, float (*ref)(uint16_t)) {
    scratch s;
    if (scratch_open(tc, &s)) return;
    char header[256];
    snprintf(header, sizeof header,
             "{\"pad\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
             "\"x\":{\"dtype\":\"%s\",\"shape\":[256,256],\"data_offsets\":[1,131073]}}",
             dtype);
    unsigned char *data = malloc(131073);
    float *out = malloc(65536 * sizeof *out);
    if (!data || !out) abort();
    data[0] = 0;
    for (int i = 0; i < 65536; i++) { // little-endian pattern i
        data[1 + 2 * i] = (unsigned char)(i & 0xFF);
        data[2 + 2 * i] = (unsigned char)(i >> 8);
    }
    CHECK(tc, write_st(s.path, UINT64_MAX, header, data, 131073) == 0, "write");
    st_file f;
    gk_err err = {0};
    CHECK(tc, st_open(s.path, &f, &err) == 0, "rejected: %s", err.msg);
    if (!tc->failed) {
        const st_tensor *x = st_find(&f, "x");
        CHECK(tc, st_to_f32(&f, x, out, &err) == 0, "%s", err.msg);
        for (int i = 0; i < 65536 && !tc->failed; i++)
            CHECK(tc, same_float(out[i], ref((uint16_t)i)), "%s 0x%04x -> %a, expected %a", dtype, i, out[i],
                  ref((uint16_t)i));
        st_close(&f);
    }
    free(data);
    free(out);
    scratch_close(&s);
}

static void f16_to_f32_all(test_case *tc) { convert_all_patterns(tc, "F16", ref_f16); }
static void bf16_to_f32_all(test_case *tc) { convert_all_patterns(tc, "BF16", ref_bf16); }

static void to_f32_rejects_int(test_case *tc) {
    scratch s;
    if (scratch_open(tc, &s)) return;
    CHECK(tc,
          write_st(s.path, UINT64_MAX, "{\"ids\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", NULL, 8) ==
              0,
          "write");
    st_file f;
    gk_err err = {0};
    CHECK(tc, st_open(s.path, &f, &err) == 0, "rejected: %s", err.msg);
    if (!tc->failed) {
        float out[2];
        CHECK(tc, st_to_f32(&f, &f.tensors[0], out, &err) == -1, "I32 converted");
        CHECK(tc, strstr(err.msg, s.path) && strstr(err.msg, "'ids'") && strstr(err.msg, "I32"), "msg: %s", err.msg);
        st_close(&f);
    }
    scratch_close(&s);
}

// ---------------------------------------------------------------- writer

static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

// Checks the header framing of a written file; returns the data offset 8 + N.
static size_t check_framing(test_case *tc, const char *bytes, size_t len, size_t data_bytes) {
    CHECK(tc, len >= 8, "file too short");
    if (len < 8) return 0;
    size_t n = (size_t)get_u64((const unsigned char *)bytes), end = 8 + n;
    CHECK(tc, len == 8 + n + data_bytes, "file is %zu bytes, expected %zu", len, 8 + n + data_bytes);
    if (tc->failed) return 0;
    CHECK(tc, bytes[8] == '{', "header starts with 0x%02x", bytes[8]);
    CHECK(tc, (8 + n) % 8 == 0, "data offset %zu is not a multiple of 8", 8 + n);
    while (end > 8 && bytes[end - 1] == ' ') end--;
    CHECK(tc, bytes[end - 1] == '}' && 8 + n - end < 8, "header not padded with < 8 trailing spaces");
    CHECK(tc, memmem(bytes + 8, n, "\"__metadata__\":{\"format\":\"pt\"}", 30), "no __metadata__ format pt");
    return 8 + n;
}

static void write_f32_roundtrip(test_case *tc) {
    scratch s;
    if (scratch_open(tc, &s)) return;
    rng_state r;
    rng_seed(&r, 7);
    float a[15], b[7], scalar = 3.25f; // a [3, 5], b [7]
    for (int i = 0; i < 15; i++) a[i] = (float)rng_normal(&r);
    for (int i = 0; i < 7; i++) b[i] = (float)rng_normal(&r);
    const st_out_tensor ts[4] = {
        {"layer.a", 2, {3, 5}, a}, {"scalar", 0, {0}, &scalar}, {"empty", 2, {0, 4}, NULL}, {"b\"q\\", 1, {7}, b}};
    gk_err err = {0};
    CHECK(tc, st_write(s.path, ts, 4, ST_F32, &err) == 0, "write: %s", err.msg);
    char *bytes = NULL;
    size_t len = 0;
    CHECK(tc, file_read_all(s.path, &bytes, &len, &err) == 0, "read: %s", err.msg);
    size_t data_at = tc->failed ? 0 : check_framing(tc, bytes, len, (15 + 1 + 7) * 4);
    st_file f;
    CHECK(tc, !tc->failed && st_open(s.path, &f, &err) == 0, "reopen: %s", err.msg);
    if (!tc->failed) {
        CHECK(tc, f.n_tensors == 4, "n_tensors %zu", f.n_tensors);
        size_t offset = data_at;
        for (size_t i = 0; i < 4 && !tc->failed; i++) {
            const st_tensor *t = &f.tensors[i];
            CHECK(tc, !strcmp(t->name, ts[i].name) && t->dtype == ST_F32 && t->ndim == ts[i].ndim, "tensor %zu", i);
            for (int d = 0; d < t->ndim; d++) CHECK(tc, t->shape[d] == ts[i].shape[d], "shape of %s", t->name);
            CHECK(tc, t->data == f.map.data + offset, "%s not packed in order", t->name);
            CHECK(tc, !t->nbytes || !memcmp(t->data, ts[i].data, t->nbytes), "%s data differs", t->name);
            offset += t->nbytes;
        }
        st_close(&f);
    }
    free(bytes);
    scratch_close(&s);
}

// Round to nearest even on the bit pattern: keep the high half, add one when
// the low half is above 0x8000, or exactly 0x8000 with an odd high half.
static uint16_t ref_round_bf16(uint32_t u) {
    uint32_t hi = u >> 16, lo = u & 0xFFFF;
    if (lo > 0x8000 || (lo == 0x8000 && (hi & 1))) hi++;
    return (uint16_t)hi;
}

static void write_bf16_rounding(test_case *tc) {
    scratch s;
    if (scratch_open(tc, &s)) return;
    // ties to even (down, up), just above a tie, overflow to inf, inf, -0, subnormal ties, NaNs (a signalling
    // NaN whose low half would round it to inf), and max/min normals.
    static const uint32_t specials[] = {0x3F808000, 0x3F818000, 0x3F808001, 0x7F7FFFFF, 0x7F800000, 0xFF800000,
                                        0x80000000, 0x00018000, 0x00008000, 0x7FC00000, 0x7F800001, 0xFF800001,
                                        0x7F7F0000, 0x00800000, 0xBF7FFFFF, 0x3F7F8000};
    size_t n_special = sizeof specials / sizeof specials[0], n = (1u << 20) + 37; // crosses the writer's chunk size
    float *x = malloc(n * sizeof *x), *back = malloc(n * sizeof *back);
    if (!x || !back) abort();
    rng_state r;
    rng_seed(&r, 11);
    for (size_t i = 0; i < n; i++) {
        uint32_t u = i < n_special ? specials[i] : (uint32_t)rng_next(&r);
        memcpy(&x[i], &u, 4);
    }
    st_out_tensor t = {"x", 2, {1, n}, x};
    gk_err err = {0};
    CHECK(tc, st_write(s.path, &t, 1, ST_BF16, &err) == 0, "write: %s", err.msg);
    char *bytes = NULL;
    size_t len = 0;
    CHECK(tc, !tc->failed && file_read_all(s.path, &bytes, &len, &err) == 0, "read: %s", err.msg);
    size_t data_at = tc->failed ? 0 : check_framing(tc, bytes, len, 2 * n);
    for (size_t i = 0; i < n && !tc->failed; i++) {
        const unsigned char *p = (const unsigned char *)bytes + data_at + 2 * i;
        uint16_t got = (uint16_t)(p[0] | p[1] << 8);
        uint32_t u;
        memcpy(&u, &x[i], 4);
        if (isnan(x[i]))
            CHECK(tc, (got & 0x7F80) == 0x7F80 && (got & 0x7F) && (got >> 15) == (u >> 31), "NaN 0x%08x -> 0x%04x", u,
                  got);
        else CHECK(tc, got == ref_round_bf16(u), "0x%08x -> 0x%04x, expected 0x%04x", u, got, ref_round_bf16(u));
    }
    st_file f;
    CHECK(tc, !tc->failed && st_open(s.path, &f, &err) == 0, "reopen: %s", err.msg);
    if (!tc->failed) {
        CHECK(tc, f.tensors[0].dtype == ST_BF16 && f.tensors[0].shape[1] == n, "dtype/shape");
        CHECK(tc, st_to_f32(&f, &f.tensors[0], back, &err) == 0, "%s", err.msg);
        for (size_t i = 0; i < n && !tc->failed; i++) {
            uint32_t u, v;
            memcpy(&u, &x[i], 4);
            memcpy(&v, &back[i], 4);
            CHECK(tc, isnan(x[i]) ? isnan(back[i]) : v == (uint32_t)ref_round_bf16(u) << 16, "value %zu", i);
        }
        st_close(&f);
    }
    free(bytes);
    free(x);
    free(back);
    scratch_close(&s);
}

static void write_no_tensors(test_case *tc) {
    scratch s;
    if (scratch_open(tc, &s)) return;
    gk_err err = {0};
    st_file f;
    CHECK(tc, st_write(s.path, NULL, 0, ST_BF16, &err) == 0, "write: %s", err.msg);
    CHECK(tc, !tc->failed && st_open(s.path, &f, &err) == 0, "reopen: %s", err.msg);
    if (!tc->failed) {
        CHECK(tc, f.n_tensors == 0, "n_tensors %zu", f.n_tensors);
        st_close(&f);
    }
    scratch_close(&s);
}

// A failed write leaves no file (final or temporary) and an earlier file intact.
static void write_rejects(test_case *tc) {
    scratch s;
    if (scratch_open(tc, &s)) return;
    float v[2] = {1, 2};
    st_out_tensor dup[3] = {{"a", 1, {1}, v}, {"b", 1, {1}, v + 1}, {"a", 1, {2}, v}};
    gk_err err = {0};
    CHECK(tc, st_write(s.path, dup, 2, ST_F16, &err) == -1 && strstr(err.msg, "F16"), "F16 accepted: %s", err.msg);
    CHECK(tc, st_write(s.path, dup, 3, ST_F32, &err) == -1 && strstr(err.msg, "duplicate tensor name 'a'"),
          "duplicate accepted: %s", err.msg);
    st_out_tensor reserved = {"__metadata__", 1, {1}, v};
    CHECK(tc, st_write(s.path, &reserved, 1, ST_F32, &err) == -1 && strstr(err.msg, "__metadata__"), "reserved name");
    CHECK(tc, dir_entry_count(s.dir) == 0, "a failed write left %d files", dir_entry_count(s.dir));
    CHECK(tc, st_write(s.path, dup, 2, ST_F32, &err) == 0, "valid write: %s", err.msg);
    CHECK(tc, st_write(s.path, dup, 3, ST_BF16, &err) == -1, "duplicate accepted");
    st_file f;
    CHECK(tc, st_open(s.path, &f, &err) == 0, "earlier file damaged: %s", err.msg);
    if (!tc->failed) {
        CHECK(tc, f.n_tensors == 2 && f.tensors[0].dtype == ST_F32, "earlier file changed");
        st_close(&f);
    }
    CHECK(tc, dir_entry_count(s.dir) == 1, "%d files after a failed overwrite", dir_entry_count(s.dir));
    char missing[160];
    snprintf(missing, sizeof missing, "%s/no/such/dir.safetensors", s.dir);
    CHECK(tc, st_write(missing, dup, 2, ST_F32, &err) == -1 && strstr(err.msg, missing), "bad dir: %s", err.msg);
    scratch_close(&s);
}

int main(void) {
    test_run("short_file", short_file);
    test_run("header_too_large", header_too_large);
    test_run("header_past_eof", header_past_eof);
    test_run("invalid_utf8", invalid_utf8);
    test_run("invalid_json", invalid_json);
    test_run("not_an_object", not_an_object);
    test_run("unknown_dtype", unknown_dtype);
    test_run("gap", gap);
    test_run("overlap", overlap);
    test_run("first_not_at_zero", first_not_at_zero);
    test_run("byte_count_mismatch", byte_count_mismatch);
    test_run("trailing_garbage", trailing_garbage);
    test_run("truncated_data", truncated_data);
    test_run("duplicate_name", duplicate_name);
    test_run("shape_overflow", shape_overflow);
    test_run("byte_size_overflow", byte_size_overflow);
    test_run("shape_entry_too_large", shape_entry_too_large);
    test_run("negative_shape", negative_shape);
    test_run("too_many_dims", too_many_dims);
    test_run("end_before_begin", end_before_begin);
    test_run("metadata_not_string", metadata_not_string);
    test_run("metadata_not_object", metadata_not_object);
    test_run("extra_key", extra_key);
    test_run("missing_key", missing_key);
    test_run("entry_not_object", entry_not_object);
    test_run("valid_hand_built", valid_hand_built);
    test_run("empty_file_of_tensors", empty_file_of_tensors);
    test_run("f16_to_f32_all", f16_to_f32_all);
    test_run("bf16_to_f32_all", bf16_to_f32_all);
    test_run("to_f32_rejects_int", to_f32_rejects_int);
    test_run("write_f32_roundtrip", write_f32_roundtrip);
    test_run("write_bf16_rounding", write_bf16_rounding);
    test_run("write_no_tensors", write_no_tensors);
    test_run("write_rejects", write_rejects);
    return test_main_result();
}

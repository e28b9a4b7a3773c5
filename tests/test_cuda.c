// The GPU's kernels against the CPU float32 ones (GPU builds only; every case
// is skipped, with the reason, where no CUDA device can be used). Inputs are
// rounded to bf16 on the host so that both sides start from the same values;
// the tolerances are what bf16 storage of the outputs allows.
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "model/cuda/cuda.h"
#include "model/gemma2.h"
#include "model/kernels.h"
#include "tests/check.h"

const char *test_program = "test_cuda";

static char no_device[256]; // why the cases are skipped ("" when a device is there)

#define NEEDS_GPU(tc)                                                                                               \
    do {                                                                                                            \
        if (no_device[0]) {                                                                                         \
            SKIP(tc, "%s", no_device);                                                                              \
            return;                                                                                                 \
        }                                                                                                           \
    } while (0)

// Nearest bf16 value (ties to even), as __float2bfloat16 rounds.
static float bf16_value(float x) { return bf16_load(bf16_round(x)); }

// A tensor on both sides: host float values (bf16-representable) and the device bf16 copy.
typedef struct {
    float *host;
    gk_bf16 *dev;
    size_t n;
} tensor;

// host[i] = bf16(fill(seed, i) * scale) (0 when scale is 0), uploaded.
static tensor tensor_random(size_t n, double scale, uint64_t seed) {
    tensor t = {calloc(n ? n : 1, sizeof(float)), buffer_alloc_cuda((n ? n : 1) * sizeof(gk_bf16), NULL), n};
    GK_ASSERT(t.host && t.dev);
    for (size_t i = 0; scale != 0 && i < n; i++) t.host[i] = bf16_value((float)(scale * hash_normal(seed, i)));
    GK_ASSERT(gk_cuda_upload_bf16(t.dev, t.host, n, NULL) == 0);
    return t;
}

static tensor tensor_zero(size_t n) { return tensor_random(n, 0, 0); }

// The device values, as floats (malloc'd).
static float *tensor_fetch(const tensor *t) {
    float *out = malloc((t->n ? t->n : 1) * sizeof *out);
    GK_ASSERT(gk_cuda_download_bf16(out, t->dev, t->n, NULL) == 0);
    return out;
}

static void tensor_free(tensor *t) {
    free(t->host);
    buffer_free_cuda(t->dev);
}

// A device float array and a host float array of n values.
typedef struct {
    float *host, *dev;
    size_t n;
} floats;

static floats floats_zero(size_t n) {
    floats f = {calloc(n ? n : 1, sizeof(float)), buffer_alloc_cuda((n ? n : 1) * sizeof(float), NULL), n};
    GK_ASSERT(f.host && f.dev);
    buffer_zero_cuda(f.dev, n * sizeof(float));
    return f;
}

static float *floats_fetch(const floats *f) {
    float *out = malloc((f->n ? f->n : 1) * sizeof *out);
    buffer_download_cuda(out, f->dev, f->n * sizeof *out);
    return out;
}

static void floats_free(floats *f) {
    free(f->host);
    buffer_free_cuda(f->dev);
}

static int32_t *ints_upload(const int32_t *host, size_t n) {
    int32_t *d = buffer_alloc_cuda((n ? n : 1) * sizeof *d, NULL);
    GK_ASSERT(d);
    buffer_upload_cuda(d, host, n * sizeof *d);
    return d;
}

// gpu (malloc'd, freed here) against the CPU float32 values.
static void expect_close(test_case *tc, float *gpu, const float *cpu, size_t n, double tol, const char *what) {
    double e = rel_error_f32(gpu, cpu, n);
    CHECK(tc, e <= tol, "%s: GPU differs from CPU float32 by %.3g (relative, tolerance %.3g)", what, e, tol);
    free(gpu);
}

// The GPU's values of t against the CPU's (t.host after the CPU kernel ran).
#define EXPECT_TENSOR(tc, t, tol, what) expect_close(tc, tensor_fetch(&(t)), (t).host, (t).n, tol, what)
#define EXPECT_FLOATS(tc, f, tol, what) expect_close(tc, floats_fetch(&(f)), (f).host, (f).n, tol, what)

static const double BF16_OUT = 1e-2; // one bf16 rounding of the output (2^-8) and float accumulation order

static void matmul(test_case *tc) {
    NEEDS_GPU(tc);
    int n = 37, in = 53, out = 29;
    tensor x = tensor_random((size_t)n * in, 1, 1), w = tensor_random((size_t)out * in, 0.2, 2);
    tensor y = tensor_zero((size_t)n * out), dy = tensor_random((size_t)n * out, 1, 3);
    tensor dx = tensor_random((size_t)n * in, 1, 4), dw = tensor_random((size_t)out * in, 1, 5);
    floats yacc = floats_zero((size_t)n * out);
    matmul_forward_f32(y.host, x.host, w.host, n, in, out);
    matmul_forward_cuda(y.dev, x.dev, w.dev, n, in, out);
    EXPECT_TENSOR(tc, y, BF16_OUT, "matmul_forward");
    matmul_forward_acc_f32(yacc.host, x.host, w.host, n, in, out);
    matmul_forward_acc_cuda(yacc.dev, x.dev, w.dev, n, in, out);
    EXPECT_FLOATS(tc, yacc, 1e-5, "matmul_forward_acc (float output of exact bf16 products)");
    matmul_backward_f32(dx.host, dw.host, dy.host, x.host, w.host, n, in, out, true);
    matmul_backward_cuda(dx.dev, dw.dev, dy.dev, x.dev, w.dev, n, in, out, true);
    EXPECT_TENSOR(tc, dx, BF16_OUT, "matmul_backward dx (accumulated)");
    EXPECT_TENSOR(tc, dw, BF16_OUT, "matmul_backward dw (accumulated)");
    tensor *all[] = {&x, &w, &y, &dy, &dx, &dw};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) tensor_free(all[i]);
    floats_free(&yacc);
}

static void rmsnorm(test_case *tc) {
    NEEDS_GPU(tc);
    int n = 131, d = 72; // more rows than one NORM_CHUNK, d not a multiple of 32
    tensor x = tensor_random((size_t)n * d, 2, 11), w = tensor_random(d, 0.3, 12), y = tensor_zero((size_t)n * d);
    tensor dy = tensor_random((size_t)n * d, 1, 13), dx = tensor_random((size_t)n * d, 1, 14);
    tensor dw = tensor_random(d, 1, 15);
    floats rstd = floats_zero(n), partials = floats_zero((size_t)rmsnorm_partial_rows(n) * d);
    rmsnorm_forward_f32(y.host, rstd.host, x.host, w.host, n, d, 1e-6);
    rmsnorm_forward_cuda(y.dev, rstd.dev, x.dev, w.dev, n, d, 1e-6);
    EXPECT_TENSOR(tc, y, BF16_OUT, "rmsnorm_forward y");
    EXPECT_FLOATS(tc, rstd, 1e-5, "rmsnorm_forward rstd");
    // Both backward passes read the same rstd: the CPU's, uploaded.
    buffer_upload_cuda(rstd.dev, rstd.host, (size_t)n * sizeof(float));
    rmsnorm_backward_f32(dx.host, dw.host, dy.host, x.host, w.host, rstd.host, n, d, true, partials.host);
    rmsnorm_backward_cuda(dx.dev, dw.dev, dy.dev, x.dev, w.dev, rstd.dev, n, d, true, partials.dev);
    EXPECT_TENSOR(tc, dx, BF16_OUT, "rmsnorm_backward dx (accumulated)");
    EXPECT_TENSOR(tc, dw, BF16_OUT, "rmsnorm_backward dw (accumulated)");
    tensor *all[] = {&x, &w, &y, &dy, &dx, &dw};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) tensor_free(all[i]);
    floats_free(&rstd);
    floats_free(&partials);
}

static void rope(test_case *tc) {
    NEEDS_GPU(tc);
    int T = 40, n = 50, heads = 3, hd = 16;
    floats cos_t = floats_zero((size_t)T * hd / 2), sin_t = floats_zero((size_t)T * hd / 2);
    rope_tables_f32(cos_t.host, sin_t.host, T, hd, 10000); // rope_tables_cuda uploads these same tables
    rope_tables_cuda(cos_t.dev, sin_t.dev, T, hd, 10000);
    int32_t pos[50];
    for (int t = 0; t < n; t++) pos[t] = (t * 7) % T;
    int32_t *pos_dev = ints_upload(pos, n);
    for (int inverse = 0; inverse <= 1; inverse++) {
        tensor x = tensor_random((size_t)n * heads * hd, 1, 20 + inverse);
        rope_apply_f32(x.host, pos, cos_t.host, sin_t.host, n, heads, hd, inverse);
        rope_apply_cuda(x.dev, pos_dev, cos_t.dev, sin_t.dev, n, heads, hd, inverse);
        EXPECT_TENSOR(tc, x, BF16_OUT, inverse ? "rope_apply inverse" : "rope_apply");
        tensor_free(&x);
    }
    buffer_free_cuda(pos_dev);
    floats_free(&cos_t);
    floats_free(&sin_t);
}

static void elementwise(test_case *tc) {
    NEEDS_GPU(tc);
    size_t n = 1000;
    tensor gate = tensor_random(n, 2, 31), up = tensor_random(n, 1, 32), act = tensor_zero(n);
    geglu_forward_f32(act.host, gate.host, up.host, n);
    geglu_forward_cuda(act.dev, gate.dev, up.dev, n);
    EXPECT_TENSOR(tc, act, BF16_OUT, "geglu_forward");
    tensor dact = tensor_random(n, 1, 33), dup = tensor_zero(n);
    geglu_backward_f32(dact.host, dup.host, dact.host, gate.host, up.host, n); // dgate over dact, as backward.c does
    geglu_backward_cuda(dact.dev, dup.dev, dact.dev, gate.dev, up.dev, n);
    EXPECT_TENSOR(tc, dact, BF16_OUT, "geglu_backward dgate");
    EXPECT_TENSOR(tc, dup, BF16_OUT, "geglu_backward dup");
    tensor a = tensor_random(n, 1, 34), b = tensor_random(n, 1, 35), sum = tensor_zero(n);
    add_f32(sum.host, a.host, b.host, n);
    add_cuda(sum.dev, a.dev, b.dev, n);
    EXPECT_TENSOR(tc, sum, BF16_OUT, "add");
    floats z = floats_zero(n);
    for (size_t i = 0; i < n; i++) z.host[i] = (float)(40 * hash_normal(36, i));
    buffer_upload_cuda(z.dev, z.host, n * sizeof(float));
    softcap_forward_f32(z.host, n, 30);
    softcap_forward_cuda(z.dev, n, 30);
    EXPECT_FLOATS(tc, z, 1e-5, "softcap_forward");
    tensor dz = tensor_zero(n);
    floats g = floats_zero(n);
    for (size_t i = 0; i < n; i++) g.host[i] = (float)hash_normal(37, i);
    buffer_upload_cuda(g.dev, g.host, n * sizeof(float));
    softcap_backward_f32(dz.host, g.host, z.host, n, 30);
    softcap_backward_cuda(dz.dev, g.dev, z.dev, n, 30); // float gradient in, bf16 out
    EXPECT_TENSOR(tc, dz, BF16_OUT, "softcap_backward");
    floats_free(&g);
    tensor *all[] = {&gate, &up, &act, &dact, &dup, &a, &b, &sum, &dz};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) tensor_free(all[i]);
    floats_free(&z);
}

static void embedding(test_case *tc) {
    NEEDS_GPU(tc);
    int V = 13, d = 40, n = 90, pad = 12;
    int32_t tokens[90];
    for (int i = 0; i < n; i++) tokens[i] = (int32_t)(hash64(41000 + (uint64_t)i) % (uint64_t)V); // repeats and pads
    int32_t *tokens_dev = ints_upload(tokens, n);
    tensor E = tensor_random((size_t)V * d, 0.2, 42), x = tensor_zero((size_t)n * d);
    embed_forward_f32(x.host, E.host, tokens, n, d);
    embed_forward_cuda(x.dev, E.dev, tokens_dev, n, d);
    // The GPU scales by sqrt(d) rounded to bf16 (as transformers in bf16), the CPU by the float32 value.
    EXPECT_TENSOR(tc, x, BF16_OUT, "embed_forward");
    tensor dx = tensor_random((size_t)n * d, 1, 43), dE = tensor_random((size_t)V * d, 1, 44);
    int32_t work[180], *work_dev = buffer_alloc_cuda(sizeof work, NULL);
    embed_backward_f32(dE.host, dx.host, tokens, n, d, pad, work);
    embed_backward_cuda(dE.dev, dx.dev, tokens_dev, n, d, pad, work_dev);
    buffer_free_cuda(work_dev);
    EXPECT_TENSOR(tc, dE, BF16_OUT, "embed_backward (repeated tokens, pad row untouched)");
    buffer_free_cuda(tokens_dev);
    tensor *all[] = {&E, &x, &dx, &dE};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) tensor_free(all[i]);
}

// Attention with GQA, a sliding window or none, packed documents, soft-capping or none.
static void attention_case(test_case *tc, int window, double softcap, const char *what) {
    int B = 2, T = 70, H = 4, KV = 2, hd = 16, N = B * T; // T crosses a 64-query block
    int32_t doc_begin[140];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) doc_begin[b * T + t] = b == 1 && t >= 23 ? (t >= 51 ? 51 : 23) : 0;
    attn_shape s = {.B = B, .T = T, .n_heads = H, .n_kv_heads = KV, .head_dim = hd, .window = window,
                    .scale = 1 / sqrt(16.0), .softcap = softcap, .doc_begin = doc_begin,
                    .n_threads = omp_get_max_threads()};
    attn_shape s_dev = s;
    s_dev.doc_begin = ints_upload(doc_begin, N);
    tensor q = tensor_random((size_t)N * H * hd, 2, 51), k = tensor_random((size_t)N * KV * hd, 2, 52);
    tensor v = tensor_random((size_t)N * KV * hd, 1, 53), out = tensor_zero((size_t)N * H * hd);
    floats lse = floats_zero((size_t)N * H);
    float *scratch = malloc(attention_scratch_f32(&s, true) * sizeof *scratch);
    gk_bf16 *scratch_dev = buffer_alloc_cuda((attention_scratch_cuda(&s_dev, true) + 1) * sizeof(gk_bf16), NULL);
    attention_forward_f32(out.host, lse.host, q.host, k.host, v.host, &s, scratch);
    attention_forward_cuda(out.dev, lse.dev, q.dev, k.dev, v.dev, &s_dev, scratch_dev);
    char name[160];
    snprintf(name, sizeof name, "attention_forward out, %s", what);
    EXPECT_TENSOR(tc, out, BF16_OUT, name);
    snprintf(name, sizeof name, "attention_forward lse, %s", what);
    EXPECT_FLOATS(tc, lse, 1e-4, name);
    buffer_upload_cuda(lse.dev, lse.host, lse.n * sizeof(float)); // the backward passes read the same lse
    tensor dout = tensor_random((size_t)N * H * hd, 1, 54), dq = tensor_zero((size_t)N * H * hd);
    tensor dk = tensor_zero((size_t)N * KV * hd), dv = tensor_zero((size_t)N * KV * hd);
    attention_backward_f32(dq.host, dk.host, dv.host, dout.host, q.host, k.host, v.host, lse.host, &s, scratch);
    attention_backward_cuda(dq.dev, dk.dev, dv.dev, dout.dev, q.dev, k.dev, v.dev, lse.dev, &s_dev, scratch_dev);
    const char *grads[] = {"dq", "dk", "dv"};
    tensor *g[] = {&dq, &dk, &dv};
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "attention_backward %s, %s", grads[i], what);
        EXPECT_TENSOR(tc, *g[i], 2e-2, name); // P and dS are rounded nowhere, but dout.V and the sums are longer
    }
    free(scratch);
    buffer_free_cuda(scratch_dev);
    buffer_free_cuda((void *)s_dev.doc_begin);
    tensor *all[] = {&q, &k, &v, &out, &dout, &dq, &dk, &dv};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) tensor_free(all[i]);
    floats_free(&lse);
}

static void attention(test_case *tc) {
    NEEDS_GPU(tc);
    attention_case(tc, 0, 50, "global, softcap 50");
    attention_case(tc, 17, 50, "window 17, softcap 50");
    attention_case(tc, 9, 0, "window 9, no softcap");
}

static void attention_cached(test_case *tc) {
    NEEDS_GPU(tc);
    int B = 3, S = 10, H = 4, KV = 2, hd = 16, kvd = KV * hd;
    int32_t pos[3] = {12, -1, 4}; // row 1 idles
    attn_shape s = {.B = B, .T = 1, .n_heads = H, .n_kv_heads = KV, .head_dim = hd, .window = 6,
                    .scale = 0.25, .softcap = 50, .n_threads = 1};
    tensor ck = tensor_random((size_t)B * S * kvd, 2, 61), cv = tensor_random((size_t)B * S * kvd, 1, 62);
    tensor k = tensor_random((size_t)B * kvd, 2, 63), v = tensor_random((size_t)B * kvd, 1, 64);
    int32_t slot_pos[30];
    for (int b = 0; b < B; b++)
        for (int j = 0; j < S; j++) slot_pos[b * S + j] = b == 2 && j > 4 ? -1 : (b == 0 ? j + 3 : j); // ring, empty slots
    int32_t *slot_pos_dev = ints_upload(slot_pos, (size_t)B * S), *pos_dev = ints_upload(pos, B);
    kv_store_f32(ck.host, cv.host, slot_pos, k.host, v.host, pos, B, S, kvd);
    kv_store_cuda(ck.dev, cv.dev, slot_pos_dev, k.dev, v.dev, pos_dev, B, S, kvd);
    EXPECT_TENSOR(tc, ck, 0, "kv_store keys");
    EXPECT_TENSOR(tc, cv, 0, "kv_store values");
    int32_t slot_pos_gpu[30];
    buffer_download_cuda(slot_pos_gpu, slot_pos_dev, sizeof slot_pos_gpu);
    CHECK(tc, memcmp(slot_pos_gpu, slot_pos, sizeof slot_pos) == 0, "kv_store slot positions differ");
    tensor q = tensor_random((size_t)B * H * hd, 2, 65), out = tensor_random((size_t)B * H * hd, 1, 66);
    attention_cached_f32(out.host, q.host, ck.host, cv.host, slot_pos, pos, B, S, &s);
    attention_cached_cuda(out.dev, q.dev, ck.dev, cv.dev, slot_pos_dev, pos_dev, B, S, &s);
    EXPECT_TENSOR(tc, out, BF16_OUT, "attention_cached (window 6, an idle row, empty slots)");
    buffer_free_cuda(slot_pos_dev);
    buffer_free_cuda(pos_dev);
    tensor *all[] = {&ck, &cv, &k, &v, &q, &out};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) tensor_free(all[i]);
}

// A prompt's keys and values into one row's cache at once (prefill), into a ring
// shorter than the prompt (positions share slots: one writer each) and a longer one.
static void kv_store_prompt(test_case *tc) {
    NEEDS_GPU(tc);
    int n = 11, kvd = 40;
    const int rings[] = {4, 16};
    tensor k = tensor_random((size_t)n * kvd, 2, 71), v = tensor_random((size_t)n * kvd, 1, 72);
    for (int r = 0; r < 2; r++) {
        int S = rings[r];
        tensor ck = tensor_random((size_t)S * kvd, 2, 73), cv = tensor_random((size_t)S * kvd, 1, 74);
        int32_t slot_pos[16], slot_pos_gpu[16];
        for (int j = 0; j < S; j++) slot_pos[j] = 100 + j; // an earlier sequence's
        int32_t *slot_pos_dev = ints_upload(slot_pos, (size_t)S);
        kv_store_prompt_f32(ck.host, cv.host, slot_pos, k.host, v.host, n, S, kvd);
        kv_store_prompt_cuda(ck.dev, cv.dev, slot_pos_dev, k.dev, v.dev, n, S, kvd);
        char what[64];
        snprintf(what, sizeof what, "kv_store_prompt keys, %d slots", S);
        EXPECT_TENSOR(tc, ck, 0, what);
        snprintf(what, sizeof what, "kv_store_prompt values, %d slots", S);
        EXPECT_TENSOR(tc, cv, 0, what);
        buffer_download_cuda(slot_pos_gpu, slot_pos_dev, (size_t)S * sizeof *slot_pos);
        CHECK(tc, memcmp(slot_pos_gpu, slot_pos, (size_t)S * sizeof *slot_pos) == 0,
              "kv_store_prompt slot positions differ (%d slots)", S);
        buffer_free_cuda(slot_pos_dev);
        tensor_free(&ck);
        tensor_free(&cv);
    }
    tensor_free(&k);
    tensor_free(&v);
}

// AdamW, SGD and the norm's sum of squares on the GPU against the CPU float32
// kernels, on the same bf16-representable gradients (the whole model's
// training through the model handle is tests/test_backends.c, built into this
// GPU build too).
static void optimizer_kernels(test_case *tc) {
    NEEDS_GPU(tc);
    size_t n = 5000;
    tensor w = tensor_random(n, 1, 60);
    float *master = malloc(n * sizeof *master), *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    memcpy(master, w.host, n * sizeof *master);
    floats master_dev = floats_zero(n), m_dev = floats_zero(n), v_dev = floats_zero(n);
    buffer_upload_cuda(master_dev.dev, master, n * sizeof *master);
    adamw_coeffs c = {1e-2f, 0.1f, 0.9f, 0.95f, 1e-8f, 1e-2f / 0.1f, sqrtf(0.05f)};
    for (int step = 0; step < 3; step++) {
        tensor g = tensor_random(n, 0.01, 70 + step);
        adamw_update_f32(master, master, g.host, m, v, n, &c, 0.5f);
        adamw_update_cuda(master_dev.dev, w.dev, g.dev, m_dev.dev, v_dev.dev, n, &c, 0.5f);
        sgd_update_f32(master, master, g.host, n, 0.1f, 2.0f);
        sgd_update_cuda(master_dev.dev, w.dev, g.dev, n, 0.1f, 2.0f);
        tensor_free(&g);
    }
    float *got = floats_fetch(&master_dev), *wb = tensor_fetch(&w);
    double e = rel_error_f32(got, master, n);
    CHECK(tc, e <= 1e-6, "master weights after 3 AdamW + SGD steps differ by %.3g (relative)", e);
    for (size_t i = 0; i < n; i++) got[i] = bf16_value(got[i]);
    CHECK(tc, memcmp(wb, got, n * sizeof *wb) == 0, "bf16 weights are not the master weights rounded");
    tensor g = tensor_random(n, 1, 80);
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)g.host[i] * g.host[i];
    double ss_gpu = sum_squares_cuda(g.dev, n);
    CHECK(tc, fabs(ss_gpu - ss) <= 1e-12 * ss, "sum of squares: GPU %.17g, CPU %.17g", ss_gpu, ss);
    tensor_free(&g);
    tensor_free(&w);
    free(got), free(wb), free(master), free(m), free(v);
    floats_free(&master_dev), floats_free(&m_dev), floats_free(&v_dev);
}

int main(void) {
    if (gk_cuda_probe(no_device, sizeof no_device) == 0) {
        fprintf(stderr, "test_cuda: on %s\n", no_device);
        no_device[0] = 0;
    }
    test_run("matmul", matmul);
    test_run("rmsnorm", rmsnorm);
    test_run("rope", rope);
    test_run("elementwise", elementwise);
    test_run("embedding", embedding);
    test_run("attention", attention);
    test_run("attention_cached", attention_cached);
    test_run("kv_store_prompt", kv_store_prompt);
    test_run("optimizer_kernels", optimizer_kernels);
    return test_main_result();
}

// Each float32 kernel against its float64 twin (same source, libm exp/tanh
// instead of the fast ones) on random inputs; and the fast exp/tanh against
// libm in double precision.
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "model/cpu/fastmath.h"
#include "model/kernels.h"
#include "tests/check.h"

const char *test_program = "test_kernels";

// A random array in both precisions (the float64 copy holds the float32 values exactly).
typedef struct {
    float *f;
    double *d;
    size_t n;
} pair;

static pair pair_random(size_t n, double scale, uint64_t seed) {
    pair p = {malloc(n * sizeof(float)), malloc(n * sizeof(double)), n};
    for (size_t i = 0; i < n; i++) {
        p.f[i] = (float)(scale * hash_normal(seed, i));
        p.d[i] = p.f[i];
    }
    return p;
}

static pair pair_zero(size_t n) { return (pair){calloc(n, sizeof(float)), calloc(n, sizeof(double)), n}; }

static void pair_free(pair *p) {
    free(p->f);
    free(p->d);
}

// max|f - d| / max|d|
static double pair_error(const pair *p) {
    double num = 0, den = 0;
    for (size_t i = 0; i < p->n; i++) {
        double e = fabs(p->f[i] - p->d[i]);
        if (isnan(e)) return NAN;
        num = fmax(num, e);
        den = fmax(den, fabs(p->d[i]));
    }
    return den > 0 ? num / den : num;
}

#define EXPECT_CLOSE(tc, p, tol, what)                                                                              \
    do {                                                                                                            \
        double _e = pair_error(&(p));                                                                               \
        CHECK(tc, _e <= (tol), "%s: float32 differs from float64 by %.3g (relative)", what, _e);                   \
    } while (0)

static void matmul(test_case *tc) {
    int n = 37, in = 53, out = 29;
    pair x = pair_random((size_t)n * in, 1, 1), w = pair_random((size_t)out * in, 0.2, 2), y = pair_zero((size_t)n * out);
    pair dy = pair_random((size_t)n * out, 1, 3), dx = pair_random((size_t)n * in, 1, 4), dw = pair_random((size_t)out * in, 1, 5);
    matmul_forward_f32(y.f, x.f, w.f, n, in, out);
    matmul_forward_f64(y.d, x.d, w.d, n, in, out);
    EXPECT_CLOSE(tc, y, 1e-6, "matmul_forward");
    matmul_backward_f32(dx.f, dw.f, dy.f, x.f, w.f, n, in, out, true); // dx accumulates onto its start value
    matmul_backward_f64(dx.d, dw.d, dy.d, x.d, w.d, n, in, out, true);
    EXPECT_CLOSE(tc, dx, 1e-6, "matmul_backward dx");
    EXPECT_CLOSE(tc, dw, 1e-6, "matmul_backward dw");
    pair *all[] = {&x, &w, &y, &dy, &dx, &dw};
    for (int i = 0; i < 6; i++) pair_free(all[i]);
}

static void rmsnorm(test_case *tc) {
    int n = 150, d = 72; // more than two NORM_CHUNKs of tokens
    pair x = pair_random((size_t)n * d, 3, 6), w = pair_random((size_t)d, 0.5, 7), y = pair_zero((size_t)n * d);
    pair r = pair_zero((size_t)n), dy = pair_random((size_t)n * d, 1, 8), dx = pair_random((size_t)n * d, 1, 9);
    pair dw = pair_random((size_t)d, 1, 10), part = pair_zero((size_t)rmsnorm_partial_rows(n) * d);
    rmsnorm_forward_f32(y.f, r.f, x.f, w.f, n, d, 1e-6);
    rmsnorm_forward_f64(y.d, r.d, x.d, w.d, n, d, 1e-6);
    EXPECT_CLOSE(tc, y, 1e-6, "rmsnorm_forward");
    EXPECT_CLOSE(tc, r, 1e-6, "rmsnorm rstd");
    rmsnorm_backward_f32(dx.f, dw.f, dy.f, x.f, w.f, r.f, n, d, true, part.f);
    rmsnorm_backward_f64(dx.d, dw.d, dy.d, x.d, w.d, r.d, n, d, true, part.d);
    EXPECT_CLOSE(tc, dx, 1e-5, "rmsnorm_backward dx");
    EXPECT_CLOSE(tc, dw, 1e-5, "rmsnorm_backward dw");
    pair *all[] = {&x, &w, &y, &r, &dy, &dx, &dw, &part};
    for (int i = 0; i < 8; i++) pair_free(all[i]);
}

static void rope(test_case *tc) {
    int n = 300, heads = 3, hd = 32, T = 300;
    pair x = pair_random((size_t)n * heads * hd, 1, 11), c = pair_zero((size_t)T * hd / 2), s = pair_zero((size_t)T * hd / 2);
    int32_t *pos = malloc(n * sizeof *pos);
    for (int t = 0; t < n; t++) pos[t] = t < 100 ? t : t - 100; // a second document from t = 100
    rope_tables_f32(c.f, s.f, T, hd, 10000);
    rope_tables_f64(c.d, s.d, T, hd, 10000);
    EXPECT_CLOSE(tc, c, 1e-5, "rope cos table");
    EXPECT_CLOSE(tc, s, 1e-5, "rope sin table");
    pair orig = pair_zero(x.n);
    memcpy(orig.f, x.f, x.n * sizeof(float));
    memcpy(orig.d, x.d, x.n * sizeof(double));
    rope_apply_f32(x.f, pos, c.f, s.f, n, heads, hd, false);
    rope_apply_f64(x.d, pos, c.d, s.d, n, heads, hd, false);
    EXPECT_CLOSE(tc, x, 1e-5, "rope forward");
    rope_apply_f64(x.d, pos, c.d, s.d, n, heads, hd, true); // the inverse undoes the rotation
    for (size_t i = 0; i < x.n; i++) x.d[i] -= orig.d[i];
    double worst = 0;
    for (size_t i = 0; i < x.n; i++) worst = fmax(worst, fabs(x.d[i]));
    CHECK(tc, worst < 1e-12, "rope inverse leaves %.3g", worst);
    pair *all[] = {&x, &c, &s, &orig};
    for (int i = 0; i < 4; i++) pair_free(all[i]);
    free(pos);
}

static void geglu_softcap_embed(test_case *tc) {
    size_t n = 5000;
    pair g = pair_random(n, 2, 12), u = pair_random(n, 1, 13), act = pair_zero(n), dact = pair_random(n, 1, 14);
    pair dg = pair_zero(n), du = pair_zero(n);
    geglu_forward_f32(act.f, g.f, u.f, n);
    geglu_forward_f64(act.d, g.d, u.d, n);
    EXPECT_CLOSE(tc, act, 1e-6, "geglu_forward");
    geglu_backward_f32(dg.f, du.f, dact.f, g.f, u.f, n);
    geglu_backward_f64(dg.d, du.d, dact.d, g.d, u.d, n);
    EXPECT_CLOSE(tc, dg, 1e-6, "geglu_backward dgate");
    EXPECT_CLOSE(tc, du, 1e-6, "geglu_backward dup");
    pair z = pair_random(n, 40, 15), dz = pair_random(n, 1, 16);
    softcap_forward_f32(z.f, n, 30);
    softcap_forward_f64(z.d, n, 30);
    EXPECT_CLOSE(tc, z, 1e-6, "softcap_forward");
    softcap_backward_f32(dz.f, z.f, n, 30);
    softcap_backward_f64(dz.d, z.d, n, 30);
    EXPECT_CLOSE(tc, dz, 1e-5, "softcap_backward");
    int V = 13, d = 24, tokens_n = 40;
    int32_t tokens[40];
    for (int i = 0; i < tokens_n; i++) tokens[i] = (i * 7) % V;
    pair E = pair_random((size_t)V * d, 1, 17), x = pair_zero((size_t)tokens_n * d), dE = pair_zero((size_t)V * d);
    embed_forward_f32(x.f, E.f, tokens, tokens_n, d);
    embed_forward_f64(x.d, E.d, tokens, tokens_n, d);
    EXPECT_CLOSE(tc, x, 1e-6, "embed_forward");
    embed_backward_f32(dE.f, x.f, tokens, tokens_n, d, 0);
    embed_backward_f64(dE.d, x.d, tokens, tokens_n, d, 0);
    EXPECT_CLOSE(tc, dE, 1e-6, "embed_backward");
    for (int j = 0; j < d; j++) CHECK(tc, dE.f[j] == 0, "the pad row (id 0) got an input gradient");
    pair *all[] = {&g, &u, &act, &dact, &dg, &du, &z, &dz, &E, &x, &dE};
    for (int i = 0; i < 11; i++) pair_free(all[i]);
}

// Attention over several query blocks with windows, documents and softcaps.
static void attention_case(test_case *tc, int window, double softcap, int kv_heads, const char *what) {
    int B = 2, T = 150, H = 4, hd = 16;
    int32_t *doc = malloc((size_t)B * T * sizeof *doc);
    for (int t = 0; t < T; t++) {
        doc[t] = 0;                                         // row 0: one document
        doc[T + t] = t < 37 ? 0 : (t < 90 ? 37 : 90);        // row 1: three documents
    }
    attn_shape s = {.B = B, .T = T, .n_heads = H, .n_kv_heads = kv_heads, .head_dim = hd, .window = window,
                    .scale = 0.25, .softcap = softcap, .doc_begin = doc, .n_threads = 4};
    size_t nq = (size_t)B * T * H * hd, nkv = (size_t)B * T * kv_heads * hd, nl = (size_t)B * H * T;
    pair q = pair_random(nq, 1.5, 20), k = pair_random(nkv, 1.5, 21), v = pair_random(nkv, 1, 22);
    pair out = pair_zero(nq), lse = pair_zero(nl), dout = pair_random(nq, 1, 23);
    pair dq = pair_zero(nq), dk = pair_zero(nkv), dv = pair_zero(nkv);
    size_t scratch_n = attention_scratch_f32(&s, true);
    pair scratch = pair_zero(scratch_n);
    attention_forward_f32(out.f, lse.f, q.f, k.f, v.f, &s, scratch.f);
    attention_forward_f64(out.d, lse.d, q.d, k.d, v.d, &s, scratch.d);
    char label[96];
    snprintf(label, sizeof label, "%s forward", what);
    EXPECT_CLOSE(tc, out, 1e-5, label);
    snprintf(label, sizeof label, "%s lse", what);
    EXPECT_CLOSE(tc, lse, 1e-6, label);
    attention_backward_f32(dq.f, dk.f, dv.f, dout.f, q.f, k.f, v.f, lse.f, &s, scratch.f);
    attention_backward_f64(dq.d, dk.d, dv.d, dout.d, q.d, k.d, v.d, lse.d, &s, scratch.d);
    snprintf(label, sizeof label, "%s dq", what);
    EXPECT_CLOSE(tc, dq, 1e-5, label);
    snprintf(label, sizeof label, "%s dk", what);
    EXPECT_CLOSE(tc, dk, 1e-5, label);
    snprintf(label, sizeof label, "%s dv", what);
    EXPECT_CLOSE(tc, dv, 1e-5, label);
    pair *all[] = {&q, &k, &v, &out, &lse, &dout, &dq, &dk, &dv, &scratch};
    for (int i = 0; i < 10; i++) pair_free(all[i]);
    free(doc);
}

static void attention(test_case *tc) {
    attention_case(tc, 0, 50, 2, "global gqa2");
    attention_case(tc, 70, 50, 2, "window 70 gqa2");
    attention_case(tc, 5, 0, 4, "window 5 mha no softcap");
    attention_case(tc, 130, 3, 1, "window 130 gqa4 softcap 3");
}

// The fast functions against libm in double over dense sweeps.
static void fast_math(test_case *tc) {
    double worst_exp = 0, worst_tanh = 0;
    for (int i = 0; i <= 2000000; i++) {
        float x = -87.0f + 175.0f * (float)i / 2000000.0f;
        double e = exp((double)x), got = fast_expf(x);
        worst_exp = fmax(worst_exp, fabs(got - e) / e);
        float y = -12.0f + 24.0f * (float)i / 2000000.0f;
        double t = tanh((double)y), gt = fast_tanhf(y);
        if (t != 0) worst_tanh = fmax(worst_tanh, fabs(gt - t) / fabs(t));
    }
    for (int i = 1; i < 100000; i++) { // near zero, where tanh(x) ~ x
        float y = (float)i * 1e-7f;
        worst_tanh = fmax(worst_tanh, fabs(fast_tanhf(y) - tanh((double)y)) / tanh((double)y));
    }
    // 2 ulp of float32 is 2^-22 ~ 2.4e-7 relative.
    CHECK(tc, worst_exp < 2.4e-7, "fast_expf relative error %.3g", worst_exp);
    CHECK(tc, worst_tanh < 2.4e-7, "fast_tanhf relative error %.3g", worst_tanh);
    CHECK(tc, fast_expf(-200.0f) >= 0 && fast_expf(-200.0f) < 1e-44f, "fast_expf(-200) = %g", fast_expf(-200.0f));
    CHECK(tc, fast_tanhf(50.0f) == 1.0f && fast_tanhf(-50.0f) == -1.0f, "tanh saturation");
}

int main(void) {
    test_run("matmul", matmul);
    test_run("rmsnorm", rmsnorm);
    test_run("rope", rope);
    test_run("geglu_softcap_embed", geglu_softcap_embed);
    test_run("attention_windows_docs_softcaps", attention);
    test_run("fast_exp_tanh_accuracy", fast_math);
    return test_main_result();
}

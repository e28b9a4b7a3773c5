// Each float32 kernel against its float64 twin (same source, libm exp/tanh
// instead of the fast ones) on random inputs; and the fast exp/tanh against
// libm in double precision.
#include <stdlib.h>
#include <string.h>

#include "common/fastmath.h"
#include "common/rng.h"
#include "model/kernels.h"
#include "tests/check.h"

const char *test_program = "test_kernels";

// A random array in every CPU instantiation: float32, float64 and bf16 hold
// the same values (rounded to bf16 first, so that no instantiation sees more
// than another); acc holds the bf16 instantiation's real_acc (float) outputs.
typedef struct {
    float *f;
    double *d;
    gk_bf16 *h;
    float *acc;
    size_t n;
} pair;

static pair pair_zero(size_t n) {
    return (pair){calloc(n, sizeof(float)), calloc(n, sizeof(double)), calloc(n, sizeof(gk_bf16)),
                  calloc(n, sizeof(float)), n};
}

static pair pair_random(size_t n, double scale, uint64_t seed) {
    pair p = pair_zero(n);
    for (size_t i = 0; i < n; i++) {
        p.h[i] = bf16_round((float)(scale * hash_normal(seed, i)));
        p.f[i] = p.acc[i] = bf16_load(p.h[i]);
        p.d[i] = p.f[i];
    }
    return p;
}

static void pair_free(pair *p) {
    free(p->f);
    free(p->d);
    free(p->h);
    free(p->acc);
}

// max|a - b| / max|b| with a[i] = get_a(i), b[i] = get_b(i).
#define REL_ERROR(n, a_expr, b_expr)                                                                                \
    ({                                                                                                              \
        double _num = 0, _den = 0;                                                                                  \
        for (size_t i = 0; i < (n); i++) {                                                                          \
            double _a = (a_expr), _b = (b_expr), _e = fabs(_a - _b);                                                \
            _num = isnan(_e) || isnan(_num) ? NAN : fmax(_num, _e);                                                 \
            _den = fmax(_den, fabs(_b));                                                                            \
        }                                                                                                           \
        _den > 0 ? _num / _den : _num;                                                                              \
    })

// float32 against the float64 twin.
#define EXPECT_CLOSE(tc, p, tol, what)                                                                              \
    do {                                                                                                            \
        double _e = REL_ERROR((p).n, (p).f[i], (p).d[i]);                                                           \
        CHECK(tc, _e <= (tol), "%s: float32 differs from float64 by %.3g (relative)", what, _e);                   \
    } while (0)

// bf16 storage (h) or its float outputs (acc) against float32.
#define EXPECT_BF16(tc, p, tol, what)                                                                               \
    do {                                                                                                            \
        double _e = REL_ERROR((p).n, bf16_load((p).h[i]), (p).f[i]);                                                \
        CHECK(tc, _e <= (tol), "%s: bf16 differs from float32 by %.3g (relative)", what, _e);                      \
    } while (0)
#define EXPECT_BF16_ACC(tc, p, tol, what)                                                                           \
    do {                                                                                                            \
        double _e = REL_ERROR((p).n, (p).acc[i], (p).f[i]);                                                         \
        CHECK(tc, _e <= (tol), "%s: bf16 instantiation's float output differs from float32 by %.3g", what, _e);   \
    } while (0)

// One rounding to bf16 (8 significant bits) is at most 2^-8 = 3.9e-3
// relative; a few of them stay within the second bound (outputs are checked
// relative to their largest value).
#define BF16_ONE_ROUNDING 4e-3
#define BF16_SOME_ROUNDINGS 1.2e-2

static void matmul(test_case *tc) {
    int n = 37, in = 53, out = 29;
    pair x = pair_random((size_t)n * in, 1, 1), w = pair_random((size_t)out * in, 0.2, 2), y = pair_zero((size_t)n * out);
    pair dy = pair_random((size_t)n * out, 1, 3), dx = pair_random((size_t)n * in, 1, 4), dw = pair_random((size_t)out * in, 1, 5);
    matmul_forward_f32(y.f, x.f, w.f, n, in, out);
    matmul_forward_f64(y.d, x.d, w.d, n, in, out);
    matmul_forward_bf16(y.h, x.h, w.h, n, in, out);
    EXPECT_CLOSE(tc, y, 1e-6, "matmul_forward");
    EXPECT_BF16(tc, y, BF16_ONE_ROUNDING, "matmul_forward");
    matmul_forward_acc_bf16(y.acc, x.h, w.h, n, in, out); // bf16 products are exact, sums in float32
    EXPECT_BF16_ACC(tc, y, 1e-6, "matmul_forward_acc");
    matmul_backward_f32(dx.f, dw.f, dy.f, x.f, w.f, n, in, out, true); // dx accumulates onto its start value
    matmul_backward_f64(dx.d, dw.d, dy.d, x.d, w.d, n, in, out, true);
    matmul_backward_bf16(dx.h, dw.h, dy.h, x.h, w.h, n, in, out, true);
    EXPECT_CLOSE(tc, dx, 1e-6, "matmul_backward dx");
    EXPECT_CLOSE(tc, dw, 1e-6, "matmul_backward dw");
    EXPECT_BF16(tc, dx, BF16_ONE_ROUNDING, "matmul_backward dx");
    EXPECT_BF16(tc, dw, BF16_ONE_ROUNDING, "matmul_backward dw");
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
    rmsnorm_forward_bf16(y.h, r.acc, x.h, w.h, n, d, 1e-6);
    EXPECT_CLOSE(tc, y, 1e-6, "rmsnorm_forward");
    EXPECT_CLOSE(tc, r, 1e-6, "rmsnorm rstd");
    EXPECT_BF16(tc, y, BF16_ONE_ROUNDING, "rmsnorm_forward");
    EXPECT_BF16_ACC(tc, r, 1e-6, "rmsnorm rstd");
    rmsnorm_backward_f32(dx.f, dw.f, dy.f, x.f, w.f, r.f, n, d, true, part.f);
    rmsnorm_backward_f64(dx.d, dw.d, dy.d, x.d, w.d, r.d, n, d, true, part.d);
    rmsnorm_backward_bf16(dx.h, dw.h, dy.h, x.h, w.h, r.acc, n, d, true, part.acc);
    EXPECT_CLOSE(tc, dx, 1e-5, "rmsnorm_backward dx");
    EXPECT_CLOSE(tc, dw, 1e-5, "rmsnorm_backward dw");
    EXPECT_BF16(tc, dx, BF16_ONE_ROUNDING, "rmsnorm_backward dx");
    EXPECT_BF16(tc, dw, BF16_ONE_ROUNDING, "rmsnorm_backward dw");
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
    rope_tables_bf16(c.acc, s.acc, T, hd, 10000);
    EXPECT_CLOSE(tc, c, 1e-5, "rope cos table");
    EXPECT_CLOSE(tc, s, 1e-5, "rope sin table");
    EXPECT_BF16_ACC(tc, c, 0, "rope cos table"); // float tables in both
    EXPECT_BF16_ACC(tc, s, 0, "rope sin table");
    pair orig = pair_zero(x.n);
    memcpy(orig.f, x.f, x.n * sizeof(float));
    memcpy(orig.d, x.d, x.n * sizeof(double));
    rope_apply_f32(x.f, pos, c.f, s.f, n, heads, hd, false);
    rope_apply_f64(x.d, pos, c.d, s.d, n, heads, hd, false);
    rope_apply_bf16(x.h, pos, c.acc, s.acc, n, heads, hd, false);
    EXPECT_CLOSE(tc, x, 1e-5, "rope forward");
    EXPECT_BF16(tc, x, BF16_ONE_ROUNDING, "rope forward");
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
    geglu_forward_bf16(act.h, g.h, u.h, n);
    EXPECT_CLOSE(tc, act, 1e-6, "geglu_forward");
    EXPECT_BF16(tc, act, BF16_ONE_ROUNDING, "geglu_forward");
    geglu_backward_f32(dg.f, du.f, dact.f, g.f, u.f, n);
    geglu_backward_f64(dg.d, du.d, dact.d, g.d, u.d, n);
    geglu_backward_bf16(dg.h, du.h, dact.h, g.h, u.h, n);
    EXPECT_CLOSE(tc, dg, 1e-6, "geglu_backward dgate");
    EXPECT_CLOSE(tc, du, 1e-6, "geglu_backward dup");
    EXPECT_BF16(tc, dg, BF16_ONE_ROUNDING, "geglu_backward dgate");
    EXPECT_BF16(tc, du, BF16_ONE_ROUNDING, "geglu_backward dup");
    pair z = pair_random(n, 40, 15), dz = pair_random(n, 1, 16), dzb = pair_zero(n);
    softcap_forward_f32(z.f, n, 30);
    softcap_forward_f64(z.d, n, 30);
    softcap_forward_bf16(z.acc, n, 30); // logits: float in every instantiation but the twin
    EXPECT_CLOSE(tc, z, 1e-6, "softcap_forward");
    EXPECT_BF16_ACC(tc, z, 0, "softcap_forward");
    softcap_backward_bf16(dzb.h, dz.f, z.acc, n, 30); // float gradient in, rounded once to bf16
    softcap_backward_f32(dz.f, dz.f, z.f, n, 30);
    softcap_backward_f64(dz.d, dz.d, z.d, n, 30);
    memcpy(dzb.f, dz.f, n * sizeof(float));
    EXPECT_CLOSE(tc, dz, 1e-5, "softcap_backward");
    EXPECT_BF16(tc, dzb, BF16_ONE_ROUNDING, "softcap_backward");
    int V = 13, d = 24, tokens_n = 400; // each id about 30 times: a bf16 sum per position would drift
    int32_t tokens[400], work[800];
    for (int i = 0; i < tokens_n; i++) tokens[i] = (i * 7) % V;
    pair E = pair_random((size_t)V * d, 1, 17), x = pair_zero((size_t)tokens_n * d), dE = pair_random((size_t)V * d, 1, 18);
    embed_forward_f32(x.f, E.f, tokens, tokens_n, d);
    embed_forward_f64(x.d, E.d, tokens, tokens_n, d);
    embed_forward_bf16(x.h, E.h, tokens, tokens_n, d);
    EXPECT_CLOSE(tc, x, 1e-6, "embed_forward");
    EXPECT_BF16(tc, x, BF16_SOME_ROUNDINGS, "embed_forward"); // and sqrt(24) rounded to bf16, as transformers does
    float pad_row[24]; // id 0 is the pad id: its row must keep its value
    memcpy(pad_row, dE.f, sizeof pad_row);
    embed_backward_f32(dE.f, x.f, tokens, tokens_n, d, 0, work);
    embed_backward_f64(dE.d, x.d, tokens, tokens_n, d, 0, work);
    embed_backward_bf16(dE.h, x.h, tokens, tokens_n, d, 0, work);
    EXPECT_CLOSE(tc, dE, 1e-6, "embed_backward");
    EXPECT_BF16(tc, dE, BF16_SOME_ROUNDINGS, "embed_backward");
    for (int j = 0; j < d; j++)
        CHECK(tc, dE.f[j] == pad_row[j] && bf16_load(dE.h[j]) == pad_row[j], "the pad row (id 0) got an input gradient");
    pair a = pair_random(n, 1, 19), b = pair_random(n, 1, 20), sum = pair_zero(n);
    add_f32(sum.f, a.f, b.f, n);
    add_f64(sum.d, a.d, b.d, n);
    add_bf16(sum.h, a.h, b.h, n);
    EXPECT_CLOSE(tc, sum, 1e-7, "add");
    EXPECT_BF16(tc, sum, BF16_ONE_ROUNDING, "add");
    pair *all[] = {&g, &u, &act, &dact, &dg, &du, &z, &dz, &dzb, &E, &x, &dE, &a, &b, &sum};
    for (int i = 0; i < 15; i++) pair_free(all[i]);
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
    gk_bf16 *scratch_h = calloc(attention_scratch_bf16(&s, true), sizeof *scratch_h);
    attention_forward_f32(out.f, lse.f, q.f, k.f, v.f, &s, scratch.f);
    attention_forward_f64(out.d, lse.d, q.d, k.d, v.d, &s, scratch.d);
    attention_forward_bf16(out.h, lse.acc, q.h, k.h, v.h, &s, scratch_h);
    char label[96];
    snprintf(label, sizeof label, "%s forward", what);
    EXPECT_CLOSE(tc, out, 1e-5, label);
    EXPECT_BF16(tc, out, BF16_ONE_ROUNDING, label);
    snprintf(label, sizeof label, "%s lse", what);
    EXPECT_CLOSE(tc, lse, 1e-6, label);
    EXPECT_BF16_ACC(tc, lse, 1e-6, label); // the same float32 arithmetic on the same inputs
    attention_backward_f32(dq.f, dk.f, dv.f, dout.f, q.f, k.f, v.f, lse.f, &s, scratch.f);
    attention_backward_f64(dq.d, dk.d, dv.d, dout.d, q.d, k.d, v.d, lse.d, &s, scratch.d);
    attention_backward_bf16(dq.h, dk.h, dv.h, dout.h, q.h, k.h, v.h, lse.acc, &s, scratch_h);
    snprintf(label, sizeof label, "%s dq", what);
    EXPECT_CLOSE(tc, dq, 1e-5, label);
    EXPECT_BF16(tc, dq, BF16_ONE_ROUNDING, label);
    snprintf(label, sizeof label, "%s dk", what);
    EXPECT_CLOSE(tc, dk, 1e-5, label);
    EXPECT_BF16(tc, dk, BF16_ONE_ROUNDING, label);
    snprintf(label, sizeof label, "%s dv", what);
    EXPECT_CLOSE(tc, dv, 1e-5, label);
    EXPECT_BF16(tc, dv, BF16_ONE_ROUNDING, label);
    free(scratch_h);
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

// One decoding step against a ring cache: every row stores its key and value,
// then attends (one row idle, one past the window).
static void cached_attention(test_case *tc) {
    int B = 3, S = 8, H = 4, KV = 2, hd = 16, qd = H * hd, kvd = KV * hd;
    attn_shape s = {.B = B, .T = 1, .n_heads = H, .n_kv_heads = KV, .head_dim = hd, .window = 6, .scale = 0.25,
                    .softcap = 20, .n_threads = 2};
    pair ck = pair_random((size_t)B * S * kvd, 1, 40), cv = pair_random((size_t)B * S * kvd, 1, 41);
    pair k = pair_random((size_t)B * kvd, 1, 42), v = pair_random((size_t)B * kvd, 1, 43);
    pair q = pair_random((size_t)B * qd, 1, 44), out = pair_zero((size_t)B * qd);
    int32_t slot_pos[3][8], pos[3] = {9, -1, 3};
    for (int b = 0; b < B; b++)
        for (int j = 0; j < S; j++) slot_pos[b][j] = b == 2 && j > 2 ? -1 : (b == 2 ? j : 8 * (j < 2) + j - 1);
    int32_t sp_f[3][8], sp_h[3][8];
    memcpy(sp_f, slot_pos, sizeof sp_f);
    memcpy(sp_h, slot_pos, sizeof sp_h);
    kv_store_f32(ck.f, cv.f, &sp_f[0][0], k.f, v.f, pos, B, S, kvd);
    kv_store_bf16(ck.h, cv.h, &sp_h[0][0], k.h, v.h, pos, B, S, kvd);
    CHECK(tc, !memcmp(sp_f, sp_h, sizeof sp_f) && sp_f[0][1] == 9 && sp_f[2][3] == 3 && sp_f[1][0] == slot_pos[1][0],
          "kv_store put the positions in the wrong slots");
    for (size_t i = 0; i < ck.n; i++) ck.d[i] = ck.f[i], cv.d[i] = cv.f[i];
    attention_cached_f32(out.f, q.f, ck.f, cv.f, &sp_f[0][0], pos, B, S, &s);
    attention_cached_f64(out.d, q.d, ck.d, cv.d, &sp_f[0][0], pos, B, S, &s);
    attention_cached_bf16(out.h, q.h, ck.h, cv.h, &sp_h[0][0], pos, B, S, &s);
    EXPECT_CLOSE(tc, out, 1e-6, "attention_cached");
    EXPECT_BF16(tc, out, BF16_ONE_ROUNDING, "attention_cached");
    pair *all[] = {&ck, &cv, &k, &v, &q, &out};
    for (int i = 0; i < 6; i++) pair_free(all[i]);
}

// A prompt's keys and values stored at once (prefill) land where n kv_store steps on an
// empty row put them, in rings shorter than the prompt, as long and longer (empty slots).
static void prompt_store(test_case *tc) {
    enum { N = 11, KVD = 8, MAX_S = 16 };
    pair k = pair_random(N * KVD, 1, 45), v = pair_random(N * KVD, 1, 46);
    const int rings[] = {4, N, MAX_S};
    for (size_t r = 0; r < sizeof rings / sizeof rings[0]; r++) {
        int S = rings[r];
        float want_k[MAX_S * KVD], want_v[MAX_S * KVD], got_k[MAX_S * KVD], got_v[MAX_S * KVD];
        gk_bf16 got_kh[MAX_S * KVD], got_vh[MAX_S * KVD];
        int32_t want_pos[MAX_S], got_pos[MAX_S], got_pos_h[MAX_S];
        for (int j = 0; j < S; j++) want_pos[j] = -1;
        for (int32_t t = 0; t < N; t++)
            kv_store_f32(want_k, want_v, want_pos, k.f + t * KVD, v.f + t * KVD, &t, 1, S, KVD);
        kv_store_prompt_f32(got_k, got_v, got_pos, k.f, v.f, N, S, KVD);
        kv_store_prompt_bf16(got_kh, got_vh, got_pos_h, k.h, v.h, N, S, KVD);
        size_t pos_bytes = (size_t)S * sizeof *want_pos;
        bool same = !memcmp(got_pos, want_pos, pos_bytes) && !memcmp(got_pos_h, want_pos, pos_bytes);
        for (int j = 0; same && j < S; j++)
            for (int e = 0; want_pos[j] >= 0 && e < KVD; e++) {
                size_t i = (size_t)j * KVD + e;
                same = got_k[i] == want_k[i] && got_v[i] == want_v[i] && bf16_load(got_kh[i]) == want_k[i] &&
                       bf16_load(got_vh[i]) == want_v[i];
            }
        CHECK(tc, same, "ring of %d slots: kv_store_prompt of %d positions differs from %d kv_store steps", S, N, N);
    }
    pair_free(&k);
    pair_free(&v);
}

// AdamW and SGD from bf16 gradients against float32 gradients of the same
// values: the same float32 master weights come out; the bf16 copy is their rounding.
static void optimizer_updates(test_case *tc) {
    size_t n = 3000;
    pair g = pair_random(n, 0.01, 50), w0 = pair_random(n, 1, 51);
    float *pf = malloc(n * sizeof *pf), *ph = malloc(n * sizeof *ph), *m[2], *v[2];
    gk_bf16 *wh = malloc(n * sizeof *wh);
    for (int i = 0; i < 2; i++) m[i] = calloc(n, sizeof(float)), v[i] = calloc(n, sizeof(float));
    memcpy(pf, w0.f, n * sizeof *pf);
    memcpy(ph, w0.f, n * sizeof *ph);
    adamw_coeffs c = {1e-2f, 0.1f, 0.9f, 0.95f, 1e-8f, 1e-2f / 0.1f, sqrtf(0.05f)};
    for (int step = 0; step < 3; step++) {
        adamw_update_f32(pf, pf, g.f, m[0], v[0], n, &c, 0.5f);
        adamw_update_bf16(ph, wh, g.h, m[1], v[1], n, &c, 0.5f);
    }
    sgd_update_f32(pf, pf, g.f, n, 0.1f, 2.0f);
    sgd_update_bf16(ph, wh, g.h, n, 0.1f, 2.0f);
    bool same = !memcmp(pf, ph, n * sizeof *pf) && !memcmp(m[0], m[1], n * sizeof(float));
    CHECK(tc, same, "bf16 gradients of float32 values gave other master weights or moments than float32 gradients");
    for (size_t i = 0; i < n; i++) CHECK(tc, wh[i].bits == bf16_round(ph[i]).bits, "bf16 weight %zu is not its master", i);
    round_weights_bf16(wh, pf, n); // the hardware conversion where the CPU has it: RNE as bf16_round
    for (size_t i = 0; i < n; i++) CHECK(tc, wh[i].bits == bf16_round(pf[i]).bits, "round_weights: value %zu", i);
    float ties[16]; // halfway between two bf16 values, both parities, both signs: a whole vector of them
    for (int i = 0; i < 16; i++) ties[i] = (i % 2 ? -1.0f : 1.0f) * (1.0f + (2 * i + 1) * 0.00390625f);
    gk_bf16 tied[16];
    round_weights_bf16(tied, ties, 16);
    for (int i = 0; i < 16; i++) CHECK(tc, tied[i].bits == bf16_round(ties[i]).bits, "round_weights: tie %d", i);
    double sf = sum_squares_f32(g.f, n), sh = sum_squares_bf16(g.h, n), sd = 0;
    for (size_t i = 0; i < n; i++) sd += g.d[i] * g.d[i];
    CHECK(tc, fabs(sf - sd) <= 1e-12 * sd && sf == sh, "sum of squares %.17g / bf16 %.17g / double %.17g", sf, sh, sd);
    pair *all[] = {&g, &w0};
    for (int i = 0; i < 2; i++) pair_free(all[i]);
    for (int i = 0; i < 2; i++) free(m[i]), free(v[i]);
    free(pf), free(ph), free(wh);
}

// The fast functions against libm in double over dense sweeps (2 ulp at most).
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
    double worst_expm1 = 0;
    for (int i = 0; i <= 2000000; i++) {
        float x = -30.0f + 60.0f * (float)i / 2000000.0f;
        double e = expm1((double)x);
        if (e != 0) worst_expm1 = fmax(worst_expm1, fabs(fast_expm1f(x) - e) / fabs(e));
    }
    for (int i = 1; i < 100000; i++) { // near zero, where tanh(x) ~ x and expm1(x) ~ x
        float y = (float)i * 1e-7f;
        worst_tanh = fmax(worst_tanh, fabs(fast_tanhf(y) - tanh((double)y)) / tanh((double)y));
        worst_tanh = fmax(worst_tanh, fabs(fast_tanhf(-y) - tanh((double)-y)) / tanh((double)y));
        worst_expm1 = fmax(worst_expm1, fabs(fast_expm1f(-y) - expm1((double)-y)) / -expm1((double)-y));
    }
    // 2 ulp of float32 is 2^-22 ~ 2.4e-7 relative.
    CHECK(tc, worst_exp < 2.4e-7, "fast_expf relative error %.3g", worst_exp);
    CHECK(tc, worst_tanh < 2.4e-7, "fast_tanhf relative error %.3g", worst_tanh);
    CHECK(tc, worst_expm1 < 2.4e-7, "fast_expm1f relative error %.3g", worst_expm1);
    CHECK(tc, fast_expf(-200.0f) >= 0 && fast_expf(-200.0f) < 1e-44f, "fast_expf(-200) = %g", fast_expf(-200.0f));
    CHECK(tc, fast_tanhf(50.0f) == 1.0f && fast_tanhf(-50.0f) == -1.0f, "tanh saturation");
}

int main(void) {
    test_run("matmul", matmul);
    test_run("rmsnorm", rmsnorm);
    test_run("rope", rope);
    test_run("geglu_softcap_embed", geglu_softcap_embed);
    test_run("attention_windows_docs_softcaps", attention);
    test_run("attention_cached_kv_store", cached_attention);
    test_run("kv_store_prompt", prompt_store);
    test_run("optimizer_updates", optimizer_updates);
    test_run("fast_exp_tanh_accuracy", fast_math);
    return test_main_result();
}

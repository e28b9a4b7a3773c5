// Arrays carved out of one block, shared by the activation layout (acts.c) and
// the backward pass's work space (backward.c), so that sizes are counted and
// handed out by the same code. Include after model/real.h.
#ifndef GK_CARVE_H
#define GK_CARVE_H

#include <stdint.h>

// Consecutive arrays of one block; with base == NULL it only counts.
typedef struct {
    real *base;
    size_t used; // in `real` units
} carver;

// Every array starts 256-byte aligned (vector loads; cuBLASLt's fastest algorithms).
// A count past SIZE_MAX stays at SIZE_MAX (which no allocation satisfies).
static inline real *carve(carver *c, size_t n) {
    real *p = c->base ? c->base + c->used : NULL;
    size_t unit = 256 / sizeof(real), add = n / unit * unit + (n % unit ? unit : 0);
    c->used = c->used > SIZE_MAX - add ? SIZE_MAX : c->used + add;
    return p;
}

static inline int32_t *carve_ints(carver *c, size_t n) {
    return (int32_t *)carve(c, (n * sizeof(int32_t) + sizeof(real) - 1) / sizeof(real));
}

static inline real_acc *carve_acc(carver *c, size_t n) { return (real_acc *)carve(c, ACC_REALS(n)); }

// The backward pass's work space (in a->scratch when training).
typedef struct {
    real *attn;           // attention kernel space
    real *d_resid;        // [N, d] gradient of the residual stream
    real *d_a, *d_b;      // [N, d]
    real *d_ff1, *d_ff2;  // [N, ff]
    real *dq, *d_attn;    // [N, qd]
    real *dk, *dv;        // [N, kvd]
    real_acc *partials;   // [rmsnorm_partial_rows(N), d]
    int32_t *embed_work;  // [2 N] embed_backward's work space
} grad_space;

static inline void carve_grad_space(grad_space *g, const model_config *cfg, size_t N, const attn_shape *shape,
                                    carver *c) {
    size_t d = cfg->d_model, ff = cfg->d_ff, qd = cfg_q_dim(cfg), kvd = cfg_kv_dim(cfg);
    g->attn = carve(c, FN(attention_scratch)(shape, true));
    g->d_resid = carve(c, N * d);
    g->d_a = carve(c, N * d);
    g->d_b = carve(c, N * d);
    g->d_ff1 = carve(c, N * ff);
    g->d_ff2 = carve(c, N * ff);
    g->dq = carve(c, N * qd);
    g->d_attn = carve(c, N * qd);
    g->dk = carve(c, N * kvd);
    g->dv = carve(c, N * kvd);
    g->partials = carve_acc(c, (size_t)rmsnorm_partial_rows((int)N) * d);
    g->embed_work = carve_ints(c, 2 * N);
}

#endif

#include "model/plan_ranks.h"

#include <string.h>

#include "common/collectives.h"

// Rank 0's block of n elements over `ranks`: the largest (only the last one is shorter).
static size_t first_block(size_t n, int ranks) {
    size_t lo, hi;
    collectives_range(n, ranks, 0, &lo, &hi);
    return hi - lo;
}

// The student's state per device; P < 2^57 under the config limits, so no product here overflows.
static void state_bytes(size_t P, const rank_setup *s, rank_plan *r) {
    size_t S = s->zero ? r->shard : P;
    r->master_sharded = s->bf16 && s->zero && s->cuda; // the cpu host keeps all of it (the checkpoint copy too)
    r->bytes_weights = P * (s->bf16 ? 2 : 4);
    r->bytes_master = !s->bf16 ? 0 : 4 * (r->master_sharded ? r->shard : P);
    r->bytes_grads = P * (s->bf16 ? 2 : 4);
    r->bytes_adamw = 8 * S;
    r->bytes_ema = s->ema ? 4 * S : 0;
}

static int sum_ok(const size_t *v, int n, size_t *total) {
    *total = 0;
    for (int i = 0; i < n; i++)
        if (!gk_add_ok(*total, v[i], total)) return 0;
    return 1;
}

int rank_plan_compute(const model_plan *student, const forward_plan *teacher, const rank_setup *s, rank_plan *r,
                      gk_err *err) {
    memset(r, 0, sizeof *r);
    if (s->ranks < 1) return gk_fail(err, GK_EINPUT, "%d ranks: need at least 1", s->ranks);
    size_t P = student->params_total;
    r->shard = first_block(P, s->ranks);
    state_bytes(P, s, r);
    r->bytes_activations = student->bytes_activations;
    if (teacher) {
        r->bytes_teacher_weights = teacher->bytes_weights;
        r->bytes_teacher_activations = teacher->bytes_activations;
    }
    size_t state[5] = {r->bytes_weights, r->bytes_master, r->bytes_grads, r->bytes_adamw, r->bytes_ema};
    if (!sum_ok(state, 5, &r->bytes_state)) return gk_fail(err, GK_EINPUT, "the memory per device does not fit in 64 bits");
    size_t all[4] = {r->bytes_state, r->bytes_activations, r->bytes_teacher_weights, r->bytes_teacher_activations};
    if (!sum_ok(all, 4, &r->bytes_total)) return gk_fail(err, GK_EINPUT, "the memory per device does not fit in 64 bits");
    return 0;
}

#include "train/data_parallel.h"

#include <stdlib.h>
#include <string.h>

#include "common/dist.h"

int dp_plan_make(dp_plan *p, const run_config *rc, size_t n_floats, gk_err *err) {
    memset(p, 0, sizeof *p);
    p->rank = dist_rank();
    p->ranks = dist_size();
    int B = rc->batch.size, micro = rc->batch.micro > 0 ? rc->batch.micro : B;
    if (B % p->ranks)
        return gk_fail(err, GK_EINPUT, "'batch.size' (%d) must be a multiple of the %d ranks (each trains "
                       "batch.size / ranks rows per step)", B, p->ranks);
    p->rows = B / p->ranks;
    p->micro = micro < p->rows ? micro : p->rows; // the largest divisor of the rank's rows within batch.micro
    while (p->rows % p->micro) p->micro--;
    p->accum = p->rows / p->micro;
    p->global_micro = micro;
    p->zero = p->ranks > 1 && rc->parallel.zero;
    p->hi = n_floats;
    if (p->zero) collectives_range(n_floats, p->ranks, p->rank, &p->lo, &p->hi);
    return 0;
}

static int min_int(int a, int b) { return a < b ? a : b; }

void dp_skip_before(const dp_plan *p, loader *l, int data) {
    loader_skip(l, (uint64_t)min_int(p->rank * p->rows, data), 0);
}

void dp_skip_after(const dp_plan *p, loader *l, int data, int batches) {
    int after = data - min_int((p->rank + 1) * p->rows, data);
    int one_process = (data + p->global_micro - 1) / p->global_micro; // its micro-batches that hold data rows
    loader_skip(l, (uint64_t)after, one_process - batches); // may be negative: a rank's micro-batches are smaller
}

// n floats on rank 0 (NULL elsewhere, and for one process without ZeRO-1: nothing to gather).
static float *root_buffer(const dp_plan *p, size_t n, bool *ok, gk_err *err) {
    if (!p->zero || p->rank != 0) return NULL;
    float *b = gk_malloc(n * sizeof *b, err);
    *ok = *ok && b;
    return b;
}

int dp_save(const dp_plan *p, const char *run_dir, model_state *m, const optimizer *o, const trainer_state *s,
            const float *ema, const char *tokenizer_sha256, int keep, gk_err *err) {
    if (!p->zero) // and every rank waits for it: what follows (average.last_k) reads the checkpoints
        return dist_check(p->rank == 0 ? ckpt_save(run_dir, m, o, s, ema, tokenizer_sha256, keep, err) : 0, err);
    size_t n = m->layout.n_floats;
    // The master weights: each rank's block is current (under bf16, not the others'): all of them everywhere.
    if (dist_host_collectives()->all_gather(dist_host_collectives(), m->params, n, COLL_F32, err)) return -1;
    bool ok = true;
    optimizer whole = *o;
    whole.lo = 0;
    whole.n = n;
    whole.m = o->m ? root_buffer(p, n, &ok, err) : NULL;
    whole.v = o->v ? root_buffer(p, n, &ok, err) : NULL;
    float *whole_ema = ema ? root_buffer(p, n, &ok, err) : NULL;
    int r = dist_check(ok ? 0 : -1, err);
    if (r == 0 && o->m) dist_gather_blocks(o->m, n, whole.m);
    if (r == 0 && o->v) dist_gather_blocks(o->v, n, whole.v);
    if (r == 0 && ema) dist_gather_blocks(ema, n, whole_ema);
    if (r == 0 && p->rank == 0) r = ckpt_save(run_dir, m, &whole, s, whole_ema, tokenizer_sha256, keep, err);
    free(whole.m);
    free(whole.v);
    free(whole_ema);
    return dist_check(r, err);
}

int dp_load(const dp_plan *p, const char *dir, model_state *m, optimizer *o, trainer_state *s, float *ema,
            bool *ema_found, gk_err *err) {
    size_t n = m->layout.n_floats, block = p->hi - p->lo;
    optimizer whole = *o;
    whole.lo = 0;
    whole.n = n;
    whole.m = whole.v = NULL;
    bool adamw = o->m != NULL;
    if (adamw && p->zero && !((whole.m = param_buffer_alloc(&m->layout, err)) && (whole.v = param_buffer_alloc(&m->layout, err)))) {
        free(whole.m);
        return -1;
    }
    optimizer *into = p->zero ? &whole : o;
    int r = ckpt_load(dir, m, into, s, err);
    if (r == 0 && adamw && p->zero) {
        memcpy(o->m, whole.m + p->lo, block * sizeof *o->m);
        memcpy(o->v, whole.v + p->lo, block * sizeof *o->v);
    }
    o->steps = into->steps;
    if (p->zero) {
        free(whole.m);
        free(whole.v);
    }
    *ema_found = false;
    if (r || !ema) return r;
    float *all = p->zero ? param_buffer_alloc(&m->layout, err) : ema;
    if (!all) return -1;
    r = ckpt_load_ema(dir, m, all, ema_found, err);
    if (r == 0 && !*ema_found) memcpy(all, m->params, n * sizeof *all); // a checkpoint without: its weights
    if (r == 0 && p->zero) memcpy(ema, all + p->lo, block * sizeof *ema);
    if (p->zero) free(all);
    return r;
}

int dp_whole_ema(const dp_plan *p, const float *ema, size_t n, float *out, gk_err *err) {
    memcpy(out + p->lo, ema, (p->hi - p->lo) * sizeof *out);
    return dist_host_collectives()->all_gather(dist_host_collectives(), out, n, COLL_F32, err);
}

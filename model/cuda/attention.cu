// Grouped-query attention on the GPU (bf16 in and out, float math), matching
// model/cpu/attention.c and model/cpu/attention_cached.c: scale, soft-cap,
// causal + sliding-window + document masks, log-sum-exp kept per query.
// Flash style: no [T x T] matrix is stored. A block of 256 threads stages a
// tile of 32 keys (or queries) in shared memory and every warp works on its
// own queries (or keys) against it: a lane per key (query) for the scores,
// lanes striding over head_dim for the accumulations. Only tiles the masks
// allow are visited. All sums run in a fixed order, so results are
// bit-identical run to run (no floating-point atomics). Plain FMA loops;
// tensor cores (mma/wgmma) are a later optimisation.
//
// Backward, three passes that each recompute P = exp(C - lse) from the scores:
//  1. query-major: D_i = sum_j P_ij dP_ij (dP = dout . v) into scratch [B, H, T];
//  2. same kernel, second sweep: dq_i = sum_j dS_ij k_j;
//  3. key-major: dk_j, dv_j summed over the queries that see key j and over the
//     query heads of its KV group, in registers.
#include <limits.h>

#include "model/cuda/common.cuh"

enum {
    FA_WARPS = 8, FA_THREADS = 32 * FA_WARPS,
    FA_QPW = 4, FA_QB = FA_WARPS * FA_QPW, // query-major: queries per warp, per block
    FA_KPW = 4, FA_KB = FA_WARPS * FA_KPW, // key-major: keys per warp, per block
    FA_TILE = 32,                          // keys (or queries) per shared tile: one per lane
    FA_NC = 8, FA_MAX_HD = 32 * FA_NC,     // head_dim in chunks of 32 lanes, at most 256
    FA_CACHED_WARPS = 4,                   // attention_cached: warps per (row, head)
};
#define FA_FULL 0xffffffffu

// Geometry passed by value to the kernels.
typedef struct {
    int B, T, H, KV, hd, group, window;
    int stride;         // shared row length (bf16) of tiles read a row per lane
    float scale, cap;   // cap 0: no soft-cap
    const int32_t *doc; // device [B*T] document start per query, or NULL
} fa_dims;

static __device__ inline float f32(bf16 x) { return __bfloat162float(x); }

// First key query i of row b may attend to (as first_key() on the CPU, clamped at 0).
static __device__ inline int first_key(const fa_dims &a, int b, int i) {
    int lo = a.doc ? a.doc[(size_t)b * a.T + i] : 0;
    if (a.window > 0 && i - a.window + 1 > lo) lo = i - a.window + 1;
    return max(lo, 0);
}

// Scaled, soft-capped score C from the raw dot product.
static __device__ inline float capped(float dot, const fa_dims &a) {
    float s = dot * a.scale;
    return a.cap > 0 ? tanhf(s / a.cap) * a.cap : s;
}

// dS = P (dP - D) (1 - (C/cap)^2) scale: the gradient of the raw scaled score.
static __device__ inline float score_grad(float c, float p, float dp, float D, const fa_dims &a) {
    float f = 1;
    if (a.cap > 0) {
        float t = c / a.cap;
        f = 1 - t * t;
    }
    return p * (dp - D) * f * a.scale;
}

// x . y over hd values of two bf16 rows in shared memory.
static __device__ inline float dot_rows(const bf16 *x, const bf16 *y, int hd) {
    float s = 0;
    for (int d = 0; d < hd; d++) s = fmaf(f32(x[d]), f32(y[d]), s);
    return s;
}

// acc[d] += w * row[d] for this lane's columns d = c*32 + lane (registers once inlined).
static __device__ __forceinline__ void axpy_row(float *acc, float w, const bf16 *row, int hd, int lane) {
#pragma unroll
    for (int c = 0; c < FA_NC; c++)
        if (c * 32 + lane < hd) acc[c] = fmaf(w, f32(row[c * 32 + lane]), acc[c]);
}

// o[d] = bf16(acc[d] * mul) for this lane's columns.
static __device__ __forceinline__ void store_row(bf16 *o, const float *acc, float mul, int hd, int lane) {
#pragma unroll
    for (int c = 0; c < FA_NC; c++)
        if (c * 32 + lane < hd) o[c * 32 + lane] = __float2bfloat16(acc[c] * mul);
}

// dst[rows][stride] = the first hd columns of src rows (leading dimension ld);
// rows from n on are zeros (masked lanes multiply them by 0: no NaN garbage).
static __device__ void load_rows(bf16 *dst, int stride, const bf16 *src, size_t ld, int n, int rows, int hd) {
    for (int e = threadIdx.x; e < rows * hd; e += blockDim.x) {
        int r = e / hd, d = e % hd;
        dst[r * stride + d] = r < n ? src[(size_t)r * ld + d] : __float2bfloat16(0.0f);
    }
}

// Fills fk[FA_QB] with the first keys of queries i0.. (INT_MAX past nq) and
// returns their minimum: the first key any query of the block sees.
static __device__ int block_first_keys(int *fk, const fa_dims &a, int b, int i0, int nq) {
    int t = threadIdx.x;
    if (t < FA_QB) fk[t] = t < nq ? first_key(a, b, i0 + t) : INT_MAX;
    __syncthreads();
    int lo = INT_MAX;
    for (int r = 0; r < nq; r++) lo = min(lo, fk[r]);
    return lo;
}

// Stages keys and values [t0, t0+n) of one row and KV head (kb, vb point at key 0)
// into Ks, Vs [FA_TILE][stride], between barriers.
static __device__ void stage_kv(bf16 *Ks, bf16 *Vs, const bf16 *kb, const bf16 *vb, int t0, int n, const fa_dims &a) {
    size_t ld = (size_t)a.KV * a.hd;
    __syncthreads(); // every warp is done with the previous tile
    load_rows(Ks, a.stride, kb + (size_t)t0 * ld, ld, n, FA_TILE, a.hd);
    load_rows(Vs, a.stride, vb + (size_t)t0 * ld, ld, n, FA_TILE, a.hd);
    __syncthreads();
}

// True when query i (first key lo) sees none of the tile's keys [t0, t0+FA_TILE).
static __device__ inline bool tile_misses(int t0, int lo, int i) { return lo > i || t0 > i || t0 + FA_TILE - 1 < lo; }

// Forward. Grid (ceil(T/FA_QB), H, B); block FA_THREADS; warp w owns queries
// i0 + w*FA_QPW + u. Online softmax per query: running max m, sum l, acc [hd].
// Shared: Qs [FA_QB][hd], Ks, Vs [FA_TILE][stride].
static __global__ void __launch_bounds__(FA_THREADS)
    attn_forward_kernel(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v, fa_dims a) {
    extern __shared__ __align__(16) unsigned char fa_smem[];
    __shared__ int fk[FA_QB];
    bf16 *Qs = (bf16 *)fa_smem, *Ks = Qs + FA_QB * a.hd, *Vs = Ks + FA_TILE * a.stride;
    int b = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * FA_QB, nq = min(FA_QB, a.T - i0), ilast = i0 + nq - 1;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = h / a.group, hd = a.hd;
    size_t ldq = (size_t)a.H * hd, ldkv = (size_t)a.KV * hd;
    load_rows(Qs, hd, q + ((size_t)b * a.T + i0) * ldq + (size_t)h * hd, ldq, nq, FA_QB, hd);
    int klo = block_first_keys(fk, a, b, i0, nq); // its barrier also covers Qs
    const bf16 *kb = k + (size_t)b * a.T * ldkv + (size_t)g * hd, *vb = v + (size_t)b * a.T * ldkv + (size_t)g * hd;
    float m[FA_QPW], l[FA_QPW] = {}, acc[FA_QPW][FA_NC] = {};
#pragma unroll
    for (int u = 0; u < FA_QPW; u++) m[u] = -INFINITY;
    for (int t0 = klo; t0 <= ilast; t0 += FA_TILE) {
        int nk = min(FA_TILE, ilast + 1 - t0); // later keys are masked for every query here
        stage_kv(Ks, Vs, kb, vb, t0, nk, a);
#pragma unroll
        for (int u = 0; u < FA_QPW; u++) {
            int r = warp * FA_QPW + u, i = i0 + r;
            if (r >= nq || tile_misses(t0, fk[r], i)) continue; // warp-uniform
            int j = t0 + lane;
            bool ok = j >= fk[r] && j <= i;
            float c = ok ? capped(dot_rows(Qs + r * hd, Ks + lane * a.stride, hd), a) : -INFINITY;
            float mnew = fmaxf(m[u], warp_max(c)); // finite: the tile holds an allowed key
            float alpha = expf(m[u] - mnew);       // 0 on the first tile (m = -inf)
            float p = ok ? expf(c - mnew) : 0.0f;
            l[u] = l[u] * alpha + warp_sum(p);
            m[u] = mnew;
#pragma unroll
            for (int cc = 0; cc < FA_NC; cc++) acc[u][cc] *= alpha;
            for (int jj = 0; jj < nk; jj++) axpy_row(acc[u], __shfl_sync(FA_FULL, p, jj), Vs + jj * a.stride, hd, lane);
        }
    }
#pragma unroll
    for (int u = 0; u < FA_QPW; u++) {
        int r = warp * FA_QPW + u, i = i0 + r;
        if (r >= nq) continue;
        float inv = l[u] > 0 ? 1 / l[u] : 0.0f; // l = 0 only for a query without keys: out 0
        store_row(out + ((size_t)b * a.T + i) * ldq + (size_t)h * hd, acc[u], inv, hd, lane);
        if (lane == 0) lse[((size_t)b * a.H + h) * a.T + i] = l[u] > 0 ? m[u] + logf(l[u]) : -INFINITY;
    }
}

// Backward, query-major. Same grid and block as the forward. Sweep 0 writes
// D [B, H, T] (float); sweep 1 writes dq. Shared: Qs, Os (dout) [FA_QB][hd],
// Ks, Vs [FA_TILE][stride].
static __global__ void __launch_bounds__(FA_THREADS)
    attn_dq_kernel(bf16 *dq, float *Dg, const bf16 *dout, const bf16 *q, const bf16 *k, const bf16 *v,
                   const float *lse, fa_dims a) {
    extern __shared__ __align__(16) unsigned char fa_smem[];
    __shared__ int fk[FA_QB];
    bf16 *Qs = (bf16 *)fa_smem, *Os = Qs + FA_QB * a.hd, *Ks = Os + FA_QB * a.hd, *Vs = Ks + FA_TILE * a.stride;
    int b = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * FA_QB, nq = min(FA_QB, a.T - i0), ilast = i0 + nq - 1;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = h / a.group, hd = a.hd;
    size_t ldq = (size_t)a.H * hd, ldkv = (size_t)a.KV * hd, row0 = ((size_t)b * a.T + i0) * ldq + (size_t)h * hd;
    load_rows(Qs, hd, q + row0, ldq, nq, FA_QB, hd);
    load_rows(Os, hd, dout + row0, ldq, nq, FA_QB, hd);
    int klo = block_first_keys(fk, a, b, i0, nq);
    const bf16 *kb = k + (size_t)b * a.T * ldkv + (size_t)g * hd, *vb = v + (size_t)b * a.T * ldkv + (size_t)g * hd;
    size_t bh = (size_t)b * a.H + h;
    float li[FA_QPW], Di[FA_QPW] = {}, acc[FA_QPW][FA_NC] = {};
#pragma unroll
    for (int u = 0; u < FA_QPW; u++) li[u] = warp * FA_QPW + u < nq ? lse[bh * a.T + i0 + warp * FA_QPW + u] : 0.0f;
    for (int sweep = 0; sweep < 2; sweep++) {
        for (int t0 = klo; t0 <= ilast; t0 += FA_TILE) {
            int nk = min(FA_TILE, ilast + 1 - t0);
            stage_kv(Ks, Vs, kb, vb, t0, nk, a);
#pragma unroll
            for (int u = 0; u < FA_QPW; u++) {
                int r = warp * FA_QPW + u, i = i0 + r, j = t0 + lane;
                if (r >= nq || tile_misses(t0, fk[r], i)) continue; // warp-uniform
                bool ok = j >= fk[r] && j <= i;
                float c = 0, p = 0, dp = 0;
                if (ok) {
                    c = capped(dot_rows(Qs + r * hd, Ks + lane * a.stride, hd), a);
                    p = expf(c - li[u]);
                    dp = dot_rows(Os + r * hd, Vs + lane * a.stride, hd);
                }
                if (sweep == 0) { // per-lane partial of D; the lanes are summed after the sweep
                    Di[u] += p * dp;
                    continue;
                }
                float ds = ok ? score_grad(c, p, dp, Di[u], a) : 0.0f;
                for (int jj = 0; jj < nk; jj++)
                    axpy_row(acc[u], __shfl_sync(FA_FULL, ds, jj), Ks + jj * a.stride, hd, lane);
            }
        }
        if (sweep == 1) break;
#pragma unroll
        for (int u = 0; u < FA_QPW; u++) { // D_i = sum_j P_ij dP_ij, for this sweep 1 and the key-major kernel
            int r = warp * FA_QPW + u;
            Di[u] = warp_sum(Di[u]);
            if (lane == 0 && r < nq) Dg[bh * a.T + i0 + r] = Di[u];
        }
    }
#pragma unroll
    for (int u = 0; u < FA_QPW; u++) {
        int r = warp * FA_QPW + u;
        if (r < nq) store_row(dq + row0 + (size_t)r * ldq, acc[u], 1.0f, hd, lane);
    }
}

// Backward, key-major. Grid (ceil(T/FA_KB), KV, B); block FA_THREADS; warp w
// owns keys j0 + w*FA_KPW + u. Loops over the query heads of KV head g and over
// tiles of 32 queries (a lane per query) from j0 on, skipping tiles no query of
// which sees the block's keys. Shared: Ks, Vs [FA_KB][hd], Qs, Os [FA_TILE][stride].
static __global__ void __launch_bounds__(FA_THREADS)
    attn_dkdv_kernel(bf16 *dk, bf16 *dv, const bf16 *dout, const bf16 *q, const bf16 *k, const bf16 *v,
                     const float *lse, const float *Dg, fa_dims a) {
    extern __shared__ __align__(16) unsigned char fa_smem[];
    int hd = a.hd;
    bf16 *Ks = (bf16 *)fa_smem, *Vs = Ks + FA_KB * hd, *Qs = Vs + FA_KB * hd, *Os = Qs + FA_TILE * a.stride;
    int b = blockIdx.z, g = blockIdx.y, j0 = blockIdx.x * FA_KB, nk = min(FA_KB, a.T - j0), jlast = j0 + nk - 1;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    size_t ldq = (size_t)a.H * hd, ldkv = (size_t)a.KV * hd, krow0 = ((size_t)b * a.T + j0) * ldkv + (size_t)g * hd;
    load_rows(Ks, hd, k + krow0, ldkv, nk, FA_KB, hd);
    load_rows(Vs, hd, v + krow0, ldkv, nk, FA_KB, hd);
    __syncthreads();
    int qend = a.T - 1; // last query that can see key jlast
    if (a.window > 0 && a.window - 1 < a.T - 1 - jlast) qend = jlast + a.window - 1;
    float dka[FA_KPW][FA_NC] = {}, dva[FA_KPW][FA_NC] = {};
    for (int h = g * a.group; h < (g + 1) * a.group; h++) {
        size_t bh = (size_t)b * a.H + h;
        for (int qa = j0; qa <= qend; qa += FA_TILE) {
            int nq = min(FA_TILE, qend + 1 - qa), i = qa + lane;
            int fki = lane < nq ? first_key(a, b, i) : INT_MAX;
            // The same in every warp, so the barriers below stay block-uniform.
            if (!__any_sync(FA_FULL, fki <= jlast && fki <= i)) continue;
            size_t qrow0 = ((size_t)b * a.T + qa) * ldq + (size_t)h * hd;
            __syncthreads(); // every warp is done with the previous tile
            load_rows(Qs, a.stride, q + qrow0, ldq, nq, FA_TILE, hd);
            load_rows(Os, a.stride, dout + qrow0, ldq, nq, FA_TILE, hd);
            __syncthreads();
            float li = lane < nq ? lse[bh * a.T + i] : 0.0f, Di = lane < nq ? Dg[bh * a.T + i] : 0.0f;
#pragma unroll
            for (int u = 0; u < FA_KPW; u++) {
                int jl = warp * FA_KPW + u, j = j0 + jl;
                bool ok = fki <= j && j <= i; // fki = INT_MAX past nq
                if (jl >= nk || !__any_sync(FA_FULL, ok)) continue; // warp-uniform
                float p = 0, ds = 0;
                if (ok) {
                    float c = capped(dot_rows(Qs + lane * a.stride, Ks + jl * hd, hd), a);
                    p = expf(c - li);
                    ds = score_grad(c, p, dot_rows(Os + lane * a.stride, Vs + jl * hd, hd), Di, a);
                }
                for (int ii = 0; ii < nq; ii++) {
                    axpy_row(dva[u], __shfl_sync(FA_FULL, p, ii), Os + ii * a.stride, hd, lane);
                    axpy_row(dka[u], __shfl_sync(FA_FULL, ds, ii), Qs + ii * a.stride, hd, lane);
                }
            }
        }
    }
#pragma unroll
    for (int u = 0; u < FA_KPW; u++) {
        int jl = warp * FA_KPW + u;
        if (jl >= nk) continue;
        store_row(dk + krow0 + (size_t)jl * ldkv, dka[u], 1.0f, hd, lane);
        store_row(dv + krow0 + (size_t)jl * ldkv, dva[u], 1.0f, hd, lane);
    }
}

// Decoding. Grid (H, B); block 32*FA_CACHED_WARPS. Warp w takes slots w, w+4, ...
// (a slot per step, lanes over head_dim) with its own online softmax; warp 0
// merges the warps' partial results in warp order.
static __global__ void __launch_bounds__(32 * FA_CACHED_WARPS)
    attn_cached_kernel(bf16 *out, const bf16 *q, const bf16 *k, const bf16 *v, const int32_t *slot_pos,
                       const int32_t *pos, int S, fa_dims a) {
    __shared__ float part_acc[FA_CACHED_WARPS][FA_MAX_HD], part_m[FA_CACHED_WARPS], part_l[FA_CACHED_WARPS];
    int h = blockIdx.x, b = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32, hd = a.hd;
    size_t qd = (size_t)a.H * hd, kvd = (size_t)a.KV * hd, koff = (size_t)(h / a.group) * hd;
    bf16 *o = out + b * qd + (size_t)h * hd;
    int now = pos[b];
    if (now < 0) { // idle row (the whole block returns)
        for (int d = threadIdx.x; d < hd; d += blockDim.x) o[d] = __float2bfloat16(0.0f);
        return;
    }
    float qr[FA_NC] = {}, acc[FA_NC] = {}, m = -INFINITY, l = 0;
    axpy_row(qr, 1.0f, q + b * qd + (size_t)h * hd, hd, lane); // qr = this lane's columns of q (exact)
    for (int j = warp; j < S; j += FA_CACHED_WARPS) {
        int32_t sp = slot_pos[(size_t)b * S + j];
        if (sp < 0 || sp > now || (a.window > 0 && now - sp >= a.window)) continue; // warp-uniform
        const bf16 *kj = k + ((size_t)b * S + j) * kvd + koff, *vj = v + ((size_t)b * S + j) * kvd + koff;
        float part = 0;
#pragma unroll
        for (int c = 0; c < FA_NC; c++) {
            int d = c * 32 + lane;
            if (d < hd) part = fmaf(qr[c], f32(kj[d]), part);
        }
        float score = capped(warp_sum(part), a);
        if (score > m) { // rescale what was summed against the old maximum
            float shrink = expf(m - score);
            l *= shrink;
#pragma unroll
            for (int c = 0; c < FA_NC; c++) acc[c] *= shrink;
            m = score;
        }
        float w = expf(score - m);
        l += w;
        axpy_row(acc, w, vj, hd, lane);
    }
#pragma unroll
    for (int c = 0; c < FA_NC; c++)
        if (c * 32 + lane < hd) part_acc[warp][c * 32 + lane] = acc[c];
    if (lane == 0) part_m[warp] = m, part_l[warp] = l;
    __syncthreads();
    if (warp != 0) return;
    float M = -INFINITY, L = 0, res[FA_NC] = {0};
    for (int w = 0; w < FA_CACHED_WARPS; w++) M = fmaxf(M, part_m[w]);
    for (int w = 0; w < FA_CACHED_WARPS; w++) {
        if (part_l[w] == 0) continue; // a warp that saw no slot (m = -inf)
        float e = expf(part_m[w] - M);
        L += part_l[w] * e;
#pragma unroll
        for (int c = 0; c < FA_NC; c++)
            if (c * 32 + lane < hd) res[c] = fmaf(part_acc[w][c * 32 + lane], e, res[c]);
    }
    store_row(o, res, L > 0 ? 1 / L : 0.0f, hd, lane); // no visible slot: 0, as on the CPU
}

// Grid (ceil(kvd/256), B); a thread per element of row b's key and value.
static __global__ void kv_store_kernel(bf16 *cache_k, bf16 *cache_v, int32_t *slot_pos, const bf16 *k, const bf16 *v,
                                       const int32_t *pos, int S, int kvd) {
    int b = blockIdx.y, e = blockIdx.x * blockDim.x + threadIdx.x, p = pos[b];
    if (p < 0 || e >= kvd) return;
    size_t slot = (size_t)b * S + p % S;
    cache_k[slot * kvd + e] = k[(size_t)b * kvd + e];
    cache_v[slot * kvd + e] = v[(size_t)b * kvd + e];
    if (e == 0) slot_pos[slot] = p;
}

// Grid (S): a block per slot j of one row, its threads striding over the key and
// value; slot j takes the last prompt position p < n with p % S == j (-1: none).
// One writer per slot: no race between positions that share a ring slot.
static __global__ void kv_store_prompt_kernel(bf16 *cache_k, bf16 *cache_v, int32_t *slot_pos, const bf16 *k,
                                              const bf16 *v, int n, int S, int kvd) {
    int j = blockIdx.x, p = j < n ? j + (n - 1 - j) / S * S : -1;
    if (threadIdx.x == 0) slot_pos[j] = p;
    if (p < 0) return;
    for (int e = threadIdx.x; e < kvd; e += blockDim.x) {
        cache_k[(size_t)j * kvd + e] = k[(size_t)p * kvd + e];
        cache_v[(size_t)j * kvd + e] = v[(size_t)p * kvd + e];
    }
}

// Shared row length (bf16) for tiles read a row per lane: an odd number of
// 32-bit words, so 32 lanes at the same column hit 32 different banks.
static int padded_stride(int hd) {
    int words = hd / 2 + 1;
    return 2 * (words % 2 ? words : words + 1);
}

// Host view of the shape; a shape these kernels cannot run is a programming error.
static fa_dims dims_of(const attn_shape *s) {
    if (s->head_dim < 1 || s->head_dim > FA_MAX_HD || s->n_kv_heads < 1 || s->n_heads % s->n_kv_heads != 0) {
        fprintf(stderr, "gemmakd: CUDA attention: head_dim %d (1..%d), %d heads over %d KV heads unsupported\n",
                s->head_dim, FA_MAX_HD, s->n_heads, s->n_kv_heads);
        exit(1);
    }
    fa_dims a;
    a.B = s->B, a.T = s->T, a.H = s->n_heads, a.KV = s->n_kv_heads, a.hd = s->head_dim;
    a.group = s->n_heads / s->n_kv_heads, a.window = s->window, a.stride = padded_stride(s->head_dim);
    a.scale = (float)s->scale, a.cap = s->softcap > 0 ? (float)s->softcap : 0.0f, a.doc = s->doc_begin;
    return a;
}

// Dynamic shared bytes for `plain` rows of hd and `padded` rows of stride.
static size_t smem_bytes(const fa_dims &a, int plain, int padded) {
    return ((size_t)plain * a.hd + (size_t)padded * a.stride) * sizeof(bf16);
}

// Kernels asking for more than the default 48 KiB of dynamic shared memory must
// opt in; *granted remembers the largest size already allowed for that kernel.
template <typename Kernel> static void allow_smem(Kernel *kernel, size_t bytes, size_t *granted) {
    if (bytes <= 48 * 1024 || bytes <= *granted) return;
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    *granted = bytes;
}
static size_t granted_forward, granted_dq, granted_dkdv;

extern "C" {

// Backward: D [B, H, T] float, in bf16 units rounded up to 8 (16 bytes). Forward: none.
size_t attention_scratch_cuda(const attn_shape *s, bool backward) {
    if (!backward) return 0;
    size_t units = 2 * (size_t)s->B * s->n_heads * s->T;
    return (units + 7) / 8 * 8;
}

void attention_forward_cuda(gk_bf16 *out, float *lse, const gk_bf16 *q, const gk_bf16 *k, const gk_bf16 *v,
                            const attn_shape *s, gk_bf16 *scratch) {
    (void)scratch;
    fa_dims a = dims_of(s);
    if (a.B <= 0 || a.T <= 0 || a.H <= 0) return;
    size_t smem = smem_bytes(a, FA_QB, 2 * FA_TILE);
    allow_smem(attn_forward_kernel, smem, &granted_forward);
    dim3 grid(blocks_for((size_t)a.T, FA_QB), a.H, a.B);
    attn_forward_kernel<<<grid, FA_THREADS, smem>>>(dev(out), lse, dev(q), dev(k), dev(v), a);
    CUDA_LAUNCHED();
}

void attention_backward_cuda(gk_bf16 *dq, gk_bf16 *dk, gk_bf16 *dv, const gk_bf16 *dout, const gk_bf16 *q,
                             const gk_bf16 *k, const gk_bf16 *v, const float *lse, const attn_shape *s,
                             gk_bf16 *scratch) {
    fa_dims a = dims_of(s);
    if (a.B <= 0 || a.T <= 0 || a.H <= 0) return;
    float *D = reinterpret_cast<float *>(scratch); // [B, H, T]
    size_t smem = smem_bytes(a, 2 * FA_QB, 2 * FA_TILE);
    allow_smem(attn_dq_kernel, smem, &granted_dq);
    dim3 grid_q(blocks_for((size_t)a.T, FA_QB), a.H, a.B);
    attn_dq_kernel<<<grid_q, FA_THREADS, smem>>>(dev(dq), D, dev(dout), dev(q), dev(k), dev(v), lse, a);
    CUDA_LAUNCHED();
    smem = smem_bytes(a, 2 * FA_KB, 2 * FA_TILE);
    allow_smem(attn_dkdv_kernel, smem, &granted_dkdv);
    dim3 grid_k(blocks_for((size_t)a.T, FA_KB), a.KV, a.B);
    attn_dkdv_kernel<<<grid_k, FA_THREADS, smem>>>(dev(dk), dev(dv), dev(dout), dev(q), dev(k), dev(v), lse, D, a);
    CUDA_LAUNCHED();
}

void attention_cached_cuda(gk_bf16 *out, const gk_bf16 *q, const gk_bf16 *k, const gk_bf16 *v,
                           const int32_t *slot_pos, const int32_t *pos, int B, int S, const attn_shape *s) {
    fa_dims a = dims_of(s);
    if (B <= 0 || a.H <= 0) return;
    dim3 grid(a.H, B);
    attn_cached_kernel<<<grid, 32 * FA_CACHED_WARPS>>>(dev(out), dev(q), dev(k), dev(v), slot_pos, pos, S, a);
    CUDA_LAUNCHED();
}

void kv_store_cuda(gk_bf16 *cache_k, gk_bf16 *cache_v, int32_t *slot_pos, const gk_bf16 *k, const gk_bf16 *v,
                   const int32_t *pos, int B, int S, int kvd) {
    if (B <= 0 || S <= 0 || kvd <= 0) return;
    dim3 grid(blocks_for((size_t)kvd, 256), B);
    kv_store_kernel<<<grid, 256>>>(dev(cache_k), dev(cache_v), slot_pos, dev(k), dev(v), pos, S, kvd);
    CUDA_LAUNCHED();
}

void kv_store_prompt_cuda(gk_bf16 *cache_k, gk_bf16 *cache_v, int32_t *slot_pos, const gk_bf16 *k, const gk_bf16 *v,
                          int n, int S, int kvd) {
    if (S <= 0 || kvd <= 0) return;
    kv_store_prompt_kernel<<<S, 128>>>(dev(cache_k), dev(cache_v), slot_pos, dev(k), dev(v), n, S, kvd);
    CUDA_LAUNCHED();
}

} // extern "C"

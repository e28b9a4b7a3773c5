// Measures the FMA ceiling: ten independent accumulator chains per thread keep
// both FMA pipes of a core busy (4-cycle latency, two per cycle). The vector
// width is chosen at run time from what the CPU reports.
#include "cli/fma_peak.h"

#include <immintrin.h>
#include <stdbool.h>
#include <omp.h>

#include "common/timer.h"

enum { CHAINS = 10, ITERATIONS = 30000000, TRIES = 4 };

// Starting values the compiler cannot see, so it cannot merge chains that would start equal.
static volatile float seed = 1.0f;

__attribute__((target("avx2,fma"))) static float chains_avx2(void) {
    __m256 acc[CHAINS], mul = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_ps(seed + (float)c);
    for (long i = 0; i < ITERATIONS; i++) {
#pragma GCC unroll 10
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], mul, add);
    }
    float sum = 0;
    for (int c = 0; c < CHAINS; c++) sum += acc[c][0];
    return sum;
}

__attribute__((target("avx512f"))) static float chains_avx512(void) {
    __m512 acc[CHAINS], mul = _mm512_set1_ps(0.999999f), add = _mm512_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps(seed + (float)c);
    for (long i = 0; i < ITERATIONS; i++) {
#pragma GCC unroll 10
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], mul, add);
    }
    float sum = 0;
    for (int c = 0; c < CHAINS; c++) sum += acc[c][0];
    return sum;
}

// The best of a few tries: a peak is what the cores can do, and a neighbour on a shared machine only slows a try.
double fma_peak_gflops(int threads, const char **unit) {
    __builtin_cpu_init();
    bool wide = __builtin_cpu_supports("avx512f");
    if (!wide && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
        *unit = "none";
        return 0;
    }
    *unit = wide ? "avx512" : "avx2";
    float (*chains)(void) = wide ? chains_avx512 : chains_avx2;
    float total = chains(); // wakes the core to its working clock
    double best = 1e30;
    for (int attempt = 0; attempt < TRIES; attempt++) {
        double t0 = now_seconds();
#pragma omp parallel num_threads(threads) reduction(+ : total)
        total += chains();
        double seconds = now_seconds() - t0;
        if (seconds < best) best = seconds;
    }
    seed = total; // the sums are used, so the chains are computed
    int lanes = wide ? 16 : 8;
    return (double)threads * ITERATIONS * CHAINS * lanes * 2 / best / 1e9; // lanes x (multiply + add)
}

// Measures the FMA ceiling: ten independent accumulator chains per thread keep
// both FMA pipes of a core busy (4-cycle latency, two per cycle).
#include "cli/fma_peak.h"

#include <omp.h>

#include "common/timer.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

enum { CHAINS = 10, ITERATIONS = 30000000, TRIES = 4 };

// Starting values the compiler cannot see, so it cannot merge chains that would start equal.
static volatile float seed = 1.0f;

static float run_chains(void) {
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

// The best of a few tries: a peak is what the cores can do, and a neighbour on a shared machine only slows a try.
double fma_peak_gflops(int threads) {
    float total = run_chains(); // wakes the core to its working clock
    double best = 1e30;
    for (int attempt = 0; attempt < TRIES; attempt++) {
        double t0 = now_seconds();
#pragma omp parallel num_threads(threads) reduction(+ : total)
        total += run_chains();
        double seconds = now_seconds() - t0;
        if (seconds < best) best = seconds;
    }
    seed = total; // the sums are used, so the chains are computed
    return (double)threads * ITERATIONS * CHAINS * 16 / best / 1e9; // 8 lanes x (multiply + add)
}
#else
double fma_peak_gflops(int threads) {
    (void)threads;
    return 0;
}
#endif

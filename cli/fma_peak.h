// The cores' float32 multiply-add rate, the ceiling any matrix product on them can reach.
#ifndef GK_FMA_PEAK_H
#define GK_FMA_PEAK_H

// GFLOP/s of independent 8-wide fused multiply-adds on registers with `threads` threads
// (no memory traffic); 0 when this build has no AVX2+FMA to measure with.
double fma_peak_gflops(int threads);

#endif

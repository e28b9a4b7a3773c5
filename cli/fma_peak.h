// The cores' float32 multiply-add rate, the ceiling any float32 matrix product
// on them can reach, measured with the widest vector unit the CPU has.
#ifndef GK_FMA_PEAK_H
#define GK_FMA_PEAK_H

// GFLOP/s of independent fused multiply-adds on registers with `threads`
// threads (no memory traffic), on 16-wide AVX-512 when the CPU has it, else
// 8-wide AVX2; *unit names which ("avx512" / "avx2"). 0 (unit "none") without either.
double fma_peak_gflops(int threads, const char **unit);

#endif

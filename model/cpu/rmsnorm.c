// RMSNorm with the Gemma (1 + w) scale, computed in real_acc from storage.
#include <string.h>

#include "model/real.h"

void FN(rmsnorm_forward)(real *y, real_acc *rstd, const real *x, const real *w, int n, int d, double eps) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const real *xi = x + (size_t)i * d;
        real *yi = y + (size_t)i * d;
        double ss = 0;
#pragma omp simd reduction(+ : ss)
        for (int j = 0; j < d; j++) {
            double v = to_acc(xi[j]);
            ss += v * v;
        }
        real_acc r = (real_acc)(1.0 / sqrt(ss / d + eps));
        rstd[i] = r;
#pragma omp simd
        for (int j = 0; j < d; j++) yi[j] = to_real((to_acc(xi[j]) * r) * ((real_acc)1 + to_acc(w[j])));
    }
}

// y_j = x_j r g_j with g = 1 + w and r = (mean(x^2) + eps)^-1/2:
// dx_j = r g_j dy_j - x_j r^3 / d * sum_k g_k dy_k x_k;  dw_j = sum_tokens dy_j x_j r.
void FN(rmsnorm_backward)(real *dx, real *dw, const real *dy, const real *x, const real *w, const real_acc *rstd,
                          int n, int d, bool accumulate_dx, real_acc *partials) {
    int n_chunks = rmsnorm_partial_rows(n);
#pragma omp parallel for schedule(static)
    for (int c = 0; c < n_chunks; c++) {
        real_acc *part = partials + (size_t)c * d;
        memset(part, 0, (size_t)d * sizeof *part);
        int end = (c + 1) * NORM_CHUNK < n ? (c + 1) * NORM_CHUNK : n;
        for (int i = c * NORM_CHUNK; i < end; i++) {
            const real *xi = x + (size_t)i * d, *dyi = dy + (size_t)i * d;
            real *dxi = dx + (size_t)i * d;
            real_acc r = rstd[i];
            double dot = 0;
#pragma omp simd reduction(+ : dot)
            for (int j = 0; j < d; j++) dot += (double)(((real_acc)1 + to_acc(w[j])) * to_acc(dyi[j])) * to_acc(xi[j]);
            real_acc coef = (real_acc)(dot * (double)r * r * r / d);
#pragma omp simd
            for (int j = 0; j < d; j++) {
                real_acc xj = to_acc(xi[j]), dyj = to_acc(dyi[j]);
                real_acc g = r * ((real_acc)1 + to_acc(w[j])) * dyj - coef * xj;
                dxi[j] = to_real(accumulate_dx ? to_acc(dxi[j]) + g : g);
                part[j] += dyj * xj * r;
            }
        }
    }
    // Chunk sums in chunk order (the same for any thread count), added to dw once.
#pragma omp parallel for schedule(static)
    for (int j = 0; j < d; j++) {
        real_acc sum = 0;
        for (int c = 0; c < n_chunks; c++) sum += partials[(size_t)c * d + j];
        dw[j] = to_real(to_acc(dw[j]) + sum);
    }
}

// Matrix products through CBLAS (OpenBLAS, OpenMP build).
#include <cblas.h>

#include "model/real.h"

void FN(matmul_forward)(real *y, const real *x, const real *w, int n, int in, int out) {
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1, x, in, w, in, 0, y, out);
}

void FN(matmul_forward_acc)(real_acc *y, const real *x, const real *w, int n, int in, int out) {
    FN(matmul_forward)(y, x, w, n, in, out); // real_acc is real on the CPU
}

void FN(matmul_backward)(real *dx, real *dw, const real *dy, const real *x, const real *w, int n, int in, int out,
                         bool accumulate_dx) {
    if (dx) GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1, dy, out, w, in, accumulate_dx ? 1 : 0, dx, in);
    if (dw) GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1, dy, out, x, in, 1, dw, in);
}

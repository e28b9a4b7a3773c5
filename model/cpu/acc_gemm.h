// Small row-major products in real_acc for kernels that run them on each
// thread (attention's blocks): oneDNN's sgemm in float, OpenBLAS's dgemm for
// the float64 twin. Include after model/real.h.
#ifndef GK_ACC_GEMM_H
#define GK_ACC_GEMM_H

#ifdef GK_REAL_F64
#include <cblas.h>

static inline void acc_gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double *A, int lda,
                            const double *B, int ldb, double beta, double *C, int ldc) {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, A, lda,
                B, ldb, beta, C, ldc);
}
#else
#include "model/cpu/products.h"

static inline void acc_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *A, int lda,
                            const float *B, int ldb, float beta, float *C, int ldc) {
    cpu_sgemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
#endif

#endif

// The model's matrix products on the CPU: oneDNN for float32 and bf16
// (model/cpu/products.h), OpenBLAS's dgemm for the float64 twin.
#include "model/real.h"

#ifdef GK_REAL_F64
#include "model/cpu/acc_gemm.h"

// C[m, n] (= or +=) op(A) op(B), row-major.
static void product(bool ta, bool tb, int m, int n, int k, const double *A, int lda, const double *B, int ldb,
                    bool accumulate, double *C, int ldc) {
    acc_gemm(ta, tb, m, n, k, 1, A, lda, B, ldb, accumulate ? 1 : 0, C, ldc);
}
#define product_acc product
#else
#include "model/cpu/products.h"

static const product_type REAL_TYPE = REAL_IS_ACC ? PRODUCT_F32 : PRODUCT_BF16;

static void product_into(product_type out, bool ta, bool tb, int m, int n, int k, const real *A, int lda,
                         const real *B, int ldb, bool accumulate, void *C, int ldc) {
    cpu_product p = {m, n, k, ta, tb, accumulate, A, B, C, lda, ldb, ldc, REAL_TYPE, out};
    cpu_matmul(&p);
}

static void product(bool ta, bool tb, int m, int n, int k, const real *A, int lda, const real *B, int ldb,
                    bool accumulate, real *C, int ldc) {
    product_into(REAL_TYPE, ta, tb, m, n, k, A, lda, B, ldb, accumulate, C, ldc);
}

static void product_acc(bool ta, bool tb, int m, int n, int k, const real *A, int lda, const real *B, int ldb,
                        bool accumulate, real_acc *C, int ldc) {
    product_into(PRODUCT_F32, ta, tb, m, n, k, A, lda, B, ldb, accumulate, C, ldc);
}
#endif

void FN(matmul_forward)(real *y, const real *x, const real *w, int n, int in, int out) {
    product(false, true, n, out, in, x, in, w, in, false, y, out);
}

void FN(matmul_forward_acc)(real_acc *y, const real *x, const real *w, int n, int in, int out) {
    product_acc(false, true, n, out, in, x, in, w, in, false, y, out);
}

void FN(matmul_backward)(real *dx, real *dw, const real *dy, const real *x, const real *w, int n, int in, int out,
                         bool accumulate_dx) {
    if (dx) product(false, false, n, in, out, dy, out, w, in, accumulate_dx, dx, in);
    if (dw) product(true, false, out, in, n, dy, out, x, in, true, dw, in);
}

void FN(matmul_backward_acc)(real_acc *dx, real_acc *dw, const real *dy, const real *x, const real *w, int n, int in,
                             int out, bool accumulate_dx) {
    if (dx) product_acc(false, false, n, in, out, dy, out, w, in, accumulate_dx, dx, in);
    if (dw) product_acc(true, false, out, in, n, dy, out, x, in, true, dw, in);
}

// Matrix products on the CPU through oneDNN (the 2.x C API), which picks its
// kernel for the CPU it runs on: AVX2, AVX-512, AVX512-BF16 or AMX. bf16
// inputs are multiplied exactly and accumulated in float32.
#ifndef GK_CPU_PRODUCTS_H
#define GK_CPU_PRODUCTS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { PRODUCT_F32, PRODUCT_BF16 } product_type;

// C[m, n] (=, or += when accumulate) A[m, k] . B[k, n], row-major with leading
// dimensions; trans_a: A is stored as [k, m]; trans_b: B is stored as [n, k].
// A and B have type `in`, C has type `out`.
typedef struct {
    int m, n, k;
    bool trans_a, trans_b, accumulate;
    const void *A, *B;
    void *C;
    int lda, ldb, ldc;
    product_type in, out;
} cpu_product;

// Runs a product; a failure inside oneDNN is a bug (or no memory): reported, and the process exits.
void cpu_matmul(const cpu_product *p);

// C[m, n] = alpha op(A) op(B) + beta C in float32, row-major (small products
// inside threaded kernels: attention's blocks). Runs on the calling thread.
void cpu_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc);

// What the CPU offers and what oneDNN chose for a product from `in` into `out`:
// "oneDNN 2.6.3, ISA avx512_core_amx, kernel brg:avx512_core_amx_bf16".
// *generic: the kernel is a reference (unoptimised) one; *widened: bf16 products
// run as float32 ones (oneDNN has no bf16 kernel for this CPU).
void cpu_products_describe(product_type in, product_type out, char *text, size_t n, bool *generic, bool *widened);

#endif

// Matrix products on the GPU through cuBLASLt: bf16 inputs, fp32 accumulation.
// Row-major [r, c] arrays are column-major [c, r] to cuBLAS, so each product
// below is written for the transposed, column-major view (shapes in comments).
#include <cublasLt.h>

#include "model/cuda/common.cuh"

#define CUBLAS_CHECK(call) cublas_check((call), __FILE__, __LINE__)
static void cublas_check(cublasStatus_t s, const char *file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return;
    fprintf(stderr, "gemmakd: cuBLASLt error %d at %s:%d\n", (int)s, file, line);
    exit(1);
}

enum { WORKSPACE_BYTES = 32 << 20 };
static cublasLtHandle_t handle;
static void *workspace;

static void ensure_handle(void) {
    if (handle) return;
    CUBLAS_CHECK(cublasLtCreate(&handle));
    CUDA_CHECK(cudaMalloc(&workspace, WORKSPACE_BYTES));
}

// One product in cuBLAS terms: D[m, n] = alpha op(A) op(B) + beta D, column-major.
typedef struct {
    bool trans_a, trans_b;
    int m, n, k;
    const void *A;
    int lda;
    const void *B;
    int ldb;
    void *D;
    int ldd;
    cudaDataType_t d_type; // CUDA_R_16BF or CUDA_R_32F
    float beta;
} product;

static void layout(cublasLtMatrixLayout_t *l, cudaDataType_t type, int rows, int cols, int ld) {
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(l, type, rows, cols, ld));
}

static void run(const product *p) {
    ensure_handle();
    cublasLtMatmulDesc_t desc;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = p->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = p->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    cublasLtMatrixLayout_t a, b, d;
    layout(&a, CUDA_R_16BF, p->trans_a ? p->k : p->m, p->trans_a ? p->m : p->k, p->lda);
    layout(&b, CUDA_R_16BF, p->trans_b ? p->n : p->k, p->trans_b ? p->k : p->n, p->ldb);
    layout(&d, p->d_type, p->m, p->n, p->ldd);
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = WORKSPACE_BYTES;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    cublasLtMatmulHeuristicResult_t heuristic;
    int found = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle, desc, a, b, d, d, pref, 1, &heuristic, &found));
    if (found == 0) {
        fprintf(stderr, "gemmakd: cuBLASLt has no algorithm for a %d x %d x %d product\n", p->m, p->n, p->k);
        exit(1);
    }
    float alpha = 1;
    CUBLAS_CHECK(cublasLtMatmul(handle, desc, &alpha, p->A, a, p->B, b, &p->beta, p->D, d, p->D, d, &heuristic.algo,
                                workspace, WORKSPACE_BYTES, 0));
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(d);
    cublasLtMatmulDescDestroy(desc);
}

// y[n, out] = x[n, in] . w[out, in]^T, i.e. column-major Y'[out, n] = W'^T[out, in] X'[in, n].
static void forward(void *y, cudaDataType_t y_type, const gk_bf16 *x, const gk_bf16 *w, int n, int in, int out) {
    product p = {true, false, out, n, in, w, in, x, in, y, out, y_type, 0.0f};
    run(&p);
}

extern "C" void matmul_forward_cuda(gk_bf16 *y, const gk_bf16 *x, const gk_bf16 *w, int n, int in, int out) {
    forward(y, CUDA_R_16BF, x, w, n, in, out);
}

extern "C" void matmul_forward_acc_cuda(float *y, const gk_bf16 *x, const gk_bf16 *w, int n, int in, int out) {
    forward(y, CUDA_R_32F, x, w, n, in, out);
}

extern "C" void matmul_backward_cuda(gk_bf16 *dx, gk_bf16 *dw, const gk_bf16 *dy, const gk_bf16 *x, const gk_bf16 *w,
                                     int n, int in, int out, bool accumulate_dx) {
    if (dx) { // dx[n, in] = dy[n, out] . w[out, in]: DX'[in, n] = W'[in, out] DY'[out, n]
        product p = {false, false, in, n, out, w, in, dy, out, dx, in, CUDA_R_16BF, accumulate_dx ? 1.0f : 0.0f};
        run(&p);
    }
    if (dw) { // dw[out, in] += dy^T[out, n] . x[n, in]: DW'[in, out] += X'[in, n] DY'^T[n, out]
        product p = {false, true, in, out, n, x, in, dy, out, dw, in, CUDA_R_16BF, 1.0f};
        run(&p);
    }
}

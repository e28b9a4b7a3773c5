// Matrix products on the GPU through cuBLASLt: bf16 inputs, fp32 accumulation.
// Row-major [r, c] arrays are column-major [c, r] to cuBLAS, so each product
// below is written for the transposed, column-major view (shapes in comments).
#include <cublasLt.h>
#include <string.h>

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

// A product's descriptors and chosen algorithm, made once per shape: a step
// runs the same few dozen shapes every time, and the heuristic query is slow.
typedef struct {
    product key;         // the shape (same_shape ignores its pointers)
    uint32_t align[3];   // of A, B and D: the algorithm may rely on them
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, d;
    cublasLtMatmulAlgo_t algo;
} plan;

enum { MAX_PLANS = 256 };
static plan plans[MAX_PLANS];
static int n_plans;

// Largest power of two (at most 256) dividing the address: cuBLASLt's heuristic
// otherwise assumes 256-byte alignment, which slices of activations lack.
static uint32_t alignment_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    uint32_t align = 256;
    while (align > 1 && a % align) align /= 2;
    return align;
}

static void alignments(const product *p, uint32_t align[3]) {
    align[0] = alignment_of(p->A), align[1] = alignment_of(p->B), align[2] = alignment_of(p->D);
}

static bool same_shape(const product *x, const product *y) {
    return x->trans_a == y->trans_a && x->trans_b == y->trans_b && x->m == y->m && x->n == y->n && x->k == y->k &&
           x->lda == y->lda && x->ldb == y->ldb && x->ldd == y->ldd && x->d_type == y->d_type &&
           (x->beta != 0) == (y->beta != 0);
}

static void make_plan(plan *pl, const product *p, const uint32_t align[3]) {
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&pl->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = p->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = p->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pl->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pl->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&pl->a, CUDA_R_16BF, p->trans_a ? p->k : p->m, p->trans_a ? p->m : p->k,
                                            p->lda));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&pl->b, CUDA_R_16BF, p->trans_b ? p->n : p->k, p->trans_b ? p->k : p->n,
                                            p->ldb));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&pl->d, p->d_type, p->m, p->n, p->ldd));
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = WORKSPACE_BYTES;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    const cublasLtMatmulPreferenceAttributes_t which[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    const uint32_t values[4] = {align[0], align[1], align[2], align[2]}; // C is D
    for (int i = 0; i < 4; i++)
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, which[i], &values[i], sizeof values[i]));
    cublasLtMatmulHeuristicResult_t heuristic;
    int found = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle, pl->desc, pl->a, pl->b, pl->d, pl->d, pref, 1, &heuristic,
                                                &found));
    cublasLtMatmulPreferenceDestroy(pref);
    if (found == 0) {
        fprintf(stderr, "gemmakd: cuBLASLt has no algorithm for a %d x %d x %d product\n", p->m, p->n, p->k);
        exit(1);
    }
    pl->algo = heuristic.algo;
    pl->key = *p;
    for (int i = 0; i < 3; i++) pl->align[i] = align[i];
}

static const plan *plan_for(const product *p) {
    uint32_t align[3];
    alignments(p, align);
    for (int i = 0; i < n_plans; i++)
        if (same_shape(&plans[i].key, p) && !memcmp(plans[i].align, align, sizeof align)) return &plans[i];
    plan *pl = &plans[n_plans < MAX_PLANS ? n_plans++ : MAX_PLANS - 1]; // past the table: reuse the last slot
    if (pl->desc) { // replacing it: release its descriptors
        cublasLtMatmulDescDestroy(pl->desc);
        cublasLtMatrixLayoutDestroy(pl->a);
        cublasLtMatrixLayoutDestroy(pl->b);
        cublasLtMatrixLayoutDestroy(pl->d);
    }
    make_plan(pl, p, align);
    return pl;
}

static void run(const product *p) {
    ensure_handle();
    const plan *pl = plan_for(p);
    float alpha = 1;
    CUBLAS_CHECK(cublasLtMatmul(handle, pl->desc, &alpha, p->A, pl->a, p->B, pl->b, &p->beta, p->D, pl->d, p->D, pl->d,
                                &pl->algo, workspace, WORKSPACE_BYTES, 0));
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

extern "C" void matmul_backward_acc_cuda(float *dx, float *dw, const gk_bf16 *dy, const gk_bf16 *x, const gk_bf16 *w,
                                         int n, int in, int out, bool accumulate_dx) {
    if (dx) { // as matmul_backward_cuda, into float
        product p = {false, false, in, n, out, w, in, dy, out, dx, in, CUDA_R_32F, accumulate_dx ? 1.0f : 0.0f};
        run(&p);
    }
    if (dw) {
        product p = {false, true, in, out, n, x, in, dy, out, dw, in, CUDA_R_32F, 1.0f};
        run(&p);
    }
}

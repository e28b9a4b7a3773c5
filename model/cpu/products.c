// oneDNN's matmul primitive and sgemm behind cpu_matmul and cpu_sgemm. One
// engine and stream for the process, made on first use; primitives come from
// oneDNN's own primitive cache (a repeated shape costs microseconds). Where
// oneDNN has no bf16 matmul for the CPU (2.6 on AVX2 only), bf16 operands are
// widened to float32 and multiplied there: the same products (bf16 values
// are exact in float32) and float32 sums, at float32 speed.
#include "model/cpu/products.h"

#include <dnnl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static bool bf16_products; // oneDNN has a bf16 matmul for this CPU
static pthread_once_t started = PTHREAD_ONCE_INIT;

static void check(dnnl_status_t s, const char *what) {
    if (s == dnnl_success) return;
    fprintf(stderr, "gemmakd: oneDNN failed in %s (status %d)\n", what, (int)s);
    exit(1);
}

static dnnl_data_type_t dnnl_type(product_type t) { return t == PRODUCT_BF16 ? dnnl_bf16 : dnnl_f32; }

static void start(void) {
    check(dnnl_engine_create(&engine, dnnl_cpu, 0), "dnnl_engine_create");
    check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags), "dnnl_stream_create");
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {16, 16};
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd;
    check(dnnl_memory_desc_init_by_tag(&md, 2, dims, dnnl_bf16, dnnl_ab), "dnnl_memory_desc_init_by_tag");
    check(dnnl_matmul_desc_init(&desc, &md, &md, NULL, &md), "dnnl_matmul_desc_init");
    bf16_products = dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL) == dnnl_success;
    if (bf16_products) dnnl_primitive_desc_destroy(pd);
}

// A row-major [rows, cols] matrix, or its transpose stored as [cols, rows], with leading dimension ld.
static dnnl_memory_desc_t matrix(int rows, int cols, bool transposed, int ld, product_type t) {
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {rows, cols}, strides = {transposed ? 1 : ld, transposed ? ld : 1};
    check(dnnl_memory_desc_init_by_strides(&md, 2, dims, dnnl_type(t), strides), "dnnl_memory_desc_init_by_strides");
    return md;
}

static dnnl_primitive_desc_t product_desc(const cpu_product *p, dnnl_memory_desc_t md[3]) {
    pthread_once(&started, start);
    md[0] = matrix(p->m, p->k, p->trans_a, p->lda, p->in);
    md[1] = matrix(p->k, p->n, p->trans_b, p->ldb, p->in);
    md[2] = matrix(p->m, p->n, false, p->ldc, p->out);
    dnnl_matmul_desc_t desc;
    check(dnnl_matmul_desc_init(&desc, &md[0], &md[1], NULL, &md[2]), "dnnl_matmul_desc_init");
    dnnl_primitive_attr_t attr;
    check(dnnl_primitive_attr_create(&attr), "dnnl_primitive_attr_create");
    if (p->accumulate) { // C += A B: oneDNN's "sum" post-op adds the old C before rounding to C's type
        dnnl_post_ops_t ops;
        check(dnnl_post_ops_create(&ops), "dnnl_post_ops_create");
        check(dnnl_post_ops_append_sum(ops, 1.0f), "dnnl_post_ops_append_sum");
        check(dnnl_primitive_attr_set_post_ops(attr, ops), "dnnl_primitive_attr_set_post_ops");
        dnnl_post_ops_destroy(ops);
    }
    dnnl_primitive_desc_t pd;
    check(dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL), "dnnl_primitive_desc_create (matmul)");
    dnnl_primitive_attr_destroy(attr);
    return pd;
}

static void *widen_alloc(size_t n) {
    void *p = malloc(n * sizeof(float) + 64);
    if (!p) {
        fprintf(stderr, "gemmakd: out of memory widening a bf16 product to float32 (%zu values)\n", n);
        exit(1);
    }
    return p;
}

// A row-major bf16 matrix [rows, cols] with leading dimension ld, as float32 with leading dimension cols.
static float *widen(const void *src, int rows, int cols, int ld) {
    const uint16_t *s = src;
    float *out = widen_alloc((size_t)rows * cols);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            uint32_t u = (uint32_t)s[(size_t)r * ld + c] << 16;
            memcpy(&out[(size_t)r * cols + c], &u, sizeof u);
        }
    return out;
}

static uint16_t round_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
}

static void matmul_widened(const cpu_product *p) {
    // The operands as stored (a transposed one keeps its [k, m] / [n, k] shape), widened.
    float *A = widen(p->A, p->trans_a ? p->k : p->m, p->trans_a ? p->m : p->k, p->lda);
    float *B = widen(p->B, p->trans_b ? p->n : p->k, p->trans_b ? p->k : p->n, p->ldb);
    cpu_product f = *p;
    f.A = A, f.B = B, f.in = PRODUCT_F32;
    f.lda = p->trans_a ? p->m : p->k, f.ldb = p->trans_b ? p->k : p->n;
    if (p->out == PRODUCT_F32) {
        cpu_matmul(&f);
    } else { // into float32 (from the old bf16 values when accumulating), then rounded once
        float *C = p->accumulate ? widen(p->C, p->m, p->n, p->ldc) : widen_alloc((size_t)p->m * p->n);
        f.C = C, f.out = PRODUCT_F32, f.ldc = p->n;
        cpu_matmul(&f);
        uint16_t *out = p->C;
#pragma omp parallel for schedule(static)
        for (int r = 0; r < p->m; r++)
            for (int c = 0; c < p->n; c++) out[(size_t)r * p->ldc + c] = round_bf16(C[(size_t)r * p->n + c]);
        free(C);
    }
    free(A);
    free(B);
}

void cpu_matmul(const cpu_product *p) {
    if (p->m <= 0 || p->n <= 0) return;
    pthread_once(&started, start);
    if (p->in == PRODUCT_BF16 && !bf16_products && p->k > 0) {
        matmul_widened(p);
        return;
    }
    if (p->k <= 0) { // an empty sum: C = 0, or C unchanged
        size_t elem = p->out == PRODUCT_BF16 ? 2 : 4;
        for (int r = 0; !p->accumulate && r < p->m; r++) memset((char *)p->C + (size_t)r * p->ldc * elem, 0, p->n * elem);
        return;
    }
    dnnl_memory_desc_t md[3];
    dnnl_primitive_desc_t pd = product_desc(p, md);
    dnnl_primitive_t prim;
    check(dnnl_primitive_create(&prim, pd), "dnnl_primitive_create (matmul)");
    dnnl_memory_t mem[3];
    void *data[3] = {(void *)p->A, (void *)p->B, p->C}; // oneDNN's memory objects take non-const pointers
    for (int i = 0; i < 3; i++) check(dnnl_memory_create(&mem[i], &md[i], engine, data[i]), "dnnl_memory_create");
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, mem[0]}, {DNNL_ARG_WEIGHTS, mem[1]}, {DNNL_ARG_DST, mem[2]}};
    check(dnnl_primitive_execute(prim, stream, 3, args), "dnnl_primitive_execute (matmul)");
    check(dnnl_stream_wait(stream), "dnnl_stream_wait");
    for (int i = 0; i < 3; i++) dnnl_memory_destroy(mem[i]);
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
}

void cpu_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc) {
    check(dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, A, lda, B, ldb, beta, C, ldc),
          "dnnl_sgemm");
}

static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "none (no vector unit oneDNN uses)";
    }
}

void cpu_products_describe(product_type in, product_type out, char *text, size_t n, bool *generic, bool *widened) {
    pthread_once(&started, start);
    *widened = in == PRODUCT_BF16 && !bf16_products;
    if (*widened) in = out = PRODUCT_F32; // what runs in its place
    cpu_product probe = {.m = 64, .n = 64, .k = 64, .lda = 64, .ldb = 64, .ldc = 64, .in = in, .out = out};
    dnnl_memory_desc_t md[3];
    dnnl_primitive_desc_t pd = product_desc(&probe, md);
    const char *impl = "?";
    check(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl), "dnnl_primitive_desc_query");
    const dnnl_version_t *v = dnnl_version();
    snprintf(text, n, "oneDNN %d.%d.%d, ISA %s, kernel %s%s", v->major, v->minor, v->patch,
             isa_name(dnnl_get_effective_cpu_isa()), impl, *widened ? " (bf16 widened to float32: no bf16 kernel)" : "");
    // oneDNN's unoptimised implementations are named "ref..." (and "gemm:ref" for its reference gemm).
    *generic = strstr(impl, "ref") != NULL;
    dnnl_primitive_desc_destroy(pd);
}

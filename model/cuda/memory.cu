// Device buffers, transfers and small fills for the GPU instantiation; the
// device probe; RoPE tables (computed on the host exactly as the CPU path does).
#include <string.h>

#include "common/half.h"
#include "model/cuda/common.cuh"

static size_t allocated_bytes, peak_bytes;

extern "C" int gk_cuda_probe(char *what, size_t n) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        snprintf(what, n, "no usable CUDA device (%s)", cudaGetErrorString(e));
        return -1;
    }
    if (count == 0) {
        snprintf(what, n, "no CUDA device");
        return -1;
    }
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
    snprintf(what, n, "%s (compute %d.%d, %.1f GiB)", p.name, p.major, p.minor, (double)p.totalGlobalMem / (1 << 30));
    return 0;
}

// Live allocations and their sizes, for the peak-memory figure of benchmarks.
enum { MAX_LIVE = 16384 };
static struct {
    void *p;
    size_t bytes;
} live[MAX_LIVE];

static void remember(void *p, size_t bytes) {
    for (int i = 0; i < MAX_LIVE; i++)
        if (!live[i].p) {
            live[i].p = p, live[i].bytes = bytes;
            allocated_bytes += bytes;
            if (allocated_bytes > peak_bytes) peak_bytes = allocated_bytes;
            return;
        }
    // Past the table: still a valid buffer, only missing from the peak figure.
}

static void forget(void *p) {
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i].p == p) {
            allocated_bytes -= live[i].bytes;
            live[i].p = NULL;
            return;
        }
}

extern "C" void *buffer_alloc_cuda(size_t bytes, gk_err *err) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 256); // 256-byte aligned
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); // clear the error state of a failed allocation
        gk_fail(err, GK_ENOMEM, "out of GPU memory allocating %.1f MiB (%s)", (double)bytes / (1 << 20),
                cudaGetErrorString(e));
        return NULL;
    }
    remember(p, bytes);
    return p;
}

extern "C" void buffer_free_cuda(void *p) {
    if (!p) return;
    forget(p);
    CUDA_CHECK(cudaFree(p));
}

extern "C" size_t buffer_peak_bytes_cuda(void) { return peak_bytes; }

extern "C" void buffer_upload_cuda(void *dst, const void *host_src, size_t bytes) {
    CUDA_CHECK(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice));
}

extern "C" void buffer_download_cuda(void *host_dst, const void *src, size_t bytes) {
    CUDA_CHECK(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost));
}

extern "C" void buffer_sync_cuda(void) { CUDA_CHECK(cudaDeviceSynchronize()); }

extern "C" void buffer_zero_cuda(void *p, size_t bytes) { CUDA_CHECK(cudaMemset(p, 0, bytes)); }

__global__ void fill_i32_kernel(int32_t *x, int32_t value, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = value;
}

extern "C" void fill_i32_cuda(int32_t *x, int32_t value, size_t n) {
    if (n == 0) return;
    fill_i32_kernel<<<blocks_for(n, 256), 256>>>(x, value, n);
    CUDA_LAUNCHED();
}

// Host float32 <-> device bf16, converted on the host through a staging
// buffer of at most 16M values at a time; to_device: upload, else download.
static int transfer_bf16(float *host, gk_bf16 *device, size_t n, bool to_device, gk_err *err) {
    const size_t STAGE = 1 << 24;
    size_t chunk = n < STAGE ? n : STAGE;
    uint16_t *stage = (uint16_t *)malloc((chunk ? chunk : 1) * sizeof *stage);
    if (!stage) return gk_fail(err, GK_ENOMEM, "out of memory staging %zu values for a GPU transfer", n);
    for (size_t at = 0; at < n; at += chunk) {
        size_t m = n - at < chunk ? n - at : chunk, bytes = m * sizeof *stage;
        if (to_device) {
            for (size_t i = 0; i < m; i++) stage[i] = f32_to_bf16(host[at + i]);
            CUDA_CHECK(cudaMemcpy(device + at, stage, bytes, cudaMemcpyHostToDevice));
        } else {
            CUDA_CHECK(cudaMemcpy(stage, device + at, bytes, cudaMemcpyDeviceToHost));
            for (size_t i = 0; i < m; i++) host[at + i] = bf16_to_f32(stage[i]);
        }
    }
    free(stage);
    return 0;
}

extern "C" int gk_cuda_upload_bf16(gk_bf16 *dst, const float *host_src, size_t n, gk_err *err) {
    return transfer_bf16(const_cast<float *>(host_src), dst, n, true, err); // read only on upload
}

extern "C" int gk_cuda_download_bf16(float *host_dst, const gk_bf16 *src, size_t n, gk_err *err) {
    return transfer_bf16(host_dst, const_cast<gk_bf16 *>(src), n, false, err); // read only on download
}

// The CPU float32 tables, uploaded: the GPU rotates by exactly the same angles.
extern "C" void rope_tables_cuda(float *cos_t, float *sin_t, int T, int head_dim, double theta) {
    size_t n = (size_t)T * (head_dim / 2);
    float *host = (float *)malloc(2 * n * sizeof *host + 1);
    if (!host) {
        fprintf(stderr, "gemmakd: out of memory for RoPE tables (%zu values)\n", 2 * n);
        exit(1);
    }
    rope_tables_f32(host, host + n, T, head_dim, theta);
    CUDA_CHECK(cudaMemcpy(cos_t, host, n * sizeof *host, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(sin_t, host + n, n * sizeof *host, cudaMemcpyHostToDevice));
    free(host);
}

// The GPU backend's own entry points, beside the templated kernels (suffix
// _cuda in model/kernels_api.inc): device discovery and bf16 transfers.
// Declared in C; defined in model/cuda/*.cu.
#ifndef GK_CUDA_H
#define GK_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "common/collectives.h"
#include "common/error.h"
#include "model/bf16.h"

#ifdef __cplusplus
extern "C" {
#endif

// 0 and the device's name in what[n] when a CUDA device can be used; else -1
// and the reason (no driver, no device, ...) in what.
int gk_cuda_probe(char *what, size_t n);

// Host float32 <-> device bf16 (round to nearest even), n values.
int gk_cuda_upload_bf16(gk_bf16 *dst, const float *host_src, size_t n, gk_err *err);
int gk_cuda_download_bf16(float *host_dst, const gk_bf16 *src, size_t n, gk_err *err);

// Data parallelism: this rank's GPU (its local rank modulo the devices; before anything is
// allocated), and the NCCL collectives over the MPI job's ranks (set up once).
int gk_cuda_use_rank_device(gk_err *err);
const collectives *gk_nccl_collectives(gk_err *err);

#ifdef __cplusplus
}
#endif

#endif

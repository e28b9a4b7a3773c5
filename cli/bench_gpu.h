// gemmakd bench --device cuda: a training step on the GPU (cli/bench_gpu.c).
#ifndef GK_BENCH_GPU_H
#define GK_BENCH_GPU_H

#include <stdbool.h>

#include "common/error.h"

#ifdef GK_WITH_CUDA
int bench_gpu(const char *config, int B, int T, int steps, bool with_opt, bool json, gk_err *err);
#endif

#endif

// Precision template for the model's compute code. Files that include this
// are compiled twice: float32 (the model) and, with -DGK_REAL_F64, float64
// (the twin the tests check gradients with by finite differences); the layer
// sequence also once more with -DGK_REAL_CUDA for the GPU (bf16, model/cuda/).
// real_acc: statistics beside the tensors (rstd, log-sum-exp, RoPE, logits).
#ifndef GK_REAL_H
#define GK_REAL_H

#include <math.h>

#if defined(GK_REAL_CUDA) // the GPU instantiation: layer sequence only, kernels in model/cuda/
#include "model/bf16.h"
#define real gk_bf16
#define real_acc float
#define FN(name) name##_cuda
#elif defined(GK_REAL_F64)
#define real double
#define real_acc double
#define FN(name) name##_f64
#define GEMM cblas_dgemm
#define REAL_EXP(x) exp(x)
#define REAL_TANH(x) tanh(x)
#define REAL_LOG(x) log(x)
#else
#include "model/cpu/fastmath.h"
#define real float
#define real_acc float
#define FN(name) name##_f32
#define GEMM cblas_sgemm
#define REAL_EXP(x) fast_expf(x)
#define REAL_TANH(x) fast_tanhf(x)
#define REAL_LOG(x) logf(x)
#endif

// Counts of `real` slots that hold n real_acc values.
#define ACC_REALS(n) ((n) * (sizeof(real_acc) / sizeof(real)))

#include "model/gemma2.h"
#include "model/kernels.h"

#endif

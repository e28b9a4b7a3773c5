// The instantiation a compute file is compiled for (see model/precisions.h for
// the table): the model code is written once over `real` (storage), `real_acc`
// (statistics and arithmetic) and FN(name), and the Makefile compiles it per
// instantiation: _f32 (default), _f64 (-DGK_REAL_F64), _bf16 (-DGK_REAL_BF16)
// and, for the layer sequence only, _cuda (-DGK_REAL_CUDA; kernels in model/cuda/).
//   to_acc(x)   a stored value as real_acc
//   to_real(v)  a real_acc value rounded to storage
//   REAL_IS_ACC 1 when the two types are the same (f32, f64): buffers may alias
#ifndef GK_REAL_H
#define GK_REAL_H

#include <math.h>

#include "model/gemma2.h"
#include "model/kernels.h"

#if defined(GK_REAL_CUDA) || defined(GK_REAL_BF16)
#define real gk_bf16
#define real_acc float
#define to_acc(x) bf16_load(x)
#define to_real(v) bf16_round((float)(v))
#define REAL_IS_ACC 0
#ifdef GK_REAL_CUDA
#define FN(name) name##_cuda
#else
#define FN(name) name##_bf16
#endif
#elif defined(GK_REAL_F64)
#define real double
#define real_acc double
#define to_acc(x) (x)
#define to_real(v) ((double)(v))
#define REAL_IS_ACC 1
#define FN(name) name##_f64
#else
#define real float
#define real_acc float
#define to_acc(x) (x)
#define to_real(v) ((float)(v))
#define REAL_IS_ACC 1
#define FN(name) name##_f32
#endif

// GK_ON_DEVICE: the kernels' buffers are device memory (the GPU instantiation), not host memory.
#ifdef GK_REAL_CUDA
#define GK_ON_DEVICE 1
#else
#define GK_ON_DEVICE 0
#endif

// exp, tanh and log in real_acc: the vectorised float versions (common/fastmath.h) or libm's double ones.
#if defined(GK_REAL_F64)
#define ACC_EXP(x) exp(x)
#define ACC_TANH(x) tanh(x)
#define ACC_LOG(x) log(x)
#else
#include "common/fastmath.h"
#define ACC_EXP(x) fast_expf(x)
#define ACC_TANH(x) fast_tanhf(x)
#define ACC_LOG(x) logf(x)
#endif

// Counts of `real` slots that hold n real_acc values.
#define ACC_REALS(n) ((n) * ((sizeof(real_acc) + sizeof(real) - 1) / sizeof(real)))

#endif

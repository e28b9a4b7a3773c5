// Precision template for the model's compute code. Files that include this
// are compiled twice: float32 (the model) and, with -DGK_REAL_F64, float64
// (the twin the tests check gradients with by finite differences).
#ifndef GK_REAL_H
#define GK_REAL_H

#include <math.h>

#ifdef GK_REAL_F64
#define real double
#define FN(name) name##_f64
#define GEMM cblas_dgemm
#define REAL_EXP(x) exp(x)
#define REAL_TANH(x) tanh(x)
#define REAL_LOG(x) log(x)
#else
#include "model/cpu/fastmath.h"
#define real float
#define FN(name) name##_f32
#define GEMM cblas_sgemm
#define REAL_EXP(x) fast_expf(x)
#define REAL_TANH(x) fast_tanhf(x)
#define REAL_LOG(x) logf(x)
#endif

#include "model/gemma2.h"
#include "model/kernels.h"

#endif

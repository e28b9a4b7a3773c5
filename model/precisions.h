// Includes the declaration template named by GK_TEMPLATE once per precision:
// GK_REAL = float with names suffixed _f32, then double with _f64, and with
// GK_WITH_CUDA the GPU instantiation: bf16 storage, names suffixed _cuda.
// GK_ACC is the type of statistics kept beside the tensors (RMSNorm's rstd,
// attention's log-sum-exp, RoPE tables, logits): GK_REAL on the CPU, float on the GPU.
// Usage: #define GK_TEMPLATE "model/x_api.inc" / #include "model/precisions.h"
// No include guard on purpose.

#define GK_REAL float
#define GK_ACC float
#define GK_SFX(name) name##_f32
#include GK_TEMPLATE
#undef GK_REAL
#undef GK_ACC
#undef GK_SFX

#define GK_REAL double
#define GK_ACC double
#define GK_SFX(name) name##_f64
#include GK_TEMPLATE
#undef GK_REAL
#undef GK_ACC
#undef GK_SFX

#ifdef GK_WITH_CUDA
#include "model/bf16.h"
#define GK_REAL gk_bf16
#define GK_ACC float
#define GK_SFX(name) name##_cuda
#include GK_TEMPLATE
#undef GK_REAL
#undef GK_ACC
#undef GK_SFX
#endif

#undef GK_TEMPLATE

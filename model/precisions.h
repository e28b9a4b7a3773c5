// Includes the declaration template named by GK_TEMPLATE once per
// instantiation of the model code, with the names the compute files use:
//   real      storage of weights, activations and gradients
//   real_acc  statistics and arithmetic: RMSNorm's rstd, log-sum-exp, RoPE tables, logits
//   FN(name)  the instantiation's name of a function or type
//
//   suffix  real     real_acc  where
//   _f32    float    float     CPU, the reference
//   _f64    double   double    CPU, the float64 twin the tests check against (below the model handle)
//   _bf16   gk_bf16  float     CPU, bf16 storage into the matrix products
//   _cuda   gk_bf16  float     GPU (GK_WITH_CUDA builds), kernels in model/cuda/
//
// A compute file's own definitions of the three names (model/real.h) are kept
// around the includes. Usage: #define GK_TEMPLATE "model/x_api.inc" then
// #include "model/precisions.h". No include guard on purpose.
#include "model/bf16.h"

#pragma push_macro("real")
#pragma push_macro("real_acc")
#pragma push_macro("FN")
#undef real
#undef real_acc
#undef FN

#define real float
#define real_acc float
#define FN(name) name##_f32
#include GK_TEMPLATE
#undef real
#undef real_acc
#undef FN

#define real double
#define real_acc double
#define FN(name) name##_f64
#include GK_TEMPLATE
#undef real
#undef real_acc
#undef FN

#define real gk_bf16
#define real_acc float
#define FN(name) name##_bf16
#include GK_TEMPLATE
#undef real
#undef real_acc
#undef FN

#ifdef GK_WITH_CUDA
#define real gk_bf16
#define real_acc float
#define FN(name) name##_cuda
#include GK_TEMPLATE
#undef real
#undef real_acc
#undef FN
#endif

#pragma pop_macro("real")
#pragma pop_macro("real_acc")
#pragma pop_macro("FN")
#undef GK_TEMPLATE

// Includes the declaration template named by GK_TEMPLATE once per precision:
// GK_REAL = float with names suffixed _f32, then double with _f64.
// Usage: #define GK_TEMPLATE "model/x_api.inc" / #include "model/precisions.h"
// No include guard on purpose.

#define GK_REAL float
#define GK_SFX(name) name##_f32
#include GK_TEMPLATE
#undef GK_REAL
#undef GK_SFX

#define GK_REAL double
#define GK_SFX(name) name##_f64
#include GK_TEMPLATE
#undef GK_REAL
#undef GK_SFX

#undef GK_TEMPLATE

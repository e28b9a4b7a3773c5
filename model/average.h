// Averaging of models that share one parameter layout (gemmakd average; the
// trainer's weight EMA is updated by the model handle, model/engine.h). Sums
// run in double, one model at a time, so averaging n checkpoints holds one
// model in float and one in double.
//
//   uniform   (1/n) sum_i x_i
//   weighted  sum_i w_i x_i / sum_i w_i
//   last-k    uniform over the k newest
//   ema       e_1 = x_1, e_i = d e_(i-1) + (1 - d) x_i over the checkpoints in
//             order, i.e. weights d^(n-1) for x_1 and (1 - d) d^(n-i) for the others
//   slerp     per tensor, between two models a, b at t in [0, 1]: with
//             cos(theta) = a.b / (|a| |b|),
//             sin((1 - t) theta) / sin(theta) a + sin(t theta) / sin(theta) b,
//             and (1 - t) a + t b when |cos(theta)| > SLERP_LINEAR_ABOVE (nearly
//             parallel) or either tensor is zero
#ifndef GK_MODEL_AVERAGE_H
#define GK_MODEL_AVERAGE_H

#include <stddef.h>

#include "model/checkpoint.h"

#define SLERP_LINEAR_ABOVE 0.9995

// acc[i] += w * x[i] for i < n.
void average_accumulate(double *acc, const float *x, double w, size_t n);
// out[i] = acc[i] / total (rounded to float).
void average_finish(const double *acc, double total, float *out, size_t n);
// The weights of an EMA with decay d over n models in order (they sum to 1).
void average_ema_weights(double decay, int n, double *w);
// out[n] = slerp(a, b, t) of one tensor (out may alias neither input).
void slerp_tensor(const float *a, const float *b, size_t n, double t, float *out);
// m->params = sum_i w[i] x_i / sum_i w[i] over the model dirs (loaded one at a
// time into m's layout; inputs with weight 0 are not read).
int average_model_dirs(char *const *dirs, const double *w, size_t n, model_state *m, gk_err *err);
// m->params = slerp(a, b, t) tensor by tensor, a and b the weights of two model dirs in m's layout.
int slerp_model_dirs(const char *a_dir, const char *b_dir, double t, model_state *m, gk_err *err);

#endif

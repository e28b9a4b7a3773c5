// The distillation objectives of distill/objectives.h in float64, written
// from their definitions for one row of V logits: the loss, its gradient by
// central differences and its gradient from the closed forms (test_objectives
// checks the two against each other; test_head uses the closed form for the
// float64 twin's head).
#ifndef GK_TEST_KD_REFERENCE_H
#define GK_TEST_KD_REFERENCE_H

#include "distill/objectives.h"

typedef struct {
    const kd_config *c;
    int V;
    const double *t;      // [V] dense teacher logits, or NULL
    const sparse_row *sp; // sparse teacher (when t is NULL)
    sparse_objective obj;
    int32_t target;
} ref_problem;

// out[i] = log softmax(x * scale)[i], x and out [n].
void ref_log_softmax(const double *x, int n, double scale, double *out);
// alpha kd_scale KD + (1 - alpha) CE at the student logits s [V].
double ref_loss(const ref_problem *p, const double *s);
// The divergence alone; and KL(softmax(t) || softmax(s)) at temperature 1 (dense).
double ref_kd(const ref_problem *p, const double *s);
double ref_true_kl(const ref_problem *p, const double *s);
// dLoss/ds [V]: central differences of ref_loss (step h), and the closed forms.
void ref_grad_differences(const ref_problem *p, const double *s, double h, double *g);
void ref_grad(const ref_problem *p, const double *s, double *g);

#endif

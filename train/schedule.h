// Learning-rate schedules: linear warmup from lr/warmup to lr over `warmup`
// steps, then
//   constant  lr
//   cosine    min_lr + (lr - min_lr) (1 + cos(pi p)) / 2, p from 0 to 1 over the remaining steps
//   linear    lr down to min_lr, linearly
//   wsd       warmup-stable-decay: lr until the last decay_fraction of the steps, then linearly to min_lr
// with min_lr = lr * min_lr_ratio. Steps count from 0; the last is total - 1.
#ifndef GK_SCHEDULE_H
#define GK_SCHEDULE_H

#include <stdint.h>

typedef enum { SCHEDULE_CONSTANT, SCHEDULE_COSINE, SCHEDULE_LINEAR, SCHEDULE_WSD } schedule_kind;

typedef struct {
    schedule_kind kind;
    double lr, min_lr_ratio, decay_fraction;
    int64_t warmup, total;
} lr_schedule;

double schedule_lr(const lr_schedule *s, int64_t step);

#endif

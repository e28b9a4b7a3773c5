#include "train/schedule.h"

#include <math.h>

double schedule_lr(const lr_schedule *s, int64_t step) {
    if (step < s->warmup) return s->lr * (double)(step + 1) / (double)s->warmup;
    double min_lr = s->lr * s->min_lr_ratio;
    int64_t span = s->total - s->warmup; // steps after warmup
    double p = span > 1 ? (double)(step - s->warmup) / (double)(span - 1) : 1.0;
    if (p > 1) p = 1;
    switch (s->kind) {
    case SCHEDULE_CONSTANT: return s->lr;
    case SCHEDULE_COSINE: return min_lr + (s->lr - min_lr) * 0.5 * (1 + cos(M_PI * p));
    case SCHEDULE_LINEAR: return s->lr + (min_lr - s->lr) * p;
    case SCHEDULE_WSD: {
        double stable = 1 - s->decay_fraction; // share of the post-warmup steps at full lr
        if (p <= stable || s->decay_fraction <= 0) return s->lr;
        return s->lr + (min_lr - s->lr) * (p - stable) / s->decay_fraction;
    }
    }
    return s->lr;
}

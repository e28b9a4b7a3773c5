// Wall-clock seconds from a monotonic clock.
#ifndef GK_TIMER_H
#define GK_TIMER_H

#include <time.h>

static inline double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif

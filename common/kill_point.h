// Kill points for the fault tests: a run dies by SIGKILL at a named point when
// the environment says so (GEMMAKD_TEST_KILL_AFTER_STEP=6, ...); unset, nothing happens.
#ifndef GK_KILL_POINT_H
#define GK_KILL_POINT_H

#include <stdint.h>

// Raises SIGKILL when the environment variable `name` holds the number `count` (under mpirun:
// on every rank, or only on rank GEMMAKD_TEST_KILL_RANK when that is set).
void test_kill_point(const char *name, int64_t count);

#endif

#include "common/kill_point.h"

#include <signal.h>
#include <stdlib.h>

#include "common/dist.h"

void test_kill_point(const char *name, int64_t count) {
    const char *at = getenv(name), *rank = getenv("GEMMAKD_TEST_KILL_RANK");
    if (rank && atoi(rank) != dist_rank()) return; // only that rank of an MPI job dies
    if (at && atoll(at) == count) raise(SIGKILL);
}

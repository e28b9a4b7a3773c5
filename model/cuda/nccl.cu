// The collectives of a data-parallel GPU run (common/collectives.h) through
// NCCL on device buffers, bootstrapped through MPI: rank 0 makes the NCCL id
// and broadcasts it, each rank takes the GPU of its local rank. Blocks follow
// collectives_range; the last one may be shorter, so the reduce-scatter and
// all-gather are grouped reductions and broadcasts, one per owner.
#include <nccl.h>
#include <stdlib.h>

#include "model/cuda/common.cuh"
extern "C" {
#include "common/dist.h"
}

static ncclComm_t comm;
static collectives nccl;

static ncclDataType_t nccl_type(coll_type t) { return t == COLL_F32 ? ncclFloat32 : ncclBfloat16; }
static size_t type_bytes(coll_type t) { return t == COLL_F32 ? 4 : 2; }

static int nccl_check(ncclResult_t r, const char *what, gk_err *err) {
    if (r == ncclSuccess) return 0;
    return gk_fail(err, GK_EIO, "NCCL %s failed on rank %d: %s", what, dist_rank(), ncclGetErrorString(r));
}

static int all_reduce(const collectives *c, void *buf, size_t n, coll_type t, gk_err *err) {
    (void)c;
    return nccl_check(ncclAllReduce(buf, buf, n, nccl_type(t), ncclSum, comm, 0), "all-reduce", err);
}

// Per owner r: reduce (block r to rank r) or broadcast (block r from rank r), grouped into one launch.
static int per_owner(const collectives *c, void *buf, size_t n, coll_type t, bool reduce, gk_err *err) {
    char *p = (char *)buf;
    if (nccl_check(ncclGroupStart(), "group start", err)) return -1;
    for (int r = 0; r < c->size; r++) {
        size_t lo, hi;
        collectives_range(n, c->size, r, &lo, &hi);
        void *block = p + lo * type_bytes(t);
        ncclResult_t e = reduce ? ncclReduce(block, block, hi - lo, nccl_type(t), ncclSum, r, comm, 0)
                                : ncclBroadcast(block, block, hi - lo, nccl_type(t), r, comm, 0);
        if (e != ncclSuccess) {
            ncclGroupEnd();
            return nccl_check(e, reduce ? "reduce" : "broadcast", err);
        }
    }
    return nccl_check(ncclGroupEnd(), reduce ? "reduce-scatter" : "all-gather", err);
}

static int reduce_scatter(const collectives *c, void *buf, size_t n, coll_type t, gk_err *err) {
    return per_owner(c, buf, n, t, true, err);
}

static int all_gather(const collectives *c, void *buf, size_t n, coll_type t, gk_err *err) {
    return per_owner(c, buf, n, t, false, err);
}

// The local rank (ranks per node) from the launcher's environment: OpenMPI, then slurm.
static int local_rank(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return atoi(getenv(vars[i]));
    return dist_rank();
}

extern "C" int gk_cuda_use_rank_device(gk_err *err) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)
        return gk_fail(err, GK_EIO, "rank %d: no CUDA device", dist_rank());
    return cudaSetDevice(local_rank() % count) == cudaSuccess ? 0
                                                             : gk_fail(err, GK_EIO, "rank %d: cudaSetDevice failed", dist_rank());
}

extern "C" const collectives *gk_nccl_collectives(gk_err *err) {
    if (nccl.size) return &nccl;
    ncclUniqueId id;
    int rc = dist_rank() == 0 ? nccl_check(ncclGetUniqueId(&id), "unique id", err) : 0;
    if (dist_check(rc, err)) return NULL;
    dist_bcast(&id, sizeof id, 0);
    if (nccl_check(ncclCommInitRank(&comm, dist_size(), id, dist_rank()), "communicator setup", err)) return NULL;
    nccl = (collectives){dist_rank(), dist_size(), all_reduce, reduce_scatter, all_gather, dist_sum_f64, NULL};
    return &nccl;
}

#include "common/dist.h"

#include <limits.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/half.h"

static int world_rank = 0, world_size = 1;
static bool joined = false;

static bool launched_by_mpi(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return true;
    return false;
}

// Ranks on one machine share its cores: unless OMP_NUM_THREADS says otherwise (or later --threads,
// a run config's threads), each takes its share of the machine's cores, at most the cores its
// binding allows (mpirun binds 1 or 2 ranks to a core each, more to a socket), at least one.
// Spinning OpenMP threads of ranks that outnumber the cores slow every rank many times over.
static void share_cores(void) {
    MPI_Comm node;
    int local = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &local);
        MPI_Comm_free(&node);
    }
    if (getenv("OMP_NUM_THREADS") || local <= 1) return;
    long online = sysconf(_SC_NPROCESSORS_ONLN); // the machine's, shared by its ranks
    int share = online > local ? (int)(online / local) : 1, allowed = omp_get_num_procs(); // what binding allows
    omp_set_num_threads(share < allowed ? share : allowed);
}

int dist_init(int *argc, char ***argv, gk_err *err) {
    if (!launched_by_mpi()) return 0;
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return gk_fail(err, GK_EIO, "MPI_Init failed (started by mpirun or srun?)");
    joined = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    share_cores();
    return 0;
}

void dist_finalize(void) {
    if (joined) MPI_Finalize();
    joined = false;
}

int dist_rank(void) { return world_rank; }
int dist_size(void) { return world_size; }
bool dist_is_root(void) { return world_rank == 0; }

void dist_abort(int code, const char *message) {
    if (world_size <= 1) return;
    fprintf(stderr, "gemmakd: error (rank %d of %d): %s\n", world_rank, world_size, message);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
}

void dist_split(uint64_t n, int rank, int size, uint64_t *lo, uint64_t *hi) {
    uint64_t base = n / (uint64_t)size, extra = n % (uint64_t)size, r = (uint64_t)rank;
    *lo = r * base + (r < extra ? r : extra);
    *hi = *lo + base + (r < extra);
}

static void all_reduce(void *x, size_t n, MPI_Datatype t, MPI_Op op) {
    if (world_size > 1 && n) MPI_Allreduce(MPI_IN_PLACE, x, (int)n, t, op, MPI_COMM_WORLD);
}

void dist_sum_f64(double *x, size_t n) { all_reduce(x, n, MPI_DOUBLE, MPI_SUM); }
void dist_sum_i64(int64_t *x, size_t n) { all_reduce(x, n, MPI_INT64_T, MPI_SUM); }
void dist_max_f64(double *x, size_t n) { all_reduce(x, n, MPI_DOUBLE, MPI_MAX); }

int dist_check(int rc, gk_err *err) {
    if (world_size <= 1) return rc;
    double first = rc ? -(double)world_rank : -(double)world_size; // the max is minus the lowest failing rank
    dist_max_f64(&first, 1);
    int failed = (int)-first;
    if (failed == world_size) return 0;
    return rc ? rc : gk_fail(err, GK_EPEER, "rank %d failed (its message names it)", failed);
}

void dist_bcast(void *buf, size_t bytes, int root) {
    for (size_t at = 0; world_size > 1 && at < bytes; at += INT_MAX / 2) {
        size_t n = bytes - at < INT_MAX / 2 ? bytes - at : INT_MAX / 2;
        MPI_Bcast((char *)buf + at, (int)n, MPI_BYTE, root, MPI_COMM_WORLD);
    }
}

// Every rank's count of bytes and where its part starts in the ranks' concatenation
// (*counts [2 x ranks] malloc'd; *displs its second half), on every rank. A part or a whole over
// 2 GiB (MPI counts are ints) or no memory is an error on every rank.
static int byte_layout(size_t bytes, int **counts, int **displs, size_t *total, gk_err *err) {
    int rc = bytes > INT_MAX ? gk_fail(err, GK_EINTERNAL, "%zu bytes from one rank (at most 2 GiB)", bytes) : 0;
    *counts = rc ? NULL : gk_calloc(2 * (size_t)world_size, sizeof **counts, err);
    if (dist_check(*counts ? 0 : -1, err)) {
        free(*counts);
        return -1;
    }
    int mine = (int)bytes;
    MPI_Allgather(&mine, 1, MPI_INT, *counts, 1, MPI_INT, MPI_COMM_WORLD);
    *displs = *counts + world_size;
    *total = 0;
    for (int r = 0; r < world_size; r++) {
        (*displs)[r] = (int)*total;
        *total += (size_t)(*counts)[r];
        if (*total > INT_MAX) { // the same counts on every rank: every rank fails here
            free(*counts);
            return gk_fail(err, GK_EINTERNAL, "%zu bytes from %d ranks (at most 2 GiB)", *total, world_size);
        }
    }
    return 0;
}

int dist_gather_rows(void *buf, size_t row_bytes, uint64_t lo, uint64_t hi, gk_err *err) {
    if (world_size <= 1) return 0;
    int *counts, *displs;
    size_t total;
    if (byte_layout((hi - lo) * row_bytes, &counts, &displs, &total, err)) return -1;
    if (world_rank == 0) { // its own rows are in place: the others' land at their offsets in buf
        GK_ASSERT(lo == 0);
        MPI_Gatherv(MPI_IN_PLACE, 0, MPI_BYTE, buf, counts, displs, MPI_BYTE, 0, MPI_COMM_WORLD);
    } else {
        MPI_Gatherv((char *)buf + lo * row_bytes, counts[world_rank], MPI_BYTE, NULL, NULL, NULL, MPI_BYTE, 0,
                    MPI_COMM_WORLD);
    }
    free(counts);
    return 0;
}

int dist_share_bytes(const void *in, size_t bytes, void **out, size_t *total, gk_err *err) {
    *out = NULL;
    if (world_size <= 1) {
        *total = bytes;
        if (!(*out = gk_malloc(bytes ? bytes : 1, err))) return -1;
        memcpy(*out, in, bytes);
        return 0;
    }
    int *counts, *displs;
    if (byte_layout(bytes, &counts, &displs, total, err)) return -1;
    *out = gk_malloc(*total ? *total : 1, err);
    if (dist_check(*out ? 0 : -1, err)) {
        free(counts);
        return -1;
    }
    MPI_Allgatherv(in, counts[world_rank], MPI_BYTE, *out, counts, displs, MPI_BYTE, MPI_COMM_WORLD);
    free(counts);
    return 0;
}

void dist_gather_blocks(const float *block, size_t n, float *out) {
    size_t lo, hi;
    collectives_range(n, world_size, world_rank, &lo, &hi);
    if (world_size <= 1) {
        if (out != block) memcpy(out, block, n * sizeof *out);
        return;
    }
    for (int r = 1; r < world_size; r++) { // in pieces of int counts, owner by owner
        size_t a, b;
        collectives_range(n, world_size, r, &a, &b);
        for (size_t at = a; at < b; at += 1 << 28) {
            int k = (int)(b - at < (size_t)1 << 28 ? b - at : (size_t)1 << 28);
            if (world_rank == 0) MPI_Recv(out + at, k, MPI_FLOAT, r, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            else if (world_rank == r) MPI_Send(block + (at - a), k, MPI_FLOAT, 0, 0, MPI_COMM_WORLD);
        }
    }
    if (world_rank == 0) memcpy(out + lo, block, (hi - lo) * sizeof *out);
}

int dist_bcast_string(char **s, gk_err *err) {
    int64_t len = world_rank == 0 && *s ? (int64_t)strlen(*s) : -1;
    if (world_size <= 1) return 0;
    MPI_Bcast(&len, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    if (len < 0) return 0;
    if (world_rank != 0 && !(*s = gk_malloc((size_t)len + 1, err))) return -1; // MPI aborts the others' wait
    MPI_Bcast(*s, (int)len + 1, MPI_CHAR, 0, MPI_COMM_WORLD);
    return 0;
}

// ---------------------------------------------------------------- host collectives

// bf16 summed as float32 and rounded to nearest even: a user MPI_Op.
static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    const uint16_t *a = in;
    uint16_t *b = inout;
    for (int i = 0; i < *len; i++) b[i] = f32_to_bf16(bf16_to_f32(a[i]) + bf16_to_f32(b[i]));
}

static MPI_Op bf16_sum_op = MPI_OP_NULL;

static MPI_Datatype mpi_type(coll_type t) { return t == COLL_F32 ? MPI_FLOAT : MPI_UINT16_T; }
static size_t type_bytes(coll_type t) { return t == COLL_F32 ? 4 : 2; }

static MPI_Op sum_op(coll_type t) {
    if (t == COLL_F32) return MPI_SUM;
    if (bf16_sum_op == MPI_OP_NULL) MPI_Op_create(bf16_sum, 1, &bf16_sum_op);
    return bf16_sum_op;
}

// MPI counts are ints: larger buffers go in pieces (the block layout is the same for every piece's owner).
enum { PIECE = 1 << 28 };

static int host_all_reduce(const collectives *c, void *buf, size_t n, coll_type t, gk_err *err) {
    (void)c;
    (void)err;
    for (size_t at = 0; world_size > 1 && at < n; at += PIECE) {
        size_t k = n - at < PIECE ? n - at : PIECE;
        MPI_Allreduce(MPI_IN_PLACE, (char *)buf + at * type_bytes(t), (int)k, mpi_type(t), sum_op(t), MPI_COMM_WORLD);
    }
    return 0;
}

// Block r's sum to rank r: MPI_Reduce_scatter (its result lands at the buffer's start, and moves to
// block r), or past 2^31 elements one MPI_Reduce per owner, in pieces.
static int host_reduce_scatter(const collectives *c, void *buf, size_t n, coll_type t, gk_err *err) {
    if (world_size <= 1) return 0;
    size_t block = collectives_block(n, c->size), bytes = type_bytes(t), lo, hi;
    collectives_range(n, c->size, world_rank, &lo, &hi);
    if (block * (size_t)c->size <= (size_t)INT_MAX) {
        int *counts = gk_calloc((size_t)c->size, sizeof *counts, err);
        if (!counts) return -1;
        for (int r = 0; r < c->size; r++) {
            size_t a, b;
            collectives_range(n, c->size, r, &a, &b);
            counts[r] = (int)(b - a);
        }
        MPI_Reduce_scatter(MPI_IN_PLACE, buf, counts, mpi_type(t), sum_op(t), MPI_COMM_WORLD);
        memmove((char *)buf + lo * bytes, buf, (hi - lo) * bytes);
        free(counts);
        return 0;
    }
    for (int r = 0; r < c->size; r++) {
        collectives_range(n, c->size, r, &lo, &hi);
        for (size_t at = lo; at < hi; at += PIECE) {
            size_t k = hi - at < PIECE ? hi - at : PIECE;
            char *p = (char *)buf + at * bytes;
            MPI_Reduce(r == world_rank ? MPI_IN_PLACE : p, p, (int)k, mpi_type(t), sum_op(t), r, MPI_COMM_WORLD);
        }
    }
    return 0;
}

static int host_all_gather(const collectives *c, void *buf, size_t n, coll_type t, gk_err *err) {
    if (world_size <= 1) return 0;
    size_t block = collectives_block(n, c->size);
    if (block * (size_t)c->size <= (size_t)INT_MAX) { // one call: counts and displacements per rank
        int *counts = gk_calloc((size_t)c->size, 2 * sizeof *counts, err), *displs = counts + c->size;
        if (!counts) return -1;
        for (int r = 0; r < c->size; r++) {
            size_t lo, hi;
            collectives_range(n, c->size, r, &lo, &hi);
            counts[r] = (int)(hi - lo);
            displs[r] = (int)lo;
        }
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, mpi_type(t), MPI_COMM_WORLD);
        free(counts);
        return 0;
    }
    for (int r = 0; r < c->size; r++) { // over 2^31 elements: each owner broadcasts its block in pieces
        size_t lo, hi;
        collectives_range(n, c->size, r, &lo, &hi);
        for (size_t at = lo; at < hi; at += PIECE) {
            size_t k = hi - at < PIECE ? hi - at : PIECE;
            MPI_Bcast((char *)buf + at * type_bytes(t), (int)k, mpi_type(t), r, MPI_COMM_WORLD);
        }
    }
    return 0;
}

const collectives *dist_host_collectives(void) {
    static collectives c;
    c = (collectives){world_rank, world_size, host_all_reduce, host_reduce_scatter, host_all_gather, dist_sum_f64, NULL};
    return &c;
}

// gemmakd info's memory per device: the flags of a data-parallel run (--ranks,
// --zero, --ema, --teacher, --teacher-precision, --device-memory), its plan
// (model/plan_ranks.h) and how it prints. Put INFO_DEVICE_SPECS in info's arg_spec list.
#ifndef GK_CLI_INFO_DEVICE_H
#define GK_CLI_INFO_DEVICE_H

#include <stdbool.h>

#include "cli/args.h"
#include "model/engine.h"
#include "model/plan_ranks.h"

#define INFO_DEVICE_SPECS                                                                                          \
    {"ranks", "N", "data-parallel ranks, one device each (default 1); it or any flag below: the memory per device", NULL}, \
    {"zero", "0|1", "1: ZeRO-1, the optimizer state (and on cuda the float32 master) sharded over the ranks", NULL}, \
    {"ema", NULL, "an EMA of the weights is kept", NULL},                                                         \
    {"teacher", "CONFIG|cache", "the teacher's config.json when it runs in process; cache: a teacher cache", NULL}, \
    {"teacher-precision", "fp32|bf16", "the in-process teacher's precision (default the student's)", NULL},        \
    {"device-memory", "SIZE", "memory of one device, e.g. 80GB, 80GiB, 80G (= 80GB), 1.5TB, or bytes", NULL}

typedef struct {
    rank_setup setup;
    const char *teacher;       // the teacher's config; NULL: none in process (cached or from scratch)
    bool teacher_cached;       // --teacher cache
    bool teacher_bf16;
    size_t device_memory;      // bytes; 0: not given
    const char *device_memory_text; // as given
    forward_plan teacher_plan; // with teacher
    rank_plan plan;
} device_plan;

// Whether any of INFO_DEVICE_SPECS was given (without them info prints what it always did).
bool info_device_wanted(const arg_spec *specs, int n);
// The flags and the student's backend -> d->setup and the teacher's choice; errors name the flag.
int info_device_parse(const arg_spec *specs, int n, engine_backend student, device_plan *d, gk_err *err);
// The plan of a student (cfg, its plan for the micro-batch) and the teacher the flags name.
int info_device_compute(device_plan *d, const model_config *cfg, const model_plan *student, int batch, int seq_len,
                        gk_err *err);
void info_device_print_text(const device_plan *d, int batch, int seq_len);
// The fields after the one-process plan's, each with a leading ", ": ranks, zero, per_device {..},
// bytes_per_device, device_memory and fits (null without --device-memory), bytes_free (< 0: short).
void info_device_print_json(const device_plan *d);
// 2614341888 -> "2,614,341,888" in buf (40 bytes).
const char *info_grouped(size_t v, char *buf);

#endif

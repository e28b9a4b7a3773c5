// Command-line flags: "--name value", "--name=value" and boolean "--name".
// Unknown flags are errors that suggest the nearest valid name.
#ifndef GK_CLI_ARGS_H
#define GK_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/threads.h"

typedef struct {
    const char *name;    // without the leading "--"
    const char *metavar; // NULL for a boolean flag
    const char *help;
    const char *value;   // set by args_parse (boolean flags: "1")
} arg_spec;

// Returns 1 when --help was asked for (help printed to stdout), 0 on success, -1 on error.
int args_parse(int argc, char **argv, const char *usage, arg_spec *specs, int n_specs, gk_err *err);
// The same, collecting the arguments that are not flags or their values into
// pos (room for argc entries), in order, *n_pos of them.
int args_parse_positional(int argc, char **argv, const char *usage, arg_spec *specs, int n_specs, const char **pos,
                          int *n_pos, gk_err *err);
const char *arg_get(const arg_spec *specs, int n_specs, const char *name);
bool arg_flag(const arg_spec *specs, int n_specs, const char *name);

// Value parsers; `flag` names the flag in errors.
int parse_int(const char *flag, const char *text, long long min, long long max, long long *out, gk_err *err);
int parse_double(const char *flag, const char *text, double *out, gk_err *err);
// Non-negative integers separated by commas and/or whitespace, optionally as
// a JSON array: "2,651,10", "[2, 651, 10]", one per line. *out is malloc'd.
int parse_id_list(const char *flag, const char *text, int64_t **out, size_t *n, gk_err *err);
// A byte count with an optional unit: KB/MB/GB/TB or K/M/G/T (powers of 1000, as huggingface_hub) or
// KiB/MiB/GiB/TiB; fractions allowed (1.5TB), case ignored.
int parse_size(const char *flag, const char *text, size_t *out, gk_err *err);
// Splits a comma-separated flag value: *items[*n] point into *buf (both malloc'd;
// free both). An empty list is an error naming the flag.
int split_commas(const char *flag, const char *text, char **buf, const char ***items, size_t *n, gk_err *err);
// --threads: OpenMP (and so OpenBLAS) threads, 1..MAX_THREADS; NULL leaves the default.
int set_threads(const char *value, gk_err *err);

#endif

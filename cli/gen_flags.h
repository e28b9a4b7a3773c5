// Flags shared by the commands that generate (generate, chat).
#ifndef GK_CLI_GEN_FLAGS_H
#define GK_CLI_GEN_FLAGS_H

#include "cli/args.h"
#include "data/tokenizer/tokenizer.h"
#include "gen/generate.h"

#define SAMPLING_FLAG_SPECS                                                                                           \
    {"greedy", NULL, "always the most likely token", NULL},                                                          \
        {"temperature", "T", "sampling temperature (default 1)", NULL},                                             \
        {"top-k", "K", "sample among the K most likely tokens (default: all)", NULL},                               \
        {"top-p", "P", "sample among the most likely tokens holding P of the mass (default 1)", NULL},              \
        {"min-p", "M", "drop tokens less likely than M times the most likely one (default 0)", NULL}

int sampling_from_flags(const arg_spec *specs, int n, sampling *s, gk_err *err);

#endif

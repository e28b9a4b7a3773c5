// --device and --precision: the two flags of every command that runs a model
// (model/engine.h). Put BACKEND_FLAG_SPECS in a command's arg_spec list.
#ifndef GK_CLI_BACKEND_FLAGS_H
#define GK_CLI_BACKEND_FLAGS_H

#include "cli/args.h"
#include "model/engine.h"

#define BACKEND_FLAG_SPECS                                                                                            \
    {"device", "cpu|cuda", "where the model runs (default cpu; cuda needs a build with make GPU=1)", NULL},           \
    {"precision", "fp32|bf16", "fp32, or bf16 weights and activations into the matrix products (default fp32)", NULL}

// The backend the flags name (cpu fp32 when neither is given); warns on stderr
// when its products run a generic kernel on this machine.
int backend_from_flags(const arg_spec *specs, int n, engine_backend *b, gk_err *err);

#endif

#include "cli/backend_flags.h"

int backend_from_flags(const arg_spec *specs, int n, engine_backend *b, gk_err *err) {
    if (engine_backend_parse(arg_get(specs, n, "device"), arg_get(specs, n, "precision"), "--device/--precision", b,
                             err))
        return -1;
    return engine_backend_warn(*b, "model", err) || engine_use_rank_device(*b, err); // under mpirun: this rank's GPU
}

// gemmakd init: a new model directory with random weights (scheme: model/init.h).
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "model/checkpoint.h"
#include "model/init.h"

int cmd_init(int argc, char **argv, gk_err *err) {
    arg_spec specs[] = {
        {"config", "FILE", "model config (Hugging Face config.json, model_type gemma2)", NULL},
        {"out", "DIR", "new model directory (must not exist)", NULL},
        {"seed", "N", "random seed (default 0)", NULL},
        {"dtype", "float32|bfloat16", "storage type of the weights (default float32)", NULL},
        {"max-shard-size", "SIZE", "largest weights file, e.g. 5GB (the default) or 500MB; more become shards", NULL},
    };
    int n = sizeof specs / sizeof specs[0];
    int rc = args_parse(argc, argv, "gemmakd init --config FILE --out DIR [--seed N] [--dtype float32|bfloat16] [--max-shard-size SIZE]", specs,
                        n, err);
    if (rc) return rc > 0 ? 0 : -1;
    const char *config = arg_get(specs, n, "config"), *out = arg_get(specs, n, "out");
    const char *seed_s = arg_get(specs, n, "seed"), *dtype_s = arg_get(specs, n, "dtype");
    const char *shard_s = arg_get(specs, n, "max-shard-size");
    size_t max_shard = MODEL_SHARD_BYTES;
    if (shard_s && parse_size("max-shard-size", shard_s, &max_shard, err)) return -1;
    if (!config || !out) return gk_fail(err, GK_EUSAGE, "init needs --config and --out");
    long long seed = 0;
    if (seed_s && parse_int("seed", seed_s, 0, INT64_MAX, &seed, err)) return -1;
    st_dtype dtype = ST_F32;
    if (dtype_s && !strcmp(dtype_s, "bfloat16")) dtype = ST_BF16;
    else if (dtype_s && strcmp(dtype_s, "float32"))
        return gk_fail(err, GK_EUSAGE, "--dtype: expected float32 or bfloat16, got '%s'", dtype_s);

    model_state m = {0};
    rc = model_config_load(config, &m.cfg, err);
    if (rc == 0) rc = param_layout_build(&m.cfg, &m.layout, err);
    if (rc == 0 && !(m.params = param_buffer_alloc(&m.layout, err))) rc = -1;
    if (rc == 0) {
        model_init_random(&m.cfg, &m.layout, m.params, (uint64_t)seed);
        rc = model_create_dir(out, &m, dtype, max_shard, NULL, err);
    }
    if (rc == 0)
        printf("initialised %zu parameters (seed %lld) in %s\n", m.layout.n_params, seed, out);
    model_state_free(&m);
    return rc;
}

// gemmakd train --config RUN.yaml [--resume] [section.key=value ...]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "train/trainer.h"

static const char *USAGE = "gemmakd train --config RUN.yaml [--resume] [section.key=value ...]";

int cmd_train(int argc, char **argv, gk_err *err) {
    arg_spec specs[] = {
        {"config", "FILE", "run config (YAML; see configs/runs/)", NULL},
        {"resume", NULL, "continue from the newest valid checkpoint in run_dir", NULL},
    };
    int n = sizeof specs / sizeof specs[0];
    // section.key=value arguments are overrides; the rest are flags.
    char **flags = calloc((size_t)argc + 1, sizeof *flags), **overrides = calloc((size_t)argc + 1, sizeof *overrides);
    if (!flags || !overrides) {
        free(flags);
        free(overrides);
        return gk_fail(err, GK_ENOMEM, "out of memory");
    }
    int n_flags = 0, n_overrides = 0;
    for (int i = 0; i < argc; i++) {
        bool is_override = i > 0 && strncmp(argv[i], "--", 2) && strchr(argv[i], '=') &&
                           !(i > 0 && !strcmp(argv[i - 1], "--config"));
        if (is_override) overrides[n_overrides++] = argv[i];
        else flags[n_flags++] = argv[i];
    }
    int rc = args_parse(n_flags, flags, USAGE, specs, n, err);
    if (rc == 0 && !arg_get(specs, n, "config")) rc = gk_fail(err, GK_EUSAGE, "train needs --config (usage: %s)", USAGE);
    if (rc == 0) {
        run_config cfg;
        rc = run_config_load(arg_get(specs, n, "config"), overrides, n_overrides, &cfg, err);
        if (rc == 0) rc = trainer_run(&cfg, arg_flag(specs, n, "resume"), err);
    }
    free(flags);
    free(overrides);
    return rc > 0 ? 0 : rc;
}

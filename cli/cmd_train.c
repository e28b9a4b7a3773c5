// gemmakd train --config RUN.yaml [--resume | --overwrite] [section.key=value ...]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "train/trainer.h"

static const char *USAGE = "gemmakd train --config RUN.yaml [--resume | --overwrite] [section.key=value ...]";

int cmd_train(int argc, char **argv, gk_err *err) {
    arg_spec specs[] = {
        {"config", "FILE", "run config (YAML; see configs/runs/)", NULL},
        {"resume", NULL, "continue from the newest valid checkpoint in run_dir (none yet: start fresh)", NULL},
        {"overwrite", NULL, "start over in a run_dir that holds checkpoints: first removes them, latest, "
                            "metrics.jsonl and average-last-*", NULL},
    };
    int n = sizeof specs / sizeof specs[0];
    const char **overrides = gk_calloc((size_t)argc + 1, sizeof *overrides, err); // section.key=value arguments
    int n_overrides;
    if (!overrides) return -1;
    int rc = args_parse_positional(argc, argv, USAGE, specs, n, overrides, &n_overrides, err);
    if (rc == 0 && !arg_get(specs, n, "config")) rc = gk_fail(err, GK_EUSAGE, "train needs --config (usage: %s)", USAGE);
    if (rc == 0 && arg_flag(specs, n, "resume") && arg_flag(specs, n, "overwrite"))
        rc = gk_fail(err, GK_EUSAGE, "--resume continues the run in run_dir and --overwrite removes it: give one");
    if (rc == 0) {
        run_config cfg;
        rc = run_config_load(arg_get(specs, n, "config"), (char *const *)overrides, n_overrides, &cfg, err);
        if (rc == 0) rc = trainer_run(&cfg, arg_flag(specs, n, "resume"), arg_flag(specs, n, "overwrite"), err);
    }
    free(overrides);
    return rc > 0 ? 0 : rc;
}

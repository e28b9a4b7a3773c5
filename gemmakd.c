// gemmakd: knowledge distillation for Gemma 2. The entry point is a table of
// subcommands; each lives in the module that owns it.
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "common/dist.h"
#include "common/error.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv, gk_err *err);
    const char *summary;
    bool ranks; // under mpirun its work is split across the ranks; the other commands run as one process
} command;

static const command commands[] = {
    {"init", cmd_init, "new model dir with random weights from a model config and seed", false},
    {"info", cmd_info, "parameters, FLOPs per token and memory plan for a model config", false},
    {"score", cmd_score, "run a model on token ids; write logits and log-probs (safetensors)", false},
    {"encode", cmd_encode, "text -> token ids (tokenizer.json or tokenizer.model), printed as a JSON array", false},
    {"decode", cmd_decode, "token ids -> text", false},
    {"tokenize", cmd_tokenize, "text or JSONL (plain or chat) -> HDF5 token shards", false},
    {"train", cmd_train, "train a model from a run config (scratch, SFT or distillation; --resume continues)", true},
    {"teacher-logits", cmd_teacher_logits, "run a teacher over token shards -> HDF5 teacher cache (resumable, --part i/n)", true},
    {"average", cmd_average, "average checkpoints (uniform, weighted, last-k, EMA, SLERP) into a new model dir", false},
    {"generate", cmd_generate, "sample from a model with a KV cache: raw ids, or answers to JSONL chat prompts", true},
    {"chat", cmd_chat, "talk with a model on the terminal (multi-turn, the Gemma chat template)", false},
    {"eval", cmd_eval, "perplexity, bits per byte, teacher agreement, multiple-choice and log-likelihood tasks", false},
    {"bench", cmd_bench, "time a forward+backward step; report tokens/s and GFLOP/s", false},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *out) {
    fprintf(out, "usage: gemmakd <command> [--flags]\n       gemmakd help <command>\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
}

// A command under mpirun: it splits its work across the ranks, or it is refused (rather than run N times).
static int run_command(const command *c, int argc, char **argv, gk_err *err) {
    if (dist_size() > 1 && !c->ranks)
        return gk_fail(err, GK_EUSAGE, "%s runs as one process; start it without mpirun (train, teacher-logits "
                       "and generate split their work across ranks)", c->name);
    return c->run(argc, argv, err);
}

static int run_main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    char *help_argv[] = {argv[0], "--help", NULL};
    if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
        if (argc < 3) {
            usage(stdout);
            return 0;
        }
        name = argv[2];
        argc = 2;
        argv = help_argv;
    } else {
        argc--;
        argv++;
    }
    for (int i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, name)) continue;
        gk_err err = {0};
        int rc = run_command(&commands[i], argc, argv, &err);
        // What a command printed may still sit in stdout's buffer: a full disk shows only here.
        if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout)))
            rc = gk_fail(&err, GK_EIO, "stdout: write failed: %s", strerror(errno));
        if (rc == 0) return 0;
        if (err.code == GK_EPEER && dist_size() > 1) sleep(5); // the failing rank's own abort ends this one first
        dist_abort(err.code == GK_EUSAGE ? 2 : 1, err.msg); // under mpirun: every rank ends, with this message
        fprintf(stderr, "gemmakd: error: %s\n", err.msg);
        return err.code == GK_EUSAGE ? 2 : 1;
    }
    fprintf(stderr, "gemmakd: error: unknown command '%s' (run 'gemmakd help')\n", name);
    return 2;
}

int main(int argc, char **argv) {
    gk_err err = {0};
    if (dist_init(&argc, &argv, &err)) {
        fprintf(stderr, "gemmakd: error: %s\n", err.msg);
        return 1;
    }
    int rc = run_main(argc, argv);
    dist_finalize();
    return rc;
}

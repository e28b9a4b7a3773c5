// gemmakd: knowledge distillation for Gemma 2. The entry point is a table of
// subcommands; each lives in the module that owns it.
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "common/error.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv, gk_err *err);
    const char *summary;
} command;

static const command commands[] = {
    {"init", cmd_init, "new model dir with random weights from a model config and seed"},
    {"info", cmd_info, "parameters, FLOPs per token and memory plan for a model config"},
    {"score", cmd_score, "run a model on token ids; write logits and log-probs (safetensors)"},
    {"encode", cmd_encode, "text -> token ids (tokenizer.json or tokenizer.model), printed as a JSON array"},
    {"decode", cmd_decode, "token ids -> text"},
    {"tokenize", cmd_tokenize, "text or JSONL (plain or chat) -> HDF5 token shards"},
    {"train", cmd_train, "train a model from a run config (scratch, SFT or distillation; --resume continues)"},
    {"teacher-logits", cmd_teacher_logits, "run a teacher over token shards -> HDF5 teacher cache (resumable, --part i/n)"},
    {"average", cmd_average, "average checkpoints (uniform, weighted, last-k, EMA, SLERP) into a new model dir"},
    {"generate", cmd_generate, "sample from a model with a KV cache: raw ids, or answers to JSONL chat prompts"},
    {"chat", cmd_chat, "talk with a model on the terminal (multi-turn, the Gemma chat template)"},
    {"eval", cmd_eval, "perplexity, bits per byte, teacher agreement, multiple-choice and log-likelihood tasks"},
    {"bench", cmd_bench, "time a forward+backward step; report tokens/s and GFLOP/s"},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *out) {
    fprintf(out, "usage: gemmakd <command> [--flags]\n       gemmakd help <command>\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
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
        int rc = commands[i].run(argc, argv, &err);
        // What a command printed may still sit in stdout's buffer: a full disk shows only here.
        if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout)))
            rc = gk_fail(&err, GK_EIO, "stdout: write failed: %s", strerror(errno));
        if (rc == 0) return 0;
        fprintf(stderr, "gemmakd: error: %s\n", err.msg);
        return err.code == GK_EUSAGE ? 2 : 1;
    }
    fprintf(stderr, "gemmakd: error: unknown command '%s' (run 'gemmakd help')\n", name);
    return 2;
}

// Subcommands of the gemmakd binary. Each returns 0, or -1 with err set;
// gemmakd.c prints the error and sets the exit status.
#ifndef GK_CLI_COMMANDS_H
#define GK_CLI_COMMANDS_H

#include "common/error.h"

int cmd_init(int argc, char **argv, gk_err *err);
int cmd_info(int argc, char **argv, gk_err *err);
int cmd_score(int argc, char **argv, gk_err *err);
int cmd_bench(int argc, char **argv, gk_err *err);
int cmd_train(int argc, char **argv, gk_err *err);
int cmd_tokenize(int argc, char **argv, gk_err *err);
int cmd_encode(int argc, char **argv, gk_err *err);
int cmd_decode(int argc, char **argv, gk_err *err);
int cmd_teacher_logits(int argc, char **argv, gk_err *err);
int cmd_average(int argc, char **argv, gk_err *err);
int cmd_eval(int argc, char **argv, gk_err *err);
int cmd_generate(int argc, char **argv, gk_err *err);
int cmd_chat(int argc, char **argv, gk_err *err);

#endif

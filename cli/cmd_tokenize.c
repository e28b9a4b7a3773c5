// gemmakd tokenize: text and JSONL files -> HDF5 token shards (data/tokenize.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "data/tokenize.h"

static const char *USAGE = "gemmakd tokenize --tokenizer FILE --input FILE[,FILE...] --out DIR [--name train] "
                           "[--val-fraction F] [--shard-tokens N] [--doc-separator S] [--skip-bad]";

// "\n\n" written on the command line as backslash-n: turn C escapes into bytes.
static char *unescape(const char *s) {
    char *out = malloc(strlen(s) + 1), *o = out;
    for (; out && *s; s++) {
        if (*s != '\\' || !s[1]) {
            *o++ = *s;
            continue;
        }
        s++;
        *o++ = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s == 'r' ? '\r' : *s == '0' ? '\0' : *s;
    }
    if (out) *o = 0;
    return out;
}

int cmd_tokenize(int argc, char **argv, gk_err *err) {
    arg_spec specs[] = {
        {"tokenizer", "FILE", "tokenizer.json or tokenizer.model", NULL},
        {"input", "FILES", "comma-separated input files: .jsonl/.json (records) or plain text", NULL},
        {"out", "DIR", "output directory for the shards", NULL},
        {"name", "NAME", "shard name prefix: DIR/NAME-00000.h5 ... (default train)", NULL},
        {"val-fraction", "F", "share of documents (by a hash of their text) written to DIR/val-*.h5 (default 0)", NULL},
        {"val-name", "NAME", "name prefix of the validation shards (default val)", NULL},
        {"shard-tokens", "N", "tokens per shard before the next one starts (default 67108864)", NULL},
        {"doc-separator", "S", "plain text: split documents on S (escapes \\n \\t), default one per file", NULL},
        {"zstd-level", "N", "compression level 1..22 (default 3)", NULL},
        {"skip-bad", NULL, "skip malformed JSONL records (and count them) instead of stopping", NULL},
        {"threads", "N", "threads (default: all cores)", NULL},
    };
    int n = sizeof specs / sizeof specs[0];
    int rc = args_parse(argc, argv, USAGE, specs, n, err);
    if (rc) return rc > 0 ? 0 : -1;
    tokenize_options o = {.tokenizer_path = arg_get(specs, n, "tokenizer"), .out_dir = arg_get(specs, n, "out"),
                          .name = arg_get(specs, n, "name"), .val_name = arg_get(specs, n, "val-name"),
                          .shard_tokens = 1ull << 26, .skip_bad = arg_flag(specs, n, "skip-bad"),
                          .progress = true};
    const char *inputs = arg_get(specs, n, "input"), *s;
    if (!o.tokenizer_path || !inputs || !o.out_dir)
        return gk_fail(err, GK_EUSAGE, "tokenize needs --tokenizer, --input and --out (usage: %s)", USAGE);
    long long v;
    if ((s = arg_get(specs, n, "shard-tokens"))) {
        if (parse_int("shard-tokens", s, 1, 1LL << 40, &v, err)) return -1;
        o.shard_tokens = (uint64_t)v;
    }
    if ((s = arg_get(specs, n, "zstd-level"))) {
        if (parse_int("zstd-level", s, 1, 22, &v, err)) return -1;
        o.zstd_level = (int)v;
    }
    if ((s = arg_get(specs, n, "val-fraction")) &&
        (parse_double("val-fraction", s, &o.val_fraction, err) || o.val_fraction < 0 || o.val_fraction >= 1))
        return gk_fail(err, GK_EUSAGE, "--val-fraction: expected a number in [0, 1), got '%s'", s);
    if (set_threads(arg_get(specs, n, "threads"), err)) return -1;
    char *list = NULL, *separator = NULL;
    const char **files = NULL;
    rc = split_commas("input", inputs, &list, &files, &o.n_inputs, err);
    if (rc == 0 && (s = arg_get(specs, n, "doc-separator")) && (!(separator = unescape(s)) || !*separator))
        rc = gk_fail(err, GK_EUSAGE, "--doc-separator must not be empty");
    o.inputs = files;
    o.doc_separator = separator;
    tokenize_stats st;
    if (rc == 0) rc = tokenize_run(&o, &st, err);
    if (rc == 0) {
        printf("tokenized %llu documents (%llu chat), %.2f MB: %llu tokens in %llu shard(s) in %s", (unsigned long long)st.docs,
               (unsigned long long)st.chat_docs, (double)st.bytes / 1e6, (unsigned long long)st.tokens,
               (unsigned long long)st.shards, o.out_dir);
        if (o.val_fraction > 0)
            printf("; validation: %llu documents, %llu tokens", (unsigned long long)st.val_docs,
                   (unsigned long long)st.val_tokens);
        if (st.bad_records) printf("; skipped %llu malformed records", (unsigned long long)st.bad_records);
        printf("\n");
    }
    free(list);
    free(files);
    free(separator);
    return rc;
}

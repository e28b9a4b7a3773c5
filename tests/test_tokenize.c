// gemmakd tokenize: documents, <bos>/<eos>, chat loss masks, document
// separators, shard rolling, the validation split, bad records, inputs from pipes, the
// shards reading in h5py (when the tests' python has h5py and hdf5plugin), and the
// set manifest that tells a killed run's shards apart.
#include <omp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/file.h"
#include "common/strbuf.h"
#include "data/loader.h"
#include "data/shards.h"
#include "data/tokenize.h"
#include "data/tokenizer/tokenizer.h"
#include "tests/check.h"
#include "tests/fixtures.h"

const char *test_program = "test_tokenize";

static char work[64], gemmakd[1024];
static const char *TOKENIZER = "tokenizer/spm_bpe.model";

static const char *write_input(const char *name, const char *text) {
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, 256, "%s/%s", work, name);
    gk_err err;
    if (file_write_atomic(p, text, strlen(text), &err)) return NULL;
    return p;
}

// Runs tokenize into a fresh directory work/<out>.
static int run(const char *out, const char *const *inputs, size_t n, tokenize_options *o, tokenize_stats *st,
               gk_err *err) {
    static char dir[256];
    snprintf(dir, sizeof dir, "%s/%s", work, out);
    o->tokenizer_path = fixture_path(TOKENIZER);
    o->inputs = inputs;
    o->n_inputs = n;
    o->out_dir = dir;
    if (!o->shard_tokens) o->shard_tokens = 1 << 20;
    return tokenize_run(o, st, err);
}

// All tokens (and masks) of a run's shards name-00000.h5, -00001.h5, ... concatenated.
typedef struct {
    uint32_t *tokens;
    uint8_t *mask;
    uint64_t *starts; // document starts in the concatenation
    size_t n, n_docs, n_shards;
} shard_set;

static int read_shards(const char *out, const char *name, shard_set *s, gk_err *err) {
    memset(s, 0, sizeof *s);
    for (int k = 0;; k++) {
        char path[300];
        snprintf(path, sizeof path, "%s/%s/%s-%05d.h5", work, out, name, k);
        if (!path_exists(path)) break;
        shard_file f;
        if (shard_open(path, &f, err)) return -1;
        s->tokens = realloc(s->tokens, (s->n + f.n_tokens) * sizeof *s->tokens);
        s->mask = realloc(s->mask, s->n + f.n_tokens);
        s->starts = realloc(s->starts, (s->n_docs + f.n_docs) * sizeof *s->starts);
        int rc = shard_read_tokens(&f, 0, f.n_tokens, s->tokens + s->n, err);
        if (rc == 0 && f.meta.has_loss_mask) rc = shard_read_mask(&f, 0, f.n_tokens, s->mask + s->n, err);
        for (size_t d = 0; d < f.n_docs; d++) s->starts[s->n_docs + d] = s->n + f.doc_starts[d];
        s->n += f.n_tokens;
        s->n_docs += f.n_docs;
        s->n_shards++;
        shard_close(&f);
        if (rc) return -1;
    }
    return 0;
}

static void shard_set_free(shard_set *s) {
    free(s->tokens);
    free(s->mask);
    free(s->starts);
}

static tokenizer *load_tokenizer(void) {
    tokenizer *t = NULL;
    gk_err err;
    tokenizer_load(fixture_path(TOKENIZER), &t, &err);
    return t;
}

// Document d of a shard set equals <bos> encode(text) <eos>.
static bool doc_is(const shard_set *s, size_t d, const tokenizer *t, const char *text) {
    int32_t *ids;
    size_t n;
    gk_err err;
    if (tokenizer_encode(t, text, strlen(text), false, &ids, NULL, &n, &err)) return false;
    size_t begin = s->starts[d], end = d + 1 < s->n_docs ? s->starts[d + 1] : s->n;
    bool same = end - begin == n + 2 && s->tokens[begin] == (uint32_t)tokenizer_bos_id(t) &&
                s->tokens[end - 1] == (uint32_t)tokenizer_eos_id(t);
    for (size_t i = 0; same && i < n; i++) same = s->tokens[begin + 1 + i] == (uint32_t)ids[i];
    free(ids);
    return same;
}

static void text_documents(test_case *tc) {
    const char *in[] = {write_input("a.jsonl", "{\"text\": \"In the beginning\"}\n\n{\"text\": \"God created 123\"}\n"),
                        write_input("b.txt", "First part.\n\nSecond part,\nwith a line.\n\nThird.")};
    tokenize_options o = {.doc_separator = "\n\n"};
    tokenize_stats st;
    gk_err err = {0};
    shard_set s;
    tokenizer *t = load_tokenizer();
    CHECK(tc, t && run("text", in, 2, &o, &st, &err) == 0, "%s", err.msg);
    CHECK(tc, read_shards("text", "train", &s, &err) == 0, "%s", err.msg);
    CHECK(tc, st.docs == 5 && s.n_docs == 5 && st.tokens == s.n, "%llu docs, %zu in shards", (unsigned long long)st.docs,
          s.n_docs);
    const char *want[] = {"In the beginning", "God created 123", "First part.", "Second part,\nwith a line.", "Third."};
    for (size_t d = 0; d < 5 && d < s.n_docs; d++) CHECK(tc, doc_is(&s, d, t, want[d]), "document %zu", d);
    shard_set_free(&s);
    tokenizer_free(t);
}

// Decoding the masked tokens gives the model turns' contents, each with its <end_of_turn>.
static void chat_masks(test_case *tc) {
    const char *in[] = {write_input(
        "c.jsonl", "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": "
                   "\"Who was Noah?\"}, {\"role\": \"assistant\", \"content\": \" A patriarch. \"}, {\"role\": \"user\", "
                   "\"content\": \"And Shem?\"}, {\"role\": \"assistant\", \"content\": \"His son.\"}]}\n"
                   "{\"conversation\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"model\", \"content\": "
                   "\"hello there\"}]}\n")};
    tokenize_options o = {0};
    tokenize_stats st;
    gk_err err = {0};
    shard_set s;
    tokenizer *t = load_tokenizer();
    CHECK(tc, t && run("chat", in, 1, &o, &st, &err) == 0, "%s", err.msg);
    CHECK(tc, read_shards("chat", "train", &s, &err) == 0, "%s", err.msg);
    CHECK(tc, st.chat_docs == 2 && s.n_docs == 2, "%llu chat docs", (unsigned long long)st.chat_docs);
    const char *want[] = {"A patriarch.<end_of_turn>His son.<end_of_turn>", "hello there<end_of_turn>"};
    for (size_t d = 0; d < 2 && d < s.n_docs && !tc->failed; d++) {
        size_t begin = s.starts[d], end = d + 1 < s.n_docs ? s.starts[d + 1] : s.n, k = 0;
        int32_t masked[256];
        for (size_t i = begin; i < end && k < 256; i++)
            if (s.mask[i]) masked[k++] = (int32_t)s.tokens[i];
        char *text;
        size_t len;
        CHECK(tc, s.tokens[begin] == (uint32_t)tokenizer_bos_id(t) && s.mask[begin] == 0, "doc %zu starts with <bos>", d);
        CHECK(tc, tokenizer_decode(t, masked, k, false, &text, &len, &err) == 0, "%s", err.msg);
        if (!tc->failed) {
            CHECK(tc, !strcmp(text, want[d]), "doc %zu: masked tokens decode to \"%s\"", d, text);
            free(text);
        }
    }
    shard_set_free(&s);
    tokenizer_free(t);
}

// Small shards and a validation split; the same output on 1 and 4 threads.
static void rolling_split_and_threads(test_case *tc) {
    char text[20000] = "";
    for (int i = 0; i < 300; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "{\"text\": \"verse %d of the record, %d times\"}\n",
                 i, i * 7);
    const char *in[] = {write_input("many.jsonl", text)};
    shard_set a, b, one, val;
    gk_err err = {0};
    tokenize_stats st;
    tokenize_options o = {.shard_tokens = 500, .val_fraction = 0.2};
    int threads = omp_get_max_threads();
    omp_set_num_threads(4); // several threads even on a one-core machine, where the default would be one
    CHECK(tc, run("split", in, 1, &o, &st, &err) == 0, "%s", err.msg);
    omp_set_num_threads(1);
    tokenize_options o1 = {.shard_tokens = 500, .val_fraction = 0.2};
    tokenize_stats st1;
    CHECK(tc, run("split1", in, 1, &o1, &st1, &err) == 0, "%s", err.msg);
    omp_set_num_threads(threads);
    tokenize_options whole = {.shard_tokens = 1 << 30};
    tokenize_stats stw;
    CHECK(tc, run("whole", in, 1, &whole, &stw, &err) == 0, "%s", err.msg);
    if (tc->failed) return;
    read_shards("split", "train", &a, &err);
    read_shards("split1", "train", &b, &err);
    read_shards("whole", "train", &one, &err);
    read_shards("split", "val", &val, &err);
    CHECK(tc, a.n_shards > 3 && one.n_shards == 1, "%zu shards of 500 tokens, %zu of 2^30", a.n_shards, one.n_shards);
    CHECK(tc, a.n == b.n && !memcmp(a.tokens, b.tokens, a.n * 4), "1 and %d threads wrote different tokens", threads);
    CHECK(tc, val.n_docs == st.val_docs && val.n_docs > 20 && val.n_docs < 100, "%zu validation documents of 300",
          val.n_docs);
    CHECK(tc, a.n_docs + val.n_docs == 300 && a.n + val.n == one.n, "split loses or duplicates documents");
    shard_set_free(&a);
    shard_set_free(&b);
    shard_set_free(&one);
    shard_set_free(&val);
}

static void bad_records(test_case *tc) {
    const char *in[] = {write_input("bad.jsonl", "{\"text\": \"fine\"}\n{\"text\": \"broken\n{\"txt\": 1}\n{\"text\": \"ok\"}\n")};
    tokenize_options o = {0};
    tokenize_stats st;
    gk_err err = {0};
    CHECK(tc, run("bad", in, 1, &o, &st, &err) != 0, "malformed JSONL accepted");
    CHECK(tc, strstr(err.msg, "bad.jsonl:2") != NULL, "error does not name file:line: %s", err.msg);
    char path[300];
    snprintf(path, sizeof path, "%s/bad", work);
    CHECK(tc, dir_entry_count(path) == 0, "a failed run left %d files in its output directory", dir_entry_count(path));
    tokenize_options skip = {.skip_bad = true};
    CHECK(tc, run("skip", in, 1, &skip, &st, &err) == 0, "%s", err.msg);
    CHECK(tc, st.bad_records == 2 && st.docs == 2, "skipped %llu, kept %llu", (unsigned long long)st.bad_records,
          (unsigned long long)st.docs);
    CHECK(tc, run("skip", in, 1, &skip, &st, &err) != 0 && strstr(err.msg, "already holds"),
          "second run over existing shards: %s", err.msg);
    const char *mixed[] = {write_input("mixed.jsonl", "{\"text\": \"a\"}\n{\"prompt\": \"b\"}\n")};
    tokenize_options m = {0};
    CHECK(tc, run("mixed", mixed, 1, &m, &st, &err) != 0 && strstr(err.msg, "mixed.jsonl:2"),
          "a chat record in a text file: %s", err.msg);
}

// A plain-text input from a pipe is read whole; a JSONL one is refused (its first record is read
// before the run, so a pipe would lose it) with the file named and nothing written.
static void pipe_inputs(test_case *tc) {
    char fifo[256];
    snprintf(fifo, sizeof fifo, "%s/piped.txt", work);
    CHECK(tc, mkfifo(fifo, 0600) == 0, "mkfifo %s", fifo);
    pid_t child = fork();
    if (child == 0) { // the writer at the other end
        FILE *f = fopen(fifo, "w");
        int ok = f && fputs("one document through a pipe", f) >= 0;
        _exit(f && fclose(f) == 0 && ok ? 0 : 1);
    }
    const char *in[] = {fifo};
    tokenize_options o = {0};
    tokenize_stats st;
    gk_err err = {0};
    CHECK(tc, run("piped", in, 1, &o, &st, &err) == 0, "%s", err.msg);
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(tc, WIFEXITED(status) && WEXITSTATUS(status) == 0, "the pipe's writer failed");
    CHECK(tc, st.docs == 1 && st.bytes == strlen("one document through a pipe"), "%llu documents, %llu bytes",
          (unsigned long long)st.docs, (unsigned long long)st.bytes);
    char jsonl[256];
    snprintf(jsonl, sizeof jsonl, "%s/piped.jsonl", work);
    CHECK(tc, mkfifo(jsonl, 0600) == 0, "mkfifo %s", jsonl);
    const char *in2[] = {jsonl};
    CHECK(tc, run("piped-jsonl", in2, 1, &o, &st, &err) != 0 && strstr(err.msg, "piped.jsonl") &&
                  strstr(err.msg, "regular file"),
          "a JSONL pipe: %s", err.msg);
    char out[300];
    snprintf(out, sizeof out, "%s/piped-jsonl", work);
    CHECK(tc, dir_entry_count(out) == 0, "a refused run left %d files", dir_entry_count(out));
}

// h5py reads what tokenize wrote: same tokens, starts and masks.
static void h5py_reads_shards(test_case *tc) {
    if (test_h5py_missing()) {
        SKIP(tc, "%s", test_h5py_missing());
        return;
    }
    shard_set s;
    gk_err err = {0};
    CHECK(tc, read_shards("chat", "train", &s, &err) == 0, "%s", err.msg);
    char script[512], path[300];
    snprintf(path, sizeof path, "%s/chat/train-00000.h5", work);
    strbuf py = {0};
    sb_puts(&py, "import h5py, hdf5plugin, sys\nf = h5py.File(sys.argv[1], 'r')\nok = [");
    for (size_t i = 0; i < s.n; i++) sb_printf(&py, "%u,", s.tokens[i]);
    sb_puts(&py, "] == f['tokens'][:].tolist() and [");
    for (size_t i = 0; i < s.n; i++) sb_printf(&py, "%u,", s.mask[i]);
    sb_puts(&py, "] == f['loss_mask'][:].tolist() and [");
    for (size_t i = 0; i < s.n_docs; i++) sb_printf(&py, "%llu,", (unsigned long long)s.starts[i]);
    sb_puts(&py, "] == f['doc_starts'][:].tolist() and f.attrs['format'] == 'gemmakd-tokens'\nsys.exit(0 if ok else 1)\n");
    snprintf(script, sizeof script, "%s/check.py", work);
    file_write_atomic(script, py.data, py.len, &err);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s %s", test_python(), script, path);
    CHECK(tc, system(cmd) == 0, "h5py reads different tokens, masks or starts");
    sb_free(&py);
    shard_set_free(&s);
}

// Opens the shards work/<out>/train-*.h5 with the loader (as train, eval and teacher-logits do).
static int load_set(const char *out, gk_err *err) {
    char pattern[300];
    snprintf(pattern, sizeof pattern, "%s/%s/train-*.h5", work, out);
    const char *patterns[] = {pattern};
    loader_options opt = {.seq_len = 8};
    loader *l;
    if (loader_open(&l, patterns, 1, &opt, err)) return -1;
    loader_close(l);
    return 0;
}

static int copy_file(const char *from, const char *to) {
    char *data;
    size_t len;
    gk_err err;
    if (file_read_all(from, &data, &len, &err)) return -1;
    int rc = file_write_atomic(to, data, len, &err);
    free(data);
    return rc;
}

// A tokenize killed after its second shard leaves a set marked incomplete: the loader refuses
// it naming the set's manifest, and so does a new tokenize into the same names. A complete set
// loads; with a shard gone, or one that is not in its manifest, it is refused; shards without
// a manifest (older sets, other tools) load as before.
static void killed_run_leaves_incomplete_set(test_case *tc) {
    strbuf text = {0};
    for (int i = 0; i < 300; i++) sb_printf(&text, "{\"text\": \"line %d of a document, %d times over\"}\n", i, i * 3);
    const char *input = write_input("set.jsonl", text.data);
    sb_free(&text);
    char killed[300], complete[300], manifest[320], path[320], stray[320];
    snprintf(killed, sizeof killed, "%s/killed", work);
    snprintf(complete, sizeof complete, "%s/complete", work);
    const char *argv[] = {gemmakd, "tokenize", "--tokenizer", fixture_path(TOKENIZER), "--input", input, "--out", killed,
                          "--shard-tokens", "500", NULL};
    int st = test_spawn(argv, "GEMMAKD_TEST_KILL_AFTER_SHARD=2", NULL);
    snprintf(path, sizeof path, "%s/train-00001.h5", killed);
    CHECK(tc, WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && path_exists(path), "the run was not killed after two shards");
    gk_err err = {0};
    snprintf(manifest, sizeof manifest, "%s/train.shards.json", killed);
    CHECK(tc, load_set("killed", &err) != 0 && strstr(err.msg, manifest) && strstr(err.msg, "incomplete"),
          "the loader took a killed run's shards: %s", err.msg);
    st = test_spawn(argv, NULL, path);
    char *msg = test_read_text(path);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(msg, manifest), "tokenize over a killed run's set: %s", msg);
    free(msg);
    argv[7] = complete;
    st = test_spawn(argv, NULL, NULL);
    CHECK(tc, WIFEXITED(st) && WEXITSTATUS(st) == 0 && load_set("complete", &err) == 0, "a complete set: %s", err.msg);
    snprintf(path, sizeof path, "%s/train-00001.h5", complete);
    snprintf(stray, sizeof stray, "%s/train-00777.h5", complete);
    CHECK(tc, rename(path, stray) == 0, "rename");
    CHECK(tc, load_set("complete", &err) != 0 && strstr(err.msg, "train-00001.h5") && strstr(err.msg, "missing"),
          "a set without one of its shards: %s", err.msg);
    CHECK(tc, copy_file(stray, path) == 0, "copy");
    CHECK(tc, load_set("complete", &err) != 0 && strstr(err.msg, stray) && strstr(err.msg, "not in its shard set"),
          "a shard that is not in its set: %s", err.msg);
    snprintf(manifest, sizeof manifest, "%s/train.shards.json", complete);
    CHECK(tc, unlink(manifest) == 0 && load_set("complete", &err) == 0, "shards without a manifest: %s", err.msg);
}

int main(int argc, char **argv) {
    (void)argc;
    test_gemmakd_path(argv[0], gemmakd, sizeof gemmakd);
    if (test_scratch_dir(NULL, "tokenize", work, sizeof work)) return 1;
    test_run("text_documents_bos_eos_separator", text_documents);
    test_run("chat_loss_masks", chat_masks);
    test_run("rolling_validation_split_threads", rolling_split_and_threads);
    test_run("bad_records_and_existing_shards", bad_records);
    test_run("pipe_inputs", pipe_inputs);
    test_run("h5py_reads_shards", h5py_reads_shards);
    test_run("killed_run_leaves_incomplete_set", killed_run_leaves_incomplete_set);
    gk_err err;
    dir_remove_tree(work, &err);
    return test_main_result();
}

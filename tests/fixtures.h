// Fixtures several test programs share: scratch directories, the python probe,
// and tiny random Gemma 2 models.
#ifndef GK_TEST_FIXTURES_H
#define GK_TEST_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "tests/check.h"

// A fresh directory /tmp/gk-<tag>-XXXXXX in dir[cap]; 0, or -1 after a failed CHECK (tc may be NULL).
int test_scratch_dir(test_case *tc, const char *tag, char *dir, size_t cap);

// The python the tests run scripts with: $GEMMAKD_TEST_PYTHON (make test sets it to a
// virtual environment with h5py, hdf5plugin, PyYAML and matplotlib: scripts/test-venv.sh),
// else python3.
const char *test_python(void);
// NULL when test_python() imports `modules` ("h5py, hdf5plugin"), else why not, for a SKIP
// line (static buffer: valid until the next call).
const char *test_python_missing(const char *modules);
// test_python_missing("h5py, hdf5plugin"), asked once.
const char *test_h5py_missing(void);

// The packed documents of a reference fixture: "tokens" (int32, at most max_tokens) and
// "doc_starts" (int64, at most max_docs) of f.
int test_read_docs(const st_file *f, uint32_t *tokens, size_t max_tokens, size_t *n_tokens, int64_t *starts,
                   size_t max_docs, size_t *n_docs, gk_err *err);
// A token shard at path holding the documents tokens[starts[d] .. starts[d+1]) (the last one
// to n_tokens), with loss masks from mask when it is not NULL (a chat shard); vocabulary
// vocab_size, <bos> 2, <eos> 1, <pad> 0, tokenizer sha256 64 'a's.
int test_write_shard(const char *path, const uint32_t *tokens, size_t n_tokens, const int64_t *starts, size_t n_docs,
                     const uint8_t *mask, int64_t vocab_size, gk_err *err);

// The shape of a tiny model: soft-caps 50 / 30, rope_theta 1e4, GeGLU (tanh), head_dim 8.
typedef struct {
    int d_model, d_ff, layers, heads, kv_heads, window, vocab, max_positions;
} tiny_shape;

// config.json text of that shape in json[cap] (for runs that make their model themselves).
void tiny_config_json(const tiny_shape *s, char *json, size_t cap);
// m: a random model of that shape (model_init_random with seed); free with model_state_free.
int tiny_model(const tiny_shape *s, uint64_t seed, model_state *m, gk_err *err);
// Gives m's norm scales random values (scale * hash_normal(seed, offset)), which
// model_init_random leaves at zero: then they matter, and continuations vary.
void tiny_model_random_norms(model_state *m, double scale, uint64_t seed);

#endif

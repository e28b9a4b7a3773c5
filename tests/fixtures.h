// Fixtures several test programs share: scratch directories, the h5py probe,
// and tiny random Gemma 2 models.
#ifndef GK_TEST_FIXTURES_H
#define GK_TEST_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include "model/checkpoint.h"
#include "tests/check.h"

#define H5PY_MISSING "python3 with h5py and hdf5plugin is not available (python3 -c 'import h5py, hdf5plugin' failed)"

// A fresh directory /tmp/gk-<tag>-XXXXXX in dir[cap]; 0, or -1 after a failed CHECK (tc may be NULL).
int test_scratch_dir(test_case *tc, const char *tag, char *dir, size_t cap);

// Whether python3 can import h5py and hdf5plugin (asked once).
int test_have_h5py(void);

// The shape of a tiny model: soft-caps 50 / 30, rope_theta 1e4, GeGLU (tanh), head_dim 8.
typedef struct {
    int d_model, d_ff, layers, heads, kv_heads, window, vocab, max_positions;
} tiny_shape;

// config.json text of that shape in json[cap] (for runs that make their model themselves).
void tiny_config_json(const tiny_shape *s, char *json, size_t cap);
// m: a random model of that shape (model_init_random with seed); free with model_state_free.
int tiny_model(const tiny_shape *s, uint64_t seed, model_state *m, gk_err *err);

#endif

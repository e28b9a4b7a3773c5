// The model handle: one model on one backend, and the one way every caller
// (trainer, teacher, teacher-cache builder, eval, score, generation, bench)
// runs it. Opened with a device (cpu | cuda) and a precision (fp32 | bf16);
// no caller names an instantiation of the model code below it.
//
//   backend    weights computed on          gradients  kernels
//   cpu fp32   the float32 master weights   float32    model/cpu/, oneDNN f32 products
//   cpu bf16   a bf16 copy of them          bf16       model/cpu/, oneDNN bf16 products (AMX, AVX512-BF16)
//   cuda bf16  a bf16 copy on the GPU       bf16       model/cuda/, cuBLASLt
//
// The model_state's float32 parameters are the master weights: optimizer
// updates, checkpoints and averages work on them (on the GPU on a device copy,
// brought back by engine_sync_host). Statistics (RMSNorm, log-sum-exp,
// logits, losses) are float32 in every backend.
#ifndef GK_ENGINE_H
#define GK_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/collectives.h"
#include "model/checkpoint.h"
#include "model/gemma2.h"
#include "model/optim.h"

typedef enum { DEVICE_CPU, DEVICE_CUDA } engine_device;
typedef enum { PRECISION_FP32, PRECISION_BF16 } engine_precision;

typedef struct {
    engine_device device;
    engine_precision precision;
} engine_backend;

#define ENGINE_DEVICES "cpu|cuda"
#define ENGINE_PRECISIONS "fp32|bf16"

// device / precision names (NULL or "": cpu / fp32) -> a backend this build can run; the
// error names the flag or key given in `what` (e.g. "--precision", "model.precision").
int engine_backend_parse(const char *device, const char *precision, const char *what, engine_backend *b, gk_err *err);
// The same names to any backend, whether or not this build runs it (plans: gemmakd info).
int engine_backend_names(const char *device, const char *precision, const char *what, engine_backend *b, gk_err *err);
const char *engine_device_name(engine_device d);
const char *engine_precision_name(engine_precision p);
// What runs the backend's matrix products on this machine, e.g. "cpu bf16: oneDNN 2.6.3,
// ISA avx512_core_amx, kernel brg:avx512_core_amx_bf16"; *generic when it is an unoptimised kernel.
int engine_backend_describe(engine_backend b, char *text, size_t n, bool *generic, gk_err *err);
// The same as a progress line on stderr ("<role>: cpu bf16: oneDNN ..."), with a warning when generic.
int engine_backend_report(engine_backend b, const char *role, gk_err *err);
// Only the warning, when there is one (commands whose stderr is otherwise quiet).
int engine_backend_warn(engine_backend b, const char *role, gk_err *err);

typedef struct engine engine;

// The most tokens (B x T) one pass holds: the layers index them with an int.
#define ENGINE_MAX_TOKENS 2147483647LL

// Opens m on backend b for batches of B rows x T tokens (B = T = 0: decoding
// only; B x T at most ENGINE_MAX_TOKENS); training keeps every layer's
// activations and gradient buffers. m must outlive the engine.
int engine_open(engine **e, model_state *m, engine_backend b, int B, int T, bool training, gk_err *err);
// Whether the engine reads m->params after engine_open: training engines and cpu
// fp32 do; the others compute on their own copy, and the caller may free
// m->params (a bf16 teacher then holds 2 bytes per parameter, not 6).
bool engine_holds_params(const engine *e);
void engine_close(engine *e);
engine_backend engine_backend_of(const engine *e);

// Embedding, layers and final norm over a batch of B x T tokens; window > 0
// overrides the sliding window of local layers (inference ablations).
int engine_forward(engine *e, const token_batch *batch, int window, gk_err *err);

// A loss over host float32 logits [count, V] (after the final soft-cap) of
// positions first..first+count-1; with dlogits, writes dLoss/dlogits there.
typedef double (*engine_head_fn)(void *ctx, const float *logits, float *dlogits, size_t first, size_t count, int vocab);

typedef enum {
    HEAD_XENT,     // cross-entropy (xent_ctx, host targets): runs where the model runs
    HEAD_TILED,    // a loss over vocabulary tiles (tiled_loss, model/gemma2.h): distillation, evaluation
    HEAD_CALLBACK, // any loss over whole rows of host logits [chunk, V] (score's logits, the teacher-cache builder)
} head_kind;

typedef struct {
    head_kind kind;
    const xent_ctx *xent;     // HEAD_XENT
    const tiled_loss *tiled;  // HEAD_TILED (its teacher_tile may be engine_teacher_tile below)
    engine_head_fn fn;        // HEAD_CALLBACK
    void *ctx;
    int chunk;                // HEAD_CALLBACK, and HEAD_XENT on the GPU: tokens per [chunk, V] block of logits (0: all)
    tile_shape tiles;         // HEAD_XENT on the CPU, HEAD_TILED: positions per block, ids per tile (0: defaults)
    bool grads;               // also dL/dE into the gradients and dL/dhidden for engine_backward
} head_loss;

// Cross-entropy over host float32 logits, as an engine_head_fn (ctx: an xent_ctx with
// host targets), for callbacks that want it beside their own work.
double xent_host(void *ctx, const float *logits, float *dlogits, size_t first, size_t count, int vocab);

// The output head over the last forward's positions; *loss = the sum of the chunks' losses.
int engine_head(engine *e, const head_loss *h, double *loss, gk_err *err);
// Backward from the head's gradient to every parameter (added to the gradients).
int engine_backward(engine *e, gk_err *err);
// Host float32 logits [count, V] of positions first..first+count-1 of the last forward.
int engine_logits(engine *e, size_t first, size_t count, float *out, gk_err *err);
// The same for vocabulary ids v0..v0+width-1: out [count, width]. In the form of
// tiled_loss.teacher_tile, with the engine as `teacher`: a teacher in the same pass.
int engine_teacher_tile(void *e, size_t first, size_t count, int v0, int width, float *out, gk_err *err);

// Decoding with a KV cache of B rows x max_len positions (see model/gemma2_api.inc).
int engine_decode_init(engine *e, int B, int max_len, gk_err *err);
void engine_decode_reset_row(engine *e, int row);
// Row b takes tokens[b] at position pos[b] (< 0: the row idles).
int engine_decode_step(engine *e, const int32_t *tokens, const int32_t *pos, gk_err *err);
// Row `row` starts a new sequence with a prompt of n tokens, all through the
// layers at once (in-batch attention, as engine_forward); its logits are then
// those of position n-1 and its steps continue at position n. The other rows
// are left as they are. A prompt longer than the cache's max_len or an id
// outside the vocabulary is an error.
int engine_decode_prefill(engine *e, int row, const int32_t *tokens, int n, gk_err *err);
// Host float32 logits [n, V] of the given rows after the last step or their prefill.
int engine_decode_logits(engine *e, const int *rows, int n, float *out, gk_err *err);

// Computes with these float32 weights (layout of the model) from now on: the
// master weights after they changed on the host, or another model's (an EMA,
// an average) for evaluation. On cpu fp32 they are used in place, so they must
// outlive their use.
int engine_load_weights(engine *e, const float *params, gk_err *err);

// Training: the optimizer state (host; moments allocated by optimizer_init)
// and, when ema is not NULL, a weight EMA [n_floats] (ZeRO-1: [block]) with decay ema_decay.
int engine_attach_optimizer(engine *e, optimizer *o, float *ema, double ema_decay, gk_err *err);
void engine_zero_grads(engine *e);
double engine_grad_norm(engine *e);
// One update of the master weights (and the EMA) from the gradients times grad_scale.
int engine_optimizer_step(engine *e, double lr, float grad_scale, gk_err *err);

// Data parallelism: after engine_attach_ranks (before engine_attach_optimizer), engine_reduce_grads
// sums the gradients over the ranks of c (an all-reduce). With zero (ZeRO-1) it is a reduce-scatter
// instead: each rank keeps where its kernels run only its block of the master weights
// (collectives_range), its optimizer state and EMA are that block's (optimizer_init_range; ema
// [block]), engine_grad_norm meets the blocks' sums of squares, engine_optimizer_step updates the
// block and all-gathers the new weights, and engine_sync_host brings the block to m->params (+lo)
// and the state's block buffers; gathering whole buffers on the host is the caller's.
int engine_attach_ranks(engine *e, const collectives *c, bool zero, gk_err *err);
// Under mpirun on cuda: this rank's GPU (its local rank modulo the devices), before any engine opens.
int engine_use_rank_device(engine_backend b, gk_err *err);
// The collectives for engines of backend b over the MPI job's ranks: MPI on host memory for the
// CPU; for cuda, NCCL, after choosing this rank's GPU (call it before opening the engine).
int engine_ranks_collectives(engine_backend b, const collectives **c, gk_err *err);
int engine_reduce_grads(engine *e, gk_err *err);
// Host master weights, optimizer state and EMA made current (for checkpoints), and the
// other way after they were loaded on the host (resume). Nothing to do on the CPU.
int engine_sync_host(engine *e, gk_err *err);
int engine_sync_device(engine *e, gk_err *err);

// The gradients as host float32 [n_floats] (tests, diagnostics).
int engine_grads(engine *e, float *out, gk_err *err);

// Benchmarks. Waits until the engine's work so far has finished (a GPU runs it asynchronously).
void engine_wait(engine *e);
// Seconds backend b takes for one linear layer's three products (y = x w^T,
// dx = dy w and dw += dy^T x, for x [rows, in] and w [out, in]), each the best of reps.
int engine_time_linear(engine_backend b, int rows, int in, int out, int reps, double seconds[3], gk_err *err);
// Peak memory in bytes: the GPU buffers' on cuda, the process's peak resident set on the CPU.
size_t engine_peak_bytes(engine_backend b);

#endif

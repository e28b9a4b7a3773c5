# gemmakd build.  make | make test | make demo | make bench | make SAN=1 test | make GPU=1
CC      ?= gcc
BUILD   ?= build
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
BLAS_INC = /usr/include/x86_64-linux-gnu/openblas-openmp
BLAS_LIB = /usr/lib/x86_64-linux-gnu/openblas-openmp
HDF5_INC = /usr/include/hdf5/serial
HDF5_LIB = /usr/lib/x86_64-linux-gnu/hdf5/serial
MPI_INC  = /usr/lib/x86_64-linux-gnu/openmpi/include
MPI_LIB  = /usr/lib/x86_64-linux-gnu/openmpi/lib

CFLAGS  ?= -O3 -march=native -mprefer-vector-width=512
CFLAGS  += -std=c17 -D_GNU_SOURCE -fopenmp -fno-trapping-math -fno-math-errno -Wall -Wextra -Werror -I. -I$(BLAS_INC) -I$(HDF5_INC) -I$(MPI_INC) -MMD -MP
LDFLAGS += -fopenmp -L$(BLAS_LIB) -Wl,-rpath,$(BLAS_LIB) -L$(HDF5_LIB) -L$(MPI_LIB)
LDLIBS  += -ldnnl -lopenblas -lhdf5 -lzstd -lyaml -lmpi -lm

ifeq ($(SAN),1)
BUILD   := build-san
CFLAGS  := $(filter-out -O3,$(CFLAGS)) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

# GPU=1: the same gemmakd with the CUDA backend (bf16 kernels in model/cuda/, cuBLASLt), in build-gpu/.
ifeq ($(GPU),1)
BUILD     := build-gpu
CUDA_ARCH ?= 90
CFLAGS    += -DGK_WITH_CUDA -I$(CUDA_HOME)/include
NVFLAGS    = -std=c++17 -O3 -gencode arch=compute_$(CUDA_ARCH),code=sm_$(CUDA_ARCH) -DGK_WITH_CUDA -I. -I$(HDF5_INC) -I$(MPI_INC) \
             -Xcompiler -Wall,-Wextra,-Werror -MMD -MP
LDFLAGS   += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64
LDLIBS    += -lcublasLt -lcudart -lnccl -lstdc++
endif

LIB_SRC  = $(wildcard cli/*.c common/*.c model/*.c model/cpu/*.c data/*.c data/tokenizer/*.c distill/*.c train/*.c eval/*.c gen/*.c)
# The model's compute code is compiled per instantiation (model/precisions.h): float32 (plain .o),
# the float64 twin (-DGK_REAL_F64), bf16 on the CPU (-DGK_REAL_BF16) and, with GPU=1, the GPU's
# (-DGK_REAL_CUDA: layer sequence and model handle; its kernels are model/cuda/*.cu). The float64
# twin stays below the model handle (model/engine_impl.c), for the tests.
LAYER_SRC  = model/acts.c model/forward.c model/backward.c model/head.c model/optim_step.c
KERNEL_SRC = $(filter-out model/cpu/products.c,$(wildcard model/cpu/*.c))
ENGINE_SRC = model/engine_impl.c
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o) $(patsubst %.c,$(BUILD)/%_f64.o,$(LAYER_SRC) $(KERNEL_SRC)) \
           $(patsubst %.c,$(BUILD)/%_bf16.o,$(LAYER_SRC) $(KERNEL_SRC) $(ENGINE_SRC))
TEST_SRC = $(filter-out tests/test_cuda.c,$(wildcard tests/test_*.c))
ifeq ($(GPU),1)
# The layer sequence and model handle once more (bf16 on the GPU), beside the kernels; the GPU build's tests
# compare its kernels (test_cuda) and every bf16 backend through the handle (test_backends) with the CPU.
CUDA_SRC = $(wildcard model/cuda/*.cu)
LIB_OBJ += $(CUDA_SRC:%.cu=$(BUILD)/%.o) $(patsubst %.c,$(BUILD)/%_cuda.o,$(LAYER_SRC) $(ENGINE_SRC))
TEST_SRC = tests/test_cuda.c tests/test_backends.c
endif
TEST_BIN = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

.PHONY: all deps test test-bins demo bench ablations clean
all: deps gemmakd

deps:
	@./scripts/install-deps.sh

gemmakd: $(BUILD)/gemmakd
ifneq ($(SAN),1)
	@cp $< $@.tmp && mv -f $@.tmp $@ # a new file: a running gemmakd keeps its old one
endif

$(BUILD)/gemmakd: $(BUILD)/gemmakd.o $(BUILD)/libgemmakd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libgemmakd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/%_f64.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DGK_REAL_F64 -c -o $@ $<

$(BUILD)/%_bf16.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DGK_REAL_BF16 -c -o $@ $<

$(BUILD)/%_cuda.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DGK_REAL_CUDA -c -o $@ $<

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/tests/check.o $(BUILD)/tests/fixtures.o $(BUILD)/tests/kd_reference.o \
                  $(BUILD)/libgemmakd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

test-bins: $(TEST_BIN) $(BUILD)/gemmakd

# The suite runs twice: optimised, and under AddressSanitizer + UBSan (names prefixed "san:");
# then the GPU build's test (names prefixed "gpu:"), which needs nvcc to build and a GPU to run.
# The tests that read our files with h5py and PyYAML, and the plot test, use the python of a
# virtual environment made once from PyPI (scripts/test-venv.sh); without one they skip, saying why.
test: deps test-bins
	@$(MAKE) --no-print-directory SAN=1 test-bins
	@if [ -x "$(NVCC)" ]; then $(MAKE) --no-print-directory GPU=1 test-bins; else rm -rf build-gpu; fi
	@GEMMAKD_TEST_PYTHON=$$(./scripts/test-venv.sh) ./tests/run.sh build build-san build-gpu

demo: all
	@./scripts/demo.sh

bench: all
	@./scripts/bench.sh

# Every ablation of configs/ablations/ (scripts/sweep.py) on a profile: cpu (default), smoke or gpu.
PROFILE ?= cpu
ablations: all
	@./scripts/install-deps.sh ablations
	@for f in configs/ablations/[a-z]_*.yaml; do python3 scripts/sweep.py $$f --profile $(PROFILE) || exit 1; done

clean:
	rm -rf build build-san build-gpu gemmakd

-include $(LIB_OBJ:.o=.d) $(BUILD)/gemmakd.d $(TEST_BIN:=.d)

# Keep the test objects between runs (make would delete them as intermediates). Only these: a
# target-less .SECONDARY would also let a missing library object go unbuilt when the archive is newer.
.SECONDARY: $(TEST_BIN:=.o) $(BUILD)/tests/check.o $(BUILD)/tests/fixtures.o $(BUILD)/tests/kd_reference.o

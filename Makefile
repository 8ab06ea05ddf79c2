# plot — build, test and benchmark entry points, grouped by purpose.
# `make help` lists every target with one line each (the "#>" lines below).
#
# Variables: CC=clang (objects kept apart in build/clang), SAN=address,undefined
# or SAN=thread (sanitized build in build/<cc>-san-*, binaries in <build>/bin),
# CUDA=1 (also lib/cuda/*.cu with nvcc and the CUDA engine backend, -DPLOT_CUDA;
# its own tree build/<cc>-cuda, binaries in build/<cc>-cuda/bin), CUDA=host (the same
# backend with the kernels compiled by the host C++ compiler and run on the CPU,
# thread by thread, by tests/gpu/khost: no CUDA toolkit needed; build/<cc>-cudahost),
# FUZZ_SECS (fuzz-smoke),
# PYTHON. The default build copies its binaries to bin/ so the README's
# commands work without a path.

#>> Build
#> all             bin/plot, bin/plotd and build/<cc>/libplot.a (the default)
#> clean           remove build/ and bin/

CC       ?= cc
SAN      ?=
CUDA     ?= 0
NVCC     ?= $(or $(shell command -v nvcc 2>/dev/null),/usr/local/cuda/bin/nvcc)
CUDA_HOME ?= /usr/local/cuda
PYTHON   ?= python3
FUZZ_SECS ?= 60

comma := ,
CCNAME := $(notdir $(firstword $(CC)))
# A CUDA build compiles the C files with -DPLOT_CUDA, so it must not share
# objects (or bin/) with the CPU build of the same compiler.
CUDA_TAG := $(if $(filter 1,$(CUDA)),-cuda,$(if $(filter host,$(CUDA)),-cudahost))
ifeq ($(SAN),)
B       ?= build/$(CCNAME)$(CUDA_TAG)
BINDIR  := $(if $(CUDA_TAG),$(B)/bin,bin)
else
B       ?= build/$(CCNAME)$(CUDA_TAG)-san-$(subst $(comma),-,$(SAN))
BINDIR  := $(B)/bin
endif

PKGS     := yaml-0.1 msgpack libpcre2-8 jansson libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lyaml -lmsgpackc -lpcre2-8 -ljansson -lmicrohttpd)

# libpq (lib/store/pg-*.c, the PostgreSQL shared queue)
PKG_CFLAGS += $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
PKG_LIBS   += $(shell pkg-config --libs libpq 2>/dev/null || echo -lpq)

# sqlite3 (lib/store/sqlite.c, the embedded durable store)
PKG_CFLAGS += $(shell pkg-config --cflags sqlite3 2>/dev/null)
PKG_LIBS   += $(shell pkg-config --libs sqlite3 2>/dev/null || echo -lsqlite3)

# DEPS_ROOT=DIR: the libraries come from Debian packages unpacked under DIR
# (tests/gpu/carry.sh, make gpu-carry) instead of the system, with an rpath
# into DIR: how the GPU machine, which has no -dev packages, builds plotd.
# An old-style DT_RPATH (--disable-new-dtags) also serves the libraries'
# own dependencies (libmicrohttpd's gnutls, libpq's Kerberos), which a
# DT_RUNPATH would leave to the system.
ifneq ($(DEPS_ROOT),)
DEPS_DIR   := $(abspath $(DEPS_ROOT))/root
DEPS_LIBS  := $(DEPS_DIR)/usr/lib/x86_64-linux-gnu $(DEPS_DIR)/lib/x86_64-linux-gnu
PKG_CFLAGS := -isystem $(DEPS_DIR)/usr/include -isystem $(DEPS_DIR)/usr/include/postgresql
PKG_LIBS   := -Wl,--disable-new-dtags \
	      $(foreach d,$(DEPS_LIBS),-L$(d) -Wl,-rpath,$(d) -Wl,-rpath-link,$(d)) \
	      -lyaml -lmsgpackc -lpcre2-8 -ljansson -lmicrohttpd -lpq -lsqlite3
endif

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wno-unused-parameter
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -pthread $(WARN) -Iinclude -Ilib $(PKG_CFLAGS) \
              -MMD -MP $(CFLAGS)
LDLIBS   := $(PKG_LIBS) -lm -pthread
ifneq ($(SAN),)
ALL_CFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=$(SAN)
endif

# SIMD kernels live in files named *-avx2.c / *-avx512.c and get their ISA
# flags per file; the dispatcher picks one at run time with cpuid, so the
# binary runs on any x86-64 and never needs -march=native.
AVX2_FLAGS   := -mavx2 -mfma -mf16c
AVX512_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c

LIB_SRC  := $(sort $(shell find lib -name '*.c'))
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o)
CU_SRC   := $(sort $(wildcard lib/cuda/*.cu))
ifeq ($(CUDA),1)
LIB_OBJ  += $(CU_SRC:%.cu=$(B)/cuda/%.o)
ALL_CFLAGS += -DPLOT_CUDA=1
CUDA_LDLIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lcublas -lstdc++
LDLIBS   += $(CUDA_LDLIBS)
else ifeq ($(CUDA),host)
KHOST_OBJ := $(CU_SRC:%.cu=$(B)/khost/%.o) $(B)/khost/khost.o
LIB_OBJ  += $(KHOST_OBJ)
ALL_CFLAGS += -DPLOT_CUDA=1
CUDA_LDLIBS := -lstdc++
LDLIBS   += $(CUDA_LDLIBS)
else ifneq ($(CUDA),0)
$(error CUDA=$(CUDA): use CUDA=1 (nvcc) or CUDA=host (the kernels on the CPU))
endif
CMD_SRC  := $(sort $(wildcard cmd/*.c))
DMN_SRC  := $(sort $(wildcard daemon/*.c))
LIBA     := $(B)/libplot.a
GPU_TOOLS := $(B)/tests/gguf-random $(B)/tests/llm-compare
# test-backend for tests/cli/gpu-test-backend.bats: against the CPU stand-in
# (tests/gpu/cuda-mock.c), or in a CUDA build the real one on lib/cuda's
# emulated device
GPU_MOCK  := $(if $(filter-out 0,$(CUDA)),$(B)/gpu/test-backend,$(B)/tests/test-backend-mock)

UNIT_SRC := $(sort $(wildcard tests/unit/test-*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
# the unit tests of threaded code, which CI also runs under TSan
THREAD_UNIT_BIN := $(filter $(B)/tests/test-pool% $(B)/tests/test-post $(B)/tests/test-exec \
	$(B)/tests/test-pg $(B)/tests/test-store-sqlite,$(UNIT_BIN))
UNIT_HELP_SRC := $(sort $(wildcard tests/unit/helper-*.c))
UNIT_HELP_OBJ := $(UNIT_HELP_SRC:%.c=$(B)/%.o)

.PHONY: all clean help deps deps-peer models run check unit cli cli-cuda cli-memory ref check-threads check-pool \
	check-peer check-peer-llm fuzz-smoke man-cfg
.DEFAULT_GOAL := all

all: $(BINDIR)/plot $(BINDIR)/plotd $(LIBA) $(GPU_TOOLS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(if $(findstring -avx512.c,$<),$(AVX512_FLAGS),$(if $(findstring -avx2.c,$<),$(AVX2_FLAGS))) -c $< -o $@

$(B)/cuda/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -Iinclude -Ilib -std=c++17 -arch=sm_90 -Xcompiler -Wall,-Wextra,-Werror \
	    -MMD -MP -c $< -o $@

# CUDA=host: each .cu as C++ against tests/gpu/khost's runtime headers, its
# launches `k<<<cfg>>>(args)` rewritten to khost_launch(k, "k", cfg)(args) and
# its dynamic shared memory to khost's per-block buffer (line numbers kept).
KHOST_CXXFLAGS := -std=c++17 -D_GNU_SOURCE -pthread -ffp-contract=off -Itests/gpu/khost \
	-Iinclude -Ilib -Wall -Wextra -Werror -Wno-unknown-pragmas -Wno-unused-parameter \
	-MMD -MP $(CFLAGS) $(if $(SAN),-fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all)
KHOST_SED := -e 's/([A-Za-z_][A-Za-z0-9_]*(<[^<>]*>)?)<<<(.*)>>>\(/khost_launch(\1, "\1", \3)(/' \
	-e 's/extern __shared__ ([A-Za-z_0-9]+) ([A-Za-z_0-9]+)\[\];/\1 *\2 = (\1 *)khost_dyn_shared();/' \
	-e 's/__shared__ ([A-Za-z_0-9]+) ([A-Za-z_0-9]+)\[([^]]+)\];/\1 *\2 = (\1 *)khost_shared(sizeof(\1) * (\3), __LINE__);/'
$(B)/khost/%.o: %.cu
	@mkdir -p $(dir $@)
	{ echo '#line 1 "$<"'; sed -E $(KHOST_SED) $<; } > $(@:.o=.cc)
	$(CXX) $(KHOST_CXXFLAGS) -c $(@:.o=.cc) -o $@
$(B)/khost/khost.o: tests/gpu/khost/khost.cc
	@mkdir -p $(dir $@)
	$(CXX) $(KHOST_CXXFLAGS) -c $< -o $@

$(LIBA): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BINDIR)/plot: $(CMD_SRC:%.c=$(B)/%.o) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lreadline

$(BINDIR)/plotd: $(DMN_SRC:%.c=$(B)/%.o) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

clean:
	rm -rf build bin


# ---- tests -------------------------------------------------------------------
#>> Tests
#> check           every test: unit, cli and ref (what CI runs under gcc)
#> unit            the cmocka unit tests (tests/unit); test-pg runs against a private
#>                 PostgreSQL that tests/tools/pg-cluster.sh starts (or CI's, $PLOT_PG_DIR)
#> cli             the bats CLI and daemon tests (tests/cli), against $(BINDIR); under
#>                 pg-cluster.sh run, so daemon-pg.bats has its PostgreSQL server;
#>                 serve-cuda.bats only with CUDA=1
#> cli-cuda        (CUDA=1) tests/cli/serve-cuda.bats alone: plotd serving
#>                 device: cuda on the emulated device (CI runs it)
#> cli-memory      the daemon and task tests again with the memory store (the
#>                 default is sqlite; PLOT_TEST_BACKEND picks it)
#> ref             the NumPy/jinja2/gguf oracle tests (tests/ref, pytest)
#> check-threads   the unit tests of threaded code (pool, post queue, executor table);
#>                 CI runs them under SAN=thread (check-pool: the same, old name)
#> check-peer      tokens and greedy text against llama.cpp (needs make deps-peer)

check: unit cli cli-memory ref

$(B)/tests/test-%: $(B)/tests/unit/test-%.o $(UNIT_HELP_OBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# test-pg* need a PostgreSQL server: pg-cluster.sh run uses the one CI
# started ($$PLOT_PG_DIR), else starts a private one for that binary.
PG_RUN := tests/tools/pg-cluster.sh run
unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do \
	    echo "== $$t"; case $$t in */test-pg*) w="$(PG_RUN)";; *) w=;; esac; \
	    CMOCKA_MESSAGE_OUTPUT=stdout $$w $$t || fail=1; \
	done; exit $$fail

check-threads: $(THREAD_UNIT_BIN)
	@fail=0; for t in $(THREAD_UNIT_BIN); do \
	    echo "== $$t"; case $$t in */test-pg*) w="$(PG_RUN)";; *) w=;; esac; \
	    CMOCKA_MESSAGE_OUTPUT=stdout $$w $$t || fail=1; \
	done; exit $$fail
check-pool: check-threads

# serve-cuda.bats needs a CUDA build (it fails, never skips, without one).
CLI_CUDA := tests/cli/serve-cuda.bats
CLI_BATS := $(if $(filter-out 0,$(CUDA)),$(wildcard tests/cli/*.bats),\
		$(filter-out $(CLI_CUDA),$(wildcard tests/cli/*.bats)))
cli: all $(GPU_TOOLS) $(GPU_MOCK) $(B)/tests/llm-generate $(B)/tests/tok-tool $(B)/tests/proto-torture
	@if [ -n "$(CLI_BATS)" ]; then \
	    PLOT_BINDIR=$(abspath $(BINDIR)) PLOT_TESTBIN=$(abspath $(B))/tests \
	    $(PG_RUN) bats --print-output-on-failure $(CLI_BATS); \
	else echo "cli: no bats tests yet"; fi

ifneq ($(CUDA),0)
cli-cuda: all $(B)/tests/llm-generate $(B)/tests/gguf-random
	PLOT_BINDIR=$(abspath $(BINDIR)) PLOT_TESTBIN=$(abspath $(B))/tests \
	    bats --print-output-on-failure $(CLI_CUDA)
else
cli-cuda:
	@echo "make $@: needs a CUDA build: make CUDA=1 $@" >&2; exit 2
endif

# The task and daemon tests whose config comes from the helpers (plotd_config,
# cli_config) once more with the memory backend: both stores must pass. The
# others write their own configs (the sqlite default) or test the store itself.
# cli-memory: every bats file whose daemons take the helpers' store, again
# on the memory store; not the store's own tests (sqlite, postgres), nor
# those that start no daemon, nor the GPU ones.
CLI_NOT_MEMORY := daemon-store daemon-store-kill daemon-pg daemon-pg-http serve-cuda gpu-test-backend \
	      gguf-random cli-docs cli-settings cli-usage cli-completion chat-ux
CLI_MEMORY := $(filter-out $(CLI_NOT_MEMORY:%=tests/cli/%.bats),$(wildcard tests/cli/*.bats))
cli-memory: all
	PLOT_TEST_BACKEND=memory PLOT_BINDIR=$(abspath $(BINDIR)) PLOT_TESTBIN=$(abspath $(B))/tests \
	    bats --print-output-on-failure $(CLI_MEMORY)

# Small programs the tests run: tests/ref/tools/*.c for the oracle tests
# (GGUF dump, quant dump, tokenizer, template render, logits) and
# tests/tools/llm-generate.c, the engine's greedy output without plotd (the
# oracle of tests/cli/serve-smollm2.bats, found through PLOT_TESTBIN).
REF_TOOLS := $(B)/tests/gguf-dump $(B)/tests/quant-dump $(B)/tests/tok-tool \
	     $(B)/tests/tmpl-render $(B)/tests/llm-logits

$(REF_TOOLS): $(B)/tests/%: $(B)/tests/ref/tools/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/llm-generate: $(B)/tests/tools/llm-generate.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# tests/tools/gguf-random.c writes random-weight models of real shapes and
# tests/tools/llm-compare.c runs one on two devices (logits, greedy, batch
# invariance): tests/cli/gguf-random.bats on the CPU, tests/gpu/run on a GPU.
$(GPU_TOOLS): $(B)/tests/%: $(B)/tests/tools/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# tests/tools/proto-torture.c: the schema-walking protocol torture client
# of tests/cli/daemon-validate.bats.
$(B)/tests/proto-torture: $(B)/tests/tools/proto-torture.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

ref: $(REF_TOOLS)
	@if ls tests/ref/test_*.py >/dev/null 2>&1; then \
	    PLOT_BUILD=$(abspath $(B)) $(PYTHON) -m pytest -q tests/ref; \
	else echo "ref: no oracle tests yet"; fi

# check-peer is not in make check: it needs make deps-peer, which compiles
# llama.cpp for several minutes.
check-peer: check-peer-llm $(REF_TOOLS)
	PLOT_BUILD=$(abspath $(B)) $(PYTHON) -m pytest -q tests/ref/peer_tok.py
check-peer-llm: $(REF_TOOLS)
	PLOT_BUILD=$(abspath $(B)) $(PYTHON) -m pytest -q -s tests/ref/peer_greedy.py

# ---- fuzzing (clang libFuzzer + ASan/UBSan) -----------------------------------
#>> Fuzzing
#> fuzz-smoke      every libFuzzer harness (tests/fuzz) for FUZZ_SECS seconds (default 60)

FUZZ_B   := build/fuzz
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz-*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_B)/%)

$(FUZZ_B)/%: tests/fuzz/%.c $(LIB_SRC)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -pthread -g -O1 -Iinclude -Ilib $(PKG_CFLAGS) \
	    -fsanitize=fuzzer,address,undefined -mavx2 -mfma -mf16c \
	    -o $@ $< $(LIB_SRC) $(LDLIBS)

fuzz-smoke: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do n=$$(basename $$f); \
	    mkdir -p $(FUZZ_B)/corpus-$$n; \
	    echo "== $$n ($(FUZZ_SECS)s)"; \
	    $$f -max_total_time=$(FUZZ_SECS) -max_len=65536 -artifact_prefix=$(FUZZ_B)/ $(FUZZ_B)/corpus-$$n \
	        tests/fuzz/corpus/$${n#fuzz-} || exit 1; \
	done

# ---- benchmarks: each ends with one "<name>: key=value ..." line -----------------
#>> Benchmarks (figures and the ratio to a peer or floor measured in the same run)
#> bench-pool      lib/pool against a bare mutex+condvar floor
#> bench-proto     the protocol codec against bare msgpack-c
#> bench-roundtrip submit+result over the socket against a raw msgpack echo; memory,
#>                 sqlite and postgres (1 and 3 daemons, claim p50/p99) in one run
#> bench-control   stats latency under 256 synthetic streams at full speed
#> bench-quant     the quantized dot/GEMM kernels (scalar reference vs SIMD)
#> bench-threads   the engine's compute thread pool: dispatch latency
#> bench-sampler   one sample over a 262144-token vocabulary
#> bench-tok       the tokenizer on the shipped models
#> bench-llm       the engine against llama.cpp (llama_decode, interleaved): decode, prefill,
#>                 batch-16, RSS; BENCH_LLM_ARGS="--llama-bench PATH" adds llama-bench
#> bench-pgq       the PostgreSQL shared queue: submit and claim latency, tasks/s with 1 and 3
#>                 claimers, against a bare round trip (a private cluster; BENCH_PGQ_TASKS)
#> bench-serve     plotd serving SmolLM2 to 1, 4, 16, 64 streams (BENCH_SERVE_TOKENS=32: quick;
#>                 BENCH_SERVE_DEVICE, BENCH_SERVE_MODEL: tests/gpu/bench-serve.sh's device mode)
#> bench-http      the HTTP front against the socket: 16 clients' null-task round trips,
#>                 16 SmolLM2 streams (BENCH_HTTP_TASKS, BENCH_HTTP_TOKENS)

.PHONY: bench-pool bench-proto bench-roundtrip bench-control bench-quant bench-threads \
	bench-sampler bench-tok bench-llm bench-serve bench-pgq bench-http

$(B)/bench/%: $(B)/tests/bench/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench-pool: $(B)/bench/bench-pool
	$(B)/bench/bench-pool
bench-proto: $(B)/bench/bench-proto
	$(B)/bench/bench-proto
bench-roundtrip: $(B)/bench/bench-roundtrip $(BINDIR)/plotd
	$(PG_RUN) $(B)/bench/bench-roundtrip $(abspath $(BINDIR))/plotd
bench-control: $(B)/bench/bench-control $(BINDIR)/plotd
	$(B)/bench/bench-control $(abspath $(BINDIR))/plotd
bench-quant: $(B)/bench/bench-quant
	$(B)/bench/bench-quant
bench-threads: $(B)/bench/bench-threads
	$(B)/bench/bench-threads $(BENCH_THREADS_ARGS)
bench-sampler: $(B)/bench/bench-sampler
	$(B)/bench/bench-sampler $(BENCH_SAMPLER_ARGS)
bench-tok: $(B)/tests/tok-tool
	@PLOT_BUILD=$(abspath $(B)) $(PYTHON) tests/bench/bench_tok.py
bench-llm: $(B)/bench/bench-llm
	$(PYTHON) tests/bench/bench_llm.py --bin $(B)/bench/bench-llm $(BENCH_LLM_ARGS)
bench-pgq: $(B)/bench/bench-pgq
	$(PG_RUN) $(B)/bench/bench-pgq
bench-serve: $(B)/bench/bench-serve $(BINDIR)/plotd
	$(B)/bench/bench-serve $(abspath $(BINDIR))/plotd
bench-http: $(B)/bench/bench-http $(BINDIR)/plotd
	$(B)/bench/bench-http $(abspath $(BINDIR))/plotd

# ---- the GPU machine (issues #12, #13; tests/gpu/README) ------------------------
#>> GPU (tests/gpu/README; the device runs tests/gpu/run)
#> gpu-carry       the Debian packages plotd and plot link, unpacked into .gpu-deps/ for a
#>                 machine without them: make CUDA=1 DEPS_ROOT=.gpu-deps builds there
#> gpu-tests       (CUDA=1) only the GPU programs, linked with lib/llm + lib/cuda and no
#>                 other library: test-backend, bench-gpu, gguf-random, llm-compare
#> check-khost     (CUDA=host) lib/cuda's kernels run on the CPU by tests/gpu/khost:
#>                 khost's self-test, test-backend --small, llm-compare on three
#>                 small random models (CI runs it)
#> bench-gpu       (CUDA=1) the engine on the GPU: Llama 1B shape in F16 and Q4_K against
#>                 the copy-bandwidth roofline measured in the same run (BENCH_GPU_ARGS)

.PHONY: gpu-carry gpu-tests bench-gpu check-khost
GPU_CORE_SRC := $(sort $(wildcard lib/llm/cpu/*.c lib/llm/engine/*.c lib/llm/gguf/*.c \
		lib/llm/quant/*.c lib/cuda/*.c)) lib/util.c
GPU_CORE_OBJ := $(GPU_CORE_SRC:%.c=$(B)/%.o) $(if $(filter 1,$(CUDA)),$(CU_SRC:%.cu=$(B)/cuda/%.o)) \
		$(KHOST_OBJ)
GPU_BIN      := $(B)/gpu/gguf-random $(B)/gpu/llm-compare $(B)/gpu/test-backend $(B)/gpu/bench-gpu
GPU_LDLIBS   := -lm -pthread $(CUDA_LDLIBS)

gpu-carry:
	@sh tests/gpu/carry.sh

$(B)/libplot-llm.a: $(GPU_CORE_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/gpu/gguf-random $(B)/gpu/llm-compare: $(B)/gpu/%: $(B)/tests/tools/%.o $(B)/libplot-llm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(GPU_LDLIBS)
$(B)/gpu/test-backend: $(B)/tests/gpu/test-backend.o $(B)/tests/gpu/test-backend-ops.o \
		       $(B)/libplot-llm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(GPU_LDLIBS)
$(B)/gpu/bench-gpu: $(B)/tests/bench/bench-gpu.o $(B)/libplot-llm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(GPU_LDLIBS)

# test-backend against tests/gpu/cuda-mock.c, a CPU stand-in for the kernels,
# so make check tests the tester (tests/cli/gpu-test-backend.bats); a CUDA
# build links the real kernels instead.
$(B)/tests/test-backend-mock: $(B)/tests/gpu/test-backend.o $(B)/tests/gpu/test-backend-ops.o \
			      $(B)/tests/gpu/cuda-mock.o $(B)/libplot-llm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(GPU_LDLIBS)

ifeq ($(CUDA),host)
$(B)/tests/test-khost: $(B)/khost/tests/gpu/khost/test-khost.o $(B)/khost/khost.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka -lm -pthread -lstdc++
check-khost: $(B)/tests/test-khost $(GPU_BIN)
	sh tests/gpu/khost/check.sh $(abspath $(B))
else
check-khost:
	@echo "make $@: needs the host-kernel build: make CUDA=host $@" >&2; exit 2
endif

ifneq ($(CUDA),0)
gpu-tests: $(GPU_BIN)
bench-gpu: $(B)/gpu/bench-gpu $(B)/gpu/gguf-random
	PYTHON=$(PYTHON) sh tests/gpu/bench-gpu.sh $(abspath $(B))/gpu $(BENCH_GPU_ARGS)
else
gpu-tests bench-gpu:
	@echo "make $@: needs a CUDA build: make CUDA=1 $@" >&2; exit 2
endif

# ---- generated documentation --------------------------------------------------
#>> Documentation
#> man-cfg         regenerate man/plot.yaml.5 from the settings table (a test checks it)

$(B)/tools/gen-cfg-man: $(B)/tests/tools/gen-cfg-man.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

man-cfg: $(B)/tools/gen-cfg-man
	$(B)/tools/gen-cfg-man > man/plot.yaml.5

# ---- setup and the README's first command -------------------------------------
#>> Setup
#> deps            install missing Debian/PyPI packages (idempotent, fast when present)
#> deps-peer       also llama-cpp-python built from source, for check-peer
#> models          fetch the default models into $XDG_DATA_HOME/plot/models
#>                 (default ~/.local/share/plot/models), sha256-checked, idempotent
#> run             deps, build, models, start plotd if none answers, stream one answer
#> help            this list

deps:
	@sh .ci/deps
deps-peer:
	@PEER=1 sh .ci/deps
models:
	@sh .ci/models

help:
	@sed -n 's/^#>> \(.*\)/\n\1:/p; s/^#> /  /p' $(firstword $(MAKEFILE_LIST))

# Packages, build, default model, then a plotd (started only if none answers,
# with the built-in config, which serves SmolLM2 once it is installed), then
# one greedy answer streamed by `plot run`. Each step is idempotent, so a
# second run only checks and streams. The daemon keeps running afterwards.
RUN_PROMPT ?= Here are three tips for writing clear code:
run:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory -j$$(nproc 2>/dev/null || echo 2) all
	@$(MAKE) --no-print-directory models
	@$(BINDIR)/plot daemon start
	@echo "make run: $(BINDIR)/plot run --temperature 0 -n 120 \"$(RUN_PROMPT)\"" >&2
	@$(BINDIR)/plot run --temperature 0 -n 120 "$(RUN_PROMPT)"; rc=$$?; echo; \
	    echo "make run: plotd keeps running; stop it with $(BINDIR)/plot daemon stop" >&2; \
	    exit $$rc

-include $(shell find $(B) -name '*.d' 2>/dev/null)


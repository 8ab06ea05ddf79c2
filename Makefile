# plot — build, test and benchmark entry points.
#
#   make                  bin/plot, bin/plotd and build/<cc>/libplot.a
#   make CC=clang         same with clang (objects kept apart in build/clang)
#   make SAN=address,undefined   sanitized build in build/<cc>-san-address-undefined
#   make SAN=thread       sanitized build in build/<cc>-san-thread
#   make CUDA=1           also compile lib/cuda/*.cu with nvcc (objects in <build>/cuda)
#   make deps             install missing Debian/PyPI packages (idempotent, fast when present)
#   make check            every test: unit (cmocka), cli (bats), ref (NumPy oracle)
#   make check-pool       the pool's unit tests only (what CI runs under SAN=thread)
#   make bench-<name>     benchmarks; each ends with one "<name>: key=value ..." line
#   make fuzz-smoke       every libFuzzer harness for FUZZ_SECS (default 60) seconds
#   make models           fetch the default models into $XDG_DATA_HOME/plot/models
#                         (default ~/.local/share/plot/models), sha256-checked, idempotent
#
# Sanitized builds put their binaries in <build>/bin; the default build also
# copies them to bin/ so the README's commands work without a path.

CC       ?= cc
SAN      ?=
CUDA     ?= 0
NVCC     ?= nvcc
PYTHON   ?= python3
FUZZ_SECS ?= 60

comma := ,
CCNAME := $(notdir $(firstword $(CC)))
ifeq ($(SAN),)
B       ?= build/$(CCNAME)
BINDIR  := bin
else
B       ?= build/$(CCNAME)-san-$(subst $(comma),-,$(SAN))
BINDIR  := $(B)/bin
endif

PKGS     := yaml-0.1 msgpack libpcre2-8
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lyaml -lmsgpackc -lpcre2-8)

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
LDLIBS   += -L/usr/local/cuda/lib64 -lcudart -lcublas -lstdc++
endif
CMD_SRC  := $(sort $(wildcard cmd/*.c))
DMN_SRC  := $(sort $(wildcard daemon/*.c))
LIBA     := $(B)/libplot.a

UNIT_SRC := $(sort $(wildcard tests/unit/test-*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
POOL_UNIT_BIN := $(filter $(B)/tests/test-pool%,$(UNIT_BIN))
UNIT_HELP_SRC := $(sort $(wildcard tests/unit/helper-*.c))
UNIT_HELP_OBJ := $(UNIT_HELP_SRC:%.c=$(B)/%.o)

.PHONY: all deps check unit cli ref check-pool bench-pool bench-quant fuzz-smoke clean models run
.DEFAULT_GOAL := all

all: $(BINDIR)/plot $(BINDIR)/plotd $(LIBA)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(if $(findstring -avx512.c,$<),$(AVX512_FLAGS),$(if $(findstring -avx2.c,$<),$(AVX2_FLAGS))) -c $< -o $@

$(B)/cuda/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -Iinclude -Ilib -std=c++17 -arch=sm_90 -c $< -o $@

$(LIBA): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BINDIR)/plot: $(CMD_SRC:%.c=$(B)/%.o) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lreadline

$(BINDIR)/plotd: $(DMN_SRC:%.c=$(B)/%.o) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# ---- tests ---------------------------------------------------------------

$(B)/tests/test-%: $(B)/tests/unit/test-%.o $(UNIT_HELP_OBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do \
	    echo "== $$t"; CMOCKA_MESSAGE_OUTPUT=stdout $$t || fail=1; \
	done; exit $$fail

check-pool: $(POOL_UNIT_BIN)
	@fail=0; for t in $(POOL_UNIT_BIN); do \
	    echo "== $$t"; CMOCKA_MESSAGE_OUTPUT=stdout $$t || fail=1; \
	done; exit $$fail

cli: all
	@if ls tests/cli/*.bats >/dev/null 2>&1; then \
	    PLOT_BINDIR=$(abspath $(BINDIR)) PLOT_TESTBIN=$(abspath $(B))/tests \
	    bats --print-output-on-failure tests/cli; \
	else echo "cli: no bats tests yet"; fi

ref:
	@if ls tests/ref/test_*.py >/dev/null 2>&1; then \
	    PLOT_BUILD=$(abspath $(B)) $(PYTHON) -m pytest -q tests/ref; \
	else echo "ref: no oracle tests yet"; fi

check: unit cli ref

# ---- lib/llm gguf + quant (branch gguf): oracle helper tools, models -------
# tests/ref/tools/*.c are small programs the pytest oracle tests run; `ref`
# builds them first. `make models` fetches the default models (see .ci/models).
REF_TOOLS := $(B)/tests/gguf-dump $(B)/tests/quant-dump

$(REF_TOOLS): $(B)/tests/%: $(B)/tests/ref/tools/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

ref: $(REF_TOOLS)

bench-quant: $(B)/bench/bench-quant
	$(B)/bench/bench-quant

models:
	@sh .ci/models

# ---- lib/llm tokenizer + chat templates (branch tok) -----------------------
# tok-tool / tmpl-render drive lib/llm/tok*.c and template.c from the pytest
# tests; `make check-peer` compares with llama-cpp-python (not in make check:
# it needs `make deps-peer`, which compiles llama.cpp for several minutes).
TOK_TOOLS := $(B)/tests/tok-tool $(B)/tests/tmpl-render

$(B)/tests/tok-tool $(B)/tests/tmpl-render: $(B)/tests/%: $(B)/tests/ref/tools/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

ref: $(TOK_TOOLS)

.PHONY: check-peer deps-peer
deps-peer:
	@PEER=1 sh .ci/deps

check-peer: $(TOK_TOOLS)
	PLOT_BUILD=$(abspath $(B)) $(PYTHON) -m pytest -q tests/ref/peer_tok.py

.PHONY: bench-tok
bench-tok: $(B)/tests/tok-tool
	@PLOT_BUILD=$(abspath $(B)) $(PYTHON) tests/bench/bench_tok.py

# ---- benchmarks ----------------------------------------------------------

$(B)/bench/%: $(B)/tests/bench/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench-pool: $(B)/bench/bench-pool
	$(B)/bench/bench-pool

# ---- llm engine (area: model) ---------------------------------------------
# tests/ref/tools/llm-logits.c drives the engine for the oracle tests.
LLM_TOOLS := $(B)/tests/llm-logits

$(LLM_TOOLS): $(B)/tests/%: $(B)/tests/ref/tools/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

ref: $(LLM_TOOLS)

# greedy tokens against llama-cpp-python; joins the tokenizer's check-peer
.PHONY: check-peer check-peer-llm
check-peer: check-peer-llm
check-peer-llm: $(LLM_TOOLS)
	PLOT_BUILD=$(abspath $(B)) $(PYTHON) -m pytest -q -s tests/ref/peer_greedy.py

.PHONY: bench-llm
bench-llm: $(B)/bench/bench-llm
	$(PYTHON) tests/bench/bench_llm.py --bin $(B)/bench/bench-llm $(BENCH_LLM_ARGS)

# lib/llm compute thread pool: dispatch latency, spin vs sleep (sampler helper)
.PHONY: bench-threads
bench-threads: $(B)/bench/bench-threads
	$(B)/bench/bench-threads $(BENCH_THREADS_ARGS)

# lib/llm sampler: cost of one sample on a 262144-token vocabulary (sampler helper)
.PHONY: bench-sampler
bench-sampler: $(B)/bench/bench-sampler
	$(B)/bench/bench-sampler $(BENCH_SAMPLER_ARGS)

# ---- plotd benchmarks (daemon/): each starts its own plotd from BINDIR ----
.PHONY: bench-roundtrip bench-control
bench-roundtrip: $(B)/bench/bench-roundtrip $(BINDIR)/plotd
	$(B)/bench/bench-roundtrip $(abspath $(BINDIR))/plotd
bench-control: $(B)/bench/bench-control $(BINDIR)/plotd
	$(B)/bench/bench-control $(abspath $(BINDIR))/plotd

# ---- fuzzing (clang libFuzzer + ASan/UBSan) ------------------------------

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

# ---- cfg (lib/cfg): man/plot.yaml.5 is generated from the settings table ----

$(B)/tools/gen-cfg-man: $(B)/tests/tools/gen-cfg-man.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: man-cfg
man-cfg: $(B)/tools/gen-cfg-man
	$(B)/tools/gen-cfg-man > man/plot.yaml.5

# proto codec cost against bare msgpack-c (lib/proto)
.PHONY: bench-proto
bench-proto: $(B)/bench/bench-proto
	$(B)/bench/bench-proto

# ---- serving tests and benchmark on SmolLM2 (area: serve-tests) -----------
# llm-generate is the engine's own greedy output without plotd, the oracle of
# tests/cli/serve-smollm2.bats (which finds it through PLOT_TESTBIN).
$(B)/tests/llm-generate: $(B)/tests/tools/llm-generate.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

cli: $(B)/tests/llm-generate $(B)/tests/tok-tool

# N = 1, 4, 16, 64 streaming clients on SmolLM2 (BENCH_SERVE_TOKENS=32 for a
# quick run; see tests/bench/bench-serve.c)
.PHONY: bench-serve
bench-serve: $(B)/bench/bench-serve $(BINDIR)/plotd
	$(B)/bench/bench-serve $(abspath $(BINDIR))/plotd

# ---- setup ---------------------------------------------------------------

deps:
	@sh .ci/deps

clean:
	rm -rf build bin

-include $(shell find $(B) -name '*.d' 2>/dev/null)

# ---- make run (area: serve-stats): the README's first command -------------
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

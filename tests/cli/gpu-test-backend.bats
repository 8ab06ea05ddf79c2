#!/usr/bin/env bats
# test-backend (tests/gpu/test-backend.c), the op-by-op check of the CUDA
# kernels, run here against tests/gpu/cuda-mock.c, a CPU stand-in for them:
# this tests the tester. The kernels themselves only run on the GPU machine
# (tests/gpu/run). --small leaves out the 512-token cases to stay fast
# here. In a make CUDA=1 build the real test-backend runs instead, on
# lib/cuda's emulated device (the kernels' code on the host); the planted
# faults below exist in the stand-in only. An op that leaves an output element unwritten, or whose
# result depends on the batch, must fail; no device is exit 77, never a pass.

load helpers

: "${PLOT_TESTBIN:=$BATS_TEST_DIRNAME/../../build/cc/tests}"
TB="$PLOT_TESTBIN/test-backend-mock"
EMU=()
if [ ! -x "$TB" ] && [ -x "$PLOT_TESTBIN/../gpu/test-backend" ]; then
	TB="$PLOT_TESTBIN/../gpu/test-backend"
	EMU=(--emulate)
fi

setup() {
	plot_setup
	[ -x "$TB" ] || { echo "# $TB missing: run the tests through make cli" >&2; return 1; }
}

mock_only() {
	[ ${#EMU[@]} = 0 ] || skip "planted faults exist in the CPU stand-in (the CPU build) only"
}

teardown() {
	plot_teardown
}

@test "every op passes against the CPU stand-in, with the seed printed and a table per op" {
	run -0 "$TB" "${EMU[@]}" --quiet --small
	assert_line --regexp '^test-backend: seed [0-9]+ \(--seed [0-9]+ repeats this run\)$'
	for op in f32_to_f16 f16_to_f32 scale_round embed dequant_f16 dequant_f32 matvec gemm \
		rmsnorm qk_norm rope_table rope glu add add_bias gather_rows kv_write attn \
		add_rmsnorm rope_kv matvec_multi; do
		assert_line --regexp "^$op +[0-9]+ +0 "
	done
	assert_line --regexp '^test-backend: ok cases=[0-9]+ failed=0 seed=[0-9]+$'
	# the device line says which stand-in ran
	assert_line --regexp '^device: (CPU mock|emulated) '
}

@test "a seed repeats a run exactly; two runs without one draw different inputs" {
	run -0 "$TB" "${EMU[@]}" --small --seed 12345 --op matvec
	local first=$output
	run -0 "$TB" "${EMU[@]}" --small --seed 12345 --op matvec
	[ "$output" = "$first" ]
	run -0 "$TB" "${EMU[@]}" --small --seed 12346 --op matvec
	[ "$output" != "$first" ]
}

@test "an element an op leaves unwritten fails that op's cases (the poison shows)" {
	mock_only
	for op in f16_to_f32 embed matvec gemm rmsnorm rope glu kv_write attn add_rmsnorm rope_kv matvec_multi; do
		PLOT_MOCK_BUG=$op run -1 "$TB" --quiet --small --op "$op"
		assert_line --regexp "^FAIL $op "
		assert_line --regexp '^test-backend: FAIL cases=[0-9]+ failed=[1-9][0-9]* '
	done
}

@test "a fused q/k/v product that drops its bias fails only the biased cases" {
	mock_only
	PLOT_MOCK_BUG=matvec_multi_bias run -1 "$TB" --quiet --small --op matvec_multi
	assert_line --regexp '^FAIL matvec_multi .* bias '
	refute_line --regexp '^FAIL matvec_multi .*[0-9] +err='
}

@test "a result that depends on the batch fails the invariance checks" {
	mock_only
	PLOT_MOCK_BUG=matvec-batch run -1 "$TB" --quiet --small --op matvec
	assert_line --regexp '^FAIL matvec .* NOT-BATCH-INVARIANT$'
	# attention split over the sequence in as many segments as the batch's
	# longest context asks for
	PLOT_MOCK_BUG=attn-split run -1 "$TB" --quiet --small --op attn
	assert_line --regexp '^FAIL attn .* split=DIFFERS$'
}

@test "no CUDA device is exit 77 saying so, never a pass" {
	mock_only
	PLOT_MOCK_DEVICES=0 run -77 "$TB"
	assert_line --partial "no CUDA device"
	refute_line --partial "test-backend: ok"
}

@test "an unknown op is a usage error" {
	run -2 --separate-stderr "$TB" --op matmul
	[[ "$stderr" == *"'matmul': no such op"* ]]
}

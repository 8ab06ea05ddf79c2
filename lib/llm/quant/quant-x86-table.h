/*
 * quant-x86-table.h — the kernel table of quant-x86-impl.h's functions,
 * named QX_TABLE / QX_NAME by the including file. Included once per ISA file.
 */
const struct quant_kernels QX_TABLE = {
	.name = QX_NAME,
	.dot = {
		[Q_F32] = dot_f32, [Q_F16] = dot_f16, [Q_BF16] = dot_bf16,
		[Q_Q4_0] = dot_q4_0, [Q_Q4_1] = dot_q4_1, [Q_Q5_0] = dot_q5_0,
		[Q_Q5_1] = dot_q5_1, [Q_Q8_0] = dot_q8_0,
		[Q_Q4_K] = dot_q4_K, [Q_Q5_K] = dot_q5_K, [Q_Q6_K] = dot_q6_K,
	},
	.dot_n = {
		[Q_Q4_0] = dot_n_q4_0, [Q_Q4_1] = dot_n_q4_1, [Q_Q5_0] = dot_n_q5_0,
		[Q_Q5_1] = dot_n_q5_1, [Q_Q8_0] = dot_n_q8_0,
		[Q_Q4_K] = dot_n_q4_K, [Q_Q5_K] = dot_n_q5_K, [Q_Q6_K] = dot_n_q6_K,
	},
#if QX_VNNI
	.dot_mn = {
		[Q_Q4_0] = dot_mn_q4_0, [Q_Q4_1] = dot_mn_q4_1, [Q_Q5_0] = dot_mn_q5_0,
		[Q_Q5_1] = dot_mn_q5_1, [Q_Q8_0] = dot_mn_q8_0,
	},
#endif
	.quantize = {
		[Q_Q8_0] = quantize_q8_0, [Q_Q8_1] = quantize_q8_1, [Q_Q8_K] = quantize_q8_K,
		[Q_F16] = quantize_f16,
	},
};

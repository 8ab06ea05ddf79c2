/*
 * bench-proto.c — cost of the protocol codec per message, against its peer:
 * bare msgpack-c packing the same map and unpacking it without our bounds
 * scan or schema walk. Prints figures and ratios; asserts nothing.
 *   proto: encode_ns=X decode_ns=X raw_encode_ns=X raw_decode_ns=X enc_ratio=X dec_ratio=X
 */
#include <msgpack.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "plot/proto.h"

#define N 200000

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void submit_msg(struct proto_msg *m, const char *prompt)
{
	proto_msg_init(m, PROTO_T_SUBMIT, 12345);
	m->u.submit.model = "echo";
	m->u.submit.prompt = prompt;
	m->u.submit.has = PROTO_HAS_MAX_TOKENS | PROTO_HAS_TEMPERATURE | PROTO_HAS_COST;
	m->u.submit.max_tokens = 64;
	m->u.submit.temperature = 0.7;
	m->u.submit.cost = 2;
}

static void pk_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

/* The same map, packed by hand: what a codec without tables would do. */
static void raw_pack(msgpack_sbuffer *sb, const char *prompt)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 8);
	pk_str(&pk, "model"); pk_str(&pk, "echo");
	pk_str(&pk, "prompt"); pk_str(&pk, prompt);
	pk_str(&pk, "prio"); msgpack_pack_int(&pk, 1);
	pk_str(&pk, "max_tokens"); msgpack_pack_uint32(&pk, 64);
	pk_str(&pk, "temp"); msgpack_pack_double(&pk, 0.7);
	pk_str(&pk, "cost"); msgpack_pack_uint64(&pk, 2);
	pk_str(&pk, "t"); pk_str(&pk, "submit");
	pk_str(&pk, "id"); msgpack_pack_uint64(&pk, 12345);
}

int main(void)
{
	char prompt[201], err[256];
	memset(prompt, 'w', 200);
	prompt[200] = 0;
	struct proto_msg m, out;
	struct proto_buf b;
	proto_buf_init(&b);
	submit_msg(&m, prompt);

	double t0 = now_s();
	for (int i = 0; i < N; i++) {
		b.len = 0;
		if (proto_encode(&m, NULL, &b, err, sizeof err))
			return 1;
	}
	double enc = (now_s() - t0) / N;
	t0 = now_s();
	for (int i = 0; i < N; i++) {
		if (proto_decode(b.data + 4, b.len - 4, NULL, &out, err, sizeof err))
			return 1;
		proto_msg_clear(&out);
	}
	double dec = (now_s() - t0) / N;

	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	t0 = now_s();
	for (int i = 0; i < N; i++) {
		msgpack_sbuffer_clear(&sb);
		raw_pack(&sb, prompt);
	}
	double renc = (now_s() - t0) / N;
	t0 = now_s();
	for (int i = 0; i < N; i++) {
		msgpack_unpacked up;
		size_t off = 0;
		msgpack_unpacked_init(&up);
		if (msgpack_unpack_next(&up, sb.data, sb.size, &off) != MSGPACK_UNPACK_SUCCESS)
			return 1;
		msgpack_unpacked_destroy(&up);
	}
	double rdec = (now_s() - t0) / N;

	printf("submit frame: %zu bytes (raw %zu)\n", b.len - 4, sb.size);
	printf("proto: encode_ns=%.0f decode_ns=%.0f raw_encode_ns=%.0f raw_decode_ns=%.0f "
	       "enc_ratio=%.2f dec_ratio=%.2f\n", enc * 1e9, dec * 1e9, renc * 1e9, rdec * 1e9,
	       enc / renc, dec / rdec);
	msgpack_sbuffer_destroy(&sb);
	proto_buf_free(&b);
	return 0;
}

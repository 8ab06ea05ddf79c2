/*
 * fuzz-proto.c — libFuzzer harness for the wire protocol. The input is used
 * twice: as one frame body for proto_decode, and as a byte stream for the
 * incremental reader (fed in pieces whose sizes come from the input). Every
 * message that decodes must encode again, and that encoding must decode to
 * a message that encodes to the same bytes (the codec is lossless on its
 * own output). Small limits make the bounds reachable.
 *
 * The validation layer: a request that decodes must satisfy what the
 * daemon relies on without checking again (check_valid): required fields
 * present (the limits_set crash was a kv item without k), ranges held,
 * deadline and cost positive. Any breach aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plot/proto.h"

static const struct proto_limits small = { .max_frame = 4096, .max_str = 512,
					   .max_array = 16, .max_map = 24, .max_depth = 5 };

/* Re-encode m and check the round trip is stable. */
static void check_stable(const struct proto_msg *m)
{
	struct proto_buf a, b;
	struct proto_msg back;
	char err[256];
	struct proto_limits big = { .max_frame = 1u << 24 };

	proto_buf_init(&a);
	proto_buf_init(&b);
	if (proto_encode(m, &big, &a, err, sizeof err) != 0)
		abort();
	if (proto_decode(a.data + 4, a.len - 4, &big, &back, err, sizeof err) != 0)
		abort();
	if (proto_encode(&back, &big, &b, err, sizeof err) != 0)
		abort();
	if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort();
	proto_msg_clear(&back);
	proto_buf_free(&a);
	proto_buf_free(&b);
}

/* What a decoded request guarantees to dispatch. */
static void check_valid(const struct proto_msg *m)
{
	const struct proto_submit *s = &m->u.submit;
	switch (m->type) {
	case PROTO_T_LIMITS_SET:
		for (uint32_t i = 0; i < m->u.limits_set.n_kv; i++)
			if (!m->u.limits_set.kv[i].key || !m->u.limits_set.kv[i].value)
				abort();
		if (!m->u.limits_set.kv)
			abort();
		break;
	case PROTO_T_SUBMIT:
		for (uint32_t i = 0; i < s->n_messages; i++)
			if (!s->messages[i].role || !s->messages[i].content)
				abort();
		for (uint32_t i = 0; i < s->n_stop; i++)
			if (!s->stop[i])
				abort();
		if (s->priority < 0 || s->priority > 3)
			abort();
		if ((s->has & PROTO_HAS_DEADLINE) && !(s->deadline_secs > 0))
			abort();
		if ((s->has & PROTO_HAS_COST) && s->cost == 0)
			abort();
		if ((s->has & PROTO_HAS_TOP_P) && !(s->top_p >= 0 && s->top_p <= 1))
			abort();
		break;
	case PROTO_T_DRAIN: case PROTO_T_SHUTDOWN:
		if (!(m->u.stop.timeout_secs >= 0))
			abort();
		break;
	default:
		break;
	}
}

static void decode_one(const uint8_t *data, size_t size)
{
	struct proto_msg m;
	char err[256];
	if (proto_decode(data, size, &small, &m, err, sizeof err) == 0) {
		check_valid(&m);
		check_stable(&m);
	}
	proto_msg_clear(&m);
}

static void read_stream(const uint8_t *data, size_t size)
{
	struct proto_reader r;
	struct proto_msg m;
	char err[256];
	size_t pos = 0, step = size ? (size_t)data[0] % 7 + 1 : 1;

	proto_reader_init(&r, &small);
	while (pos < size) {
		size_t n = size - pos < step ? size - pos : step;
		proto_reader_feed(&r, data + pos, n);
		pos += n;
		int rc;
		while ((rc = proto_reader_next(&r, &m, err, sizeof err)) == 1) {
			check_valid(&m);
			check_stable(&m);
			proto_msg_clear(&m);
		}
		if (rc == -PROTO_E_MALFORMED || rc == -PROTO_E_TOO_LARGE)
			break;
	}
	proto_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	decode_one(data, size);
	read_stream(data, size);
	return 0;
}

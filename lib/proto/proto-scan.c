/*
 * proto-scan.c — structural check of one msgpack frame before decoding.
 *
 * msgpack-c's unpacker allocates a container's elements up front from the
 * count in its header, so a 10-byte frame claiming a 2^32-element array
 * would make it ask for 64 GiB. This walker runs first and never allocates:
 * it reads every header, and checks each str/bin length and each
 * array/map count against the configured bounds and against the bytes
 * actually left in the frame (an element takes at least one byte). Nesting
 * is bounded by max_depth. ext types and the reserved byte 0xc1 are refused
 * (the protocol never uses them). The frame must be exactly one value.
 *
 * After a successful scan, msgpack_unpack allocates at most a small
 * multiple of the frame size.
 */
#include <stdint.h>
#include <stdio.h>

#include "proto/proto-impl.h"

/* One item's header: bytes of header, bytes of payload, and for containers
 * the element count (map: pairs). */
struct item {
	size_t hdr;
	uint64_t payload;
	uint64_t count;
	int kind; /* 0 scalar, 's' str/bin, 'a' array, 'm' map, -1 refused */
};

static uint64_t be(const unsigned char *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Width of the length/count field that follows a type byte, or 0. */
static size_t len_width(unsigned b)
{
	switch (b) {
	case 0xc4: case 0xd9: return 1;
	case 0xc5: case 0xda: case 0xdc: case 0xde: return 2;
	case 0xc6: case 0xdb: case 0xdd: case 0xdf: return 4;
	default: return 0;
	}
}

static size_t fixed_payload(unsigned b)
{
	switch (b) {
	case 0xcc: case 0xd0: return 1;
	case 0xcd: case 0xd1: return 2;
	case 0xca: case 0xce: case 0xd2: return 4;
	case 0xcb: case 0xcf: case 0xd3: return 8;
	default: return 0;
	}
}

/* Classify the type byte b; sets everything but the length-field value. */
static void classify(unsigned b, struct item *it)
{
	it->hdr = 1;
	it->payload = 0;
	it->count = 0;
	it->kind = 0;
	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
		return;
	if ((b & 0xf0) == 0x80) {
		it->kind = 'm';
		it->count = b & 0x0f;
	} else if ((b & 0xf0) == 0x90) {
		it->kind = 'a';
		it->count = b & 0x0f;
	} else if ((b & 0xe0) == 0xa0) {
		it->kind = 's';
		it->payload = b & 0x1f;
	} else if (b == 0xc4 || b == 0xc5 || b == 0xc6 || (b >= 0xd9 && b <= 0xdb)) {
		it->kind = 's';
	} else if (b == 0xdc || b == 0xdd) {
		it->kind = 'a';
	} else if (b == 0xde || b == 0xdf) {
		it->kind = 'm';
	} else if (fixed_payload(b)) {
		it->payload = fixed_payload(b);
	} else {
		it->kind = -1; /* 0xc1, ext 0xc7-0xc9, fixext 0xd4-0xd8 */
	}
}

/* Read the item at pos; returns 0 or an error naming the offset. */
static int read_item(const unsigned char *p, size_t len, size_t pos,
		     const struct proto_limits *lim, struct item *it,
		     char *err, size_t errlen)
{
	unsigned b = p[pos];
	classify(b, it);
	if (it->kind < 0) {
		snprintf(err, errlen, "offset %zu: type byte 0x%02x is not used by the protocol", pos, b);
		return -PROTO_E_MALFORMED;
	}
	size_t w = len_width(b);
	if (w) {
		if (len - pos - 1 < w) {
			snprintf(err, errlen, "offset %zu: truncated header", pos);
			return -PROTO_E_MALFORMED;
		}
		uint64_t v = be(p + pos + 1, w);
		it->hdr += w;
		if (it->kind == 's')
			it->payload = v;
		else
			it->count = v;
	}
	if (it->kind == 's' && it->payload > lim->max_str) {
		snprintf(err, errlen, "offset %zu: str/bin length %llu exceeds max_str %u", pos,
			 (unsigned long long)it->payload, (unsigned)lim->max_str);
		return -PROTO_E_TOO_LARGE;
	}
	if (it->kind == 'a' && it->count > lim->max_array) {
		snprintf(err, errlen, "offset %zu: array of %llu exceeds max_array %u", pos,
			 (unsigned long long)it->count, (unsigned)lim->max_array);
		return -PROTO_E_TOO_LARGE;
	}
	if (it->kind == 'm' && it->count > lim->max_map) {
		snprintf(err, errlen, "offset %zu: map of %llu exceeds max_map %u", pos,
			 (unsigned long long)it->count, (unsigned)lim->max_map);
		return -PROTO_E_TOO_LARGE;
	}
	uint64_t left = len - pos;
	uint64_t need = it->hdr + it->payload + (it->kind == 'm' ? 2 * it->count : it->count);
	if (need > left) {
		snprintf(err, errlen, "offset %zu: value needs %llu bytes, frame has %llu left", pos,
			 (unsigned long long)need, (unsigned long long)left);
		return -PROTO_E_MALFORMED;
	}
	return 0;
}

int proto_scan(const unsigned char *p, size_t len, const struct proto_limits *lim,
	       char *err, size_t errlen)
{
	uint64_t left[PROTO_DEPTH_HARD + 2];
	unsigned depth = 0;
	size_t pos = 0;

	left[0] = 1;
	for (;;) {
		while (depth > 0 && left[depth] == 0)
			depth--;
		if (left[depth] == 0)
			break;
		left[depth]--;
		if (pos >= len) {
			snprintf(err, errlen, "offset %zu: frame ends inside a value", pos);
			return -PROTO_E_MALFORMED;
		}
		struct item it;
		int rc = read_item(p, len, pos, lim, &it, err, errlen);
		if (rc)
			return rc;
		pos += it.hdr + (size_t)it.payload;
		if (it.kind != 'a' && it.kind != 'm')
			continue;
		if (depth + 1 > lim->max_depth || depth + 1 > PROTO_DEPTH_HARD) {
			snprintf(err, errlen, "offset %zu: nesting deeper than max_depth %u",
				 pos - it.hdr, (unsigned)lim->max_depth);
			return -PROTO_E_TOO_LARGE;
		}
		left[++depth] = it.kind == 'm' ? 2 * it.count : it.count;
	}
	if (pos != len) {
		snprintf(err, errlen, "offset %zu: %zu trailing bytes after the message",
			 pos, len - pos);
		return -PROTO_E_MALFORMED;
	}
	return 0;
}

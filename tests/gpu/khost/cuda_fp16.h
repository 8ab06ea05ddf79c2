/*
 * cuda_fp16.h (khost) — the binary16 conversions lib/cuda's kernels use,
 * in software, rounding to nearest even as the device's __float2half_rn
 * (NaN becomes the device's canonical 0x7fff). See cuda_runtime.h here.
 */
#ifndef KHOST_CUDA_FP16_H
#define KHOST_CUDA_FP16_H

#include <stdint.h>
#include <string.h>

struct __half {
	uint16_t x;
};

static inline __half __ushort_as_half(uint16_t u)
{
	__half h = {u};
	return h;
}

static inline uint16_t __half_as_ushort(__half h)
{
	return h.x;
}

static inline float __half2float(__half h)
{
	uint32_t s = (uint32_t)(h.x & 0x8000) << 16, e = (h.x >> 10) & 0x1f, m = h.x & 0x3ff, u;
	float f;
	if (e == 0) { /* zero or subnormal: m * 2^-24, exact in float */
		f = (float)m * 5.9604644775390625e-8f;
		return s ? -f : f;
	}
	u = e == 31 ? s | 0x7f800000u | (m << 13) : s | ((e + 112) << 23) | (m << 13);
	memcpy(&f, &u, sizeof f);
	return f;
}

static inline __half __float2half_rn(float f)
{
	uint32_t x, ax, sign, h, rem;
	memcpy(&x, &f, sizeof x);
	sign = (x >> 16) & 0x8000;
	ax = x & 0x7fffffffu;
	if (ax > 0x7f800000u)
		return __ushort_as_half(0x7fff);
	if (ax >= 0x477ff000u) /* 65520 and up (infinity too) */
		return __ushort_as_half((uint16_t)(sign | 0x7c00));
	if (ax <= 0x33000000u) /* up to 2^-25: the tie goes to even, zero */
		return __ushort_as_half((uint16_t)sign);
	if (ax < 0x38800000u) { /* a half subnormal: units of 2^-24 */
		uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u, sh = 126 - e;
		uint32_t half = 1u << (sh - 1);
		h = m >> sh;
		rem = m & ((1u << sh) - 1);
		if (rem > half || (rem == half && (h & 1)))
			h++;
		return __ushort_as_half((uint16_t)(sign | h));
	}
	h = (ax - 0x38000000u) >> 13;
	rem = ax & 0x1fffu;
	if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
		h++; /* a carry into the exponent is right, up to infinity */
	return __ushort_as_half((uint16_t)(sign | h));
}

#endif

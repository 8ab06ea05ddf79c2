/*
 * helper-rng.c — see helper-rng.h. A fixed default seed, so a test that
 * never seeds still draws the same numbers on every run.
 */
#include "helper-rng.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

void test_rng_seed(uint64_t seed)
{
	rng_state = seed ? seed : 0x9E3779B97F4A7C15ull;
}

uint32_t test_rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

float test_gauss(void)
{
	float s = 0;
	for (int i = 0; i < 4; i++)
		s += (float)(test_rnd() & 0xFFFF) / 65536.0f;
	return (s - 2.0f) * 1.7f;
}

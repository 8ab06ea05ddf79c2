/*
 * helper-rng.h — the deterministic random numbers of the kernel tests
 * (xorshift64; every unit binary links helper-rng.c and owns its state).
 */
#ifndef PLOT_TESTS_HELPER_RNG_H
#define PLOT_TESTS_HELPER_RNG_H

#include <stdint.h>

void test_rng_seed(uint64_t seed);
uint32_t test_rnd(void);
/* roughly N(0, 1): a scaled sum of four uniforms */
float test_gauss(void);

#endif

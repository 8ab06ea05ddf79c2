/*
 * test-backend.h — what the cases of test-backend (test-backend-ops.c) share
 * with its driver (test-backend.c): the stream and cuBLAS handle, device
 * buffers that are poisoned when allocated and freed when a case reports,
 * random inputs from the printed seed, the error measure and the tally.
 */
#ifndef PLOT_TESTS_GPU_TEST_BACKEND_H
#define PLOT_TESTS_GPU_TEST_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#define TB_MAX_BUFS 32

/* One case: its device buffers; broken once a CUDA call failed (reported). */
struct tc {
	void *buf[TB_MAX_BUFS];
	int nbuf, broken;
};

extern void *tb_stream, *tb_blas;
extern int tb_small; /* --small: no 512-token cases, fewer head layouts (the CPU stand-in) */
extern char tb_err[1024]; /* the last CUDA error message */

float tb_urand(float a);              /* uniform in [-a, a) */
float *tb_frand(size_t n, float a);   /* malloc'd, n uniform in [-a, a) */
uint32_t tb_irand(uint32_t n);        /* 0 .. n-1 */

/* Device memory of bytes, every byte 0xFF (NaN as f32 and f16). NULL and
 * c->broken set on failure (reported once). */
void *tb_dnew(struct tc *c, size_t bytes);
void *tb_dput(struct tc *c, const void *h, size_t bytes);    /* tb_dnew + copy h */
/* Wait for the stream, copy bytes of d to h (h NULL: only wait). 0 or -1. */
int tb_dget(struct tc *c, void *h, const void *d, size_t bytes);

/* |got - want|_2 / |want|_2; inf when got has a NaN or inf. */
double tb_rel(const float *got, const double *want, size_t n);
double tb_relf(const float *got, const float *want, size_t n);
/* Print the case's line, count it under op, free its buffers. 0 passed. */
int tb_report(struct tc *c, const char *op, const char *desc, double e, double tol,
	      const char *extra, int extra_fail);
int tb_want(const char *op); /* --op selects it (or no --op) */
/* (rows, cols) of type from random floats; *deq its CPU dequantization. */
void *tb_weights(uint32_t type, uint32_t rows, uint32_t cols, float **deq);

void tb_run_all(void); /* test-backend-ops.c */

#endif

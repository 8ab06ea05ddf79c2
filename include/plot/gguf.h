/*
 * gguf.h — read-only access to GGUF model files (v2 and v3), mmapped.
 *
 * gguf_open() validates the whole header up front: every count, length,
 * offset and alignment is bounds-checked against the file size and every
 * multiplication is checked for overflow, so the accessors below never fail
 * on a file that opened. A truncated, corrupt or hostile file gets an error
 * naming the field and its byte offset.
 */
#ifndef PLOT_GGUF_H
#define PLOT_GGUF_H

#include <stddef.h>
#include <stdint.h>

/* Metadata value types, as stored in the file. */
enum gguf_vtype {
	GGUF_T_U8 = 0, GGUF_T_I8 = 1, GGUF_T_U16 = 2, GGUF_T_I16 = 3,
	GGUF_T_U32 = 4, GGUF_T_I32 = 5, GGUF_T_F32 = 6, GGUF_T_BOOL = 7,
	GGUF_T_STRING = 8, GGUF_T_ARRAY = 9, GGUF_T_U64 = 10, GGUF_T_I64 = 11,
	GGUF_T_F64 = 12,
};

#define GGUF_MAX_DIMS 4

struct gguf_str {
	const char *s; /* points into the mapping; NOT NUL-terminated */
	uint64_t len;
};

struct gguf_tensor {
	char name[128];          /* NUL-terminated copy */
	uint32_t type;           /* enum qtype (lib/llm/quant/quant.h), same numbering as ggml; any
				  * type of known geometry opens: check quant_supported() */
	uint32_t n_dims;
	uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension; unused dims = 1 */
	uint64_t offset;         /* from the start of the data section */
	const void *data;        /* into the mapping; an aligned copy when the file's
	                          * general.alignment leaves it under 32 bytes */
	uint64_t nbytes;
};

struct gguf;

/* Open and validate. Returns NULL with err filled ("tensor 3 'blk.0.attn_q.weight':
 * data offset 123456 + 4096 bytes past end of file (size 120000)" ...). */
struct gguf *gguf_open(const char *path, char *err, size_t errlen);
/* The same over a caller-owned buffer (fuzzing, tests); buf must outlive g. */
struct gguf *gguf_open_mem(const void *buf, size_t len, char *err, size_t errlen);
void gguf_close(struct gguf *g);
/* A hint that [p, p + len) of g's data will rarely be read again (a weight
 * the engine has repacked): mapped file pages are dropped from memory and
 * come back from the file if touched. A borrowed buffer is left alone. */
void gguf_release(const struct gguf *g, const void *p, size_t len);

uint32_t gguf_version(const struct gguf *g);
uint64_t gguf_n_kv(const struct gguf *g);
uint64_t gguf_n_tensors(const struct gguf *g);
uint32_t gguf_alignment(const struct gguf *g);   /* general.alignment or 32 */
uint64_t gguf_data_offset(const struct gguf *g); /* file offset of the data section */

/* Metadata lookup. Index-based accessors take 0 <= i < gguf_n_kv(). */
int64_t gguf_find_key(const struct gguf *g, const char *key); /* -1 if absent */
struct gguf_str gguf_key_name(const struct gguf *g, uint64_t i);
enum gguf_vtype gguf_key_type(const struct gguf *g, uint64_t i);

/* Typed getters by key name. Return 0, or -1 if the key is absent or has
 * another type (integers widen: any unsigned/signed int type fits u64/i64
 * when the value is representable). gguf_get_f32 also accepts F64 (narrowed);
 * gguf_get_bool accepts only BOOL. */
int gguf_get_u32(const struct gguf *g, const char *key, uint32_t *out);
int gguf_get_u64(const struct gguf *g, const char *key, uint64_t *out);
int gguf_get_i64(const struct gguf *g, const char *key, int64_t *out);
int gguf_get_f32(const struct gguf *g, const char *key, float *out);
int gguf_get_bool(const struct gguf *g, const char *key, int *out);
int gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *out);

/* Arrays: element type and count, then typed element access. gguf_arr_f32
 * takes F32 or F64 elements; gguf_arr_i32 any integer element type whose value
 * fits in int32. Nested arrays are parsed (depth <= 4) but only their type and
 * count are exposed. */
int gguf_get_arr(const struct gguf *g, const char *key, enum gguf_vtype *etype, uint64_t *n);
int gguf_arr_str(const struct gguf *g, const char *key, uint64_t i, struct gguf_str *out);
int gguf_arr_f32(const struct gguf *g, const char *key, uint64_t i, float *out);
int gguf_arr_i32(const struct gguf *g, const char *key, uint64_t i, int32_t *out);
/* Raw pointer to a numeric array's elements (little-endian, packed), or NULL.
 * NOT aligned: GGUF packs metadata, so read elements with memcpy. */
const void *gguf_arr_data(const struct gguf *g, const char *key);

const struct gguf_tensor *gguf_tensor(const struct gguf *g, uint64_t i);
const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name);

#endif

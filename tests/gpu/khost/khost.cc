/*
 * khost.cc — the "device" of `make CUDA=host`: lib/cuda's kernels, compiled
 * by the host C++ compiler (cuda_runtime.h here), run on the CPU one fiber
 * per CUDA thread, and the part of the CUDA runtime and cuBLAS they use.
 *
 * Why: no GPU is at hand where the project is built and tested, and the
 * emulated device (lib/cuda/cuda-emu.cu) runs each op's arithmetic in
 * plain loops beside the kernels, not the kernels. Here the __global__
 * code itself runs: its indexing, launch geometry, shared memory, barriers,
 * warp shuffles and the forward pass's CUDA graphs.
 *
 * How strict, and where it is not:
 *   - A block's threads run one at a time, each until it waits at a
 *     barrier (__syncthreads, or a shuffle: a warp-wide exchange). So a
 *     missing __syncthreads shows as a read of shared memory that the other
 *     threads have not written yet (shared memory is poisoned with 0xFF,
 *     NaN as floats, before each block: the dynamic buffer and static
 *     __shared__ arrays; static __shared__ scalars are not).
 *   - A barrier that not every live thread of the block reaches, a shuffle
 *     whose mask names an exited or absent lane, or one that half a warp
 *     reaches, fail the launch with a sticky error (as an illegal
 *     instruction would on the device) and a line on stderr naming the
 *     kernel and block.
 *   - Launch geometry is checked against the device's limits (block ≤ 1024
 *     threads, grid y/z ≤ 65535, dynamic shared memory ≤ 48 KiB, the
 *     default without an opt-in).
 *   - Device memory is host memory tracked by address: copies and memsets
 *     must lie inside live allocations of the right kind, kernel pointer
 *     arguments must point into one (or be NULL), cuBLAS operands too.
 *     Loads and stores inside kernels are not checked here: run the build
 *     under ASan (SAN=address) for that; fresh allocations are poisoned.
 *   - Streams execute in order at once, on the calling thread: the
 *     device's overlap and any cross-stream race are not modelled.
 *   - Capture (cudaStreamBeginCapture) records launches, copies, memsets
 *     and GEMMs with their arguments as they were; a graph launch replays
 *     them, so a graph that depends on a host value that changed since the
 *     capture gives stale results here as on the device. During a capture
 *     in ThreadLocal/Global mode, allocation, free, stream synchronization,
 *     pageable-memory copies and work on the legacy stream invalidate the
 *     capture, as on the device.
 *   - Float arithmetic: the host's IEEE single, never contracted
 *     (-ffp-contract=off), so __fmul_rn and friends hold; expf and friends
 *     are the host's libm, not the device's (last-bit differences).
 * KHOST_MEM_MB sets the device's memory (default 16384), KHOST_DEVICES how
 * many devices there are (default 1; all share the memory; an empty
 * CUDA_VISIBLE_DEVICES hides them all, as with the real runtime).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cublas_v2.h"
#include "cuda_fp16.h"
#include "cuda_runtime.h"

#if defined(__SANITIZE_ADDRESS__)
#define KHOST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KHOST_ASAN 1
#endif
#endif
#ifdef KHOST_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

static thread_local khost_ids ids;

khost_ids *khost_ids_now(void)
{
	return &ids;
}

/* ---- errors ------------------------------------------------------------- */

static thread_local cudaError_t last_error = cudaSuccess;
static cudaError_t sticky = cudaSuccess; /* a failed kernel: every call fails from then */

static cudaError_t fail(cudaError_t e)
{
	last_error = e;
	return e;
}

static cudaError_t sticky_now(void)
{
	return __atomic_load_n(&sticky, __ATOMIC_ACQUIRE);
}

static void kernel_failed(const char *name, const std::string &why)
{
	fprintf(stderr, "khost: kernel %s: %s\n", name, why.c_str());
	__atomic_store_n(&sticky, cudaErrorLaunchFailure, __ATOMIC_RELEASE);
	last_error = cudaErrorLaunchFailure;
}

void khost_reset(void)
{
	__atomic_store_n(&sticky, cudaSuccess, __ATOMIC_RELEASE);
	last_error = cudaSuccess;
}

cudaError_t cudaGetLastError(void)
{
	cudaError_t s = sticky_now(), e = last_error;
	if (s)
		return s;
	last_error = cudaSuccess;
	return e;
}

const char *cudaGetErrorName(cudaError_t e)
{
	switch (e) {
	case cudaSuccess: return "cudaSuccess";
	case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
	case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
	case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
	case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
	case cudaErrorNoDevice: return "cudaErrorNoDevice";
	case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
	case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
	case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
	case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
	case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
	case cudaErrorStreamCaptureWrongThread: return "cudaErrorStreamCaptureWrongThread";
	case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
	case cudaErrorGraphExecUpdateFailure: return "cudaErrorGraphExecUpdateFailure";
	case cudaErrorNotSupported: return "cudaErrorNotSupported";
	}
	return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e)
{
	switch (e) {
	case cudaSuccess: return "no error";
	case cudaErrorInvalidValue: return "invalid argument";
	case cudaErrorMemoryAllocation: return "out of memory";
	case cudaErrorInvalidConfiguration: return "invalid configuration argument";
	case cudaErrorInvalidDevice: return "invalid device ordinal";
	case cudaErrorNoDevice: return "no CUDA-capable device is detected";
	case cudaErrorLaunchFailure: return "unspecified launch failure (khost: see stderr)";
	case cudaErrorStreamCaptureUnsupported:
		return "operation not permitted when stream is capturing";
	case cudaErrorStreamCaptureInvalidated:
		return "operation failed due to a previous error during capture";
	default: return cudaGetErrorName(e);
	}
}

/* ---- the device's memory ------------------------------------------------ */

struct alloc {
	size_t bytes;
	bool pinned; /* cudaMallocHost: host memory, visible to kernels too */
};
static std::mutex mem_mu;
static std::map<uintptr_t, alloc> allocs; /* by start address; under mem_mu */
static size_t mem_used;                   /* device bytes; under mem_mu */

static size_t env_size(const char *name, size_t dflt, size_t max)
{
	const char *s = getenv(name);
	char *end;
	if (!s || !*s)
		return dflt;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	return errno || *end || v > max ? dflt : (size_t)v;
}

static size_t mem_total(void)
{
	return env_size("KHOST_MEM_MB", 16384, (size_t)1 << 30) << 20;
}

/* 1 when [p, p + bytes) lies in one live allocation (of device memory, or
 * pinned host memory too when pinned_ok). */
static bool in_alloc(const void *p, size_t bytes, bool pinned_ok)
{
	std::lock_guard<std::mutex> g(mem_mu);
	uintptr_t a = (uintptr_t)p;
	auto it = allocs.upper_bound(a);
	if (it == allocs.begin())
		return false;
	--it;
	if (it->second.pinned && !pinned_ok)
		return false;
	return a - it->first <= it->second.bytes && bytes <= it->second.bytes - (a - it->first);
}

static bool is_pinned(const void *p, size_t bytes)
{
	return in_alloc(p, bytes, true) && !in_alloc(p, bytes, false);
}

static bool in_device(const void *p, size_t bytes)
{
	return in_alloc(p, bytes, false);
}

/* ---- streams and capture --------------------------------------------------- */

struct khost_stream {
	bool capturing, invalidated;
	cudaStreamCaptureMode mode;
	std::thread::id owner;
	std::vector<std::pair<std::string, std::function<void()>>> rec;
};
struct khost_graph {
	std::vector<std::pair<std::string, std::function<void()>>> nodes;
};
static thread_local int strict_captures; /* this thread's non-relaxed captures */
static thread_local std::vector<khost_stream *> my_captures;

/* An unsafe call during a strict capture invalidates it, as on the device. */
static bool capture_forbids(void)
{
	if (!strict_captures)
		return false;
	for (khost_stream *s : my_captures)
		s->invalidated = true;
	return true;
}

/* Run op on stream s now, or record it when s is capturing. */
static cudaError_t submit(cudaStream_t s, const char *what, std::function<void()> op)
{
	if (cudaError_t e = sticky_now())
		return fail(e);
	if (!s) {
		if (capture_forbids())
			return fail(cudaErrorStreamCaptureImplicit);
		op();
		return cudaSuccess;
	}
	if (s->capturing) {
		if (s->owner != std::this_thread::get_id() && s->mode != cudaStreamCaptureModeRelaxed)
			return fail(cudaErrorStreamCaptureWrongThread);
		s->rec.emplace_back(what, std::move(op));
		return cudaSuccess;
	}
	op();
	return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
	(void)flags;
	*s = new khost_stream{};
	return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s)
{
	if (s && s->capturing)
		return fail(cudaErrorStreamCaptureUnsupported);
	delete s;
	return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
	bool bad = capture_forbids();
	if (s && s->capturing) {
		s->invalidated = true; /* even a relaxed capture cannot wait for itself */
		bad = true;
	}
	return bad ? fail(cudaErrorStreamCaptureUnsupported) : sticky_now();
}

cudaError_t cudaDeviceSynchronize(void)
{
	return cudaStreamSynchronize(NULL);
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode)
{
	if (cudaError_t e = sticky_now())
		return e;
	if (!s || s->capturing)
		return fail(cudaErrorStreamCaptureUnsupported);
	s->capturing = true;
	s->invalidated = false;
	s->mode = mode;
	s->owner = std::this_thread::get_id();
	s->rec.clear();
	if (mode != cudaStreamCaptureModeRelaxed) {
		strict_captures++;
		my_captures.push_back(s);
	}
	return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g)
{
	*g = NULL;
	if (!s || !s->capturing)
		return fail(cudaErrorInvalidValue);
	if (s->owner != std::this_thread::get_id() && s->mode != cudaStreamCaptureModeRelaxed)
		return fail(cudaErrorStreamCaptureWrongThread);
	s->capturing = false;
	if (s->mode != cudaStreamCaptureModeRelaxed) {
		strict_captures--;
		for (size_t i = 0; i < my_captures.size(); i++)
			if (my_captures[i] == s)
				my_captures.erase(my_captures.begin() + (long)i--);
	}
	if (s->invalidated) {
		s->rec.clear();
		return fail(cudaErrorStreamCaptureInvalidated);
	}
	*g = new khost_graph{std::move(s->rec)};
	s->rec.clear();
	return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long flags)
{
	(void)flags;
	if (!g)
		return fail(cudaErrorInvalidValue);
	*e = new khost_graph{g->nodes};
	return cudaSuccess;
}

/* In place when the node lists match kind by kind (the device also wants
 * the same kernels in the same order); else the caller rebuilds. */
cudaError_t cudaGraphExecUpdate(cudaGraphExec_t e, cudaGraph_t g,
				cudaGraphExecUpdateResultInfo *info)
{
	bool same = e && g && e->nodes.size() == g->nodes.size();
	for (size_t i = 0; same && i < g->nodes.size(); i++)
		same = e->nodes[i].first == g->nodes[i].first;
	if (info)
		info->result = same ? 0 : 1;
	if (!same)
		return fail(cudaErrorGraphExecUpdateFailure);
	e->nodes = g->nodes;
	return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s)
{
	if (!e)
		return fail(cudaErrorInvalidResourceHandle);
	if (!(s && s->capturing) && !sticky_now() && !strict_captures) { /* runs now: no copy */
		for (const auto &n : e->nodes)
			if (!sticky_now())
				n.second();
		return sticky_now();
	}
	auto nodes = e->nodes; /* recorded: the replay keeps this graph's nodes as they are */
	return submit(s, "graph", [nodes]() {
		for (const auto &n : nodes)
			if (!sticky_now())
				n.second();
	});
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e)
{
	delete e;
	return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t g)
{
	delete g;
	return cudaSuccess;
}

/* ---- devices, memory, copies ---------------------------------------------- */

/* KHOST_DEVICES of them; none when CUDA_VISIBLE_DEVICES is set and empty, as
 * the runtime hides every device then. */
static int n_devices(void)
{
	const char *vis = getenv("CUDA_VISIBLE_DEVICES");
	if (vis && !*vis)
		return 0;
	return (int)env_size("KHOST_DEVICES", 1, 64);
}

cudaError_t cudaGetDeviceCount(int *n)
{
	*n = n_devices();
	return *n ? cudaSuccess : fail(cudaErrorNoDevice);
}

cudaError_t cudaSetDevice(int dev)
{
	return dev < 0 || dev >= n_devices() ? fail(cudaErrorInvalidDevice) : sticky_now();
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev)
{
	if (dev < 0 || dev >= n_devices())
		return fail(cudaErrorInvalidDevice);
	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "khost: CUDA kernels on the CPU");
	p->totalGlobalMem = mem_total();
	p->major = 9;
	p->multiProcessorCount = 1;
	return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
	std::lock_guard<std::mutex> g(mem_mu);
	size_t t = mem_total();
	*total_bytes = t;
	*free_bytes = mem_used < t ? t - mem_used : 0;
	return cudaSuccess;
}

static cudaError_t mem_take(void **p, size_t bytes, bool pinned)
{
	*p = NULL;
	if (capture_forbids())
		return fail(cudaErrorStreamCaptureUnsupported);
	if (cudaError_t e = sticky_now())
		return e;
	size_t rounded = (bytes + 255) & ~(size_t)255; /* cudaMalloc's alignment */
	if (!bytes || rounded < bytes)
		return fail(bytes ? cudaErrorMemoryAllocation : cudaErrorInvalidValue);
	std::lock_guard<std::mutex> g(mem_mu);
	if (!pinned && (mem_used > mem_total() || rounded > mem_total() - mem_used))
		return fail(cudaErrorMemoryAllocation);
	void *m = aligned_alloc(256, rounded);
	if (!m)
		return fail(cudaErrorMemoryAllocation);
	memset(m, 0xFF, rounded); /* NaN as floats: an unwritten element shows */
	allocs[(uintptr_t)m] = alloc{bytes, pinned};
	if (!pinned)
		mem_used += rounded;
	*p = m;
	return cudaSuccess;
}

static cudaError_t mem_give(void *p, bool pinned)
{
	if (capture_forbids())
		return fail(cudaErrorStreamCaptureUnsupported);
	if (!p)
		return cudaSuccess;
	std::lock_guard<std::mutex> g(mem_mu);
	auto it = allocs.find((uintptr_t)p);
	if (it == allocs.end() || it->second.pinned != pinned)
		return fail(cudaErrorInvalidValue);
	if (!pinned)
		mem_used -= (it->second.bytes + 255) & ~(size_t)255;
	allocs.erase(it);
	free(p);
	return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes)
{
	return mem_take(p, bytes, false);
}

cudaError_t cudaFree(void *p)
{
	return mem_give(p, false);
}

cudaError_t cudaMallocHost(void **p, size_t bytes)
{
	return mem_take(p, bytes, true);
}

cudaError_t cudaFreeHost(void *p)
{
	return mem_give(p, true);
}

cudaError_t cudaMemsetAsync(void *d, int v, size_t bytes, cudaStream_t s)
{
	if (bytes && !in_device(d, bytes))
		return fail(cudaErrorInvalidValue);
	return submit(s, "memset", [d, v, bytes]() { memset(d, v, bytes); });
}

/* A copy's host side: anywhere outside device memory; pinned while capturing. */
static bool host_side_ok(const void *p, size_t bytes, cudaStream_t s)
{
	if (in_device(p, bytes))
		return false;
	return !(s && s->capturing) || is_pinned(p, bytes);
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind k,
			    cudaStream_t s)
{
	bool ok;
	if (!bytes)
		return sticky_now();
	switch (k) {
	case cudaMemcpyHostToDevice: ok = in_device(dst, bytes) && host_side_ok(src, bytes, s); break;
	case cudaMemcpyDeviceToHost: ok = in_device(src, bytes) && host_side_ok(dst, bytes, s); break;
	case cudaMemcpyDeviceToDevice: ok = in_device(dst, bytes) && in_device(src, bytes); break;
	default: ok = false; /* lib/cuda always names the direction */
	}
	if (!ok) {
		if (s && s->capturing)
			s->invalidated = true;
		return fail(s && s->capturing ? cudaErrorStreamCaptureUnsupported
					      : cudaErrorInvalidValue);
	}
	return submit(s, "memcpy", [dst, src, bytes]() { memmove(dst, src, bytes); });
}

/* ---- fibers: one per CUDA thread of the running block ---------------------- */

/* The context switch. glibc's swapcontext makes a system call each time (the
 * signal mask), which made a test run minutes long; on x86-64 a switch here
 * saves the callee-saved registers, MXCSR and the x87 control word on the
 * old stack and restores them from the new one, nothing else. Elsewhere:
 * ucontext. */
#if defined(__x86_64__)
extern "C" void khost_switch(void **save_sp, void *sp);
asm(".text\n"
    ".globl khost_switch\n"
    ".type khost_switch,@function\n"
    "khost_switch:\n"
    "	pushq %rbp\n	pushq %rbx\n	pushq %r12\n	pushq %r13\n	pushq %r14\n	pushq %r15\n"
    "	subq $8, %rsp\n	stmxcsr (%rsp)\n	fnstcw 4(%rsp)\n"
    "	movq %rsp, (%rdi)\n	movq %rsi, %rsp\n"
    "	ldmxcsr (%rsp)\n	fldcw 4(%rsp)\n	addq $8, %rsp\n"
    "	popq %r15\n	popq %r14\n	popq %r13\n	popq %r12\n	popq %rbx\n	popq %rbp\n"
    "	ret\n"
    ".size khost_switch, .-khost_switch\n");
struct ctx {
	void *sp;
};
static void ctx_switch(ctx *from, ctx *to)
{
	khost_switch(&from->sp, to->sp);
}
/* A fresh stack whose first switch "returns" into entry with the stack
 * aligned as after a call (entry never returns). */
static void ctx_make(ctx *c, char *stack, size_t size, void (*entry)(void))
{
	uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
	void **sp = (void **)(top - 16); /* sp[0]: entry's return address slot */
	sp[0] = (void *)entry;
	sp[1] = NULL;
	sp -= 6; /* rbp rbx r12 r13 r14 r15, popped in reverse: zeros */
	memset(sp, 0, 6 * sizeof *sp);
	sp -= 1; /* MXCSR and the x87 control word: this thread's */
	uint32_t csr[2];
	__asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(csr[0]), "=m"(csr[1]));
	memcpy(sp, csr, sizeof csr);
	c->sp = sp;
}
#else
struct ctx {
	ucontext_t uc;
};
static void ctx_switch(ctx *from, ctx *to)
{
	swapcontext(&from->uc, &to->uc);
}
static void ctx_make(ctx *c, char *stack, size_t size, void (*entry)(void))
{
	getcontext(&c->uc);
	c->uc.uc_stack.ss_sp = stack;
	c->uc.uc_stack.ss_size = size;
	c->uc.uc_link = NULL;
	makecontext(&c->uc, entry, 0);
}
#endif

enum { F_READY, F_BAR, F_WBAR, F_DONE };
#define FIBER_STACK ((size_t)256 << 10)
#define MAX_SMEM ((size_t)48 << 10)

struct fiber {
	ctx c;
	char *stack;
	int state;
	unsigned mask; /* the shuffle's mask, while at F_WBAR */
	unsigned gen;  /* shuffles done: which slot buffer the next one uses */
	uint3 tid;
#ifdef KHOST_ASAN
	void *fake;
#endif
};

struct blockrun {
	std::vector<fiber> f; /* the thread's pool, grown to the largest block */
	unsigned n, cur;
	const std::function<void()> *thread;
	ctx sched;
	uint64_t slot[2][1024]; /* shuffle exchange, by generation parity and thread */
	std::vector<unsigned char> smem;
	std::vector<std::pair<int, std::vector<unsigned char>>> statics; /* khost_shared's */
	std::string error; /* set by a fiber that misused a primitive */
#ifdef KHOST_ASAN
	const void *sched_bottom;
	size_t sched_size;
#endif
};
static thread_local blockrun *B;

#ifdef KHOST_ASAN
static void to_sched(fiber &me, bool dying)
{
	__sanitizer_start_switch_fiber(dying ? NULL : &me.fake, B->sched_bottom, B->sched_size);
}
static void in_fiber(fiber &me)
{
	__sanitizer_finish_switch_fiber(me.fake, &B->sched_bottom, &B->sched_size);
}
#else
static void to_sched(fiber &, bool) {}
static void in_fiber(fiber &) {}
#endif

/* A fiber's life: the CUDA thread, then back to the scheduler for good. */
static void fiber_main(void)
{
	fiber &me = B->f[B->cur];
#ifdef KHOST_ASAN
	me.fake = NULL;
#endif
	in_fiber(me);
	(*B->thread)();
	me.state = F_DONE;
	to_sched(me, true);
	ctx_switch(&me.c, &B->sched);
	abort(); /* a done fiber is never resumed */
}

static void park(int state)
{
	fiber &me = B->f[B->cur];
	me.state = state;
	to_sched(me, false);
	ctx_switch(&me.c, &B->sched);
	in_fiber(B->f[B->cur]);
}

/* A misuse: the launch fails; this fiber never runs again. */
static void misuse(const std::string &why)
{
	if (B->error.empty())
		B->error = why;
	park(F_DONE);
	abort(); /* unreachable: a parked-done fiber is never resumed */
}

void khost_syncthreads(void)
{
	if (!B)
		abort(); /* __syncthreads outside a kernel */
	park(F_BAR);
}

uint64_t khost_shfl_xor(unsigned mask, uint64_t v, int lanemask)
{
	if (!B)
		abort();
	const unsigned me = B->cur, lane = me & 31, partner = lane ^ ((unsigned)lanemask & 31);
	if (!(mask >> lane & 1) || !(mask >> partner & 1))
		misuse("a shuffle's mask leaves out its own lane or its partner");
	/* Two buffers, alternating: a lane can write this buffer again only two
	 * shuffles on, after its whole warp has passed the one between, so
	 * after every lane read this one. One barrier per shuffle. */
	fiber &f = B->f[me];
	uint64_t *slot = B->slot[f.gen++ & 1];
	slot[me] = v;
	f.mask = mask;
	park(F_WBAR);
	return slot[(me & ~31u) | partner];
}

void *khost_shared(size_t bytes, int id)
{
	if (!B)
		abort();
	for (auto &st : B->statics)
		if (st.first == id && st.second.size() == bytes)
			return st.second.data();
	B->statics.emplace_back(id, std::vector<unsigned char>(bytes, 0xFF));
	return B->statics.back().second.data();
}

void *khost_dyn_shared(void)
{
	return B && !B->smem.empty() ? B->smem.data() : NULL;
}

static void fiber_pool(unsigned n)
{
	while (B->f.size() < n) {
		void *st = mmap(NULL, FIBER_STACK, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (st == MAP_FAILED)
			abort(); /* a test device with no address space left */
		fiber f{};
		f.stack = (char *)st;
		B->f.push_back(f);
	}
}

static void fiber_start(unsigned i, dim3 block)
{
	fiber &f = B->f[i];
	/* the stacks' tops staggered over 16 KiB: at the same offset in every
	 * 256 KiB stack they would all fall in the same cache sets */
	ctx_make(&f.c, f.stack, FIBER_STACK - (i % 128) * 128, fiber_main);
	f.state = F_READY;
	f.gen = 0;
	f.tid = uint3{i % block.x, i / block.x % block.y, i / (block.x * block.y)};
}

static void resume(unsigned i)
{
	B->cur = i;
	threadIdx = B->f[i].tid;
#ifdef KHOST_ASAN
	void *fake = NULL;
	__sanitizer_start_switch_fiber(&fake, B->f[i].stack, FIBER_STACK);
	ctx_switch(&B->sched, &B->f[i].c);
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
	ctx_switch(&B->sched, &B->f[i].c);
#endif
}

/* Release the warps whose live lanes all wait at a shuffle; "" or why not. */
static bool release_warps(std::string &why)
{
	bool any = false;
	for (unsigned w0 = 0; w0 < B->n; w0 += 32) {
		unsigned waiting = 0, live = 0, mask = 0;
		for (unsigned i = w0; i < B->n && i < w0 + 32; i++) {
			live += B->f[i].state != F_DONE;
			if (B->f[i].state == F_WBAR)
				waiting++, mask |= B->f[i].mask;
		}
		if (!waiting || waiting != live)
			continue;
		for (unsigned l = 0; l < 32; l++)
			if (mask >> l & 1 && (w0 + l >= B->n || B->f[w0 + l].state != F_WBAR))
				why = "a shuffle's mask names lane " + std::to_string(l) + " of warp " +
				      std::to_string(w0 / 32) + ", which has exited or does not exist";
		for (unsigned i = w0; i < B->n && i < w0 + 32; i++)
			if (B->f[i].state == F_WBAR)
				B->f[i].state = F_READY;
		any = true;
	}
	return any;
}

/* Release a __syncthreads every live thread waits at; false when stuck. */
static bool release_block(unsigned live, std::string &why)
{
	unsigned bar = 0, wbar = 0;
	for (unsigned i = 0; i < B->n; i++)
		bar += B->f[i].state == F_BAR, wbar += B->f[i].state == F_WBAR;
	if (bar == live) {
		for (unsigned i = 0; i < B->n; i++)
			if (B->f[i].state == F_BAR)
				B->f[i].state = F_READY;
		return true;
	}
	why = "deadlock: " + std::to_string(bar) + " of " + std::to_string(live) +
	      " live threads wait at __syncthreads, " + std::to_string(wbar) +
	      " at a shuffle their warp never completes";
	return false;
}

/* One block, thread by thread, barrier by barrier; "" or what went wrong. */
static std::string run_block(dim3 block)
{
	for (unsigned i = 0; i < B->n; i++)
		fiber_start(i, block);
	B->error.clear();
	for (;;) {
		for (unsigned i = 0; i < B->n; i++)
			if (B->f[i].state == F_READY) {
				resume(i);
				if (!B->error.empty())
					return B->error;
			}
		unsigned live = 0;
		for (unsigned i = 0; i < B->n; i++)
			live += B->f[i].state != F_DONE;
		if (!live)
			return "";
		std::string why;
		bool warps = release_warps(why);
		if (!why.empty())
			return why;
		if (!warps && !release_block(live, why))
			return why;
	}
}

/* The device's launch limits; "" when the configuration is valid. */
static std::string check_config(dim3 g, dim3 b, size_t smem)
{
	unsigned long long threads = (unsigned long long)b.x * b.y * b.z;
	if (!g.x || !g.y || !g.z || g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535)
		return "grid (" + std::to_string(g.x) + "," + std::to_string(g.y) + "," +
		       std::to_string(g.z) + ") is outside the device's limits";
	if (!threads || threads > 1024 || b.x > 1024 || b.y > 1024 || b.z > 64)
		return "block (" + std::to_string(b.x) + "," + std::to_string(b.y) + "," +
		       std::to_string(b.z) + ") is outside the device's limits";
	if (smem > MAX_SMEM)
		return std::to_string(smem) + " bytes of dynamic shared memory, over the 48 KiB "
		       "a kernel gets without cudaFuncSetAttribute";
	return "";
}

static void run_grid(const char *name, dim3 g, dim3 b, size_t smem,
		     const std::function<void()> &thread)
{
	blockrun *outer = B;
	static thread_local blockrun mine;
	B = &mine;
	B->n = b.x * b.y * b.z;
	B->thread = &thread;
	B->smem.assign(smem, 0xFF);
	B->statics.clear(); /* ids are lines: of this launch's file only */
	fiber_pool(B->n);
	gridDim = g;
	blockDim = b;
	for (unsigned z = 0; z < g.z; z++)
		for (unsigned y = 0; y < g.y; y++)
			for (unsigned x = 0; x < g.x; x++) {
				blockIdx = uint3{x, y, z};
				if (smem)
					memset(B->smem.data(), 0xFF, smem);
				for (auto &st : B->statics)
					memset(st.second.data(), 0xFF, st.second.size());
				std::string why = run_block(b);
				if (!why.empty()) {
					kernel_failed(name, "block (" + std::to_string(x) + "," +
						      std::to_string(y) + "," + std::to_string(z) +
						      "): " + why);
					B = outer;
					return;
				}
			}
	B = outer;
}

void khost_grid(const char *name, dim3 grid, dim3 block, size_t smem, cudaStream_t s,
		std::function<void()> thread)
{
	std::string bad = check_config(grid, block, smem);
	if (!bad.empty()) {
		fprintf(stderr, "khost: launch of %s: %s\n", name, bad.c_str());
		fail(smem > MAX_SMEM ? cudaErrorInvalidValue : cudaErrorInvalidConfiguration);
		return;
	}
	if (B)
		abort(); /* a launch from inside a kernel: lib/cuda has none */
	std::string n(name);
	cudaError_t e = submit(s, name, [n, grid, block, smem, thread]() {
		run_grid(n.c_str(), grid, block, smem, thread);
	});
	if (e)
		fail(e);
}

int khost_check_arg(const char *name, int index, const void *p)
{
	if (!p || in_alloc(p, 1, true))
		return 0;
	fprintf(stderr, "khost: launch of %s: pointer argument %d (%p) is not in device memory\n",
		name, index, p);
	fail(cudaErrorInvalidValue);
	return -1;
}

/* ---- cuBLAS ------------------------------------------------------------------- */

struct khost_blas {
	cudaStream_t s;
};

cublasStatus_t cublasCreate(cublasHandle_t *h)
{
	if (capture_forbids())
		return CUBLAS_STATUS_NOT_INITIALIZED;
	*h = new khost_blas{};
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t h)
{
	delete h;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
	if (!h)
		return CUBLAS_STATUS_NOT_INITIALIZED;
	h->s = s;
	return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t st)
{
	switch (st) {
	case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
	case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
	case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
	case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
	case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
	case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
	}
	return "CUBLAS_STATUS_UNKNOWN";
}

static size_t type_bytes(cudaDataType t)
{
	return t == CUDA_R_32F ? 4 : t == CUDA_R_16F || t == CUDA_R_16BF ? 2 : 0;
}

static float load(const void *p, cudaDataType t, size_t i)
{
	uint16_t h;
	if (t == CUDA_R_32F)
		return ((const float *)p)[i];
	h = ((const uint16_t *)p)[i];
	if (t == CUDA_R_16F)
		return __half2float(__ushort_as_half(h));
	uint32_t u = (uint32_t)h << 16;
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

/* The elements a column-major (rows, cols) operand with leading dimension
 * ld spans: (cols - 1) * ld + rows. */
static size_t span(int rows, int cols, int ld)
{
	return rows && cols ? (size_t)(cols - 1) * (size_t)ld + (size_t)rows : 0;
}

struct gemm {
	cublasOperation_t ta, tb;
	int m, n, k, lda, ldb, ldc;
	float alpha, beta;
	const void *A, *B;
	void *C;
	cudaDataType at, bt, ct;

	void operator()() const
	{
		for (int j = 0; j < n; j++)
			for (int i = 0; i < m; i++) {
				float acc = 0.0f;
				for (int l = 0; l < k; l++) {
					size_t ai = ta == CUBLAS_OP_N ? (size_t)i + (size_t)l * lda
								      : (size_t)l + (size_t)i * lda;
					size_t bi = tb == CUBLAS_OP_N ? (size_t)l + (size_t)j * ldb
								      : (size_t)j + (size_t)l * ldb;
					acc = fmaf(load(A, at, ai), load(B, bt, bi), acc);
				}
				size_t ci = (size_t)i + (size_t)j * ldc;
				/* beta 0: C is not read (it may hold anything, NaN included) */
				float c = beta == 0.0f ? alpha * acc : alpha * acc + beta * load(C, ct, ci);
				if (ct == CUDA_R_32F)
					((float *)C)[ci] = c;
				else
					((uint16_t *)C)[ci] = __half_as_ushort(__float2half_rn(c));
			}
	}
};

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
			    int n, int k, const void *alpha, const void *A, cudaDataType at,
			    int lda, const void *Bm, cudaDataType bt, int ldb, const void *beta,
			    void *C, cudaDataType ct, int ldc, cublasComputeType_t compute,
			    cublasGemmAlgo_t algo)
{
	(void)algo;
	if (!h)
		return CUBLAS_STATUS_NOT_INITIALIZED;
	if (compute != CUBLAS_COMPUTE_32F || !type_bytes(at) || !type_bytes(bt) ||
	    (ct != CUDA_R_32F && ct != CUDA_R_16F))
		return CUBLAS_STATUS_NOT_SUPPORTED;
	int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
	int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
	if (m < 0 || n < 0 || k < 0 || lda < (ar > 1 ? ar : 1) || ldb < (br > 1 ? br : 1) ||
	    ldc < (m > 1 ? m : 1))
		return CUBLAS_STATUS_INVALID_VALUE;
	size_t sa = span(ar, ac, lda) * type_bytes(at), sb = span(br, bc, ldb) * type_bytes(bt);
	size_t sc = span(m, n, ldc) * type_bytes(ct);
	if ((sa && !in_device(A, sa)) || (sb && !in_device(Bm, sb)) || (sc && !in_device(C, sc))) {
		fprintf(stderr, "khost: cublasGemmEx: an operand is not inside device memory\n");
		return CUBLAS_STATUS_INVALID_VALUE;
	}
	gemm g{ta, tb, m, n, k, lda, ldb, ldc, *(const float *)alpha, *(const float *)beta,
	       A, Bm, C, at, bt, ct};
	return submit(h->s, "gemm", g) ? CUBLAS_STATUS_EXECUTION_FAILED : CUBLAS_STATUS_SUCCESS;
}

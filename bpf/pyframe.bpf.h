/*
 * The Python stack of the current thread, read from BPF: include this in the one .bpf.c of an
 * object (it defines the maps below) and call mp_py_stack() from a tracing program that runs in
 * the context of the thread whose stack is wanted (tp_btf/rss_stat raised in the mm's own
 * context: check bpf_get_current_task_btf()->mm == mm first). Nothing is written into the target:
 * every access is a bpf_probe_read_user() of its memory, which never faults (a page that is not
 * present fails the read, and the failure is counted).
 *
 * How (offsets and addresses come from struct mp_pyproc, filled by the loader):
 *  1. Thread state. Per thread (task local storage), an entry remembers its PyThreadState. Every
 *     use re-validates it with one read of the state (its thread id must still be ours, which
 *     also yields the frame pointer). Missing or stale: the interpreters' thread lists are
 *     scanned (at most MP_PY_MAX_SCAN states) for the state whose native_thread_id is our tid
 *     (3.11+), or whose thread_id is our pthread pointer, which on x86-64 glibc is the fs base,
 *     task->thread.fsbase (3.8-3.10). The oldest match wins: a state just created for a new
 *     thread carries its creator's ids until the new thread binds it (3.8-3.11). A thread with
 *     no state (a native thread) is not rescanned before a back-off of 1 us doubling to 10 ms,
 *     so a native thread's page faults cost a storage lookup, and a Python thread that binds
 *     its state right after its first fault is found within microseconds.
 *  2. The chain. From the current frame, frame by frame (a window holding the back link, the
 *     code pointer, the instruction and the owner), C-stack shim frames skipped (3.12+), at most
 *     MP_PY_MAX_DEPTH frames recorded. The chain's hash covers frame addresses, code pointers
 *     and instructions. A user read costs ~100 ns whatever its size up to a few KiB, so the
 *     walk remembers per thread the span (at most MP_PY_SPAN_MAX bytes) that held the top
 *     frames last time: when the current frame is inside it, one read of the span gives those
 *     frames (on 3.11+ they sit next to each other on the thread's data stack), and only the
 *     frames outside it (a generator's, the C-stack shims of 3.12+) are read one by one.
 *     A second span covers what lies on the C stack: the _PyCFrame of 3.11/3.12 that names the
 *     running frame, and next to it the shim frame of the same eval loop (3.12).
 *  3. Fast path. If the chain hash equals the one of the thread's previous event, the previous
 *     stack id is returned: no validation, no interning. A page-fault storm inside one line
 *     thus costs the thread-state read, the spans and the frames outside them: 3 reads on
 *     3.11, 3.12 and 3.13 for a chain inside one eval loop; on 3.8-3.10, whose frames are heap
 *     objects, 1 + depth (fewer when they happen to lie close together). Comparing the
 *     top frame alone would be cheaper and wrong: a function called from two lines runs at the
 *     same frame address with the same instruction each time, only its callers differ.
 *  4. Validation. Each code pointer must point to an object whose ob_type is PyCode_Type, and
 *     on 3.11+ the instruction must lie inside its bytecode (ob_size code units); on 3.8-3.10
 *     each frame must be a PyFrame_Type object. The same read tags the frame with its code's
 *     file name, name and first line (struct mp_pyframe). A code pointer the thread's previous
 *     stack had at the same place (from the top or from the root) was checked then and is not
 *     read again, so a walk after a line change or a call reads only the new frames. A frame
 *     failing a check, or a read failing, ends the stack there: the frames above it are kept
 *     and the stack carries MP_PYSTACK_PARTIAL; if no frame is left, the result is
 *     MP_PY_STACK_UNKNOWN. Nothing unverified is ever returned as a frame.
 *  5. Interning. The stack (depth, flags, frames) is stored in mp_py_stacks under its 64-bit
 *     hash, its id; an existing entry with that id is compared frame by frame, and a mismatch
 *     (a hash collision) is counted and answered with MP_PY_STACK_UNKNOWN.
 * Races: the walk reads the current thread's own frames while that thread is stopped in the
 * kernel, so its chain cannot change under the walk; the checks guard against a stale cache,
 * interpreter teardown and a wrong layout.
 */
#ifndef MP_BPF_PYFRAME_BPF_H
#define MP_BPF_PYFRAME_BPF_H

#include "pyframe.h"

/* tgid -> the process description (mp_pytarget__open() of user/pytarget.h fills it). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MP_PY_MAX_PROCS);
	__type(key, __u32);
	__type(value, struct mp_pyproc);
} mp_py_procs SEC(".maps");

/*
 * Per thread (task local storage, v5.11+: a few loads from the task, where a hash lookup costs
 * ~40 ns; freed with the task): its state and last result.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct mp_pythread);
} mp_py_threads SEC(".maps");

/* stack id -> frames: the interned stacks, read by userspace. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MP_PY_MAX_STACKS);
	__type(key, __u64);
	__type(value, struct mp_pystack);
} mp_py_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mp_py_scratch);
} mp_py_scratch SEC(".maps");

#define MP_PY_RETRY_MIN_NS 1000ull	   /* first back-off of a thread without a state */
#define MP_PY_RETRY_MAX_NS 10000000ull	   /* longest back-off: 10 ms */
#define MP_PY_HASH_SEED 0x6d70726f66707966ull /* "mprofpyf" */

static __always_inline __u64 mp_py__mix(__u64 h, __u64 v)
{
	h ^= v;
	h *= 0x9e3779b97f4a7c15ull; /* 2^64 / golden ratio: spreads every input bit upward */
	return h ^ (h >> 29);
}

/* Fields of a buffer (a window or a place in the span); offsets are masked for the verifier. */
static __always_inline __u64 mp_py__f64(const __u8 *base, __u32 off)
{
	return *(const __u64 *)(base + (off & (MP_PY_WIN_MAX - 1)));
}

static __always_inline __u32 mp_py__f32(const __u8 *base, __u32 off)
{
	return *(const __u32 *)(base + (off & (MP_PY_WIN_MAX - 1)));
}

static __always_inline __u8 mp_py__f8(const __u8 *base, __u32 off)
{
	return base[off & (MP_PY_WIN_MAX - 1)];
}

static __always_inline __u64 mp_py__w64(const struct mp_py_scratch *s, __u32 off)
{
	return mp_py__f64(s->win, off);
}

/* Every user read goes through here, so the stats can say how many an event costs. */
static __always_inline long mp_py__read(struct mp_py_scratch *s, void *dst, __u32 len, __u64 src)
{
	s->stats.reads++;
	return bpf_probe_read_user(dst, len, (const void *)src);
}

/* Read window @w of the object at @addr into s->win. Returns 0 or a negative error. */
static __always_inline long mp_py__read_win(struct mp_py_scratch *s, struct mp_pywin w,
					    __u64 addr)
{
	__u32 len = w.len;

	if (len == 0 || len > MP_PY_WIN_MAX)
		return -1;
	return mp_py__read(s, s->win, len, addr + w.off);
}

static __always_inline __u64 mp_py__read_u64(struct mp_py_scratch *s, __u64 addr, long *err)
{
	__u64 v = 0;

	*err = mp_py__read(s, &v, sizeof(v), addr);
	return v;
}

/*
 * What identifies the current thread in a thread state: its tid (3.11+), else its pthread
 * pointer. 0: cannot be known here.
 */
static __always_inline __u64 mp_py__thread_key(const struct mp_pyproc *pp, __u64 pid_tgid)
{
	if (pp->flags & MP_PYPROC_NATIVE_TID)
		return (__u32)pid_tgid;
#if defined(__TARGET_ARCH_x86)
	/*
	 * glibc's pthread_self() is the thread's TCB, which x86-64 keeps in the fs base; the kernel
	 * records it in thread.fsbase at clone(CLONE_SETTLS) and arch_prctl(ARCH_SET_FS), the only
	 * ways glibc sets it.
	 */
	return bpf_get_current_task_btf()->thread.fsbase;
#else
	return 0;
#endif
}

/*
 * The loops below run through bpf_loop() (v5.17+): each callback is verified once, whatever
 * the iteration, where a bounded loop is verified iteration by iteration and the walk's
 * branches (shim frames, failures, depth) multiply its states past the verifier's limit. The
 * kernel inlines bpf_loop() into a plain loop with a direct call.
 */

/* The context of every callback: the description and the scratch (loop variables: s->l). */
struct mp_py__ctx {
	const struct mp_pyproc *pp;
	struct mp_py_scratch *s;
};

static long mp_py__scan_step(__u64 i, void *arg)
{
	struct mp_py__ctx *c = arg;
	const struct mp_pyproc *pp = c->pp;
	struct mp_py_scratch *s = c->s;
	long err;

	if (!s->l.tstate) {
		/* this interpreter's list is done: the next interpreter's */
		s->l.interp = mp_py__read_u64(s, s->l.interp + pp->is_next, &err);
		if (err || !s->l.interp)
			goto stop;
		s->l.tstate = mp_py__read_u64(s, s->l.interp + pp->is_tstate_head, &err);
		if (err)
			goto stop;
		return 0;
	}
	err = mp_py__read_win(s, pp->ts_win, s->l.tstate);
	if (err)
		goto stop;
	if (mp_py__w64(s, pp->ts_tid) == s->l.key)
		s->l.found = s->l.tstate; /* keep going: the oldest match wins */
	s->l.tstate = mp_py__w64(s, pp->ts_next);
	return 0;
stop:
	s->l.err = err;
	return 1;
}

/*
 * Scan the thread states of every interpreter for @key. Returns the matching state (the last,
 * i.e. oldest, match) or 0.
 */
static __always_inline __u64 mp_py__scan(const struct mp_pyproc *pp, struct mp_py_scratch *s,
					 __u64 key)
{
	struct mp_py__ctx c = { .pp = pp, .s = s };
	long err;

	s->stats.scans++;
	s->l.key = key;
	s->l.found = 0;
	s->l.err = 0;
	s->l.tstate = 0;
	s->l.interp = mp_py__read_u64(s, pp->interp_head_addr, &err);
	if (!err && s->l.interp)
		s->l.tstate = mp_py__read_u64(s, s->l.interp + pp->is_tstate_head, &err);
	if (!err && s->l.interp)
		bpf_loop(MP_PY_MAX_SCAN, mp_py__scan_step, &c, 0);
	if (err || s->l.err)
		s->stats.read_errors++;
	return s->l.found;
}

static long mp_py__chain_step(__u64 i, void *arg)
{
	struct mp_py__ctx *c = arg;
	const struct mp_pyproc *pp = c->pp;
	struct mp_py_scratch *s = c->s;
	struct mp_pyframe *f;
	__u64 code, back, frame = s->l.frame, wo;
	__u32 wlen = pp->fr_win.len;
	const __u8 *w;
	__s64 instr;

	if (!frame)
		goto stop;
	wo = frame + pp->fr_win.off;
	if (s->l.span_len && wo >= s->l.span_lo && wo + wlen <= s->l.span_lo + s->l.span_len) {
		w = s->span + ((wo - s->l.span_lo) & (MP_PY_SPAN_MAX - 1));
	} else if (s->l.cspan_len && wo >= s->l.cspan_lo &&
		   wo + wlen <= s->l.cspan_lo + s->l.cspan_len) {
		w = s->cspan + ((wo - s->l.cspan_lo) & (MP_PY_SPAN_MAX - 1));
	} else {
		if (mp_py__read_win(s, pp->fr_win, frame)) {
			s->stats.read_errors++;
			s->l.flags |= MP_PYSTACK_PARTIAL;
			goto stop;
		}
		w = s->win;
	}
	s->visited[s->l.nvisit & 63] = wo;
	s->l.nvisit++;
	code = mp_py__f64(w, pp->fr_code);
	back = mp_py__f64(w, pp->fr_back);
	if ((pp->flags & MP_PYPROC_HAS_OWNER) && mp_py__f8(w, pp->fr_owner) == pp->owner_cstack) {
		s->l.frame = back; /* a shim frame of the C stack: not Python code */
		return 0;
	}
	if (s->l.depth >= MP_PY_MAX_DEPTH) {
		s->l.flags |= MP_PYSTACK_TRUNCATED;
		goto stop;
	}
	if ((pp->flags & MP_PYPROC_FRAME_TYPE) && mp_py__f64(w, pp->fr_type) != pp->frame_type) {
		s->stats.bad_frame++;
		s->l.flags |= MP_PYSTACK_PARTIAL;
		goto stop;
	}
	if (pp->kind == MP_PY_KIND_INTERPFRAME)
		instr = (__s64)(mp_py__f64(w, pp->fr_instr) - code - pp->code_adaptive);
	else
		instr = (__s64)(__s32)mp_py__f32(w, pp->fr_instr) * pp->lasti_scale;
	/* far outside any bytecode: make it a value validation rejects */
	if (instr < -(1ll << 30) || instr > (1ll << 30))
		instr = -(1ll << 30);
	f = &s->stack.frames[s->l.depth & (MP_PY_MAX_DEPTH - 1)];
	f->code = code;
	f->instr = (__s32)instr;
	f->tag = 0; /* set by validation */
	s->l.h = mp_py__mix(mp_py__mix(mp_py__mix(s->l.h, frame), code), (__u32)instr);
	s->l.depth++;
	s->l.frame = back;
	return 0;
stop:
	s->l.stopped = 1;
	return 1;
}

/*
 * Read the chain from @frame into s->stack (frames, depth, TRUNCATED/PARTIAL flags), taking the
 * frames inside thread @th's spans from one read of each.
 * Returns the chain's hash (frame addresses included), for the fast path.
 */
static __always_inline __u64 mp_py__read_chain(const struct mp_pyproc *pp,
					       struct mp_py_scratch *s, __u64 frame,
					       struct mp_pythread *th)
{
	struct mp_py__ctx c = { .pp = pp, .s = s };
	__u64 wo = frame + pp->fr_win.off;
	__u32 depth, flags, len = 0;

	s->l.frame = frame;
	s->l.h = MP_PY_HASH_SEED;
	s->l.depth = 0;
	s->l.flags = 0;
	s->l.stopped = 0;
	s->l.nvisit = 0;
	s->l.span_len = 0;
	/* the second span: read by mp_py__current_frame() */
	if (th)
		len = th->span_len;
	/* the span is worth a read when the running frame is in it */
	if (len && len <= MP_PY_SPAN_MAX && wo >= th->span_lo && wo + pp->fr_win.len <= th->span_lo + len &&
	    !mp_py__read(s, s->span, len, th->span_lo)) {
		s->l.span_lo = th->span_lo;
		s->l.span_len = len;
	}
	bpf_loop(MP_PY_MAX_VISIT, mp_py__chain_step, &c, 0);
	depth = s->l.depth;
	flags = s->l.flags;
	if (!s->l.stopped && s->l.frame)
		flags |= MP_PYSTACK_TRUNCATED; /* only shim frames could have followed */
	s->stack.depth = depth;
	s->stack.flags = flags;
	return mp_py__mix(s->l.h, ((__u64)flags << 32) | depth);
}

static long mp_py__span_step(__u64 i, void *arg)
{
	struct mp_py__ctx *c = arg;
	struct mp_py_scratch *s = c->s;
	__u64 wo, end, lo, hi;

	if (i >= s->l.nvisit)
		return 1;
	wo = s->visited[i & 63];
	end = wo + c->pp->fr_win.len;
	/* the first span grows while the frames from the top fit in one */
	if (s->l.nopen) {
		lo = wo < s->l.nlo ? wo : s->l.nlo;
		hi = end > s->l.nhi ? end : s->l.nhi;
		if (hi - lo <= MP_PY_SPAN_MAX) {
			s->l.nlo = lo;
			s->l.nhi = hi;
			s->l.nspan++;
			return 0;
		}
		s->l.nopen = 0;
	}
	/* the frames after it go to the second (seeded with the _PyCFrame) while they fit */
	lo = s->l.cn && s->l.clo < wo ? s->l.clo : wo;
	hi = s->l.cn && s->l.chi > end ? s->l.chi : end;
	if (hi - lo <= MP_PY_SPAN_MAX) {
		s->l.clo = lo;
		s->l.chi = hi;
		s->l.cn++;
	}
	return 0;
}

/*
 * After a chain that differs from the previous one: where its frames were, for next time's
 * span reads (a span holding one object alone costs the same read as that object).
 */
static __always_inline void mp_py__plan_spans(const struct mp_pyproc *pp, struct mp_py_scratch *s,
					      struct mp_pythread *th)
{
	struct mp_py__ctx c = { .pp = pp, .s = s };

	s->l.nlo = ~0ull;
	s->l.nhi = 0;
	s->l.nopen = 1;
	s->l.nspan = 0;
	bpf_loop(MP_PY_MAX_VISIT, mp_py__span_step, &c, 0);
	th->span_lo = s->l.nspan >= 2 ? s->l.nlo : 0;
	th->span_len = s->l.nspan >= 2 ? (__u32)(s->l.nhi - s->l.nlo) : 0;
	th->cspan_lo = s->l.cn >= 2 ? s->l.clo : 0;
	th->cspan_len = s->l.cn >= 2 ? (__u32)(s->l.chi - s->l.clo) : 0;
}

struct mp_py__check_ctx {
	const struct mp_pyproc *pp;
	struct mp_py_scratch *s;
	const struct mp_pystack *old; /* the thread's previous stack, or NULL */
};

/*
 * The tag of @code if the thread's previous stack had it at the same place, counted from the
 * top or from the root (a line change in the running function, a call or a return): 0 if not.
 * That code pointer was checked then, and a live frame still points to it, so it is a code
 * object now (the one checked, or one at its address: see "Limits" in the README).
 */
static __always_inline __u32 mp_py__known_tag(const struct mp_pystack *old, __u32 i, __u32 depth,
					      __u64 code)
{
	__u32 od, j;

	if (!old)
		return 0;
	od = old->depth;
	if (i < od && old->frames[i & (MP_PY_MAX_DEPTH - 1)].code == code)
		return old->frames[i & (MP_PY_MAX_DEPTH - 1)].tag;
	j = od - (depth - i); /* the same distance from the root */
	if (depth - i <= od && old->frames[j & (MP_PY_MAX_DEPTH - 1)].code == code)
		return old->frames[j & (MP_PY_MAX_DEPTH - 1)].tag;
	return 0;
}

static long mp_py__check_step(__u64 i, void *arg)
{
	struct mp_py__check_ctx *c = arg;
	const struct mp_pyproc *pp = c->pp;
	struct mp_py_scratch *s = c->s;
	struct mp_pyframe *f;
	__u32 len = pp->code_hdr, tag;

	if (i >= s->stack.depth)
		return 1;
	f = &s->stack.frames[i & (MP_PY_MAX_DEPTH - 1)];
	tag = mp_py__known_tag(c->old, (__u32)i, s->stack.depth, f->code);
	if (tag) {
		f->tag = tag;
		goto good;
	}
	s->stats.code_reads++;
	/* ob_refcnt, ob_type, ob_size, ... up to co_firstlineno and co_name */
	if (len < 24 || len > MP_PY_WIN_MAX ||
	    mp_py__read(s, s->win, len, f->code)) {
		s->stats.read_errors++;
		return 1;
	}
	if (mp_py__w64(s, 8) != pp->code_type) {
		s->stats.bad_code++;
		return 1;
	}
	/* 3.11+: ob_size counts the code units; prev_instr may sit one unit before the first */
	if (f->instr < -2 || (pp->kind == MP_PY_KIND_INTERPFRAME && f->instr >= 0 &&
			      (__u64)f->instr >= mp_py__w64(s, 16) * 2)) {
		s->stats.bad_code++;
		return 1;
	}
	f->tag = mp_pyframe_tag(mp_py__w64(s, pp->co_filename), mp_py__w64(s, pp->co_name),
				mp_py__f32(s->win, pp->co_firstlineno));
good:
	s->l.h = mp_py__mix(mp_py__mix(mp_py__mix(s->l.h, f->code), (__u32)f->instr), f->tag);
	s->l.good++;
	return 0;
}

/*
 * Check every frame's code object; cut the stack at the first failure. @old: the thread's
 * previous stack (or NULL), whose code objects need no second read. Returns the stack's id
 * (hash of what is left), or 0 if no frame is left.
 */
static __always_inline __u64 mp_py__validate(const struct mp_pyproc *pp, struct mp_py_scratch *s,
					     const struct mp_pystack *old)
{
	struct mp_py__check_ctx c = { .pp = pp, .s = s, .old = old };
	__u32 flags = s->stack.flags, good;
	__u64 h;

	s->l.h = MP_PY_HASH_SEED;
	s->l.good = 0;
	bpf_loop(MP_PY_MAX_DEPTH, mp_py__check_step, &c, 0);
	good = s->l.good;
	if (good < s->stack.depth) {
		flags |= MP_PYSTACK_PARTIAL;
		s->stats.partial++;
		s->stack.depth = good;
		s->stack.flags = flags;
	}
	if (flags & MP_PYSTACK_TRUNCATED)
		s->stats.truncated++;
	if (!good)
		return 0;
	h = mp_py__mix(s->l.h, ((__u64)flags << 32) | good);
	return h < MP_PY_STACK_FIRST ? h + MP_PY_STACK_FIRST : h;
}

struct mp_py__same_ctx {
	const struct mp_pystack *old;
	struct mp_py_scratch *s;
};

static long mp_py__same_step(__u64 i, void *arg)
{
	struct mp_py__same_ctx *c = arg;
	struct mp_py_scratch *s = c->s;
	const struct mp_pyframe *x, *y;

	if (i >= s->stack.depth)
		return 1;
	x = &c->old->frames[i & (MP_PY_MAX_DEPTH - 1)];
	y = &s->stack.frames[i & (MP_PY_MAX_DEPTH - 1)];
	if (x->code != y->code || x->instr != y->instr || x->tag != y->tag) {
		s->l.differ = 1;
		return 1;
	}
	return 0;
}

/* Is interned stack @old the one in s->stack? */
static __always_inline bool mp_py__same(const struct mp_pystack *old, struct mp_py_scratch *s)
{
	struct mp_py__same_ctx c = { .old = old, .s = s };

	if (old->depth != s->stack.depth || old->flags != s->stack.flags)
		return false;
	s->l.differ = 0;
	bpf_loop(MP_PY_MAX_DEPTH, mp_py__same_step, &c, 0);
	return !s->l.differ;
}

struct mp_py__clear_ctx {
	struct mp_pystack *st;
};

static long mp_py__clear_step(__u64 i, void *arg)
{
	struct mp_pystack *st = ((struct mp_py__clear_ctx *)arg)->st;

	if (i >= st->depth) {
		st->frames[i & (MP_PY_MAX_DEPTH - 1)].code = 0;
		st->frames[i & (MP_PY_MAX_DEPTH - 1)].instr = 0;
		st->frames[i & (MP_PY_MAX_DEPTH - 1)].tag = 0;
	}
	return 0;
}

/* Store s->stack under @id unless it is there. Returns @id or MP_PY_STACK_UNKNOWN. */
static __always_inline __u64 mp_py__intern(struct mp_py_scratch *s, __u64 id)
{
	struct mp_py__clear_ctx cc = { .st = &s->stack };
	struct mp_pystack *old;
	long err;

	old = bpf_map_lookup_elem(&mp_py_stacks, &id);
	if (!old) {
		/* the unused tail must not carry frames of earlier walks into the map */
		bpf_loop(MP_PY_MAX_DEPTH, mp_py__clear_step, &cc, 0);
		err = bpf_map_update_elem(&mp_py_stacks, &id, &s->stack, BPF_NOEXIST);
		if (!err)
			return id;
		old = bpf_map_lookup_elem(&mp_py_stacks, &id); /* another CPU stored it first */
		if (!old) {
			s->stats.stacks_full++;
			return MP_PY_STACK_UNKNOWN;
		}
	}
	if (!mp_py__same(old, s)) {
		s->stats.collisions++;
		return MP_PY_STACK_UNKNOWN;
	}
	return id;
}

/*
 * The running frame, from @ts_frame (the thread state's frame field): itself, or on 3.11/3.12
 * the _PyCFrame's current_frame, read with the shim frames next to it when the thread's second
 * span covers it. Seeds the second span for next time. Sets *@err on a failed read.
 */
static __always_inline __u64 mp_py__current_frame(const struct mp_pyproc *pp,
						  struct mp_py_scratch *s, struct mp_pythread *th,
						  __u64 ts_frame, long *err)
{
	__u64 at = ts_frame + pp->cf_current_frame, lo = th->cspan_lo;
	__u32 len = th->cspan_len;

	*err = 0;
	s->l.cspan_len = 0;
	s->l.cn = 0;
	if (!(pp->flags & MP_PYPROC_CFRAME) || !ts_frame)
		return ts_frame;
	s->l.clo = ts_frame;
	s->l.chi = at + 8;
	s->l.cn = 1;
	if (len && len <= MP_PY_SPAN_MAX && at >= lo && at + 8 <= lo + len &&
	    !mp_py__read(s, s->cspan, len, lo)) {
		s->l.cspan_lo = lo;
		s->l.cspan_len = len;
		return mp_py__f64(s->cspan + ((at - lo) & (MP_PY_SPAN_MAX - 1)), 0);
	}
	return mp_py__read_u64(s, at, err);
}

/* A thread without a state: remember it, with a doubling back-off before the next scan. */
static __always_inline void mp_py__no_state(struct mp_pythread *th)
{
	__u32 misses = th->misses;
	__u64 wait = MP_PY_RETRY_MIN_NS << (misses < 14 ? misses : 14);

	if (wait > MP_PY_RETRY_MAX_NS)
		wait = MP_PY_RETRY_MAX_NS;
	th->tstate = 0;
	th->stack_id = 0;
	th->span_len = 0;
	th->cspan_len = 0;
	th->misses = misses + 1;
	th->retry_ns = bpf_ktime_get_ns() + wait;
}

/*
 * mp_py_stack - the Python stack of the current thread.
 * Takes: @pp, the description of the current process (a value of mp_py_procs, or any memory
 * holding one: read only); @pid_tgid, bpf_get_current_pid_tgid(). Must run in the context of the
 * thread (see the top of this file).
 * Returns: a stack id >= MP_PY_STACK_FIRST whose frames are in mp_py_stacks (they stay there
 * until userspace deletes them), MP_PY_STACK_NONE when the thread runs no Python code, or
 * MP_PY_STACK_UNKNOWN when it does but its stack could not be read. Every call counts in the
 * per-CPU stats of mp_py_scratch (struct mp_pystats).
 * Owns: nothing; creates or updates the thread's entry in mp_py_threads.
 */
static __always_inline __u64 mp_py_stack(const struct mp_pyproc *pp, __u64 pid_tgid)
{
	struct mp_pythread *th;
	struct mp_py_scratch *s;
	__u64 key, tstate = 0, frame = 0, chain, id;
	__u32 zero = 0;
	long err;

	s = bpf_map_lookup_elem(&mp_py_scratch, &zero);
	if (!s)
		return MP_PY_STACK_UNKNOWN;
	s->stats.calls++;
	key = mp_py__thread_key(pp, pid_tgid);
	if (!key) {
		s->stats.no_tstate++;
		return MP_PY_STACK_NONE;
	}
	th = bpf_task_storage_get(&mp_py_threads, bpf_get_current_task_btf(), 0,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!th) {
		/* no memory for the entry, or the storage is busy on this CPU: not cached */
		s->stats.failed++;
		return MP_PY_STACK_UNKNOWN;
	}
	if (th->tstate) {
		/* re-validate the cached state: its thread id must still be ours */
		if (!mp_py__read_win(s, pp->ts_win, th->tstate) && mp_py__w64(s, pp->ts_tid) == key) {
			tstate = th->tstate;
			frame = mp_py__w64(s, pp->ts_frame);
		}
	} else if (bpf_ktime_get_ns() < th->retry_ns) {
		s->stats.no_tstate++;
		return MP_PY_STACK_NONE;
	}
	if (!tstate) {
		tstate = mp_py__scan(pp, s, key);
		if (!tstate || mp_py__read_win(s, pp->ts_win, tstate)) {
			mp_py__no_state(th);
			s->stats.no_tstate++;
			return MP_PY_STACK_NONE;
		}
		frame = mp_py__w64(s, pp->ts_frame);
		th->tstate = tstate;
		th->chain = 0;
		th->stack_id = 0;
		th->span_len = 0;
		th->cspan_len = 0;
		th->misses = 0;
	}
	frame = mp_py__current_frame(pp, s, th, frame, &err);
	if (err) {
		s->stats.read_errors++;
		s->stats.failed++;
		return MP_PY_STACK_UNKNOWN;
	}
	if (!frame) {
		s->stats.no_frame++;
		return MP_PY_STACK_NONE;
	}
	chain = mp_py__read_chain(pp, s, frame, th);
	if (th->stack_id >= MP_PY_STACK_FIRST && th->chain == chain) {
		s->stats.fast++;
		return th->stack_id;
	}
	mp_py__plan_spans(pp, s, th);
	if (!s->stack.depth) {
		if (s->stack.flags & MP_PYSTACK_PARTIAL) {
			id = MP_PY_STACK_UNKNOWN;
			s->stats.failed++;
		} else {
			/* only C-stack shim frames: the thread is between Python calls */
			s->stats.no_frame++;
			return MP_PY_STACK_NONE;
		}
	} else {
		const struct mp_pystack *old = NULL;

		if (th->stack_id >= MP_PY_STACK_FIRST)
			old = bpf_map_lookup_elem(&mp_py_stacks, &th->stack_id);
		id = mp_py__validate(pp, s, old);
		if (id)
			id = mp_py__intern(s, id);
		else
			id = MP_PY_STACK_UNKNOWN;
		if (id == MP_PY_STACK_UNKNOWN)
			s->stats.failed++;
		else
			s->stats.walked++;
	}
	th->chain = chain;
	th->stack_id = id;
	return id;
}

/*
 * mp_py_current_stack - mp_py_stack() for the current process, looked up in mp_py_procs.
 * Takes: @pid_tgid, bpf_get_current_pid_tgid().
 * Returns: as mp_py_stack(); MP_PY_STACK_NONE for a process the loader has not described.
 */
static __always_inline __u64 mp_py_current_stack(__u64 pid_tgid)
{
	__u32 tgid = pid_tgid >> 32;
	struct mp_pyproc *pp = bpf_map_lookup_elem(&mp_py_procs, &tgid);

	if (!pp)
		return MP_PY_STACK_NONE;
	return mp_py_stack(pp, pid_tgid);
}

#ifdef MP_PY_SNAP_RING
/*
 * Code snapshots (struct mp_pycode_snap in pyframe.h), sent into the ring buffer map the
 * including object names MP_PY_SNAP_RING. Sent once per code object: this map remembers, per
 * (process, address, tag), the identity of the one sent (a hash of the header fields that name
 * it), so that another code object at the same address with the same tag (exec() of one .pth
 * line after another: same file and name strings, same first line) is sent again; an entry the
 * map evicts is only sent again.
 */
#define MP_PY_MAX_SENT 65536

struct mp_py_sent_key {
	__u32 tgid;
	__u32 tag;
	__u64 code;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MP_PY_MAX_SENT);
	__type(key, struct mp_py_sent_key);
	__type(value, __u64);
} mp_py_sent SEC(".maps");

/* A snapshot being built: 17 KiB, too large for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mp_pycode_snap);
} mp_py_snapbuf SEC(".maps");

struct mp_py__snap_ctx {
	const struct mp_pyproc *pp;
	const struct mp_pystack *st;
	struct mp_pycode_snap *b;
	struct mp_py_scratch *s;
	__u32 tgid, ptgid;
};

/* A str object's start into region @i (at data offset @off): as much of MP_PY_SNAP_STR as reads. */
static __always_inline void mp_py__snap_str(struct mp_pycode_snap *b, int i, __u32 off,
					    __u64 addr)
{
	__u32 len = MP_PY_SNAP_STR;

	/* a short str near the end of a mapping: its header alone still tells its length */
	if (bpf_probe_read_user(b->data + off, MP_PY_SNAP_STR, (const void *)addr)) {
		len = 80;
		if (bpf_probe_read_user(b->data + off, 80, (const void *)addr))
			len = 0;
	}
	b->r[i].addr = addr;
	b->r[i].len = len;
	b->r[i].off = off;
}

static long mp_py__snap_step(__u64 i, void *arg)
{
	struct mp_py__snap_ctx *c = arg;
	const struct mp_pyproc *pp = c->pp;
	struct mp_pycode_snap *b = c->b;
	struct mp_py_sent_key k = {};
	const struct mp_pyframe *f;
	__u64 table, size = 0, cb, ident, *sent;
	__u32 n;

	if (i >= c->st->depth)
		return 1;
	f = &c->st->frames[i & (MP_PY_MAX_DEPTH - 1)];
	n = pp->code_basicsize;
	if (n < 24 || n > MP_PY_SNAP_HDR ||
	    bpf_probe_read_user(b->data + MP_PYSNAP_OFF_CODE, n, (const void *)f->code) ||
	    mp_py__f64(b->data, 8) != pp->code_type)
		goto lost; /* validated by the walk a moment ago: not expected */
	/* what the resolver compares to know a code object (user/pyresolve.c, struct ident) */
	ident = mp_py__mix(MP_PY_HASH_SEED, mp_py__f64(b->data, pp->co_filename));
	ident = mp_py__mix(ident, mp_py__f64(b->data, pp->co_name));
	ident = mp_py__mix(ident, mp_py__f64(b->data, pp->co_linetable));
	ident = mp_py__mix(ident, mp_py__f64(b->data, 16)); /* ob_size: code units (3.11+) */
	ident = mp_py__mix(ident, mp_py__f32(b->data, pp->co_firstlineno));
	if (pp->co_qualname != 0xffff)
		ident = mp_py__mix(ident, mp_py__f64(b->data, pp->co_qualname));
	if (pp->co_code != 0xffff)
		ident = mp_py__mix(ident, mp_py__f64(b->data, pp->co_code));
	k.tgid = c->tgid;
	k.tag = f->tag;
	k.code = f->code;
	sent = bpf_map_lookup_elem(&mp_py_sent, &k);
	if (sent && *sent == ident)
		return 0;
	b->kind = MP_LINE_REC_CODE;
	b->tgid = c->tgid;
	b->code = f->code;
	b->tag = f->tag;
	b->ptgid = c->ptgid;
	b->r[MP_PYSNAP_CODE].addr = f->code;
	b->r[MP_PYSNAP_CODE].len = n;
	b->r[MP_PYSNAP_CODE].off = MP_PYSNAP_OFF_CODE;
	mp_py__snap_str(b, MP_PYSNAP_FILE, MP_PYSNAP_OFF_FILE, mp_py__f64(b->data, pp->co_filename));
	mp_py__snap_str(b, MP_PYSNAP_NAME, MP_PYSNAP_OFF_NAME,
			mp_py__f64(b->data, pp->co_qualname != 0xffff ? pp->co_qualname :
									 pp->co_name));
	b->r[MP_PYSNAP_CODEBYTES].len = 0;
	if (pp->co_code != 0xffff) {
		cb = mp_py__f64(b->data, pp->co_code);
		b->r[MP_PYSNAP_CODEBYTES].addr = cb;
		b->r[MP_PYSNAP_CODEBYTES].off = MP_PYSNAP_OFF_CODEBYTES;
		if (!bpf_probe_read_user(b->data + MP_PYSNAP_OFF_CODEBYTES, MP_PY_SNAP_BYTES,
					 (const void *)cb))
			b->r[MP_PYSNAP_CODEBYTES].len = MP_PY_SNAP_BYTES;
	}
	table = mp_py__f64(b->data, pp->co_linetable);
	b->r[MP_PYSNAP_TABLE].addr = table;
	b->r[MP_PYSNAP_TABLE].off = MP_PYSNAP_OFF_TABLE;
	b->r[MP_PYSNAP_TABLE].len = 0;
	n = 0;
	if (!bpf_probe_read_user(&size, sizeof(size), (const void *)(table + pp->b_size))) {
		/* longer tables keep their start: the resolver reads the rest from the process */
		size += pp->b_sval;
		n = size > MP_PY_SNAP_TABLE - 1 ? MP_PY_SNAP_TABLE - 1 : (__u32)size;
		/* a bound the verifier sees (the compiler would drop the mask after the test) */
		barrier_var(n);
		n &= MP_PY_SNAP_TABLE - 1;
		if (bpf_probe_read_user(b->data + MP_PYSNAP_OFF_TABLE, n, (const void *)table))
			n = 0;
		b->r[MP_PYSNAP_TABLE].len = n;
	}
	/*
	 * Adaptive wake-up, as for the stack: BPF_RB_NO_WAKEUP here would leave the stack's record
	 * behind unread records, where adaptive wake-up sends none.
	 */
	if (bpf_ringbuf_output(&MP_PY_SNAP_RING, b,
			       __builtin_offsetof(struct mp_pycode_snap, data) + MP_PYSNAP_OFF_TABLE + n,
			       0))
		goto lost;
	bpf_map_update_elem(&mp_py_sent, &k, &ident, BPF_ANY);
	c->s->stats.snaps++;
	return 0;
lost:
	c->s->stats.snaps_lost++;
	return 0;
}

/*
 * mp_py_snap_stack - send the snapshots of the code objects of stack @id of process @tgid that
 * were not sent yet. Call it before announcing a new (process, stack) key, in the context of
 * the thread that ran it (the stack was just walked: its code objects are alive).
 */
static __always_inline void mp_py_snap_stack(__u32 tgid, __u64 id)
{
	struct mp_py__snap_ctx c = { .tgid = tgid };
	__u32 zero = 0;

	c.ptgid = BPF_CORE_READ(bpf_get_current_task_btf(), real_parent, tgid);
	c.pp = bpf_map_lookup_elem(&mp_py_procs, &tgid);
	c.st = bpf_map_lookup_elem(&mp_py_stacks, &id);
	c.b = bpf_map_lookup_elem(&mp_py_snapbuf, &zero);
	c.s = bpf_map_lookup_elem(&mp_py_scratch, &zero);
	if (!c.pp || !c.st || !c.b || !c.s)
		return;
	bpf_loop(MP_PY_MAX_DEPTH, mp_py__snap_step, &c, 0);
}
#endif /* MP_PY_SNAP_RING */

#endif

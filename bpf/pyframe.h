/*
 * Reading CPython stacks from BPF: the ABI between bpf/pyframe.bpf.h (the kernel walk) and user/
 * (discovery fills struct mp_pyproc, the resolver reads struct mp_pystack). Fixed-width types,
 * explicit padding; every offset the walk needs comes from the loader, so one BPF object reads
 * CPython 3.8 to 3.13 and the kernel side knows no CPython version.
 *
 * What the walk records per frame: the code object's address in the target and the byte offset
 * of the interpreter's instruction pointer in that code's bytecode ("instr"), the number
 * PyCode_Addr2Line() takes:
 *   3.8, 3.9   f_lasti (already bytes);
 *   3.10       f_lasti * 2 (f_lasti counts code units there);
 *   3.11, 3.12 prev_instr - _PyCode_CODE(code), in bytes;
 *   3.13       instr_ptr - _PyCode_CODE(code), in bytes.
 * A negative instr is a frame that has not run its first instruction (f_lasti -1, prev_instr one
 * unit before the code): its line is co_firstlineno, as CPython reports it.
 */
#ifndef MP_BPF_PYFRAME_H
#define MP_BPF_PYFRAME_H

/*
 * Frames recorded per stack, the most recent first; deeper stacks keep their 32 most recent frames
 * and carry MP_PYSTACK_TRUNCATED. 32 covers ordinary application stacks (a Django request is
 * ~25-40 frames deep, the rows a report shows are the top few); the walk costs one user read per
 * frame, so the bound is also the worst case of an event.
 */
#define MP_PY_MAX_DEPTH 32
/* Frames visited per walk, including the C-stack shim frames of 3.12+ that are not recorded. */
#define MP_PY_MAX_VISIT (MP_PY_MAX_DEPTH + 8)
/*
 * Thread states visited when a thread's state is looked up (not per event: the result is cached
 * per thread). Past 128 Python threads in one process some threads are not found
 * (stats.no_tstate counts their events).
 */
#define MP_PY_MAX_SCAN 128
/* Bytes of one user read of a thread state or a frame (struct mp_pyproc windows). */
#define MP_PY_WIN_MAX 256
/*
 * Bytes of the span read: the frames of 3.11+ live next to each other on the thread's data
 * stack, so one read of up to 4 KiB takes the frames the previous walk found there (a user read
 * costs ~100 ns here whatever its size up to a few KiB: helper call, hardened-usercopy check and
 * the return-thunk mitigations dominate the copy).
 */
#define MP_PY_SPAN_MAX 4096

/* Map sizes; the loader may lower them with bpf_map__set_max_entries(). */
#define MP_PY_MAX_PROCS 1024
#define MP_PY_MAX_STACKS 8192

/*
 * Stack ids. Real stacks have ids >= MP_PY_STACK_FIRST (a 64-bit hash of the frames, flags and
 * depth, so equal stacks of different processes share one entry of the stacks map: aggregate by
 * (tgid, stack id) and resolve a stack's code addresses in the process that reported it).
 */
#define MP_PY_STACK_NONE 0    /* the thread has no Python frame: native thread, C code, teardown */
#define MP_PY_STACK_UNKNOWN 1 /* a Python thread whose stack could not be read (stats say why) */
#define MP_PY_STACK_FIRST 2

/* enum mp_py_kind: which frame structures the walk follows. */
#define MP_PY_KIND_FRAMEOBJECT 1 /* 3.8-3.10: PyFrameObject linked by f_back, int f_lasti */
#define MP_PY_KIND_INTERPFRAME 2 /* 3.11+: _PyInterpreterFrame linked by previous, instr ptr */

/* struct mp_pyproc flags. */
#define MP_PYPROC_NATIVE_TID 1u /* match gettid() against tstate->native_thread_id (3.11+);
				   otherwise the pthread pointer (x86-64 fs base) against
				   tstate->thread_id */
#define MP_PYPROC_CFRAME 2u	/* tstate->cframe->current_frame (3.11, 3.12) instead of a
				   frame pointer in the thread state itself */
#define MP_PYPROC_HAS_OWNER 4u	/* frames have an owner byte: skip owner == owner_cstack */
#define MP_PYPROC_FRAME_TYPE 8u /* PyFrameObject: check ob_type == frame_type */

/*
 * A window: one user read of @len bytes at (object + @off) from which the walk takes several
 * fields, so a thread state or a frame costs one read. Field offsets below marked "window" are
 * relative to the start of their window, not to the object.
 */
struct mp_pywin {
	__u16 off;
	__u16 len; /* 1..MP_PY_WIN_MAX */
};

/*
 * One interpreter process, filled by mp_pytarget__open() (user/pytarget.h) and stored in the
 * mp_py_procs map under the tgid. Addresses are in the target's address space.
 */
struct mp_pyproc {
	__u32 version_hex; /* PY_VERSION_HEX, e.g. 0x030b07f0 */
	__u32 kind;	   /* MP_PY_KIND_* */
	__u32 flags;	   /* MP_PYPROC_* */
	__u32 pad0;
	__u64 interp_head_addr; /* &_PyRuntime.interpreters.head */
	__u64 code_type;	/* &PyCode_Type */
	__u64 frame_type;	/* &PyFrame_Type (3.8-3.10), else 0 */
	/* PyInterpreterState */
	__u32 is_next;		/* offset of next */
	__u32 is_tstate_head;	/* offset of tstate_head (threads.head on 3.11+) */
	/* PyThreadState, read through ts_win */
	struct mp_pywin ts_win;
	__u16 ts_next;		/* window: next */
	__u16 ts_tid;		/* window: native_thread_id or thread_id, an unsigned long */
	__u16 ts_frame;		/* window: frame / cframe / current_frame */
	__u16 cf_current_frame; /* offset of current_frame in _PyCFrame (MP_PYPROC_CFRAME) */
	/* frame, read through fr_win */
	struct mp_pywin fr_win;
	__u16 fr_back;	 /* window: f_back / previous */
	__u16 fr_code;	 /* window: f_code / f_executable */
	__u16 fr_instr;	 /* window: f_lasti (int) / prev_instr, instr_ptr (pointer) */
	__u16 fr_owner;	 /* window: owner (char), MP_PYPROC_HAS_OWNER */
	__u16 fr_type;	 /* window: ob_type, MP_PYPROC_FRAME_TYPE */
	__u16 owner_cstack; /* owner value of C-stack shim frames (3.12+), else 0xffff */
	__u16 lasti_scale;  /* f_lasti to bytes: 1 (3.8, 3.9) or 2 (3.10) */
	__u16 code_adaptive; /* offset of the bytecode in a code object (3.11+) */
	/* PyCodeObject: the first code_hdr bytes are read to check a code object and tag it */
	__u16 code_hdr;
	__u16 co_filename;
	__u16 co_name;
	__u16 co_firstlineno;
	/*
	 * What names a code object, for its snapshot (struct mp_pycode_snap): the str and bytes
	 * objects it points to. 0xffff: the version has no such field.
	 */
	__u16 code_basicsize; /* bytes of the code header a snapshot takes (<= MP_PY_SNAP_HDR) */
	__u16 co_qualname;    /* 3.11+ */
	__u16 co_linetable;   /* co_lnotab (3.8, 3.9), co_linetable (3.10+) */
	__u16 co_code;	      /* the bytecode's bytes object (3.8-3.10) */
	__u16 b_size;	      /* a bytes object's ob_size */
	__u16 b_sval;	      /* and its first byte */
	__u16 pad1;
};

/*
 * A frame: code object address and byte offset of the instruction (see the top of this file).
 * The tag says which code object it was: one freed and another compiled at the same address
 * (exec() in a loop) gives another tag, so another stack id, and the resolver refuses to name a
 * frame whose tag is not that of the code object now at its address.
 */
struct mp_pyframe {
	__u64 code;
	__s32 instr;
	__u32 tag; /* mp_pyframe_tag() of the code's co_filename, co_name, co_firstlineno */
};

/* The tag of a code object, computed alike by the BPF walk and the resolver. */
static inline __u32 mp_pyframe_tag(__u64 filename, __u64 name, __u32 firstlineno)
{
	__u64 h = (filename ^ (name << 1) ^ ((__u64)firstlineno << 48)) * 0x9e3779b97f4a7c15ull;

	h ^= h >> 32;
	return (__u32)h | 1; /* never 0: 0 is a frame without a tag */
}

/*
 * A code object's snapshot: the memory the resolver (user/pyresolve.c) reads to name it, copied
 * by BPF the first time a process's new stack has the code (a ring-buffer record, after which
 * the stack is announced), so a frame is named even when its code is freed a moment later (a
 * module body, once imported) or the process has exited. The regions are fixed slots of data[]:
 * the code header, the file name and the (qual)name str objects from their start (header and
 * characters, up to MP_PY_SNAP_STR bytes), the bytecode's bytes header (3.8-3.10) and the line
 * table's bytes object, header and contents, up to MP_PY_SNAP_TABLE bytes; the record ends with
 * the table. A region that could not be read has length 0: the resolver reads the live process
 * for it, as it does for anything outside the regions.
 */
#define MP_LINE_REC_STACK 1 /* struct mp_line_new */
#define MP_LINE_REC_CODE 2  /* struct mp_pycode_snap */

#define MP_PY_SNAP_HDR 256
#define MP_PY_SNAP_STR 256  /* a str's header (<= 80 bytes) and its first characters */
#define MP_PY_SNAP_BYTES 64 /* a bytes object's header */
/* all but 1 of the 19966 line tables of Debian 3.11.2's standard library (median 61 bytes) */
#define MP_PY_SNAP_TABLE 16384
#define MP_PY_SNAP_REGIONS 5

enum mp_pysnap_slot {
	MP_PYSNAP_CODE = 0,
	MP_PYSNAP_FILE,
	MP_PYSNAP_NAME,
	MP_PYSNAP_CODEBYTES,
	MP_PYSNAP_TABLE,
};

struct mp_pysnap_region {
	__u64 addr; /* in the target */
	__u32 len;  /* bytes copied, 0: not read */
	__u32 off;  /* where they are in data[] */
};

#define MP_PYSNAP_OFF_CODE 0
#define MP_PYSNAP_OFF_FILE (MP_PYSNAP_OFF_CODE + MP_PY_SNAP_HDR)
#define MP_PYSNAP_OFF_NAME (MP_PYSNAP_OFF_FILE + MP_PY_SNAP_STR)
#define MP_PYSNAP_OFF_CODEBYTES (MP_PYSNAP_OFF_NAME + MP_PY_SNAP_STR)
#define MP_PYSNAP_OFF_TABLE (MP_PYSNAP_OFF_CODEBYTES + MP_PY_SNAP_BYTES)

struct mp_pycode_snap {
	__u32 kind; /* MP_LINE_REC_CODE */
	__u32 tgid;
	__u64 code;
	__u32 tag;   /* the frames' tag (struct mp_pyframe) */
	__u32 ptgid; /* the parent process: a forked child's interpreter is its parent's */
	struct mp_pysnap_region r[MP_PY_SNAP_REGIONS];
	__u8 data[MP_PYSNAP_OFF_TABLE + MP_PY_SNAP_TABLE];
};

/* The record that announces a new (process, stack) key (after the snapshots of its code). */
struct mp_line_new {
	__u32 kind; /* MP_LINE_REC_STACK */
	__u32 tgid;
	__u64 stack;
};

/* struct mp_pystack flags. */
#define MP_PYSTACK_TRUNCATED 1u /* more than MP_PY_MAX_DEPTH frames: the oldest are missing */
#define MP_PYSTACK_PARTIAL 2u	/* a read or a check failed below frames[depth - 1]: the frames
				   kept are right, the older ones are missing */

/* Value of the mp_py_stacks map (key: the stack id, a __u64). */
struct mp_pystack {
	__u32 depth; /* frames used, 1..MP_PY_MAX_DEPTH */
	__u32 flags; /* MP_PYSTACK_* */
	struct mp_pyframe frames[MP_PY_MAX_DEPTH]; /* [0] is the running frame */
};

/* Value of the mp_py_threads task storage: one per thread of the described processes. */
struct mp_pythread {
	__u64 tstate;	   /* the thread's PyThreadState, 0 if none was found */
	__u64 chain;	   /* hash of the last walk's (frame, code, instr) chain */
	__u64 stack_id;	   /* what that walk returned */
	__u64 retry_ns;	   /* tstate == 0: no new scan before this time */
	__u64 span_lo;	   /* the frames of the last walk's top that fit one read */
	__u64 cspan_lo;	   /* the _PyCFrame and shim frames near it on the C stack (3.12) */
	__u32 span_len;	   /* (0: none, read frame by frame) */
	__u32 cspan_len;
	__u32 misses;	   /* consecutive scans that found nothing (the back-off) */
	__u32 pad;
};

/*
 * Per-CPU counters (the stats member of the mp_py_scratch per-CPU array): sum over CPUs. Every
 * call of mp_py_stack() counts in exactly one of fast, walked, no_tstate, no_frame, failed; the
 * others detail them.
 */
struct mp_pystats {
	__u64 calls;	   /* mp_py_stack() calls */
	__u64 fast;	   /* same chain as the thread's last event: previous id reused */
	__u64 walked;	   /* chain changed: frames validated and the stack interned */
	__u64 no_tstate;   /* no thread state for this thread (native thread, not yet bound) */
	__u64 no_frame;	   /* a thread state without a Python frame */
	__u64 failed;	   /* MP_PY_STACK_UNKNOWN returned */
	__u64 scans;	   /* thread-state list scans */
	__u64 read_errors; /* user reads that failed */
	__u64 bad_code;	   /* a frame whose code failed the type or bounds check */
	__u64 bad_frame;   /* a frame object that failed its type check (3.8-3.10) */
	__u64 truncated;   /* stacks deeper than MP_PY_MAX_DEPTH */
	__u64 partial;	   /* stacks cut by a failure (MP_PYSTACK_PARTIAL) */
	__u64 stacks_full; /* the stacks map was full: MP_PY_STACK_UNKNOWN */
	__u64 collisions;  /* two different stacks with one id: MP_PY_STACK_UNKNOWN */
	__u64 code_reads;  /* code objects read by validation (the others were known) */
	__u64 reads;	   /* user reads in all (bpf_probe_read_user calls) */
	__u64 snaps;	   /* code snapshots sent (struct mp_pycode_snap) */
	__u64 snaps_lost;  /* code snapshots not sent: the ring was full or the code unreadable */
};

/*
 * Value of the one-element per-CPU array mp_py_scratch: a stack being built and a window buffer
 * are too large for the BPF stack. Userspace reads only the stats.
 */
struct mp_py_loopstate {
	/*
	 * The walk's loop variables live here, in map memory, rather than in the callbacks' stack
	 * context: the verifier knows nothing about values loaded from a map, so it verifies each
	 * bpf_loop() callback once instead of once per value of a counter.
	 */
	__u64 frame, h, interp, tstate, key, found;
	__u64 span_lo, nlo, nhi;	/* the span read now; the span for next time */
	__u64 cspan_lo, clo, chi;	/* the same for the second span */
	__u32 span_len, nopen, nspan;	/* nopen: the top frames still fit; nspan: how many */
	__u32 cspan_len, cn, nvisit;	/* nvisit: frames visited, shims included */
	__u32 depth, flags, stopped, good, differ;
	__s64 err;
};

struct mp_py_scratch {
	struct mp_pystack stack;
	struct mp_py_loopstate l;
	/* a window read; +8 so an 8-byte field at any masked offset stays inside the value */
	__u8 win[MP_PY_WIN_MAX + 8];
	/* the frames the chain visited, for next time's spans (worked out on a miss only) */
	__u64 visited[64];
	/* the span reads; a window at any masked offset in them stays inside the value */
	__u8 span[MP_PY_SPAN_MAX + MP_PY_WIN_MAX + 8];
	__u8 cspan[MP_PY_SPAN_MAX + MP_PY_WIN_MAX + 8];
	struct mp_pystats stats;
};

#endif

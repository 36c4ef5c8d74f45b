/*
 * mp_pyresolver: code object address + instruction offset (a struct mp_pyframe of bpf/pyframe.h)
 * -> file name, function name and line, read from the live target with process_vm_readv().
 *
 * Each code object is decoded once (its file name, name, first line and line table) and cached
 * under its address. Every lookup re-reads the code object's header (one read) and compares it
 * with the cached one (type, file name and name pointers, line table pointer, first line, size):
 * a code object freed and replaced by another at the same address is decoded again, never
 * answered from the old one. Code objects die: resolve the frames of a new stack soon after it
 * appears (while the code is likely alive) and keep the strings; a frame whose code is gone
 * fails with -EINVAL or -EFAULT rather than naming another function.
 * Everything read is untrusted: lengths are bounded (MP_PYSTR_MAX_CHARS characters for a str,
 * MP_PYRESOLVE_MAX_TABLE bytes for a line table) and garbage gives an error, never a crash.
 */
#ifndef MP_PYRESOLVE_H
#define MP_PYRESOLVE_H

#include <stdint.h>

#include "pytarget.h"

/* Longest line table we read (the largest in CPython's own standard library is ~20 KiB). */
#define MP_PYRESOLVE_MAX_TABLE (1u << 20)

struct mp_pyresolver;

/* Where a frame is. The strings belong to the resolver (see mp_pyresolver__resolve()). */
struct mp_pyloc {
	const char *file; /* co_filename, UTF-8 (file names keep their raw bytes: mp_pystr__utf8) */
	const char *name; /* co_qualname (3.11+, e.g. "Class.method") or co_name */
	int line;	  /* 1-based; 0 when the instruction has no line (CPython: None) */
	int firstlineno;  /* co_firstlineno: the def line */
};

/*
 * mp_pyresolver__new - a resolver for target @t.
 * Takes: @t (borrowed: it must outlive the resolver). Returns: 0 and *@out, -EINVAL for a layout
 * whose offsets lie outside the object headers the resolver reads, or -ENOMEM.
 */
int mp_pyresolver__new(const struct mp_pytarget *t, struct mp_pyresolver **out);

/*
 * mp_pyresolver__resolve - where frame @f (as BPF recorded it: code address, instruction byte
 * offset, tag) is.
 * Takes: @f (read only). Fills @out.
 * Returns: 0; -ESTALE (the code object read live at that address is not the one the frame
 * ran: its tag differs; a frame with tag 0, or named from a snapshot, is not checked), -EINVAL
 * (not, or no longer, a code object, or its fields are not a str and bytes), -ERANGE (the instruction is outside its bytecode), -EFAULT
 * (unreadable), -ESRCH (the target is gone), -ENOMEM.
 * Owns: the strings in @out stay valid until mp_pyresolver__free(), even when the entry is
 * decoded again later.
 */
int mp_pyresolver__resolve(struct mp_pyresolver *r, const struct mp_pyframe *f,
			   struct mp_pyloc *out);

/*
 * mp_pyresolver__snapshot - keep snapshot @snap (@size bytes as the ring buffer gave it: a
 * struct mp_pycode_snap of bpf/pyframe.h, the line table's slot cut to its length) of one code
 * object: frames of that code and tag are then named from it, the live target being read only
 * for what it lacks, so they are named even after the code or the process is gone. A later
 * snapshot of the same code and tag replaces it.
 * Returns: 0, -EINVAL (a malformed record: its regions outside it), or -ENOMEM.
 * Owns: copies what it keeps.
 */
int mp_pyresolver__snapshot(struct mp_pyresolver *r, const struct mp_pycode_snap *snap,
			    size_t size);

/* Counters, for tests and reports. */
struct mp_pyresolver_stats {
	uint64_t lookups;  /* mp_pyresolver__resolve() calls */
	uint64_t decoded;  /* code objects decoded (first sight or changed) */
	uint64_t changed;  /* cached entries found replaced by another code object */
	uint64_t stale;	   /* frames whose code object is gone (-ESTALE) */
	uint64_t failures; /* calls that returned an error */
	uint64_t snapshots; /* code objects named from their snapshot */
};

/* mp_pyresolver__stats - copy @r's counters into @out. */
void mp_pyresolver__stats(const struct mp_pyresolver *r, struct mp_pyresolver_stats *out);

/* Accepts NULL. */
void mp_pyresolver__free(struct mp_pyresolver *r);

#endif

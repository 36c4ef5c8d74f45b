/*
 * mp_pytarget: a running CPython process, found and described from outside, for the BPF stack
 * walk (bpf/pyframe.bpf.h) and the resolver (user/pyresolve.h). Nothing is written into the
 * target and it is never stopped: the maps and ELF symbols come from /proc, the few words checked
 * come from process_vm_readv().
 *
 * Discovery: the interpreter is the libpython3.X shared object the process maps, else its
 * executable (a static build such as Debian's /usr/bin/python3.11); its ELF symbols give
 * _PyRuntime, PyCode_Type, PyFrame_Type, PyUnicode_Type, PyBytes_Type and, on 3.11+,
 * Py_Version (PY_VERSION_HEX); before 3.11 the minor version is read from the file name
 * (libpython3.X.so, python3.X). Addresses are moved by the file's load bias. On 3.13+ the
 * offsets come from _Py_DebugOffsets, the interpreter's own description of its structures at
 * the start of _PyRuntime, and the table (user/pylayout.h) is the cross-check; before, from the
 * table. Then the layout is checked on the live process: the type objects are named "code",
 * "str", "bytes" ("frame") with the expected sizes, the interpreter points back to _PyRuntime
 * (3.9+), its thread states point to it, one of them belongs to a thread of the process, and the
 * frames of the first thread with frames lead to code objects within bounds.
 */
#ifndef MP_PYTARGET_H
#define MP_PYTARGET_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/types.h>

#include "pyframe.h"
#include "pylayout.h"

struct mp_pytarget_opts {
	/*
	 * 0: detect the version. Otherwise read the target as 3.<force_minor> whatever it is, which
	 * only tests use, to see a wrong layout rejected by the live checks.
	 */
	unsigned int force_minor;
};

struct mp_pytarget {
	pid_t pid;
	unsigned int version_hex; /* PY_VERSION_HEX; before 3.11 only 3.X is known: 0x030X0000 */
	unsigned int minor;
	char elf_path[PATH_MAX];  /* the file holding the interpreter, as the target names it */
	uint64_t bias;		  /* its load bias in the target */
	uint64_t runtime;	  /* &_PyRuntime in the target */
	uint64_t code_type, frame_type, unicode_type, bytes_type; /* type objects (frame: < 3.11) */
	int debug_offsets;	  /* 1: offsets taken from _Py_DebugOffsets (3.13+) */
	/* 3.13+: fields where _Py_DebugOffsets and the table disagree (the former is used) */
	unsigned int table_mismatches;
	struct mp_pylayout layout; /* what the resolver uses: the table, or the debug offsets */
	struct mp_pyproc proc;	   /* what BPF uses: store it in mp_py_procs under the pid */
};

/*
 * mp_pytarget__open - find and check the CPython interpreter of process @pid.
 * Takes: @opts (NULL: defaults). On success *@out is a new target (free it with
 * mp_pytarget__free()); on failure *@out is NULL and *@why (if not NULL) a static one-line reason.
 * Returns: 0, or -ESRCH (no such process), -EPERM (cannot read it: not root?), -ENOEXEC (not a
 * Python process), -ENODATA (a Python binary without the symbols: stripped), -ENOTSUP (a version
 * other than 3.8-3.13, a free-threaded build, or 3.8-3.10 off x86-64), -EAGAIN (the interpreter
 * is not initialized yet, or its libpython not even mapped: try again), -EPROTO (the layout
 * check failed), -ENOMEM.
 */
int mp_pytarget__open(pid_t pid, const struct mp_pytarget_opts *opts, struct mp_pytarget **out,
		      const char **why);

/*
 * mp_pytarget__fork - the target of @pid, a child that @t's process forked without exec: the
 * same interpreter at the same addresses (a fork copies the address space). For a child that is
 * gone before it could be opened; BPF describes a forked child with its parent's mp_pyproc too.
 * Returns: 0 and a new target in *@out (free it with mp_pytarget__free()), or -ENOMEM.
 */
int mp_pytarget__fork(const struct mp_pytarget *t, pid_t pid, struct mp_pytarget **out);

/* Accepts NULL. */
void mp_pytarget__free(struct mp_pytarget *t);

/*
 * mp_pytarget__read - copy @len bytes at @addr of the target into @buf.
 * Returns: 0, -EFAULT (not all of it is mapped), -ESRCH (the target is gone), -EPERM.
 */
int mp_pytarget__read(const struct mp_pytarget *t, uint64_t addr, void *buf, size_t len);

#endif

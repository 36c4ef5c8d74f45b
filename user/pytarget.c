/*
 * Finding and checking the CPython interpreter of a running process (see pytarget.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "pytarget.h"

/* Live checks race with the running target (a frame popped while we read it): retry. */
#define CHECK_TRIES 5
/* Thread states the live check visits. */
#define CHECK_MAX_THREADS 1024
/* Frames of one thread the live check follows. */
#define CHECK_MAX_FRAMES 16

struct mapping {
	uint64_t start, end, offset;
	char path[PATH_MAX];
};

struct syms {
	uint64_t runtime, code_type, frame_type, unicode_type, bytes_type, py_version;
	uint64_t load_vaddr; /* page-aligned p_vaddr of the first PT_LOAD */
	int have_load;
	int needs_libpython; /* a DT_NEEDED libpython: the symbols are there once it is mapped */
};

int mp_pytarget__read(const struct mp_pytarget *t, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	ssize_t n;

	if (!len)
		return 0;
	if (!addr)
		return -EFAULT;
	n = process_vm_readv(t->pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return errno == EPERM || errno == ESRCH || errno == ENOMEM ? -errno : -EFAULT;
	return (size_t)n == len ? 0 : -EFAULT;
}

static int read_u64(const struct mp_pytarget *t, uint64_t addr, uint64_t *v)
{
	return mp_pytarget__read(t, addr, v, sizeof(*v));
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* "libpython3.11.so.1.0" -> 3, 11. Returns 1 if @name is a libpython at all. */
static int libpython_version(const char *name, unsigned int *major, unsigned int *minor)
{
	unsigned int a = 0, b = 0;

	if (strncmp(name, "libpython", 9) || !strstr(name, ".so"))
		return 0;
	if (sscanf(name + 9, "%u.%u", &a, &b) == 2) {
		*major = a;
		*minor = b;
	}
	return 1;
}

/* "python3.11" -> 3, 11; "python3" or "python" -> looks like Python, version unknown. */
static int exe_version(const char *name, unsigned int *major, unsigned int *minor)
{
	unsigned int a = 0, b = 0;

	if (strncmp(name, "python", 6))
		return 0;
	if (sscanf(name + 6, "%u.%u", &a, &b) == 2) {
		*major = a;
		*minor = b;
	}
	return 1;
}

/* A maps line: "start-end perms offset dev inode   path". Returns 0 when it has a path. */
static int parse_maps_line(const char *line, struct mapping *m)
{
	unsigned long long s, e, off;
	int pos = 0;
	size_t n;

	if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %n", &s, &e, &off, &pos) != 3 || !pos)
		return -1;
	line += pos;
	if (*line != '/')
		return -1;
	n = strcspn(line, "\n");
	if (n >= sizeof(m->path))
		return -1;
	memcpy(m->path, line, n);
	m->path[n] = 0;
	m->start = s;
	m->end = e;
	m->offset = off;
	return 0;
}

/*
 * The mapping (file offset 0) of the file holding the interpreter: a libpython if the process
 * maps one, else the executable. *@is_lib says which.
 */
static int find_interp_mapping(pid_t pid, struct mapping *out, int *is_lib)
{
	char path[64], exe[PATH_MAX], *line = NULL;
	struct mapping m, exe_map = { 0 };
	int found_lib = 0, found_exe = 0;
	unsigned int ma, mi;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	exe[n] = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while (getline(&line, &cap, f) > 0) {
		if (parse_maps_line(line, &m) || m.offset)
			continue;
		if (!found_lib && libpython_version(base_name(m.path), &ma, &mi)) {
			*out = m;
			found_lib = 1;
		}
		if (!found_exe && !strcmp(m.path, exe)) {
			exe_map = m;
			found_exe = 1;
		}
	}
	free(line);
	fclose(f);
	if (found_lib) {
		*is_lib = 1;
		return 0;
	}
	if (!found_exe)
		return -ENOEXEC; /* no file-backed executable mapping: a kernel thread or odd */
	*out = exe_map;
	*is_lib = 0;
	return 0;
}

/* Open the mapped file as the target sees it (its mount namespace; deleted files too). */
static int open_mapped(pid_t pid, const struct mapping *m)
{
	char path[PATH_MAX + 64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)pid,
		 (unsigned long long)m->start, (unsigned long long)m->end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	snprintf(path, sizeof(path), "/proc/%d/root%s", (int)pid, m->path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

static void take_sym(struct syms *s, const char *name, uint64_t value)
{
	static const struct {
		const char *name;
		size_t off;
	} want[] = {
		{ "_PyRuntime", offsetof(struct syms, runtime) },
		{ "PyCode_Type", offsetof(struct syms, code_type) },
		{ "PyFrame_Type", offsetof(struct syms, frame_type) },
		{ "PyUnicode_Type", offsetof(struct syms, unicode_type) },
		{ "PyBytes_Type", offsetof(struct syms, bytes_type) },
		{ "Py_Version", offsetof(struct syms, py_version) },
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		uint64_t *slot = (uint64_t *)((char *)s + want[i].off);

		if (!*slot && !strcmp(name, want[i].name))
			*slot = value;
	}
}

/* The symbols we need and the first loadable segment, from .dynsym and .symtab. */
static int read_syms(int fd, struct syms *s)
{
	Elf_Scn *scn = NULL;
	size_t nph, shstr;
	GElf_Ehdr eh;
	int err = 0;
	Elf *e;

	memset(s, 0, sizeof(*s));
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e)
		return -ENOEXEC;
	if (elf_kind(e) != ELF_K_ELF || gelf_getclass(e) != ELFCLASS64 || !gelf_getehdr(e, &eh) ||
	    elf_getphdrnum(e, &nph) || elf_getshdrstrndx(e, &shstr)) {
		err = -ENOEXEC;
		goto cleanup;
	}
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_LOAD) {
			s->load_vaddr = ph.p_vaddr & ~(uint64_t)(sysconf(_SC_PAGESIZE) - 1);
			s->have_load = 1;
			break;
		}
	}
	while ((scn = elf_nextscn(e, scn))) {
		Elf_Data *data = NULL;
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || !sh.sh_entsize)
			continue;
		if (sh.sh_type == SHT_DYNAMIC) {
			while ((data = elf_getdata(scn, data))) {
				for (size_t i = 0; i < data->d_size / sh.sh_entsize; i++) {
					GElf_Dyn dyn;
					const char *name;

					if (!gelf_getdyn(data, (int)i, &dyn) || dyn.d_tag != DT_NEEDED)
						continue;
					name = elf_strptr(e, sh.sh_link, dyn.d_un.d_val);
					if (name && !strncmp(name, "libpython", 9))
						s->needs_libpython = 1;
				}
			}
			continue;
		}
		if (sh.sh_type != SHT_DYNSYM && sh.sh_type != SHT_SYMTAB)
			continue;
		while ((data = elf_getdata(scn, data))) {
			size_t count = data->d_size / sh.sh_entsize;

			for (size_t i = 0; i < count; i++) {
				GElf_Sym sym;
				const char *name;

				if (!gelf_getsym(data, (int)i, &sym) || sym.st_shndx == SHN_UNDEF ||
				    !sym.st_value)
					continue;
				name = elf_strptr(e, sh.sh_link, sym.st_name);
				if (name && (name[0] == '_' || name[0] == 'P'))
					take_sym(s, name, sym.st_value);
			}
		}
	}
	if (!s->have_load)
		err = -ENOEXEC;
cleanup:
	elf_end(e);
	return err;
}

static int fits(uint64_t v)
{
	return v < (1u << 20); /* no CPython structure is a MiB large */
}

/*
 * 3.13+: the interpreter's own offsets. Fills t->layout from _Py_DebugOffsets and counts where
 * the table says otherwise.
 */
static int apply_debug_offsets(struct mp_pytarget *t, const struct mp_pylayout *table)
{
	struct mp_pydebug313 d;
	struct mp_pylayout *l = &t->layout;
	int err;

	err = mp_pytarget__read(t, t->runtime, &d, sizeof(d));
	if (err)
		return err;
	if (memcmp(d.cookie, MP_PYDEBUG_COOKIE, sizeof(d.cookie)) || d.version != t->version_hex)
		return -EPROTO;
	if (d.free_threaded)
		return -ENOTSUP;
	{
		const struct {
			int32_t *field;
			uint64_t value;
		} from[] = {
			{ &l->rt_interp_head, d.runtime_state.interpreters_head },
			{ &l->is_next, d.interpreter_state.next },
			{ &l->is_tstate_head, d.interpreter_state.threads_head },
			{ &l->ts_next, d.thread_state.next },
			{ &l->ts_interp, d.thread_state.interp },
			{ &l->ts_frame, d.thread_state.current_frame },
			{ &l->ts_thread_id, d.thread_state.thread_id },
			{ &l->ts_native_thread_id, d.thread_state.native_thread_id },
			{ &l->fr_back, d.interpreter_frame.previous },
			{ &l->fr_code, d.interpreter_frame.executable },
			{ &l->fr_instr, d.interpreter_frame.instr_ptr },
			{ &l->fr_owner, d.interpreter_frame.owner },
			{ &l->co_filename, d.code_object.filename },
			{ &l->co_name, d.code_object.name },
			{ &l->co_qualname, d.code_object.qualname },
			{ &l->co_linetable, d.code_object.linetable },
			{ &l->co_firstlineno, d.code_object.firstlineno },
			{ &l->co_code_adaptive, d.code_object.co_code_adaptive },
			{ &l->ob_type, d.pyobject.ob_type },
			{ &l->tp_name, d.type_object.tp_name },
			{ &l->b_size, d.bytes_object.ob_size },
			{ &l->b_sval, d.bytes_object.ob_sval },
			{ &l->u_state, d.unicode_object.state },
			{ &l->u_length, d.unicode_object.length },
			{ &l->u_ascii_size, d.unicode_object.asciiobject_size },
		};

		for (size_t i = 0; i < sizeof(from) / sizeof(from[0]); i++) {
			size_t off = (size_t)((char *)from[i].field - (char *)l);
			int32_t want = *(const int32_t *)((const char *)table + off);

			if (!fits(from[i].value))
				return -EPROTO;
			if ((int32_t)from[i].value != want)
				t->table_mismatches++;
			*from[i].field = (int32_t)from[i].value;
		}
	}
	/* the type's basicsize is the bytecode's offset (3.11+) */
	l->code_basicsize = l->co_code_adaptive;
	/*
	 * Not published, so not trusted across patch releases: the back link is not checked. The
	 * other fields the table alone gives are public-ABI structures (str, PyVarObject) or enum
	 * values, stable within a minor version.
	 */
	l->is_runtime = MP_PYL_NONE;
	l->rt_interp_main = MP_PYL_NONE;
	l->rt_main_thread = MP_PYL_NONE;
	t->debug_offsets = 1;
	return 0;
}

/* A type object named @name whose instances are @basicsize bytes. */
static int check_type(const struct mp_pytarget *t, uint64_t type, const char *name,
		      int32_t basicsize)
{
	const struct mp_pylayout *l = &t->layout;
	uint64_t tp_name;
	int64_t size;
	char buf[16] = { 0 };

	if (read_u64(t, type + l->tp_name, &tp_name) ||
	    mp_pytarget__read(t, type + l->tp_basicsize, &size, sizeof(size)))
		return -EPROTO;
	/* a name shorter than the buffer may end near the end of a mapping: read what is there */
	for (size_t n = sizeof(buf); n > 0; n /= 2)
		if (!mp_pytarget__read(t, tp_name, buf, n))
			break;
	if (strncmp(buf, name, sizeof(buf)) || buf[strlen(name)] != 0)
		return -EPROTO;
	if (basicsize != MP_PYL_NONE && size != basicsize)
		return -EPROTO;
	return 0;
}

static int task_exists(pid_t pid, uint64_t tid)
{
	char path[64];
	struct stat st;

	if (!tid || tid > 0x7fffffff)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%llu", (int)pid, (unsigned long long)tid);
	return !stat(path, &st);
}

/* Follow a few frames from @frame: each must lead to a code object, within its bytecode. */
static int check_frames(const struct mp_pytarget *t, uint64_t frame, int *seen)
{
	const struct mp_pylayout *l = &t->layout;

	for (int i = 0; i < CHECK_MAX_FRAMES && frame; i++) {
		uint64_t code, back, type, instr_ptr = 0, ncode;
		int32_t lasti = 0;
		int64_t instr, size;
		uint8_t owner = 0;

		if (read_u64(t, frame + l->fr_code, &code) ||
		    read_u64(t, frame + l->fr_back, &back))
			return -EPROTO;
		if (l->fr_owner != MP_PYL_NONE &&
		    mp_pytarget__read(t, frame + l->fr_owner, &owner, 1))
			return -EPROTO;
		if (l->owner_cstack != MP_PYL_NONE && owner == l->owner_cstack) {
			frame = back;
			continue;
		}
		if (l->fr_type != MP_PYL_NONE &&
		    (read_u64(t, frame + l->fr_type, &type) || type != t->frame_type))
			return -EPROTO;
		if (read_u64(t, code + l->ob_type, &type) || type != t->code_type)
			return -EPROTO;
		if (l->frame_kind == MP_PY_KIND_INTERPFRAME) {
			if (read_u64(t, frame + l->fr_instr, &instr_ptr) ||
			    mp_pytarget__read(t, code + l->co_size, &size, sizeof(size)))
				return -EPROTO;
			instr = (int64_t)(instr_ptr - code - (uint64_t)l->co_code_adaptive);
			ncode = (uint64_t)size * 2;
		} else {
			uint64_t bytes;

			if (mp_pytarget__read(t, frame + l->fr_instr, &lasti, sizeof(lasti)) ||
			    read_u64(t, code + l->co_code, &bytes) ||
			    read_u64(t, bytes + l->ob_type, &type) || type != t->bytes_type ||
			    mp_pytarget__read(t, bytes + l->b_size, &size, sizeof(size)))
				return -EPROTO;
			instr = (int64_t)lasti * l->lasti_scale;
			ncode = (uint64_t)size;
		}
		if (instr < -2 || (instr >= 0 && (uint64_t)instr >= ncode))
			return -EPROTO;
		(*seen)++;
		frame = back;
	}
	return 0;
}

/* One pass of the live checks of the thread states. */
static int check_threads(const struct mp_pytarget *t)
{
	const struct mp_pylayout *l = &t->layout;
	uint64_t interp, back, ts, main_thread = 0;
	int matched = 0, frames_seen = 0, err;

	if (read_u64(t, t->runtime + l->rt_interp_head, &interp))
		return -EPROTO;
	if (!interp)
		return -EAGAIN;
	if (l->is_runtime != MP_PYL_NONE &&
	    (read_u64(t, interp + l->is_runtime, &back) || back != t->runtime))
		return -EPROTO;
	if (!l->native_tid && (read_u64(t, t->runtime + l->rt_main_thread, &main_thread) ||
			       !main_thread))
		return -EPROTO;
	if (read_u64(t, interp + l->is_tstate_head, &ts))
		return -EPROTO;
	for (int i = 0; i < CHECK_MAX_THREADS && ts; i++) {
		uint64_t ts_interp, id, frame, next;

		if (read_u64(t, ts + l->ts_interp, &ts_interp) || ts_interp != interp ||
		    read_u64(t, ts + l->ts_next, &next))
			return -EPROTO;
		if (l->native_tid) {
			if (read_u64(t, ts + l->ts_native_thread_id, &id))
				return -EPROTO;
			matched |= task_exists(t->pid, id);
		} else {
			if (read_u64(t, ts + l->ts_thread_id, &id))
				return -EPROTO;
			matched |= id == main_thread;
		}
		if (!frames_seen) {
			if (read_u64(t, ts + l->ts_frame, &frame))
				return -EPROTO;
			if (frame && l->cf_current_frame != MP_PYL_NONE &&
			    read_u64(t, frame + l->cf_current_frame, &frame))
				return -EPROTO;
			err = check_frames(t, frame, &frames_seen);
			if (err)
				return err;
		}
		ts = next;
	}
	return matched ? 0 : -EPROTO;
}

static int live_checks(const struct mp_pytarget *t)
{
	const struct mp_pylayout *l = &t->layout;
	int err = 0;

	if (check_type(t, t->code_type, "code", l->code_basicsize) ||
	    check_type(t, t->unicode_type, "str", l->unicode_basicsize) ||
	    check_type(t, t->bytes_type, "bytes", MP_PYL_NONE) ||
	    (l->fr_type != MP_PYL_NONE &&
	     check_type(t, t->frame_type, "frame", l->frame_basicsize)))
		return -EPROTO;
	for (int i = 0; i < CHECK_TRIES; i++) {
		err = check_threads(t);
		if (err != -EPROTO)
			return err;
		usleep(1000);
	}
	return err;
}

/* A window covering fields (offset, size); their offsets inside it go to @rel. */
static int make_win(const int32_t *off, const int *size, __u16 **rel, int n, struct mp_pywin *w)
{
	int32_t lo = INT32_MAX, hi = 0;

	for (int i = 0; i < n; i++) {
		if (off[i] == MP_PYL_NONE)
			continue;
		if (off[i] < lo)
			lo = off[i];
		if (off[i] + size[i] > hi)
			hi = off[i] + size[i];
	}
	if (lo == INT32_MAX)
		return -EPROTO;
	lo &= ~7; /* keep pointer fields 8-aligned in the buffer */
	if (hi - lo > MP_PY_WIN_MAX || lo > 0xffff)
		return -EPROTO;
	w->off = (__u16)lo;
	w->len = (__u16)(hi - lo);
	for (int i = 0; i < n; i++)
		*rel[i] = off[i] == MP_PYL_NONE ? 0 : (__u16)(off[i] - lo);
	return 0;
}

static int fill_proc(struct mp_pytarget *t)
{
	const struct mp_pylayout *l = &t->layout;
	struct mp_pyproc *p = &t->proc;
	int32_t tid_off = l->native_tid ? l->ts_native_thread_id : l->ts_thread_id;
	int err;

	memset(p, 0, sizeof(*p));
	p->version_hex = t->version_hex;
	p->kind = l->frame_kind;
	p->flags = (l->native_tid ? MP_PYPROC_NATIVE_TID : 0) |
		   (l->cf_current_frame != MP_PYL_NONE ? MP_PYPROC_CFRAME : 0) |
		   (l->fr_owner != MP_PYL_NONE ? MP_PYPROC_HAS_OWNER : 0) |
		   (l->fr_type != MP_PYL_NONE ? MP_PYPROC_FRAME_TYPE : 0);
	p->interp_head_addr = t->runtime + (uint64_t)l->rt_interp_head;
	p->code_type = t->code_type;
	p->frame_type = l->fr_type != MP_PYL_NONE ? t->frame_type : 0;
	p->is_next = (__u32)l->is_next;
	p->is_tstate_head = (__u32)l->is_tstate_head;
	{
		int32_t off[] = { l->ts_next, tid_off, l->ts_frame };
		int size[] = { 8, 8, 8 };
		__u16 *rel[] = { &p->ts_next, &p->ts_tid, &p->ts_frame };

		err = make_win(off, size, rel, 3, &p->ts_win);
		if (err)
			return err;
	}
	{
		int instr_size = l->frame_kind == MP_PY_KIND_INTERPFRAME ? 8 : 4;
		int32_t off[] = { l->fr_back, l->fr_code, l->fr_instr, l->fr_owner, l->fr_type };
		int size[] = { 8, 8, instr_size, 1, 8 };
		__u16 *rel[] = { &p->fr_back, &p->fr_code, &p->fr_instr, &p->fr_owner,
				 &p->fr_type };

		err = make_win(off, size, rel, 5, &p->fr_win);
		if (err)
			return err;
	}
	p->cf_current_frame = l->cf_current_frame != MP_PYL_NONE ? (__u16)l->cf_current_frame : 0;
	p->owner_cstack = l->owner_cstack != MP_PYL_NONE ? (__u16)l->owner_cstack : 0xffff;
	p->lasti_scale = (__u16)l->lasti_scale;
	p->code_adaptive = l->co_code_adaptive != MP_PYL_NONE ? (__u16)l->co_code_adaptive : 0;
	{
		int32_t hdr = 24; /* ob_refcnt, ob_type, ob_size */

		if (l->co_filename + 8 > hdr)
			hdr = l->co_filename + 8;
		if (l->co_name + 8 > hdr)
			hdr = l->co_name + 8;
		if (l->co_firstlineno + 4 > hdr)
			hdr = l->co_firstlineno + 4;
		if (hdr > MP_PY_WIN_MAX)
			return -EPROTO;
		p->code_hdr = (__u16)hdr;
		p->co_filename = (__u16)l->co_filename;
		p->co_name = (__u16)l->co_name;
		p->co_firstlineno = (__u16)l->co_firstlineno;
	}
	/* the snapshot's fields (bpf/pyframe.h): all inside the code header it copies */
	if (l->code_basicsize < p->code_hdr || l->code_basicsize > MP_PY_SNAP_HDR ||
	    l->co_linetable < 0 || l->co_linetable + 8 > l->code_basicsize ||
	    (l->co_qualname != MP_PYL_NONE && l->co_qualname + 8 > l->code_basicsize) ||
	    (l->co_code != MP_PYL_NONE && l->co_code + 8 > l->code_basicsize) ||
	    l->b_size < 0 || l->b_size + 8 > MP_PY_SNAP_BYTES || l->b_sval < 0 ||
	    l->b_sval > MP_PY_SNAP_BYTES)
		return -EPROTO;
	p->code_basicsize = (__u16)l->code_basicsize;
	p->co_qualname = l->co_qualname != MP_PYL_NONE ? (__u16)l->co_qualname : 0xffff;
	p->co_linetable = (__u16)l->co_linetable;
	p->co_code = l->co_code != MP_PYL_NONE ? (__u16)l->co_code : 0xffff;
	p->b_size = (__u16)l->b_size;
	p->b_sval = (__u16)l->b_sval;
	return 0;
}

int mp_pytarget__open(pid_t pid, const struct mp_pytarget_opts *opts, struct mp_pytarget **out,
		      const char **why)
{
	const char *reason = "cannot read the process";
	unsigned int major = 0, minor = 0;
	const struct mp_pylayout *table;
	struct mp_pytarget *t = NULL;
	struct mapping map;
	struct syms s;
	int err, fd = -1, is_lib = 0, named;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t) {
		err = -ENOMEM;
		reason = "out of memory";
		goto cleanup;
	}
	t->pid = pid;
	err = find_interp_mapping(pid, &map, &is_lib);
	if (err) {
		reason = err == -ESRCH ? "no such process" :
			 err == -ENOEXEC ? "not a python process" : "cannot read the process maps";
		goto cleanup;
	}
	snprintf(t->elf_path, sizeof(t->elf_path), "%s", map.path);
	named = is_lib ? libpython_version(base_name(map.path), &major, &minor) :
			 exe_version(base_name(map.path), &major, &minor);
	fd = open_mapped(pid, &map);
	if (fd < 0) {
		err = fd;
		reason = "cannot open the interpreter's file";
		goto cleanup;
	}
	err = read_syms(fd, &s);
	if (err) {
		reason = named ? "cannot read the interpreter's ELF file" : "not a python process";
		goto cleanup;
	}
	if (!s.runtime && !is_lib && s.needs_libpython) {
		err = -EAGAIN; /* just exec'd: the dynamic loader has not mapped libpython yet */
		reason = "python is not initialized yet";
		goto cleanup;
	}
	if (!s.runtime && named && major && (major != 3 || !mp_pylayout__find(minor))) {
		err = -ENOTSUP; /* 2.7, 3.6 (3.7 has _PyRuntime and fails below) */
		reason = "unsupported python version (3.8 to 3.13 are supported)";
		goto cleanup;
	}
	if (!s.runtime) {
		err = named ? -ENODATA : -ENOEXEC;
		reason = named ? "stripped binary: no _PyRuntime symbol" : "not a python process";
		goto cleanup;
	}
	if (!s.code_type || !s.unicode_type || !s.bytes_type) {
		err = -ENODATA;
		reason = "stripped binary: no PyCode_Type, PyUnicode_Type or PyBytes_Type symbol";
		goto cleanup;
	}
	t->bias = map.start - s.load_vaddr;
	t->runtime = t->bias + s.runtime;
	t->code_type = t->bias + s.code_type;
	t->unicode_type = t->bias + s.unicode_type;
	t->bytes_type = t->bias + s.bytes_type;
	t->frame_type = s.frame_type ? t->bias + s.frame_type : 0;
	{
		uint64_t probe;

		err = read_u64(t, t->runtime, &probe);
		if (err) {
			reason = err == -EPERM ? "cannot read the process (not root?)" :
				 err == -ESRCH ? "no such process" :
						 "cannot read _PyRuntime in the process";
			goto cleanup;
		}
	}
	if (s.py_version) {
		uint64_t v;

		err = read_u64(t, t->bias + s.py_version, &v);
		if (err) {
			reason = err == -EPERM ? "cannot read the process (not root?)" :
						 "cannot read Py_Version in the process";
			goto cleanup;
		}
		t->version_hex = (unsigned int)v;
		major = (t->version_hex >> 24) & 0xff;
		minor = (t->version_hex >> 16) & 0xff;
	} else if (major) {
		t->version_hex = (major << 24) | (minor << 16);
	} else {
		err = -ENOTSUP;
		reason = "unknown python version: no Py_Version symbol, no version in the file name";
		goto cleanup;
	}
	if (opts && opts->force_minor)
		minor = opts->force_minor;
	t->minor = minor;
	table = major == 3 ? mp_pylayout__find(minor) : NULL;
	if (!table) {
		err = -ENOTSUP;
		reason = "unsupported python version (3.8 to 3.13 are supported)";
		goto cleanup;
	}
	t->layout = *table;
#if !defined(__x86_64__)
	if (!table->native_tid) {
		err = -ENOTSUP;
		reason = "python before 3.11 is only read on x86-64";
		goto cleanup;
	}
#endif
	if (table->fr_type != MP_PYL_NONE && !t->frame_type) {
		err = -ENODATA;
		reason = "stripped binary: no PyFrame_Type symbol";
		goto cleanup;
	}
	if (minor >= 13) {
		err = apply_debug_offsets(t, table);
		if (err) {
			reason = err == -ENOTSUP ? "free-threaded python builds are not supported" :
				 err == -EPERM	 ? "cannot read the process (not root?)" :
						   "python layout check failed: bad _Py_DebugOffsets";
			if (err != -ENOTSUP && err != -EPERM)
				err = -EPROTO;
			goto cleanup;
		}
	}
	err = live_checks(t);
	if (err && kill(pid, 0) && errno == ESRCH)
		err = -ESRCH; /* it exited while we read it */
	if (err) {
		reason = err == -EAGAIN ? "python is not initialized yet" :
			 err == -EPERM	? "cannot read the process (not root?)" :
			 err == -ESRCH	? "no such process" :
					  "python layout check failed";
		if (err != -EAGAIN && err != -EPERM && err != -ESRCH)
			err = -EPROTO;
		goto cleanup;
	}
	err = fill_proc(t);
	if (err) {
		reason = "python layout check failed: fields too far apart for one read";
		goto cleanup;
	}
	*out = t;
	t = NULL;
cleanup:
	if (fd >= 0)
		close(fd);
	free(t);
	if (err && why)
		*why = reason;
	return err;
}

int mp_pytarget__fork(const struct mp_pytarget *t, pid_t pid, struct mp_pytarget **out)
{
	struct mp_pytarget *c = malloc(sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	*c = *t; /* no pointers: every field is a value or an address in the target */
	c->pid = pid;
	*out = c;
	return 0;
}

void mp_pytarget__free(struct mp_pytarget *t)
{
	free(t);
}

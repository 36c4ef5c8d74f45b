/*
 * The kernel backend: loads bpf/mprof.bpf.c, tracks processes through its maps and turns its ring
 * buffer records into recorder points.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "backend.h"
#include "event.h"
#include "mprof.skel.h"

#define TRACEFS_MAGIC_NR 0x74726163 /* linux/magic.h TRACEFS_MAGIC */

struct kbackend {
	struct mp_backend base;
	struct mprof_bpf *skel;
	struct ring_buffer *rb;
	mp_event_fn fn; /* set during consume() for the callback */
	void *ctx;
	struct mp_clock clock;
	struct mp_backend_opts opts;
	uint64_t bad_records;
	int cb_err;
	struct mp_rss_page *page; /* mmap of the rss_page map, once shared */
	size_t page_len;
	int mounted_tracefs; /* we mounted it: unmount it when done */
	__u32 closed_epoch;  /* the window last closed by k_window() */
	/* the process table and the group sums, mapped (bpf/mprof.h) */
	struct mp_proc *tab;
	size_t tab_len;
	__u32 slots, shift;
	struct mp_group *grp;
	size_t grp_len;
	struct ring_buffer *lines_rb; /* --lines: new stacks announced (line_new) */
	unsigned int lines_seen;      /* announcements read by the last k_lines_poll() */
	int (*lines_fn)(void *ctx, pid_t pid, uint64_t stack); /* set during k_lines_poll() */
	int (*lines_code_fn)(void *ctx, pid_t pid, const struct mp_pycode_snap *snap, size_t size);
	void *lines_ctx;
};

/* libbpf's own messages are kept from the terminal: user/ never prints. */
static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct kbackend *k = ctx;
	struct mp_sample s;
	int err;

	if (mp_event__decode(data, size, &k->clock, &s)) {
		k->bad_records++;
		return 0;
	}
	if (!k->fn || k->cb_err)
		return 0;
	err = k->fn(k->ctx, &s);
	if (err)
		k->cb_err = err;
	return 0;
}

int mp_proc_rss(pid_t pid, uint64_t out[3])
{
	static const char *const keys[3] = { "RssFile:", "RssAnon:", "RssShmem:" };
	char path[64], line[256];
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	memset(out, 0, 3 * sizeof(*out));
	while (fgets(line, sizeof(line), f)) {
		for (int i = 0; i < 3; i++) {
			size_t n = strlen(keys[i]);
			unsigned long long kb;

			if (!strncmp(line, keys[i], n) && sscanf(line + n, "%llu", &kb) == 1) {
				out[i] = kb * 1024;
				found++;
			}
		}
	}
	fclose(f);
	/* kernel threads and zombies have no Rss lines: nothing resident */
	(void)found;
	return 0;
}

/* The slot of @tgid in the mapped table, or NULL (bpf/mprof.h, the same probing as BPF). */
static struct mp_proc *tab_find(const struct kbackend *k, __u32 tgid)
{
	__u32 h = mp_slot_hash(tgid, k->shift);

	for (__u32 i = 0; i < MP_PROBES; i++) {
		struct mp_proc *p = &k->tab[(h + i) & (k->slots - 1)];
		__u32 t = __atomic_load_n(&p->tgid, __ATOMIC_ACQUIRE);

		if (t == tgid)
			return p;
		if (t == MP_SLOT_EMPTY)
			return NULL;
	}
	return NULL;
}

/* Add @np for @tgid: claim a free slot, fill it, publish it. Returns 0, -EEXIST or -ENOSPC. */
static int tab_add(struct kbackend *k, __u32 tgid, const struct mp_proc *np)
{
	struct mp_stats *st = &k->skel->bss->stats;
	__u32 h = mp_slot_hash(tgid, k->shift);

	if (tab_find(k, tgid))
		return -EEXIST;
	if (__atomic_load_n(&st->live, __ATOMIC_RELAXED) >= k->skel->rodata->procs_cap)
		goto full;
	for (__u32 i = 0; i < MP_PROBES; i++) {
		struct mp_proc *p = &k->tab[(h + i) & (k->slots - 1)];
		__u32 t = __atomic_load_n(&p->tgid, __ATOMIC_ACQUIRE);

		if (t != MP_SLOT_EMPTY && t != MP_SLOT_DEAD)
			continue;
		if (!__atomic_compare_exchange_n(&p->tgid, &t, MP_SLOT_BUSY, false, __ATOMIC_ACQ_REL,
						 __ATOMIC_RELAXED))
			continue;
		__atomic_fetch_add(&st->live, 1, __ATOMIC_RELAXED);
		memcpy((char *)p + sizeof(p->tgid), (const char *)np + sizeof(np->tgid),
		       sizeof(*p) - sizeof(p->tgid));
		__atomic_store_n(&p->tgid, tgid, __ATOMIC_RELEASE);
		return 0;
	}
full:
	__atomic_fetch_add(&st->procs_dropped, 1, __ATOMIC_RELAXED);
	return -ENOSPC;
}

static int k_track(struct mp_backend *b, pid_t pid, unsigned int group, enum mp_track_mode mode)
{
	struct kbackend *k = (struct kbackend *)b;
	uint64_t bytes[3];
	struct mp_proc p = {};
	struct mp_group *g;
	char comm[MP_COMM_LEN + 8];
	char path[64];
	FILE *f;
	int err;

	if (group >= MP_MAX_GROUPS)
		return -EINVAL;
	p.group = group;
	p.peak_ts = mp_clock__now_mono_ns();
	if (mode == MP_TRACK_AT_EXEC) {
		/* nothing counts until the exec: the BPF exec program sets every value */
		p.flags = MP_PROC_EXEC_WAIT;
	} else {
		err = mp_proc_rss(pid, bytes);
		if (err)
			return err;
		/* the iterator (settle) or the next event re-sums every member exactly */
		p.flags = MP_PROC_FRESH;
		for (int i = 0; i < 3; i++) {
			p.member[i] = bytes[i] / k->clock.page_size;
			p.rss += p.member[i];
		}
		p.zz.dir = 1;
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		f = fopen(path, "re");
		if (f) {
			if (fgets(comm, sizeof(comm), f)) {
				comm[strcspn(comm, "\n")] = 0;
				snprintf(p.comm, sizeof(p.comm), "%.*s", MP_COMM_LEN - 1, comm);
			}
			fclose(f);
		}
	}
	p.peak = p.rss;
	p.zz.ext = p.rss;
	p.zz.ext_ts = p.peak_ts;
	err = tab_add(k, (__u32)pid, &p);
	if (err)
		return err;
	g = &k->grp[group];
	__atomic_fetch_add(&g->rss, (__s64)p.rss, __ATOMIC_RELAXED);
	__atomic_fetch_add(&g->nprocs, 1, __ATOMIC_RELAXED);
	if ((uint64_t)__atomic_load_n(&g->rss, __ATOMIC_RELAXED) > g->peak) {
		g->peak = (uint64_t)g->rss;
		g->peak_ts = p.peak_ts;
	}
	if (!g->zz.dir && mode == MP_TRACK_NOW) {
		g->zz.ext = (uint64_t)g->rss;
		g->zz.ext_ts = p.peak_ts;
		g->zz.dir = 1;
	}
	return 0;
}

static int k_fd(struct mp_backend *b)
{
	struct kbackend *k = (struct kbackend *)b;

	return ring_buffer__epoll_fd(k->rb);
}

static int k_consume(struct mp_backend *b, mp_event_fn fn, void *ctx)
{
	struct kbackend *k = (struct kbackend *)b;
	int n;

	k->fn = fn;
	k->ctx = ctx;
	n = ring_buffer__consume(k->rb);
	k->fn = NULL;
	k->ctx = NULL;
	if (n < 0 && n != -EINTR)
		return n;
	n = k->cb_err;
	k->cb_err = 0;
	return n;
}

static int k_refresh(struct mp_backend *b)
{
	(void)b;
	return 0; /* the maps are always current */
}

/* The top of a rise not yet reported, from a zig-zag state, in the view's units. */
static void view_rising(const struct kbackend *k, const struct mp_zigzag *zz, uint64_t now_pages,
			struct mp_view *v)
{
	v->rising = 0;
	v->rising_t = 0;
	if (zz->dir <= 0 || zz->ext <= now_pages)
		return;
	v->rising = zz->ext * k->clock.page_size;
	v->rising_t = mp_clock__epoch(&k->clock, zz->ext_ts);
}

static void proc_view(const struct kbackend *k, pid_t pid, const struct mp_proc *p,
		      struct mp_view *v)
{
	memset(v, 0, sizeof(*v));
	v->pid = pid;
	v->ppid = p->parent;
	v->group = p->group;
	v->started = !(p->flags & MP_PROC_EXEC_WAIT);
	v->rss = p->rss * k->clock.page_size;
	v->peak = p->peak * k->clock.page_size;
	v->peak_t = mp_clock__epoch(&k->clock, p->peak_ts);
	view_rising(k, &p->zz, p->rss, v);
	memcpy(v->comm, p->comm, MP_COMM_LEN);
	v->comm[MP_COMM_LEN] = 0;
	v->uid = p->uid;
	v->cgroup_id = p->cgroup_id;
	v->oom_kills = p->oom_kills;
	if (p->wtag[k->closed_epoch & 1] == k->closed_epoch) {
		v->window_max = p->wmax[k->closed_epoch & 1] * k->clock.page_size;
		v->window_seen = 1;
	}
}

static int k_proc(struct mp_backend *b, pid_t pid, struct mp_view *out)
{
	struct kbackend *k = (struct kbackend *)b;
	struct mp_proc *p = tab_find(k, (__u32)pid);
	struct mp_proc copy;

	if (!p)
		return -ESRCH;
	memcpy(&copy, p, sizeof(copy)); /* a consistent enough copy: BPF may be updating it */
	if (copy.tgid != (__u32)pid)
		return -ESRCH;
	proc_view(k, pid, &copy, out);
	return 0;
}

static int k_group(struct mp_backend *b, unsigned int group, struct mp_view *out)
{
	struct kbackend *k = (struct kbackend *)b;
	struct mp_group g;
	__u32 key = group;
	uint64_t v;

	if (group >= MP_MAX_GROUPS)
		return -EINVAL;
	(void)key;
	memcpy(&g, &k->grp[group], sizeof(g));
	v = g.rss < 0 ? 0 : g.rss;
	memset(out, 0, sizeof(*out));
	out->group = group;
	out->started = 1;
	out->rss = v * k->clock.page_size;
	out->peak = g.peak * k->clock.page_size;
	out->peak_t = mp_clock__epoch(&k->clock, g.peak_ts);
	view_rising(k, &g.zz, v, out);
	return 0;
}

static int k_each(struct mp_backend *b, unsigned int group, mp_view_fn fn, void *ctx)
{
	struct kbackend *k = (struct kbackend *)b;
	struct mp_proc copy;
	struct mp_view v;
	int err;

	/* the mapped table, read in place: no syscall whatever the number of processes */
	for (__u32 i = 0; i < k->slots; i++) {
		__u32 t = __atomic_load_n(&k->tab[i].tgid, __ATOMIC_ACQUIRE);

		if (t == MP_SLOT_EMPTY || t == MP_SLOT_DEAD || t == MP_SLOT_BUSY)
			continue;
		memcpy(&copy, &k->tab[i], sizeof(copy));
		if (copy.tgid != t || copy.group != group)
			continue; /* retired meanwhile, or another group's */
		if (tab_find(k, t) != &k->tab[i])
			continue; /* a second slot of a process two adders raced for: the first counts */
		proc_view(k, (pid_t)t, &copy, &v);
		err = fn(ctx, &v);
		if (err)
			return err;
	}
	return 0;
}

static void k_stats(struct mp_backend *b, struct mp_backend_stats *out)
{
	struct kbackend *k = (struct kbackend *)b;
	const struct mp_stats *s = &k->skel->bss->stats;

	out->events = s->events;
	out->lost = s->lost;
	out->procs_dropped = s->procs_dropped;
	out->bad_records = k->bad_records;
	out->oom_kills = s->oom_kills;
}

/* One pass of the task iterator in @mode; with @fn, each tgid it writes out. */
static int run_iter(struct kbackend *k, enum mp_iter_mode mode, int (*fn)(void *ctx, pid_t pid),
		    void *ctx)
{
	struct bpf_link *link;
	__u32 buf[256];
	int fd, err = 0;
	ssize_t n;

	k->skel->bss->iter_mode = mode;
	link = bpf_program__attach_iter(k->skel->progs.iter_task, NULL);
	if (!link)
		return -errno;
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	/* reading runs the program over every task; records are whole tgids */
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			err = -errno;
			break;
		}
		for (size_t i = 0; fn && !err && i < (size_t)n / sizeof(buf[0]); i++)
			err = fn(ctx, (pid_t)buf[i]);
		if (err)
			break;
	}
	close(fd);
out:
	bpf_link__destroy(link);
	k->skel->bss->iter_mode = MP_ITER_REFRESH;
	return err;
}

static int k_settle(struct mp_backend *b)
{
	struct kbackend *k = (struct kbackend *)b;

	if (!k->skel->rodata->exact_sums)
		return 0; /* classic tracepoint mode: the next event of each member is exact */
	return run_iter(k, MP_ITER_REFRESH, NULL, NULL);
}

static int k_discover(struct mp_backend *b, int (*fn)(void *ctx, pid_t pid), void *ctx)
{
	struct kbackend *k = (struct kbackend *)b;

	if (!k->opts.fleet)
		return -EINVAL;
	return run_iter(k, MP_ITER_DISCOVER, fn, ctx);
}

static int k_window(struct mp_backend *b)
{
	struct kbackend *k = (struct kbackend *)b;
	__u32 e = __atomic_load_n(&k->skel->bss->window_epoch, __ATOMIC_RELAXED);

	/* BPF writes the new epoch's slot from now on: the other one is the closed window */
	__atomic_store_n(&k->skel->bss->window_epoch, e + 1, __ATOMIC_SEQ_CST);
	k->closed_epoch = e;
	return 0;
}

static int k_rss_page_fd(struct mp_backend *b)
{
	struct kbackend *k = (struct kbackend *)b;

	return bpf_map__fd(k->skel->maps.rss_page);
}

static int k_share_rss(struct mp_backend *b, pid_t pid)
{
	struct kbackend *k = (struct kbackend *)b;
	long ps = sysconf(_SC_PAGESIZE);
	struct mp_proc *p = tab_find(k, (__u32)pid);

	if (!p)
		return -ESRCH;
	if (!k->page) {
		void *m;

		k->page_len = (sizeof(*k->page) + ps - 1) & ~(size_t)(ps - 1);
		m = mmap(NULL, k->page_len, PROT_READ | PROT_WRITE, MAP_SHARED,
			 bpf_map__fd(k->skel->maps.rss_page), 0);
		if (m == MAP_FAILED)
			return -errno;
		k->page = m;
	}
	memset((void *)k->page, 0, sizeof(*k->page));
	k->page->version = MP_RSS_PAGE_VERSION;
	k->page->tgid = (__u32)pid;
	k->page->scope = k->opts.include_children ? MP_PAGE_TREE : MP_PAGE_PROCESS;
	k->page->nslots = MP_RSS_PAGE_SLOTS;
	k->page->rss_bytes = p->rss * k->clock.page_size;
	if (k->opts.include_children) {
		struct mp_group *g = &k->grp[p->group];

		k->page->rss_bytes = (g->rss < 0 ? 0 : g->rss) * k->clock.page_size;
	}
	/* the hook checks the magic last: publish it after everything else */
	__atomic_store_n(&k->page->magic, MP_RSS_PAGE_MAGIC, __ATOMIC_RELEASE);
	__atomic_fetch_or(&p->flags, MP_PROC_PAGE, __ATOMIC_SEQ_CST);
	__atomic_store_n(&k->skel->bss->page_on, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static int k_lines_add(struct mp_backend *b, pid_t pid, const struct mp_pyproc *py)
{
	struct kbackend *k = (struct kbackend *)b;
	struct mp_proc *p = tab_find(k, (__u32)pid);
	__u32 key = pid;

	if (!k->opts.lines)
		return -EINVAL;
	if (!p)
		return -ESRCH;
	if (bpf_map_update_elem(bpf_map__fd(k->skel->maps.mp_py_procs), &key, py, BPF_ANY))
		return -errno;
	__atomic_fetch_or(&p->flags, MP_PROC_LINES, __ATOMIC_SEQ_CST);
	return 0;
}

/* Entries read per batch: a few syscalls for a run's few thousand stacks. */
#define LINES_BATCH 512

static int k_lines_each(struct mp_backend *b,
			int (*fn)(void *ctx, pid_t pid, uint64_t stack, const struct mp_line_val *v),
			void *ctx)
{
	struct kbackend *k = (struct kbackend *)b;
	int fd = bpf_map__fd(k->skel->maps.line_agg), err = 0;
	struct mp_line_key *keys = calloc(LINES_BATCH, sizeof(*keys));
	struct mp_line_val *vals = calloc(LINES_BATCH, sizeof(*vals));
	/* the batch token is the map's own (a bucket for a hash): room for a key is enough */
	struct mp_line_key in, out;
	bool first = true, done = false;

	if (!keys || !vals) {
		err = -ENOMEM;
		goto cleanup;
	}
	/* entries are never deleted while the run lasts: the walk is stable */
	while (!done && !err) {
		__u32 count = LINES_BATCH;
		int r = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys, vals, &count, NULL);

		if (r && errno != ENOENT) {
			err = -errno;
			break;
		}
		done = r != 0; /* ENOENT: the last batch (count may still be > 0) */
		for (__u32 i = 0; i < count && !err; i++)
			err = fn(ctx, (pid_t)keys[i].tgid, keys[i].stack, &vals[i]);
		in = out;
		first = false;
	}
cleanup:
	free(keys);
	free(vals);
	return err;
}

static int k_lines_stack(struct mp_backend *b, uint64_t id, struct mp_pystack *out)
{
	struct kbackend *k = (struct kbackend *)b;
	__u64 key = id;

	if (bpf_map_lookup_elem(bpf_map__fd(k->skel->maps.mp_py_stacks), &key, out))
		return -ENOENT;
	return 0;
}

static int on_line_new(void *ctx, void *data, size_t size)
{
	struct kbackend *k = ctx;
	struct mp_line_new rec;
	__u32 kind;

	if (size < sizeof(kind))
		return 0;
	memcpy(&kind, data, sizeof(kind));
	/* a negative return stops ring_buffer__consume() with that error */
	if (kind == MP_LINE_REC_CODE && size >= offsetof(struct mp_pycode_snap, data)) {
		const struct mp_pycode_snap *snap = data;

		return k->lines_code_fn ? k->lines_code_fn(k->lines_ctx, (pid_t)snap->tgid, snap,
							   size) :
					  0;
	}
	if (kind != MP_LINE_REC_STACK || size < sizeof(rec))
		return 0;
	memcpy(&rec, data, sizeof(rec));
	k->lines_seen++;
	return k->lines_fn ? k->lines_fn(k->lines_ctx, (pid_t)rec.tgid, rec.stack) : 0;
}

static int k_lines_fd(struct mp_backend *b)
{
	struct kbackend *k = (struct kbackend *)b;

	return k->lines_rb ? ring_buffer__epoll_fd(k->lines_rb) : -1;
}

static int k_lines_poll(struct mp_backend *b, int (*fn)(void *ctx, pid_t pid, uint64_t stack),
			int (*code)(void *ctx, pid_t pid, const struct mp_pycode_snap *snap,
				    size_t size),
			void *ctx)
{
	struct kbackend *k = (struct kbackend *)b;
	int n;

	if (!k->lines_rb)
		return 0;
	k->lines_seen = 0;
	k->lines_fn = fn;
	k->lines_code_fn = code;
	k->lines_ctx = ctx;
	n = ring_buffer__consume(k->lines_rb);
	k->lines_fn = NULL;
	k->lines_code_fn = NULL;
	if (n < 0)
		return n;
	return (int)k->lines_seen;
}

static void k_lines_stats(struct mp_backend *b, struct mp_pystats *out, uint64_t *dropped,
			  uint64_t *unannounced)
{
	struct kbackend *k = (struct kbackend *)b;
	int ncpus = libbpf_num_possible_cpus();
	struct mp_py_scratch *all;
	__u32 zero = 0;

	memset(out, 0, sizeof(*out));
	*dropped = k->skel->bss->stats.lines_dropped;
	*unannounced = k->skel->bss->stats.lines_new_lost;
	if (ncpus <= 0)
		return;
	/* per-CPU values come one after another, each rounded up to 8 bytes */
	size_t stride = (sizeof(*all) + 7) & ~(size_t)7;
	char *buf = calloc(ncpus, stride);

	if (!buf)
		return;
	if (!bpf_map_lookup_elem(bpf_map__fd(k->skel->maps.mp_py_scratch), &zero, buf)) {
		for (int c = 0; c < ncpus; c++) {
			all = (struct mp_py_scratch *)(buf + (size_t)c * stride);
			const __u64 *src = (const __u64 *)&all->stats;
			__u64 *dst = (__u64 *)out;

			for (size_t i = 0; i < sizeof(*out) / sizeof(__u64); i++)
				dst[i] += src[i];
		}
	}
	free(buf);
}

static void k_free(struct mp_backend *b)
{
	struct kbackend *k = (struct kbackend *)b;

	if (!k)
		return;
	if (k->page)
		munmap(k->page, k->page_len);
	ring_buffer__free(k->rb);
	ring_buffer__free(k->lines_rb);
	mprof_bpf__destroy(k->skel);
	/* lazily: another tracer may have opened it since */
	if (k->mounted_tracefs)
		umount2("/sys/kernel/tracing", MNT_DETACH);
	if (k->tab)
		munmap(k->tab, k->tab_len);
	if (k->grp)
		munmap(k->grp, k->grp_len);
	free(k);
}

/* The classic tracepoint is attached through tracefs: mount it where libbpf looks if absent. */
static int ensure_tracefs(struct kbackend *k)
{
	struct statfs sf;

	if (!access("/sys/kernel/debug/tracing/events", F_OK))
		return 0;
	if (!statfs("/sys/kernel/tracing", &sf) && sf.f_type == TRACEFS_MAGIC_NR)
		return 0;
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL))
		return -errno;
	k->mounted_tracefs = 1;
	return 0;
}

/*
 * mark_victim has passed the task since v6.8 (commit 72ba14deb40a, "mm: oom: add task to the
 * mark_victim tracepoint"); before, only its pid, which the program does not handle: there, the
 * load fails with it and is tried again without it (probing vmlinux's BTF for the prototype
 * would parse it a second time, ~30 ms of every start-up).
 */
/* Open, configure, load and attach the BPF object with one of the two rss_stat programs. */
static int load_skel(struct kbackend *k, int ncpus, int use_tp, int oom, const char **reason)
{
	double g = k->opts.granularity_mib;
	uint64_t pages;
	int err;

	/* the caller bounds it; a value out of range must still not overflow the conversion */
	if (!(g > 0) || g > 1048576.0)
		g = 1.0;
	pages = (uint64_t)(g * 1048576.0 / k->clock.page_size);

	k->skel = mprof_bpf__open();
	if (!k->skel) {
		*reason = "cannot open the BPF object";
		return -errno;
	}
	k->skel->rodata->nr_cpus = ncpus;
	k->skel->rodata->track_groups = k->opts.include_children;
	k->skel->rodata->exact_sums = !use_tp;
	k->skel->rodata->page_shift = __builtin_ctzll(k->clock.page_size);
	k->skel->rodata->granularity = pages ? pages : 1;
	if (k->opts.ringbuf_kib) {
		err = bpf_map__set_max_entries(k->skel->maps.events, k->opts.ringbuf_kib * 1024);
		if (err) {
			*reason = "invalid ring buffer size";
			return err;
		}
	}
	bpf_program__set_autoload(k->skel->progs.on_rss_stat, !use_tp && !k->opts.floor);
	bpf_program__set_autoload(k->skel->progs.on_rss_stat_floor, !use_tp && k->opts.floor);
	bpf_program__set_autoload(k->skel->progs.on_rss_stat_tp, use_tp);
	/* the iterator needs the exact sums' helpers and is run on demand, never attached */
	bpf_program__set_autoload(k->skel->progs.iter_task, !use_tp);
	bpf_program__set_autoattach(k->skel->progs.iter_task, false);
	bpf_program__set_autoload(k->skel->progs.on_oom_victim, oom);
	k->skel->rodata->track_window = k->opts.window;
	k->skel->rodata->py_lines = k->opts.lines;
	if (!k->opts.lines) {
		/* the stack walk's maps are not used: one entry each instead of megabytes */
		if (bpf_map__set_max_entries(k->skel->maps.line_agg, 1) ||
		    bpf_map__set_max_entries(k->skel->maps.line_new, getpagesize()) ||
		    bpf_map__set_max_entries(k->skel->maps.mp_py_stacks, 1) ||
		    bpf_map__set_max_entries(k->skel->maps.mp_py_procs, 1) ||
		    /* an LRU hash keeps a free list per CPU: at least one entry each */
		    bpf_map__set_max_entries(k->skel->maps.mp_py_sent, (__u32)ncpus)) {
			*reason = "cannot size the line attribution maps";
			return -EINVAL;
		}
	}
	k->skel->rodata->page_tree = k->opts.include_children;
	{
		/* twice as many slots as processes, a power of two, so probes stay short */
		__u32 cap = k->opts.max_procs ? k->opts.max_procs : MP_MAX_PROCS, slots = 16;

		if (cap > MP_PROCS_LIMIT)
			cap = MP_PROCS_LIMIT;
		while (slots < 2 * cap)
			slots *= 2;
		k->slots = slots;
		k->shift = 32 - __builtin_ctz(slots);
		k->skel->rodata->procs_cap = cap;
		k->skel->rodata->procs_mask = slots - 1;
		k->skel->rodata->procs_shift = k->shift;
		err = bpf_map__set_max_entries(k->skel->maps.procs, slots);
		if (err) {
			*reason = "invalid process table size";
			return err;
		}
	}
	if (k->opts.fleet) {
		const struct mp_selectors *sel = k->opts.fleet;

		k->skel->rodata->fleet = true;
		k->skel->rodata->sel_flags = sel->flags;
		memcpy((char *)k->skel->rodata->sel_name, sel->name, MP_COMM_LEN);
		k->skel->rodata->sel_name_len = strnlen(sel->name, MP_COMM_LEN);
		k->skel->rodata->sel_cgroup_id = sel->cgroup_id;
		k->skel->rodata->sel_cgroup_level = sel->cgroup_level;
		k->skel->rodata->sel_uid = sel->uid;
	}
	k->base.method = use_tp ? "tracepoint/kmem/rss_stat" : "tp_btf/rss_stat";
	if (use_tp) {
		err = ensure_tracefs(k);
		if (err) {
			*reason = "tracefs is not mounted and cannot be mounted";
			return err;
		}
	}
	err = mprof_bpf__load(k->skel);
	if (err) {
		*reason = err == -EPERM ? "permission denied loading BPF programs"
					: "the kernel refused the BPF programs";
		return err;
	}
	if (k->opts.fleet) {
		for (size_t i = 0; i < k->opts.fleet->npids; i++) {
			__u32 key = k->opts.fleet->pids[i], one = 1;

			if (bpf_map_update_elem(bpf_map__fd(k->skel->maps.sel_pids), &key, &one, 0)) {
				*reason = "too many pids for the fleet's list (at most 4096)";
				return -errno;
			}
		}
	}
	if (k->tab) /* a previous try's */
		munmap(k->tab, k->tab_len);
	if (k->grp)
		munmap(k->grp, k->grp_len);
	k->tab = NULL;
	k->grp = NULL;
	k->tab_len = ((size_t)k->slots * sizeof(struct mp_proc) + 4095) & ~(size_t)4095;
	k->tab = mmap(NULL, k->tab_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		      bpf_map__fd(k->skel->maps.procs), 0);
	if (k->tab == MAP_FAILED) {
		k->tab = NULL;
		*reason = "cannot map the process table";
		return -errno;
	}
	k->grp_len = (MP_MAX_GROUPS * sizeof(struct mp_group) + 4095) & ~(size_t)4095;
	k->grp = mmap(NULL, k->grp_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		      bpf_map__fd(k->skel->maps.groups), 0);
	if (k->grp == MAP_FAILED) {
		k->grp = NULL;
		*reason = "cannot map the group sums";
		return -errno;
	}
	err = mprof_bpf__attach(k->skel);
	if (err) {
		*reason = "cannot attach the BPF programs to the tracepoints";
		return err;
	}
	return 0;
}

int mp_backend_kernel__new(struct mp_backend **out, const struct mp_backend_opts *opts,
			   const char **why)
{
	struct kbackend *k;
	int err, ncpus, use_tp;
	const char *reason = NULL;

	libbpf_set_print(opts->libbpf_log ? opts->libbpf_log : quiet_print);
	if (geteuid() != 0) {
		/* CAP_BPF + CAP_PERFMON would do too; the loader then sees EPERM below */
		reason = "not running as root";
	} else if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		reason = "the kernel has no BTF (/sys/kernel/btf/vmlinux)";
	}
	if (reason) {
		if (why)
			*why = reason;
		return -EPERM;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->opts = *opts;
	err = mp_clock__init(&k->clock);
	if (err) {
		reason = "cannot read the clocks";
		goto fail;
	}
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0) {
		err = ncpus ? ncpus : -EINVAL;
		reason = "cannot count the possible CPUs";
		goto fail;
	}
	/*
	 * tp_btf with our own exact per-CPU sum first (cheapest, see bpf/mprof.bpf.c); if the
	 * kernel refuses it, the classic tracepoint, exact by the kernel's own locked sum.
	 */
	use_tp = opts->force_tracepoint || ncpus > MP_MAX_CPUS;
	{
		/* best first: tp_btf and OOM victims; tp_btf alone (before v6.8); the tracepoint */
		static const int tries[3][2] = { { 0, 1 }, { 0, 0 }, { 1, 0 } };

		/* only tp_btf charges lines: with --lines the tracepoint would drop them unsaid */
		int last = opts->lines ? 2 : 3;

		err = -EINVAL;
		if (opts->lines && use_tp)
			reason = "line attribution needs tp_btf/rss_stat, not the tracepoint";
		for (int i = use_tp ? 2 : 0; i < last; i++) {
			mprof_bpf__destroy(k->skel);
			k->skel = NULL;
			err = load_skel(k, ncpus, tries[i][0], tries[i][1], &reason);
			if (!err || err == -ENOMEM)
				break;
		}
	}
	if (err)
		goto fail;
	k->rb = ring_buffer__new(bpf_map__fd(k->skel->maps.events), on_record, k, NULL);
	if (!k->rb) {
		err = -errno;
		reason = "cannot set up the ring buffer";
		goto fail;
	}
	if (opts->lines) {
		k->lines_rb = ring_buffer__new(bpf_map__fd(k->skel->maps.line_new), on_line_new, k,
					       NULL);
		if (!k->lines_rb) {
			err = -errno;
			reason = "cannot set up the ring buffer";
			goto fail;
		}
	}
	k->base.name = "kernel";
	k->base.track = k_track;
	k->base.fd = k_fd;
	k->base.consume = k_consume;
	k->base.refresh = k_refresh;
	k->base.proc = k_proc;
	k->base.group = k_group;
	k->base.each = k_each;
	k->base.stats = k_stats;
	k->base.settle = k_settle;
	k->base.discover = k_discover;
	k->base.window = k_window;
	if (opts->lines) {
		k->base.lines_add = k_lines_add;
		k->base.lines_each = k_lines_each;
		k->base.lines_stack = k_lines_stack;
		k->base.lines_stats = k_lines_stats;
		k->base.lines_fd = k_lines_fd;
		k->base.lines_poll = k_lines_poll;
	}
	k->base.free = k_free;
	k->base.rss_page_fd = k_rss_page_fd;
	k->base.share_rss = k_share_rss;
	*out = &k->base;
	return 0;
fail:
	if (why)
		*why = reason;
	k_free(&k->base);
	return err < 0 ? err : -EINVAL;
}

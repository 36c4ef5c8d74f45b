/*
 * The kernel backend: loads bpf/mprof.bpf.c, tracks processes through its maps and turns its ring
 * buffer records into recorder points.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
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
	struct mp_recorder *rec; /* set during wait() and finish() for the callback */
	struct mp_clock clock;
	struct mp_backend_opts opts;
	uint64_t prev_tick_ns; /* monotonic time of the previous tick */
	uint64_t bad_records;
	int cb_err;
	struct mp_rss_page *page; /* mmap of the rss_page map, once shared */
	size_t page_len;
	struct bpf_link **links; /* USDT attachments */
	size_t nlinks;
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
	if (!k->rec)
		return 0;
	err = mp_recorder__on_sample(k->rec, &s);
	if (err && !k->cb_err)
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

static int k_track(struct mp_backend *b, pid_t pid, unsigned int group)
{
	struct kbackend *k = (struct kbackend *)b;
	uint64_t bytes[3];
	struct mp_proc p = {};
	struct mp_group g;
	__u32 key = pid, gkey = group;
	int err;

	if (group >= MP_MAX_GROUPS)
		return -EINVAL;
	err = mp_proc_rss(pid, bytes);
	if (err)
		return err;
	p.group = group;
	/* the next kernel event re-sums every member exactly; /proc is the start value */
	p.flags = MP_PROC_FRESH;
	for (int i = 0; i < 3; i++) {
		p.member[i] = bytes[i] / k->clock.page_size;
		p.rss += p.member[i];
	}
	p.peak = p.rss;
	p.peak_ts = mp_clock__now_mono_ns();
	p.zz.dir = 1;
	p.zz.ext = p.rss;
	p.zz.ext_ts = p.peak_ts;
	if (bpf_map_update_elem(bpf_map__fd(k->skel->maps.procs), &key, &p, BPF_NOEXIST))
		return -errno;
	if (bpf_map_lookup_elem_flags(bpf_map__fd(k->skel->maps.groups), &gkey, &g, 0))
		return -errno;
	g.rss += p.rss;
	g.nprocs++;
	if ((uint64_t)g.rss > g.peak) {
		g.peak = g.rss;
		g.peak_ts = p.peak_ts;
	}
	if (!g.zz.dir) {
		g.zz.dir = 1;
		g.zz.ext = g.rss;
		g.zz.ext_ts = p.peak_ts;
	}
	if (bpf_map_update_elem(bpf_map__fd(k->skel->maps.groups), &gkey, &g, 0))
		return -errno;
	return 0;
}

static int k_wait(struct mp_backend *b, int timeout_ms, struct mp_recorder *rec)
{
	struct kbackend *k = (struct kbackend *)b;
	int n;

	k->rec = rec;
	n = ring_buffer__poll(k->rb, timeout_ms);
	k->rec = NULL;
	if (n < 0 && n != -EINTR)
		return n;
	n = k->cb_err;
	k->cb_err = 0;
	return n;
}

/* A turning point still being formed: written at a tick so a rise that never fell far is kept. */
static int pending_max(const struct kbackend *k, const struct mp_zigzag *zz, uint64_t now_pages,
		       uint64_t *pages, double *t)
{
	if (zz->dir <= 0 || zz->ext <= now_pages || zz->ext_ts <= k->prev_tick_ns)
		return 0;
	*pages = zz->ext;
	*t = mp_clock__epoch(&k->clock, zz->ext_ts);
	return 1;
}

static int k_tick(struct mp_backend *b, pid_t root, unsigned int group, struct mp_recorder *rec)
{
	struct kbackend *k = (struct kbackend *)b;
	int pfd = bpf_map__fd(k->skel->maps.procs);
	uint64_t ps = k->clock.page_size, now_ns = mp_clock__now_mono_ns(), ext;
	double now = mp_clock__epoch(&k->clock, now_ns), ext_t;
	__u32 key, next, *prev = NULL;
	struct mp_proc p;
	int err = 0;

	if (k->opts.include_children) {
		struct mp_group g;
		__u32 gkey = group;
		uint64_t v;

		if (bpf_map_lookup_elem_flags(bpf_map__fd(k->skel->maps.groups), &gkey, &g,
					      0))
			return -errno;
		v = g.rss < 0 ? 0 : g.rss;
		if (pending_max(k, &g.zz, v, &ext, &ext_t))
			err = mp_recorder__mem(rec, ext_t, ext * ps);
		if (!err)
			err = mp_recorder__mem(rec, now, v * ps);
	} else {
		key = root;
		if (!bpf_map_lookup_elem_flags(pfd, &key, &p, 0)) {
			if (pending_max(k, &p.zz, p.rss, &ext, &ext_t))
				err = mp_recorder__mem(rec, ext_t, ext * ps);
			if (!err)
				err = mp_recorder__mem(rec, now, p.rss * ps);
		}
	}
	if (!k->opts.multiprocess || err)
		goto out;
	while (!err && !bpf_map_get_next_key(pfd, prev, &next)) {
		key = next;
		prev = &key;
		if ((pid_t)key == root || bpf_map_lookup_elem_flags(pfd, &key, &p, 0) ||
		    p.group != group)
			continue;
		if (pending_max(k, &p.zz, p.rss, &ext, &ext_t))
			err = mp_recorder__chld(rec, key, ext_t, ext * ps);
		if (!err)
			err = mp_recorder__chld(rec, key, now, p.rss * ps);
	}
out:
	k->prev_tick_ns = now_ns;
	return err;
}

static int k_finish(struct mp_backend *b, pid_t root, unsigned int group, struct mp_recorder *rec)
{
	struct kbackend *k = (struct kbackend *)b;
	int pfd = bpf_map__fd(k->skel->maps.procs);
	uint64_t ps = k->clock.page_size;
	__u32 key, next, *prev = NULL;
	struct mp_proc p;
	int err;

	k->rec = rec;
	err = ring_buffer__consume(k->rb);
	k->rec = NULL;
	if (err < 0)
		return err;
	if (k->cb_err)
		return k->cb_err;
	if (k->opts.include_children) {
		struct mp_group g;
		__u32 gkey = group;

		if (bpf_map_lookup_elem_flags(bpf_map__fd(k->skel->maps.groups), &gkey, &g,
					      0))
			return -errno;
		err = mp_recorder__mem_peak(rec, mp_clock__epoch(&k->clock, g.peak_ts),
					    g.peak * ps);
		if (err)
			return err;
	}
	/* processes still alive (timeout, or descendants outliving the root) */
	while (!bpf_map_get_next_key(pfd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem_flags(pfd, &key, &p, 0) || p.group != group)
			continue;
		if ((pid_t)key == root && !k->opts.include_children)
			err = mp_recorder__mem_peak(rec, mp_clock__epoch(&k->clock, p.peak_ts),
						    p.peak * ps);
		else if ((pid_t)key != root)
			err = mp_recorder__chld_peak(rec, key, mp_clock__epoch(&k->clock, p.peak_ts),
						     p.peak * ps);
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
}

static int k_rss_page_fd(struct mp_backend *b)
{
	struct kbackend *k = (struct kbackend *)b;

	return bpf_map__fd(k->skel->maps.rss_page);
}

static int k_share_rss(struct mp_backend *b, pid_t pid)
{
	struct kbackend *k = (struct kbackend *)b;
	int pfd = bpf_map__fd(k->skel->maps.procs);
	long ps = sysconf(_SC_PAGESIZE);
	struct mp_proc p;
	__u32 key = pid;

	if (bpf_map_lookup_elem(pfd, &key, &p))
		return -errno;
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
	k->page->nslots = MP_RSS_PAGE_SLOTS;
	k->page->rss_bytes = p.rss * k->clock.page_size;
	/* the hook checks the magic last: publish it after everything else */
	__atomic_store_n(&k->page->magic, MP_RSS_PAGE_MAGIC, __ATOMIC_RELEASE);
	p.flags |= MP_PROC_PAGE;
	if (bpf_map_update_elem(pfd, &key, &p, BPF_EXIST))
		return -errno;
	return 0;
}

static int attach_usdt(struct kbackend *k, struct bpf_program *prog, pid_t pid, const char *path,
		       const char *probe)
{
	struct bpf_link **nl, *l;

	l = bpf_program__attach_usdt(prog, pid, path, "mprof", probe, NULL);
	if (!l)
		return -errno;
	nl = realloc(k->links, (k->nlinks + 1) * sizeof(*nl));
	if (!nl) {
		bpf_link__destroy(l);
		return -ENOMEM;
	}
	k->links = nl;
	k->links[k->nlinks++] = l;
	return 0;
}

static int k_listen_hook(struct mp_backend *b, pid_t pid, const char *dir)
{
	struct kbackend *k = (struct kbackend *)b;
	struct dirent *de;
	int n = 0, err = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return -errno;
	while (!err && (de = readdir(d))) {
		char path[4096];
		size_t len = strlen(de->d_name);

		/* one _mprof_hook.<abi>.so per interpreter; the child loads one of them */
		if (strncmp(de->d_name, "_mprof_hook", 11) || len < 3 ||
		    strcmp(de->d_name + len - 3, ".so"))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
			continue;
		err = attach_usdt(k, k->skel->progs.on_func_entry, pid, path, "func_entry");
		if (!err)
			err = attach_usdt(k, k->skel->progs.on_func_exit, pid, path, "func_exit");
		if (!err)
			err = attach_usdt(k, k->skel->progs.on_timestamp, pid, path, "timestamp");
		if (!err)
			n++;
	}
	closedir(d);
	return err ? err : n;
}

static void k_free(struct mp_backend *b)
{
	struct kbackend *k = (struct kbackend *)b;

	if (!k)
		return;
	for (size_t i = 0; i < k->nlinks; i++)
		bpf_link__destroy(k->links[i]);
	free(k->links);
	if (k->page)
		munmap(k->page, k->page_len);
	ring_buffer__free(k->rb);
	mprof_bpf__destroy(k->skel);
	free(k);
}

/* The classic tracepoint is attached through tracefs: mount it where libbpf looks if absent. */
static int ensure_tracefs(void)
{
	struct statfs sf;

	if (!access("/sys/kernel/debug/tracing/events", F_OK))
		return 0;
	if (!statfs("/sys/kernel/tracing", &sf) && sf.f_type == TRACEFS_MAGIC_NR)
		return 0;
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL))
		return -errno;
	return 0;
}

/* Open, configure, load and attach the BPF object with one of the two rss_stat programs. */
static int load_skel(struct kbackend *k, int ncpus, int use_tp, const char **reason)
{
	double g = k->opts.granularity_mib > 0 ? k->opts.granularity_mib : 1.0;
	uint64_t pages = (uint64_t)(g * 1048576.0 / k->clock.page_size);
	int err;

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
	bpf_program__set_autoload(k->skel->progs.on_rss_stat, !use_tp);
	bpf_program__set_autoload(k->skel->progs.on_rss_stat_tp, use_tp);
	k->base.method = use_tp ? "tracepoint/kmem/rss_stat" : "tp_btf/rss_stat";
	if (use_tp) {
		err = ensure_tracefs();
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
	err = load_skel(k, ncpus, use_tp, &reason);
	if (err && !use_tp) {
		mprof_bpf__destroy(k->skel);
		k->skel = NULL;
		err = load_skel(k, ncpus, 1, &reason);
	}
	if (err)
		goto fail;
	k->rb = ring_buffer__new(bpf_map__fd(k->skel->maps.events), on_record, k, NULL);
	if (!k->rb) {
		err = -errno;
		reason = "cannot set up the ring buffer";
		goto fail;
	}
	k->prev_tick_ns = mp_clock__now_mono_ns();
	k->base.name = "kernel";
	k->base.track = k_track;
	k->base.wait = k_wait;
	k->base.tick = k_tick;
	k->base.finish = k_finish;
	k->base.stats = k_stats;
	k->base.free = k_free;
	k->base.rss_page_fd = k_rss_page_fd;
	k->base.share_rss = k_share_rss;
	k->base.listen_hook = k_listen_hook;
	*out = &k->base;
	return 0;
fail:
	if (why)
		*why = reason;
	k_free(&k->base);
	return err < 0 ? err : -EINVAL;
}

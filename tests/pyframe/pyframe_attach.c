/*
 * pyframe_attach: the test driver of bpf/pyframe.bpf.h and user/py*.c. Attaches to a running
 * CPython process (nothing injected, never stopped), charges each RSS change of it to the Python
 * stack of the thread that made it, and prints the totals per stack with the frames resolved.
 *
 *   pyframe_attach [-m walk|nowalk|full|reads] [-V MINOR] [-s] [-F N] PID
 *
 * Runs until its stdin ends or the target exits. -m chooses the program's mode (pyframe_test.h),
 * -V reads the target as 3.MINOR (to see a wrong layout refused), -s enables the kernel's BPF
 * run-time statistics for the per-event cost, -F N then feeds the resolver N garbage frames
 * (random addresses of the target, real code objects read with a scrambled layout), which must
 * give errors or strings, never a crash. Output, one record a line, tab-separated:
 *   attached <version hex> <minor> <debug offsets 0/1> <table mismatches> <elf path>
 *   stats <name> <value>              (struct mp_pystats, summed over CPUs; resolver counters)
 *   prog <run_cnt> <run_time_ns>      (with -s)
 *   stack <id> <grown bytes> <freed bytes> <events> <flags> <depth>
 *   frame <name> <file> <line>        (depth lines after their stack, most recent first)
 *   frame ? <errno name> <code address>   (a frame that did not resolve)
 *   fuzz <frames tried> <frames resolved>   (with -F)
 * A failure prints "pyframe_attach: <reason>" on stderr and exits 1.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pyframe.h"
#include "pyframe_test.h"
#include "pyframe_test.skel.h"
#include "pyresolve.h"
#include "pystr.h"
#include "pytarget.h"

#define MAX_SEEN 16384

/* A stack resolved when first seen, while its code objects are alive. */
struct seen {
	__u64 id;
	struct mp_pystack st;
	char *text; /* "frame ..." lines */
};

static struct seen seen[MAX_SEEN];
static size_t nseen;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level != LIBBPF_DEBUG && getenv("PYFRAME_DEBUG"))
		return vfprintf(stderr, fmt, ap);
	return 0;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "pyframe_attach: %s%s%s\n", what, err ? ": " : "", err ? strerror(-err) : "");
	exit(1);
}

static struct seen *find_seen(__u64 id)
{
	for (size_t i = 0; i < nseen; i++)
		if (seen[i].id == id)
			return &seen[i];
	return NULL;
}

static char *resolve_text(struct mp_pyresolver *r, const struct mp_pystack *st)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	for (__u32 i = 0; i < st->depth && i < MP_PY_MAX_DEPTH; i++) {
		struct mp_pyloc loc;
		int err = mp_pyresolver__resolve(r, &st->frames[i], &loc);

		if (err)
			fprintf(f, "frame\t?\t%s\t%#llx\n", strerror(-err),
				(unsigned long long)st->frames[i].code);
		else
			fprintf(f, "frame\t%s\t%s\t%d\n", loc.name, loc.file, loc.line);
	}
	fclose(f);
	return buf;
}

/* Resolve every stack of the map not seen yet. */
static void poll_stacks(int fd, struct mp_pyresolver *r)
{
	__u64 key, next, *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (find_seen(key) || nseen >= MAX_SEEN)
			continue;
		if (bpf_map_lookup_elem(fd, &key, &seen[nseen].st))
			continue;
		seen[nseen].id = key;
		seen[nseen].text = resolve_text(r, &seen[nseen].st);
		nseen++;
	}
}

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* The readable mappings of @pid. */
static size_t read_maps(pid_t pid, uint64_t (*ranges)[2], size_t max)
{
	char path[64], line[512];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (n < max && fgets(line, sizeof(line), f)) {
		unsigned long long a, b;
		char perms[8];

		if (sscanf(line, "%llx-%llx %7s", &a, &b, perms) == 3 && perms[0] == 'r') {
			ranges[n][0] = a;
			ranges[n][1] = b;
			n++;
		}
	}
	fclose(f);
	return n;
}

static int resolve_garbage(struct mp_pyresolver *r, const struct mp_pyframe *f)
{
	struct mp_pyloc loc;

	if (mp_pyresolver__resolve(r, f, &loc))
		return 0;
	/* a success must be a real answer: strings, a line that is a number */
	if (!loc.file || !loc.name || loc.line < 0 || strlen(loc.file) > 4 * MP_PYSTR_MAX_CHARS)
		die("the resolver returned a malformed location", 0);
	return 1;
}

/* Garbage frames and garbage layouts against the live target: errors, never a crash. */
static void fuzz(const struct mp_pytarget *t, long rounds)
{
	static uint64_t ranges[4096][2];
	size_t nr = read_maps(t->pid, ranges, 4096);
	struct mp_pyresolver *r = NULL;
	long tried = 0, ok = 0;
	int err;

	if (!nr || mp_pyresolver__new(t, &r))
		die("cannot set up the fuzzing", 0);
	for (long i = 0; i < rounds; i++) {
		struct mp_pyframe f = {};
		uint64_t *rg = ranges[next_rand() % nr];
		const struct seen *s = nseen ? &seen[next_rand() % nseen] : NULL;

		if (s && s->st.depth && (i & 1)) {
			/* near a real code object: inside it, just before, just after */
			f = s->st.frames[next_rand() % (s->st.depth < MP_PY_MAX_DEPTH ? s->st.depth : 1)];
			f.code += (int64_t)(next_rand() % 257) * 8 - 1024;
		} else {
			f.code = rg[0] + (next_rand() % (rg[1] - rg[0])) / 8 * 8;
		}
		f.instr = (int32_t)(next_rand() % 70000) - 4;
		f.tag = (i & 2) ? (uint32_t)next_rand() : 0;
		ok += resolve_garbage(r, &f);
		tried++;
	}
	mp_pyresolver__free(r);
	/* real frames, read with a scrambled layout: every pointer and length is then garbage */
	for (long i = 0; i < rounds / 50 && nseen; i++) {
		struct mp_pytarget bad = *t;
		struct mp_pylayout *l = &bad.layout;
		int32_t *fields[] = { &l->co_filename, &l->co_name, &l->co_qualname,
				      &l->co_firstlineno, &l->co_linetable, &l->co_code,
				      &l->co_size, &l->u_length, &l->u_state, &l->b_size, &l->b_sval,
				      &l->u_ascii_size, &l->u_compact_size, &l->u_data };

		for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++)
			if (next_rand() % 3 == 0 && *fields[k] != MP_PYL_NONE)
				*fields[k] = (int32_t)(next_rand() % 31) * 8;
		err = mp_pyresolver__new(&bad, &r);
		if (err == -EINVAL)
			continue; /* refused: offsets outside the headers it reads */
		if (err)
			die("out of memory", err);
		for (size_t k = 0; k < nseen; k++) {
			for (__u32 j = 0; j < seen[k].st.depth && j < MP_PY_MAX_DEPTH; j++) {
				struct mp_pyframe f = seen[k].st.frames[j];

				f.tag = 0;
				ok += resolve_garbage(r, &f);
				tried++;
			}
		}
		mp_pyresolver__free(r);
	}
	printf("fuzz\t%ld\t%ld\n", tried, ok);
}

static void print_stats(struct pyframe_test_bpf *skel, struct mp_pyresolver *r)
{
	int ncpu = libbpf_num_possible_cpus();
	size_t vsz = (sizeof(struct mp_py_scratch) + 7) & ~7ul;
	struct mp_pystats sum = {};
	struct mp_pyresolver_stats rs;
	__u32 zero = 0;
	char *vals;

	if (ncpu <= 0)
		die("cannot count CPUs", ncpu);
	vals = calloc((size_t)ncpu, vsz);
	if (!vals)
		die("out of memory", -ENOMEM);
	if (!bpf_map_lookup_elem(bpf_map__fd(skel->maps.mp_py_scratch), &zero, vals)) {
		for (int c = 0; c < ncpu; c++) {
			const struct mp_py_scratch *s = (const void *)(vals + (size_t)c * vsz);
			const __u64 *from = (const __u64 *)&s->stats;
			__u64 *to = (__u64 *)&sum;

			for (size_t i = 0; i < sizeof(sum) / sizeof(__u64); i++)
				to[i] += from[i];
		}
	}
	free(vals);
#define S(f) printf("stats\t%s\t%llu\n", #f, (unsigned long long)sum.f)
	S(calls);
	S(fast);
	S(walked);
	S(no_tstate);
	S(no_frame);
	S(failed);
	S(scans);
	S(read_errors);
	S(bad_code);
	S(bad_frame);
	S(truncated);
	S(partial);
	S(stacks_full);
	S(collisions);
	S(code_reads);
	S(reads);
#undef S
	mp_pyresolver__stats(r, &rs);
	printf("stats\tresolver_lookups\t%llu\nstats\tresolver_decoded\t%llu\n"
	       "stats\tresolver_changed\t%llu\nstats\tresolver_stale\t%llu\n"
	       "stats\tresolver_failures\t%llu\n",
	       (unsigned long long)rs.lookups, (unsigned long long)rs.decoded,
	       (unsigned long long)rs.changed, (unsigned long long)rs.stale,
	       (unsigned long long)rs.failures);
}

int main(int argc, char **argv)
{
	struct mp_pytarget_opts opts = {};
	struct pyframe_test_bpf *skel;
	struct mp_pyresolver *r = NULL;
	struct mp_pytarget *t = NULL;
	const char *why = NULL;
	__u32 mode = PFT_MODE_WALK;
	int c, err, stats_fd = -1, want_stats = 0;
	long fuzz_rounds = 0;
	long page = sysconf(_SC_PAGESIZE);
	pid_t pid;

	while ((c = getopt(argc, argv, "m:V:sF:")) != -1) {
		switch (c) {
		case 'm':
			mode = !strcmp(optarg, "nowalk") ? PFT_MODE_NOWALK :
			       !strcmp(optarg, "full")	 ? PFT_MODE_FULL :
			       !strcmp(optarg, "reads")	 ? PFT_MODE_READS :
							   PFT_MODE_WALK;
			break;
		case 'V':
			opts.force_minor = (unsigned int)atoi(optarg);
			break;
		case 's':
			want_stats = 1;
			break;
		case 'F':
			fuzz_rounds = atol(optarg);
			break;
		default:
			fprintf(stderr, "usage: pyframe_attach [-m walk|nowalk|full|reads] [-V MINOR] [-s] [-F N] PID\n");
			return 2;
		}
	}
	if (optind != argc - 1)
		die("usage: pyframe_attach [-m walk|nowalk|full|reads] [-V MINOR] [-s] [-F N] PID", 0);
	pid = (pid_t)atoi(argv[optind]);
	libbpf_set_print(quiet);

	err = mp_pytarget__open(pid, &opts, &t, &why);
	if (err)
		die(why, 0);
	err = mp_pyresolver__new(t, &r);
	if (err)
		die("cannot make a resolver", err);

	skel = pyframe_test_bpf__open();
	if (!skel)
		die("cannot open the BPF object", -errno);
	if (getenv("PYFRAME_DEBUG"))
		bpf_program__set_log_level(skel->progs.on_rss, 4); /* verifier statistics */
	skel->rodata->target_tgid = (__u32)pid;
	skel->rodata->mode = mode;
	err = pyframe_test_bpf__load(skel);
	if (err)
		die("the kernel refused the BPF program (PYFRAME_DEBUG=1 shows why)", err);
	{
		__u32 key = (__u32)pid;

		err = bpf_map_update_elem(bpf_map__fd(skel->maps.mp_py_procs), &key, &t->proc, BPF_ANY);
		if (err)
			die("cannot store the process description", -errno);
	}
	if (want_stats) {
		stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		if (stats_fd < 0)
			die("cannot enable BPF run-time statistics", -errno);
	}
	err = pyframe_test_bpf__attach(skel);
	if (err)
		die("cannot attach the BPF program", err);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("attached\t%#x\t%u\t%d\t%u\t%s\n", t->version_hex, t->minor, t->debug_offsets,
	       t->table_mismatches, t->elf_path);
	fflush(stdout);

	while (!stop) {
		struct pollfd p = { .fd = 0, .events = POLLIN };

		if (kill(pid, 0) && errno == ESRCH)
			break;
		if (poll(&p, 1, 20) > 0) {
			char buf[256];

			if (read(0, buf, sizeof(buf)) <= 0)
				break;
		}
		poll_stacks(bpf_map__fd(skel->maps.mp_py_stacks), r);
	}
	/* no new events from here: the totals below are final */
	pyframe_test_bpf__detach(skel);
	poll_stacks(bpf_map__fd(skel->maps.mp_py_stacks), r);

	print_stats(skel, r);
	if (want_stats) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		if (!bpf_obj_get_info_by_fd(bpf_program__fd(skel->progs.on_rss), &info, &len))
			printf("prog\t%llu\t%llu\n", (unsigned long long)info.run_cnt,
			       (unsigned long long)info.run_time_ns);
		close(stats_fd);
	}
	{
		int fd = bpf_map__fd(skel->maps.agg);
		__u64 key, next, *prev = NULL;
		struct pft_agg a;

		while (!bpf_map_get_next_key(fd, prev, &next)) {
			struct seen *s;

			key = next;
			prev = &key;
			if (bpf_map_lookup_elem(fd, &key, &a))
				continue;
			s = find_seen(key);
			printf("stack\t%llu\t%llu\t%llu\t%llu\t%u\t%u\n", (unsigned long long)key,
			       (unsigned long long)a.grown * page, (unsigned long long)a.freed * page,
			       (unsigned long long)a.events, s ? s->st.flags : 0, s ? s->st.depth : 0);
			if (s && s->text)
				fputs(s->text, stdout);
		}
	}
	if (fuzz_rounds)
		fuzz(t, fuzz_rounds);
	fflush(stdout);
	for (size_t i = 0; i < nseen; i++)
		free(seen[i].text);
	pyframe_test_bpf__destroy(skel);
	mp_pyresolver__free(r);
	mp_pytarget__free(t);
	return 0;
}

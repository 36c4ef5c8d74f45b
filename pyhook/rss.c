/* rss.c - the slow paths of rss.h: opening the source, reading statm. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rss.h"

struct rss_src rss_g = { .kind = RSS_NONE, .statm_fd = -1 };
_Thread_local struct rss_thread rss_t = { .peak = 0, .slot = -1 };

static size_t shared_len;
static int atfork_done;

static int statm_open(void)
{
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (rss_g.statm_fd >= 0)
		close(rss_g.statm_fd);
	rss_g.statm_fd = fd;
	return 0;
}

/*
 * A forked child must not keep reading its parent: /proc/self was resolved
 * when the fd was opened, and the shared page describes the parent's mm.
 */
static void rss_atfork_child(void)
{
	if (rss_g.kind == RSS_NONE)
		return;
	if (rss_g.kind == RSS_SHARED) {
		rss_g.kind = RSS_STATM;
		snprintf(rss_g.why, sizeof(rss_g.why),
			 "forked child of a kernel-attributed process");
	}
	rss_t.slot = -1;
	if (statm_open() < 0)
		rss_g.kind = RSS_NONE;
}

/*
 * Is @fd the loader's page: a BPF array map (BPF_MAP_TYPE_ARRAY, 2) of one value of our size,
 * created mmap-able (BPF_F_MMAPABLE, 0x400)? /proc/self/fdinfo tells, without any privilege
 * and without the bpf() syscall.
 */
static int is_rss_map(int fd)
{
	char path[64], line[128];
	unsigned long type = ~0ul, vsize = 0, nent = 0, flags = 0;
	int keys = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		keys += sscanf(line, "map_type: %lu", &type) == 1;
		keys += sscanf(line, "value_size: %lu", &vsize) == 1;
		keys += sscanf(line, "max_entries: %lu", &nent) == 1;
		keys += sscanf(line, "map_flags: %lx", &flags) == 1;
	}
	fclose(f);
	return keys == 4 && type == 2 && vsize == sizeof(struct mp_rss_shared) && nent == 1 &&
	       (flags & 0x400);
}

/* Map the loader's page; 0 on success, else -errno with rss_g.why set. */
static int shared_open(const char *env)
{
	char *end = NULL;
	long fd;
	struct stat st;
	void *p;
	volatile struct mp_rss_shared *s;
	size_t len;

	errno = 0;
	fd = strtol(env, &end, 10);
	if (errno || end == env || *end || fd < 0 || fd > 1 << 20) {
		snprintf(rss_g.why, sizeof(rss_g.why), "%s='%.40s' is not an fd number",
			 MP_RSS_ENV, env);
		return -EINVAL;
	}
	if (fstat((int)fd, &st) < 0) {
		int err = errno;

		snprintf(rss_g.why, sizeof(rss_g.why), "%s=%ld: %s", MP_RSS_ENV, fd,
			 strerror(err));
		return -err;
	}
	/* mapping anything else (an empty file: SIGBUS on the first read) must never happen */
	if (!is_rss_map((int)fd)) {
		snprintf(rss_g.why, sizeof(rss_g.why),
			 "%s=%ld is not the loader's BPF map (an mmap-able array of one %zu-byte "
			 "value)",
			 MP_RSS_ENV, fd, sizeof(struct mp_rss_shared));
		return -EBADF;
	}
	len = (sizeof(struct mp_rss_shared) + rss_g.page_size - 1) &
	      ~(size_t)(rss_g.page_size - 1);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
	if (p == MAP_FAILED) {
		int err = errno;

		snprintf(rss_g.why, sizeof(rss_g.why), "cannot map %s=%ld: %s",
			 MP_RSS_ENV, fd, strerror(err));
		return -err;
	}
	s = p;
	if (s->magic == MP_RSS_MAGIC && s->version == MP_RSS_VERSION &&
	    s->nslots == MP_RSS_SLOTS && s->tgid != (uint32_t)getpid()) {
		/* a descendant that inherited the fd: the page is someone else's RSS */
		snprintf(rss_g.why, sizeof(rss_g.why),
			 "%s=%ld describes process %u, not this one", MP_RSS_ENV, fd,
			 (unsigned int)s->tgid);
		munmap(p, len);
		close((int)fd);
		return -ESRCH;
	}
	if (s->magic != MP_RSS_MAGIC || s->version != MP_RSS_VERSION ||
	    s->nslots != MP_RSS_SLOTS) {
		snprintf(rss_g.why, sizeof(rss_g.why),
			 "%s=%ld is not an mprof rss page (magic %#x version %u)",
			 MP_RSS_ENV, fd, s->magic, s->version);
		munmap(p, len);
		return -EPROTO;
	}
	/* The mapping outlives the fd; closing it keeps it out of children. */
	close((int)fd);
	rss_g.shared = s;
	shared_len = len;
	return 0;
}

int rss_init(void)
{
	const char *env;
	long ps;
	int err;

	if (rss_g.kind != RSS_NONE)
		return 0;
	ps = sysconf(_SC_PAGESIZE);
	rss_g.page_size = ps > 0 ? (uint64_t)ps : 4096;
	rss_g.why[0] = '\0';
	if (!atfork_done) {
		if (pthread_atfork(NULL, NULL, rss_atfork_child) != 0)
			return -ENOMEM;
		atfork_done = 1;
	}
	env = getenv(MP_RSS_ENV);
	if (env && *env) {
		if (shared_open(env) == 0) {
			rss_g.kind = RSS_SHARED;
			return 0;
		}
	} else {
		snprintf(rss_g.why, sizeof(rss_g.why), "%s is not set",
			 MP_RSS_ENV);
	}
	err = statm_open();
	if (err < 0)
		return err;
	rss_g.kind = RSS_STATM;
	return 0;
}

void rss_release(void)
{
	if (rss_g.shared) {
		munmap((void *)rss_g.shared, shared_len);
		rss_g.shared = NULL;
	}
	if (rss_g.statm_fd >= 0) {
		close(rss_g.statm_fd);
		rss_g.statm_fd = -1;
	}
	rss_g.kind = RSS_NONE;
}

/* statm is "size resident shared text lib data dt" in pages. */
uint64_t rss_statm_read(void)
{
	char buf[128];
	ssize_t n;
	const char *p;
	uint64_t v = 0;

	if (rss_g.statm_fd < 0)
		return 0;
	do {
		n = pread(rss_g.statm_fd, buf, sizeof(buf) - 1, 0);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strchr(buf, ' ');
	if (!p)
		return 0;
	for (p++; *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	return v * rss_g.page_size;
}

int rss_claim_slot(void)
{
	uint32_t s;

	if (!rss_g.shared)
		return 0;
	s = __atomic_fetch_add(&rss_g.shared->slots_used, 1, __ATOMIC_RELAXED);
	if (s >= MP_RSS_SLOTS) {
		/* Out of slots: share the last one (peaks may be reset by a
		 * neighbour; current values stay exact). */
		__atomic_store_n(&rss_g.shared->slots_used, MP_RSS_SLOTS, __ATOMIC_RELAXED);
		s = MP_RSS_SLOTS - 1;
	}
	rss_t.slot = (int)s;
	return rss_t.slot;
}

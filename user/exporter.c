#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <microhttpd.h>

#include "exporter.h"
#include "utf8.h"

/* Long enough for a scrape over a slow link; short enough that stuck clients free their slot. */
#define DEFAULT_CONN_TIMEOUT_S 10
/* A few scrapers, a federating server and someone's curl; each costs CONN_MEMORY at most. */
#define DEFAULT_MAX_CONNS 32
/*
 * Ten minutes: longer than any scrape interval in use, so a group's counters survive a gap
 * without processes; bounded, so that a churn of command names does not grow forever.
 */
#define DEFAULT_GROUP_IDLE_S 600.0
/*
 * Per-connection memory, which bounds the request line and headers (libmicrohttpd answers 431
 * or 414 beyond it). Prometheus sends about 300 bytes; a browser about 1 KiB.
 */
#define CONN_MEMORY (16 * 1024)
/* Connections beyond DEFAULT_MAX_CONNS wait here (the kernel's, not ours). */
#define LISTEN_BACKLOG 64
#define DEFAULT_HOST "127.0.0.1"

#define CONTENT_TYPE_TEXT "text/plain; version=0.0.4; charset=utf-8"
#define CONTENT_TYPE_OM "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* ---- a growing buffer whose first allocation failure sticks --------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
	int err;
};

static int sb_reserve(struct sbuf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->err)
		return -1;
	if (more <= b->cap - b->len)
		return 0;
	if (more > SIZE_MAX / 2 - b->len) {
		b->err = -ENOMEM;
		return -1;
	}
	cap = b->cap ? b->cap : 4096;
	while (cap - b->len < more)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->err = -ENOMEM;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

static void sb_add(struct sbuf *b, const void *s, size_t n)
{
	if (n && !sb_reserve(b, n)) {
		memcpy(b->p + b->len, s, n);
		b->len += n;
	}
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void sb_ch(struct sbuf *b, char c)
{
	sb_add(b, &c, 1);
}

/* Decimal digits by hand: a scrape writes several per process, and printf is most of it. */
static void sb_u64(struct sbuf *b, uint64_t v)
{
	char t[24];
	size_t i = sizeof(t);

	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	sb_add(b, t + i, sizeof(t) - i);
}

/*
 * Epoch seconds to the microsecond, exactly as printf("%.6f") writes them, without printf's
 * multi-precision path (a quarter of a scrape's time). For 2^20 <= v < 2^53 the fraction
 * v - floor(v) is exact (Sterbenz) and has at most 32 bits, so times 1e6 it is still exact,
 * and rounding it half to even is what printf does with the exact decimal value.
 */
static void sb_secs(struct sbuf *b, double v)
{
	char t[64];
	int n;

	if (v >= 1048576.0 && v < 9007199254740992.0) {
		double whole = floor(v), us = nearbyint((v - whole) * 1e6);
		uint64_t sec = (uint64_t)whole;
		size_t i = sizeof(t);

		if (us >= 1e6) {
			sec++;
			us = 0;
		}
		for (uint32_t f = (uint32_t)us, k = 0; k < 6; k++, f /= 10)
			t[--i] = (char)('0' + f % 10);
		t[--i] = '.';
		sb_u64(b, sec);
		sb_add(b, t + i, sizeof(t) - i);
		return;
	}
	n = snprintf(t, sizeof(t), "%.6f", v);
	if (n > 0 && (size_t)n < sizeof(t))
		sb_add(b, t, (size_t)n);
	else
		sb_ch(b, '0');
}

/* ---- label values --------------------------------------------------------------------- */

/*
 * Append @n bytes of @str as the inside of a quoted label value. Both formats require UTF-8
 * and escape exactly backslash, double quote and line feed; every other character, control
 * characters included, stands as it is. A comm is whatever bytes a process chose, so each
 * maximal ill-formed subpart becomes one U+FFFD, as Python's decode(errors="replace") does.
 */
static void sb_label_value(struct sbuf *b, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		size_t run = i;
		int k;

		/* plain ASCII goes in one copy */
		while (run < n && s[run] < 0x80 && s[run] != '\\' && s[run] != '"' && s[run] != '\n')
			run++;
		sb_add(b, s + i, run - i);
		i = run;
		if (i == n)
			break;
		if (s[i] == '\\' || s[i] == '"' || s[i] == '\n') {
			sb_ch(b, '\\');
			sb_ch(b, s[i] == '\n' ? 'n' : (char)s[i]);
			i++;
			continue;
		}
		k = mp_utf8_seq(s + i, n - i);
		if (k < 0) {
			sb_str(b, "\xef\xbf\xbd");
			i += (size_t)-k;
		} else {
			sb_add(b, s + i, (size_t)k);
			i += (size_t)k;
		}
	}
}

static void sb_label(struct sbuf *b, bool first, const char *name, const char *val, size_t n)
{
	if (!first)
		sb_ch(b, ',');
	sb_str(b, name);
	sb_str(b, "=\"");
	sb_label_value(b, val, n);
	sb_ch(b, '"');
}

/*
 * Append the label set of @p under @g (no braces): pid, comm, cgroup, user, or the one label
 * of the group.
 */
static void sb_labels(struct sbuf *b, enum mp_exporter_group g, const struct mp_fleet_proc *p)
{
	bool all = g == MP_EXPORTER_PER_PROCESS, first = true;
	char pid[16];

	if (all || g == MP_EXPORTER_BY_PID) {
		snprintf(pid, sizeof(pid), "%d", (int)p->pid);
		sb_label(b, first, "pid", pid, strlen(pid));
		first = false;
	}
	if (all || g == MP_EXPORTER_BY_COMM) {
		sb_label(b, first, "comm", p->comm, strnlen(p->comm, MP_FLEET_COMM_LEN));
		first = false;
	}
	if (all || g == MP_EXPORTER_BY_CGROUP) {
		sb_label(b, first, "cgroup", p->cgroup ? p->cgroup : "",
			 p->cgroup ? strlen(p->cgroup) : 0);
		first = false;
	}
	if (all || g == MP_EXPORTER_BY_USER)
		sb_label(b, first, "user", p->user ? p->user : "", p->user ? strlen(p->user) : 0);
}

/* ---- the metrics ---------------------------------------------------------------------- */

enum fam_id {
	F_RESIDENT,
	F_PEAK,
	F_WMAX,
	F_WSUM,
	F_START,
	F_POOM,
	F_TRACKED,
	F_STARTS,
	F_EXITS,
	F_OOM,
	F_LOST,
	F_DROPPED,
	F_COUNT
};

/* Where a family's samples come from in one mode. */
enum fam_src {
	SRC_NONE = 0, /* not exported in this mode */
	SRC_ROWS,     /* one sample per process (per-process modes) or per group (grouped) */
	SRC_TOTAL,    /* one sample without labels, from the run's counters */
};

struct family {
	const char *name; /* the family's name; a counter's samples add _total */
	bool counter;
	const char *unit; /* OpenMetrics # UNIT, the name's suffix; NULL: none */
	enum fam_src per_process, grouped;
	const char *help; /* no backslash, quote or newline: written as it is */
};

static const struct family families[F_COUNT] = {
	[F_RESIDENT] = { "mprof_resident_bytes", false, "bytes", SRC_ROWS, SRC_ROWS,
			 "Resident memory now (VmRSS: anon, file and shmem pages); an exited process "
			 "shows its last value once. Per group: the sum over its live processes." },
	[F_PEAK] = { "mprof_resident_peak_bytes", false, "bytes", SRC_ROWS, SRC_ROWS,
		     "Highest resident memory since the process was tracked, exact. Per group: the "
		     "highest of any of its processes." },
	[F_WMAX] = { "mprof_resident_window_max_bytes", false, "bytes", SRC_ROWS, SRC_ROWS,
		     "Highest resident memory since the previous scrape, exact, so a spike between "
		     "two scrapes is seen. Per group: the highest of any of its processes." },
	[F_WSUM] = { "mprof_resident_window_max_sum_bytes", false, "bytes", SRC_NONE, SRC_ROWS,
		     "Sum over the group's processes of their highest resident memory since the "
		     "previous scrape: an upper bound of the group's highest total in that time." },
	[F_START] = { "mprof_process_start_time_seconds", false, "seconds", SRC_ROWS, SRC_NONE,
		      "When the process joined the tracked set (its start, or the start of "
		      "tracking for a process that was already running), seconds since the epoch." },
	[F_POOM] = { "mprof_process_oom_kills", true, NULL, SRC_ROWS, SRC_ROWS,
		     "Times the kernel chose the process as an OOM victim. Per group: over all of "
		     "its processes since tracked." },
	[F_TRACKED] = { "mprof_tracked_processes", false, NULL, SRC_TOTAL, SRC_ROWS,
			"Processes followed now. Per group: its live processes; sum() is the whole." },
	[F_STARTS] = { "mprof_process_starts", true, NULL, SRC_TOTAL, SRC_TOTAL,
		       "Processes that joined the tracked set after the start." },
	[F_EXITS] = { "mprof_process_exits", true, NULL, SRC_TOTAL, SRC_TOTAL,
		      "Tracked processes that exited." },
	[F_OOM] = { "mprof_oom_kills", true, NULL, SRC_TOTAL, SRC_TOTAL,
		    "OOM victims among the tracked processes." },
	[F_LOST] = { "mprof_records_lost", true, NULL, SRC_TOTAL, SRC_TOTAL,
		     "Kernel records the ring buffer could not take." },
	[F_DROPPED] = { "mprof_dropped_processes", true, NULL, SRC_TOTAL, SRC_TOTAL,
			"Matching processes not followed because the kernel's process table was "
			"full." },
};

/* ---- state kept between scrapes in the grouped modes ---------------------------------- */

/*
 * A group's counters and peak must never go down, although its processes leave the table: what
 * a process had contributed when it left (or moved to another group) is kept as "retired".
 */
struct group {
	struct group *next;  /* in order of creation: the order of the output */
	struct group *hnext; /* hash chain */
	uint64_t hash;
	char *key;	     /* the label set, escaped, e.g. comm="python3" */
	size_t refs;	     /* processes of the previous scrape in it */
	double idle_since;   /* CLOCK_MONOTONIC seconds since it has had none, or -1 */
	bool fresh;	     /* created by the scrape under way */
	uint64_t retired_oom, retired_peak;
	/* this scrape */
	uint64_t live, rss, wmax, wsum, peak, oom;
};

/* A process as the previous scrape saw it (grouped modes), sorted by (pid, start_t). */
struct seen {
	pid_t pid;
	double start_t;
	struct group *g;
	uint64_t base; /* its OOM kills before it joined @g (counted in the group it was in) */
	uint64_t oom, peak;
};

/* A process of the scrape under way. */
struct row {
	pid_t pid;
	bool alive;
	double start_t;
	uint64_t rss, peak, wmax, oom;
	size_t lab, nlab;  /* per-process modes: its label set in the scrape's label buffer */
	struct group *g;   /* grouped modes */
	uint64_t base;
};

struct mp_exporter {
	struct mp_source source; /* fd: the epoll set of libmicrohttpd's epoll fd and timer */
	struct mp_exporter_src src;
	enum mp_exporter_group group_by;
	double group_idle_s;
	struct mp_exporter_stats stats;
	struct MHD_Daemon *mhd;
	int epfd, tfd, port;
	unsigned int max_conns;
	bool full; /* at the connection limit after the last run */
	/* the scrape under way */
	struct row *rows;
	size_t nrows, cap_rows;
	struct sbuf labels;
	int cb_err;
	/* grouped modes */
	struct group *groups, **tail;
	struct group **htab;
	size_t hsize, ngroups;
	struct seen *seen;
	size_t nseen;
};

static bool grouped(const struct mp_exporter *e)
{
	return e->group_by == MP_EXPORTER_BY_COMM || e->group_by == MP_EXPORTER_BY_CGROUP ||
	       e->group_by == MP_EXPORTER_BY_USER;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 14695981039346656037ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

static int groups_rehash(struct mp_exporter *e)
{
	size_t n = e->hsize ? e->hsize * 2 : 64;
	struct group **t = calloc(n, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (struct group *g = e->groups; g; g = g->next) {
		g->hnext = t[g->hash & (n - 1)];
		t[g->hash & (n - 1)] = g;
	}
	free(e->htab);
	e->htab = t;
	e->hsize = n;
	return 0;
}

/* The group whose label set is @key[0..@n), created if new. NULL: out of memory. */
static struct group *group_get(struct mp_exporter *e, const char *key, size_t n)
{
	uint64_t h = fnv1a(key, n);
	struct group *g;

	if (e->hsize)
		for (g = e->htab[h & (e->hsize - 1)]; g; g = g->hnext)
			if (g->hash == h && !strncmp(g->key, key, n) && !g->key[n])
				return g;
	if (e->ngroups + 1 > e->hsize && groups_rehash(e))
		return NULL;
	g = calloc(1, sizeof(*g));
	if (!g || !(g->key = strndup(key, n))) {
		free(g);
		return NULL;
	}
	g->hash = h;
	g->idle_since = -1;
	g->fresh = true;
	g->hnext = e->htab[h & (e->hsize - 1)];
	e->htab[h & (e->hsize - 1)] = g;
	*e->tail = g;
	e->tail = &g->next;
	e->ngroups++;
	return g;
}

/* Unlink and free the groups @drop says to, keeping the creation order of the others. */
static void groups_prune(struct mp_exporter *e,
			 bool (*drop)(const struct mp_exporter *e, const struct group *g, double now),
			 double now)
{
	struct group **pp = &e->groups;

	e->tail = &e->groups;
	while (*pp) {
		struct group *g = *pp;

		if (!drop(e, g, now)) {
			pp = &g->next;
			e->tail = pp;
			continue;
		}
		*pp = g->next;
		for (struct group **hp = &e->htab[g->hash & (e->hsize - 1)]; *hp; hp = &(*hp)->hnext)
			if (*hp == g) {
				*hp = g->hnext;
				break;
			}
		free(g->key);
		free(g);
		e->ngroups--;
	}
}

static bool group_is_fresh(const struct mp_exporter *e, const struct group *g, double now)
{
	(void)e;
	(void)now;
	return g->fresh;
}

/* A group without processes for group_idle_s is dropped (its series go stale). */
static bool group_is_idle(const struct mp_exporter *e, const struct group *g, double now)
{
	return !g->refs && g->idle_since >= 0 && e->group_idle_s >= 0 &&
	       now - g->idle_since >= e->group_idle_s;
}

/* ---- one scrape ----------------------------------------------------------------------- */

static int collect(void *ctx, const struct mp_fleet_proc *p)
{
	struct mp_exporter *e = ctx;
	struct row *r;

	if (e->nrows == e->cap_rows) {
		size_t cap = e->cap_rows ? e->cap_rows * 2 : 256;
		struct row *t = reallocarray(e->rows, cap, sizeof(*t));

		if (!t)
			return e->cb_err = -ENOMEM;
		e->rows = t;
		e->cap_rows = cap;
	}
	r = &e->rows[e->nrows];
	*r = (struct row){ .pid = p->pid, .alive = p->alive, .start_t = p->start_t,
			   .rss = p->rss, .peak = p->peak, .wmax = p->window_max,
			   .oom = p->oom_kills, .lab = e->labels.len };
	sb_labels(&e->labels, e->group_by, p);
	if (grouped(e)) {
		/* the label set is the group's key: look it up, then forget it */
		r->g = group_get(e, e->labels.p + r->lab, e->labels.len - r->lab);
		e->labels.len = r->lab;
		if (!r->g)
			return e->cb_err = -ENOMEM;
	} else {
		r->nlab = e->labels.len - r->lab;
	}
	if (e->labels.err)
		return e->cb_err = e->labels.err;
	e->nrows++;
	return 0;
}

static int cmp_key(pid_t pa, double ta, pid_t pb, double tb)
{
	if (pa != pb)
		return pa < pb ? -1 : 1;
	return ta < tb ? -1 : ta > tb;
}

static int cmp_row(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	return cmp_key(x->pid, x->start_t, y->pid, y->start_t);
}

static uint64_t u64_max(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t since(uint64_t now, uint64_t base)
{
	return now > base ? now - base : 0;
}

/* What a process had brought to its group @s->g stays there when it leaves it. */
static void retire(const struct seen *s)
{
	s->g->retired_oom += since(s->oom, s->base);
	s->g->retired_peak = u64_max(s->g->retired_peak, s->peak);
}

/*
 * Grouped modes: carry the groups over from the previous scrape (processes that left or moved
 * retire their share) and sum this scrape's rows into them. Returns 0 or -ENOMEM, with nothing
 * changed on failure.
 */
static int aggregate(struct mp_exporter *e, double now)
{
	struct seen *ns = NULL;
	size_t j = 0;

	if (e->nrows) {
		ns = calloc(e->nrows, sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		/* both sides sorted by (pid, start): one merge pairs this scrape with the last */
		qsort(e->rows, e->nrows, sizeof(*e->rows), cmp_row);
	}
	for (size_t i = 0; i < e->nrows; i++) {
		struct row *r = &e->rows[i];
		int c = 1;

		/* the previous scrape's processes before this one have left */
		while (j < e->nseen &&
		       (c = cmp_key(e->seen[j].pid, e->seen[j].start_t, r->pid, r->start_t)) < 0)
			retire(&e->seen[j++]);
		r->base = 0;
		if (c == 0) {
			struct seen *s = &e->seen[j++];

			r->base = s->base;
			if (s->g != r->g) { /* it moved: its past stays with the old group */
				retire(s);
				r->base = s->oom;
			}
		}
		ns[i] = (struct seen){ .pid = r->pid, .start_t = r->start_t, .g = r->g,
				       .base = r->base, .oom = r->oom, .peak = r->peak };
	}
	while (j < e->nseen)
		retire(&e->seen[j++]);
	free(e->seen);
	e->seen = ns;
	e->nseen = e->nrows;

	for (struct group *g = e->groups; g; g = g->next) {
		g->fresh = false;
		g->refs = 0;
		g->live = g->rss = g->wmax = g->wsum = g->peak = g->oom = 0;
	}
	for (size_t i = 0; i < e->nrows; i++) {
		const struct row *r = &e->rows[i];
		struct group *g = r->g;

		g->refs++;
		if (r->alive) {
			g->live++;
			g->rss += r->rss;
		}
		g->wmax = u64_max(g->wmax, r->wmax);
		g->wsum += r->wmax;
		g->peak = u64_max(g->peak, r->peak);
		g->oom += since(r->oom, r->base);
	}
	for (struct group *g = e->groups; g; g = g->next) {
		if (g->refs)
			g->idle_since = -1;
		else if (g->idle_since < 0)
			g->idle_since = now;
	}
	return 0;
}

static void sb_help(struct sbuf *b, const char *name, const char *help)
{
	sb_str(b, "# HELP ");
	sb_str(b, name);
	sb_ch(b, ' ');
	sb_str(b, help);
	sb_ch(b, '\n');
}

static void sb_family_header(struct sbuf *b, const struct family *f, enum mp_expo_format fmt)
{
	const char *type = f->counter ? "counter" : "gauge";

	if (fmt == MP_EXPO_OPENMETRICS) {
		/* OpenMetrics names the family; a counter's sample is <family>_total */
		sb_str(b, "# TYPE ");
		sb_str(b, f->name);
		sb_ch(b, ' ');
		sb_str(b, type);
		sb_ch(b, '\n');
		if (f->unit) {
			sb_str(b, "# UNIT ");
			sb_str(b, f->name);
			sb_ch(b, ' ');
			sb_str(b, f->unit);
			sb_ch(b, '\n');
		}
		sb_help(b, f->name, f->help);
		return;
	}
	/* the text format names the sample, _total included */
	sb_str(b, "# HELP ");
	sb_str(b, f->name);
	if (f->counter)
		sb_str(b, "_total");
	sb_ch(b, ' ');
	sb_str(b, f->help);
	sb_ch(b, '\n');
	sb_str(b, "# TYPE ");
	sb_str(b, f->name);
	if (f->counter)
		sb_str(b, "_total");
	sb_ch(b, ' ');
	sb_str(b, type);
	sb_ch(b, '\n');
}

static void sb_sample_start(struct sbuf *b, const struct family *f, const char *lab, size_t n)
{
	sb_str(b, f->name);
	if (f->counter)
		sb_str(b, "_total");
	if (n) {
		sb_ch(b, '{');
		sb_add(b, lab, n);
		sb_ch(b, '}');
	}
	sb_ch(b, ' ');
}

static uint64_t total_value(enum fam_id id, const struct mp_fleet_totals *t)
{
	switch (id) {
	case F_TRACKED:
		return t->tracked;
	case F_STARTS:
		return t->starts;
	case F_EXITS:
		return t->exits;
	case F_OOM:
		return t->oom_kills;
	case F_LOST:
		return t->records_lost;
	case F_DROPPED:
		return t->procs_dropped;
	default:
		return 0;
	}
}

static void render_row(struct sbuf *b, const struct mp_exporter *e, enum fam_id id,
		       const struct row *r)
{
	sb_sample_start(b, &families[id], e->labels.p + r->lab, r->nlab);
	switch (id) {
	case F_RESIDENT:
		sb_u64(b, r->rss);
		break;
	case F_PEAK:
		sb_u64(b, r->peak);
		break;
	case F_WMAX:
		sb_u64(b, r->wmax);
		break;
	case F_START:
		sb_secs(b, r->start_t);
		break;
	case F_POOM:
		sb_u64(b, r->oom);
		break;
	default:
		sb_ch(b, '0');
		break;
	}
	sb_ch(b, '\n');
}

static void render_group(struct sbuf *b, enum fam_id id, const struct group *g)
{
	sb_sample_start(b, &families[id], g->key, strlen(g->key));
	switch (id) {
	case F_RESIDENT:
		sb_u64(b, g->rss);
		break;
	case F_PEAK:
		sb_u64(b, u64_max(g->peak, g->retired_peak));
		break;
	case F_WMAX:
		sb_u64(b, g->wmax);
		break;
	case F_WSUM:
		sb_u64(b, g->wsum);
		break;
	case F_POOM:
		sb_u64(b, g->retired_oom + g->oom);
		break;
	case F_TRACKED:
		sb_u64(b, g->live);
		break;
	default:
		sb_ch(b, '0');
		break;
	}
	sb_ch(b, '\n');
}

static void render(struct sbuf *b, const struct mp_exporter *e, enum mp_expo_format fmt,
		   const struct mp_fleet_totals *t)
{
	bool grp = grouped(e);

	for (int id = 0; id < F_COUNT; id++) {
		const struct family *f = &families[id];
		enum fam_src src = grp ? f->grouped : f->per_process;

		if (src == SRC_NONE)
			continue;
		sb_family_header(b, f, fmt);
		if (src == SRC_TOTAL) {
			sb_sample_start(b, f, NULL, 0);
			sb_u64(b, total_value((enum fam_id)id, t));
			sb_ch(b, '\n');
		} else if (grp) {
			for (const struct group *g = e->groups; g; g = g->next)
				render_group(b, (enum fam_id)id, g);
		} else {
			for (size_t i = 0; i < e->nrows; i++)
				render_row(b, e, (enum fam_id)id, &e->rows[i]);
		}
	}
	if (fmt == MP_EXPO_OPENMETRICS)
		sb_str(b, "# EOF\n");
}

int mp_exporter__scrape(struct mp_exporter *e, enum mp_expo_format f, int close_window,
			char **body, size_t *len)
{
	struct mp_fleet_totals t = { 0 };
	struct sbuf out = { 0 };
	double now = mono_s();
	int err;

	*body = NULL;
	*len = 0;
	if (close_window && e->src.window) {
		err = e->src.window(e->src.ctx);
		if (err)
			return err < 0 ? err : -EIO;
	}
	if (e->src.totals)
		e->src.totals(e->src.ctx, &t);
	e->nrows = 0;
	e->labels.len = 0;
	e->labels.err = 0;
	e->cb_err = 0;
	err = e->src.each ? e->src.each(e->src.ctx, collect, e) : 0;
	if (!err && e->cb_err)
		err = e->cb_err;
	if (err > 0)
		err = -EIO;
	if (!err && grouped(e)) {
		err = aggregate(e, now);
		if (!err)
			groups_prune(e, group_is_idle, now);
	}
	if (err) {
		/* groups this failed scrape created have no history: forget them */
		if (grouped(e))
			groups_prune(e, group_is_fresh, now);
		return err;
	}
	render(&out, e, f, &t);
	if (out.err) {
		free(out.p);
		return out.err;
	}
	*body = out.p;
	*len = out.len;
	return 0;
}

/* ---- content negotiation -------------------------------------------------------------- */

static const char *skip_ows(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

static const char *trim_end(const char *s, const char *end)
{
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return end;
}

static bool token_is(const char *s, const char *end, const char *word)
{
	size_t n = strlen(word);

	return (size_t)(end - s) == n && !strncasecmp(s, word, n);
}

/* An RFC 9110 qvalue: 0, 0.ddd, 1, 1.000. Returns it in thousandths, or -1. */
static int parse_q(const char *s, const char *end)
{
	int q, digits = 0;

	if (s == end || (*s != '0' && *s != '1'))
		return -1;
	q = (*s++ - '0') * 1000;
	if (s == end)
		return q;
	if (*s++ != '.')
		return -1;
	for (int scale = 100; s < end; s++, scale /= 10) {
		if (*s < '0' || *s > '9' || ++digits > 3)
			return -1;
		if (q == 1000 && *s != '0')
			return -1;
		q += (*s - '0') * scale;
	}
	return q;
}

/*
 * One media range of an Accept header, [s, end): how specifically it matches OpenMetrics 1.0.0
 * (*om) and the text format 0.0.4 (*text): -1 no match, 0 ANY/ANY, 1 type/ANY, 2 the type
 * without a version, 3 with the right version; and its q in thousandths (-1: malformed).
 */
static int media_range(const char *s, const char *end, int *om, int *text)
{
	const char *semi = memchr(s, ';', (size_t)(end - s)), *slash;
	const char *tend = trim_end(s, semi ? semi : end);
	const char *version = NULL, *vend = NULL;
	int q = 1000;

	*om = *text = -1;
	slash = memchr(s, '/', (size_t)(tend - s));
	if (!slash)
		return -1;
	for (const char *p = semi; p && p < end;) {
		const char *pe = memchr(p + 1, ';', (size_t)(end - p - 1));
		const char *ps = skip_ows(p + 1, pe ? pe : end), *pend = trim_end(ps, pe ? pe : end);
		const char *eq = memchr(ps, '=', (size_t)(pend - ps));

		p = pe;
		if (!eq)
			continue;
		if (token_is(ps, trim_end(ps, eq), "q")) {
			q = parse_q(skip_ows(eq + 1, pend), pend);
			if (q < 0)
				return -1;
		} else if (token_is(ps, trim_end(ps, eq), "version")) {
			version = skip_ows(eq + 1, pend);
			vend = pend;
			if (vend - version >= 2 && *version == '"' && vend[-1] == '"') {
				version++;
				vend--;
			}
		}
	}
	if (token_is(s, slash, "*") && token_is(slash + 1, tend, "*")) {
		*text = 0;
	} else if (token_is(s, slash, "text")) {
		if (token_is(slash + 1, tend, "*"))
			*text = 1;
		else if (token_is(slash + 1, tend, "plain"))
			*text = !version ? 2 : token_is(version, vend, "0.0.4") ? 3 : -1;
	} else if (token_is(s, slash, "application") &&
		   token_is(slash + 1, tend, "openmetrics-text")) {
		*om = !version ? 2 : token_is(version, vend, "1.0.0") ? 3 : -1;
	}
	return q;
}

enum mp_expo_format mp_exporter__negotiate(const char *accept)
{
	int om_spec = -1, om_q = -1, text_spec = -1, text_q = -1;
	const char *s, *end;

	if (!accept)
		return MP_EXPO_TEXT;
	s = accept;
	end = accept + strlen(accept);
	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		const char *rs = skip_ows(s, comma ? comma : end);
		const char *re = trim_end(rs, comma ? comma : end);
		int om, text, q;

		s = comma ? comma + 1 : end;
		if (rs == re)
			continue;
		q = media_range(rs, re, &om, &text);
		if (q < 0)
			continue;
		/* a range's q comes from its most specific match (RFC 9110, 12.5.1) */
		if (om > om_spec || (om == om_spec && om >= 0 && q > om_q)) {
			om_spec = om;
			om_q = q;
		}
		if (text > text_spec || (text == text_spec && text >= 0 && q > text_q)) {
			text_spec = text;
			text_q = q;
		}
	}
	return om_q > 0 && om_q >= text_q ? MP_EXPO_OPENMETRICS : MP_EXPO_TEXT;
}

const char *mp_exporter__content_type(enum mp_expo_format f)
{
	return f == MP_EXPO_OPENMETRICS ? CONTENT_TYPE_OM : CONTENT_TYPE_TEXT;
}

int mp_exporter__parse_group(const char *s, enum mp_exporter_group *out)
{
	static const struct {
		const char *name;
		enum mp_exporter_group g;
	} names[] = {
		{ "pid", MP_EXPORTER_BY_PID },
		{ "comm", MP_EXPORTER_BY_COMM },
		{ "cgroup", MP_EXPORTER_BY_CGROUP },
		{ "user", MP_EXPORTER_BY_USER },
	};

	for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i].name)) {
			*out = names[i].g;
			return 0;
		}
	return -EINVAL;
}

/* ---- the listening socket ------------------------------------------------------------- */

#define WHY_SYNTAX "listen address must be HOST:PORT, [IPV6]:PORT, :PORT or PORT"

static int fail(const char **why, const char *reason, int err)
{
	if (why)
		*why = reason;
	return err;
}

/* Split @s into @host and @port (digits, checked). Returns 0 or -EINVAL with *@why. */
static int split_listen(const char *s, char *host, size_t hostsz, const char **port,
			const char **why)
{
	const char *colon, *h = DEFAULT_HOST;
	size_t hn = strlen(DEFAULT_HOST), pn;

	if (!*s)
		return fail(why, WHY_SYNTAX, -EINVAL);
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close == s + 1 || close[1] != ':')
			return fail(why, WHY_SYNTAX, -EINVAL);
		h = s + 1;
		hn = (size_t)(close - h);
		*port = close + 2;
	} else if ((colon = strrchr(s, ':'))) {
		if (memchr(s, ':', (size_t)(colon - s)))
			return fail(why, "an IPv6 address needs brackets: [ADDRESS]:PORT", -EINVAL);
		if (colon > s) {
			h = s;
			hn = (size_t)(colon - s);
		}
		*port = colon + 1;
	} else {
		*port = s;
	}
	pn = strlen(*port);
	if (!pn || pn > 5 || strspn(*port, "0123456789") != pn || atoi(*port) > 65535)
		return fail(why, "port must be a number from 0 to 65535", -EINVAL);
	if (hn >= hostsz)
		return fail(why, "host name too long", -EINVAL);
	memcpy(host, h, hn);
	host[hn] = '\0';
	return 0;
}

static const char *bind_reason(int err)
{
	switch (err) {
	case EADDRINUSE:
		return "address already in use";
	case EADDRNOTAVAIL:
		return "address not available on this machine";
	case EACCES:
	case EPERM:
		return "permission denied for this address or port";
	case EAFNOSUPPORT:
		return "address family not supported here";
	default:
		return "cannot listen on this address";
	}
}

/* A listening, non-blocking socket on @listen. Returns the fd or -errno with *@why. */
static int open_listener(const char *listen_on, int *port, const char **why)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char host[NI_MAXHOST];
	const char *pstr;
	int err, fd = -1;

	err = split_listen(listen_on, host, sizeof(host), &pstr, why);
	if (err)
		return err;
	err = getaddrinfo(host, pstr, &hints, &res);
	if (err == EAI_MEMORY)
		return fail(why, "out of memory", -ENOMEM);
	if (err == EAI_AGAIN)
		return fail(why, "host name lookup failed, try again", -EAGAIN);
	if (err == EAI_SYSTEM)
		return fail(why, "host name lookup failed", errno ? -errno : -EIO);
	if (err)
		return fail(why, "unknown host", -EINVAL);
	err = -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int one = 1;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		/* a restart must not wait for the old connections' TIME_WAIT */
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, LISTEN_BACKLOG)) {
			err = -errno;
			close(fd);
			fd = -1;
			continue;
		}
		break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return fail(why, bind_reason(-err), err);
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		if (getsockname(fd, (struct sockaddr *)&ss, &sl)) {
			err = -errno;
			close(fd);
			return fail(why, "cannot read the bound address", err);
		}
		*port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
						 : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	return fd;
}

/* ---- HTTP ----------------------------------------------------------------------------- */

static const char index_page[] =
	"mprof-bpf: memory of the tracked processes, measured in the kernel.\n"
	"Metrics: /metrics (Prometheus text format 0.0.4, or OpenMetrics 1.0.0 on request)\n";

static enum MHD_Result reply_static(struct MHD_Connection *c, unsigned int status,
				    const char *text, bool allow)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
								 MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				    "text/plain; charset=utf-8") != MHD_YES ||
	    (allow && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES)) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Every Accept header of the request, joined with commas as RFC 9110 says they combine. */
static enum MHD_Result accept_header(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *value)
{
	struct sbuf *b = cls;

	(void)kind;
	if (key && value && !strcasecmp(key, MHD_HTTP_HEADER_ACCEPT)) {
		if (b->len)
			sb_ch(b, ',');
		sb_str(b, value);
	}
	return MHD_YES;
}

/* Does the request announce a body (which we never read)? */
static bool has_body(struct MHD_Connection *c)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (cl && strcmp(cl, "0")) ||
	       MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **req_cls)
{
	static int headers_seen; /* a marker: its address only */
	struct mp_exporter *e = cls;
	bool get = !strcmp(method, MHD_HTTP_METHOD_GET);
	bool head = !strcmp(method, MHD_HTTP_METHOD_HEAD);
	struct sbuf accept = { 0 };
	struct MHD_Response *r;
	enum mp_expo_format fmt;
	enum MHD_Result ret;
	char *body;
	size_t len;
	int err;

	(void)version;
	(void)upload;
	/*
	 * The first call comes with the headers. A response queued then makes libmicrohttpd
	 * close the connection (it cannot know the request is complete), so a plain GET is
	 * answered at the second call and the connection is kept alive for the next scrape. A
	 * request with a body is answered at once: we never read one, and closing is right.
	 */
	if (!*req_cls && !has_body(c)) {
		*req_cls = &headers_seen;
		return MHD_YES;
	}
	*upload_size = 0;
	e->stats.requests++;
	if (strcmp(url, "/metrics") && strcmp(url, "/"))
		return reply_static(c, MHD_HTTP_NOT_FOUND, "not found\n", false);
	if (!get && !head)
		return reply_static(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", true);
	if (!strcmp(url, "/"))
		return reply_static(c, MHD_HTTP_OK, index_page, false);
	MHD_get_connection_values(c, MHD_HEADER_KIND, accept_header, &accept);
	sb_ch(&accept, '\0');
	fmt = accept.err ? MP_EXPO_TEXT : mp_exporter__negotiate(accept.p);
	free(accept.p);
	/* HEAD looks without closing the window, so the next GET still sees every spike */
	err = mp_exporter__scrape(e, fmt, get, &body, &len);
	if (err) {
		e->stats.errors++;
		e->stats.last_error = err;
		return reply_static(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "scrape failed\n", false);
	}
	r = MHD_create_response_from_buffer_with_free_callback(len, body, free);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				    mp_exporter__content_type(fmt)) != MHD_YES) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	if (ret == MHD_YES && get)
		e->stats.scrapes++;
	return ret;
}

/*
 * libmicrohttpd must run again when its epoll fd is readable and, at the latest, when its
 * timeout says (a connection's deadline, or work it left pending): the timer covers the
 * second, since the recording loop only wakes for readable fds and its own ticks.
 */
static int arm_timer(struct mp_exporter *e)
{
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };
	MHD_UNSIGNED_LONG_LONG ms;

	if (MHD_get_timeout(e->mhd, &ms) == MHD_YES) {
		if (ms == 0) {
			its.it_value.tv_nsec = 1; /* at once (a zero value would disarm) */
		} else {
			its.it_value.tv_sec = (time_t)(ms / 1000);
			its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
		}
	}
	return timerfd_settime(e->tfd, 0, &its, NULL) ? -errno : 0;
}

static int exporter_ready(struct mp_source *s)
{
	struct mp_exporter *e = (struct mp_exporter *)((char *)s -
						       offsetof(struct mp_exporter, source));
	uint64_t expirations;

	if (read(e->tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN &&
	    errno != EINTR)
		return -errno;
	for (;;) {
		const union MHD_DaemonInfo *info;
		bool was_full = e->full;

		if (MHD_run(e->mhd) != MHD_YES)
			return -EIO;
		info = MHD_get_daemon_info(e->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		e->full = info && info->num_connections >= e->max_conns;
		/*
		 * At the connection limit libmicrohttpd takes its listening socket out of its epoll
		 * set, and puts it back only at the start of a run: after a run that freed a slot,
		 * run once more, or a client waiting in the backlog would wait for another event
		 * that may never come.
		 */
		if (!was_full || e->full)
			break;
	}
	return arm_timer(e);
}

static int start_http(struct mp_exporter *e, const struct mp_exporter_opts *o, const char **why)
{
	const union MHD_DaemonInfo *info;
	struct epoll_event ev = { .events = EPOLLIN };
	int lfd, err;

	e->max_conns = o->max_conns ? o->max_conns : DEFAULT_MAX_CONNS;
	lfd = open_listener(o->listen, &e->port, why);
	if (lfd < 0)
		return lfd;
	/*
	 * No MHD thread: MHD_USE_EPOLL without an internal polling thread is the external event
	 * loop mode, driven by exporter_ready(). No MHD_USE_ERROR_LOG: the library never prints.
	 */
	e->mhd = MHD_start_daemon(
		MHD_USE_EPOLL, 0, NULL, NULL, on_request, e, MHD_OPTION_LISTEN_SOCKET, lfd,
		MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned int)(o->conn_timeout_s ? o->conn_timeout_s : DEFAULT_CONN_TIMEOUT_S),
		MHD_OPTION_CONNECTION_LIMIT, e->max_conns,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY, MHD_OPTION_END);
	if (!e->mhd) {
		close(lfd);
		return fail(why, "the HTTP server did not start", -EIO);
	}
	/* from here MHD owns lfd and closes it in MHD_stop_daemon() */
	info = MHD_get_daemon_info(e->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0)
		return fail(why, "the HTTP server has no epoll descriptor", -EIO);
	e->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (e->tfd < 0)
		return fail(why, "cannot create the HTTP server's timer", -errno);
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0)
		return fail(why, "cannot create the HTTP server's descriptors", -errno);
	ev.data.fd = info->epoll_fd;
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, info->epoll_fd, &ev))
		return fail(why, "cannot create the HTTP server's descriptors", -errno);
	ev.data.fd = e->tfd;
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->tfd, &ev))
		return fail(why, "cannot create the HTTP server's descriptors", -errno);
	err = arm_timer(e);
	if (err)
		return fail(why, "cannot arm the HTTP server's timer", err);
	e->source.fd = e->epfd;
	e->source.ready = exporter_ready;
	return 0;
}

int mp_exporter__new(struct mp_exporter **out, const struct mp_exporter_src *src,
		     const struct mp_exporter_opts *opts, const char **why)
{
	static const struct mp_exporter_opts none = { 0 };
	const struct mp_exporter_opts *o = opts ? opts : &none;
	struct mp_exporter *e;
	int err;

	*out = NULL;
	if (!src || o->group_by > MP_EXPORTER_BY_USER)
		return fail(why, "invalid exporter options", -EINVAL);
	e = calloc(1, sizeof(*e));
	if (!e)
		return fail(why, "out of memory", -ENOMEM);
	e->src = *src;
	e->group_by = o->group_by;
	e->group_idle_s = o->group_idle_s ? o->group_idle_s : DEFAULT_GROUP_IDLE_S;
	e->tail = &e->groups;
	e->epfd = e->tfd = e->port = -1;
	e->source.fd = -1;
	if (o->listen) {
		err = start_http(e, o, why);
		if (err) {
			mp_exporter__free(e);
			return err;
		}
	}
	*out = e;
	return 0;
}

void mp_exporter__free(struct mp_exporter *e)
{
	struct group *g, *next;

	if (!e)
		return;
	if (e->mhd)
		MHD_stop_daemon(e->mhd);
	if (e->epfd >= 0)
		close(e->epfd);
	if (e->tfd >= 0)
		close(e->tfd);
	for (g = e->groups; g; g = next) {
		next = g->next;
		free(g->key);
		free(g);
	}
	free(e->htab);
	free(e->seen);
	free(e->rows);
	free(e->labels.p);
	free(e);
}

struct mp_source *mp_exporter__source(struct mp_exporter *e)
{
	return e->mhd ? &e->source : NULL;
}

int mp_exporter__port(const struct mp_exporter *e)
{
	return e->mhd ? e->port : -1;
}

void mp_exporter__stats(const struct mp_exporter *e, struct mp_exporter_stats *out)
{
	*out = e->stats;
}

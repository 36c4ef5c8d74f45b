/*
 * The Prometheus exporter (user/exporter.c) on synthetic tables: both formats line by line,
 * label escaping and UTF-8 repair, content negotiation, grouping (sums, maxima, counters that
 * survive processes leaving), the window protocol, errors, and the listen address.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <setjmp.h>
#include <cmocka.h>

#include "exporter.h"

#define MIB (1024 * 1024ull)
#define MAXROWS 16

/* A fleet table the test writes by hand. */
struct table {
	struct mp_fleet_proc rows[MAXROWS];
	size_t n;
	struct mp_fleet_totals t;
	int windows;	       /* window() calls */
	int each_calls;	       /* each() calls */
	int window_before_each; /* windows seen by the last each() */
	int each_err, window_err;
	int fail_after;	       /* each(): fail with -EIO after this many rows (0: never) */
};

static int t_each(void *ctx, mp_fleet_fn fn, void *fctx)
{
	struct table *t = ctx;

	t->each_calls++;
	t->window_before_each = t->windows;
	if (t->each_err)
		return t->each_err;
	for (size_t i = 0; i < t->n; i++) {
		int err;

		if (t->fail_after && (int)i == t->fail_after)
			return -EIO;
		err = fn(fctx, &t->rows[i]);
		if (err)
			return err;
	}
	return 0;
}

static void t_totals(void *ctx, struct mp_fleet_totals *out)
{
	*out = ((struct table *)ctx)->t;
}

static int t_window(void *ctx)
{
	struct table *t = ctx;

	t->windows++;
	return t->window_err;
}

static struct mp_fleet_proc *add(struct table *t, pid_t pid, const char *comm, const char *cgroup,
				 const char *user, uint64_t rss, uint64_t peak, uint64_t wmax)
{
	struct mp_fleet_proc *p = &t->rows[t->n++];

	assert_true(t->n <= MAXROWS);
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	memcpy(p->comm, comm, strnlen(comm, MP_FLEET_COMM_LEN));
	p->cgroup = cgroup;
	p->user = user;
	p->alive = true;
	p->start_t = 1700000000.25;
	p->rss = rss;
	p->peak = peak;
	p->window_max = wmax;
	return p;
}

static struct mp_exporter *new_exporter(struct table *t, enum mp_exporter_group g, double idle)
{
	struct mp_exporter_src src = { t_each, t_totals, t_window, t };
	struct mp_exporter_opts o = { .group_by = g, .group_idle_s = idle };
	struct mp_exporter *e = NULL;

	assert_int_equal(mp_exporter__new(&e, &src, &o, NULL), 0);
	assert_non_null(e);
	assert_null(mp_exporter__source(e));
	assert_int_equal(mp_exporter__port(e), -1);
	return e;
}

/* One scrape, as a NUL-terminated string the caller frees. */
static char *scrape(struct mp_exporter *e, enum mp_expo_format f, int close_window)
{
	char *body = NULL, *s;
	size_t len = 0;

	assert_int_equal(mp_exporter__scrape(e, f, close_window, &body, &len), 0);
	s = malloc(len + 1);
	assert_non_null(s);
	memcpy(s, body, len);
	s[len] = '\0';
	free(body);
	return s;
}

/* The text without its # HELP lines (checked on their own). */
static char *without_help(const char *s)
{
	char *out = calloc(1, strlen(s) + 1), *o = out;

	assert_non_null(out);
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s + 1) : strlen(s);

		if (strncmp(s, "# HELP ", 7)) {
			memcpy(o, s, n);
			o += n;
		}
		s += n;
	}
	return out;
}

/* The value of the sample line that starts with @prefix (name and labels), or -1. */
static long long value_of(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *s = text; s && *s; s = strchr(s, '\n'), s = s ? s + 1 : NULL)
		if (!strncmp(s, prefix, n) && s[n] == ' ')
			return strtoll(s + n + 1, NULL, 10);
	return -1;
}

static void fill_one(struct table *t)
{
	struct mp_fleet_proc *p;

	memset(t, 0, sizeof(*t));
	p = add(t, 42, "python3", "/a", "alice", 1 * MIB, 2 * MIB, 3 * MIB / 2);
	p->oom_kills = 1;
	t->t = (struct mp_fleet_totals){ .starts = 1, .exits = 2, .oom_kills = 3,
					 .records_lost = 4, .procs_dropped = 5, .tracked = 1 };
}

#define LAB "{pid=\"42\",comm=\"python3\",cgroup=\"/a\",user=\"alice\"}"

static void text_format_exactly(void **state)
{
	static const char want[] =
		"# TYPE mprof_resident_bytes gauge\n"
		"mprof_resident_bytes" LAB " 1048576\n"
		"# TYPE mprof_resident_peak_bytes gauge\n"
		"mprof_resident_peak_bytes" LAB " 2097152\n"
		"# TYPE mprof_resident_window_max_bytes gauge\n"
		"mprof_resident_window_max_bytes" LAB " 1572864\n"
		"# TYPE mprof_process_start_time_seconds gauge\n"
		"mprof_process_start_time_seconds" LAB " 1700000000.250000\n"
		"# TYPE mprof_process_oom_kills_total counter\n"
		"mprof_process_oom_kills_total" LAB " 1\n"
		"# TYPE mprof_tracked_processes gauge\n"
		"mprof_tracked_processes 1\n"
		"# TYPE mprof_process_starts_total counter\n"
		"mprof_process_starts_total 1\n"
		"# TYPE mprof_process_exits_total counter\n"
		"mprof_process_exits_total 2\n"
		"# TYPE mprof_oom_kills_total counter\n"
		"mprof_oom_kills_total 3\n"
		"# TYPE mprof_records_lost_total counter\n"
		"mprof_records_lost_total 4\n"
		"# TYPE mprof_dropped_processes_total counter\n"
		"mprof_dropped_processes_total 5\n";
	struct table t;
	struct mp_exporter *e;
	char *s, *bare;

	(void)state;
	fill_one(&t);
	e = new_exporter(&t, MP_EXPORTER_PER_PROCESS, 0);
	s = scrape(e, MP_EXPO_TEXT, 1);
	bare = without_help(s);
	assert_string_equal(bare, want);
	/* every family: # HELP then # TYPE, for the same name */
	for (const char *p = strstr(s, "# TYPE "); p; p = strstr(p + 1, "# TYPE ")) {
		const char *name = p + 7, *sp = strchr(name, ' ');
		char help[128];
		const char *prev_end = p - 1, *prev = prev_end;

		while (prev > s && prev[-1] != '\n')
			prev--;
		snprintf(help, sizeof(help), "# HELP %.*s ", (int)(sp - name), name);
		assert_true(prev < p);
		assert_memory_equal(prev, help, strlen(help));
		assert_true(prev_end - prev > (long)strlen(help) + 10); /* says something */
	}
	assert_null(strstr(s, "# EOF"));
	assert_null(strstr(s, "# UNIT"));
	free(bare);
	free(s);
	mp_exporter__free(e);
}

static void openmetrics_format_exactly(void **state)
{
	static const char want[] =
		"# TYPE mprof_resident_bytes gauge\n"
		"# UNIT mprof_resident_bytes bytes\n"
		"mprof_resident_bytes" LAB " 1048576\n"
		"# TYPE mprof_resident_peak_bytes gauge\n"
		"# UNIT mprof_resident_peak_bytes bytes\n"
		"mprof_resident_peak_bytes" LAB " 2097152\n"
		"# TYPE mprof_resident_window_max_bytes gauge\n"
		"# UNIT mprof_resident_window_max_bytes bytes\n"
		"mprof_resident_window_max_bytes" LAB " 1572864\n"
		"# TYPE mprof_process_start_time_seconds gauge\n"
		"# UNIT mprof_process_start_time_seconds seconds\n"
		"mprof_process_start_time_seconds" LAB " 1700000000.250000\n"
		"# TYPE mprof_process_oom_kills counter\n"
		"mprof_process_oom_kills_total" LAB " 1\n"
		"# TYPE mprof_tracked_processes gauge\n"
		"mprof_tracked_processes 1\n"
		"# TYPE mprof_process_starts counter\n"
		"mprof_process_starts_total 1\n"
		"# TYPE mprof_process_exits counter\n"
		"mprof_process_exits_total 2\n"
		"# TYPE mprof_oom_kills counter\n"
		"mprof_oom_kills_total 3\n"
		"# TYPE mprof_records_lost counter\n"
		"mprof_records_lost_total 4\n"
		"# TYPE mprof_dropped_processes counter\n"
		"mprof_dropped_processes_total 5\n"
		"# EOF\n";
	struct table t;
	struct mp_exporter *e;
	char *s, *bare;
	size_t n;

	(void)state;
	fill_one(&t);
	e = new_exporter(&t, MP_EXPORTER_PER_PROCESS, 0);
	s = scrape(e, MP_EXPO_OPENMETRICS, 1);
	bare = without_help(s);
	assert_string_equal(bare, want);
	/* HELP names the family (no _total) and follows its TYPE/UNIT */
	assert_non_null(strstr(s, "# TYPE mprof_oom_kills counter\n# HELP mprof_oom_kills "));
	assert_non_null(strstr(s, "# UNIT mprof_resident_bytes bytes\n# HELP mprof_resident_bytes "));
	/* # EOF ends it, exactly once */
	n = strlen(s);
	assert_true(n > 6 && !strcmp(s + n - 6, "# EOF\n"));
	assert_ptr_equal(strstr(s, "# EOF"), s + n - 6);
	free(bare);
	free(s);
	mp_exporter__free(e);
}

static void group_by_pid_has_only_pid(void **state)
{
	struct table t;
	struct mp_exporter *e;
	char *s;

	(void)state;
	fill_one(&t);
	e = new_exporter(&t, MP_EXPORTER_BY_PID, 0);
	s = scrape(e, MP_EXPO_TEXT, 1);
	assert_int_equal(value_of(s, "mprof_resident_bytes{pid=\"42\"}"), (long long)MIB);
	assert_int_equal(value_of(s, "mprof_process_start_time_seconds{pid=\"42\"}"), 1700000000);
	assert_null(strstr(s, "comm="));
	assert_null(strstr(s, "window_max_sum"));
	free(s);
	mp_exporter__free(e);
}

/* The label value the exporter writes for a comm of these bytes. */
static char *comm_label(const char *comm, size_t n)
{
	struct table t;
	struct mp_exporter *e;
	char *s, *out, *a, *b;
	struct mp_fleet_proc *p;

	memset(&t, 0, sizeof(t));
	p = add(&t, 7, "", "", "", 0, 0, 0);
	assert_true(n <= MP_FLEET_COMM_LEN);
	memset(p->comm, 0, sizeof(p->comm));
	memcpy(p->comm, comm, n);
	e = new_exporter(&t, MP_EXPORTER_BY_COMM, 0);
	s = scrape(e, MP_EXPO_OPENMETRICS, 1);
	a = strstr(s, "mprof_resident_bytes{comm=\"");
	assert_non_null(a);
	a += strlen("mprof_resident_bytes{comm=\"");
	b = strstr(a, "\"} ");
	assert_non_null(b);
	out = strndup(a, (size_t)(b - a));
	free(s);
	mp_exporter__free(e);
	return out;
}

#define FFFD "\xef\xbf\xbd"

#define C(in, want) { in, sizeof(in) - 1, want }

static void labels_escaped_and_valid_utf8(void **state)
{
	static const struct {
		const char *in;
		size_t n;
		const char *want;
	} cases[] = {
		C("a\\b", "a\\\\b"),
		C("say \"hi\"", "say \\\"hi\\\""),
		C("two\nlines", "two\\nlines"),
		/* other control characters are allowed as they are by both formats */
		C("tab\there\r\x01\x7f", "tab\there\r\x01\x7f"),
		C("caf\xc3\xa9", "caf\xc3\xa9"),
		C("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"),
		/* one U+FFFD per maximal ill-formed subpart, as Python's errors="replace" */
		C("\xff", FFFD),
		C("\xc0\xaf", FFFD FFFD),
		C("\xe0\x80", FFFD FFFD),
		C("\xe0\xa0", FFFD),
		C("\xe0\xa0x", FFFD "x"),
		C("\xed\xa0\x80", FFFD FFFD FFFD),
		C("\xf0\x9f\x98", FFFD),
		C("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD),
		C("\xc3\"", FFFD "\\\""),
		C("ok\x80\\\n", "ok" FFFD "\\\\\\n"),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = comm_label(cases[i].in, cases[i].n);

		if (strcmp(got, cases[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, got, cases[i].want);
		free(got);
	}
}

static void cgroup_and_user_escaped(void **state)
{
	struct table t;
	struct mp_exporter *e;
	char *s;

	(void)state;
	memset(&t, 0, sizeof(t));
	add(&t, 5, "x", "/we\"ird\\path\n", "u\xff", 1, 1, 1);
	e = new_exporter(&t, MP_EXPORTER_PER_PROCESS, 0);
	s = scrape(e, MP_EXPO_TEXT, 1);
	assert_non_null(strstr(s, "mprof_resident_bytes{pid=\"5\",comm=\"x\",cgroup=\"/we\\\"ird\\\\path"
				  "\\n\",user=\"u" FFFD "\"} 1\n"));
	free(s);
	mp_exporter__free(e);
	/* NULL strings are empty labels, not a crash */
	memset(&t, 0, sizeof(t));
	add(&t, 6, "y", NULL, NULL, 1, 1, 1);
	e = new_exporter(&t, MP_EXPORTER_PER_PROCESS, 0);
	s = scrape(e, MP_EXPO_TEXT, 1);
	assert_non_null(strstr(s, "{pid=\"6\",comm=\"y\",cgroup=\"\",user=\"\"} 1\n"));
	free(s);
	mp_exporter__free(e);
}

static void negotiation(void **state)
{
	static const struct {
		const char *accept;
		enum mp_expo_format want;
	} cases[] = {
		{ NULL, MP_EXPO_TEXT },
		{ "", MP_EXPO_TEXT },
		{ "*/*", MP_EXPO_TEXT },
		{ "text/plain", MP_EXPO_TEXT },
		{ "text/html,application/xhtml+xml,*/*;q=0.8", MP_EXPO_TEXT },
		/* what Prometheus 2.x sends */
		{ "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
		  "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
		  MP_EXPO_OPENMETRICS },
		{ "application/openmetrics-text", MP_EXPO_OPENMETRICS },
		{ "APPLICATION/OpenMetrics-Text ; Version=\"1.0.0\"", MP_EXPO_OPENMETRICS },
		{ "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
		  "text/plain;q=0.4", MP_EXPO_OPENMETRICS },
		/* another version of OpenMetrics is not what we write */
		{ "application/openmetrics-text;version=0.0.1", MP_EXPO_TEXT },
		{ "application/openmetrics-text;version=2.0.0", MP_EXPO_TEXT },
		/* q-values */
		{ "application/openmetrics-text;q=0.5, text/plain;q=0.9", MP_EXPO_TEXT },
		{ "text/plain;q=0, application/openmetrics-text;q=0.1", MP_EXPO_OPENMETRICS },
		{ "application/openmetrics-text;q=0", MP_EXPO_TEXT },
		{ "application/openmetrics-text;q=0.000, text/plain", MP_EXPO_TEXT },
		{ "application/openmetrics-text;q=1.000", MP_EXPO_OPENMETRICS },
		{ "application/openmetrics-text, text/plain", MP_EXPO_OPENMETRICS },
		/* a malformed q drops the range */
		{ "application/openmetrics-text;q=2", MP_EXPO_TEXT },
		{ "application/openmetrics-text;q=0.5x", MP_EXPO_TEXT },
		{ "application/openmetrics-text;q=1.5", MP_EXPO_TEXT },
		{ "application/openmetrics-text;q=0.1234", MP_EXPO_TEXT },
		/* the most specific range gives the q */
		{ "application/openmetrics-text;version=1.0.0;q=0, application/openmetrics-text",
		  MP_EXPO_TEXT },
		{ "text/plain;version=0.0.4;q=0.2, */*;q=0.9, application/openmetrics-text;q=0.5",
		  MP_EXPO_OPENMETRICS },
		{ "text/*;q=0.7, application/openmetrics-text;q=0.6", MP_EXPO_TEXT },
		/* wildcards never select OpenMetrics */
		{ "application/*", MP_EXPO_TEXT },
		/* garbage */
		{ ",,, ;;; /", MP_EXPO_TEXT },
		{ "application/openmetrics-text;;;q", MP_EXPO_OPENMETRICS },
		{ "openmetrics", MP_EXPO_TEXT },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (mp_exporter__negotiate(cases[i].accept) != cases[i].want)
			fail_msg("case %zu (%s): wrong format", i,
				 cases[i].accept ? cases[i].accept : "NULL");
	assert_string_equal(mp_exporter__content_type(MP_EXPO_TEXT),
			    "text/plain; version=0.0.4; charset=utf-8");
	assert_string_equal(mp_exporter__content_type(MP_EXPO_OPENMETRICS),
			    "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

static void window_closed_once_per_scrape_before_rows(void **state)
{
	struct table t;
	struct mp_exporter *e;
	char *s;

	(void)state;
	fill_one(&t);
	e = new_exporter(&t, MP_EXPORTER_PER_PROCESS, 0);
	s = scrape(e, MP_EXPO_TEXT, 1);
	free(s);
	assert_int_equal(t.windows, 1);
	assert_int_equal(t.each_calls, 1);
	assert_int_equal(t.window_before_each, 1);
	/* a look (HEAD) leaves the window open */
	s = scrape(e, MP_EXPO_OPENMETRICS, 0);
	free(s);
	assert_int_equal(t.windows, 1);
	assert_int_equal(t.each_calls, 2);
	s = scrape(e, MP_EXPO_TEXT, 1);
	free(s);
	assert_int_equal(t.windows, 2);
	assert_int_equal(t.window_before_each, 2);
	mp_exporter__free(e);
}

static void group_by_comm_sums_and_maxima(void **state)
{
	struct table t;
	struct mp_exporter *e;
	struct mp_fleet_proc *p;
	char *s;

	(void)state;
	memset(&t, 0, sizeof(t));
	add(&t, 10, "py", "/a", "alice", 10 * MIB, 50 * MIB, 20 * MIB);
	add(&t, 11, "py", "/b", "bob", 5 * MIB, 70 * MIB, 30 * MIB);
	p = add(&t, 12, "py", "/b", "bob", 9 * MIB, 9 * MIB, 9 * MIB);
	p->alive = false; /* exited since the previous scrape: shown once */
	p->oom_kills = 1;
	add(&t, 13, "sh", "/a", "alice", 1 * MIB, 2 * MIB, 1 * MIB);
	t.t.tracked = 3;
	e = new_exporter(&t, MP_EXPORTER_BY_COMM, -1);
	s = scrape(e, MP_EXPO_OPENMETRICS, 1);
	/* resident: the live processes' sum; peak and window max: the highest; sum of maxima */
	assert_int_equal(value_of(s, "mprof_resident_bytes{comm=\"py\"}"), 15 * MIB);
	assert_int_equal(value_of(s, "mprof_resident_peak_bytes{comm=\"py\"}"), 70 * MIB);
	assert_int_equal(value_of(s, "mprof_resident_window_max_bytes{comm=\"py\"}"), 30 * MIB);
	assert_int_equal(value_of(s, "mprof_resident_window_max_sum_bytes{comm=\"py\"}"), 59 * MIB);
	assert_int_equal(value_of(s, "mprof_tracked_processes{comm=\"py\"}"), 2);
	assert_int_equal(value_of(s, "mprof_process_oom_kills_total{comm=\"py\"}"), 1);
	assert_int_equal(value_of(s, "mprof_resident_bytes{comm=\"sh\"}"), 1 * MIB);
	assert_int_equal(value_of(s, "mprof_tracked_processes{comm=\"sh\"}"), 1);
	/* the run's counters stay unlabelled; tracked is per group, so sum() is the whole */
	assert_int_equal(value_of(s, "mprof_oom_kills_total"), 0);
	assert_int_equal(value_of(s, "mprof_tracked_processes"), -1);
	assert_null(strstr(s, "pid="));
	assert_null(strstr(s, "mprof_process_start_time_seconds"));
	free(s);

	/* the exited one and the peak holder leave: the group's peak and counter stay */
	t.rows[1] = t.rows[3];
	t.n = 2;
	t.rows[0].window_max = 11 * MIB;
	s = scrape(e, MP_EXPO_TEXT, 1);
	assert_int_equal(value_of(s, "mprof_resident_bytes{comm=\"py\"}"), 10 * MIB);
	assert_int_equal(value_of(s, "mprof_resident_peak_bytes{comm=\"py\"}"), 70 * MIB);
	assert_int_equal(value_of(s, "mprof_resident_window_max_bytes{comm=\"py\"}"), 11 * MIB);
	assert_int_equal(value_of(s, "mprof_process_oom_kills_total{comm=\"py\"}"), 1);
	assert_int_equal(value_of(s, "mprof_tracked_processes{comm=\"py\"}"), 1);
	free(s);

	/* the last py process is OOM-killed: 2; then it moves to comm "sh" (an exec) */
	t.rows[0].oom_kills = 1;
	s = scrape(e, MP_EXPO_TEXT, 1);
	assert_int_equal(value_of(s, "mprof_process_oom_kills_total{comm=\"py\"}"), 2);
	free(s);
	strcpy(t.rows[0].comm, "sh");
	t.rows[0].oom_kills = 3;
	s = scrape(e, MP_EXPO_TEXT, 1);
	/* its kills up to the previous scrape stay with py, the later ones count for sh */
	assert_int_equal(value_of(s, "mprof_process_oom_kills_total{comm=\"py\"}"), 2);
	assert_int_equal(value_of(s, "mprof_process_oom_kills_total{comm=\"sh\"}"), 2);
	assert_int_equal(value_of(s, "mprof_tracked_processes{comm=\"py\"}"), 0);
	assert_int_equal(value_of(s, "mprof_resident_bytes{comm=\"py\"}"), 0);
	assert_int_equal(value_of(s, "mprof_resident_bytes{comm=\"sh\"}"), 11 * MIB);
	assert_int_equal(value_of(s, "mprof_tracked_processes{comm=\"sh\"}"), 2);
	/* never dropped with group_idle_s < 0 */
	free(s);
	s = scrape(e, MP_EXPO_TEXT, 1);
	assert_int_equal(value_of(s, "mprof_resident_peak_bytes{comm=\"py\"}"), 70 * MIB);
	free(s);
	mp_exporter__free(e);
}

static void idle_groups_dropped(void **state)
{
	struct table t;
	struct mp_exporter *e;
	char *s;

	(void)state;
	memset(&t, 0, sizeof(t));
	add(&t, 1, "a", "/", "root", 1, 1, 1);
	add(&t, 2, "b", "/", "root", 2, 2, 2);
	e = new_exporter(&t, MP_EXPORTER_BY_COMM, 1e-9);
	free(scrape(e, MP_EXPO_TEXT, 1));
	t.n = 1;
	/* b has no process: shown once more (with its peak), then dropped */
	s = scrape(e, MP_EXPO_TEXT, 1);
	assert_int_equal(value_of(s, "mprof_resident_peak_bytes{comm=\"b\"}"), 2);
	assert_int_equal(value_of(s, "mprof_tracked_processes{comm=\"b\"}"), 0);
	free(s);
	usleep(1000);
	s = scrape(e, MP_EXPO_TEXT, 1);
	assert_null(strstr(s, "comm=\"b\""));
	assert_int_equal(value_of(s, "mprof_resident_bytes{comm=\"a\"}"), 1);
	free(s);
	/* when it comes back it starts afresh */
	t.n = 2;
	t.rows[1].peak = 1;
	s = scrape(e, MP_EXPO_TEXT, 1);
	assert_int_equal(value_of(s, "mprof_resident_peak_bytes{comm=\"b\"}"), 1);
	free(s);
	mp_exporter__free(e);
}

static void group_by_cgroup_and_user(void **state)
{
	struct table t;
	struct mp_exporter *e;
	char *s;

	(void)state;
	memset(&t, 0, sizeof(t));
	add(&t, 1, "a", "/x", "alice", 1 * MIB, 4 * MIB, 2 * MIB);
	add(&t, 2, "b", "/x", "bob", 2 * MIB, 3 * MIB, 3 * MIB);
	add(&t, 3, "c", "/y", "bob", 4 * MIB, 4 * MIB, 4 * MIB);
	e = new_exporter(&t, MP_EXPORTER_BY_CGROUP, 0);
	s = scrape(e, MP_EXPO_TEXT, 1);
	assert_int_equal(value_of(s, "mprof_resident_bytes{cgroup=\"/x\"}"), 3 * MIB);
	assert_int_equal(value_of(s, "mprof_resident_bytes{cgroup=\"/y\"}"), 4 * MIB);
	assert_int_equal(value_of(s, "mprof_resident_window_max_sum_bytes{cgroup=\"/x\"}"), 5 * MIB);
	free(s);
	mp_exporter__free(e);
	e = new_exporter(&t, MP_EXPORTER_BY_USER, 0);
	s = scrape(e, MP_EXPO_TEXT, 1);
	assert_int_equal(value_of(s, "mprof_resident_bytes{user=\"bob\"}"), 6 * MIB);
	assert_int_equal(value_of(s, "mprof_resident_peak_bytes{user=\"bob\"}"), 4 * MIB);
	assert_int_equal(value_of(s, "mprof_tracked_processes{user=\"alice\"}"), 1);
	free(s);
	mp_exporter__free(e);
}

static void many_groups(void **state)
{
	struct table t;
	struct mp_exporter *e;
	char *s, name[32];

	(void)state;
	memset(&t, 0, sizeof(t));
	/* past the first hash table size, and a pid reused with another start time */
	e = new_exporter(&t, MP_EXPORTER_BY_COMM, -1);
	for (int round = 0; round < 20; round++) {
		t.n = 0;
		for (int i = 0; i < MAXROWS; i++) {
			snprintf(name, sizeof(name), "c%d", (round * MAXROWS + i) % 1000);
			add(&t, 100 + i, name, "/", "u", 1, (uint64_t)round + 1, 1);
		}
		free(scrape(e, MP_EXPO_TEXT, 1));
	}
	s = scrape(e, MP_EXPO_TEXT, 1);
	assert_int_equal(value_of(s, "mprof_resident_peak_bytes{comm=\"c0\"}"), 1);
	assert_int_equal(value_of(s, "mprof_resident_peak_bytes{comm=\"c319\"}"), 20);
	assert_int_equal(value_of(s, "mprof_tracked_processes{comm=\"c5\"}"), 0);
	free(s);
	mp_exporter__free(e);
}

static void source_errors_fail_the_scrape(void **state)
{
	struct table t;
	struct mp_exporter *e;
	struct mp_exporter_stats st;
	char *body = (char *)1;
	size_t len = 1;

	(void)state;
	fill_one(&t);
	add(&t, 43, "new", "/", "u", 1, 1, 1);
	e = new_exporter(&t, MP_EXPORTER_BY_COMM, 0);
	t.window_err = -EAGAIN;
	assert_int_equal(mp_exporter__scrape(e, MP_EXPO_TEXT, 1, &body, &len), -EAGAIN);
	assert_null(body);
	assert_int_equal(len, 0);
	t.window_err = 0;
	t.each_err = -ENOMEM;
	assert_int_equal(mp_exporter__scrape(e, MP_EXPO_TEXT, 1, &body, &len), -ENOMEM);
	t.each_err = 0;
	/* a failure half-way leaves no trace: "new" was never scraped, no group for it */
	t.fail_after = 1;
	assert_int_equal(mp_exporter__scrape(e, MP_EXPO_TEXT, 1, &body, &len), -EIO);
	t.fail_after = 0;
	t.n = 1;
	body = scrape(e, MP_EXPO_TEXT, 1);
	assert_null(strstr(body, "comm=\"new\""));
	assert_int_equal(value_of(body, "mprof_resident_bytes{comm=\"python3\"}"), (long long)MIB);
	free(body);
	mp_exporter__stats(e, &st);
	assert_int_equal(st.scrapes, 0); /* counted by the HTTP side only */
	mp_exporter__free(e);
}

static void empty_table(void **state)
{
	struct table t;
	struct mp_exporter *e;
	char *s;

	(void)state;
	memset(&t, 0, sizeof(t));
	e = new_exporter(&t, MP_EXPORTER_PER_PROCESS, 0);
	s = scrape(e, MP_EXPO_OPENMETRICS, 1);
	assert_non_null(strstr(s, "# TYPE mprof_resident_bytes gauge\n"));
	assert_int_equal(value_of(s, "mprof_tracked_processes"), 0);
	assert_non_null(strstr(s, "# EOF\n"));
	free(s);
	mp_exporter__free(e);
	mp_exporter__free(NULL);
}

/* A table of @n processes whose start times are @t[]. */
struct times {
	struct mp_fleet_proc *rows;
	size_t n;
};

static int times_each(void *ctx, mp_fleet_fn fn, void *fctx)
{
	struct times *t = ctx;

	for (size_t i = 0; i < t->n; i++) {
		int err = fn(fctx, &t->rows[i]);

		if (err)
			return err;
	}
	return 0;
}

static void start_times_as_printf_writes_them(void **state)
{
	enum { N = 6000 };
	struct times t = { calloc(N, sizeof(struct mp_fleet_proc)), N };
	struct mp_exporter_src src = { times_each, NULL, NULL, &t };
	struct mp_exporter *e = NULL;
	char *body, *s, want[64], prefix[64];
	size_t len;
	uint64_t x = 88172645463325252ull;

	(void)state;
	assert_non_null(t.rows);
	for (size_t i = 0; i < N; i++) {
		double v;

		/* xorshift: reproducible "random" bits */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (i < 2000)	   /* now-ish epochs, every fraction bit */
			v = 1.7e9 + (double)(x % 400000000) / 1e4 + (double)(x >> 40) / 16777216.0;
		else if (i < 4000) /* j/128 s: exact half-microsecond ties for every odd j */
			v = 1700000000.0 + (double)(i - 2000) / 128.0;
		else if (i < 5990) /* the whole range of the fast path and past it */
			v = ldexp(1.0 + (double)(x % 1000000) / 1e6, (int)(i % 60));
		else
			v = (double[]){ 0.0, 0.5, 1048576.0, 1048575.9999995, 9007199254740991.0,
					9007199254740992.0, 1e17, 1700000000.9999995, 1.5e-7,
					1700000000.0000005 }[i - 5990];
		t.rows[i].pid = (pid_t)(i + 1);
		t.rows[i].start_t = v;
	}
	assert_int_equal(mp_exporter__new(&e, &src, &(struct mp_exporter_opts){
			 .group_by = MP_EXPORTER_BY_PID }, NULL), 0);
	assert_int_equal(mp_exporter__scrape(e, MP_EXPO_TEXT, 1, &body, &len), 0);
	s = strndup(body, len);
	for (size_t i = 0; i < N; i++) {
		const char *line;

		snprintf(prefix, sizeof(prefix), "\nmprof_process_start_time_seconds{pid=\"%zu\"} ",
			 i + 1);
		line = strstr(s, prefix);
		assert_non_null(line);
		line += strlen(prefix);
		snprintf(want, sizeof(want), "%.6f\n", t.rows[i].start_t);
		if (strncmp(line, want, strlen(want)))
			fail_msg("%.17g: got %.30s, want %s", t.rows[i].start_t, line, want);
	}
	free(s);
	free(body);
	free(t.rows);
	mp_exporter__free(e);
}

static void parse_group(void **state)
{
	enum mp_exporter_group g = MP_EXPORTER_PER_PROCESS;

	(void)state;
	assert_int_equal(mp_exporter__parse_group("comm", &g), 0);
	assert_int_equal(g, MP_EXPORTER_BY_COMM);
	assert_int_equal(mp_exporter__parse_group("pid", &g), 0);
	assert_int_equal(g, MP_EXPORTER_BY_PID);
	assert_int_equal(mp_exporter__parse_group("cgroup", &g), 0);
	assert_int_equal(g, MP_EXPORTER_BY_CGROUP);
	assert_int_equal(mp_exporter__parse_group("user", &g), 0);
	assert_int_equal(g, MP_EXPORTER_BY_USER);
	assert_int_equal(mp_exporter__parse_group("Comm", &g), -EINVAL);
	assert_int_equal(mp_exporter__parse_group("", &g), -EINVAL);
	assert_int_equal(mp_exporter__parse_group(NULL, &g), -EINVAL);
}

static int listen_on(const char *addr, struct mp_exporter **out, const char **why)
{
	static struct table t;
	struct mp_exporter_src src = { t_each, t_totals, t_window, &t };
	struct mp_exporter_opts o = { .listen = addr };

	*why = NULL;
	return mp_exporter__new(out, &src, &o, why);
}

/* Is @port on @family's loopback accepting connections? */
static int can_connect(int family, int port)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
				   .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	assert_true(fd >= 0);
	ok = family == AF_INET ? !connect(fd, (struct sockaddr *)&a4, sizeof(a4))
			       : !connect(fd, (struct sockaddr *)&a6, sizeof(a6));
	close(fd);
	return ok;
}

static void listen_addresses(void **state)
{
	static const struct {
		const char *addr;
		int err;
		const char *why;
	} bad[] = {
		{ "", -EINVAL, "listen address must be HOST:PORT, [IPV6]:PORT, :PORT or PORT" },
		{ "[::1]", -EINVAL, "listen address must be HOST:PORT, [IPV6]:PORT, :PORT or PORT" },
		{ "[]:80", -EINVAL, "listen address must be HOST:PORT, [IPV6]:PORT, :PORT or PORT" },
		{ "[::1:80", -EINVAL, "listen address must be HOST:PORT, [IPV6]:PORT, :PORT or PORT" },
		{ "::1:80", -EINVAL, "an IPv6 address needs brackets: [ADDRESS]:PORT" },
		{ "127.0.0.1", -EINVAL, "port must be a number from 0 to 65535" },
		{ "127.0.0.1:", -EINVAL, "port must be a number from 0 to 65535" },
		{ "127.0.0.1:65536", -EINVAL, "port must be a number from 0 to 65535" },
		{ "127.0.0.1:-1", -EINVAL, "port must be a number from 0 to 65535" },
		{ "127.0.0.1:80x", -EINVAL, "port must be a number from 0 to 65535" },
		{ "127.0.0.1:123456", -EINVAL, "port must be a number from 0 to 65535" },
		{ "http", -EINVAL, "port must be a number from 0 to 65535" },
		{ "no such host.invalid:80", -EINVAL, "unknown host" },
		{ "192.0.2.1:0", -EADDRNOTAVAIL, "address not available on this machine" },
	};
	struct mp_exporter *e = NULL, *e2 = NULL;
	const char *why;
	char addr[64];
	int port, err;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = listen_on(bad[i].addr, &e, &why);
		if (err != bad[i].err || !why || strcmp(why, bad[i].why))
			fail_msg("%s: got %d (%s), want %d (%s)", bad[i].addr, err,
				 why ? why : "NULL", bad[i].err, bad[i].why);
		assert_null(e);
	}
	/* port 0: a free port, on 127.0.0.1 */
	assert_int_equal(listen_on("0", &e, &why), 0);
	port = mp_exporter__port(e);
	assert_true(port > 0 && port < 65536);
	assert_non_null(mp_exporter__source(e));
	assert_true(mp_exporter__source(e)->fd >= 0);
	assert_true(can_connect(AF_INET, port));
	/* the same port again: busy */
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	assert_int_equal(listen_on(addr, &e2, &why), -EADDRINUSE);
	assert_string_equal(why, "address already in use");
	snprintf(addr, sizeof(addr), ":%d", port);
	assert_int_equal(listen_on(addr, &e2, &why), -EADDRINUSE);
	mp_exporter__free(e);
	/* freed: the port is closed (libmicrohttpd closed the socket) and can be taken again */
	assert_false(can_connect(AF_INET, port));
	assert_int_equal(listen_on(addr, &e, &why), 0);
	assert_int_equal(mp_exporter__port(e), port);
	mp_exporter__free(e);
	assert_int_equal(listen_on("localhost:0", &e, &why), 0);
	mp_exporter__free(e);
	/* IPv6, where this machine has it */
	err = listen_on("[::1]:0", &e, &why);
	if (err == -EADDRNOTAVAIL || err == -EAFNOSUPPORT) {
		print_message("IPv6 loopback not available here: %s\n", why);
		return;
	}
	assert_int_equal(err, 0);
	assert_true(can_connect(AF_INET6, mp_exporter__port(e)));
	assert_false(can_connect(AF_INET, mp_exporter__port(e)));
	mp_exporter__free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(text_format_exactly),
		cmocka_unit_test(openmetrics_format_exactly),
		cmocka_unit_test(group_by_pid_has_only_pid),
		cmocka_unit_test(labels_escaped_and_valid_utf8),
		cmocka_unit_test(cgroup_and_user_escaped),
		cmocka_unit_test(negotiation),
		cmocka_unit_test(window_closed_once_per_scrape_before_rows),
		cmocka_unit_test(group_by_comm_sums_and_maxima),
		cmocka_unit_test(idle_groups_dropped),
		cmocka_unit_test(group_by_cgroup_and_user),
		cmocka_unit_test(many_groups),
		cmocka_unit_test(source_errors_fail_the_scrape),
		cmocka_unit_test(empty_table),
		cmocka_unit_test(start_times_as_printf_writes_them),
		cmocka_unit_test(parse_group),
		cmocka_unit_test(listen_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

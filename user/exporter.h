/*
 * mp_exporter: the fleet's table (user/fleet.h) as Prometheus metrics, served over HTTP at
 * /metrics in the Prometheus text format 0.0.4 or OpenMetrics 1.0.0, whichever the client's
 * Accept header asks for.
 *
 * It runs inside the recording loop (user/loop.h), on its thread: libmicrohttpd is driven in
 * its external-event-loop mode (no thread of its own), through one descriptor, the source's fd,
 * which becomes readable when a client needs serving or a connection's deadline is due. So the
 * table is read without a lock, and a slow or hostile client costs a connection slot until its
 * timeout, never a wait of the loop.
 *
 * The data comes through a small table of functions (struct mp_exporter_src), so the exporter
 * knows nothing of the fleet's internals and unit tests feed it synthetic tables. Every GET of
 * /metrics is one scrape: window() first, so that window_max covers exactly the time since the
 * previous scrape, then totals() and each(). Nothing here prints.
 */
#ifndef MP_EXPORTER_H
#define MP_EXPORTER_H

#include <stddef.h>
#include <stdint.h>

#include "fleet.h"
#include "loop.h"

/* Where the rows come from (the fleet wires mp_fleet__each/totals/window and itself as ctx). */
struct mp_exporter_src {
	int (*each)(void *ctx, mp_fleet_fn fn, void *fctx);
	void (*totals)(void *ctx, struct mp_fleet_totals *out);
	int (*window)(void *ctx);
	void *ctx;
};

/* The label sets of the per-process metrics (--group-by). */
enum mp_exporter_group {
	MP_EXPORTER_PER_PROCESS = 0, /* one series per process: pid, comm, cgroup, user */
	MP_EXPORTER_BY_PID,	     /* one series per process, label pid only */
	MP_EXPORTER_BY_COMM,	     /* one series per command name, label comm */
	MP_EXPORTER_BY_CGROUP,	     /* one series per cgroup, label cgroup */
	MP_EXPORTER_BY_USER,	     /* one series per user, label user */
};

/* The two text formats. */
enum mp_expo_format {
	MP_EXPO_TEXT = 0,	 /* Prometheus text format 0.0.4 */
	MP_EXPO_OPENMETRICS = 1, /* OpenMetrics 1.0.0 */
};

struct mp_exporter_opts {
	/*
	 * HOST:PORT, [IPV6]:PORT, :PORT or PORT (host 127.0.0.1); port 0 takes a free port
	 * (mp_exporter__port() says which). NULL: no HTTP server, only mp_exporter__scrape().
	 */
	const char *listen;
	enum mp_exporter_group group_by;
	/* Seconds of inactivity before a connection is closed (0: 10). */
	unsigned int conn_timeout_s;
	/* Connections served at once; more wait in the kernel's backlog (0: 32). */
	unsigned int max_conns;
	/*
	 * Grouped modes: seconds a group that has no process left keeps being exported (its
	 * counters and peak), so that its counters do not reset when a process comes and goes
	 * (< 0: never dropped; 0: 600).
	 */
	double group_idle_s;
};

struct mp_exporter_stats {
	uint64_t requests; /* HTTP requests answered, every path and status */
	uint64_t scrapes;  /* GETs of /metrics answered with 200 (windows closed) */
	uint64_t errors;   /* scrapes that failed (500): the source's or our -errno */
	int last_error;	   /* the last such -errno, 0 if none */
};

struct mp_exporter;

/*
 * Parse --group-by's argument: "pid", "comm", "cgroup" or "user". Returns 0 with *@out set, or
 * -EINVAL.
 */
int mp_exporter__parse_group(const char *s, enum mp_exporter_group *out);

/*
 * Create an exporter reading @src (copied) and, if @opts->listen is set, listening there (the
 * socket is bound and listening on return). Returns 0 with *@out set, or -errno with *@why (if
 * not NULL) pointing to a static one-line reason: -EINVAL for an address that does not parse
 * ("listen address must be HOST:PORT, [IPV6]:PORT, :PORT or PORT", ...), -EADDRINUSE ("address
 * already in use"), -EADDRNOTAVAIL, -EACCES, -ENOMEM, ...
 */
int mp_exporter__new(struct mp_exporter **out, const struct mp_exporter_src *src,
		     const struct mp_exporter_opts *opts, const char **why);

/* Stop serving (open connections are closed) and free. Accepts NULL. */
void mp_exporter__free(struct mp_exporter *e);

/*
 * The descriptor for the recording loop (mp_loop_opts.sources): its ready() serves whatever
 * is waiting and returns 0, or -EIO if libmicrohttpd fails. Owned by @e; NULL without a
 * server.
 */
struct mp_source *mp_exporter__source(struct mp_exporter *e);

/* The TCP port listened on (the one the kernel chose for port 0), or -1 without a server. */
int mp_exporter__port(const struct mp_exporter *e);

/* What the HTTP side has served so far (for --stats and tests). */
void mp_exporter__stats(const struct mp_exporter *e, struct mp_exporter_stats *out);

/*
 * The format an Accept header (NULL: none) asks for: OpenMetrics when
 * application/openmetrics-text (version 1.0.0, or no version) is acceptable with a q-value at
 * least that of the text format (text/plain with version 0.0.4 or none, text/ANY, ANY/ANY,
 * each range's q taken from its most specific match), otherwise the text format. Wildcards
 * alone never select OpenMetrics.
 */
enum mp_expo_format mp_exporter__negotiate(const char *accept);

/* The Content-Type of format @f (a static string). */
const char *mp_exporter__content_type(enum mp_expo_format f);

/*
 * One exposition in format @f: with @close_window, a scrape (the source's window() first, as
 * a GET of /metrics does), else a look that leaves the window open (HEAD). On success *@body
 * is a malloc'd text of *@len bytes (not NUL-terminated), which the caller frees. Returns 0,
 * or -errno (the source's, or -ENOMEM) with nothing allocated.
 */
int mp_exporter__scrape(struct mp_exporter *e, enum mp_expo_format f, int close_window,
			char **body, size_t *len);

#endif

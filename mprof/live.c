/*
 * The live view (live.h): a snapshot of the table taken at each tick, shown either as a
 * curses screen or as plain lines. Keys and resizes only re-sort and redraw the last snapshot;
 * the table is read only at ticks, so what the screen shows is always one instant.
 */
#define NCURSES_WIDECHAR 1

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <locale.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>
#include <wctype.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

#include <ncurses.h>
#include <term.h>
/* term.h names every terminfo capability as a macro; these two are also plain words here */
#undef lines
#undef columns

#include "live.h"

/*
 * Column widths, chosen so that a row fits 80 columns with the 15 bytes of a comm: a pid has
 * at most 7 digits (pid_max is at most 4194304), human bytes at most 8 ("1023 MiB"), a signed
 * growth 9 ("+1023 MiB"), a time of day 8; that is 79, and the one column left goes to USER.
 */
#define W_PID 7
#define W_USER 9
#define W_CMD 15
#define W_BYTES 8
#define W_WHEN 8
#define W_GROWTH 9
#define W_CHILD 8
#define NCOLS 8
#define W_FIXED (W_PID + W_BYTES + W_BYTES + W_WHEN + W_GROWTH + W_CHILD + (NCOLS - 1))
#define W_CMD_MIN 4
#define W_USER_WIDE 24 /* how wide USER grows on a wide screen; COMMAND takes the rest */
#define HEAD_LINES 3	/* title, totals, column titles */
#define MIN_LINES (HEAD_LINES + 2)
#define MIN_COLS 20
#define ESC_DELAY_MS 25 /* an arrow key's bytes arrive in one write: no need to wait long */

/* Sort keys of the screen (keys r, p, g). */
enum mp_live_sort {
	MP_LIVE_BY_RSS = 0,
	MP_LIVE_BY_PEAK = 1,
	MP_LIVE_BY_GROWTH = 2,
};

/* One process as the snapshot holds it: a copy, since the table's strings are the table's. */
struct row {
	pid_t pid;
	bool alive;
	unsigned int children;
	uint64_t rss, peak;
	int64_t growth;
	double peak_t;
	size_t user; /* offset of its user name in the snapshot's strings */
	char comm[MP_FLEET_COMM_LEN + 1];
};

struct mp_live {
	struct mp_live_src src;
	enum mp_live_mode mode;
	FILE *out;
	const char *title;
	double start;

	/* the snapshot of the last tick */
	struct row *rows;
	size_t nrows, cap;
	char *strs; /* the rows' user names, of any length, one after the other */
	size_t nstrs, strs_cap;
	struct mp_fleet_totals tot;
	double now;
	int have_snapshot;
	int header_done; /* lines: the header was written */

	/* the screen */
	SCREEN *scr;
	FILE *in;
	int own_in;
	int epfd;
	int in_fd;   /* the keys' fd in the epoll set, -1 once gone */
	int winch[2];
	/* the dispositions before and while the screen is up (see curses_sigs) */
	struct sigaction sig_before[4], sig_during[4];
	int sigs_saved;
	char *old_ctype;
	enum mp_live_sort sort;
	size_t top; /* first row shown */
	int help;
	wchar_t *wbuf; /* one screen line being built */
	attr_t *abuf;
	size_t wcap;

	struct mp_source source;
	struct mp_sink sink;
};

/* The one screen view: the SIGWINCH handler and the exit-time safety net reach it here. */
static struct mp_live *screen_view;
/*
 * The signals curses takes in newterm() when they are at their default (it restores the
 * terminal on SIGINT and SIGTERM, and on SIGTSTP until SIGCONT), and SIGWINCH, which is ours.
 * They are given back at the end unless the caller has set them since.
 */
static const int curses_sigs[4] = { SIGINT, SIGTERM, SIGTSTP, SIGWINCH };
static volatile sig_atomic_t winch_fd = -1;
static int atexit_done;

/* ---- the snapshot --------------------------------------------------------------- */

static int collect(void *ctx, const struct mp_fleet_proc *p)
{
	struct mp_live *v = ctx;
	char uid[16];
	const char *user;
	struct row *r;
	size_t len;

	if (v->nrows == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		struct row *n = reallocarray(v->rows, cap, sizeof(*n));

		if (!n)
			return -ENOMEM;
		v->rows = n;
		v->cap = cap;
	}
	r = &v->rows[v->nrows++];
	memset(r, 0, sizeof(*r));
	r->pid = p->pid;
	r->alive = p->alive;
	r->children = p->children;
	r->rss = p->rss;
	r->peak = p->peak;
	r->growth = p->growth_1m;
	r->peak_t = p->peak_t;
	memcpy(r->comm, p->comm, MP_FLEET_COMM_LEN);
	r->comm[MP_FLEET_COMM_LEN] = '\0';
	if (p->user) {
		user = p->user;
	} else {
		snprintf(uid, sizeof(uid), "%u", (unsigned int)p->uid);
		user = uid;
	}
	len = strlen(user) + 1;
	if (v->strs_cap - v->nstrs < len) {
		size_t cap = v->strs_cap ? v->strs_cap : 1024;
		char *n;

		while (cap - v->nstrs < len)
			cap *= 2;
		n = realloc(v->strs, cap);
		if (!n) {
			v->nrows--;
			return -ENOMEM;
		}
		v->strs = n;
		v->strs_cap = cap;
	}
	memcpy(v->strs + v->nstrs, user, len);
	r->user = v->nstrs;
	v->nstrs += len;
	return 0;
}

static const char *row_user(const struct mp_live *v, const struct row *r)
{
	return v->strs + r->user;
}

static int take_snapshot(struct mp_live *v, double now)
{
	int err;

	v->nrows = 0;
	v->nstrs = 0;
	err = v->src.each(v->src.ctx, collect, v);
	if (err) {
		v->nrows = 0;
		return err;
	}
	memset(&v->tot, 0, sizeof(v->tot));
	v->src.totals(v->src.ctx, &v->tot);
	v->now = now;
	v->have_snapshot = 1;
	return 0;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

/* Live processes first, then the chosen key, largest first; the pid breaks ties. */
static int cmp_rows(const void *pa, const void *pb, void *ctx)
{
	const struct row *a = pa, *b = pb;
	enum mp_live_sort key = *(const enum mp_live_sort *)ctx;
	int c = 0;

	if (a->alive != b->alive)
		return a->alive ? -1 : 1;
	switch (key) {
	case MP_LIVE_BY_RSS:
		c = -cmp_u64(a->rss, b->rss);
		break;
	case MP_LIVE_BY_PEAK:
		c = -cmp_u64(a->peak, b->peak);
		break;
	case MP_LIVE_BY_GROWTH:
		c = a->growth < b->growth ? 1 : -(a->growth > b->growth);
		break;
	}
	if (c)
		return c;
	return a->pid < b->pid ? -1 : a->pid > b->pid;
}

static int cmp_pid(const void *pa, const void *pb)
{
	const struct row *a = pa, *b = pb;

	return a->pid < b->pid ? -1 : a->pid > b->pid;
}

/* ---- plain lines ------------------------------------------------------------------ */

/* Write @s as one blank-free field (live.h): \xHH outside 0x21-0x7e and for '\'. */
static void put_field(FILE *f, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	if (!*s) {
		fputc('-', f);
		return;
	}
	if (!strcmp(s, "-")) {
		fputs("\\x2d", f);
		return;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c > 0x20 && c < 0x7f && c != '\\') {
			fputc(c, f);
		} else {
			fputc('\\', f);
			fputc('x', f);
			fputc(hex[c >> 4], f);
			fputc(hex[c & 15], f);
		}
	}
}

static int write_lines(struct mp_live *v)
{
	const struct mp_fleet_totals *t = &v->tot;

	errno = 0;
	if (!v->header_done) {
		fputs("# mprof fleet v1\n"
		      "# total <epoch> <tracked> <started> <exited> <oom_kills> <records_lost> "
		      "<procs_dropped>\n"
		      "# proc <epoch> <pid> <user> <comm> <rss_bytes> <peak_bytes> <peak_epoch> "
		      "<growth_bytes> <children> <state>\n",
		      v->out);
		v->header_done = 1;
	}
	fprintf(v->out, "total %.4f %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
		" %" PRIu64 "\n",
		v->now, t->tracked, t->starts, t->exits, t->oom_kills, t->records_lost,
		t->procs_dropped);
	if (v->nrows)
		qsort(v->rows, v->nrows, sizeof(*v->rows), cmp_pid);
	for (size_t i = 0; i < v->nrows; i++) {
		const struct row *r = &v->rows[i];

		fprintf(v->out, "proc %.4f %d ", v->now, (int)r->pid);
		put_field(v->out, row_user(v, r));
		fputc(' ', v->out);
		put_field(v->out, r->comm);
		fprintf(v->out, " %" PRIu64 " %" PRIu64 " %.4f %" PRId64 " %u %s\n", r->rss, r->peak,
			r->peak_t, r->growth, r->children, r->alive ? "alive" : "exited");
	}
	if (fflush(v->out) || ferror(v->out)) {
		int err = errno ? -errno : -EIO;

		clearerr(v->out);
		return err;
	}
	return 0;
}

/* ---- formatting ------------------------------------------------------------------- */

/* Human bytes in at most 8 characters: "1023 B", "9.99 KiB", "99.9 MiB", "1023 GiB". */
static void fmt_bytes(char *b, size_t n, uint64_t v)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double x = (double)v;
	size_t u = 0;

	if (v < 1024) {
		snprintf(b, n, "%" PRIu64 " B", v);
		return;
	}
	x /= 1024;
	/* switch unit before the rounding would print 1024 */
	while (x >= 1023.5 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		x /= 1024;
		u++;
	}
	if (x < 9.995)
		snprintf(b, n, "%.2f %s", x, unit[u]);
	else if (x < 99.95)
		snprintf(b, n, "%.1f %s", x, unit[u]);
	else
		snprintf(b, n, "%.0f %s", x, unit[u]);
}

static void fmt_growth(char *b, size_t n, int64_t g)
{
	uint64_t mag = g < 0 ? (uint64_t)0 - (uint64_t)g : (uint64_t)g;

	if (!g) {
		snprintf(b, n, "0");
		return;
	}
	b[0] = g < 0 ? '-' : '+';
	fmt_bytes(b + 1, n - 1, mag);
}

/* When the peak was: "now", "-35s" within 100 s, a time of day within a day, else a date. */
static void fmt_when(char *b, size_t n, double t, double now)
{
	double age = now - t;
	time_t tt = (time_t)t;
	struct tm tm;

	if (!(t > 0)) {
		snprintf(b, n, "-");
	} else if (age < 0.5) {
		snprintf(b, n, "now");
	} else if (age < 99.5) {
		snprintf(b, n, "-%ds", (int)(age + 0.5));
	} else if (!localtime_r(&tt, &tm)) {
		snprintf(b, n, "?");
	} else if (age < 86400) {
		strftime(b, n, "%H:%M:%S", &tm);
	} else {
		strftime(b, n, "%b %d", &tm);
	}
}

static void fmt_duration(char *b, size_t n, double s)
{
	unsigned long long t = s > 0 ? (unsigned long long)s : 0;

	if (t >= 86400)
		snprintf(b, n, "%llud%02llu:%02llu:%02llu", t / 86400, t / 3600 % 24, t / 60 % 60,
			 t % 60);
	else
		snprintf(b, n, "%llu:%02llu:%02llu", t / 3600, t / 60 % 60, t % 60);
}

/* ---- building one screen line ------------------------------------------------------- */

/*
 * A screen line is built as wide characters with one attribute each and a running display
 * width, then put on the screen clipped to the terminal's width: nothing ever wraps.
 */
struct wline {
	wchar_t *c;
	attr_t *a;
	size_t n, cap;
	int width;
};

static void wl_reset(struct mp_live *v, struct wline *l)
{
	l->c = v->wbuf;
	l->a = v->abuf;
	l->cap = v->wcap;
	l->n = 0;
	l->width = 0;
}

static void wl_push(struct wline *l, wchar_t c, int w, attr_t a)
{
	if (l->n + 1 >= l->cap)
		return;
	l->c[l->n] = c;
	l->a[l->n] = a;
	l->n++;
	l->width += w;
}

/*
 * Decode @s for display: each character of the locale's encoding as it is, anything that does
 * not decode, a control character, or a character with no width at the start, as '?'. Fills
 * @out (at most @max) and the display widths in @w; returns the count, and sets *@more when
 * @s had more than @max characters.
 */
static size_t to_display(const char *s, wchar_t *out, int *w, size_t max, int *more)
{
	size_t len = strlen(s), i = 0, n = 0;
	mbstate_t st;

	memset(&st, 0, sizeof(st));
	while (i < len && n < max) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s + i, len - i, &st);
		int cw;

		if (k == (size_t)-1 || k == (size_t)-2 || k == 0) {
			/* a byte of a bad or cut sequence: one '?' each */
			wc = L'?';
			k = 1;
			memset(&st, 0, sizeof(st));
		}
		cw = wcwidth(wc);
		if (cw < 0 || iswcntrl((wint_t)wc) || (cw == 0 && n == 0)) {
			wc = L'?';
			cw = 1;
		}
		out[n] = wc;
		w[n] = cw;
		n++;
		i += k;
	}
	*more = i < len;
	return n;
}

/*
 * One cell of @width columns: @s aligned left or right, cut with a '+' in its last column when
 * it is wider (a wide character that would straddle the cut is left out).
 */
static void wl_cell(struct wline *l, const char *s, int width, int right, attr_t a)
{
	wchar_t wc[256];
	int cw[256], sw = 0, room = width, used = 0, more;
	size_t n = to_display(s, wc, cw, sizeof(wc) / sizeof(wc[0]), &more), k = 0;

	if (width <= 0)
		return;
	for (size_t i = 0; i < n; i++)
		sw += cw[i];
	if (sw > width || more) {
		room = width - 1;
		while (k < n && used + cw[k] <= room)
			used += cw[k++];
		for (size_t i = 0; i < k; i++)
			wl_push(l, wc[i], cw[i], a);
		for (; used < room; used++)
			wl_push(l, L' ', 1, a);
		wl_push(l, L'+', 1, a);
		return;
	}
	if (right)
		for (int i = sw; i < width; i++)
			wl_push(l, L' ', 1, a);
	for (size_t i = 0; i < n; i++)
		wl_push(l, wc[i], cw[i], a);
	if (!right)
		for (int i = sw; i < width; i++)
			wl_push(l, L' ', 1, a);
}

static void wl_text(struct wline *l, const char *s, attr_t a)
{
	for (; *s; s++)
		wl_push(l, (wchar_t)(unsigned char)*s, 1, a);
}

/* Put @l on screen line @y, clipped to @cols display columns, the rest of the line cleared. */
static void wl_put(const struct wline *l, int y, int cols, attr_t fill)
{
	int x = 0;
	size_t i = 0;

	move(y, 0);
	while (i < l->n) {
		size_t j = i;
		int w = 0;

		/* a run of one attribute that fits */
		while (j < l->n && l->a[j] == l->a[i] && x + w + wcwidth(l->c[j]) <= cols) {
			int cw = wcwidth(l->c[j]);

			w += cw > 0 ? cw : 0;
			j++;
		}
		if (j == i)
			break;
		attrset(l->a[i]);
		addnwstr(l->c + i, (int)(j - i));
		x += w;
		i = j;
	}
	attrset(fill);
	/* fill the rest with the line's attribute (the column titles are reversed to the edge) */
	for (; x < cols; x++)
		addch(' ');
	attrset(A_NORMAL);
}

/* ---- the screen ------------------------------------------------------------------- */

struct layout {
	int user_w, cmd_w;
	int body; /* rows of the table that fit */
};

static struct layout layout_for(const struct mp_live *v, int lines, int cols)
{
	struct layout lo = { W_USER, W_CMD, lines - HEAD_LINES - 1 };
	int slack = cols - (W_FIXED + W_USER + W_CMD), longest = W_USER;

	if (lo.body < 0)
		lo.body = 0;
	if (slack < 0) {
		lo.cmd_w = W_CMD + slack < W_CMD_MIN ? W_CMD_MIN : W_CMD + slack;
		return lo;
	}
	/* a wider screen shows user names whole (up to W_USER_WIDE) first; COMMAND takes the rest */
	for (size_t i = 0; i < v->nrows; i++) {
		int len = (int)strlen(row_user(v, &v->rows[i]));

		if (len > longest)
			longest = len < W_USER_WIDE ? len : W_USER_WIDE;
	}
	lo.user_w = W_USER + (longest - W_USER < slack ? longest - W_USER : slack);
	lo.cmd_w = W_CMD + slack - (lo.user_w - W_USER);
	return lo;
}

static const char *sort_name(enum mp_live_sort s)
{
	switch (s) {
	case MP_LIVE_BY_PEAK:
		return "PEAK";
	case MP_LIVE_BY_GROWTH:
		return "GROWTH/1m";
	default:
		return "RSS";
	}
}

static void draw_title(struct mp_live *v, int cols, const struct layout *lo)
{
	struct wline l;
	char clock[16], up[32], mid[128], right[64];
	time_t tt = (time_t)v->now;
	struct tm tm;
	size_t first = v->nrows ? v->top + 1 : 0;
	size_t last = v->top + (size_t)lo->body < v->nrows ? v->top + (size_t)lo->body : v->nrows;
	int pad;

	if (!localtime_r(&tt, &tm) || !strftime(clock, sizeof(clock), "%H:%M:%S", &tm))
		snprintf(clock, sizeof(clock), "?");
	fmt_duration(up, sizeof(up), v->now - v->start);
	snprintf(mid, sizeof(mid), "  %s  up %s  sorted by %s", clock, up, sort_name(v->sort));
	snprintf(right, sizeof(right), "rows %zu-%zu of %zu", first, last, v->nrows);
	wl_reset(v, &l);
	wl_cell(&l, v->title, (int)strlen(v->title) < cols ? (int)strlen(v->title) : cols, 0,
		A_BOLD);
	wl_text(&l, mid, A_NORMAL);
	pad = cols - l.width - (int)strlen(right);
	if (pad >= 2) {
		for (int i = 0; i < pad; i++)
			wl_push(&l, L' ', 1, A_NORMAL);
		wl_text(&l, right, A_NORMAL);
	}
	wl_put(&l, 0, cols, A_NORMAL);
}

static void draw_totals(struct mp_live *v, int cols)
{
	const struct { const char *name; uint64_t n; int alarm; } f[] = {
		{ "tracked", v->tot.tracked, 0 },	  { "started", v->tot.starts, 0 },
		{ "exited", v->tot.exits, 0 },		  { "OOM kills", v->tot.oom_kills, 1 },
		{ "records lost", v->tot.records_lost, 1 }, { "dropped", v->tot.procs_dropped, 1 },
	};
	struct wline l;
	char num[32];

	wl_reset(v, &l);
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		/* what deserves attention (a kill, a loss) stands out */
		attr_t a = f[i].alarm && f[i].n ? A_BOLD : A_NORMAL;

		if (i)
			wl_text(&l, "  ", A_NORMAL);
		wl_text(&l, f[i].name, a);
		snprintf(num, sizeof(num), " %" PRIu64, f[i].n);
		wl_text(&l, num, a);
	}
	wl_put(&l, 1, cols, A_NORMAL);
}

static void draw_row_cells(struct wline *l, const struct layout *lo,
			   const char *const cells[NCOLS],
			   attr_t a, attr_t sorted, int sorted_col)
{
	static const int right[NCOLS] = { 1, 0, 0, 1, 1, 1, 1, 1 };
	const int width[NCOLS] = { W_PID, lo->user_w, lo->cmd_w, W_BYTES,
				   W_BYTES, W_WHEN, W_GROWTH, W_CHILD };

	for (int i = 0; i < NCOLS; i++) {
		if (i)
			wl_push(l, L' ', 1, a);
		wl_cell(l, cells[i], width[i], right[i], i == sorted_col ? a | sorted : a);
	}
}

static int sort_col(enum mp_live_sort s)
{
	return s == MP_LIVE_BY_PEAK ? 4 : s == MP_LIVE_BY_GROWTH ? 6 : 3;
}

static void draw_table(struct mp_live *v, int cols, const struct layout *lo)
{
	static const char *const titles[NCOLS] = { "PID", "USER", "COMMAND", "RSS",
						   "PEAK", "WHEN", "GROWTH/1m", "CHILDREN" };
	struct wline l;
	int y = HEAD_LINES;

	wl_reset(v, &l);
	draw_row_cells(&l, lo, titles, A_REVERSE, A_BOLD | A_UNDERLINE,
		       sort_col(v->sort));
	wl_put(&l, HEAD_LINES - 1, cols, A_REVERSE);
	if (!v->nrows && lo->body > 0) {
		wl_reset(v, &l);
		wl_text(&l, v->have_snapshot ? "  (no process in the table)"
					     : "  (waiting for the first interval)", A_DIM);
		wl_put(&l, y, cols, A_NORMAL);
		return;
	}
	for (size_t i = v->top; i < v->nrows && y < HEAD_LINES + lo->body; i++, y++) {
		const struct row *r = &v->rows[i];
		char pid[16], child[16], rss[16], peak[16], when[16], growth[16];
		const char *cells[NCOLS] = { pid, row_user(v, r), r->comm, rss, peak, when, growth,
					     child };

		snprintf(pid, sizeof(pid), "%d", (int)r->pid);
		/* an exited process has no children any more: the column says it is gone */
		if (r->alive)
			snprintf(child, sizeof(child), "%u", r->children);
		else
			snprintf(child, sizeof(child), "exited");
		fmt_bytes(rss, sizeof(rss), r->rss);
		fmt_bytes(peak, sizeof(peak), r->peak);
		fmt_when(when, sizeof(when), r->peak_t, v->now);
		fmt_growth(growth, sizeof(growth), r->growth);
		wl_reset(v, &l);
		draw_row_cells(&l, lo, cells, r->alive ? A_NORMAL : A_DIM, A_NORMAL, -1);
		wl_put(&l, y, cols, A_NORMAL);
	}
}

static void draw_help(struct mp_live *v, int cols, const struct layout *lo)
{
	static const char *const text[] = {
		"Keys",
		"  r  p  g          sort by RSS now, by peak, by growth over the last minute",
		"  Up Down          scroll one row",
		"  PgUp PgDn        scroll one page",
		"  Home End         first rows, last rows",
		"  q  Ctrl-C        quit",
		"  ?                this help (any key closes it)",
		"Columns",
		"  RSS        resident set now: file, anonymous and shared memory pages",
		"  exited     the process has exited: its last values, until it leaves the table",
		"  PEAK WHEN  highest RSS since it joined, and when (-35s: seconds ago)",
		"  GROWTH/1m  RSS now minus RSS a minute ago (since it joined, if younger)",
		"  CHILDREN   its live children in the table",
		"Exited processes are listed after the live ones.",
	};
	struct wline l;

	for (int i = 0; i < lo->body; i++) {
		wl_reset(v, &l);
		if ((size_t)i < sizeof(text) / sizeof(text[0]))
			wl_text(&l, text[i], i == 0 || i == 7 ? A_BOLD : A_NORMAL);
		wl_put(&l, HEAD_LINES + i, cols, A_NORMAL);
	}
}

static void draw_footer(struct mp_live *v, int lines, int cols)
{
	struct wline l;

	wl_reset(v, &l);
	wl_text(&l, v->help ? "? or any key: back to the table"
			    : "r RSS  p peak  g growth  Up Down PgUp PgDn Home End  ? help  q quit",
		A_NORMAL);
	/* not the last column of the last line: curses would scroll the screen to write it */
	wl_put(&l, lines - 1, cols - 1, A_NORMAL);
}

/* Keep the first shown row where there is something to show. */
static void clamp_top(struct mp_live *v, const struct layout *lo)
{
	size_t body = lo->body > 0 ? (size_t)lo->body : 0;
	size_t max = v->nrows > body ? v->nrows - body : 0;

	if (v->top > max)
		v->top = max;
}

static int ensure_wbuf(struct mp_live *v, int cols)
{
	/* one wide character per column at most, plus a cell's worth of zero-width ones */
	size_t need = (size_t)cols + 128;

	if (need <= v->wcap)
		return 0;
	wchar_t *c = reallocarray(v->wbuf, need, sizeof(*c));

	if (!c)
		return -ENOMEM;
	v->wbuf = c;
	attr_t *a = reallocarray(v->abuf, need, sizeof(*a));

	if (!a)
		return -ENOMEM;
	v->abuf = a;
	v->wcap = need;
	return 0;
}

static int render(struct mp_live *v)
{
	int lines = LINES, cols = COLS, err;
	struct layout lo;

	err = ensure_wbuf(v, COLS);
	if (err)
		return err;
	erase();
	if (lines < MIN_LINES || cols < MIN_COLS) {
		mvaddnstr(0, 0, "terminal too small", cols > 0 ? cols : 0);
		refresh();
		return 0;
	}
	if (v->nrows) /* rows is NULL before the first row */
		qsort_r(v->rows, v->nrows, sizeof(*v->rows), cmp_rows, &v->sort);
	lo = layout_for(v, lines, cols);
	clamp_top(v, &lo);
	draw_title(v, cols, &lo);
	draw_totals(v, cols);
	if (v->help)
		draw_help(v, cols, &lo);
	else
		draw_table(v, cols, &lo);
	draw_footer(v, lines, cols);
	refresh();
	return 0;
}

/* The terminal's size from the kernel, for curses (no SIGWINCH handler of its own is used). */
static void resize(struct mp_live *v)
{
	struct winsize ws;

	if (!ioctl(fileno(v->out), TIOCGWINSZ, &ws) && ws.ws_row > 0 && ws.ws_col > 0)
		resize_term(ws.ws_row, ws.ws_col);
	clearok(curscr, TRUE);
}

/* Act on one key; returns 1 to quit, 0 otherwise. */
static int key(struct mp_live *v, int k)
{
	struct layout lo = layout_for(v, LINES, COLS);
	size_t page = lo.body > 1 ? (size_t)lo.body : 1;
	int was_help = v->help;

	v->help = 0;
	switch (k) {
	case 'q':
	case 'Q':
		return 1;
	case 'r':
	case 'R':
		v->sort = MP_LIVE_BY_RSS;
		v->top = 0;
		break;
	case 'p':
	case 'P':
		v->sort = MP_LIVE_BY_PEAK;
		v->top = 0;
		break;
	case 'g':
	case 'G':
		v->sort = MP_LIVE_BY_GROWTH;
		v->top = 0;
		break;
	case KEY_UP:
	case 'k':
		if (v->top)
			v->top--;
		break;
	case KEY_DOWN:
	case 'j':
		v->top++;
		break;
	case KEY_PPAGE:
		v->top = v->top > page ? v->top - page : 0;
		break;
	case KEY_NPAGE:
	case ' ':
		v->top += page;
		break;
	case KEY_HOME:
	case KEY_FIND: /* what some terminals' Home key sends */
		v->top = 0;
		break;
	case KEY_END:
	case KEY_SELECT: /* and their End key */
		v->top = v->nrows;
		break;
	case '?':
	case 'h':
		v->help = !was_help;
		break;
	case KEY_RESIZE:
		resize(v);
		break;
	case 12: /* Ctrl-L: redraw everything */
		clearok(curscr, TRUE);
		break;
	default:
		break;
	}
	return 0;
}

static int ready(struct mp_source *s)
{
	struct mp_live *v = (struct mp_live *)((char *)s - offsetof(struct mp_live, source));
	struct epoll_event ev[2];
	int n, quit = 0, redraw = 0;

	do
		n = epoll_wait(v->epfd, ev, 2, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		if (ev[i].data.fd == v->winch[0]) {
			char buf[64];

			while (read(v->winch[0], buf, sizeof(buf)) > 0)
				;
			resize(v);
			redraw = 1;
			continue;
		}
		if (ev[i].events & EPOLLIN) {
			int k;

			while ((k = getch()) != ERR) {
				redraw = 1;
				if (key(v, k))
					quit = 1;
			}
		}
		if (ev[i].events & (EPOLLHUP | EPOLLERR)) {
			/* the terminal hung up: nothing to show or read any more (never spin on it) */
			epoll_ctl(v->epfd, EPOLL_CTL_DEL, v->in_fd, NULL);
			v->in_fd = -1;
			quit = 1;
		}
	}
	if (quit)
		return 1;
	return redraw ? render(v) : 0;
}

static int no_ready(struct mp_source *s)
{
	(void)s;
	return 0;
}

static void on_winch(int sig)
{
	int saved = errno;
	int fd = winch_fd;

	(void)sig;
	if (fd >= 0 && write(fd, "w", 1) < 0) {
		/* the pipe is full: a resize is already noted */
	}
	errno = saved;
}

static void restore_at_exit(void)
{
	if (screen_view && !isendwin())
		endwin();
}

/* Can curses drive @fd's terminal (TERM known, cursor addressing)? */
static int drivable(int fd)
{
	int err = 0, ok;

	if (!isatty(fd))
		return 0;
	if (setupterm(NULL, fd, &err) != OK)
		return 0;
	{
		const char *cup = tigetstr("cup");

		ok = cup && cup != (char *)-1;
	}
	del_curterm(cur_term);
	return ok;
}

static int screen_open(struct mp_live *v)
{
	struct sigaction sa;
	struct epoll_event ev;
	const char *ct;

	if (screen_view)
		return -EBUSY;
	if (isatty(STDIN_FILENO)) {
		v->in = stdin;
	} else {
		v->in = fopen("/dev/tty", "re");
		v->own_in = v->in != NULL;
	}
	ct = setlocale(LC_CTYPE, NULL);
	if (ct) {
		v->old_ctype = strdup(ct);
		if (!v->old_ctype)
			return -ENOMEM;
	}
	setlocale(LC_CTYPE, "");
	if (!atexit_done) {
		if (atexit(restore_at_exit))
			return -ENOMEM;
		atexit_done = 1;
	}
	for (int i = 0; i < 4; i++)
		if (sigaction(curses_sigs[i], NULL, &v->sig_before[i]))
			return -errno;
	v->sigs_saved = 1;
	set_escdelay(ESC_DELAY_MS);
	/* without keys curses still needs an input stream: the terminal we draw on */
	v->scr = newterm(NULL, v->out, v->in ? v->in : v->out);
	if (!v->scr)
		return -ENOTTY;
	screen_view = v;
	for (int i = 0; i < 4; i++)
		if (sigaction(curses_sigs[i], NULL, &v->sig_during[i]))
			return -errno;
	/* keys are read when the loop says they are there: no peeking at the input mid-update */
	typeahead(-1);
	cbreak(); /* not raw(): ^C stays SIGINT, the caller's */
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	curs_set(0);
	leaveok(stdscr, TRUE);

	if (pipe2(v->winch, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	winch_fd = v->winch[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_winch;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	/* ours replaces curses' own, which would only be seen at the next key */
	if (sigaction(SIGWINCH, &sa, NULL))
		return -errno;
	v->sig_during[3] = sa; /* curses_sigs[3] */

	/* one descriptor for the loop: the keys and the resize notices behind one epoll set */
	v->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (v->epfd < 0)
		return -errno;
	ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = v->winch[0] };
	if (epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->winch[0], &ev))
		return -errno;
	if (v->in) {
		v->in_fd = fileno(v->in);
		ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = v->in_fd };
		if (epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->in_fd, &ev))
			return -errno;
	}
	v->source.fd = v->epfd;
	v->source.ready = ready;
	/* a size change between the start and now is picked up by the first draw */
	resize(v);
	return render(v);
}

/* ---- the sink --------------------------------------------------------------------- */

static int sink_event(struct mp_sink *s, const struct mp_sample *ev)
{
	(void)s;
	(void)ev;
	return 0;
}

static int sink_tick(struct mp_sink *s, struct mp_backend *be, double now)
{
	struct mp_live *v = (struct mp_live *)((char *)s - offsetof(struct mp_live, sink));

	(void)be;
	return mp_live__draw(v, now);
}

static int sink_finish(struct mp_sink *s, struct mp_backend *be)
{
	(void)s;
	(void)be;
	return 0;
}

/* ---- the API ---------------------------------------------------------------------- */

int mp_live__new(struct mp_live **out, const struct mp_live_opts *o)
{
	struct mp_live *v;
	int err;

	*out = NULL;
	if (!o || !o->src.each || !o->src.totals || o->mode < MP_LIVE_AUTO ||
	    o->mode > MP_LIVE_LINES)
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->src = o->src;
	v->out = o->out ? o->out : stdout;
	v->title = o->title ? o->title : "mprof fleet";
	v->start = o->start > 0 ? o->start : mp_clock__now_epoch();
	v->now = v->start;
	v->epfd = -1;
	v->in_fd = -1;
	v->winch[0] = v->winch[1] = -1;
	v->source.fd = -1;
	v->source.ready = no_ready;
	v->sink.event = sink_event;
	v->sink.tick = sink_tick;
	v->sink.finish = sink_finish;
	v->mode = o->mode;
	if (v->mode == MP_LIVE_AUTO)
		v->mode = drivable(fileno(v->out)) ? MP_LIVE_SCREEN : MP_LIVE_LINES;
	if (v->mode == MP_LIVE_SCREEN) {
		err = drivable(fileno(v->out)) ? screen_open(v) : -ENOTTY;
		if (err) {
			mp_live__free(v);
			return err;
		}
	}
	*out = v;
	return 0;
}

enum mp_live_mode mp_live__mode(const struct mp_live *v)
{
	return v->mode;
}

int mp_live__draw(struct mp_live *v, double now)
{
	int err = take_snapshot(v, now);

	if (err)
		return err;
	if (v->mode == MP_LIVE_LINES)
		return write_lines(v);
	return render(v);
}

struct mp_source *mp_live__source(struct mp_live *v)
{
	return &v->source;
}

struct mp_sink *mp_live__sink(struct mp_live *v)
{
	return &v->sink;
}

void mp_live__free(struct mp_live *v)
{
	if (!v)
		return;
	if (v->scr) {
		endwin();
		delscreen(v->scr);
		fflush(v->out);
	}
	if (screen_view == v)
		screen_view = NULL;
	for (int i = 0; v->sigs_saved && i < 4; i++) {
		struct sigaction now;

		/* only what curses or we set: a handler the caller installed since stays */
		if (!sigaction(curses_sigs[i], NULL, &now) &&
		    now.sa_handler == v->sig_during[i].sa_handler &&
		    now.sa_handler != v->sig_before[i].sa_handler)
			sigaction(curses_sigs[i], &v->sig_before[i], NULL);
	}
	if (v->sigs_saved)
		winch_fd = -1;
	if (v->epfd >= 0)
		close(v->epfd);
	for (int i = 0; i < 2; i++)
		if (v->winch[i] >= 0)
			close(v->winch[i]);
	if (v->own_in)
		fclose(v->in);
	if (v->old_ctype) {
		setlocale(LC_CTYPE, v->old_ctype);
		free(v->old_ctype);
	}
	free(v->wbuf);
	free(v->abuf);
	free(v->rows);
	free(v->strs);
	free(v);
}

/*
 * mp_datfile: reading memory_profiler .dat files, and choosing which ones a command works on.
 *
 * The grammar is memory_profiler 0.61's (see dat.h for the writer), read leniently where that is
 * harmless and strictly where a line cannot be understood:
 *   CMDLINE <command line>                      the last one wins, as in memory_profiler
 *   MEM <MiB> <epoch seconds>
 *   CHLD <pid> <MiB> <epoch seconds>
 *   FUNC <module.name> <MiB> <t> <MiB> <t> [<level>]
 * and our line attribution records (--lines; memory_profiler skips them):
 *   LINE <pid> <grown bytes> <freed bytes> <events> <line> <function> <file>
 *   STACK <pid> <grown bytes> <freed bytes> <events> [<function>:<file>:<line>[;...]]
 * whose text fields carry %XX escapes (dat.h): they are decoded (any two hex digits but 00, so
 * that a decoded name never holds a NUL), and a '%' without two hex digits after it, a frame
 * without exactly three ':'-separated parts, an empty function or file, or a count that is not a
 * whole number makes the line an error like any bad record. Counts are decimal integers up to
 * 2^64 - 1, pids and line numbers up to INT_MAX.
 * Records may come in any order (a short run writes its FUNC lines before CMDLINE). Fields are
 * separated by any run of blanks or tabs; leading and trailing blanks, CRLF line ends and blank
 * lines are accepted. Numbers are decimal, with or without a fraction or an exponent
 * (memory_profiler's "%.6f"/"%.4f" as well as any other precision), and must be finite.
 * Fields after the last one a record uses are ignored, as memory_profiler ignores them. A line
 * whose first word is another upper-case keyword is skipped (a later writer may add records);
 * anything else is an error carrying its line number, except on the last line when it has no
 * newline: a writer stopped in the middle of a line (killed, or a full disk) leaves exactly that,
 * so such a line is skipped and reported in torn_line, and the rest of the file is used. An
 * unterminated last MEM, CHLD or FUNC line counts as a record only when its last time still has
 * its decimals, since "MEM 99999.0 17" is "MEM 99999.0 1796156891.5788" cut short; an
 * unterminated last LINE or STACK line never does (a file name or a stack cut short looks whole:
 * every writer ends its records with a newline).
 *
 * Nothing here prints or exits.
 */
#ifndef MP_DATFILE_H
#define MP_DATFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One memory sample: MiB (2^20 bytes) at a time in seconds. */
struct mp_point {
	double t;
	double mib;
};

/*
 * Sums for a least-squares line over the samples in a reduced read's window (times relative to
 * the file's first MEM or FUNC point), so that a reduced read still fits the exact line.
 */
struct mp_fit_sums {
	double n, t, m, tt, tm;
};

/* A growable array of samples, in the order the file gives them. */
struct mp_series {
	struct mp_point *pts;
	size_t n;
	size_t cap;
	bool has_sums; /* reduced reads: @sums covers every sample, @pts only some */
	struct mp_fit_sums sums;
};

/* The CHLD samples of one child process. */
struct mp_child {
	int pid;
	struct mp_series s;
};

/* One FUNC line: a call of a function (or a profile.timestamp block). */
struct mp_call {
	double t_start;
	double t_end;
	double mem_start;
	double mem_end;
	int level; /* depth among profiled functions, outermost 0; -1 when the line has none */
};

/* Every call of one function, in file order. */
struct mp_func {
	char *name; /* as written, e.g. "__main__.f" or ".block1" */
	struct mp_call *calls;
	size_t n;
	size_t cap;
	size_t total;	/* calls in the file (more than n when a reduced read dropped some) */
	double longest; /* seconds, the longest call in the file */
};

/*
 * One LINE record: what a source line of process @pid moved while it was running, in bytes of
 * RSS grown and freed and in RSS changes (events). A special row (memory charged to no Python
 * line) has line 0, file "-" and the name of its kind as function ("<no Python frame>", ...).
 */
struct mp_line_rec {
	int pid;
	int line;
	char *func; /* decoded, never empty */
	char *file; /* decoded, never empty */
	uint64_t grown, freed, events;
};

/* One frame of a STACK record. */
struct mp_frame_rec {
	char *func; /* decoded, never empty */
	char *file; /* decoded, never empty; "-" in the one frame of a special stack */
	int line;
};

/* One STACK record: what a whole Python stack of process @pid moved. Bytes and events. */
struct mp_stack_rec {
	int pid;
	struct mp_frame_rec *frames; /* root (outermost call) first, the running frame last */
	size_t nframes;		     /* 0 only for a hand-written "STACK <pid> <g> <f> <e>" */
	uint64_t grown, freed, events;
};

struct mp_datfile {
	char *cmdline;		   /* text of the last CMDLINE line without its line end; NULL if none */
	struct mp_series mem;	   /* MEM samples */
	struct mp_child *children; /* in order of first appearance */
	size_t n_children;
	struct mp_func *funcs; /* in order of first appearance */
	size_t n_funcs;
	struct mp_line_rec *line_recs; /* LINE records, in file order (see mp_datfile__each_line) */
	size_t n_line_recs;
	struct mp_stack_rec *stacks; /* STACK records, in file order */
	size_t n_stacks;
	size_t n_lines;	  /* lines read, blank ones included */
	size_t n_skipped; /* lines with an unknown keyword */

	/* Set when a parse fails with -EINVAL: the 1-based line and what was wrong with it. */
	size_t err_line;
	const char *err_msg; /* static string, lowercase, no full stop */
	/*
	 * The line number of a last line without a newline that was not a record and was skipped
	 * (a writer killed in the middle of a line leaves one), or 0.
	 */
	size_t torn_line;
	/* A reduced read (mp_datfile__read_reduced()) kept fewer points than the file has. */
	bool reduced;
	size_t n_points; /* MEM and CHLD samples in the file (reduced reads) */
	size_t n_mem;	 /* MEM samples in the file (reduced reads) */

	/* private */
	size_t children_cap, funcs_cap, line_recs_cap, stacks_cap;
	size_t *child_idx, *func_idx; /* open-addressing tables of index + 1, 0 = empty */
	size_t child_slots, func_slots;
};

/* Prepare an empty @df. Never fails. */
void mp_datfile__init(struct mp_datfile *df);

/* Free everything @df owns and leave it as after mp_datfile__init(). */
void mp_datfile__release(struct mp_datfile *df);

/* ---- streaming ------------------------------------------------------------------------------
 * The reader proper: one record at a time, in constant memory, so that commands that only need a
 * maximum (peak) never hold a file. */

enum mp_record_kind {
	MP_REC_CMDLINE,
	MP_REC_MEM,
	MP_REC_CHLD,
	MP_REC_FUNC,
	MP_REC_LINE,
	MP_REC_STACK,
};

/*
 * One record as the reader meets it. @text and @file point into the reader's buffer: copy to
 * keep. The text fields of LINE and STACK records are given as written, escapes and all (already
 * checked): decode them with mp_datfile__unescape() (a STACK's frames after splitting them at
 * ';' and ':'), or read the file with mp_datfile__read(), which keeps them decoded.
 */
struct mp_record {
	enum mp_record_kind kind;
	const char *text; /* CMDLINE: its text (trimmed); FUNC: the name; LINE: the function;
			     STACK: the frames field ("" when there is none) */
	size_t len;
	const char *file; /* LINE: the file */
	size_t file_len;
	int pid;			/* CHLD, LINE, STACK */
	int line;			/* LINE */
	uint64_t grown, freed, events;	/* LINE, STACK */
	double t, mib;			/* MEM, CHLD */
	struct mp_call call;		/* FUNC */
};

/*
 * Decode the %XX escapes of the @n bytes at @s (a LINE or STACK text field) into @out, which
 * needs room for n + 1 bytes and is NUL-terminated; with @out NULL, only check. Returns the
 * decoded length, or -EINVAL for a '%' without two hex digits after it or a %00.
 */
ssize_t mp_datfile__unescape(const char *s, size_t n, char *out);

/* Called for each record; returns 0 to go on, or a -errno that stops the scan and is returned. */
typedef int (*mp_record_fn)(void *ctx, const struct mp_record *r);

/* What a scan saw (see the fields of the same names in struct mp_datfile). */
struct mp_scan {
	size_t n_lines, n_skipped;
	size_t err_line;
	const char *err_msg;
	size_t torn_line;
};

/*
 * Read the file at @path record by record, with a buffer of a few hundred KiB whatever its size,
 * and hand each record to @fn. Returns 0, -EINVAL with sc->err_line and sc->err_msg set, -EISDIR,
 * an error of @fn, or the -errno of open/read.
 */
int mp_datfile__scan(const char *path, mp_record_fn fn, void *ctx, struct mp_scan *sc);
/* The same over the @len bytes at @buf. */
int mp_datfile__scan_buf(const char *buf, size_t len, mp_record_fn fn, void *ctx,
			 struct mp_scan *sc);

/*
 * Parse the whole of @buf (@len bytes, NUL bytes are an error) into @df, which must be freshly
 * initialised. Returns 0, -ENOMEM, or -EINVAL with df->err_line and df->err_msg set. On error
 * @df holds what was read before the bad line and must still be released.
 */
int mp_datfile__parse(struct mp_datfile *df, const char *buf, size_t len);

/*
 * Read and parse the file at @path into the freshly initialised @df. Returns 0, -EINVAL (see
 * mp_datfile__parse()), -EISDIR for a directory, or the -errno of open/read.
 */
int mp_datfile__read(struct mp_datfile *df, const char *path);

/* The function named exactly @name (as in the FUNC lines), or NULL. */
const struct mp_func *mp_datfile__func(const struct mp_datfile *df, const char *name);

/* The child with pid @pid, or NULL. */
const struct mp_child *mp_datfile__child(const struct mp_datfile *df, int pid);

/* ---- line attribution ------------------------------------------------------------------------
 * The LINE and STACK records a read kept (they are few: one per source line or stack that
 * moved memory, thousands at most), in file order in df->line_recs and df->stacks. */

/* Is @r a special row (memory charged to no Python line: line 0, file "-")? */
bool mp_line_rec__special(const struct mp_line_rec *r);

/*
 * The distinct pids of the LINE and STACK records of @df, in order of first appearance (LINE
 * records first, then STACK ones): *@out is malloc'ed (the caller frees it; NULL when *@n is 0).
 * Returns 0 or -ENOMEM.
 */
int mp_datfile__line_pids(const struct mp_datfile *df, int **out, size_t *n);

typedef int (*mp_line_rec_fn)(void *ctx, const struct mp_line_rec *r);
typedef int (*mp_stack_rec_fn)(void *ctx, const struct mp_stack_rec *s);

/*
 * Call @fn for each LINE record of process @pid (of every process when @pid is negative), in
 * file order. The records belong to @df. Returns 0, or the first non-zero return of @fn, which
 * stops the walk.
 */
int mp_datfile__each_line(const struct mp_datfile *df, int pid, mp_line_rec_fn fn, void *ctx);

/* The same for the STACK records. */
int mp_datfile__each_stack(const struct mp_datfile *df, int pid, mp_stack_rec_fn fn, void *ctx);

/*
 * Index of the highest sample of @pts[0..n) (the first one on ties), or -1 when n is 0.
 */
long mp_points__max(const struct mp_point *pts, size_t n);

/*
 * memory_profiler's `peak --func`: the highest MEM sample whose time lies inside one of @fn's
 * [t_start, t_end] calls (bounds included). Stores it in *mib and *t. Returns 0, or -ENODATA if
 * no sample falls inside any call.
 */
int mp_datfile__func_peak(const struct mp_datfile *df, const struct mp_func *fn, double *mib,
			  double *t);

/*
 * Least-squares line mib = slope * t + intercept through @pts[0..n), with t measured from @t0
 * (pass the plot's origin so that the intercept is meaningful). Computed around the mean time so
 * that epoch-sized times lose no precision. Returns 0, or -EDOM when fewer than two distinct
 * times make the slope undefined.
 */
int mp_points__fit(const struct mp_point *pts, size_t n, double t0, double *slope,
		   double *intercept);

/* ---- choosing profiles ----------------------------------------------------------------------
 * memory_profiler's rules: the profiles of a folder are the entries matching the glob
 * "mprofile_??????????????.dat" (each ? one character), sorted by name; an integer argument is an
 * index into that list, negative ones counting from the end.
 */

/* True if the file name @name (no folder part) matches "mprofile_??????????????.dat". */
bool mp_profile__name_matches(const char *name);

/*
 * Parse @arg as a profile index the way Python's int() does (surrounding blanks, a sign, digits,
 * single underscores between digits). Returns 0 with *idx set, or -EINVAL.
 */
int mp_profile__parse_index(const char *arg, long long *idx);

/*
 * The position in a list of @n profiles that index @idx designates (Python indexing: -1 is the
 * last). Returns 0 with *pos set, or -ERANGE.
 */
int mp_profile__index_pos(size_t n, long long idx, size_t *pos);

/*
 * The date `mprof list` shows for the profile name @name: "HH:MM:SS DD/MM/YYYY", cut from the
 * characters after the last '_' of the name without extension, exactly as memory_profiler slices
 * them (a name that is not a timestamp gives a short or odd string, never an overflow). @out
 * receives at most @size - 1 bytes and a NUL. Returns the length written.
 */
size_t mp_profile__list_stamp(const char *name, char *out, size_t size);

/*
 * The legacy companion memory_profiler removes along with a profile: "<stem>_ts<ext>" where
 * <ext> is the path's extension (Python's os.path.splitext rules). Returns a malloc'ed string
 * the caller frees, or NULL (errno = ENOMEM).
 */
char *mp_profile__ts_companion(const char *path);

/* Sort @n strings in place by bytes (the order Python gives UTF-8 names). */
void mp_profile__sort(char **names, size_t n);

/* A list of file names; owns the strings. */
struct mp_profiles {
	char **names;
	size_t n;
	size_t cap;
};

/* Free the names and leave @p empty. Accepts an empty list. */
void mp_profiles__release(struct mp_profiles *p);

/*
 * Fill the empty @p with the sorted profiles of folder @dir (names only, without the folder).
 * Only entries that are regular files (after following symlinks) are kept: a directory that
 * happens to match is neither listed nor removed. Returns 0 or -errno.
 */
int mp_profiles__scan(struct mp_profiles *p, const char *dir);

/* How an argument is tried: memory_profiler's plot and peak look for a file first, rm for an index. */
enum mp_select_order {
	MP_SELECT_PATH_FIRST,
	MP_SELECT_INDEX_FIRST,
};

/*
 * Resolve @argc arguments (paths or indices into @profiles, which were scanned from the current
 * folder) into @out, which must be empty; duplicates are dropped, order is kept, and a "--"
 * argument is skipped. Every path must be an existing regular file. Returns 0, or on the first
 * bad argument *bad = its position and:
 *   -ENOENT  neither an existing file nor an integer
 *   -ERANGE  an integer that is not a valid index
 *   -EISDIR  a directory
 *   -EINVAL  exists but is not a regular file
 *   -ENOMEM
 * On error @out keeps what was resolved before and must still be released.
 */
int mp_profiles__select(const struct mp_profiles *profiles, int argc, char *const argv[],
			enum mp_select_order order, struct mp_profiles *out, int *bad);

/*
 * Append to @sel the "_ts" companion of each of its files (walking them last to first, as
 * memory_profiler does) when that companion exists as a regular file and is not already there.
 * Returns 0 or -ENOMEM.
 */
int mp_profiles__add_companions(struct mp_profiles *sel);

/*
 * What the file commands do with their arguments: scan the current folder, then either pick its
 * newest profile when @argc is 0 (only with MP_SELECT_PATH_FIRST; *newest is set to true), or
 * resolve the arguments with mp_profiles__select(). Returns 0, or -errno with a one-line,
 * lowercase explanation naming the culprit in @msg (@size bytes) for the caller to show.
 */
int mp_profiles__choose(int argc, char *const argv[], enum mp_select_order order,
			struct mp_profiles *out, bool *newest, char *msg, size_t size);

/* How mp_datfile__read_reduced() reduces. */
struct mp_reduce_opts {
	/* Read exactly when the file has at most this many samples; else reduce to about it. */
	size_t max_points;
	/* Only [xmin, xmax] seconds after the first MEM or FUNC point matter (plot -w). */
	bool window;
	double xmin, xmax;
};

/*
 * Read @path into the fresh @df in bounded memory, for drawing: a first pass counts the samples;
 * when there are more than @o->max_points, each series is reduced while it is read to the first,
 * lowest, highest and last sample of each of its time buckets (a few thousand over the window),
 * so every peak and every turning point a picture can show is kept, and each function keeps, per
 * bucket, its longest call (mp_func.total and .longest stay exact; series get exact fit sums).
 * df->reduced says whether it happened. Returns as mp_datfile__read().
 */
int mp_datfile__read_reduced(struct mp_datfile *df, const char *path,
			     const struct mp_reduce_opts *o);

/* mp_datfile__load() with mp_datfile__read_reduced(). */
int mp_datfile__load_reduced(struct mp_datfile *df, const char *path,
			     const struct mp_reduce_opts *o, char *msg, size_t size);

/*
 * A warning about a file that was read (a torn last line that was skipped): returns true with a
 * one-line, lowercase text naming @path in @msg (@size bytes), false when there is none.
 */
bool mp_datfile__warning(const struct mp_datfile *df, const char *path, char *msg, size_t size);

/*
 * mp_datfile__read() for a command: also fails with -ENODATA when the file has no MEM sample.
 * On error @msg (@size bytes) receives a one-line, lowercase explanation naming @path and, for
 * a bad line, its number.
 */
int mp_datfile__load(struct mp_datfile *df, const char *path, char *msg, size_t size);

/* Append a copy of @name. Returns 0 or -ENOMEM. */
int mp_profiles__push(struct mp_profiles *p, const char *name);

#endif

/*
 * mp_dat: writing memory_profiler-compatible .dat files.
 *
 * The grammar is memory_profiler 0.61's, line by line:
 *   CMDLINE <command line>
 *   MEM <MiB %.6f> <epoch seconds %.4f>
 *   CHLD <pid> <MiB %.6f> <epoch seconds %.4f>
 *   FUNC <module.name> <MiB %.4f> <t %.4f> <MiB %.4f> <t %.4f> <level>
 * Files are opened in append mode, as memory_profiler does. Nothing here prints.
 */
#ifndef MP_DAT_H
#define MP_DAT_H

#include <stdio.h>

struct mp_dat {
	FILE *f;
	int err;		/* first error seen (-errno), sticky */
	unsigned int unflushed; /* lines written since the last flush */
	int owns_file;
};

/*
 * Open @path for appending (creating it 0644 if needed). On success *out owns the file and must
 * be closed with mp_dat__close(). Returns 0 or -errno.
 */
int mp_dat__open(struct mp_dat **out, const char *path);

/* Wrap an already open stream (tests, stdout). The stream is not closed by mp_dat__close(). */
struct mp_dat *mp_dat__from_file(FILE *f);

/*
 * "CMDLINE" followed by argv joined with spaces; arguments containing a blank or a tab are
 * wrapped in single quotes, exactly as mprof does. Returns 0 or -errno.
 */
int mp_dat__cmdline(struct mp_dat *d, int argc, char *const argv[]);
/* "CMDLINE <text>" verbatim (attach mode writes the pid). */
int mp_dat__cmdline_text(struct mp_dat *d, const char *text);
int mp_dat__mem(struct mp_dat *d, double mib, double epoch);
int mp_dat__chld(struct mp_dat *d, int pid, double mib, double epoch);
int mp_dat__func(struct mp_dat *d, const char *name, double mem_start, double t_start,
		 double mem_end, double t_end, int level);

/* Push buffered lines to the kernel. Returns 0 or the first error (-errno). */
int mp_dat__flush(struct mp_dat *d);

/* Flush, close (if owned) and free. Accepts NULL. Returns 0 or the first error (-errno). */
int mp_dat__close(struct mp_dat *d);

#endif

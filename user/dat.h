/*
 * mp_dat: writing memory_profiler-compatible .dat files.
 *
 * The grammar is memory_profiler 0.61's, line by line:
 *   CMDLINE <command line>
 *   MEM <MiB %.6f> <epoch seconds %.4f>
 *   CHLD <pid> <MiB %.6f> <epoch seconds %.4f>
 *   FUNC <module.name> <MiB %.4f> <t %.4f> <MiB %.4f> <t %.4f> <level>
 * Files are opened in append mode, as memory_profiler does.
 *
 * Whole records only: records are collected in memory and written with one write(2) per flush,
 * so a Python child appending its own lines to the same file (O_APPEND) never splits one of
 * ours, and when a write fails half-way (a full disk) the file is cut back to the last complete
 * record, so the file never ends in a torn record. The first error is sticky. Nothing prints.
 */
#ifndef MP_DAT_H
#define MP_DAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct mp_dat {
	int fd;	      /* the file, when opened by mp_dat__open(); else -1 */
	FILE *f;      /* or a borrowed stream (tests, stdout) */
	int err;      /* first error seen (-errno), sticky */
	int owns_fd;
	char *buf;    /* whole records not written yet */
	size_t len, cap;
};

/*
 * Open @path for appending, creating it 0644 if needed; *@created (if not NULL) says whether
 * this call created it (so a caller that gives up can remove it again). On success *@out owns
 * the file and must be closed with mp_dat__close(). Returns 0 or -errno.
 */
int mp_dat__open(struct mp_dat **out, const char *path, int *created);

/* Wrap an already open stream (tests, stdout). The stream is not closed by mp_dat__close(). */
struct mp_dat *mp_dat__from_file(FILE *f);

/*
 * "CMDLINE" followed by @argv joined with spaces. Each argument is written so that a shell would
 * read it back as it was, and so that no argument can ever end the line: plain words as they are;
 * a word with blanks, quotes or shell syntax in single quotes (memory_profiler wraps words with
 * blanks or tabs the same way, so those lines are unchanged); a word with a control character
 * (a newline, a carriage return...) or bytes that are not UTF-8 in ANSI-C quotes, $'...', with
 * escapes; the empty word as ''. Returns 0 or -errno.
 */
int mp_dat__cmdline(struct mp_dat *d, int argc, char *const argv[]);
/* "CMDLINE <text>", with every control character of @text replaced by a blank. */
int mp_dat__cmdline_text(struct mp_dat *d, const char *text);
int mp_dat__mem(struct mp_dat *d, double mib, double epoch);
int mp_dat__chld(struct mp_dat *d, int pid, double mib, double epoch);
/*
 * A FUNC line. Blanks and control characters in @name become '_' and bytes that are not UTF-8
 * become '?', so the name stays one field that memory_profiler's reader can decode.
 */
int mp_dat__func(struct mp_dat *d, const char *name, double mem_start, double t_start,
		 double mem_end, double t_end, int level);

/*
 * Line attribution (--lines), our own records (memory_profiler's reader skips records it does
 * not know): what a source line of process @pid moved, and what a stack moved (frames root
 * first). Text fields are written with %XX escapes for bytes <= 0x20, 0x7f, '%', ':' and ';', so
 * that every field stays one word:
 *   LINE <pid> <grown bytes> <freed bytes> <events> <line> <function> <file>
 *   STACK <pid> <grown bytes> <freed bytes> <events> <function>:<file>:<line>[;...]
 * Returns 0 or -errno.
 */
int mp_dat__line(struct mp_dat *d, int pid, uint64_t grown, uint64_t freed, uint64_t events,
		 int line, const char *func, const char *file);
int mp_dat__stack(struct mp_dat *d, int pid, uint64_t grown, uint64_t freed, uint64_t events,
		  unsigned int n, const char *const *funcs, const char *const *files,
		  const int *lines);

/*
 * Shell quoting of one word into @out (@size bytes, NUL-terminated), by the rules of
 * mp_dat__cmdline(). Returns the length the quoted word needs (like snprintf).
 */
size_t mp_dat__quote(const char *word, char *out, size_t size);

/* Write the collected records. Returns 0 or the first error (-errno). */
int mp_dat__flush(struct mp_dat *d);

/* Flush, close (if owned) and free. Accepts NULL. Returns 0 or the first error (-errno). */
int mp_dat__close(struct mp_dat *d);

#endif

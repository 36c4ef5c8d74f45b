/*
 * mp_sources: the text of source lines, for the "Line Contents" column of a line table. Each
 * file is read once, whole, when it is first asked for, and kept until the set is freed.
 *
 * A LINE record names a file; a report reads it on the machine and at the time the report is
 * made, so the text is what the file holds then (it may have changed since the run). Only what
 * can be a Python source is read: a regular file (never a FIFO or a device, which could block or
 * be endless) whose name ends in ".py" or ".pyw", of at most MP_SOURCES_MAX_SIZE bytes; so a .dat
 * from elsewhere naming "/etc/shadow" or "/proc/self/environ" cannot pull that text into a page.
 * A relative name is tried from the current folder, then from @base (the .dat's folder). Nothing
 * here prints.
 */
#ifndef MP_SOURCES_H
#define MP_SOURCES_H

#include <stddef.h>

/* The largest source file read (a generated module can be large; 16 MiB is far past any). */
#define MP_SOURCES_MAX_SIZE (16u << 20)

struct mp_sources;

/*
 * A new, empty set; @base (copied; NULL for none) is the folder relative names are also tried
 * from. Returns 0 or -ENOMEM. Free with mp_sources__free() (accepts NULL).
 */
int mp_sources__new(struct mp_sources **out, const char *base);
void mp_sources__free(struct mp_sources *s);

/*
 * Line @line (1-based) of the file @file: *@text points at it (not NUL-terminated, valid until
 * mp_sources__free()) and *@len is its length without its line end ("\n" or "\r\n"). Returns 0,
 * -ENOENT when the file is not one that is read (see above), cannot be read, or is shorter, or
 * -ENOMEM.
 */
int mp_sources__line(struct mp_sources *s, const char *file, int line, const char **text,
		     size_t *len);

#endif

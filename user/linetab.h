/*
 * mp_linetab: the line tables of a profile's LINE records (--lines), as reports show them.
 *
 * Per process, the rows are grouped by (file, function); the special rows of a process (memory
 * charged to no Python line: a thread without a Python frame, a stack that could not be read...)
 * form one group of their own, one row per kind. Records that name the same line of the same
 * function and file (or the same kind) are added up into one row. Everything is ordered
 * heaviest first: processes, groups and rows by bytes grown, then by net increment (grown -
 * freed), then by first appearance in the file (rows of a group by line number). Sums saturate
 * at 2^64 - 1 rather than wrap. Names are borrowed from the mp_datfile, which must outlive the
 * table. Nothing here prints.
 */
#ifndef MP_LINETAB_H
#define MP_LINETAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datfile.h"

/* One line (or one special kind) of a group. Bytes and RSS changes. */
struct mp_linetab_row {
	int line;	  /* 0 in the special group */
	const char *name; /* the special group: the kind ("<no Python frame>", ...); else the
			     function, as the group's */
	uint64_t grown, freed, events;
	size_t first; /* index of its first record in df->line_recs (ties keep file order) */
};

/* The rows of one function of one file, or the special rows of a process. */
struct mp_linetab_group {
	const char *file; /* "-" for the special group */
	const char *func; /* NULL for the special group */
	bool special;
	struct mp_linetab_row *rows; /* heaviest first */
	size_t n;
	uint64_t grown, freed, events; /* the sums of the rows */
	size_t first;
};

/* The groups of one process. */
struct mp_linetab_proc {
	int pid;
	struct mp_linetab_group *groups; /* heaviest first */
	size_t n;
	uint64_t grown, freed, events; /* the sums of the groups */
	size_t first;
};

struct mp_linetab {
	struct mp_linetab_proc *procs; /* heaviest first */
	size_t n;
	/* private: the storage the procs' groups and the groups' rows point into */
	struct mp_linetab_group *group_store;
	struct mp_linetab_row *row_store;
};

/*
 * Build into @t the tables of the LINE records of @df (an empty table when it has none).
 * Returns 0 or -ENOMEM; on error @t is empty. Release with mp_linetab__release().
 */
int mp_linetab__build(struct mp_linetab *t, const struct mp_datfile *df);

/* Free what @t owns (not the names) and leave it empty. Accepts an empty table. */
void mp_linetab__release(struct mp_linetab *t);

/* @a + @b, or 2^64 - 1 when that does not fit. */
uint64_t mp_linetab__add(uint64_t a, uint64_t b);

#endif

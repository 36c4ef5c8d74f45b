/* What datfile.c shares with datreduce.c only: the storing side of the reader. */
#ifndef MP_DATFILE_PRIV_H
#define MP_DATFILE_PRIV_H

#include "datfile.h"

/* Store record @r in @df as mp_datfile__read() does. Returns 0 or -ENOMEM. */
int mp_datfile__add_record(struct mp_datfile *df, const struct mp_record *r);
/* Make sure child @pid exists in @df (without samples). Returns 0 or -ENOMEM. */
int mp_datfile__note_child(struct mp_datfile *df, int pid);
/* Count FUNC record @r in its function's total and longest, without keeping the call. */
int mp_datfile__add_func_stats(struct mp_datfile *df, const struct mp_record *r,
			       const struct mp_func **out);
/* Copy what scan @sc saw into @df's counters. */
void mp_datfile__copy_scan(struct mp_datfile *df, const struct mp_scan *sc);

#endif

/*
 * mp_pprof: line attribution (user/lines.h) as a pprof profile, the gzipped profile.proto that
 * `go tool pprof`, Pyroscope, Parca and Grafana read (the schema we write: user/profile.proto).
 *
 * Each stack added becomes one sample with two values, grown_bytes and freed_bytes (bytes), its
 * locations leaf first, and a numeric label `pid` (fleet output mixes processes); a stack deeper
 * than the walk keeps carries the string label `truncated` = "true". There is one Location per
 * distinct (function, file, line) and one Function per distinct (name, file). A special kind
 * (a stack without frames) becomes a single frame named by mp_lines__kind_name(), with no file
 * and line 0, as in the collapsed and speedscope files.
 *
 * The names are copied: the stacks added need not outlive the call. Nothing here prints.
 */
#ifndef MP_PPROF_H
#define MP_PPROF_H

#include <stdint.h>
#include <stdio.h>

#include "lines.h"

struct mp_pprof;

/* A new, empty profile in *@out. Returns 0 or -ENOMEM. Free with mp_pprof__free(). */
int mp_pprof__new(struct mp_pprof **out);

/* Free @p and everything it holds. Accepts NULL. */
void mp_pprof__free(struct mp_pprof *p);

/*
 * Add stack @s as one sample: its frames root first as struct mp_line_stack has them, or, when
 * s->nframes is 0, the special kind s->kind. Stacks with only freed bytes (or none) are kept.
 * Returns 0, -EINVAL (@s has frames but no frames array), -E2BIG (more than 2^32 - 2 distinct
 * names, functions or locations) or -ENOMEM; on an error the stack is not added (names it
 * brought may stay in the string table) and @p stays usable.
 */
int mp_pprof__add(struct mp_pprof *p, const struct mp_line_stack *s);

/*
 * Write the profile of every stack added so far to @f, gzipped: @time_ns is when the recording
 * started (ns since the epoch) and @duration_ns how long it lasted (0: unknown). @p is not
 * changed and can be written again. Returns 0, -EIO (a write to @f failed) or -ENOMEM.
 */
int mp_pprof__write(struct mp_pprof *p, FILE *f, int64_t time_ns, int64_t duration_ns);

/* mp_pprof__write() of every stack of @l (mp_lines__each_stack()). Returns 0 or -errno. */
int mp_lines__write_pprof(const struct mp_lines *l, FILE *f, int64_t time_ns, int64_t duration_ns);

#endif

/* The mprof command-line tool: the only part of the tree that talks to the user. */
#ifndef MPROF_MPROF_H
#define MPROF_MPROF_H

#include <stdarg.h>
#include <stddef.h>

/* Program name used as the prefix of every message ("mprof"). */
extern const char *mp_progname;

/* Print "mprof: error: <fmt>" on stderr. Messages are lowercase, name the subject, no full stop. */
void p_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "mprof: <fmt>" on stderr (notices such as a fallback to polling). */
void p_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The default output of plot and report: @data (the first profile) without its extension, then
 * "@ext", or "_overlay@ext" when @n profiles are drawn together. NULL when out of memory; the
 * caller frees it.
 */
char *mp_output_beside(const char *data, size_t n, const char *ext);

/*
 * Each command takes the arguments after its own name (argv[0] is the command name, as for
 * getopt) and returns the process exit status.
 */
int do_run(int argc, char **argv);
int do_attach(int argc, char **argv);
int do_fleet(int argc, char **argv);
int do_plot(int argc, char **argv);
int do_list(int argc, char **argv);
int do_clean(int argc, char **argv);
int do_rm(int argc, char **argv);
int do_peak(int argc, char **argv);
int do_report(int argc, char **argv);

#endif

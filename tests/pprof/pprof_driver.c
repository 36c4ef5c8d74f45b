/*
 * pprof_driver OUT TIME_NS DURATION_NS < STACKS
 *
 * Feeds the stacks read from stdin to mp_pprof (user/pprof.h) and writes the profile to OUT, so
 * that tests/pprof can check the file with other readers (Python's protobuf, go tool pprof)
 * without a kernel. One stack a line, fields separated by tabs:
 *
 *   pid  kind  grown  freed  truncated  [func  file  line]...
 *
 * kind is the number of enum mp_line_kind, truncated 0 or 1, the frames root first (none for a
 * special kind). Exit status 0, or 1 with the reason on stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pprof.h"

#define MAX_FRAMES 256

static int parse_ll(const char *s, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno || end == s || *end ? -EINVAL : 0;
}

static int parse_ull(const char *s, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || end == s || *end || s[0] == '-' ? -EINVAL : 0;
}

/* Split @line (its newline removed) at tabs into at most @max fields. */
static size_t split(char *line, char **fields, size_t max)
{
	size_t n = 0;
	char *p = line;

	line[strcspn(line, "\n")] = '\0';
	while (n < max) {
		fields[n++] = p;
		p = strchr(p, '\t');
		if (!p)
			break;
		*p++ = '\0';
	}
	return n;
}

static int add_line(struct mp_pprof *p, char *line, unsigned long lineno)
{
	char *f[5 + 3 * MAX_FRAMES];
	struct mp_line_frame frames[MAX_FRAMES];
	struct mp_line_stack s = { 0 };
	size_t n = split(line, f, sizeof(f) / sizeof(f[0]));
	long long v;
	unsigned long long u;
	int err;

	if (n < 5 || (n - 5) % 3) {
		fprintf(stderr, "pprof_driver: line %lu: %zu fields\n", lineno, n);
		return -EINVAL;
	}
	if (parse_ll(f[0], &v))
		goto bad;
	s.pid = (pid_t)v;
	if (parse_ll(f[1], &v))
		goto bad;
	s.kind = (enum mp_line_kind)v;
	if (parse_ull(f[2], &u))
		goto bad;
	s.grown = u;
	if (parse_ull(f[3], &u))
		goto bad;
	s.freed = u;
	s.truncated = !strcmp(f[4], "1");
	s.nframes = (unsigned int)((n - 5) / 3);
	for (unsigned int i = 0; i < s.nframes; i++) {
		frames[i].func = f[5 + 3 * i];
		frames[i].file = f[6 + 3 * i];
		if (parse_ll(f[7 + 3 * i], &v))
			goto bad;
		frames[i].line = (int)v;
	}
	s.frames = frames;
	err = mp_pprof__add(p, &s);
	if (err)
		fprintf(stderr, "pprof_driver: line %lu: mp_pprof__add: %s\n", lineno, strerror(-err));
	return err;
bad:
	fprintf(stderr, "pprof_driver: line %lu: a number is not one\n", lineno);
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct mp_pprof *p = NULL;
	long long time_ns, duration_ns;
	char *line = NULL;
	size_t cap = 0;
	unsigned long lineno = 0;
	FILE *out = NULL;
	int err, rc = 1;

	if (argc != 4 || parse_ll(argv[2], &time_ns) || parse_ll(argv[3], &duration_ns)) {
		fprintf(stderr, "usage: pprof_driver OUT TIME_NS DURATION_NS < STACKS\n");
		return 2;
	}
	err = mp_pprof__new(&p);
	if (err) {
		fprintf(stderr, "pprof_driver: mp_pprof__new: %s\n", strerror(-err));
		return 1;
	}
	while (getline(&line, &cap, stdin) >= 0) {
		lineno++;
		if (line[0] == '\n' || line[0] == '#')
			continue;
		if (add_line(p, line, lineno))
			goto cleanup;
	}
	if (ferror(stdin)) {
		fprintf(stderr, "pprof_driver: reading stdin failed\n");
		goto cleanup;
	}
	out = fopen(argv[1], "wb");
	if (!out) {
		fprintf(stderr, "pprof_driver: cannot open '%s': %s\n", argv[1], strerror(errno));
		goto cleanup;
	}
	err = mp_pprof__write(p, out, time_ns, duration_ns);
	if (err) {
		fprintf(stderr, "pprof_driver: mp_pprof__write: %s\n", strerror(-err));
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (out && fclose(out) && !rc) {
		fprintf(stderr, "pprof_driver: closing '%s' failed\n", argv[1]);
		rc = 1;
	}
	free(line);
	mp_pprof__free(p);
	return rc;
}

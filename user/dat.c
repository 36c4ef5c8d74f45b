#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dat.h"

/* memory_profiler flushes every 50 lines; we flush as often so a killed run loses as little. */
#define MP_DAT_FLUSH_LINES 50

int mp_dat__open(struct mp_dat **out, const char *path)
{
	struct mp_dat *d;
	int fd;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	d = calloc(1, sizeof(*d));
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	d->f = fdopen(fd, "a");
	if (!d->f) {
		int err = -errno;

		close(fd);
		free(d);
		return err;
	}
	/*
	 * One write() per line: a Python child appends FUNC lines to the same file (O_APPEND), and
	 * whole-line writes cannot interleave inside a line.
	 */
	if (setvbuf(d->f, NULL, _IOLBF, 0)) {
		fclose(d->f);
		free(d);
		return -ENOMEM;
	}
	d->owns_file = 1;
	*out = d;
	return 0;
}

struct mp_dat *mp_dat__from_file(FILE *f)
{
	struct mp_dat *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->f = f;
	return d;
}

static int line_done(struct mp_dat *d, int printed)
{
	if (printed < 0 && !d->err)
		d->err = errno ? -errno : -EIO;
	if (d->err)
		return d->err;
	if (++d->unflushed >= MP_DAT_FLUSH_LINES)
		return mp_dat__flush(d);
	return 0;
}

int mp_dat__cmdline(struct mp_dat *d, int argc, char *const argv[])
{
	int r = fputs("CMDLINE", d->f);

	for (int i = 0; i < argc && r >= 0; i++) {
		if (strpbrk(argv[i], " \t"))
			r = fprintf(d->f, " '%s'", argv[i]);
		else
			r = fprintf(d->f, " %s", argv[i]);
	}
	if (r >= 0)
		r = fputc('\n', d->f);
	return line_done(d, r == EOF ? -1 : 0);
}

int mp_dat__cmdline_text(struct mp_dat *d, const char *text)
{
	return line_done(d, fprintf(d->f, "CMDLINE %s\n", text));
}

int mp_dat__mem(struct mp_dat *d, double mib, double epoch)
{
	return line_done(d, fprintf(d->f, "MEM %.6f %.4f\n", mib, epoch));
}

int mp_dat__chld(struct mp_dat *d, int pid, double mib, double epoch)
{
	return line_done(d, fprintf(d->f, "CHLD %d %.6f %.4f\n", pid, mib, epoch));
}

int mp_dat__func(struct mp_dat *d, const char *name, double mem_start, double t_start,
		 double mem_end, double t_end, int level)
{
	return line_done(d, fprintf(d->f, "FUNC %s %.4f %.4f %.4f %.4f %d\n", name, mem_start,
				    t_start, mem_end, t_end, level));
}

int mp_dat__flush(struct mp_dat *d)
{
	if (fflush(d->f) && !d->err)
		d->err = -errno;
	d->unflushed = 0;
	return d->err;
}

int mp_dat__close(struct mp_dat *d)
{
	int err;

	if (!d)
		return 0;
	mp_dat__flush(d);
	if (d->owns_file && fclose(d->f) && !d->err)
		d->err = -errno;
	err = d->err;
	free(d);
	return err;
}

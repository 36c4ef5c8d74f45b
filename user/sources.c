#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sources.h"

struct source {
	char *name; /* as the records name it */
	char *buf;  /* the whole file, NULL if it was not read */
	size_t *starts; /* offset of each line */
	size_t nlines;
	size_t size;
};

struct mp_sources {
	char *base;
	struct source *files;
	size_t n, cap;
};

int mp_sources__new(struct mp_sources **out, const char *base)
{
	struct mp_sources *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	if (base) {
		s->base = strdup(base);
		if (!s->base) {
			free(s);
			return -ENOMEM;
		}
	}
	*out = s;
	return 0;
}

void mp_sources__free(struct mp_sources *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->files[i].name);
		free(s->files[i].buf);
		free(s->files[i].starts);
	}
	free(s->files);
	free(s->base);
	free(s);
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), m = strlen(tail);

	return n > m && !strcmp(s + n - m, tail);
}

/*
 * Read the regular file @path whole into *@buf (*@size bytes). Returns 0, -ENOMEM, or another
 * -errno (-EFBIG past the size limit, -EINVAL for what is not a regular file).
 */
static int read_whole(const char *path, char **buf, size_t *size)
{
	struct stat st;
	size_t len = 0, cap;
	char *b = NULL;
	int fd, err = 0;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just after) */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		goto cleanup;
	}
	if ((unsigned long long)st.st_size > MP_SOURCES_MAX_SIZE) {
		err = -EFBIG;
		goto cleanup;
	}
	cap = (size_t)st.st_size + 1;
	b = malloc(cap);
	if (!b) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (;;) {
		ssize_t r;

		if (len == cap) { /* grew since fstat: still bounded */
			char *nb;

			if (cap > MP_SOURCES_MAX_SIZE) {
				err = -EFBIG;
				goto cleanup;
			}
			nb = realloc(b, cap * 2);
			if (!nb) {
				err = -ENOMEM;
				goto cleanup;
			}
			b = nb;
			cap *= 2;
		}
		r = read(fd, b + len, cap - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto cleanup;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	*buf = b;
	*size = len;
	b = NULL;
cleanup:
	free(b);
	close(fd);
	return err;
}

/* Load @f->name: from the current folder, then from @base when it is relative. */
static int load(struct mp_sources *s, struct source *f)
{
	const char *name = f->name;
	char *alt = NULL;
	size_t n = 1;
	int err;

	if (!ends_with(name, ".py") && !ends_with(name, ".pyw"))
		return 0;
	err = read_whole(name, &f->buf, &f->size);
	if (err == -ENOENT && name[0] != '/' && s->base) {
		if (asprintf(&alt, "%s/%s", s->base, name) < 0)
			return -ENOMEM;
		err = read_whole(alt, &f->buf, &f->size);
		free(alt);
	}
	if (err == -ENOMEM)
		return err;
	if (err)
		return 0; /* not readable: no text */
	for (size_t i = 0; i < f->size; i++)
		n += f->buf[i] == '\n';
	f->starts = malloc(n * sizeof(*f->starts));
	if (!f->starts) {
		free(f->buf);
		f->buf = NULL;
		return -ENOMEM;
	}
	f->starts[f->nlines++] = 0;
	for (size_t i = 0; i < f->size; i++)
		if (f->buf[i] == '\n')
			f->starts[f->nlines++] = i + 1;
	/* a final newline ends the last line rather than starting another */
	if (f->nlines > 1 && f->starts[f->nlines - 1] == f->size)
		f->nlines--;
	if (!f->size)
		f->nlines = 0;
	return 0;
}

static int lookup(struct mp_sources *s, const char *file, struct source **out)
{
	struct source *f;
	int err;

	for (size_t i = 0; i < s->n; i++) {
		if (!strcmp(s->files[i].name, file)) {
			*out = &s->files[i];
			return 0;
		}
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct source *nf = realloc(s->files, cap * sizeof(*nf));

		if (!nf)
			return -ENOMEM;
		s->files = nf;
		s->cap = cap;
	}
	f = &s->files[s->n];
	memset(f, 0, sizeof(*f));
	f->name = strdup(file);
	if (!f->name)
		return -ENOMEM;
	err = load(s, f);
	if (err) {
		free(f->name);
		return err;
	}
	s->n++;
	*out = f;
	return 0;
}

int mp_sources__line(struct mp_sources *s, const char *file, int line, const char **text,
		     size_t *len)
{
	struct source *f;
	size_t a, b;
	int err = lookup(s, file, &f);

	if (err)
		return err;
	if (!f->buf || line < 1 || (size_t)line > f->nlines)
		return -ENOENT;
	a = f->starts[line - 1];
	b = (size_t)line < f->nlines ? f->starts[line] - 1 : f->size;
	if (b > a && f->buf[b - 1] == '\n')
		b--;
	if (b > a && f->buf[b - 1] == '\r')
		b--;
	*text = f->buf + a;
	*len = b - a;
	return 0;
}

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "dat.h"
#include "utf8.h"

/*
 * Collected records are written once they reach this size even between flushes, so memory stays
 * bounded whatever the record rate (the recorder flushes at every interval tick anyway).
 */
#define MP_DAT_BUF_MAX (64 * 1024)

int mp_dat__open(struct mp_dat **out, const char *path, int *created)
{
	struct mp_dat *d;
	int fd, made = 1;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 && errno == EEXIST) {
		made = 0;
		fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	d = calloc(1, sizeof(*d));
	if (!d) {
		close(fd);
		if (made)
			unlink(path);
		return -ENOMEM;
	}
	d->fd = fd;
	d->owns_fd = 1;
	if (created)
		*created = made;
	*out = d;
	return 0;
}

struct mp_dat *mp_dat__from_file(FILE *f)
{
	struct mp_dat *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->fd = -1;
	d->f = f;
	return d;
}

static int reserve(struct mp_dat *d, size_t more)
{
	size_t ncap;
	char *nb;

	if (d->len + more <= d->cap)
		return 0;
	ncap = d->cap ? d->cap : 4096;
	while (ncap < d->len + more)
		ncap *= 2;
	nb = realloc(d->buf, ncap);
	if (!nb)
		return -ENOMEM;
	d->buf = nb;
	d->cap = ncap;
	return 0;
}

static int append(struct mp_dat *d, const char *s, size_t n)
{
	int err = reserve(d, n);

	if (err)
		return err;
	memcpy(d->buf + d->len, s, n);
	d->len += n;
	return 0;
}

static int appendf(struct mp_dat *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int appendf(struct mp_dat *d, const char *fmt, ...)
{
	va_list ap;
	int n, err;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	err = reserve(d, (size_t)n + 1);
	if (err)
		return err;
	va_start(ap, fmt);
	vsnprintf(d->buf + d->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	d->len += (size_t)n;
	return 0;
}

/*
 * A record that began at @start is complete in the buffer (or failed: then it is dropped whole);
 * write out when the buffer is large.
 */
static int record_done(struct mp_dat *d, size_t start, int err)
{
	if (err) {
		d->len = start;
		if (!d->err)
			d->err = err;
	}
	if (d->err)
		return d->err;
	if (d->len >= MP_DAT_BUF_MAX)
		return mp_dat__flush(d);
	return 0;
}

/*
 * After a write that stopped @torn bytes into a record, cut those bytes off the end of the file
 * again, so that the file ends with a whole line.
 */
static void cut_back(int fd, size_t torn)
{
	struct stat st;

	if (!torn || fstat(fd, &st) || (size_t)st.st_size < torn)
		return;
	if (ftruncate(fd, st.st_size - (off_t)torn)) {
		/* nothing more can be done: the error that got us here is reported already */
	}
}

int mp_dat__flush(struct mp_dat *d)
{
	size_t done = 0;

	if (d->err || !d->len) {
		d->len = 0;
		return d->err;
	}
	if (d->fd < 0) {
		if (fwrite(d->buf, 1, d->len, d->f) != d->len || fflush(d->f))
			d->err = errno ? -errno : -EIO;
		d->len = 0;
		return d->err;
	}
	while (done < d->len) {
		ssize_t n = write(d->fd, d->buf + done, d->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			const char *nl = NULL;

			d->err = n < 0 ? -errno : -EIO;
			/* keep the complete records that made it, cut the torn one */
			for (size_t i = done; i > 0; i--) {
				if (d->buf[i - 1] == '\n') {
					nl = d->buf + i;
					break;
				}
			}
			cut_back(d->fd, nl ? (size_t)(d->buf + done - nl) : done);
			break;
		}
		done += (size_t)n;
	}
	d->len = 0;
	return d->err;
}

int mp_dat__close(struct mp_dat *d)
{
	int err;

	if (!d)
		return 0;
	mp_dat__flush(d);
	if (d->owns_fd && close(d->fd) && !d->err)
		d->err = -errno;
	err = d->err;
	free(d->buf);
	free(d);
	return err;
}

/* ---- quoting --------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at @s (at most @n bytes), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	int l = mp_utf8_seq(s, n);

	return l > 0 ? (size_t)l : 0;
}

static int is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Characters a shell gives a meaning to, and blanks: such words are single-quoted. */
static int is_special(unsigned char c)
{
	return c && strchr(" \t'\"\\$`;&|<>()*?[]#~!{}^", c) != NULL;
}

struct qbuf {
	char *out;
	size_t size, len;
};

static void qput(struct qbuf *q, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++, q->len++)
		if (q->len + 1 < q->size)
			q->out[q->len] = s[i];
}

size_t mp_dat__quote(const char *word, char *out, size_t size)
{
	const unsigned char *w = (const unsigned char *)word;
	size_t n = strlen(word), i;
	struct qbuf q = { out, size, 0 };
	int ansi = 0, quote = n == 0;

	for (i = 0; i < n;) {
		size_t l = utf8_seq(w + i, n - i);

		/* a tab is safe in single quotes, as memory_profiler writes it */
		if (!l || (is_control(w[i]) && w[i] != '\t'))
			ansi = 1;
		else if (l == 1 && is_special(w[i]))
			quote = 1;
		i += l ? l : 1;
	}
	if (ansi) {
		qput(&q, "$'", 2);
		for (i = 0; i < n;) {
			size_t l = utf8_seq(w + i, n - i);
			char esc[8];

			if (l > 1) {
				qput(&q, word + i, l);
				i += l;
				continue;
			}
			switch (w[i]) {
			case '\n':
				qput(&q, "\\n", 2);
				break;
			case '\t':
				qput(&q, "\\t", 2);
				break;
			case '\r':
				qput(&q, "\\r", 2);
				break;
			case '\\':
				qput(&q, "\\\\", 2);
				break;
			case '\'':
				qput(&q, "\\'", 2);
				break;
			default:
				if (l == 1 && !is_control(w[i])) {
					qput(&q, word + i, 1);
				} else {
					snprintf(esc, sizeof(esc), "\\x%02x", w[i]);
					qput(&q, esc, 4);
				}
			}
			i++;
		}
		qput(&q, "'", 1);
	} else if (quote) {
		qput(&q, "'", 1);
		for (i = 0; i < n; i++) {
			if (w[i] == '\'')
				qput(&q, "'\\''", 4);
			else
				qput(&q, word + i, 1);
		}
		qput(&q, "'", 1);
	} else {
		qput(&q, word, n);
	}
	if (size)
		out[q.len < size ? q.len : size - 1] = 0;
	return q.len;
}

int mp_dat__cmdline(struct mp_dat *d, int argc, char *const argv[])
{
	size_t start = d->len;
	int err = append(d, "CMDLINE", 7);

	for (int i = 0; i < argc && !err; i++) {
		size_t need = mp_dat__quote(argv[i], NULL, 0);

		err = reserve(d, need + 2);
		if (err)
			break;
		d->buf[d->len++] = ' ';
		mp_dat__quote(argv[i], d->buf + d->len, need + 1);
		d->len += need;
	}
	if (!err)
		err = append(d, "\n", 1);
	return record_done(d, start, err);
}

int mp_dat__cmdline_text(struct mp_dat *d, const char *text)
{
	size_t start = d->len;
	int err = appendf(d, "CMDLINE %s\n", text);

	if (!err)
		for (size_t i = start + 8; i + 1 < d->len; i++)
			if (is_control((unsigned char)d->buf[i]))
				d->buf[i] = ' ';
	return record_done(d, start, err);
}

int mp_dat__mem(struct mp_dat *d, double mib, double epoch)
{
	size_t start = d->len;
	int err = appendf(d, "MEM %.6f %.4f\n", mib, epoch);

	return record_done(d, start, err);
}

int mp_dat__chld(struct mp_dat *d, int pid, double mib, double epoch)
{
	size_t start = d->len;
	int err = appendf(d, "CHLD %d %.6f %.4f\n", pid, mib, epoch);

	return record_done(d, start, err);
}

int mp_dat__func(struct mp_dat *d, const char *name, double mem_start, double t_start,
		 double mem_end, double t_end, int level)
{
	const unsigned char *w = (const unsigned char *)name;
	size_t n = strlen(name), start = d->len;
	int err = append(d, "FUNC ", 5);

	for (size_t i = 0; i < n && !err;) {
		size_t l = utf8_seq(w + i, n - i);

		if (l > 1)
			err = append(d, name + i, l);
		else if (!l)
			err = append(d, "?", 1);
		else if (w[i] <= ' ' || w[i] == 0x7f)
			err = append(d, "_", 1);
		else
			err = append(d, name + i, 1);
		i += l ? l : 1;
	}
	if (!n && !err)
		err = append(d, "_", 1);
	if (!err)
		err = appendf(d, " %.4f %.4f %.4f %.4f %d\n", mem_start, t_start, mem_end, t_end,
			      level);
	return record_done(d, start, err);
}

/* @s with %XX for the bytes that would split or end a field of LINE and STACK records. */
static int append_escaped(struct mp_dat *d, const char *s)
{
	int err = 0;

	if (!s || !*s)
		return append(d, "-", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p && !err; p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == '%' || *p == ':' || *p == ';') {
			char esc[4];

			snprintf(esc, sizeof(esc), "%%%02X", *p);
			err = append(d, esc, 3);
		} else {
			err = append(d, (const char *)p, 1);
		}
	}
	return err;
}

int mp_dat__line(struct mp_dat *d, int pid, uint64_t grown, uint64_t freed, uint64_t events,
		 int line, const char *func, const char *file)
{
	size_t start = d->len;
	int err = appendf(d, "LINE %d %llu %llu %llu %d ", pid, (unsigned long long)grown,
			  (unsigned long long)freed, (unsigned long long)events, line);

	if (!err)
		err = append_escaped(d, func);
	if (!err)
		err = append(d, " ", 1);
	if (!err)
		err = append_escaped(d, file);
	if (!err)
		err = append(d, "\n", 1);
	return record_done(d, start, err);
}

int mp_dat__stack(struct mp_dat *d, int pid, uint64_t grown, uint64_t freed, uint64_t events,
		  unsigned int n, const char *const *funcs, const char *const *files,
		  const int *lines)
{
	size_t start = d->len;
	int err = appendf(d, "STACK %d %llu %llu %llu ", pid, (unsigned long long)grown,
			  (unsigned long long)freed, (unsigned long long)events);

	for (unsigned int i = 0; i < n && !err; i++) {
		if (i)
			err = append(d, ";", 1);
		if (!err)
			err = append_escaped(d, funcs[i]);
		if (!err)
			err = append(d, ":", 1);
		if (!err)
			err = append_escaped(d, files[i]);
		if (!err)
			err = appendf(d, ":%d", lines[i]);
	}
	if (!err)
		err = append(d, "\n", 1);
	return record_done(d, start, err);
}

/* Unit tests of the source-line reader (user/sources.c). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "sources.h"

static char dir[] = "/tmp/mprof-test-sources-XXXXXX";

static void put(const char *name, const char *text, size_t len)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Line @line of @file as a string ("" for a line that is empty), or NULL with *err set. */
static const char *line_of(struct mp_sources *s, const char *file, int line, int *err)
{
	static char out[256];
	const char *t;
	size_t n;

	*err = mp_sources__line(s, file, line, &t, &n);
	if (*err)
		return NULL;
	assert_true(n < sizeof(out));
	memcpy(out, t, n);
	out[n] = '\0';
	return out;
}

static void test_lines(void **state)
{
	char path[PATH_MAX], rel[PATH_MAX];
	struct mp_sources *s;
	int err;

	(void)state;
	put("a.py", "import os\r\n\n    x = [0] * 10\nlast", 33);
	put("b.py", "one\ntwo\n", 8);
	put("e.py", "", 0);
	put("notes.txt", "secret\n", 7);
	snprintf(path, sizeof(path), "%s/fifo.py", dir);
	assert_int_equal(mkfifo(path, 0644), 0);
	snprintf(path, sizeof(path), "%s/d.py", dir);
	assert_int_equal(mkdir(path, 0755), 0);

	assert_int_equal(mp_sources__new(&s, dir), 0);
	snprintf(path, sizeof(path), "%s/a.py", dir);
	assert_string_equal(line_of(s, path, 1, &err), "import os");
	assert_string_equal(line_of(s, path, 2, &err), "");
	assert_string_equal(line_of(s, path, 3, &err), "    x = [0] * 10");
	assert_string_equal(line_of(s, path, 4, &err), "last"); /* no final newline */
	assert_null(line_of(s, path, 5, &err));
	assert_int_equal(err, -ENOENT);
	assert_null(line_of(s, path, 0, &err));
	assert_int_equal(err, -ENOENT);
	/* a final newline ends a line, it does not start one */
	snprintf(path, sizeof(path), "%s/b.py", dir);
	assert_string_equal(line_of(s, path, 2, &err), "two");
	assert_null(line_of(s, path, 3, &err));
	snprintf(path, sizeof(path), "%s/e.py", dir);
	assert_null(line_of(s, path, 1, &err));
	/* a relative name: from the current folder, then from the base folder */
	assert_string_equal(line_of(s, "b.py", 1, &err), "one");
	/* only regular Python files: no text file, no FIFO (it would block), no directory */
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	assert_null(line_of(s, path, 1, &err));
	assert_int_equal(err, -ENOENT);
	snprintf(path, sizeof(path), "%s/fifo.py", dir);
	assert_null(line_of(s, path, 1, &err));
	assert_int_equal(err, -ENOENT);
	snprintf(path, sizeof(path), "%s/d.py", dir);
	assert_null(line_of(s, path, 1, &err));
	assert_null(line_of(s, "/nonexistent/x.py", 1, &err));
	assert_int_equal(err, -ENOENT);
	assert_null(line_of(s, "-", 0, &err));
	assert_null(line_of(s, "<string>", 1, &err));
	/* read once: a file changed later still gives the text first read */
	put("b.py", "changed\n", 8);
	assert_string_equal(line_of(s, "b.py", 1, &err), "one");
	mp_sources__free(s);

	/* without a base folder, a relative name is only tried from the current one */
	assert_int_equal(mp_sources__new(&s, NULL), 0);
	snprintf(rel, sizeof(rel), "b.py");
	assert_null(line_of(s, rel, 1, &err));
	mp_sources__free(s);
	mp_sources__free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lines, setup, teardown),
	};

	return cmocka_run_group_tests_name("sources", tests, NULL, NULL);
}

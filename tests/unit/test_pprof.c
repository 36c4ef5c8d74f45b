/*
 * The pprof writer (user/pprof.c) on synthetic stacks: each file is gunzipped with zlib and
 * decoded with protobuf-c's generated unpack (the schema: user/profile.proto), then checked
 * the way pprof reads it: samples and their two values, locations leaf first, one Location per
 * (function, file, line) and one Function per (name, file), string 0 empty, the pid label, the
 * special kinds as a single frame. Then the write errors and names that are not UTF-8.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>
#include <zlib.h>

#include "lines.h"
#include "pprof.h"
#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile Profile;

/* Everything in @f from the start, gunzipped (exactly one gzip member). */
static uint8_t *gunzip_file(FILE *f, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	uint8_t in[4096];
	uint8_t *out = malloc(cap);
	z_stream z;
	int ret = Z_OK;

	assert_non_null(out);
	memset(&z, 0, sizeof(z));
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	rewind(f);
	while (ret != Z_STREAM_END) {
		size_t got = fread(in, 1, sizeof(in), f);

		assert_true(got > 0); /* ended before the gzip trailer */
		z.next_in = in;
		z.avail_in = (uInt)got;
		while (z.avail_in && ret != Z_STREAM_END) {
			if (n == cap) {
				cap *= 2;
				out = realloc(out, cap);
				assert_non_null(out);
			}
			z.next_out = out + n;
			z.avail_out = (uInt)(cap - n);
			ret = inflate(&z, Z_NO_FLUSH);
			assert_true(ret == Z_OK || ret == Z_STREAM_END);
			n = cap - z.avail_out;
		}
		/* nothing after the member */
		if (ret == Z_STREAM_END)
			assert_int_equal(z.avail_in, 0);
	}
	assert_int_equal(fread(in, 1, 1, f), 0);
	inflateEnd(&z);
	*len = n;
	return out;
}

/* Write @p to a temporary file and decode it back. */
static Profile *roundtrip(struct mp_pprof *p, int64_t time_ns, int64_t duration_ns)
{
	FILE *f = tmpfile();
	uint8_t *buf;
	size_t len;
	Profile *prof;

	assert_non_null(f);
	assert_int_equal(mp_pprof__write(p, f, time_ns, duration_ns), 0);
	buf = gunzip_file(f, &len);
	fclose(f);
	prof = perftools__profiles__profile__unpack(NULL, len, buf);
	free(buf);
	assert_non_null(prof);
	return prof;
}

static const char *str(const Profile *prof, int64_t i)
{
	assert_true(i >= 0 && (size_t)i < prof->n_string_table);
	return prof->string_table[i];
}

static const Perftools__Profiles__Location *loc_by_id(const Profile *prof, uint64_t id)
{
	for (size_t i = 0; i < prof->n_location; i++)
		if (prof->location[i]->id == id)
			return prof->location[i];
	fail_msg("no location %llu", (unsigned long long)id);
	return NULL;
}

static const Perftools__Profiles__Function *func_by_id(const Profile *prof, uint64_t id)
{
	for (size_t i = 0; i < prof->n_function; i++)
		if (prof->function[i]->id == id)
			return prof->function[i];
	fail_msg("no function %llu", (unsigned long long)id);
	return NULL;
}

/* Sample @s's frame @depth (0: the leaf) is @func in @file at @line. */
static void assert_frame(const Profile *prof, const Perftools__Profiles__Sample *s, size_t depth,
			 const char *func, const char *file, int line)
{
	const Perftools__Profiles__Location *l;
	const Perftools__Profiles__Function *fn;

	assert_true(depth < s->n_location_id);
	l = loc_by_id(prof, s->location_id[depth]);
	assert_int_equal(l->n_line, 1);
	assert_int_equal(l->line[0]->line, line);
	fn = func_by_id(prof, l->line[0]->function_id);
	assert_string_equal(str(prof, fn->name), func);
	assert_string_equal(str(prof, fn->filename), file);
}

static int64_t label_num(const Profile *prof, const Perftools__Profiles__Sample *s, const char *key)
{
	for (size_t i = 0; i < s->n_label; i++)
		if (!strcmp(str(prof, s->label[i]->key), key)) {
			assert_int_equal(s->label[i]->str, 0);
			return s->label[i]->num;
		}
	fail_msg("no label %s", key);
	return -1;
}

static const char *label_str(const Profile *prof, const Perftools__Profiles__Sample *s,
			     const char *key)
{
	for (size_t i = 0; i < s->n_label; i++)
		if (!strcmp(str(prof, s->label[i]->key), key))
			return str(prof, s->label[i]->str);
	return NULL;
}

/* The format's invariants: ids unique and not 0, references resolve, strings not repeated. */
static void assert_well_formed(const Profile *prof)
{
	assert_true(prof->n_string_table >= 1);
	assert_string_equal(prof->string_table[0], "");
	for (size_t i = 0; i < prof->n_string_table; i++)
		for (size_t j = i + 1; j < prof->n_string_table; j++)
			if (!strcmp(prof->string_table[i], prof->string_table[j]))
				fail_msg("string %zu repeated at %zu: \"%s\"", i, j,
					 prof->string_table[i]);
	for (size_t i = 0; i < prof->n_function; i++) {
		assert_int_not_equal(prof->function[i]->id, 0);
		str(prof, prof->function[i]->name);
		str(prof, prof->function[i]->filename);
		for (size_t j = i + 1; j < prof->n_function; j++) {
			assert_int_not_equal(prof->function[i]->id, prof->function[j]->id);
			/* one Function per (name, file) */
			assert_false(prof->function[i]->name == prof->function[j]->name &&
				     prof->function[i]->filename == prof->function[j]->filename);
		}
	}
	for (size_t i = 0; i < prof->n_location; i++) {
		const Perftools__Profiles__Location *l = prof->location[i];

		assert_int_not_equal(l->id, 0);
		assert_int_equal(l->n_line, 1);
		func_by_id(prof, l->line[0]->function_id);
		for (size_t j = i + 1; j < prof->n_location; j++) {
			const Perftools__Profiles__Location *m = prof->location[j];

			assert_int_not_equal(l->id, m->id);
			/* one Location per (function, line) */
			assert_false(l->line[0]->function_id == m->line[0]->function_id &&
				     l->line[0]->line == m->line[0]->line);
		}
	}
	for (size_t i = 0; i < prof->n_sample; i++) {
		assert_int_equal(prof->sample[i]->n_value, prof->n_sample_type);
		assert_true(prof->sample[i]->n_location_id >= 1);
		for (size_t k = 0; k < prof->sample[i]->n_location_id; k++)
			loc_by_id(prof, prof->sample[i]->location_id[k]);
	}
}

static void add(struct mp_pprof *p, pid_t pid, enum mp_line_kind kind,
		const struct mp_line_frame *frames, unsigned int n, bool truncated, uint64_t grown,
		uint64_t freed)
{
	struct mp_line_stack s = {
		.pid = pid,
		.kind = kind,
		.nframes = n,
		.frames = frames,
		.truncated = truncated,
		.grown = grown,
		.freed = freed,
		.events = 1,
	};

	assert_int_equal(mp_pprof__add(p, &s), 0);
}

static void samples_locations_functions(void **state)
{
	/* root first, as mp_lines gives them */
	static const struct mp_line_frame s1[] = {
		{ "a.py", "<module>", 10 }, { "a.py", "f", 20 }, { "b.py", "g", 5 } };
	static const struct mp_line_frame s2[] = { { "a.py", "<module>", 10 }, { "a.py", "f", 21 } };
	static const struct mp_line_frame s3[] = { { "a.py", "<module>", 10 }, { "b.py", "g", 5 } };
	/* f again, in another file: another Function */
	static const struct mp_line_frame s4[] = { { "c.py", "f", 20 } };
	struct mp_pprof *p = NULL;
	Profile *prof;
	const Perftools__Profiles__Sample *s;

	(void)state;
	assert_int_equal(mp_pprof__new(&p), 0);
	add(p, 100, MP_LINE_PY, s1, 3, false, 4096, 0);
	add(p, 100, MP_LINE_PY, s2, 2, false, 8192, 4096);
	add(p, 200, MP_LINE_PY, s3, 2, true, 0, 12288); /* freed only: still a sample */
	add(p, 200, MP_LINE_PY, s4, 1, false, 1, 2);
	add(p, 200, MP_LINE_NOFRAME, NULL, 0, false, 1ULL << 40, 0);
	add(p, 300, MP_LINE_OUTSIDE, NULL, 0, false, 0, 4096);
	/* above what an int64 holds: clamped, not negative */
	add(p, 300, MP_LINE_UNRESOLVED, NULL, 0, false, UINT64_MAX, 0);
	prof = roundtrip(p, 1700000000123456789LL, 2500000000LL);
	assert_well_formed(prof);

	assert_int_equal(prof->n_sample_type, 2);
	assert_string_equal(str(prof, prof->sample_type[0]->type), "grown_bytes");
	assert_string_equal(str(prof, prof->sample_type[0]->unit), "bytes");
	assert_string_equal(str(prof, prof->sample_type[1]->type), "freed_bytes");
	assert_string_equal(str(prof, prof->sample_type[1]->unit), "bytes");
	assert_string_equal(str(prof, prof->default_sample_type), "grown_bytes");
	assert_non_null(prof->period_type);
	assert_string_equal(str(prof, prof->period_type->type), "space");
	assert_string_equal(str(prof, prof->period_type->unit), "bytes");
	assert_int_equal(prof->period, 1);
	assert_int_equal(prof->time_nanos, 1700000000123456789LL);
	assert_int_equal(prof->duration_nanos, 2500000000LL);
	assert_int_equal(prof->n_comment, 1);
	assert_non_null(strstr(str(prof, prof->comment[0]), "mprof"));

	assert_int_equal(prof->n_sample, 7);
	s = prof->sample[0];
	assert_int_equal(s->n_location_id, 3);
	assert_frame(prof, s, 0, "g", "b.py", 5); /* the leaf first */
	assert_frame(prof, s, 1, "f", "a.py", 20);
	assert_frame(prof, s, 2, "<module>", "a.py", 10);
	assert_int_equal(s->value[0], 4096);
	assert_int_equal(s->value[1], 0);
	assert_int_equal(label_num(prof, s, "pid"), 100);
	assert_null(label_str(prof, s, "truncated"));

	s = prof->sample[1];
	assert_int_equal(s->n_location_id, 2);
	assert_frame(prof, s, 0, "f", "a.py", 21);
	assert_frame(prof, s, 1, "<module>", "a.py", 10);
	assert_int_equal(s->value[0], 8192);
	assert_int_equal(s->value[1], 4096);
	/* the root frame is the same Location in both */
	assert_int_equal(s->location_id[1], prof->sample[0]->location_id[2]);

	s = prof->sample[2];
	assert_int_equal(s->n_location_id, 2);
	assert_frame(prof, s, 0, "g", "b.py", 5);
	assert_int_equal(s->location_id[0], prof->sample[0]->location_id[0]);
	assert_int_equal(s->value[0], 0);
	assert_int_equal(s->value[1], 12288);
	assert_int_equal(label_num(prof, s, "pid"), 200);
	assert_non_null(label_str(prof, s, "truncated"));
	assert_string_equal(label_str(prof, s, "truncated"), "true");

	s = prof->sample[3];
	assert_int_equal(s->n_location_id, 1);
	assert_frame(prof, s, 0, "f", "c.py", 20);
	assert_int_not_equal(s->location_id[0], prof->sample[0]->location_id[1]);

	/* the special kinds: one frame named by the kind, no file, line 0 */
	s = prof->sample[4];
	assert_int_equal(s->n_location_id, 1);
	assert_frame(prof, s, 0, mp_lines__kind_name(MP_LINE_NOFRAME), "", 0);
	assert_int_equal(s->value[0], 1LL << 40);
	assert_int_equal(label_num(prof, s, "pid"), 200);
	s = prof->sample[5];
	assert_frame(prof, s, 0, mp_lines__kind_name(MP_LINE_OUTSIDE), "", 0);
	assert_int_equal(s->value[0], 0);
	assert_int_equal(s->value[1], 4096);
	assert_int_equal(label_num(prof, s, "pid"), 300);
	s = prof->sample[6];
	assert_frame(prof, s, 0, mp_lines__kind_name(MP_LINE_UNRESOLVED), "", 0);
	assert_int_equal(s->value[0], INT64_MAX);

	/* <module>, f (a.py), g, f (c.py), three kinds */
	assert_int_equal(prof->n_function, 7);
	/* <module>:10, f:20, g:5, f:21, f (c.py):20, three kinds */
	assert_int_equal(prof->n_location, 8);

	perftools__profiles__profile__free_unpacked(prof, NULL);
	mp_pprof__free(p);
}

/* The profile keeps its own copies of the names: the caller's may change after the add. */
static void names_are_copied(void **state)
{
	char func[16], file[16];
	struct mp_line_frame fr = { file, func, 7 };
	struct mp_pprof *p = NULL;
	Profile *prof;

	(void)state;
	assert_int_equal(mp_pprof__new(&p), 0);
	strcpy(func, "first");
	strcpy(file, "one.py");
	add(p, 1, MP_LINE_PY, &fr, 1, false, 10, 0);
	strcpy(func, "second");
	strcpy(file, "two.py");
	add(p, 1, MP_LINE_PY, &fr, 1, false, 20, 0);
	memset(func, 'x', sizeof(func) - 1);
	memset(file, 'x', sizeof(file) - 1);
	prof = roundtrip(p, 0, 0);
	assert_well_formed(prof);
	assert_int_equal(prof->n_sample, 2);
	assert_frame(prof, prof->sample[0], 0, "first", "one.py", 7);
	assert_frame(prof, prof->sample[1], 0, "second", "two.py", 7);
	perftools__profiles__profile__free_unpacked(prof, NULL);

	/* written twice: the same file, nothing added in between */
	prof = roundtrip(p, 0, 0);
	assert_int_equal(prof->n_sample, 2);
	assert_int_equal(prof->n_function, 2);
	perftools__profiles__profile__free_unpacked(prof, NULL);
	mp_pprof__free(p);
}

/* Enough distinct names, functions and locations to grow every table many times. */
static void many_stacks(void **state)
{
	enum { N = 5000 };
	struct mp_pprof *p = NULL;
	Profile *prof;

	(void)state;
	assert_int_equal(mp_pprof__new(&p), 0);
	for (int i = 0; i < N; i++) {
		char name[32], file[32];
		/* a shared root, then a function per i in one of 7 files, at one of 3 lines */
		struct mp_line_frame fr[2] = { { "main.py", "main", 1 }, { file, name, i % 3 + 1 } };

		snprintf(name, sizeof(name), "fn%d", i);
		snprintf(file, sizeof(file), "mod%d.py", i % 7);
		add(p, 1000 + i % 5, MP_LINE_PY, fr, 2, false, (uint64_t)i * 4096, i);
	}
	prof = roundtrip(p, 0, 0);
	assert_int_equal(prof->n_sample, N);
	assert_int_equal(prof->n_function, N + 1);
	assert_int_equal(prof->n_location, N + 1);
	for (int i = 0; i < N; i++) {
		char name[32], file[32];
		const Perftools__Profiles__Sample *s = prof->sample[i];

		snprintf(name, sizeof(name), "fn%d", i);
		snprintf(file, sizeof(file), "mod%d.py", i % 7);
		assert_int_equal(s->n_location_id, 2);
		assert_frame(prof, s, 0, name, file, i % 3 + 1);
		assert_frame(prof, s, 1, "main", "main.py", 1);
		assert_int_equal(s->location_id[1], prof->sample[0]->location_id[1]);
		assert_int_equal(s->value[0], (int64_t)i * 4096);
		assert_int_equal(s->value[1], i);
		assert_int_equal(label_num(prof, s, "pid"), 1000 + i % 5);
	}
	perftools__profiles__profile__free_unpacked(prof, NULL);
	mp_pprof__free(p);
}

/* A name that is not UTF-8 (a file name is whatever bytes the target had) is made UTF-8. */
static void names_made_utf8(void **state)
{
	static const struct mp_line_frame fr[] = {
		{ "caf\xc3\xa9.py", "ok_\xe2\x82\xac", 1 },	/* valid: kept as it is */
		{ "bad\xff.py", "lone\xc3", 2 },		/* a stray byte, a cut sequence */
		{ "sur\xed\xa0\x80.py", "over\xc0\xaf", 3 },	/* a surrogate, an overlong form */
	};
	struct mp_pprof *p = NULL;
	Profile *prof;
	const Perftools__Profiles__Sample *s;

	(void)state;
	assert_int_equal(mp_pprof__new(&p), 0);
	add(p, 1, MP_LINE_PY, fr, 3, false, 1, 0);
	/* the cleaned name and the same text given clean are one string */
	add(p, 1, MP_LINE_PY, &(struct mp_line_frame){ "bad\xef\xbf\xbd.py", "x", 1 }, 1, false, 1,
	    0);
	prof = roundtrip(p, 0, 0);
	assert_well_formed(prof);
	s = prof->sample[0];
	assert_frame(prof, s, 2, "ok_\xe2\x82\xac", "caf\xc3\xa9.py", 1);
	assert_frame(prof, s, 1, "lone\xef\xbf\xbd", "bad\xef\xbf\xbd.py", 2);
	assert_frame(prof, s, 0, "over\xef\xbf\xbd\xef\xbf\xbd",
		     "sur\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd.py", 3);
	assert_frame(prof, prof->sample[1], 0, "x", "bad\xef\xbf\xbd.py", 1);
	perftools__profiles__profile__free_unpacked(prof, NULL);
	mp_pprof__free(p);
}

/* mp_lines__write_pprof() of a collection without stacks: a valid profile, no samples. */
static void empty_lines(void **state)
{
	struct mp_lines *l = NULL;
	FILE *f = tmpfile();
	uint8_t *buf;
	size_t len;
	Profile *prof;

	(void)state;
	assert_non_null(f);
	assert_int_equal(mp_lines__new(&l), 0);
	assert_int_equal(mp_lines__write_pprof(l, f, 42, 7), 0);
	buf = gunzip_file(f, &len);
	fclose(f);
	prof = perftools__profiles__profile__unpack(NULL, len, buf);
	free(buf);
	assert_non_null(prof);
	assert_well_formed(prof);
	assert_int_equal(prof->n_sample, 0);
	assert_int_equal(prof->n_location, 0);
	assert_int_equal(prof->n_function, 0);
	assert_int_equal(prof->n_sample_type, 2);
	assert_int_equal(prof->time_nanos, 42);
	assert_int_equal(prof->duration_nanos, 7);
	perftools__profiles__profile__free_unpacked(prof, NULL);
	mp_lines__free(l);
}

static void errors(void **state)
{
	static const struct mp_line_frame fr = { "a.py", "f", 1 };
	struct mp_line_stack bad = { .pid = 1, .nframes = 2, .frames = NULL };
	struct mp_pprof *p = NULL;
	FILE *f;

	(void)state;
	mp_pprof__free(NULL);
	assert_int_equal(mp_pprof__new(&p), 0);
	assert_int_equal(mp_pprof__add(p, &bad), -EINVAL);
	assert_int_equal(mp_pprof__add(p, NULL), -EINVAL);
	add(p, 1, MP_LINE_PY, &fr, 1, false, 1, 0);
	/* a full disk: the write fails, and says so */
	f = fopen("/dev/full", "w");
	if (f) {
		assert_int_equal(mp_pprof__write(p, f, 0, 0), -EIO);
		fclose(f);
	}
	/* a stream not open for writing */
	f = fopen("/dev/null", "r");
	assert_non_null(f);
	assert_int_equal(mp_pprof__write(p, f, 0, 0), -EIO);
	fclose(f);
	mp_pprof__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(samples_locations_functions),
		cmocka_unit_test(names_are_copied),
		cmocka_unit_test(many_stacks),
		cmocka_unit_test(names_made_utf8),
		cmocka_unit_test(empty_lines),
		cmocka_unit_test(errors),
	};

	return cmocka_run_group_tests_name("pprof", tests, NULL, NULL);
}

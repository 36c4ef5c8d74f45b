/*
 * Naming frames from BPF's code snapshots (struct mp_pycode_snap, user/pyresolve.c) with no
 * process to read: the target's pid is one no process has, so every answer must come from the
 * snapshot. The objects in it are laid out as each interpreter 3.8-3.13 lays them out (the
 * layout table), with the line tables and str objects captured from the real interpreters
 * (tests/unit/pyobjects_data.h): every instruction's line must be what that interpreter's
 * PyCode_Addr2Line() said. Then malformed records, and what a snapshot does not hold.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "pylayout.h"
#include "pyobjects.h"
#include "pyresolve.h"
#include "pytarget.h"

/* Addresses in the pretend target. */
#define CODE_TYPE 0x1000ull
#define UNICODE_TYPE 0x2000ull
#define BYTES_TYPE 0x3000ull
#define CODE 0x100000ull
#define FILE_STR 0x200000ull
#define NAME_STR 0x300000ull
#define CODEBYTES 0x400000ull
#define TABLE 0x500000ull
#define MANY 0x10000000ull
/* No process has it (above the kernel's pid_max limit of 2^22). */
#define NO_PID 0x7ffffff0

static void put64(uint8_t *buf, int32_t off, uint64_t v)
{
	memcpy(buf + off, &v, sizeof(v));
}

/* A target of version 3.@minor whose process does not exist. */
static void fake_target(struct mp_pytarget *t, unsigned int minor)
{
	memset(t, 0, sizeof(*t));
	t->pid = NO_PID;
	t->minor = minor;
	t->layout = *mp_pylayout__find(minor);
	t->code_type = CODE_TYPE;
	t->unicode_type = UNICODE_TYPE;
	t->bytes_type = BYTES_TYPE;
}

/* The first ASCII str sample of 3.@minor (the captured bytes, its type made ours). */
static const struct str_sample *ascii_str(unsigned int minor)
{
	for (size_t v = 0; all_strs[v]; v++)
		for (size_t i = 0; all_strs[v][i]; i++) {
			const struct str_sample *s = all_strs[v][i];
			size_t j;

			if (s->minor != minor || s->utf8len == 0)
				continue;
			for (j = 0; j < s->utf8len && s->utf8[j] < 0x80; j++)
				;
			if (j == s->utf8len)
				return s;
		}
	return NULL;
}

/*
 * Snapshot of code sample @c named @s (file and name alike), laid out as 3.@c->minor lays it
 * out; its size in *@size. The table's slot holds @tablecut bytes of the bytes object (SIZE_MAX:
 * all of it).
 */
static struct mp_pycode_snap *make_snap(const struct mp_pytarget *t, const struct code_sample *c,
					const struct str_sample *s, size_t tablecut, size_t *size)
{
	const struct mp_pylayout *l = &t->layout;
	struct mp_pycode_snap *snap = calloc(1, sizeof(*snap));
	uint8_t *hdr, *str, *tab;
	size_t tlen = (size_t)l->b_sval + c->tablelen;

	assert_non_null(snap);
	assert_true(s->rawlen <= MP_PY_SNAP_STR && tlen <= MP_PY_SNAP_TABLE);
	snap->kind = MP_LINE_REC_CODE;
	snap->tgid = NO_PID;
	snap->code = CODE;
	snap->tag = mp_pyframe_tag(FILE_STR, NAME_STR, (uint32_t)c->firstlineno);
	/* the code header */
	hdr = snap->data + MP_PYSNAP_OFF_CODE;
	put64(hdr, l->ob_type, CODE_TYPE);
	put64(hdr, l->co_filename, FILE_STR);
	put64(hdr, l->co_name, NAME_STR);
	if (l->co_qualname != MP_PYL_NONE)
		put64(hdr, l->co_qualname, NAME_STR);
	put64(hdr, l->co_linetable, TABLE);
	memcpy(hdr + l->co_firstlineno, &c->firstlineno, sizeof(int32_t));
	if (l->co_size != MP_PYL_NONE)
		put64(hdr, l->co_size, c->n_units);
	if (l->co_code != MP_PYL_NONE)
		put64(hdr, l->co_code, CODEBYTES);
	snap->r[MP_PYSNAP_CODE] = (struct mp_pysnap_region){ CODE, (uint32_t)l->code_basicsize,
							      MP_PYSNAP_OFF_CODE };
	/* one str object for the file name and the name */
	str = snap->data + MP_PYSNAP_OFF_FILE;
	memcpy(str, s->raw, s->rawlen);
	put64(str, l->ob_type, UNICODE_TYPE);
	/* BPF copies a str slot's worth from the object's start, whatever follows it */
	snap->r[MP_PYSNAP_FILE] = (struct mp_pysnap_region){ FILE_STR, MP_PY_SNAP_STR,
							      MP_PYSNAP_OFF_FILE };
	memcpy(snap->data + MP_PYSNAP_OFF_NAME, str, s->rawlen);
	snap->r[MP_PYSNAP_NAME] = (struct mp_pysnap_region){ NAME_STR, MP_PY_SNAP_STR,
							      MP_PYSNAP_OFF_NAME };
	/* the bytecode's bytes object (3.8-3.10): its header says how long it is */
	if (l->co_code != MP_PYL_NONE) {
		uint8_t *cb = snap->data + MP_PYSNAP_OFF_CODEBYTES;

		put64(cb, l->ob_type, BYTES_TYPE);
		put64(cb, l->b_size, c->n_units * 2);
		snap->r[MP_PYSNAP_CODEBYTES] = (struct mp_pysnap_region){ CODEBYTES,
									   MP_PY_SNAP_BYTES,
									   MP_PYSNAP_OFF_CODEBYTES };
	}
	/* the line table's bytes object, cut as asked */
	tab = snap->data + MP_PYSNAP_OFF_TABLE;
	put64(tab, l->ob_type, BYTES_TYPE);
	put64(tab, l->b_size, c->tablelen);
	memcpy(tab + l->b_sval, c->table, c->tablelen);
	if (tablecut < tlen)
		tlen = tablecut;
	snap->r[MP_PYSNAP_TABLE] = (struct mp_pysnap_region){ TABLE, (uint32_t)tlen,
							       MP_PYSNAP_OFF_TABLE };
	*size = offsetof(struct mp_pycode_snap, data) + MP_PYSNAP_OFF_TABLE + tlen;
	return snap;
}

static void frames_named_from_the_snapshot_alone(void **state)
{
	unsigned int checked = 0;

	(void)state;
	for (size_t v = 0; all_codes[v]; v++) {
		const struct code_sample *c = all_codes[v][0];
		const struct str_sample *s = ascii_str(c->minor);
		struct mp_pyresolver *r = NULL;
		struct mp_pycode_snap *snap;
		struct mp_pyresolver_stats st;
		struct mp_pytarget t;
		size_t size;

		assert_non_null(s);
		fake_target(&t, c->minor);
		assert_int_equal(mp_pyresolver__new(&t, &r), 0);
		snap = make_snap(&t, c, s, SIZE_MAX, &size);
		assert_int_equal(mp_pyresolver__snapshot(r, snap, size), 0);
		free(snap); /* the resolver keeps its own copy */
		for (size_t u = 0; u < c->n_units; u++) {
			struct mp_pyframe f = { CODE, (int32_t)(u * 2),
						mp_pyframe_tag(FILE_STR, NAME_STR,
							       (uint32_t)c->firstlineno) };
			struct mp_pyloc loc;
			int want = c->lines[u] < 0 ? 0 : c->lines[u];

			assert_int_equal(mp_pyresolver__resolve(r, &f, &loc), 0);
			if (loc.line != want)
				fail_msg("3.%u %s: offset %zu: line %d, interpreter %d", c->minor,
					 c->name, u * 2, loc.line, want);
			assert_string_equal(loc.file, (const char *)s->utf8);
			assert_string_equal(loc.name, (const char *)s->utf8);
			assert_int_equal(loc.firstlineno, c->firstlineno);
			checked++;
		}
		mp_pyresolver__stats(r, &st);
		assert_int_equal(st.snapshots, c->n_units);
		assert_int_equal(st.failures, 0);
		mp_pyresolver__free(r);
	}
	assert_true(checked > 100);
}

static void what_a_snapshot_lacks_is_read_from_the_process(void **state)
{
	const struct code_sample *c = all_codes[0][0];
	const struct str_sample *s = ascii_str(c->minor);
	struct mp_pyframe f = { CODE, 0, mp_pyframe_tag(FILE_STR, NAME_STR,
						       (uint32_t)c->firstlineno) };
	struct mp_pyresolver *r = NULL;
	struct mp_pycode_snap *snap;
	struct mp_pytarget t;
	struct mp_pyloc loc;
	size_t size;

	(void)state;
	fake_target(&t, c->minor);
	assert_int_equal(mp_pyresolver__new(&t, &r), 0);
	/* no snapshot: the live read fails, the process does not exist */
	assert_int_not_equal(mp_pyresolver__resolve(r, &f, &loc), 0);
	/* a snapshot of another code object at that address (another tag) is not used */
	snap = make_snap(&t, c, s, SIZE_MAX, &size);
	snap->tag ^= 2;
	assert_int_equal(mp_pyresolver__snapshot(r, snap, size), 0);
	assert_int_not_equal(mp_pyresolver__resolve(r, &f, &loc), 0);
	free(snap);
	/* a line table cut short in the copy: the rest would have to come from the process */
	snap = make_snap(&t, c, s, (size_t)t.layout.b_sval + c->tablelen - 1, &size);
	assert_int_equal(mp_pyresolver__snapshot(r, snap, size), 0);
	assert_int_not_equal(mp_pyresolver__resolve(r, &f, &loc), 0);
	free(snap);
	/* the whole table, replacing the cut copy of that code and tag */
	snap = make_snap(&t, c, s, SIZE_MAX, &size);
	assert_int_equal(mp_pyresolver__snapshot(r, snap, size), 0);
	assert_int_equal(mp_pyresolver__resolve(r, &f, &loc), 0);
	assert_int_equal(loc.line, c->lines[0] < 0 ? 0 : c->lines[0]);
	free(snap);
	mp_pyresolver__free(r);
}

/*
 * The walk may keep the tag of the code that had a frame's address and place in the thread's
 * previous stack; the snapshot taken by the same event is the code that ran there: named from
 * it, where a live read of that code would be refused as stale.
 */
static void a_snapshot_names_a_frame_whose_tag_was_kept(void **state)
{
	const struct code_sample *c = all_codes[0][0];
	const struct str_sample *s = ascii_str(c->minor);
	uint32_t kept = mp_pyframe_tag(FILE_STR + 0x100, NAME_STR, (uint32_t)c->firstlineno);
	struct mp_pyframe f = { CODE, 0, kept };
	struct mp_pyresolver *r = NULL;
	struct mp_pycode_snap *snap;
	struct mp_pytarget t;
	struct mp_pyloc loc;
	size_t size;

	(void)state;
	fake_target(&t, c->minor);
	assert_int_equal(mp_pyresolver__new(&t, &r), 0);
	snap = make_snap(&t, c, s, SIZE_MAX, &size);
	snap->tag = kept; /* BPF files the copy under the frame's tag */
	assert_int_equal(mp_pyresolver__snapshot(r, snap, size), 0);
	assert_int_equal(mp_pyresolver__resolve(r, &f, &loc), 0);
	assert_string_equal(loc.name, (const char *)s->utf8);
	assert_int_equal(loc.line, c->lines[0] < 0 ? 0 : c->lines[0]);
	free(snap);
	mp_pyresolver__free(r);
}

static void malformed_records_are_refused(void **state)
{
	const struct code_sample *c = all_codes[0][0];
	const struct str_sample *s = ascii_str(c->minor);
	struct mp_pyresolver *r = NULL;
	struct mp_pycode_snap *snap;
	struct mp_pytarget t;
	size_t size, head = offsetof(struct mp_pycode_snap, data);

	(void)state;
	fake_target(&t, c->minor);
	assert_int_equal(mp_pyresolver__new(&t, &r), 0);
	snap = make_snap(&t, c, s, SIZE_MAX, &size);
	/* shorter than its header, longer than a record */
	assert_int_equal(mp_pyresolver__snapshot(r, snap, head - 1), -EINVAL);
	assert_int_equal(mp_pyresolver__snapshot(r, snap, sizeof(*snap) + 1), -EINVAL);
	/* a region past the end of the record: the table's, the record cut before it ends */
	assert_int_equal(mp_pyresolver__snapshot(r, snap, size - 1), -EINVAL);
	/* a region whose offset and length overflow */
	snap->r[MP_PYSNAP_FILE].off = UINT32_MAX;
	assert_int_equal(mp_pyresolver__snapshot(r, snap, size), -EINVAL);
	snap->r[MP_PYSNAP_FILE].off = MP_PYSNAP_OFF_FILE;
	/* a region that wraps around the address space */
	snap->r[MP_PYSNAP_NAME].addr = UINT64_MAX - 4;
	assert_int_equal(mp_pyresolver__snapshot(r, snap, size), -EINVAL);
	snap->r[MP_PYSNAP_NAME].addr = NAME_STR;
	/* no code address */
	snap->code = 0;
	assert_int_equal(mp_pyresolver__snapshot(r, snap, size), -EINVAL);
	snap->code = CODE;
	/* and the record as it was is taken */
	assert_int_equal(mp_pyresolver__snapshot(r, snap, size), 0);
	free(snap);
	mp_pyresolver__free(r);
}

/* Many code objects: the table grows, every one is still found (its own line table). */
static void many_snapshots(void **state)
{
	const struct code_sample *c = all_codes[0][0];
	const struct str_sample *s = ascii_str(c->minor);
	struct mp_pyresolver *r = NULL;
	struct mp_pytarget t;
	size_t size;

	(void)state;
	fake_target(&t, c->minor);
	assert_int_equal(mp_pyresolver__new(&t, &r), 0);
	for (uint64_t i = 0; i < 1000; i++) {
		struct mp_pycode_snap *snap = make_snap(&t, c, s, SIZE_MAX, &size);

		/* the same objects, the code at another address each time (above the others) */
		snap->code = MANY + i * 0x1000;
		snap->r[MP_PYSNAP_CODE].addr = snap->code;
		assert_int_equal(mp_pyresolver__snapshot(r, snap, size), 0);
		free(snap);
	}
	for (uint64_t i = 0; i < 1000; i++) {
		struct mp_pyframe f = { MANY + i * 0x1000, 0,
					mp_pyframe_tag(FILE_STR, NAME_STR, (uint32_t)c->firstlineno) };
		struct mp_pyloc loc;

		assert_int_equal(mp_pyresolver__resolve(r, &f, &loc), 0);
		assert_int_equal(loc.line, c->lines[0] < 0 ? 0 : c->lines[0]);
	}
	mp_pyresolver__free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(frames_named_from_the_snapshot_alone),
		cmocka_unit_test(what_a_snapshot_lacks_is_read_from_the_process),
		cmocka_unit_test(a_snapshot_names_a_frame_whose_tag_was_kept),
		cmocka_unit_test(malformed_records_are_refused),
		cmocka_unit_test(many_snapshots),
	};

	return cmocka_run_group_tests_name("pysnap", tests, NULL, NULL);
}

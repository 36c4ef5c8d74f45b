#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#define ZLIB_CONST
#include <zlib.h>

#include "pprof.h"
#include "profile.pb-c.h"
#include "utf8.h"

/*
 * The strings every profile has, interned by mp_pprof__new() in this order, so that writing
 * needs no new ones (mp_pprof__write() leaves the profile as it was).
 */
enum {
	S_EMPTY = 0, /* the format's index 0 */
	S_GROWN,
	S_FREED,
	S_BYTES,
	S_SPACE,
	S_PID,
	S_TRUNCATED,
	S_TRUE,
	S_COMMENT,
	S_FIXED
};

static const char *const fixed_strs[S_FIXED] = {
	[S_EMPTY] = "",
	[S_GROWN] = "grown_bytes",
	[S_FREED] = "freed_bytes",
	[S_BYTES] = "bytes",
	[S_SPACE] = "space",
	[S_PID] = "pid",
	[S_TRUNCATED] = "truncated",
	[S_TRUE] = "true",
	[S_COMMENT] = ("mprof-bpf: RSS changes charged to the Python stack that made them "
		       "(every change counted, none sampled)"),
};

/* The string table: s[i] is string i; slot[] an open-addressing index of it (i + 1, 0 empty). */
struct strtab {
	char **s;
	size_t n, cap;
	uint32_t *slot;
	size_t nslot; /* a power of two, at least twice n */
};

/* An open-addressing map of 64-bit keys to ids (1, 2, ...; 0 marks an empty slot). */
struct idmap {
	uint64_t *key;
	uint32_t *id;
	size_t cap; /* a power of two, at least twice the ids */
	size_t n;
};

struct func {
	uint32_t name, file; /* string indices */
};

struct loc {
	uint32_t func; /* function id */
	int line;
};

struct sample {
	size_t first; /* its location ids: pool[first .. first + n), leaf first */
	unsigned int n;
	pid_t pid;
	bool truncated;
	uint64_t grown, freed;
};

struct mp_pprof {
	struct strtab str;
	struct func *funcs; /* function id i + 1 */
	size_t nfuncs, capfuncs;
	struct idmap funcmap; /* (name, file) -> function id */
	struct loc *locs;     /* location id i + 1 */
	size_t nlocs, caplocs;
	struct idmap locmap; /* (function id, line) -> location id */
	uint64_t *pool;
	size_t npool, cappool;
	struct sample *samples;
	size_t nsamples, capsamples;
};

/* Ids and string indices are 32-bit here; 0 is taken (empty slot, the format's ""). */
#define MAX_IDS (UINT32_MAX - 1)

/* @a with room for @need elements of @size bytes (*@cap updated), or NULL with @a unchanged. */
static void *reserve(void *a, size_t *cap, size_t need, size_t size)
{
	size_t ncap = *cap ? *cap : 16;
	void *na;

	if (need <= *cap)
		return a;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / size)
			return NULL;
		ncap *= 2;
	}
	na = realloc(a, ncap * size);
	if (na)
		*cap = ncap;
	return na;
}

/* splitmix64's finaliser: the keys (packed indices) are far from random in their low bits. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t str_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		h = (h ^ *c) * 0x100000001b3ULL;
	return h;
}

/* ---- strings ------------------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at @s (a NUL-terminated string), or 0. */
static size_t utf8_len(const unsigned char *s)
{
	/* a NUL is no continuation byte: the check stops there */
	int l = mp_utf8_seq(s, 4);

	return l > 0 ? (size_t)l : 0;
}

static bool utf8_valid(const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c;) {
		size_t l = utf8_len(c);

		if (!l)
			return false;
		c += l;
	}
	return true;
}

/*
 * A copy of @s with each byte that is not part of well-formed UTF-8 replaced by U+FFFD: the
 * format's strings are UTF-8, and protobuf readers in other languages reject a file that is not
 * (a file name is whatever bytes the target had). NULL when out of memory.
 */
static char *utf8_clean(const char *s)
{
	size_t n = strlen(s);
	char *out, *o;

	if (n > (SIZE_MAX - 1) / 3)
		return NULL;
	out = malloc(n * 3 + 1); /* one byte becomes at most the 3 of U+FFFD */
	if (!out)
		return NULL;
	o = out;
	for (const unsigned char *c = (const unsigned char *)s; *c;) {
		size_t l = utf8_len(c);

		if (l) {
			memcpy(o, c, l);
			o += l;
			c += l;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			c++;
		}
	}
	*o = '\0';
	return out;
}

static int strtab_rehash(struct strtab *t, size_t nslot)
{
	uint32_t *slot = calloc(nslot, sizeof(*slot));

	if (!slot)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		size_t k = str_hash(t->s[i]) & (nslot - 1);

		while (slot[k])
			k = (k + 1) & (nslot - 1);
		slot[k] = (uint32_t)(i + 1);
	}
	free(t->slot);
	t->slot = slot;
	t->nslot = nslot;
	return 0;
}

/* The index of @s in the table, added (copied) if new. Returns 0 or -errno. */
static int strtab_index(struct strtab *t, const char *s, uint32_t *out)
{
	char *clean = NULL, *copy;
	size_t k;
	void *n;
	int err = 0;

	if (!utf8_valid(s)) {
		clean = utf8_clean(s);
		if (!clean)
			return -ENOMEM;
		s = clean;
	}
	if ((t->n + 1) * 2 > t->nslot) {
		err = strtab_rehash(t, t->nslot ? t->nslot * 2 : 256);
		if (err)
			goto cleanup;
	}
	for (k = str_hash(s) & (t->nslot - 1); t->slot[k]; k = (k + 1) & (t->nslot - 1)) {
		if (!strcmp(t->s[t->slot[k] - 1], s)) {
			*out = t->slot[k] - 1;
			goto cleanup;
		}
	}
	if (t->n >= MAX_IDS) {
		err = -E2BIG;
		goto cleanup;
	}
	n = reserve(t->s, &t->cap, t->n + 1, sizeof(*t->s));
	if (!n) {
		err = -ENOMEM;
		goto cleanup;
	}
	t->s = n;
	copy = clean ? clean : strdup(s);
	if (!copy) {
		err = -ENOMEM;
		goto cleanup;
	}
	clean = NULL;
	t->s[t->n] = copy;
	t->slot[k] = (uint32_t)(t->n + 1);
	*out = (uint32_t)t->n++;
cleanup:
	free(clean);
	return err;
}

/* ---- functions and locations ----------------------------------------------------------- */

/* The slot of @key, or of the empty slot where it would go. */
static size_t idmap_slot(const struct idmap *m, uint64_t key)
{
	size_t k = mix64(key) & (m->cap - 1);

	while (m->id[k] && m->key[k] != key)
		k = (k + 1) & (m->cap - 1);
	return k;
}

/* Room for one more id (the slots found before this call are invalid). Returns 0 or -ENOMEM. */
static int idmap_reserve(struct idmap *m)
{
	struct idmap nm;

	if ((m->n + 1) * 2 <= m->cap)
		return 0;
	nm.cap = m->cap ? m->cap * 2 : 256;
	nm.n = m->n;
	nm.key = calloc(nm.cap, sizeof(*nm.key));
	nm.id = calloc(nm.cap, sizeof(*nm.id));
	if (!nm.key || !nm.id) {
		free(nm.key);
		free(nm.id);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (m->id[i]) {
			size_t k = idmap_slot(&nm, m->key[i]);

			nm.key[k] = m->key[i];
			nm.id[k] = m->id[i];
		}
	}
	free(m->key);
	free(m->id);
	*m = nm;
	return 0;
}

/* The id of the function (@name, @file), added if new. Returns 0 or -errno. */
static int function_id(struct mp_pprof *p, const char *name, const char *file, uint32_t *out)
{
	uint32_t iname, ifile;
	uint64_t key;
	size_t k;
	void *n;
	int err;

	err = strtab_index(&p->str, name, &iname);
	if (!err)
		err = strtab_index(&p->str, file, &ifile);
	if (!err)
		err = idmap_reserve(&p->funcmap);
	if (err)
		return err;
	key = (uint64_t)iname << 32 | ifile;
	k = idmap_slot(&p->funcmap, key);
	if (p->funcmap.id[k]) {
		*out = p->funcmap.id[k];
		return 0;
	}
	if (p->nfuncs >= MAX_IDS)
		return -E2BIG;
	n = reserve(p->funcs, &p->capfuncs, p->nfuncs + 1, sizeof(*p->funcs));
	if (!n)
		return -ENOMEM;
	p->funcs = n;
	p->funcs[p->nfuncs].name = iname;
	p->funcs[p->nfuncs].file = ifile;
	p->funcmap.key[k] = key;
	p->funcmap.id[k] = *out = (uint32_t)++p->nfuncs;
	p->funcmap.n++;
	return 0;
}

/* The id of the location (@name, @file, @line), added if new. Returns 0 or -errno. */
static int location_id(struct mp_pprof *p, const char *name, const char *file, int line,
		       uint64_t *out)
{
	uint32_t fid;
	uint64_t key;
	size_t k;
	void *n;
	int err;

	err = function_id(p, name, file, &fid);
	if (!err)
		err = idmap_reserve(&p->locmap);
	if (err)
		return err;
	key = (uint64_t)fid << 32 | (uint32_t)line;
	k = idmap_slot(&p->locmap, key);
	if (p->locmap.id[k]) {
		*out = p->locmap.id[k];
		return 0;
	}
	if (p->nlocs >= MAX_IDS)
		return -E2BIG;
	n = reserve(p->locs, &p->caplocs, p->nlocs + 1, sizeof(*p->locs));
	if (!n)
		return -ENOMEM;
	p->locs = n;
	p->locs[p->nlocs].func = fid;
	p->locs[p->nlocs].line = line;
	p->locmap.key[k] = key;
	p->locmap.id[k] = (uint32_t)++p->nlocs;
	p->locmap.n++;
	*out = p->nlocs;
	return 0;
}

/* ---- the collection ------------------------------------------------------------------------ */

int mp_pprof__new(struct mp_pprof **out)
{
	struct mp_pprof *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	for (unsigned int i = 0; i < S_FIXED; i++) {
		uint32_t idx;

		/* distinct strings, so each lands at index i */
		if (strtab_index(&p->str, fixed_strs[i], &idx)) {
			mp_pprof__free(p);
			return -ENOMEM;
		}
	}
	*out = p;
	return 0;
}

void mp_pprof__free(struct mp_pprof *p)
{
	if (!p)
		return;
	free(p->samples);
	free(p->pool);
	free(p->locmap.key);
	free(p->locmap.id);
	free(p->locs);
	free(p->funcmap.key);
	free(p->funcmap.id);
	free(p->funcs);
	for (size_t i = 0; i < p->str.n; i++)
		free(p->str.s[i]);
	free(p->str.s);
	free(p->str.slot);
	free(p);
}

int mp_pprof__add(struct mp_pprof *p, const struct mp_line_stack *s)
{
	unsigned int n;
	size_t first;
	void *np;
	int err = 0;

	if (!p || !s || (s->nframes && !s->frames))
		return -EINVAL;
	n = s->nframes ? s->nframes : 1;
	first = p->npool;
	/* room first: once names are in, nothing can fail and the sample is added whole */
	if (n > SIZE_MAX - first)
		return -ENOMEM;
	np = reserve(p->pool, &p->cappool, first + n, sizeof(*p->pool));
	if (!np)
		return -ENOMEM;
	p->pool = np;
	np = reserve(p->samples, &p->capsamples, p->nsamples + 1, sizeof(*p->samples));
	if (!np)
		return -ENOMEM;
	p->samples = np;

	if (!s->nframes)
		err = location_id(p, mp_lines__kind_name(s->kind), "", 0, &p->pool[first]);
	/* pprof wants the leaf first: the frames come root first */
	for (unsigned int i = 0; i < s->nframes && !err; i++) {
		const struct mp_line_frame *fr = &s->frames[s->nframes - 1 - i];

		err = location_id(p, fr->func ? fr->func : "", fr->file ? fr->file : "", fr->line,
				  &p->pool[first + i]);
	}
	if (err)
		return err;
	p->npool = first + n;
	p->samples[p->nsamples++] = (struct sample){
		.first = first,
		.n = n,
		.pid = s->pid,
		.truncated = s->truncated,
		.grown = s->grown,
		.freed = s->freed,
	};
	return 0;
}

/* ---- writing ------------------------------------------------------------------------------ */

/* A protobuf-c output that deflates into a gzip stream on @f as the message is packed. */
struct gz_out {
	ProtobufCBuffer base; /* first: protobuf-c hands back a pointer to it */
	z_stream z;
	FILE *f;
	int err;
	unsigned char buf[1 << 16];
};

/* Run deflate on what is pending with @flush, writing out everything it produces. */
static void gz_run(struct gz_out *g, int flush)
{
	int ret;

	do {
		size_t have;

		g->z.next_out = g->buf;
		g->z.avail_out = sizeof(g->buf);
		ret = deflate(&g->z, flush);
		if (ret == Z_STREAM_ERROR) {
			g->err = -EIO;
			return;
		}
		have = sizeof(g->buf) - g->z.avail_out;
		if (have && fwrite(g->buf, 1, have, g->f) != have) {
			g->err = -EIO;
			return;
		}
	} while (flush == Z_FINISH ? ret != Z_STREAM_END : g->z.avail_out == 0);
}

static void gz_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
	struct gz_out *g = (struct gz_out *)b;

	while (len && !g->err) {
		/* avail_in is an unsigned int */
		uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;

		g->z.next_in = data;
		g->z.avail_in = chunk;
		gz_run(g, Z_NO_FLUSH);
		data += chunk;
		len -= chunk;
	}
}

static int64_t clamp64(uint64_t v)
{
	return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* Pack @prof to @f, gzipped. Returns 0 or -errno. */
static int write_gz(const Perftools__Profiles__Profile *prof, FILE *f)
{
	struct gz_out *g = calloc(1, sizeof(*g));
	int err, ret;

	if (!g)
		return -ENOMEM;
	g->base.append = gz_append;
	g->f = f;
	/* 15 + 16: the largest window, with a gzip header and trailer (what pprof reads) */
	ret = deflateInit2(&g->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
	if (ret != Z_OK) {
		free(g);
		return ret == Z_MEM_ERROR ? -ENOMEM : -EIO;
	}
	perftools__profiles__profile__pack_to_buffer(prof, &g->base);
	if (!g->err) {
		g->z.next_in = NULL;
		g->z.avail_in = 0;
		gz_run(g, Z_FINISH);
	}
	err = g->err;
	deflateEnd(&g->z);
	free(g);
	if (!err && (fflush(f) || ferror(f)))
		err = -EIO;
	return err;
}

int mp_pprof__write(struct mp_pprof *p, FILE *f, int64_t time_ns, int64_t duration_ns)
{
	Perftools__Profiles__Profile prof = PERFTOOLS__PROFILES__PROFILE__INIT;
	Perftools__Profiles__ValueType types[2], period_type = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
	Perftools__Profiles__ValueType *type_ptrs[2] = { &types[0], &types[1] };
	int64_t comment = S_COMMENT;
	size_t ns = p->nsamples, nl = p->nlocs, nf = p->nfuncs;
	Perftools__Profiles__Sample *samples = NULL, **sample_ptrs = NULL;
	Perftools__Profiles__Label *labels = NULL, **label_ptrs = NULL;
	Perftools__Profiles__Location *locs = NULL, **loc_ptrs = NULL;
	Perftools__Profiles__Line *lines = NULL, **line_ptrs = NULL;
	Perftools__Profiles__Function *funcs = NULL, **func_ptrs = NULL;
	int64_t *values = NULL;
	int err = -ENOMEM;

	/* +1: calloc(0) may give NULL */
	samples = calloc(ns + 1, sizeof(*samples));
	sample_ptrs = calloc(ns + 1, sizeof(*sample_ptrs));
	values = calloc(2 * ns + 1, sizeof(*values));
	labels = calloc(2 * ns + 1, sizeof(*labels)); /* pid, and truncated where it is */
	label_ptrs = calloc(2 * ns + 1, sizeof(*label_ptrs));
	locs = calloc(nl + 1, sizeof(*locs));
	loc_ptrs = calloc(nl + 1, sizeof(*loc_ptrs));
	lines = calloc(nl + 1, sizeof(*lines));
	line_ptrs = calloc(nl + 1, sizeof(*line_ptrs));
	funcs = calloc(nf + 1, sizeof(*funcs));
	func_ptrs = calloc(nf + 1, sizeof(*func_ptrs));
	if (!samples || !sample_ptrs || !values || !labels || !label_ptrs || !locs || !loc_ptrs ||
	    !lines || !line_ptrs || !funcs || !func_ptrs)
		goto cleanup;

	for (size_t i = 0; i < 2; i++) {
		perftools__profiles__value_type__init(&types[i]);
		types[i].type = i ? S_FREED : S_GROWN;
		types[i].unit = S_BYTES;
	}
	period_type.type = S_SPACE;
	period_type.unit = S_BYTES;

	for (size_t i = 0; i < ns; i++) {
		const struct sample *s = &p->samples[i];
		Perftools__Profiles__Sample *o = &samples[i];
		Perftools__Profiles__Label *l = &labels[2 * i];

		perftools__profiles__sample__init(o);
		o->n_location_id = s->n;
		o->location_id = &p->pool[s->first];
		values[2 * i] = clamp64(s->grown);
		values[2 * i + 1] = clamp64(s->freed);
		o->n_value = 2;
		o->value = &values[2 * i];
		perftools__profiles__label__init(&l[0]);
		l[0].key = S_PID;
		l[0].num = s->pid;
		label_ptrs[2 * i] = &l[0];
		o->n_label = 1;
		if (s->truncated) {
			perftools__profiles__label__init(&l[1]);
			l[1].key = S_TRUNCATED;
			l[1].str = S_TRUE;
			label_ptrs[2 * i + 1] = &l[1];
			o->n_label = 2;
		}
		o->label = &label_ptrs[2 * i];
		sample_ptrs[i] = o;
	}
	for (size_t i = 0; i < nl; i++) {
		perftools__profiles__line__init(&lines[i]);
		lines[i].function_id = p->locs[i].func;
		lines[i].line = p->locs[i].line;
		line_ptrs[i] = &lines[i];
		perftools__profiles__location__init(&locs[i]);
		locs[i].id = i + 1;
		locs[i].n_line = 1;
		locs[i].line = &line_ptrs[i];
		loc_ptrs[i] = &locs[i];
	}
	for (size_t i = 0; i < nf; i++) {
		perftools__profiles__function__init(&funcs[i]);
		funcs[i].id = i + 1;
		/*
		 * No system_name: Python's names are not mangled, and pprof demangles a function
		 * whose system_name equals its name, cutting "<...>" out of what looks like C++:
		 * "<module>" would show as "".
		 */
		funcs[i].name = p->funcs[i].name;
		funcs[i].filename = p->funcs[i].file;
		func_ptrs[i] = &funcs[i];
	}

	prof.n_sample_type = 2;
	prof.sample_type = type_ptrs;
	prof.n_sample = ns;
	prof.sample = sample_ptrs;
	prof.n_location = nl;
	prof.location = loc_ptrs;
	prof.n_function = nf;
	prof.function = func_ptrs;
	prof.n_string_table = p->str.n;
	prof.string_table = p->str.s;
	prof.time_nanos = time_ns;
	prof.duration_nanos = duration_ns;
	/* every change is counted, none sampled: one byte stands for one byte */
	prof.period_type = &period_type;
	prof.period = 1;
	prof.n_comment = 1;
	prof.comment = &comment;
	prof.default_sample_type = S_GROWN;
	err = write_gz(&prof, f);
cleanup:
	free(func_ptrs);
	free(funcs);
	free(line_ptrs);
	free(lines);
	free(loc_ptrs);
	free(locs);
	free(label_ptrs);
	free(labels);
	free(values);
	free(sample_ptrs);
	free(samples);
	return err;
}

static int add_stack(void *ctx, const struct mp_line_stack *s)
{
	return mp_pprof__add(ctx, s);
}

int mp_lines__write_pprof(const struct mp_lines *l, FILE *f, int64_t time_ns, int64_t duration_ns)
{
	struct mp_pprof *p = NULL;
	int err;

	err = mp_pprof__new(&p);
	if (err)
		return err;
	err = mp_lines__each_stack(l, add_stack, p);
	if (!err)
		err = mp_pprof__write(p, f, time_ns, duration_ns);
	mp_pprof__free(p);
	return err;
}

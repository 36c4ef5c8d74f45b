/*
 * Code objects of a live CPython process -> file, name, line (see pyresolve.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "pylines.h"
#include "pyresolve.h"
#include "pystr.h"

/* Code object header we read: every field we use lies in its first 256 bytes (pylayout.c). */
#define CODE_HDR 256
/* str header we read: up to the characters of a compact str (and its data pointer). */
#define STR_HDR 128

/* What identifies a code object's contents: if any of it changed, it is another code object. */
struct ident {
	uint64_t filename, name, qualname, linetable, codebytes;
	int64_t size;
	int32_t firstlineno;
	int32_t pad;
};

struct entry {
	uint64_t code; /* 0: free slot */
	struct ident id;
	const char *file, *name; /* interned */
	uint8_t *table;
	size_t tablelen;
	uint64_t ncode; /* bytes of bytecode */
};

/* A kept snapshot: open addressing on (code, tag). */
struct snap {
	uint64_t code; /* 0: free slot */
	uint32_t tag;
	struct mp_pycode_snap *s; /* malloc'd, as long as the record was */
};

struct mp_pyresolver {
	const struct mp_pytarget *t;
	struct snap *snaps;
	size_t snapcap, snapused;
	const struct snap *cur; /* the snapshot of the frame being resolved, or NULL */
	struct entry *slots;
	size_t cap, used; /* cap: a power of two */
	char **strs;	  /* interned strings, open addressing */
	size_t scap, sused;
	struct mp_pyresolver_stats stats;
};

/* Offsets that point outside the headers we read would read outside our buffers. */
static int layout_fits(const struct mp_pylayout *l)
{
	const int32_t code[] = { l->ob_type,	    l->co_filename,  l->co_name,
				 l->co_qualname,    l->co_linetable, l->co_code,
				 l->co_size,	    l->co_firstlineno };
	const int32_t str[] = { l->ob_type, l->u_length, l->u_state, l->u_data };

	for (size_t i = 0; i < sizeof(code) / sizeof(code[0]); i++)
		if (code[i] != MP_PYL_NONE && (code[i] < 0 || code[i] + 8 > CODE_HDR))
			return 0;
	if (l->code_basicsize < 24 || l->code_basicsize > CODE_HDR)
		return 0;
	if (l->u_compact_size < 0 || l->u_compact_size + 8 > STR_HDR || l->u_ascii_size < 0 ||
	    l->u_ascii_size > l->u_compact_size)
		return 0;
	for (size_t i = 0; i < sizeof(str) / sizeof(str[0]); i++)
		if (str[i] < 0 || str[i] + 8 > l->u_compact_size + 8)
			return 0;
	if (l->u_kind_shift < 0 || l->u_kind_shift > 29 || l->u_compact_bit < 0 ||
	    l->u_compact_bit > 31 || l->u_ascii_bit < 0 || l->u_ascii_bit > 31 ||
	    (l->u_ready_bit != MP_PYL_NONE && (l->u_ready_bit < 0 || l->u_ready_bit > 31)))
		return 0;
	return l->b_size >= 0 && l->b_sval >= 0 && l->lines >= MP_PYLINES_LNOTAB &&
	       l->lines <= MP_PYLINES_LOCATIONS;
}

int mp_pyresolver__new(const struct mp_pytarget *t, struct mp_pyresolver **out)
{
	struct mp_pyresolver *r;

	*out = NULL;
	if (!layout_fits(&t->layout))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->t = t;
	*out = r;
	return 0;
}

void mp_pyresolver__free(struct mp_pyresolver *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->cap; i++)
		free(r->slots[i].table);
	for (size_t i = 0; i < r->scap; i++)
		free(r->strs[i]);
	for (size_t i = 0; i < r->snapcap; i++)
		free(r->snaps[i].s);
	free(r->snaps);
	free(r->slots);
	free(r->strs);
	free(r);
}

void mp_pyresolver__stats(const struct mp_pyresolver *r, struct mp_pyresolver_stats *out)
{
	*out = r->stats;
}

static uint64_t hash_u64(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdull; /* murmur3's finalizer: every bit of v moves every bit */
	v ^= v >> 33;
	return v;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

/* The interned copy of @s (NULL on ENOMEM). Strings are never freed before the resolver. */
static const char *intern(struct mp_pyresolver *r, const char *s)
{
	size_t i;

	if ((r->sused + 1) * 2 > r->scap) {
		size_t ncap = r->scap ? r->scap * 2 : 256;
		char **ns = calloc(ncap, sizeof(*ns));

		if (!ns)
			return NULL;
		for (size_t j = 0; j < r->scap; j++) {
			if (!r->strs[j])
				continue;
			for (i = hash_str(r->strs[j]) & (ncap - 1); ns[i]; i = (i + 1) & (ncap - 1))
				;
			ns[i] = r->strs[j];
		}
		free(r->strs);
		r->strs = ns;
		r->scap = ncap;
	}
	for (i = hash_str(s) & (r->scap - 1); r->strs[i]; i = (i + 1) & (r->scap - 1))
		if (!strcmp(r->strs[i], s))
			return r->strs[i];
	r->strs[i] = strdup(s);
	if (!r->strs[i])
		return NULL;
	r->sused++;
	return r->strs[i];
}

/* The slot of @code: its entry, or the free slot where it goes. NULL on ENOMEM. */
static struct entry *slot_of(struct mp_pyresolver *r, uint64_t code)
{
	size_t i;

	if ((r->used + 1) * 2 > r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 256;
		struct entry *ns = calloc(ncap, sizeof(*ns));

		if (!ns)
			return NULL;
		for (size_t j = 0; j < r->cap; j++) {
			if (!r->slots[j].code)
				continue;
			for (i = hash_u64(r->slots[j].code) & (ncap - 1); ns[i].code;
			     i = (i + 1) & (ncap - 1))
				;
			ns[i] = r->slots[j];
		}
		free(r->slots);
		r->slots = ns;
		r->cap = ncap;
	}
	for (i = hash_u64(code) & (r->cap - 1); r->slots[i].code; i = (i + 1) & (r->cap - 1))
		if (r->slots[i].code == code)
			return &r->slots[i];
	return &r->slots[i];
}

static struct snap *snap_slot(struct snap *tab, size_t cap, uint64_t code, uint32_t tag)
{
	size_t i = hash_u64(code ^ ((uint64_t)tag << 32)) & (cap - 1);

	while (tab[i].code && !(tab[i].code == code && tab[i].tag == tag))
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

int mp_pyresolver__snapshot(struct mp_pyresolver *r, const struct mp_pycode_snap *snap,
			    size_t size)
{
	size_t head = offsetof(struct mp_pycode_snap, data);
	struct mp_pycode_snap *copy;
	struct snap *e;

	if (size < head || size > sizeof(*snap) || !snap->code)
		return -EINVAL;
	for (int i = 0; i < MP_PY_SNAP_REGIONS; i++)
		if (snap->r[i].len &&
		    ((uint64_t)snap->r[i].off + snap->r[i].len > size - head ||
		     snap->r[i].addr + snap->r[i].len < snap->r[i].addr))
			return -EINVAL;
	if ((r->snapused + 1) * 2 > r->snapcap) {
		size_t ncap = r->snapcap ? r->snapcap * 2 : 256;
		struct snap *nt = calloc(ncap, sizeof(*nt));

		if (!nt)
			return -ENOMEM;
		for (size_t j = 0; j < r->snapcap; j++)
			if (r->snaps[j].code)
				*snap_slot(nt, ncap, r->snaps[j].code, r->snaps[j].tag) = r->snaps[j];
		free(r->snaps);
		r->snaps = nt;
		r->snapcap = ncap;
	}
	copy = malloc(size);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, snap, size);
	e = snap_slot(r->snaps, r->snapcap, snap->code, snap->tag);
	if (!e->code)
		r->snapused++;
	free(e->s);
	e->code = snap->code;
	e->tag = snap->tag;
	e->s = copy;
	return 0;
}

/*
 * Read @len bytes at @addr of the target: from the snapshot of the frame being resolved when
 * one of its regions holds them all, else from the live process.
 */
static int rd(struct mp_pyresolver *r, uint64_t addr, void *buf, size_t len)
{
	const struct mp_pycode_snap *s = r->cur ? r->cur->s : NULL;

	for (int i = 0; s && i < MP_PY_SNAP_REGIONS; i++) {
		const struct mp_pysnap_region *g = &s->r[i];

		if (g->len && addr >= g->addr && addr - g->addr <= g->len &&
		    len <= g->len - (addr - g->addr)) {
			memcpy(buf, s->data + g->off + (addr - g->addr), len);
			return 0;
		}
	}
	return mp_pytarget__read(r->t, addr, buf, len);
}

static uint64_t get64(const uint8_t *buf, int32_t off)
{
	uint64_t v;

	memcpy(&v, buf + off, sizeof(v));
	return v;
}

/* A str object of the target, as an interned UTF-8 string in *@out. */
static int read_str(struct mp_pyresolver *r, uint64_t addr, const char **out)
{
	const struct mp_pylayout *l = &r->t->layout;
	uint8_t hdr[STR_HDR];
	struct mp_pystr_shape shape;
	uint64_t data, type;
	int64_t len;
	uint32_t state;
	size_t n, hlen = (size_t)l->u_compact_size + 8;
	char *chars = NULL, *utf8 = NULL;
	int err;

	err = rd(r, addr, hdr, hlen);
	if (err)
		return err;
	type = get64(hdr, l->ob_type);
	memcpy(&len, hdr + l->u_length, sizeof(len));
	memcpy(&state, hdr + l->u_state, sizeof(state));
	if (type != r->t->unicode_type || len < 0 || mp_pystr__shape(l, state, &shape))
		return -EINVAL;
	n = len > MP_PYSTR_MAX_CHARS ? MP_PYSTR_MAX_CHARS : (size_t)len;
	if (shape.compact)
		data = addr + (uint64_t)(shape.ascii ? l->u_ascii_size : l->u_compact_size);
	else
		data = get64(hdr, l->u_data);
	chars = malloc(n * shape.kind + 1);
	utf8 = malloc(n * 4 + 1);
	if (!chars || !utf8) {
		err = -ENOMEM;
		goto cleanup;
	}
	err = rd(r, data, chars, n * shape.kind);
	if (err)
		goto cleanup;
	mp_pystr__utf8(shape.kind, chars, n, utf8, n * 4 + 1);
	*out = intern(r, utf8);
	err = *out ? 0 : -ENOMEM;
cleanup:
	free(chars);
	free(utf8);
	return err;
}

/* A bytes object of the target: its size, and its contents in *@data (malloc'd) if wanted. */
static int read_bytes(struct mp_pyresolver *r, uint64_t addr, size_t max, size_t *size,
		      uint8_t **data)
{
	const struct mp_pylayout *l = &r->t->layout;
	uint64_t type;
	int64_t n;
	int err;

	if ((err = rd(r, addr + (uint64_t)l->ob_type, &type, sizeof(type))) ||
	    (err = rd(r, addr + (uint64_t)l->b_size, &n, sizeof(n))))
		return err;
	if (type != r->t->bytes_type || n < 0 || (uint64_t)n > max)
		return -EINVAL;
	*size = (size_t)n;
	if (!data)
		return 0;
	*data = malloc(*size ? *size : 1);
	if (!*data)
		return -ENOMEM;
	err = rd(r, addr + (uint64_t)l->b_sval, *data, *size);
	if (err) {
		free(*data);
		*data = NULL;
	}
	return err;
}

static void read_ident(const struct mp_pylayout *l, const uint8_t *hdr, struct ident *id)
{
	memset(id, 0, sizeof(*id));
	id->filename = get64(hdr, l->co_filename);
	id->name = get64(hdr, l->co_name);
	if (l->co_qualname != MP_PYL_NONE)
		id->qualname = get64(hdr, l->co_qualname);
	id->linetable = get64(hdr, l->co_linetable);
	if (l->co_code != MP_PYL_NONE)
		id->codebytes = get64(hdr, l->co_code);
	if (l->co_size != MP_PYL_NONE)
		memcpy(&id->size, hdr + l->co_size, sizeof(id->size));
	memcpy(&id->firstlineno, hdr + l->co_firstlineno, sizeof(id->firstlineno));
}

/* Decode code object @code (identity @id) into @e. */
static int decode(struct mp_pyresolver *r, uint64_t code, const struct ident *id, struct entry *e)
{
	const struct mp_pylayout *l = &r->t->layout;
	const char *file = NULL, *name = NULL;
	uint8_t *table = NULL;
	size_t tablelen = 0, ncode = 0;
	int err;

	err = read_str(r, id->filename, &file);
	if (!err)
		err = read_str(r, id->qualname ? id->qualname : id->name, &name);
	if (!err)
		err = read_bytes(r, id->linetable, MP_PYRESOLVE_MAX_TABLE, &tablelen, &table);
	if (!err) {
		if (l->co_code != MP_PYL_NONE) {
			err = read_bytes(r, id->codebytes, SIZE_MAX / 2, &ncode, NULL);
		} else if (id->size < 0 || id->size > (1ll << 30)) {
			err = -EINVAL;
		} else {
			ncode = (size_t)id->size * 2; /* code units of 2 bytes */
		}
	}
	if (err) {
		free(table);
		return err;
	}
	free(e->table);
	e->code = code;
	e->id = *id;
	e->file = file;
	e->name = name;
	e->table = table;
	e->tablelen = tablelen;
	e->ncode = ncode;
	r->stats.decoded++;
	return 0;
}

int mp_pyresolver__resolve(struct mp_pyresolver *r, const struct mp_pyframe *f,
			   struct mp_pyloc *out)
{
	uint64_t code = f->code;
	int32_t instr = f->instr;
	const struct mp_pylayout *l = &r->t->layout;
	uint8_t hdr[CODE_HDR];
	struct ident id;
	struct entry *e;
	int err, line, fresh;

	r->stats.lookups++;
	memset(out, 0, sizeof(*out));
	memset(hdr, 0, sizeof(hdr));
	r->cur = NULL;
	if (f->tag && r->snapcap) {
		const struct snap *sn = snap_slot(r->snaps, r->snapcap, code, f->tag);

		r->cur = sn->code ? sn : NULL;
	}
	/*
	 * The basic size is what read_ident() and the checks use: all a snapshot holds, and the
	 * second try for a small code object near the end of a mapping.
	 */
	err = r->cur ? -EFAULT : rd(r, code, hdr, sizeof(hdr));
	if (err == -EFAULT)
		err = rd(r, code, hdr, (size_t)l->code_basicsize);
	if (err)
		goto fail;
	if (get64(hdr, l->ob_type) != r->t->code_type) {
		err = -EINVAL;
		goto fail;
	}
	read_ident(l, hdr, &id);
	/*
	 * A snapshot is the code this frame ran, copied by the event that walked it, even where
	 * the walk kept the tag of the code that had that address and place in the thread's
	 * previous stack (a module body imported right after another, at the same depth, in the
	 * memory the first one freed): the tag is checked against live reads only.
	 */
	if (!r->cur && f->tag &&
	    f->tag != mp_pyframe_tag(id.filename, id.name, (uint32_t)id.firstlineno)) {
		r->stats.stale++;
		err = -ESTALE;
		goto fail;
	}
	e = slot_of(r, code);
	if (!e) {
		err = -ENOMEM;
		goto fail;
	}
	fresh = !e->code;
	if (fresh || memcmp(&e->id, &id, sizeof(id))) {
		struct entry tmp = *e;

		if (!fresh)
			r->stats.changed++;
		if (fresh)
			tmp.table = NULL;
		err = decode(r, code, &id, &tmp);
		if (err) {
			if (!fresh) {
				/* the old contents are stale: forget them */
				free(e->table);
				e->table = NULL;
				memset(&e->id, 0xff, sizeof(e->id));
			}
			goto fail;
		}
		*e = tmp;
		if (fresh)
			r->used++;
	}
	if (instr >= 0 && (uint64_t)instr >= e->ncode) {
		err = -ERANGE;
		goto fail;
	}
	line = mp_pylines__line(l->lines, e->table, e->tablelen, e->id.firstlineno, instr);
	out->file = e->file;
	out->name = e->name;
	out->line = line < 0 ? 0 : line;
	out->firstlineno = e->id.firstlineno;
	if (r->cur)
		r->stats.snapshots++;
	r->cur = NULL;
	return 0;
fail:
	r->cur = NULL;
	r->stats.failures++;
	return err;
}

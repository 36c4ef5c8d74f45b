/* ptrmap.c - see ptrmap.h. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "ptrmap.h"

static char tomb_byte;
#define PTRMAP_TOMB ((void *)&tomb_byte)

static size_t slot_of(const void *key, size_t mask)
{
	/* Objects are 16-byte aligned: drop the dead low bits, then mix
	 * (the constant is 2^64 / golden ratio, Fibonacci hashing). */
	uint64_t h = (uint64_t)(uintptr_t)key >> 4;

	h *= 0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 17) & mask;
}

void *ptrmap_get(const struct ptrmap *m, const void *key)
{
	size_t mask, i;

	if (!m->cap || !key)
		return NULL;
	mask = m->cap - 1;
	for (i = slot_of(key, mask);; i = (i + 1) & mask) {
		if (m->keys[i] == key)
			return m->vals[i];
		if (!m->keys[i])
			return NULL;
	}
}

static int grow(struct ptrmap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 16, i, j, mask = ncap - 1;
	void **nk, **nv;

	/* Mostly tombstones: rehash at the same size. */
	if (m->cap && m->live * 4 < m->cap)
		ncap = m->cap, mask = ncap - 1;
	nk = calloc(ncap, sizeof(*nk));
	nv = calloc(ncap, sizeof(*nv));
	if (!nk || !nv) {
		free(nk);
		free(nv);
		return -ENOMEM;
	}
	for (i = 0; i < m->cap; i++) {
		if (!m->keys[i] || m->keys[i] == PTRMAP_TOMB)
			continue;
		for (j = slot_of(m->keys[i], mask); nk[j]; j = (j + 1) & mask)
			;
		nk[j] = m->keys[i];
		nv[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = nk;
	m->vals = nv;
	m->cap = ncap;
	m->used = m->live;
	return 0;
}

int ptrmap_put(struct ptrmap *m, void *key, void *val)
{
	size_t mask, i, tomb = SIZE_MAX;

	if (!key || key == PTRMAP_TOMB)
		return -EINVAL;
	/* Keep the load (tombstones included) under 3/4. */
	if ((m->used + 1) * 4 > m->cap * 3) {
		int err = grow(m);

		if (err)
			return err;
	}
	mask = m->cap - 1;
	for (i = slot_of(key, mask);; i = (i + 1) & mask) {
		if (m->keys[i] == key) {
			m->vals[i] = val;
			return 0;
		}
		if (m->keys[i] == PTRMAP_TOMB && tomb == SIZE_MAX)
			tomb = i;
		if (!m->keys[i])
			break;
	}
	if (tomb != SIZE_MAX)
		i = tomb;
	else
		m->used++;
	m->keys[i] = key;
	m->vals[i] = val;
	m->live++;
	return 0;
}

void *ptrmap_del(struct ptrmap *m, const void *key)
{
	size_t mask, i;
	void *old;

	if (!m->cap || !key)
		return NULL;
	mask = m->cap - 1;
	for (i = slot_of(key, mask);; i = (i + 1) & mask) {
		if (m->keys[i] == key) {
			old = m->vals[i];
			m->keys[i] = PTRMAP_TOMB;
			m->vals[i] = NULL;
			m->live--;
			return old;
		}
		if (!m->keys[i])
			return NULL;
	}
}

void ptrmap_release(struct ptrmap *m)
{
	free(m->keys);
	free(m->vals);
	m->keys = m->vals = NULL;
	m->cap = m->used = m->live = 0;
}

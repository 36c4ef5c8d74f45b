/* ptrmap.h - a pointer-keyed open-addressing hash map.
 *
 * Keys are compared by identity (code objects, frames), never hashed by
 * content: hashing a code object in CPython walks its constants. NULL is not
 * a valid key. The map owns neither keys nor values.
 */
#ifndef MPROF_PTRMAP_H
#define MPROF_PTRMAP_H

#include <stddef.h>

struct ptrmap {
	void **keys;		/* NULL = empty, PTRMAP_TOMB = deleted */
	void **vals;
	size_t cap;		/* power of two, or 0 */
	size_t used;		/* live + tombstones */
	size_t live;
};

#define PTRMAP_INIT { NULL, NULL, 0, 0, 0 }

/* ptrmap_get - the value stored for key, or NULL. */
void *ptrmap_get(const struct ptrmap *m, const void *key);

/* ptrmap_put - insert or replace; returns 0 or -ENOMEM (map unchanged). */
int ptrmap_put(struct ptrmap *m, void *key, void *val);

/* ptrmap_del - remove key; returns the old value or NULL. */
void *ptrmap_del(struct ptrmap *m, const void *key);

/* ptrmap_release - free the table (not the keys or values). */
void ptrmap_release(struct ptrmap *m);

#endif

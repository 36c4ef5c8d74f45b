/*
 * mp_pystr: the characters of a CPython str object (PEP 393: 1, 2 or 4 bytes per character) as
 * UTF-8, for names and file names read from another process. Pure functions, no allocation.
 */
#ifndef MP_PYSTR_H
#define MP_PYSTR_H

#include <stddef.h>
#include <stdint.h>

#include "pylayout.h"

/* Longest str we read from a target, in characters: longer ones are cut (file names, names). */
#define MP_PYSTR_MAX_CHARS 4096

/* Where a str's characters are, decoded from its state word (struct mp_pylayout u_* fields). */
struct mp_pystr_shape {
	unsigned int kind;    /* bytes per character: 1, 2 or 4 */
	unsigned int compact; /* characters follow the header; else the data pointer */
	unsigned int ascii;   /* compact and ASCII: after sizeof(PyASCIIObject) */
};

/*
 * mp_pystr__shape - decode the state word of a str.
 * Takes: the layout @l of the str's interpreter, the 32-bit @state. Fills @out.
 * Returns: 0, or -EINVAL when the state cannot be a ready str (bad kind, not ready on 3.8-3.11,
 * ASCII but not compact, ASCII with a kind other than 1).
 */
int mp_pystr__shape(const struct mp_pylayout *l, uint32_t state, struct mp_pystr_shape *out);

/*
 * mp_pystr__utf8 - convert @n characters of @kind bytes each at @data to UTF-8.
 * Takes: @data (borrowed, n * kind bytes, any alignment), @out of @outsz bytes (>= 1).
 * Returns: the bytes written, always NUL-terminated, cut at a character boundary when @out is
 * full. Lone surrogates U+DC80..U+DCFF (how os.fsdecode() keeps undecodable bytes of file names)
 * become those bytes again, so a file name comes back as the path's bytes; other invalid code
 * points become U+FFFD; NUL characters become U+FFFD so the result stays one C string.
 */
size_t mp_pystr__utf8(unsigned int kind, const void *data, size_t n, char *out, size_t outsz);

#endif

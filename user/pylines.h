/*
 * mp_pylines: CPython's instruction -> line tables, decoded without the interpreter: co_lnotab
 * (3.8, 3.9), the 3.10 co_linetable, and the location table of 3.11+ (Objects/locations.md in
 * CPython). The answers are those of the interpreter's own PyCode_Addr2Line() for the same table.
 * Tables come from another process, so every input is untrusted: reads stay inside the table,
 * every loop consumes input, and nothing overflows, whatever the bytes.
 */
#ifndef MP_PYLINES_H
#define MP_PYLINES_H

#include <stddef.h>
#include <stdint.h>

#include "pylayout.h"

/*
 * mp_pylines__line - the line of the instruction at byte offset @addr of a code object.
 * Takes: the table's format (enum mp_pylines_format), its @len bytes at @tab (borrowed), the code's
 * co_firstlineno and @addr (bytes; negative for a frame that has not started, which is
 * co_firstlineno, as in CPython).
 * Returns: the line (>= 1), 0 when the instruction has no line (CPython says None) or the table
 * does not reach @addr, -EINVAL for an unknown format.
 */
int mp_pylines__line(unsigned int format, const uint8_t *tab, size_t len, int firstlineno,
		     int addr);

#endif

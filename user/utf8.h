/*
 * mp_utf8_seq: well-formed UTF-8, as the writers need it (the .dat's quoting and FUNC names,
 * the exporter's label values, pprof's strings). Nothing here prints.
 */
#ifndef MP_UTF8_H
#define MP_UTF8_H

#include <stddef.h>

/*
 * The length of the well-formed UTF-8 sequence at @s (at most @n bytes, @n > 0), or minus the
 * length of its maximal ill-formed subpart: a lead byte and the continuation bytes that were
 * still possible after it (Unicode 15, table 3-7 and "U+FFFD substitution of maximal
 * subparts"). Overlong forms, surrogates and code points past U+10FFFF are ill-formed.
 */
int mp_utf8_seq(const unsigned char *s, size_t n);

#endif

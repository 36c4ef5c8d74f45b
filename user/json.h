/*
 * mp_json: JSON text on a stdio stream, for `mprof peak --json` and the data of `mprof report`.
 *
 * Any bytes make a valid JSON string: quotes, backslashes and control characters are escaped,
 * and bytes that are not valid UTF-8 become U+FFFD, one per maximal invalid subpart as Unicode
 * recommends (what Python's errors="replace" and browsers give), so a CMDLINE or a file name in
 * another encoding still gives text every parser accepts; the original bytes are not kept.
 * Write errors are left in the stream's error indicator: check ferror() or fflush() at the end.
 * Nothing here prints on its own.
 */
#ifndef MP_JSON_H
#define MP_JSON_H

#include <stddef.h>
#include <stdio.h>

/*
 * Also escape '<', '>', '&' and U+2028/U+2029, so that the string can sit inside an HTML
 * <script> element: no "</script>" or "<!--" can then appear in it.
 */
#define MP_JSON_HTML 1u

/* Write the @len bytes at @s as a JSON string, quotes included; @flags: 0 or MP_JSON_HTML. */
void mp_json__string(FILE *f, const char *s, size_t len, unsigned int flags);

/* mp_json__string() of a NUL-terminated @s, or null when @s is NULL. */
void mp_json__cstring(FILE *f, const char *s, unsigned int flags);

/*
 * Write @v as the shortest number that reads back as the same double ("%.17g" at most), e.g.
 * 1795311724.2532 or 0.1; infinities and NaN, which JSON cannot express, as null.
 */
void mp_json__number(FILE *f, double v);

/*
 * Write @v rounded to @decimals places (0-17), without trailing zeros ("12.5", "3"): the compact
 * form for long arrays of values whose precision is known. Non-finite values as null.
 */
void mp_json__fixed(FILE *f, double v, int decimals);

/*
 * Write MiB value @mib as a whole number of bytes, or null when that is not finite. The files hold
 * MiB with 6 decimals, a step of 1.05 bytes, so MiB x 2^20 rounded to the byte can be one byte off
 * the value that was written; a value within a byte of a whole number of 4 KiB pages (every RSS
 * is one) is taken to be that number of pages exactly, any other is rounded to the byte.
 */
void mp_json__bytes(FILE *f, double mib);

#endif

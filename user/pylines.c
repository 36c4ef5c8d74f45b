/*
 * Line tables of CPython 3.8-3.13 (see pylines.h). Each decoder follows the interpreter's
 * PyCode_Addr2Line() of its version (Objects/codeobject.c), with bounds on every read.
 */
#include <errno.h>
#include <limits.h>

#include "pylines.h"

/* Lines are kept in 64 bits while a hostile table adds deltas; out of int range means garbage. */
static int clamp_line(long long line)
{
	return line >= 1 && line <= INT_MAX ? (int)line : 0;
}

/*
 * 3.8, 3.9: (address increment, line increment) byte pairs from (0, co_firstlineno); the line
 * increment is signed since 3.6. The line of @addr is the one reached before the first pair
 * whose address passes it.
 */
static int lnotab_line(const uint8_t *tab, size_t len, int firstlineno, int addr)
{
	long long line = firstlineno, a = 0;

	for (size_t i = 0; i + 1 < len; i += 2) {
		a += tab[i];
		if (a > addr)
			break;
		line += (int8_t)tab[i + 1];
	}
	return clamp_line(line);
}

/*
 * 3.10: (bytes covered, line delta) pairs; a delta of -128 marks a range without a line.
 * Ranges of zero bytes only move the line.
 */
static int linetable310_line(const uint8_t *tab, size_t len, int firstlineno, int addr)
{
	long long line = firstlineno, end = 0, cur = -1;
	size_t i = 0;

	while (end <= addr) {
		long long start;

		do {
			if (i + 2 > len)
				return 0; /* the table ends before @addr */
			start = end;
			end += tab[i];
			if ((int8_t)tab[i + 1] == -128) {
				cur = -1;
			} else {
				line += (int8_t)tab[i + 1];
				cur = line;
			}
			i += 2;
		} while (start == end);
	}
	return cur < 0 ? 0 : clamp_line(cur);
}

/* 3.11+ location entries (Objects/locations.md). */
enum {
	LOC_ONE_LINE0 = 10,
	LOC_ONE_LINE1 = 11,
	LOC_ONE_LINE2 = 12,
	LOC_NO_COLUMNS = 13,
	LOC_LONG = 14,
	LOC_NONE = 15,
};

/* An unsigned varint of 6-bit chunks, bit 6 meaning "more"; stops at @end. */
static unsigned long long read_varint(const uint8_t *p, const uint8_t *end)
{
	unsigned long long v = 0;
	unsigned int shift = 0;

	while (p < end) {
		uint8_t b = *p++;

		if (shift < 64)
			v |= (unsigned long long)(b & 63) << shift;
		shift += 6;
		if (!(b & 64) || shift > 60)
			break;
	}
	return v;
}

static long long read_svarint(const uint8_t *p, const uint8_t *end)
{
	unsigned long long u = read_varint(p, end);

	return (u & 1) ? -(long long)(u >> 1) : (long long)(u >> 1);
}

static int locations_line(const uint8_t *tab, size_t len, int firstlineno, int addr)
{
	const uint8_t *p = tab, *lim = tab + len;
	long long line = firstlineno, end = 0, cur = -1;

	while (end <= addr) {
		unsigned int code;

		if (p >= lim)
			return 0;
		/* an entry starts with its top bit set; skip anything else, as CPython's scan does */
		if (!(*p & 128)) {
			p++;
			continue;
		}
		code = (*p >> 3) & 15;
		switch (code) {
		case LOC_NO_COLUMNS:
		case LOC_LONG:
			line += read_svarint(p + 1, lim);
			break;
		case LOC_ONE_LINE1:
			line += 1;
			break;
		case LOC_ONE_LINE2:
			line += 2;
			break;
		default: /* short forms, ONE_LINE0 and NONE: the line does not move */
			break;
		}
		if (line < INT_MIN || line > INT_MAX)
			return 0;
		cur = code == LOC_NONE ? -1 : line;
		end += ((*p & 7) + 1) * 2; /* code units of 2 bytes */
		do
			p++;
		while (p < lim && !(*p & 128));
	}
	return cur < 0 ? 0 : clamp_line(cur);
}

int mp_pylines__line(unsigned int format, const uint8_t *tab, size_t len, int firstlineno,
		     int addr)
{
	if (format != MP_PYLINES_LNOTAB && format != MP_PYLINES_LINETABLE &&
	    format != MP_PYLINES_LOCATIONS)
		return -EINVAL;
	if (addr < 0)
		return clamp_line(firstlineno);
	if (!tab)
		len = 0;
	switch (format) {
	case MP_PYLINES_LNOTAB:
		return lnotab_line(tab, len, firstlineno, addr);
	case MP_PYLINES_LINETABLE:
		return linetable310_line(tab, len, firstlineno, addr);
	default:
		return locations_line(tab, len, firstlineno, addr);
	}
}

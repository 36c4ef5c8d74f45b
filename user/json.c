#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/*
 * The UTF-8 sequence at @p (@n > 0 bytes left): returns how many bytes it takes and stores its
 * code point in *cp, or -1 in *cp when it is invalid. An invalid one takes its maximal subpart
 * (the longest prefix of a valid sequence, at least one byte): each becomes one U+FFFD, as
 * Unicode recommends and as Python's errors="replace" and browsers decode. Overlong forms,
 * surrogates and values past U+10FFFF are invalid (RFC 3629).
 */
static size_t utf8_next(const unsigned char *p, size_t n, long *cp)
{
	unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */
	size_t need, i;
	long c;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		need = 2, c = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		need = 3, c = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		need = 4, c = p[0] & 0x07;
	else
		need = 0, c = 0;
	if (p[0] == 0xe0)
		lo = 0xa0; /* overlong below */
	else if (p[0] == 0xed)
		hi = 0x9f; /* surrogates above */
	else if (p[0] == 0xf0)
		lo = 0x90; /* overlong below */
	else if (p[0] == 0xf4)
		hi = 0x8f; /* past U+10FFFF above */
	for (i = 1; i < need && i < n; i++) {
		if (p[i] < (i == 1 ? lo : 0x80) || p[i] > (i == 1 ? hi : 0xbf))
			break;
		c = (c << 6) | (p[i] & 0x3f);
	}
	*cp = need && i == need ? c : -1;
	return i;
}

void mp_json__string(FILE *f, const char *s, size_t len, unsigned int flags)
{
	const unsigned char *p = (const unsigned char *)s;
	bool html = flags & MP_JSON_HTML;
	size_t i = 0;

	fputc('"', f);
	while (i < len) {
		long cp;
		size_t n = utf8_next(p + i, len - i, &cp);

		if (cp < 0) {
			fputs("\\ufffd", f);
			i += n;
			continue;
		}
		switch (cp) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (cp < 0x20 || cp == 0x7f ||
			    (html && (cp == '<' || cp == '>' || cp == '&' || cp == 0x2028 ||
				      cp == 0x2029)))
				fprintf(f, "\\u%04lx", cp);
			else
				fwrite(p + i, 1, n, f);
			break;
		}
		i += n;
	}
	fputc('"', f);
}

void mp_json__cstring(FILE *f, const char *s, unsigned int flags)
{
	if (s)
		mp_json__string(f, s, strlen(s), flags);
	else
		fputs("null", f);
}

void mp_json__number(FILE *f, double v)
{
	char buf[40];

	if (!isfinite(v)) {
		fputs("null", f);
		return;
	}
	/* the fewest digits that read back exactly; 17 always do */
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, f);
}

void mp_json__fixed(FILE *f, double v, int decimals)
{
	char small[64], *buf = small;
	size_t len;
	int n;

	if (!isfinite(v)) {
		fputs("null", f);
		return;
	}
	if (decimals < 0)
		decimals = 0;
	if (decimals > 17)
		decimals = 17;
	/* "%.*f" of a double can take ~330 characters: a bigger buffer only for those */
	n = snprintf(small, sizeof(small), "%.*f", decimals, v);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(small)) {
		buf = malloc((size_t)n + 1);
		if (!buf) {
			mp_json__number(f, v); /* no memory for the digits: the short form needs none */
			return;
		}
		snprintf(buf, (size_t)n + 1, "%.*f", decimals, v);
	}
	len = (size_t)n;
	if (memchr(buf, '.', len)) {
		while (buf[len - 1] == '0')
			len--;
		if (buf[len - 1] == '.')
			len--;
	}
	/* "-0" is valid JSON, but it reads as a value nobody wrote */
	if (len == 2 && buf[0] == '-' && buf[1] == '0')
		fputc('0', f);
	else
		fwrite(buf, 1, len, f);
	if (buf != small)
		free(buf);
}

void mp_json__bytes(FILE *f, double mib)
{
	double b = mib * 1048576.0, pages = rint(b / 4096.0) * 4096.0;

	mp_json__fixed(f, fabs(b - pages) <= 1.0 ? pages : rint(b), 0);
}

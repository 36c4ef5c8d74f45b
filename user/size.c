#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "size.h"

static const struct unit {
	const char *name;
	double mul;
} units[] = {
	{ "B", 1 },
	{ "K", 1024.0 }, { "KiB", 1024.0 }, { "KB", 1e3 },
	{ "M", 1048576.0 }, { "MiB", 1048576.0 }, { "MB", 1e6 },
	{ "G", 1073741824.0 }, { "GiB", 1073741824.0 }, { "GB", 1e9 },
	{ "T", 1099511627776.0 }, { "TiB", 1099511627776.0 }, { "TB", 1e12 },
};

int mp_size__parse(const char *s, uint64_t *out)
{
	const char *p = s, *u;
	double v, bytes;
	char *end;
	size_t ul;

	while (isspace((unsigned char)*p))
		p++;
	if (!isdigit((unsigned char)*p) && *p != '.')
		return -EINVAL; /* no sign, no "inf", no "nan" */
	errno = 0;
	v = strtod(p, &end);
	if (errno || end == p || !isfinite(v))
		return -EINVAL;
	for (const char *q = p; q < end; q++)
		if (*q == 'e' || *q == 'E' || *q == 'x' || *q == 'X')
			return -EINVAL; /* plain decimals only */
	u = end;
	while (isspace((unsigned char)*u))
		u++;
	ul = strlen(u);
	while (ul && isspace((unsigned char)u[ul - 1]))
		ul--;
	if (!ul)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strlen(units[i].name) != ul || strncasecmp(u, units[i].name, ul))
			continue;
		if (ul == 1 && u[0] == 'b')
			return -EINVAL; /* "b" would be bits */
		bytes = v * units[i].mul;
		if (bytes >= 9223372036854775808.0)
			return -ERANGE;
		*out = (uint64_t)bytes;
		return 0;
	}
	return -EINVAL;
}

void mp_size__format(uint64_t bytes, char *out, size_t size)
{
	static const char *const names[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	int i = 0;

	while (v >= 1024 && i < 6) {
		v /= 1024;
		i++;
	}
	if (i == 0 || v == floor(v))
		snprintf(out, size, "%.0f %s", v, names[i]);
	else
		snprintf(out, size, "%.3g %s", v, names[i]);
}

/*
 * libFuzzer target for the report writer: whatever the reader accepts must make a page whose
 * data element no byte of the file can end or break out of (no '<' or '>', no raw control
 * character in it), never hang, crash or leak. The first byte picks the number of columns the
 * curves are reduced to (1-64, so that small inputs are reduced too); the rest is the .dat text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datfile.h"
#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char open_tag[] = "id=\"mprof-data\">";
	struct mp_report_opts o = { 0 };
	struct mp_datfile df;
	struct mp_report_input in = { &df, "fuzz.dat" };
	char *page = NULL, *start, *end;
	size_t len = 0;
	FILE *f;

	if (size < 1)
		return 0;
	o.columns = 1 + data[0] % 64;
	mp_datfile__init(&df);
	if (mp_datfile__parse(&df, (const char *)data + 1, size - 1) || !df.mem.n)
		goto out;
	f = open_memstream(&page, &len);
	if (!f)
		abort();
	if (mp_report__write(f, &in, 1, &o))
		abort();
	if (fclose(f))
		abort();
	start = strstr(page, open_tag);
	if (!start)
		abort();
	start += strlen(open_tag);
	end = strstr(start, "</script>");
	if (!end)
		abort();
	for (const char *p = start; p < end; p++)
		if (*p == '<' || *p == '>' || ((unsigned char)*p < 0x20 && *p != '\n'))
			abort();
	free(page);
out:
	mp_datfile__release(&df);
	return 0;
}

/*
 * libFuzzer target for the renderer: whatever the reader accepts must draw (or be refused with
 * -ERANGE for values no double can scale), never hang, crash or leak. The first byte picks the
 * options; the rest is the .dat text. Slow (a PNG per input), so its runs are short.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datfile.h"
#include "plot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* fontconfig keeps its configuration for the life of the process: not a leak of ours */
const char *__lsan_default_suppressions(void)
{
	return "leak:libfontconfig.so\n";
}

static char out[64];

static void remove_out(void)
{
	unlink(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mp_plot_opts o = { 0 };
	struct mp_datfile df;
	struct mp_plot_input in = { &df, "fuzz.dat" };
	int err;

	if (!out[0]) {
		snprintf(out, sizeof(out), "/tmp/mprof-fuzz-plot-%ld.png", (long)getpid());
		atexit(remove_out);
	}
	if (size < 1)
		return 0;
	o.flame = data[0] & 1;
	o.slope = data[0] & 2;
	o.no_func = data[0] & 4;
	if (data[0] & 8) {
		o.window = true;
		o.xmin = (data[0] >> 4) * 0.25 - 1;
		o.xmax = o.xmin + 0.5 + (data[0] & 0x30) * 0.1;
	}
	mp_datfile__init(&df);
	if (!mp_datfile__parse(&df, (const char *)data + 1, size - 1) && df.mem.n) {
		err = mp_plot__render(&in, 1, &o, MP_PLOT_PNG, out, NULL);
		if (err && err != -ERANGE)
			abort();
	}
	mp_datfile__release(&df);
	return 0;
}

/* mprof peak: placeholder, replaced by the .dat reader work. */
#include "mprof.h"

int do_peak(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	p_err("peak is not implemented yet");
	return 2;
}

/* mprof plot: placeholder until the plotting issue lands. */
#include "mprof.h"

int do_plot(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	p_err("plot is not implemented yet");
	return 2;
}

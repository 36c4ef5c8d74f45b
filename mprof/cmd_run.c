/* mprof run / attach: placeholder while the kernel backend is written. */
#include "mprof.h"

int do_run(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	p_err("run is not implemented yet");
	return 2;
}

int do_attach(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	p_err("attach is not implemented yet");
	return 2;
}

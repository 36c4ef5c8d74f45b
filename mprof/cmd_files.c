/* mprof list, clean, rm: placeholders until the file-commands issue lands. */
#include "mprof.h"

int do_list(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	p_err("list is not implemented yet");
	return 2;
}

int do_clean(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	p_err("clean is not implemented yet");
	return 2;
}

int do_rm(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	p_err("rm is not implemented yet");
	return 2;
}

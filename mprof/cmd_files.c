/*
 * mprof list, clean and rm: the profiles of the current folder, with memory_profiler's output.
 * Where memory_profiler crashes (a directory, a missing file, a bad index) we print one error
 * line and exit 1, and rm deletes nothing unless every argument is good.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "datfile.h"
#include "mprof.h"

enum { OPT_DRY_RUN = 256 };

static int flush_stdout(int rc)
{
	if (fflush(stdout) || ferror(stdout)) {
		p_err("cannot write to standard output: %s", strerror(errno));
		return 1;
	}
	return rc;
}

/*
 * Parse the options of clean and rm (--dry-run, --help); @usage prints the help. Returns -1 to
 * go on, or the exit status.
 */
static int parse_opts(int argc, char **argv, const char *cmd, bool *dry_run,
		      void (*usage)(FILE *f))
{
	static const struct option longopts[] = {
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_DRY_RUN:
			*dry_run = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			p_err("unknown option '%s' (see 'mprof %s --help')", argv[optind - 1], cmd);
			return 1;
		}
	}
	return -1;
}

static void list_usage(FILE *f)
{
	fprintf(f, "Usage: mprof list\n\n"
		   "List the mprofile_*.dat files of the current folder, oldest first, with the\n"
		   "index that plot, peak and rm accept and the time the name records.\n"
		   "This command takes no argument.\n");
}

int do_list(int argc, char **argv)
{
	struct mp_profiles all = { 0 };
	char stamp[256];
	int err;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		list_usage(stdout);
		return 0;
	}
	if (argc > 1) {
		p_err("list takes no argument, got '%s'", argv[1]);
		return 1;
	}
	err = mp_profiles__scan(&all, ".");
	if (err) {
		p_err("cannot list the current folder: %s", strerror(-err));
		return 1;
	}
	for (size_t i = 0; i < all.n; i++) {
		mp_profile__list_stamp(all.names[i], stamp, sizeof(stamp));
		printf("%zu %s %s\n", i, all.names[i], stamp);
	}
	mp_profiles__release(&all);
	return flush_stdout(0);
}

/* Remove @files, or with @dry_run say which would be. Returns the exit status. */
static int remove_files(const struct mp_profiles *files, bool dry_run)
{
	int rc = 0;

	if (dry_run) {
		printf("Files to be removed: \n");
		for (size_t i = 0; i < files->n; i++)
			printf("%s\n", files->names[i]);
		return flush_stdout(0);
	}
	for (size_t i = 0; i < files->n; i++) {
		if (unlink(files->names[i])) {
			p_err("cannot remove '%s': %s", files->names[i], strerror(errno));
			rc = 1;
		}
	}
	return rc;
}

static void clean_usage(FILE *f)
{
	fprintf(f, "Usage: mprof clean [--dry-run]\n\n"
		   "Remove every mprofile_*.dat file of the current folder (and the legacy\n"
		   "<name>_ts.dat beside each). Files written with 'mprof run -o NAME' are kept.\n\n"
		   "  --dry-run     print what would be removed, remove nothing\n"
		   "  -h, --help    show this help\n");
}

int do_clean(int argc, char **argv)
{
	struct mp_profiles all = { 0 };
	bool dry_run = false;
	int rc, err;

	rc = parse_opts(argc, argv, "clean", &dry_run, clean_usage);
	if (rc >= 0)
		return rc;
	if (optind < argc) {
		p_err("clean takes no argument, got '%s'", argv[optind]);
		return 1;
	}
	err = mp_profiles__scan(&all, ".");
	if (!err)
		err = mp_profiles__add_companions(&all);
	if (err) {
		p_err("cannot list the current folder: %s", strerror(-err));
		rc = 1;
	} else {
		rc = remove_files(&all, dry_run);
	}
	mp_profiles__release(&all);
	return rc;
}

static void rm_usage(FILE *f)
{
	fprintf(f, "Usage: mprof rm [--dry-run] number_or_file.dat ...\n\n"
		   "Remove the given profiles: an integer is an index into the sorted\n"
		   "mprofile_*.dat files of the current folder (as 'mprof list' shows them,\n"
		   "negative ones counting from the newest); anything else is a .dat file.\n"
		   "The legacy <name>_ts.dat beside each goes too. Nothing is removed unless\n"
		   "every argument names a profile.\n\n"
		   "  --dry-run     print what would be removed, remove nothing\n"
		   "  -h, --help    show this help\n");
}

static bool is_dat(const char *path)
{
	size_t n = strlen(path);

	return n > 4 && !strcasecmp(path + n - 4, ".dat");
}

int do_rm(int argc, char **argv)
{
	struct mp_profiles sel = { 0 };
	bool dry_run = false, newest;
	char msg[512];
	int rc, nargs = 0;

	rc = parse_opts(argc, argv, "rm", &dry_run, rm_usage);
	if (rc >= 0)
		return rc;
	for (int i = optind; i < argc; i++)
		nargs += strcmp(argv[i], "--") != 0;
	if (!nargs) {
		p_err("a profile to remove must be provided (number or filename)");
		return 1;
	}
	rc = 1;
	if (mp_profiles__choose(argc - optind, argv + optind, MP_SELECT_INDEX_FIRST, &sel, &newest,
				msg, sizeof(msg))) {
		p_err("%s", msg);
		goto cleanup;
	}
	/* Only profiles: a slip such as 'mprof rm script.py' must not cost the script. */
	for (size_t i = 0; i < sel.n; i++) {
		if (!is_dat(sel.names[i])) {
			p_err("refusing to remove '%s': not a .dat profile", sel.names[i]);
			goto cleanup;
		}
	}
	if (mp_profiles__add_companions(&sel)) {
		p_err("out of memory");
		goto cleanup;
	}
	rc = remove_files(&sel, dry_run);
cleanup:
	mp_profiles__release(&sel);
	return rc;
}

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procwalk.h"

int mp_pidlist__add(struct mp_pidlist *l, pid_t pid)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		pid_t *nv = realloc(l->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = pid;
	return 0;
}

void mp_pidlist__release(struct mp_pidlist *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

int mp_proc_add_children(struct mp_pidlist *l, pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int err = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0; /* gone */
	while (!err && (de = readdir(d))) {
		char cpath[300];
		FILE *f;
		int child;

		if (de->d_name[0] == '.')
			continue;
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", (int)pid, de->d_name);
		f = fopen(cpath, "re");
		if (!f)
			continue; /* the thread ended */
		while (!err && fscanf(f, "%d", &child) == 1)
			err = mp_pidlist__add(l, child);
		fclose(f);
	}
	closedir(d);
	return err;
}

int mp_proc_add_descendants(struct mp_pidlist *l, pid_t pid)
{
	size_t from = l->n;
	int err = mp_proc_add_children(l, pid);

	/* breadth first: the list grows while we walk it */
	for (size_t i = from; i < l->n && !err; i++)
		err = mp_proc_add_children(l, l->v[i]);
	return err;
}

uint64_t mp_smaps_sum(const char *p, int pss)
{
	uint64_t total = 0;

	while (*p) {
		const char *eol = strchr(p, '\n');
		int want = pss ? !strncmp(p, "Pss:", 4) : !strncmp(p, "Private_", 8);

		if (want) {
			const char *v = strchr(p, ':');
			uint64_t kb = 0;

			for (v = v ? v + 1 : p; *v == ' ' || *v == '\t'; v++)
				;
			for (; *v >= '0' && *v <= '9'; v++)
				kb = kb * 10 + (uint64_t)(*v - '0');
			total += kb * 1024;
		}
		if (!eol)
			break;
		p = eol + 1;
	}
	return total;
}

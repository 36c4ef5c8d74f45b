/*
 * tree: a process tree with known peaks. Every process that allocates prints
 * "proc <pid> <kind> <VmHWM kB>" to stdout (one write, so lines do not mix).
 *   tree                 the root: starts every kind below and waits for them
 *   tree leaf MIB MS     touch MIB MiB, hold MS milliseconds, report, exit
 * Kinds: a forked child (fork), a child that lives ~1 ms (blink), a shell that execs a leaf
 * (sh -c 'exec tree leaf'), and a shell that forks a leaf and waits (grandchild).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

static long vmhwm_kb(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6))
			v = atol(line + 6);
	fclose(f);
	return v;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000L };

	nanosleep(&ts, NULL);
}

/* Touch @mib MiB, hold @us microseconds, report as @kind, then exit. */
static int leaf(const char *kind, size_t mib, long us)
{
	size_t len = mib << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char msg[128];
	int n;

	if (p == MAP_FAILED)
		return 1;
	/*
	 * Warm up what runs after the reading: a fork child maps its parent's library code lazily,
	 * 16 pages per first call, so an unwarmed call after the reading would raise the true peak
	 * above the VmHWM we report.
	 */
	n = snprintf(msg, sizeof(msg), "%ld", vmhwm_kb());
	if (write(1, msg, 0) < 0)
		return 1;
	sleep_us(0);
	for (size_t i = 0; i < len; i += 4096)
		p[i] = 1;
	n = snprintf(msg, sizeof(msg), "proc %d %s %ld\n", (int)getpid(), kind, vmhwm_kb());
	if (write(1, msg, n) != n)
		return 1;
	sleep_us(us);
	return 0;
}

int main(int argc, char **argv)
{
	char cmd[4096];
	pid_t pid;

	if (argc >= 4 && !strcmp(argv[1], "leaf"))
		_exit(leaf(argc > 4 ? argv[4] : "exec", strtoul(argv[2], NULL, 10),
			   atol(argv[3]) * 1000));
	setvbuf(stdout, NULL, _IONBF, 0);
	/* a forked child: 40 MiB for 300 ms */
	pid = fork();
	if (pid == 0)
		_exit(leaf("fork", 40, 300000));
	/* children living ~1 ms: 8 MiB each */
	for (int i = 0; i < 5; i++) {
		pid = fork();
		if (pid == 0)
			_exit(leaf("blink", 8, 1000));
		sleep_us(20000);
	}
	/* sh -c + exec: 60 MiB for 200 ms */
	snprintf(cmd, sizeof(cmd), "exec '%s' leaf 60 200 shexec", argv[0]);
	pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	/* a grandchild: sh forks the leaf and waits for it; 30 MiB for 1 ms */
	snprintf(cmd, sizeof(cmd), "'%s' leaf 30 1 grandchild; true", argv[0]);
	pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	while (wait(NULL) > 0)
		;
	sleep_us(150000);
	return 0;
}

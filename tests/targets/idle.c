/*
 * idle [MIB [PERIOD_MS]]: a process for the fleet benchmark. It touches MIB MiB (default 0)
 * and then, every PERIOD_MS milliseconds (0: never), frees and touches them again, so a fleet of
 * them is idle or allocates at a known rate; it exits on SIGTERM, SIGINT or when its parent
 * dies.
 */
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>

static volatile sig_atomic_t stop;

static void on_sig(int sig)
{
	(void)sig;
	stop = 1;
}

static void *touch(size_t len)
{
	char *p;

	if (!len)
		return NULL;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(1);
	for (size_t i = 0; i < len; i += 4096)
		p[i] = 1;
	return p;
}

int main(int argc, char **argv)
{
	size_t len = argc > 1 ? strtoul(argv[1], NULL, 10) << 20 : 0;
	long ms = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	void *p;

	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	p = touch(len);
	while (!stop) {
		if (!ms) {
			pause();
			continue;
		}
		nanosleep(&ts, NULL);
		if (p)
			munmap(p, len);
		p = touch(len);
	}
	return 0;
}

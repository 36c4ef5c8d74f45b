/*
 * holder BASE_MIB SPIKE_MIB SPIKE_MS: a process that is already running when mprof attaches.
 * It touches BASE_MIB MiB and prints "ready <VmRSS kB>", then sits idle (no page is touched,
 * so the kernel raises no RSS event) until a line arrives on stdin; then it touches SPIKE_MIB
 * MiB more, holds them SPIKE_MS ms, prints "spike <t0> <t1> <VmHWM kB> <VmRSS kB>" (epoch
 * seconds around the spike; the kB while holding it), frees the spike, prints "after <VmRSS kB>",
 * and waits again: each line is one more spike, EOF ends it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

static long status_kb(const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = atol(line + strlen(key));
	fclose(f);
	return v;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *touch(size_t mib)
{
	size_t len = mib << 20;
	char *p;

	if (!len)
		return NULL;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	for (size_t i = 0; i < len; i += 4096)
		p[i] = 1;
	return p;
}

int main(int argc, char **argv)
{
	size_t base, spike;
	long ms;
	char line[64];
	struct timespec hold;
	void *b, *s;
	double t0, t1;
	long hwm, rss;

	if (argc != 4) {
		fprintf(stderr, "usage: holder BASE_MIB SPIKE_MIB SPIKE_MS\n");
		return 2;
	}
	base = strtoul(argv[1], NULL, 10);
	spike = strtoul(argv[2], NULL, 10);
	ms = strtol(argv[3], NULL, 10);
	b = touch(base);
	printf("ready %ld\n", status_kb("VmRSS:"));
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		t0 = now();
		s = touch(spike);
		hold.tv_sec = ms / 1000;
		hold.tv_nsec = (ms % 1000) * 1000000L;
		nanosleep(&hold, NULL);
		hwm = status_kb("VmHWM:");
		rss = status_kb("VmRSS:");
		t1 = now();
		if (s)
			munmap(s, spike << 20);
		printf("spike %.4f %.4f %ld %ld\n", t0, t1, hwm, rss);
		printf("after %ld\n", status_kb("VmRSS:"));
		fflush(stdout);
	}
	if (b)
		munmap(b, base << 20);
	return 0;
}

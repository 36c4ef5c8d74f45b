/*
 * alloc MIB [HOLD_MS]: touch MIB MiB of anonymous memory, then print this process's own VmHWM
 * and VmRSS (kB, from /proc/self/status) while still holding it, hold, free, print VmHWM
 * again (the high-water mark of its whole life), exit.
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

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 100;
	long hold_ms = argc > 2 ? atol(argv[2]) : 200;
	struct timespec ts = { hold_ms / 1000, (hold_ms % 1000) * 1000000L };
	size_t len = mib << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	/*
	 * Warm up everything used after the high-water mark is read (stdout's buffer, the code
	 * pages of printf, nanosleep and munmap, which fault in 16 pages at a time), so that
	 * nothing raises the RSS after the reading and VmHWM then is the peak of the whole life.
	 */
	printf("start %d %ld\n", (int)getpid(), status_kb("VmHWM:"));
	fflush(stdout);
	{
		struct timespec zero = { 0, 0 };
		void *q = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		nanosleep(&zero, NULL);
		if (q != MAP_FAILED)
			munmap(q, 4096);
	}
	for (size_t i = 0; i < len; i += 4096)
		p[i] = 1;
	printf("VmHWM %ld\nVmRSS %ld\n", status_kb("VmHWM:"), status_kb("VmRSS:"));
	fflush(stdout);
	nanosleep(&ts, NULL);
	munmap(p, len);
	nanosleep(&ts, NULL);
	/* the high-water mark of the whole life, what the profiler's peak must equal */
	printf("VmHWM-end %ld\n", status_kb("VmHWM:"));
	return 0;
}

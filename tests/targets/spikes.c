/*
 * spikes N MIB HOLD_MS GAP_MS: N times, map MIB MiB of an already filled memfd (shmem in the
 * page cache) with MAP_POPULATE, so the whole spike becomes resident in a few milliseconds, keep
 * it HOLD_MS, unmap it, wait GAP_MS. Prints "spike <start> <end>" epoch times of each mapping,
 * and its own VmHWM at the end.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10;
	size_t len = (size_t)(argc > 2 ? atol(argv[2]) : 300) << 20;
	long hold = argc > 3 ? atol(argv[3]) : 20, gap = argc > 4 ? atol(argv[4]) : 300;
	char buf[1 << 16];
	int fd = memfd_create("spikes", 0);

	if (fd < 0) {
		perror("memfd_create");
		return 1;
	}
	memset(buf, 7, sizeof(buf));
	for (size_t off = 0; off < len; off += sizeof(buf))
		if (write(fd, buf, sizeof(buf)) != sizeof(buf)) {
			perror("write");
			return 1;
		}
	sleep_ms(gap);
	for (int i = 0; i < n; i++) {
		double t0 = now(), t1;
		char *p = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);

		if (p == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		sleep_ms(hold);
		munmap(p, len);
		t1 = now();
		printf("spike %.4f %.4f\n", t0, t1);
		sleep_ms(gap);
	}
	fflush(stdout);
	return 0;
}

/*
 * faultloop ROUNDS MIB: the page-fault worst case. ROUNDS times, map MIB MiB of anonymous memory,
 * touch every page, unmap it. Each round is MIB*256 page faults and as many rss_stat events.
 * Prints the time the loop took ("elapsed SEC").
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/mman.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 100;
	size_t len = (size_t)(argc > 2 ? atol(argv[2]) : 64) << 20;
	double t0 = now();

	for (int r = 0; r < rounds; r++) {
		volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		for (size_t i = 0; i < len; i += 4096)
			p[i] = 1;
		munmap((void *)p, len);
	}
	printf("elapsed %.6f\n", now() - t0);
	return 0;
}

/*
 * churn PAGES ROUNDS: the worst case for turning points. Touch one page and give it back
 * (madvise DONTNEED), over and over: every fault is a rise of one page and every madvise a fall,
 * so with a one-page granularity every event is a turning point.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
	long pages = argc > 1 ? atol(argv[1]) : 1000;
	long rounds = argc > 2 ? atol(argv[2]) : 100;
	size_t len = pages * 4096;
	volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (long r = 0; r < rounds; r++)
		for (long i = 0; i < pages; i++) {
			p[i * 4096] = 1;
			madvise((void *)(p + i * 4096), 4096, MADV_DONTNEED);
		}
	return 0;
}

/*
 * gendat: write a large memory_profiler .dat quickly, for the tests and benchmarks of the
 * readers (`mprof peak`, `mprof plot` on files of any size).
 *   gendat FILE MIB        about MIB MiB of MEM lines (and a CHLD line every 10th), with one
 *                          spike of 5000 MiB two thirds in; prints the true peaks
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	double t = 1796000000.0, peak = 0;
	long long target, written = 0;
	long i = 0;
	FILE *f;

	if (argc != 3) {
		fprintf(stderr, "usage: gendat FILE MIB\n");
		return 2;
	}
	target = atoll(argv[2]) * 1048576LL;
	f = fopen(argv[1], "w");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	written += fprintf(f, "CMDLINE python3 generated.py\n");
	while (written < target) {
		double m = 100 + (i % 1000) * 0.1;

		t += 0.01;
		if (i == (long)(target / 34 * 2 / 3))
			m += 5000;
		if (m > peak)
			peak = m;
		written += fprintf(f, "MEM %.6f %.4f\n", m, t);
		if (i % 10 == 0)
			written += fprintf(f, "CHLD %ld %.6f %.4f\n", 1000 + i % 7, m / 2, t);
		i++;
	}
	if (fclose(f)) {
		perror(argv[1]);
		return 1;
	}
	printf("peak %.3f lines %ld\n", peak, i);
	return 0;
}

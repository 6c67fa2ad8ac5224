/* burn SECONDS [COMM] [wall|cpu] — spin on one CPU for SECONDS, then exit 0. SECONDS are
 * wall-clock time by default; with "cpu" they are this process's own CPU time, so the CPU
 * consumed is known exactly even when other work competes for the CPUs.
 * Used to check CPU accounting: the cgroup's usage should match the burn time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

static clockid_t clock_id = CLOCK_MONOTONIC;

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(clock_id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s SECONDS [COMM] [wall|cpu]\n", argv[0]);
		return 2;
	}
	char *end = NULL;
	double seconds = strtod(argv[1], &end);
	if (end == argv[1] || *end != '\0' || seconds < 0) {
		fprintf(stderr, "burn: invalid SECONDS '%s'\n", argv[1]);
		return 2;
	}
	if (argc >= 3 && argv[2][0] != '\0')
		prctl(PR_SET_NAME, argv[2], 0, 0, 0);
	if (argc >= 4) {
		if (strcmp(argv[3], "cpu") == 0) {
			clock_id = CLOCK_PROCESS_CPUTIME_ID;
		} else if (strcmp(argv[3], "wall") != 0) {
			fprintf(stderr, "burn: clock must be 'wall' or 'cpu', not '%s'\n", argv[3]);
			return 2;
		}
	}

	/* volatile keeps the compiler from folding the loop away. */
	volatile unsigned long sink = 0;
	const double deadline = now_seconds() + seconds;
	while (now_seconds() < deadline)
		for (int i = 0; i < 10000; i++)
			sink += (unsigned long)i;
	return 0;
}

/* pinload CPU SECONDS burn [COMM]
 * pinload CPU SECONDS tick PERIOD_US WORK_US [COMM]
 *
 * Pins itself to CPU, then for SECONDS of wall-clock time either spins (burn) or, every
 * PERIOD_US, wakes up and works WORK_US of its own CPU time before sleeping again (tick): a
 * latency-sensitive service. A tick that falls behind works through up to 10 missed periods
 * without sleeping, like a server draining its request queue. Exits 0. Used to put a victim and a noisy neighbour on one CPU. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

static long long now_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int parse_num(const char *text, double *out)
{
	char *end = NULL;
	*out = strtod(text, &end);
	return end != text && *end == '\0' && *out >= 0;
}

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s CPU SECONDS burn [COMM]\n"
			"       %s CPU SECONDS tick PERIOD_US WORK_US [COMM]\n", argv0, argv0);
}

int main(int argc, char **argv)
{
	double cpu, seconds, period_us = 0, work_us = 0;
	const char *comm = NULL;
	int tick;

	if (argc < 4 || !parse_num(argv[1], &cpu) || !parse_num(argv[2], &seconds)) {
		usage(argv[0]);
		return 2;
	}
	tick = strcmp(argv[3], "tick") == 0;
	if (!tick && strcmp(argv[3], "burn") != 0) {
		usage(argv[0]);
		return 2;
	}
	if (tick) {
		if (argc < 6 || !parse_num(argv[4], &period_us) || !parse_num(argv[5], &work_us) ||
		    period_us <= 0) {
			usage(argv[0]);
			return 2;
		}
		comm = argc >= 7 ? argv[6] : NULL;
	} else {
		comm = argc >= 5 ? argv[4] : NULL;
	}
	if (comm && comm[0])
		prctl(PR_SET_NAME, comm, 0, 0, 0);

	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET((int)cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0) {
		perror("pinload: sched_setaffinity");
		return 1;
	}

	volatile unsigned long sink = 0;
	const long long deadline = now_ns(CLOCK_MONOTONIC) + (long long)(seconds * 1e9);
	if (!tick) {
		while (now_ns(CLOCK_MONOTONIC) < deadline)
			for (int i = 0; i < 1000; i++)
				sink += (unsigned long)i;
		return 0;
	}
	const long long period = (long long)(period_us * 1000), work = (long long)(work_us * 1000);
	long long next = now_ns(CLOCK_MONOTONIC);
	while (now_ns(CLOCK_MONOTONIC) < deadline) {
		const long long until = now_ns(CLOCK_THREAD_CPUTIME_ID) + work;
		while (now_ns(CLOCK_THREAD_CPUTIME_ID) < until)
			for (int i = 0; i < 100; i++)
				sink += (unsigned long)i;
		next += period;
		const long long now = now_ns(CLOCK_MONOTONIC);
		if (next < now - 10 * period)
			next = now - 10 * period;	/* a bounded backlog, as a request queue */
		if (next <= now)
			continue;	/* behind: work through the backlog without sleeping */
		struct timespec ts = { .tv_sec = next / 1000000000LL, .tv_nsec = next % 1000000000LL };
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
	return 0;
}

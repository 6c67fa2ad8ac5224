/* alloc MIB [COMM] [HOLD_SECONDS] [STEP_MS] — allocate MIB MiB in 1 MiB steps, touching every
 * page, STEP_MS (default 2) ms per step so memory rises over a short time; then hold it
 * HOLD_SECONDS (default 0) and exit 0. Progress goes to stderr. Used for OOM-kill, working-set
 * and breach tests (a slow ramp: STEP_MS 50). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024UL * 1024UL)

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s MIB [COMM] [HOLD_SECONDS]\n", argv[0]);
		return 2;
	}
	char *end = NULL;
	long mib = strtol(argv[1], &end, 10);
	if (end == argv[1] || *end != '\0' || mib < 0) {
		fprintf(stderr, "alloc: invalid MIB '%s'\n", argv[1]);
		return 2;
	}
	double hold = argc >= 4 ? strtod(argv[3], NULL) : 0.0;
	long step_ms = argc >= 5 ? strtol(argv[4], NULL, 10) : 2;
	prctl(PR_SET_NAME, argc >= 3 ? argv[2] : "pg-alloc", 0, 0, 0);

	const struct timespec step = { .tv_sec = step_ms / 1000, .tv_nsec = (step_ms % 1000) * 1000 * 1000 };
	for (long i = 1; i <= mib; i++) {
		char *chunk = malloc(MIB);
		if (!chunk) {
			fprintf(stderr, "alloc: malloc failed after %ld MiB\n", i - 1);
			return 1;
		}
		/* Non-zero fill: every page is really faulted in and charged to the cgroup. */
		memset(chunk, 0x5a, MIB);
		if (i % 16 == 0 || i == mib)
			fprintf(stderr, "alloc: %ld MiB\n", i);
		nanosleep(&step, NULL);
	}
	fprintf(stderr, "alloc: done %ld MiB\n", mib);
	if (hold > 0) {
		struct timespec ts = { .tv_sec = (time_t)hold,
				       .tv_nsec = (long)((hold - (double)(time_t)hold) * 1e9) };
		nanosleep(&ts, NULL);
	}
	return 0;
}

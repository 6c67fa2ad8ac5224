/* movein [--fifo] BEFORE AFTER DIR... — burn BEFORE seconds of own CPU time where started,
 * then write its own pid into DIR/cgroup.procs for each DIR, then burn AFTER seconds more: a
 * task that joins a cgroup while running, as a container's init does. With --fifo it runs
 * SCHED_FIFO, so no wakeup preempts it and the slice running at the move lasts until RT
 * throttling (sched_rt_runtime_us) ends it: the worst case for per-slice attribution. */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void burn(double seconds)
{
	volatile unsigned long sink = 0;
	double end = cpu_seconds() + seconds;
	while (cpu_seconds() < end)
		for (int i = 0; i < 10000; i++)
			sink = sink + (unsigned long)i;
}

int main(int argc, char **argv)
{
	int first = 1;
	if (argc > 1 && strcmp(argv[1], "--fifo") == 0) {
		struct sched_param sp = {.sched_priority = 10};
		if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0) {
			perror("movein: sched_setscheduler(SCHED_FIFO)");
			return 1;
		}
		first = 2;
	}
	argv += first - 1;
	argc -= first - 1;
	if (argc < 4) {
		fprintf(stderr, "usage: movein [--fifo] BEFORE AFTER DIR...\n");
		return 2;
	}
	prctl(PR_SET_NAME, "pg-movein", 0, 0, 0);
	burn(atof(argv[1]));
	char pid[32];
	int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
	for (int i = 3; i < argc; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/cgroup.procs", argv[i]);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, pid, (size_t)len) != len) {
			perror(path);
			return 1;
		}
		close(fd);
	}
	burn(atof(argv[2]));
	return 0;
}

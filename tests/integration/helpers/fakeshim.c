/* fakeshim CPU_MS RSS_MB CHILD_CGROUP_DIR... — a stand-in for containerd-shim-runc-v2: renames
 * itself "containerd-shim" (what the kernel shows for the real one, truncated to 15 bytes),
 * burns CPU_MS of CPU and keeps RSS_MB of memory resident, and starts a child ("pg-workload")
 * that moves itself into the given cgroups (a pod's container) and sleeps. Prints "ready" when
 * both are in place, then waits until killed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s CPU_MS RSS_MB CHILD_CGROUP_DIR...\n", argv[0]);
		return 2;
	}
	long cpu_ms = strtol(argv[1], NULL, 10);
	long rss_mb = strtol(argv[2], NULL, 10);
	prctl(PR_SET_NAME, "containerd-shim", 0, 0, 0);
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

	int ready[2];
	if (pipe(ready)) {
		perror("fakeshim: pipe");
		return 2;
	}
	pid_t child = fork();
	if (child == 0) {
		prctl(PR_SET_NAME, "pg-workload", 0, 0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		for (int i = 3; i < argc; i++) {
			char path[4096];
			snprintf(path, sizeof path, "%s/cgroup.procs", argv[i]);
			int fd = open(path, O_WRONLY | O_CLOEXEC);
			if (fd < 0 || write(fd, "0", 1) != 1) {
				fprintf(stderr, "fakeshim: cannot join %s: %s\n", path, strerror(errno));
				_exit(1);
			}
			close(fd);
		}
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	char c;
	if (child < 0 || read(ready[0], &c, 1) != 1) {
		fprintf(stderr, "fakeshim: the child did not get into its cgroups\n");
		return 1;
	}

	size_t bytes = (size_t)rss_mb << 20;
	/* volatile: the compiler may not drop stores to memory nobody reads. */
	volatile char *mem = malloc(bytes);
	if (!mem) {
		perror("fakeshim: malloc");
		return 2;
	}
	for (size_t i = 0; i < bytes; i += 4096)
		mem[i] = 1;
	volatile unsigned long spin = 0;
	while (cpu_seconds() * 1000 < cpu_ms)
		spin++;
	printf("ready %d\n", (int)child);
	fflush(stdout);
	for (;;)
		pause();
}

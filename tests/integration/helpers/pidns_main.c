/* pidns_main HOLD_MS (exit CODE | sigkill) [SIBLING_CGROUP_DIR...]
 * A container's main process for real: unshare(CLONE_NEWPID) and fork, so the child is pid 1
 * of a new pid namespace (comm "pg-main"). With SIBLING_CGROUP_DIRs the main process first
 * forks a second process of its namespace (comm "pg-sibling") that moves itself into those
 * cgroups, as a second container of a pod with shareProcessNamespace would be.
 * After HOLD_MS the main process exits with CODE, or the helper SIGKILLs it from outside its
 * namespace (pid 1 ignores SIGKILL from inside). Prints "main <host pid>" first; exits 0 when
 * the main process ended as asked. Needs root (CAP_SYS_ADMIN). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int join_cgroup(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/cgroup.procs", dir);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1) {
		fprintf(stderr, "pidns_main: cannot join %s: %s\n", path, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3 || (strcmp(argv[2], "exit") == 0 && argc < 4)) {
		fprintf(stderr, "usage: %s HOLD_MS (exit CODE | sigkill) [SIBLING_CGROUP_DIR...]\n", argv[0]);
		return 2;
	}
	long hold_ms = strtol(argv[1], NULL, 10);
	int kill_it = strcmp(argv[2], "sigkill") == 0;
	int code = kill_it ? 0 : atoi(argv[3]);
	int first_dir = kill_it ? 3 : 4;

	if (unshare(CLONE_NEWPID) != 0) {
		perror("pidns_main: unshare(CLONE_NEWPID) (run as root)");
		return 2;
	}
	pid_t main_pid = fork();
	if (main_pid < 0) {
		perror("pidns_main: fork");
		return 2;
	}
	if (main_pid == 0) {
		prctl(PR_SET_NAME, "pg-main", 0, 0, 0);
		pid_t sibling = -1;
		if (first_dir < argc) {
			sibling = fork();
			if (sibling == 0) {
				prctl(PR_SET_NAME, "pg-sibling", 0, 0, 0);
				for (int i = first_dir; i < argc; i++)
					if (join_cgroup(argv[i]))
						_exit(1);
				sleep_ms(hold_ms);
				_exit(0);
			}
		}
		if (kill_it)
			for (;;)
				pause();
		sleep_ms(hold_ms);
		if (sibling > 0)
			waitpid(sibling, NULL, 0);
		_exit(code);
	}
	printf("main %d\n", (int)main_pid);
	fflush(stdout);
	if (kill_it) {
		sleep_ms(hold_ms);
		kill(main_pid, SIGKILL);
	}
	int status;
	while (waitpid(main_pid, &status, 0) < 0 && errno == EINTR)
		;
	if (kill_it)
		return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? 0 : 1;
	return WIFEXITED(status) && WEXITSTATUS(status) == code ? 0 : 1;
}

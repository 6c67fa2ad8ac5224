/* forker N EXIT_CODE [CHILD_MS] [CHILD_COMM] — fork N short-lived children that live CHILD_MS
 * milliseconds (default 10) and exit with EXIT_CODE; wait for all of them. Exits 0 when every
 * child exited with EXIT_CODE, 1 otherwise. Used for process lifecycle tests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s N EXIT_CODE [CHILD_MS] [CHILD_COMM]\n", argv[0]);
		return 2;
	}
	long n = strtol(argv[1], NULL, 10);
	int code = (int)strtol(argv[2], NULL, 10);
	long child_ms = argc >= 4 ? strtol(argv[3], NULL, 10) : 10;
	const char *child_comm = argc >= 5 ? argv[4] : "pg-child";
	if (n < 0 || code < 0 || code > 255 || child_ms < 0) {
		fprintf(stderr, "forker: invalid arguments\n");
		return 2;
	}

	long started = 0;
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("forker: fork");
			break;
		}
		if (pid == 0) {
			prctl(PR_SET_NAME, child_comm, 0, 0, 0);
			struct timespec ts = { .tv_sec = child_ms / 1000,
					       .tv_nsec = (child_ms % 1000) * 1000000L };
			nanosleep(&ts, NULL);
			_exit(code);
		}
		started++;
	}

	long matched = 0;
	for (;;) {
		int status;
		pid_t pid = wait(&status);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break; /* ECHILD: all reaped */
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) == code)
			matched++;
	}
	fprintf(stderr, "forker: %ld of %ld children exited with %d\n", matched, n, code);
	return (started == n && matched == n) ? 0 : 1;
}

/* pagecache PATH MIB — write MIB MiB to PATH through the page cache, making each 8 MiB clean
 * with fdatasync so a memory cgroup can reclaim it, then unlink PATH and exit 0. Used to drive
 * a container's memory cgroup to its limit with reclaimable file pages. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB (1024UL * 1024UL)

int main(int argc, char **argv)
{
	static char chunk[MIB];
	char *end = NULL;
	long mib;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: %s PATH MIB\n", argv[0]);
		return 2;
	}
	mib = strtol(argv[2], &end, 10);
	if (end == argv[2] || *end != '\0' || mib <= 0) {
		fprintf(stderr, "pagecache: invalid MIB '%s'\n", argv[2]);
		return 2;
	}
	fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror("pagecache: open");
		return 1;
	}
	memset(chunk, 0x5a, sizeof(chunk));
	for (long i = 1; i <= mib; i++) {
		size_t done = 0;
		while (done < sizeof(chunk)) {
			ssize_t n = write(fd, chunk + done, sizeof(chunk) - done);
			if (n <= 0) {
				perror("pagecache: write");
				unlink(argv[1]);
				return 1;
			}
			done += (size_t)n;
		}
		if (i % 8 == 0 && fdatasync(fd) != 0) {
			perror("pagecache: fdatasync");
			unlink(argv[1]);
			return 1;
		}
	}
	close(fd);
	unlink(argv[1]);
	fprintf(stderr, "pagecache: wrote %ld MiB\n", mib);
	return 0;
}

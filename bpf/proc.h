/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Process lifecycle per cgroup: in-kernel fork/exec/exit counters, and one record per
 * process exit through the `proc_exits` ring buffer. Shared with userspace/loader. */
#ifndef PODGAUGE_BPF_PROC_H
#define PODGAUGE_BPF_PROC_H

#include "stats.h"

#define PG_PROC_MAX_CGROUPS 16384
#define PG_PROC_COMM_LEN 16

/* Value of the per-CPU hash `proc_counts`, keyed by cgroup id (__u64, keyed as cpu_usage). */
struct pg_proc_counts {
	__u64 forks;		/* new processes (not threads) created in this cgroup */
	__u64 execs;		/* successful execve()s */
	__u64 exits;		/* processes whose last thread exited */
	__u64 exits_signaled;	/* of those, processes ended by a signal */
};

/* Value of the hash `exit_budget`: a token bucket per cgroup, in whole records. */
struct pg_proc_bucket {
	__u64 tokens;
	__u64 last_refill_ns;
};

#define PG_PROC_EXIT_NS_INIT (1u << 0)	/* the process was pid 1 of a non-initial pid namespace */

/* One process exit (its last thread), at sched_process_exit. */
struct pg_proc_exit {
	__u64 ts_ns;		/* bpf_ktime_get_ns() */
	__u64 cgroup_id;	/* keyed as cpu_usage */
	__u64 cpu_ns;		/* CPU time of all of the process's threads */
	__u64 start_ns;		/* task->start_time (CLOCK_MONOTONIC) of the exiting thread */
	__u32 pid;		/* thread id of the last thread */
	__u32 tgid;
	__u32 ppid;		/* real parent's tgid */
	__u32 exit_code;	/* raw task->exit_code: (code << 8) | signal | 0x80 core */
	__u32 pid_ns_inum;	/* inode of the process's active pid namespace */
	__u32 ns_pid;		/* tgid as seen inside that namespace */
	__u32 ns_level;		/* 0: the initial (host) pid namespace */
	__u32 flags;		/* PG_PROC_EXIT_* */
	char comm[PG_PROC_COMM_LEN];
};

#endif

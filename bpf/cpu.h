/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* On-CPU time per cgroup, accumulated at sched_switch. Shared with userspace/loader. */
#ifndef PODGAUGE_BPF_CPU_H
#define PODGAUGE_BPF_CPU_H

#include "stats.h"

#define PG_CPU_MAX_CGROUPS 32768
#define PG_CGROUP_MOVES_MAX 4096	/* hash `cgroup_moves`: tgid (__u32) -> 1 (__u32) */

/* Which hierarchy's cgroup id keys the maps (set in rodata before load). */
enum pg_cgroup_key {
	PG_KEY_DEFAULT_HIERARCHY = 0,	/* cgroup v2: task->cgroups->dfl_cgrp */
	PG_KEY_V1_CPUACCT = 1,		/* v1: task->cgroups->subsys[cpuacct_cgrp_id] */
	PG_KEY_V1_CPU = 2,		/* v1: task->cgroups->subsys[cpu_cgrp_id] */
};

/* Value of the per-CPU hash `cpu_usage`, keyed by cgroup id (__u64). */
struct pg_cpu_usage {
	__u64 on_cpu_ns;	/* time tasks of this cgroup ran on this CPU */
	__u64 slices;		/* times a task of this cgroup was switched out */
};

/* Run-queue latency: time from a task becoming runnable (woken, forked, or preempted while
 * runnable) to it running, per cgroup, as a log2 histogram with 1 us to 1 s resolution.
 * Slot 0 counts delays <= 2^PG_RQ_FIRST_SHIFT ns, slot k in 1..PG_RQ_SLOTS-2 counts delays in
 * (2^(PG_RQ_FIRST_SHIFT+k-1), 2^(PG_RQ_FIRST_SHIFT+k)] ns, the last slot everything longer:
 * upper bounds match Prometheus' inclusive `le`. */
#define PG_RQ_FIRST_SHIFT 10	/* 1.024 us */
#define PG_RQ_SLOTS 22		/* last finite bound 2^30 ns = 1.07 s */
#define PG_RQ_MAX_CGROUPS 8192
#define PG_PREEMPT_MAX_PAIRS 16384

/* Value of the per-CPU hash `rq_latency`, keyed by cgroup id (__u64, as cpu_usage). */
struct pg_rq_hist {
	__u64 slots[PG_RQ_SLOTS];	/* per-slot counts (not cumulative) */
	__u64 sum_ns;
	__u64 count;
};

/* Key and value of the hash `preemptions`: a task of `victim` was switched out while runnable
 * to run a task of `preemptor`. Counted at that switch;
 * each CPU holds its latest pair's count in `cpu_running` and adds it here when the pair changes. */
struct pg_preempt_key {
	__u64 victim_cgroup_id;
	__u64 preemptor_cgroup_id;
};

struct pg_preempt_value {
	__u64 count;
};

/* Per-CPU array `cpu_running` (one entry): the slice in progress, and what finished slices
 * left since this CPU last switched between cgroups. The hashes are updated only when
 * consecutive slices on a CPU belong to different cgroups (preemptions: when the pair changes);
 * userspace adds the pending counts (and an estimate of the slice in progress, from
 * /proc/<tid>/schedstat) when it reads. */
struct pg_cpu_running {
	__u64 task;			/* address of the running task_struct (identity only) */
	__u64 start_runtime_ns;		/* its se.sum_exec_runtime when switched in */
	__u64 start_delay_ns;		/* its sched_info.run_delay when switched in */
	__u64 cgroup_id;		/* its cgroup id; 0 while the CPU is idle */
	__u32 tid;			/* its thread id */
	__u32 pad;
	__u64 pending_cgroup_id;	/* cgroup of the slices in pending_* */
	struct pg_cpu_usage pending_usage;
	struct pg_rq_hist pending_hist;	/* run-queue waits of those slices */
	__u64 switches;			/* sched_switch runs on this CPU (the family's event count) */
	struct pg_preempt_key pending_preempt;	/* this CPU's latest victim/preemptor pair */
	__u64 pending_preempts;		/* its preemptions not yet added to `preemptions` */
};

/* Records of the ring buffer `cgroup_made`: a cgroup was made, at `path` relative to its
 * hierarchy's root (as the cgroup_mkdir tracepoint gives it). The agent adds that directory to
 * its index at once instead of walking the trees. A record whose path did not fit, or that found
 * the ring full, is counted in `cgroup_changes` instead, and the agent walks. */
#define PG_CGROUP_PATH_MAX 512
#define PG_CGROUP_MADE_RING_BYTES (256 * 1024)

struct pg_cgroup_made {
	__u32 len;			/* bytes of path, without the NUL */
	__u32 pad;
	char path[PG_CGROUP_PATH_MAX];
};

#endif

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* On-CPU time per cgroup, accumulated at sched_switch. Shared with userspace/loader. */
#ifndef PODGAUGE_BPF_CPU_H
#define PODGAUGE_BPF_CPU_H

#include "stats.h"

#define PG_CPU_MAX_CGROUPS 32768

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

/* Per-CPU array `cpu_running` (one entry): the slice in progress, so userspace can add
 * time not yet closed by a switch (a lone CPU hog may run for seconds between switches). */
struct pg_cpu_running {
	__u64 since_ns;		/* bpf_ktime_get_ns() when the current task was switched in */
	__u64 cgroup_id;	/* its cgroup id; 0 while the CPU is idle */
};

#endif

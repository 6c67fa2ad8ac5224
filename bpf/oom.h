/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* One record per OOM kill, sent through the `oom_events` ring buffer. */
#ifndef PODGAUGE_BPF_OOM_H
#define PODGAUGE_BPF_OOM_H

#include "stats.h"

#define PG_TASK_COMM_LEN 16

struct pg_oom_event {
	__u64 ts_ns;			/* bpf_ktime_get_ns() at mark_victim */
	__u64 memcg_id;			/* victim's memory cgroup (v1 memory hierarchy, or v2) */
	__u64 dfl_cgroup_id;		/* victim's cgroup in the default (v2) hierarchy */
	__u64 cpu_cgroup_id;		/* victim's cgroup in the hierarchy keying cpu_usage */
	__u64 rss_pages;		/* anon + file + shmem resident pages of the victim's mm */
	__u64 memcg_usage_pages;	/* memcg page_counter usage at the kill */
	__u64 memcg_limit_pages;	/* memcg page_counter max (PAGE_COUNTER_MAX: unlimited) */
	__u32 pid;			/* victim thread id */
	__u32 tgid;			/* victim process id */
	__s32 oom_score_adj;
	__u32 pad;
	char comm[PG_TASK_COMM_LEN];
};

#endif

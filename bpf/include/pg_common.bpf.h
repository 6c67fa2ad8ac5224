/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Helpers shared by podgauge BPF families: self-counters and cgroup ids. */
#ifndef PODGAUGE_COMMON_BPF_H
#define PODGAUGE_COMMON_BPF_H

#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "stats.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PG_STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} pg_stats SEC(".maps");

static __always_inline void pg_stat_inc(enum pg_stat stat)
{
	__u32 key = stat;
	__u64 *v = bpf_map_lookup_elem(&pg_stats, &key);

	if (v)
		(*v)++;
}

/* Cgroup id of @task in the default (v2) hierarchy. Equals the directory's inode number. */
static __always_inline __u64 pg_task_dfl_cgroup_id(struct task_struct *task)
{
	return BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
}

/* Cgroup id of @task in the v1 hierarchy holding controller @subsys_id. */
static __always_inline __u64 pg_task_subsys_cgroup_id(struct task_struct *task, int subsys_id)
{
	struct cgroup_subsys_state *css;

	if (subsys_id < 0 || subsys_id >= CGROUP_SUBSYS_COUNT)
		return 0;
	css = BPF_CORE_READ(task, cgroups, subsys[subsys_id]);
	if (!css)
		return 0;
	return BPF_CORE_READ(css, cgroup, kn, id);
}

#endif

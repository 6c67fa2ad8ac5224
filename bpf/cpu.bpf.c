// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* On-CPU nanoseconds per cgroup, from sched_switch.
 *
 * At each switch the slice that just ended belongs to the cgroup recorded when it began,
 * so only the incoming task's cgroup is read: one CO-RE chain and one hash update per
 * switch. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "pg_common.bpf.h"
#include "cpu.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader before load. */
const volatile __u32 cgroup_key = PG_KEY_DEFAULT_HIERARCHY;
const volatile __s32 v1_subsys_id = -1;	/* cpuacct_cgrp_id or cpu_cgrp_id on this kernel */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, PG_CPU_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct pg_cpu_usage);
} cpu_usage SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pg_cpu_running);
} cpu_running SEC(".maps");

static __always_inline __u64 task_cgroup_id(struct task_struct *task)
{
	if (cgroup_key == PG_KEY_DEFAULT_HIERARCHY)
		return pg_task_dfl_cgroup_id(task);
	return pg_task_subsys_cgroup_id(task, v1_subsys_id);
}

static __always_inline void account_slice(__u64 cgroup_id, __u64 delta_ns)
{
	struct pg_cpu_usage *usage, zero = {};

	usage = bpf_map_lookup_elem(&cpu_usage, &cgroup_id);
	if (!usage) {
		if (bpf_map_update_elem(&cpu_usage, &cgroup_id, &zero, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&cpu_usage, &cgroup_id)) {
			pg_stat_inc(PG_STAT_MAP_FULL);
			return;
		}
		usage = bpf_map_lookup_elem(&cpu_usage, &cgroup_id);
		if (!usage)
			return;
	}
	/* Per-CPU value: no other writer, no atomics needed. */
	usage->on_cpu_ns += delta_ns;
	usage->slices++;
}

static __always_inline int on_switch(struct task_struct *next)
{
	struct pg_cpu_running *run;
	__u32 zero = 0;
	__u64 now;

	run = bpf_map_lookup_elem(&cpu_running, &zero);
	if (!run)
		return 0;
	now = bpf_ktime_get_ns();
	if (run->cgroup_id && run->since_ns && now > run->since_ns)
		account_slice(run->cgroup_id, now - run->since_ns);

	run->since_ns = now;
	/* The idle task (pid 0) is no cgroup's work. */
	run->cgroup_id = BPF_CORE_READ(next, pid) ? task_cgroup_id(next) : 0;
	pg_stat_inc(PG_STAT_EVENTS);
	return 0;
}

/* Whether @cgrp belongs to the hierarchy whose ids key cpu_usage. */
static __always_inline bool in_keyed_hierarchy(struct cgroup *cgrp)
{
	struct cgroup_root *root = BPF_CORE_READ(cgrp, root);

	if (cgroup_key == PG_KEY_DEFAULT_HIERARCHY)
		return BPF_CORE_READ(root, hierarchy_id) == 0;	/* cgrp_dfl_root */
	if (v1_subsys_id < 0 || v1_subsys_id >= 32)
		return false;
	return BPF_CORE_READ(root, subsys_mask) & (1u << v1_subsys_id);
}

/* A task that moves itself to another cgroup (writing its pid to cgroup.procs, as container
 * runtimes' init does before exec) keeps running: close its slice here, or the time until its
 * next switch would go to the cgroup it left. Tasks moved by another task are not running on
 * this CPU; their next switch-in picks up the new cgroup. */
static __always_inline int on_attach(struct cgroup *dst, struct task_struct *task)
{
	struct pg_cpu_running *run;
	__u32 zero = 0;
	__u64 now;

	if ((__u64)task != bpf_get_current_task() || !in_keyed_hierarchy(dst))
		return 0;
	run = bpf_map_lookup_elem(&cpu_running, &zero);
	if (!run)
		return 0;
	now = bpf_ktime_get_ns();
	if (run->cgroup_id && run->since_ns && now > run->since_ns)
		account_slice(run->cgroup_id, now - run->since_ns);
	run->since_ns = now;
	run->cgroup_id = BPF_CORE_READ(dst, kn, id);
	return 0;
}

SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(cgroup_attach_btf, struct cgroup *dst, const char *path, struct task_struct *task)
{
	return on_attach(dst, task);
}

SEC("raw_tp/cgroup_attach_task")
int BPF_PROG(cgroup_attach_raw, struct cgroup *dst, const char *path, struct task_struct *task)
{
	return on_attach(dst, task);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(next);
}

/* For kernels without tp_btf: same arguments through a raw tracepoint. */
SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(next);
}

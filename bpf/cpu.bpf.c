// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* On-CPU nanoseconds, run-queue latency and preemptions per cgroup, from sched_switch and
 * sched_wakeup(_new).
 *
 * At each switch the slice that just ended belongs to the cgroup recorded when it began,
 * so only the incoming task's cgroup is read: one CO-RE chain and one hash update per
 * switch. A task's wait in the run queue starts at its wakeup, or at a switch that leaves it
 * runnable (preempted), and ends when it is switched in; the wait is charged to the cgroup
 * it runs in, the preemption to the pair {victim cgroup, preemptor cgroup}. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "pg_common.bpf.h"
#include "bits.bpf.h"
#include "core_fixes.bpf.h"
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

/* Enqueue stamps. tp_btf programs use task storage (freed with the task, no hashing); raw_tp
 * programs get untyped pointers, which task storage refuses, so they use a hash by thread id.
 * The loader creates only the map the chosen flavour uses. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pg_rq_enqueued);
} rq_enqueued_task SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);	/* a stamp nobody consumes ages out */
	__uint(max_entries, PG_RQ_MAX_TASKS);
	__type(key, __u32);
	__type(value, struct pg_rq_enqueued);
} rq_enqueued_pid SEC(".maps");

/* Not preallocated where the kernel can allocate in any context (bpf_mem_alloc, 6.1): a
 * histogram is 192 bytes per CPU, and only cgroups that run need one. The loader clears
 * the flag on older kernels. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, PG_RQ_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct pg_rq_hist);
} rq_latency SEC(".maps");

/* Shared across CPUs (atomic adds): a per-CPU copy of 16k pairs would cost memory on large
 * nodes for a counter that is updated only on preemption. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PG_PREEMPT_MAX_PAIRS);
	__type(key, struct pg_preempt_key);
	__type(value, struct pg_preempt_value);
} preemptions SEC(".maps");

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

static __always_inline void stamp_enqueue(struct task_struct *task, __u64 now, __u64 preemptor,
					  bool btf)
{
	if (btf) {
		struct pg_rq_enqueued *e;

		e = bpf_task_storage_get(&rq_enqueued_task, task, 0,
					 BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!e) {
			pg_stat_inc(PG_STAT_MAP_FULL);
			return;
		}
		e->ts_ns = now;
		e->preemptor_cgroup_id = preemptor;
	} else {
		struct pg_rq_enqueued e = { .ts_ns = now, .preemptor_cgroup_id = preemptor };
		__u32 tid = BPF_CORE_READ(task, pid);

		bpf_map_update_elem(&rq_enqueued_pid, &tid, &e, BPF_ANY);
	}
}

/* Takes (and clears) @task's enqueue stamp; false if it has none. */
static __always_inline bool take_enqueue(struct task_struct *task, __u32 tid,
					 struct pg_rq_enqueued *out, bool btf)
{
	struct pg_rq_enqueued *e;

	if (btf) {
		e = bpf_task_storage_get(&rq_enqueued_task, task, 0, 0);
		if (!e || !e->ts_ns)
			return false;
		*out = *e;
		e->ts_ns = 0;
		return true;
	}
	e = bpf_map_lookup_elem(&rq_enqueued_pid, &tid);
	if (!e)
		return false;
	*out = *e;
	bpf_map_delete_elem(&rq_enqueued_pid, &tid);
	return out->ts_ns != 0;
}

static __always_inline __u64 latency_slot(__u64 delay_ns)
{
	__u64 slot;

	if (delay_ns <= (1ull << PG_RQ_FIRST_SHIFT))
		return 0;
	slot = pg_log2l(delay_ns - 1) - (PG_RQ_FIRST_SHIFT - 1);
	return slot < PG_RQ_SLOTS ? slot : PG_RQ_SLOTS - 1;
}

static __always_inline void record_latency(__u64 cgroup_id, __u64 delay_ns)
{
	static const struct pg_rq_hist zero;
	struct pg_rq_hist *h;
	__u64 slot;

	h = bpf_map_lookup_elem(&rq_latency, &cgroup_id);
	if (!h) {
		bpf_map_update_elem(&rq_latency, &cgroup_id, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&rq_latency, &cgroup_id);
		if (!h) {
			pg_stat_inc(PG_STAT_MAP_FULL);
			return;
		}
	}
	slot = latency_slot(delay_ns);
	/* Bounds-check the very register used as index: clang may check a copy. */
	barrier_var(slot);
	if (slot >= PG_RQ_SLOTS)
		return;
	/* Per-CPU value: no other writer. */
	h->slots[slot]++;
	h->sum_ns += delay_ns;
	h->count++;
}

static __always_inline void record_preemption(__u64 victim, __u64 preemptor, __u64 delay_ns)
{
	struct pg_preempt_key key = { .victim_cgroup_id = victim, .preemptor_cgroup_id = preemptor };
	struct pg_preempt_value *v, first = { .count = 1, .delay_ns = delay_ns };

	v = bpf_map_lookup_elem(&preemptions, &key);
	if (!v) {
		if (!bpf_map_update_elem(&preemptions, &key, &first, BPF_NOEXIST))
			return;
		v = bpf_map_lookup_elem(&preemptions, &key);	/* another CPU inserted it */
		if (!v) {
			pg_stat_inc(PG_STAT_PAIR_MAP_FULL);
			return;
		}
	}
	__sync_fetch_and_add(&v->count, 1);
	__sync_fetch_and_add(&v->delay_ns, delay_ns);
}

static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next, bool btf)
{
	struct pg_cpu_running *run;
	struct pg_rq_enqueued enq;
	__u64 now, prev_cgroup, next_cgroup;
	__u32 zero = 0, next_tid;

	run = bpf_map_lookup_elem(&cpu_running, &zero);
	if (!run)
		return 0;
	now = bpf_ktime_get_ns();
	prev_cgroup = run->cgroup_id;
	if (prev_cgroup && run->since_ns && now > run->since_ns)
		account_slice(prev_cgroup, now - run->since_ns);

	/* The idle task (pid 0) is no cgroup's work. */
	next_tid = BPF_CORE_READ(next, pid);
	next_cgroup = next_tid ? task_cgroup_id(next) : 0;
	run->since_ns = now;
	run->cgroup_id = next_cgroup;

	/* Switched out while runnable: preempted (or throttled, then next is idle: 0). Its wait
	 * starts now. prev_cgroup is 0 for the idle task, which is always "runnable". */
	if (prev_cgroup && pg_task_state(prev) == 0)
		stamp_enqueue(prev, now, next_cgroup, btf);

	if (next_tid && take_enqueue(next, next_tid, &enq, btf) && now > enq.ts_ns) {
		record_latency(next_cgroup, now - enq.ts_ns);
		if (enq.preemptor_cgroup_id)
			record_preemption(next_cgroup, enq.preemptor_cgroup_id, now - enq.ts_ns);
	}
	pg_stat_inc(PG_STAT_EVENTS);
	return 0;
}

static __always_inline int on_wakeup(struct task_struct *task, bool btf)
{
	stamp_enqueue(task, bpf_ktime_get_ns(), 0, btf);
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
	return on_switch(prev, next, true);
}

/* For kernels without tp_btf: same arguments through a raw tracepoint. */
SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next, false);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup_btf, struct task_struct *p)
{
	return on_wakeup(p, true);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(sched_wakeup_raw, struct task_struct *p)
{
	return on_wakeup(p, false);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_btf, struct task_struct *p)
{
	return on_wakeup(p, true);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_raw, struct task_struct *p)
{
	return on_wakeup(p, false);
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* On-CPU time, run-queue latency and preemptions per cgroup, from sched_switch alone.
 *
 * sched_switch runs on every context switch, so it reads no clock and, most of the time,
 * touches no hash:
 *  - CPU time is the kernel's own: se.sum_exec_runtime is current at this tracepoint (the
 *    scheduler updated it while putting prev), so a slice is its difference across the slice.
 *  - The wait in the run queue before a slice is the difference of sched_info.run_delay across
 *    the slice: the kernel adds the wait when the task arrives, just after this tracepoint.
 *  - Finished slices accumulate in a per-CPU pending entry and are folded into the per-cgroup
 *    hashes only when the CPU switches to another cgroup's slice.
 * tp_btf programs read task fields with direct loads; raw_tp programs (no BTF-typed
 * arguments) go through CO-RE probe reads. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "pg_common.bpf.h"
#include "bits.bpf.h"
#include "core_fixes.bpf.h"
#include "cpu.h"
#include "pg_keying.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

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

/* Not preallocated where the kernel can allocate in any context (bpf_mem_alloc, 6.1): a
 * histogram is 192 bytes per CPU, and only cgroups that run need one. The loader clears the
 * flag on older kernels. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, PG_RQ_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct pg_rq_hist);
} rq_latency SEC(".maps");

/* Shared across CPUs (atomic adds): updated only on involuntary switches. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PG_PREEMPT_MAX_PAIRS);
	__type(key, struct pg_preempt_key);
	__type(value, struct pg_preempt_value);
} preemptions SEC(".maps");

static __always_inline __u64 task_run_delay(struct task_struct *task, const bool btf)
{
	/* CONFIG_SCHED_INFO (SCHEDSTATS or TASK_DELAY_ACCT); without it no latency is recorded. */
	if (!bpf_core_field_exists(task->sched_info))
		return 0;
	return PG_FIELD(btf, task, sched_info.run_delay);
}

static __always_inline __u64 latency_slot(__u64 delay_ns)
{
	__u64 slot;

	if (delay_ns <= (1ull << PG_RQ_FIRST_SHIFT))
		return 0;
	slot = pg_log2l(delay_ns - 1) - (PG_RQ_FIRST_SHIFT - 1);
	return slot < PG_RQ_SLOTS ? slot : PG_RQ_SLOTS - 1;
}

/* Folds the pending slices into the per-cgroup hashes and empties them. */
static __always_inline void flush_pending(struct pg_cpu_running *run)
{
	__u64 cgroup_id = run->pending_cgroup_id;

	if (cgroup_id && run->pending_usage.slices) {
		struct pg_cpu_usage *usage = bpf_map_lookup_elem(&cpu_usage, &cgroup_id);

		if (usage) {
			/* Per-CPU value: no other writer, no atomics needed. */
			usage->on_cpu_ns += run->pending_usage.on_cpu_ns;
			usage->slices += run->pending_usage.slices;
		} else if (bpf_map_update_elem(&cpu_usage, &cgroup_id, &run->pending_usage, BPF_NOEXIST)) {
			pg_stat_inc(PG_STAT_MAP_FULL);
		}
	}
	if (cgroup_id && run->pending_hist.count) {
		struct pg_rq_hist *h = bpf_map_lookup_elem(&rq_latency, &cgroup_id);

		if (h) {
#pragma unroll
			for (int i = 0; i < PG_RQ_SLOTS; i++)
				h->slots[i] += run->pending_hist.slots[i];
			h->sum_ns += run->pending_hist.sum_ns;
			h->count += run->pending_hist.count;
		} else if (bpf_map_update_elem(&rq_latency, &cgroup_id, &run->pending_hist, BPF_NOEXIST)) {
			pg_stat_inc(PG_STAT_MAP_FULL);
		}
	}
	__builtin_memset(&run->pending_usage, 0, sizeof(run->pending_usage));
	__builtin_memset(&run->pending_hist, 0, sizeof(run->pending_hist));
	run->pending_cgroup_id = run->cgroup_id;
}

/* Ends the slice of the running task at its runtime @runtime_ns, with @wait_ns in the run
 * queue before it (@have_wait), into the pending entry. */
static __always_inline void end_slice(struct pg_cpu_running *run, __u64 runtime_ns, __u64 delay_ns,
				      bool have_delay)
{
	if (run->pending_cgroup_id != run->cgroup_id)
		flush_pending(run);
	if (runtime_ns > run->start_runtime_ns)
		run->pending_usage.on_cpu_ns += runtime_ns - run->start_runtime_ns;
	run->pending_usage.slices++;
	if (have_delay && delay_ns >= run->start_delay_ns) {
		__u64 wait = delay_ns - run->start_delay_ns;
		__u64 slot = latency_slot(wait);

		/* Bounds-check the very register used as index: clang may check a copy. */
		barrier_var(slot);
		if (slot < PG_RQ_SLOTS) {
			run->pending_hist.slots[slot]++;
			run->pending_hist.sum_ns += wait;
			run->pending_hist.count++;
		}
	}
}

/* Adds @count preemptions of @key's pair to the shared hash: a lookup and an atomic add on a
 * line other CPUs write, so it runs only when this CPU's pair changes, not per preemption. */
static __always_inline void add_preemptions(const struct pg_preempt_key *key, __u64 count)
{
	struct pg_preempt_value *v, first = { .count = count };

	v = bpf_map_lookup_elem(&preemptions, key);
	if (!v) {
		if (!bpf_map_update_elem(&preemptions, key, &first, BPF_NOEXIST))
			return;
		v = bpf_map_lookup_elem(&preemptions, key);	/* another CPU inserted it */
		if (!v) {
			pg_stat_inc(PG_STAT_PAIR_MAP_FULL);
			return;
		}
	}
	__sync_fetch_and_add(&v->count, count);
}

static __always_inline void record_preemption(struct pg_cpu_running *run, __u64 victim,
					      __u64 preemptor)
{
	if (run->pending_preempt.victim_cgroup_id != victim ||
	    run->pending_preempt.preemptor_cgroup_id != preemptor) {
		if (run->pending_preempts)
			add_preemptions(&run->pending_preempt, run->pending_preempts);
		run->pending_preempt.victim_cgroup_id = victim;
		run->pending_preempt.preemptor_cgroup_id = preemptor;
		run->pending_preempts = 0;
	}
	run->pending_preempts++;
}

static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next,
				     const bool btf)
{
	const bool sched_info = bpf_core_field_exists(prev->sched_info);
	struct pg_cpu_running *run;
	__u64 next_cgroup = 0;
	__u32 zero = 0, next_tid;

	run = bpf_map_lookup_elem(&cpu_running, &zero);
	if (!run)
		return 0;
	run->switches++;

	next_tid = PG_FIELD(btf, next, pid);
	/* The idle task (pid 0) is no cgroup's work. */
	if (next_tid)
		next_cgroup = pg_task_keyed_cgroup_id(next, btf);

	if (run->cgroup_id && run->task == (__u64)prev) {
		end_slice(run, PG_FIELD(btf, prev, se.sum_exec_runtime),
			  sched_info ? task_run_delay(prev, btf) : 0, sched_info);
		/* Switched out while still runnable: preempted. Idle next means it was throttled or
		 * yielded to nothing: no preemptor. */
		if (next_cgroup && (btf ? prev->__state : pg_task_state(prev)) == 0)
			record_preemption(run, run->cgroup_id, next_cgroup);
	}

	run->task = (__u64)next;
	run->tid = next_tid;
	run->cgroup_id = next_cgroup;
	if (next_tid) {
		run->start_runtime_ns = PG_FIELD(btf, next, se.sum_exec_runtime);
		run->start_delay_ns = sched_info ? task_run_delay(next, btf) : 0;
	}
	return 0;
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
 * runtimes' init does before exec) keeps running: end its slice here, or the time until its
 * next switch would go to the cgroup it left. sum_exec_runtime is as of the last tick here.
 * Tasks moved by another task are not running on this CPU; their next switch-in picks up the
 * new cgroup. */
static __always_inline int on_attach(struct cgroup *dst, struct task_struct *task)
{
	struct pg_cpu_running *run;
	__u32 zero = 0;
	__u64 runtime;

	if ((__u64)task != bpf_get_current_task() || !in_keyed_hierarchy(dst))
		return 0;
	run = bpf_map_lookup_elem(&cpu_running, &zero);
	if (!run || run->task != (__u64)task)
		return 0;
	runtime = BPF_CORE_READ(task, se.sum_exec_runtime);
	if (run->cgroup_id)
		end_slice(run, runtime, 0, false);
	run->start_runtime_ns = runtime;
	run->cgroup_id = BPF_CORE_READ(dst, kn, id);
	return 0;
}

/* Processes moved to another cgroup (in any hierarchy) since userspace last took this set: its
 * /proc scan re-reads only their cgroup files. A move the full set cannot hold is counted in
 * cgroup_moves_lost, and userspace then re-reads every process's. The tracepoint fires once per
 * move, with the thread-group leader when a whole process moves. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PG_CGROUP_MOVES_MAX);
	__type(key, __u32);
	__type(value, __u32);
} cgroup_moves SEC(".maps");

volatile __u64 cgroup_moves_lost;

static __always_inline void note_move(struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid), one = 1;

	if (bpf_map_update_elem(&cgroup_moves, &tgid, &one, BPF_ANY))
		__sync_fetch_and_add(&cgroup_moves_lost, 1);
}

SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(cgroup_attach_btf, struct cgroup *dst, const char *path, struct task_struct *task)
{
	note_move(task);
	return on_attach(dst, task);
}

SEC("raw_tp/cgroup_attach_task")
int BPF_PROG(cgroup_attach_raw, struct cgroup *dst, const char *path, struct task_struct *task)
{
	note_move(task);
	return on_attach(dst, task);
}

/* Cgroups made or removed anywhere. A made cgroup's path goes to `cgroup_made`, so the agent
 * indexes it at once; removals (and made cgroups that could not be recorded) count here, and the
 * agent walks its hierarchies when this moved rather than on a timer (a walk reads every cgroup
 * directory). Read by userspace from the mmap'ed .bss: no syscall per sampling round. */
volatile __u64 cgroup_changes;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PG_CGROUP_MADE_RING_BYTES);
} cgroup_made SEC(".maps");

static __always_inline void on_mkdir(const char *path)
{
	struct pg_cgroup_made *e;
	long n;

	e = bpf_ringbuf_reserve(&cgroup_made, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&cgroup_changes, 1);
		return;
	}
	n = bpf_probe_read_kernel_str(e->path, sizeof(e->path), path);
	/* A path that filled the buffer may have been cut short: a walk finds it whole. */
	if (n <= 1 || n >= (long)sizeof(e->path)) {
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		__sync_fetch_and_add(&cgroup_changes, 1);
		return;
	}
	e->len = n - 1;
	e->pad = 0;
	/* Read by the sampler each round: nothing waits on the ring. */
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(cgroup_mkdir_btf, struct cgroup *cgrp, const char *path)
{
	on_mkdir(path);
	return 0;
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(cgroup_rmdir_btf, struct cgroup *cgrp, const char *path)
{
	__sync_fetch_and_add(&cgroup_changes, 1);
	return 0;
}

SEC("raw_tp/cgroup_mkdir")
int BPF_PROG(cgroup_mkdir_raw, struct cgroup *cgrp, const char *path)
{
	on_mkdir(path);
	return 0;
}

SEC("raw_tp/cgroup_rmdir")
int BPF_PROG(cgroup_rmdir_raw, struct cgroup *cgrp, const char *path)
{
	__sync_fetch_and_add(&cgroup_changes, 1);
	return 0;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Process lifecycle per cgroup, from sched_process_fork/exec/exit.
 *
 * Counting happens in the kernel, so a process that lives for a microsecond is counted
 * whatever the agent's sampling interval. Exits also send a record (CPU time, exit status,
 * pid namespace) through a ring buffer, rate-limited per cgroup before the reserve so that a
 * fork bomb in one container cannot crowd out the others; the main process of a container
 * (pid 1 of its pid namespace) is never held back. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "pg_common.bpf.h"
#include "cpu.h"
#include "pg_keying.bpf.h"
#include "proc.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader before load (the cgroup keying, in pg_keying.bpf.h, is cpu.bpf.c's, so the
 * counters join the CPU data). Exit records per second and burst per cgroup (pid-namespace inits are exempt). */
const volatile __u64 exit_rate_per_sec = 100;
const volatile __u64 exit_burst = 200;

/* Preallocated: these tracepoints run with locks held (fork, exit), where a non-preallocated
 * map would have to allocate. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, PG_PROC_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct pg_proc_counts);
} proc_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PG_PROC_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct pg_proc_bucket);
} exit_budget SEC(".maps");

#define PG_PROC_RINGBUF_BYTES (256 * 1024)
/* Wake the agent once a quarter of the ring is pending, long before it could overflow. */
#define PG_PROC_WAKEUP_BYTES (PG_PROC_RINGBUF_BYTES / 4)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PG_PROC_RINGBUF_BYTES);
} proc_exits SEC(".maps");

enum proc_counter { PROC_FORK, PROC_EXEC, PROC_EXIT, PROC_EXIT_SIGNALED };

static __always_inline void count(__u64 cgroup_id, enum proc_counter which)
{
	struct pg_proc_counts *c = bpf_map_lookup_elem(&proc_counts, &cgroup_id);

	if (!c) {
		struct pg_proc_counts zero = {};

		bpf_map_update_elem(&proc_counts, &cgroup_id, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&proc_counts, &cgroup_id);
		if (!c) {
			pg_stat_inc(PG_STAT_MAP_FULL);
			return;
		}
	}
	/* Per-CPU value: this CPU is its only writer. */
	switch (which) {
	case PROC_FORK: c->forks++; break;
	case PROC_EXEC: c->execs++; break;
	case PROC_EXIT: c->exits++; break;
	case PROC_EXIT_SIGNALED: c->exits++; c->exits_signaled++; break;
	}
}

/* Token bucket per cgroup. Lock-free (tracing programs may not take bpf_spin_lock): two CPUs
 * refilling at once may grant a token or two too many, never an unbounded stream. */
static __always_inline bool take_token(__u64 cgroup_id, __u64 now)
{
	struct pg_proc_bucket *b = bpf_map_lookup_elem(&exit_budget, &cgroup_id);
	__u64 elapsed, refill, tokens;

	if (!b) {
		struct pg_proc_bucket fresh = { .tokens = exit_burst ? exit_burst - 1 : 0,
						.last_refill_ns = now };

		if (!exit_burst)
			return false;
		if (!bpf_map_update_elem(&exit_budget, &cgroup_id, &fresh, BPF_NOEXIST))
			return true;
		b = bpf_map_lookup_elem(&exit_budget, &cgroup_id);
		if (!b) {
			/* Full: no bucket to charge, so no cap either way; fail open and say so. */
			pg_stat_inc(PG_STAT_MAP_FULL);
			return true;
		}
	}
	elapsed = now - b->last_refill_ns;
	refill = exit_rate_per_sec ? elapsed * exit_rate_per_sec / 1000000000ull : 0;
	if (refill) {
		/* Advance by the time the whole tokens took, so fractions carry over. */
		b->last_refill_ns += refill * 1000000000ull / exit_rate_per_sec;
		tokens = b->tokens + refill;
		b->tokens = tokens > exit_burst ? exit_burst : tokens;
	}
	if (!b->tokens)
		return false;
	__sync_fetch_and_sub(&b->tokens, 1);
	return true;
}

/* The process's pid namespace (the one its children see as their own: task_active_pid_ns)
 * and its pid there. upid numbers[] is indexed by a runtime level: probe reads only. */
static __always_inline void read_pid_ns(struct task_struct *task, struct pg_proc_exit *e,
					const bool btf)
{
	struct pid *pid = PG_FIELD(btf, task, thread_pid);
	struct upid up = {};
	unsigned int level;

	if (!pid)
		return;
	level = PG_FIELD(btf, pid, level);
	if (level > 32)	/* MAX_PID_NS_LEVEL */
		return;
	if (bpf_probe_read_kernel(&up, sizeof(up), &pid->numbers[level]))
		return;
	e->ns_level = level;
	e->ns_pid = up.nr;
	e->pid_ns_inum = BPF_CORE_READ(up.ns, ns.inum);
}

static __always_inline int on_fork(struct task_struct *parent, struct task_struct *child,
				   const bool btf)
{
	__u32 pid, tgid;

	pid = PG_FIELD(btf, child, pid);
	tgid = PG_FIELD(btf, child, tgid);
	if (pid != tgid)	/* a new thread, not a process */
		return 0;
	count(pg_task_keyed_cgroup_id(child, btf), PROC_FORK);
	pg_stat_inc(PG_STAT_EVENTS);
	return 0;
}

static __always_inline int on_exec(struct task_struct *task, const bool btf)
{
	count(pg_task_keyed_cgroup_id(task, btf), PROC_EXEC);
	pg_stat_inc(PG_STAT_EVENTS);
	return 0;
}

static __always_inline int on_exit(struct task_struct *task, const bool btf)
{
	struct signal_struct *sig = PG_FIELD(btf, task, signal);
	struct pg_proc_exit *e, rec = {};
	__u64 cgroup_id, now;
	__u32 code;

	/* do_exit() dropped signal->live before this tracepoint: 0 means this is the process's
	 * last thread, whichever it is (the leader may have exited first). */
	if (PG_FIELD(btf, sig, live.counter) != 0)
		return 0;
	pg_stat_inc(PG_STAT_EVENTS);
	cgroup_id = pg_task_keyed_cgroup_id(task, btf);
	code = PG_FIELD(btf, task, exit_code);
	count(cgroup_id, (code & 0x7f) ? PROC_EXIT_SIGNALED : PROC_EXIT);

	read_pid_ns(task, &rec, btf);
	if (rec.ns_level > 0 && rec.ns_pid == 1)
		rec.flags |= PG_PROC_EXIT_NS_INIT;
	now = bpf_ktime_get_ns();
	if (!(rec.flags & PG_PROC_EXIT_NS_INIT) && !take_token(cgroup_id, now)) {
		pg_stat_inc(PG_STAT_RATE_LIMITED);
		return 0;
	}

	e = bpf_ringbuf_reserve(&proc_exits, sizeof(*e), 0);
	if (!e) {
		pg_stat_inc(PG_STAT_RINGBUF_DROPS);
		return 0;
	}
	e->ts_ns = now;
	e->cgroup_id = cgroup_id;
	/* Threads already reaped were folded into signal->sum_sched_runtime (__exit_signal);
	 * this thread's own runtime is still in its sched entity. */
	e->cpu_ns = PG_FIELD(btf, task, se.sum_exec_runtime) + PG_FIELD(btf, sig, sum_sched_runtime);
	e->start_ns = PG_FIELD(btf, task, start_time);
	e->pid = PG_FIELD(btf, task, pid);
	e->tgid = PG_FIELD(btf, task, tgid);
	e->ppid = btf ? task->real_parent->tgid : BPF_CORE_READ(task, real_parent, tgid);
	e->exit_code = code;
	e->pid_ns_inum = rec.pid_ns_inum;
	e->ns_pid = rec.ns_pid;
	e->ns_level = rec.ns_level;
	e->flags = rec.flags;
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), &task->comm);
	/* A wakeup per record cost ~9 us per exit (an irq_work IPI; measured on a 6.18 VM): only
	 * a container's main process, or a filling ring, wakes the agent; the rest waits for its
	 * next poll (at most 100 ms). */
	bpf_ringbuf_submit(e, (rec.flags & PG_PROC_EXIT_NS_INIT) ||
				      bpf_ringbuf_query(&proc_exits, BPF_RB_AVAIL_DATA) >= PG_PROC_WAKEUP_BYTES
			      ? BPF_RB_FORCE_WAKEUP
			      : BPF_RB_NO_WAKEUP);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_process_fork_btf, struct task_struct *parent, struct task_struct *child)
{
	return on_fork(parent, child, true);
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(sched_process_fork_raw, struct task_struct *parent, struct task_struct *child)
{
	return on_fork(parent, child, false);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec_btf, struct task_struct *p)
{
	return on_exec(p, true);
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(sched_process_exec_raw, struct task_struct *p)
{
	return on_exec(p, false);
}

/* 6.16 added a `bool group_dead` argument; signal->live says the same on every kernel. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit_btf, struct task_struct *p)
{
	return on_exit(p, true);
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(sched_process_exit_raw, struct task_struct *p)
{
	return on_exit(p, false);
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* One event per OOM kill, attributed to the victim (not `current`, which is the task whose
 * allocation triggered the killer). */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "pg_common.bpf.h"
#include "core_fixes.bpf.h"
#include "cpu.h"
#include "oom.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader before load: the same keying as cpu.bpf.c, so an OOM kill and CPU
 * time land on the same cgroup id. */
const volatile __u32 cgroup_key = PG_KEY_DEFAULT_HIERARCHY;
const volatile __s32 v1_subsys_id = -1;
const volatile __s32 memory_subsys_id = -1;	/* memory_cgrp_id; -1 without CONFIG_MEMCG */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} oom_events SEC(".maps");

/* MM_FILEPAGES, MM_ANONPAGES, MM_SHMEMPAGES (MM_SWAPENTS is not resident). */
#define PG_MM_FILEPAGES 0
#define PG_MM_ANONPAGES 1
#define PG_MM_SHMEMPAGES 3

static __always_inline int on_mark_victim(struct task_struct *task)
{
	struct cgroup_subsys_state *css = NULL;
	struct pg_oom_event *e;
	struct mm_struct *mm;

	e = bpf_ringbuf_reserve(&oom_events, sizeof(*e), 0);
	if (!e) {
		pg_stat_inc(PG_STAT_RINGBUF_DROPS);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = BPF_CORE_READ(task, pid);
	e->tgid = BPF_CORE_READ(task, tgid);
	bpf_core_read_str(e->comm, sizeof(e->comm), &task->comm);
	e->oom_score_adj = BPF_CORE_READ(task, signal, oom_score_adj);
	e->dfl_cgroup_id = pg_task_dfl_cgroup_id(task);
	e->cpu_cgroup_id = cgroup_key == PG_KEY_DEFAULT_HIERARCHY
				   ? e->dfl_cgroup_id
				   : pg_task_subsys_cgroup_id(task, v1_subsys_id);

	if (memory_subsys_id >= 0 && memory_subsys_id < CGROUP_SUBSYS_COUNT)
		css = BPF_CORE_READ(task, cgroups, subsys[memory_subsys_id]);
	if (css) {
		/* css is the first member of struct mem_cgroup. */
		struct mem_cgroup *memcg = (void *)css;

		e->memcg_id = BPF_CORE_READ(css, cgroup, kn, id);
		e->memcg_usage_pages = BPF_CORE_READ(memcg, memory.usage.counter);
		e->memcg_limit_pages = BPF_CORE_READ(memcg, memory.max);
	} else {
		e->memcg_id = e->dfl_cgroup_id;
	}

	mm = BPF_CORE_READ(task, mm);
	if (mm) {
		__s64 pages = mm_counter_pages(mm, PG_MM_FILEPAGES) +
			      mm_counter_pages(mm, PG_MM_ANONPAGES) +
			      mm_counter_pages(mm, PG_MM_SHMEMPAGES);
		e->rss_pages = pages > 0 ? pages : 0;
	}

	bpf_ringbuf_submit(e, 0);
	pg_stat_inc(PG_STAT_EVENTS);
	return 0;
}

/* Newer kernels (6.8 and later) pass the victim task to mark_victim; older ones pass only
 * its pid. The loader reads the tracepoint's prototype from BTF and leaves these programs
 * unloaded on the older form, so the signal degrades instead of reading garbage. */
SEC("tp_btf/mark_victim")
int BPF_PROG(mark_victim_btf, struct task_struct *task)
{
	return on_mark_victim(task);
}

SEC("raw_tp/mark_victim")
int BPF_PROG(mark_victim_raw, struct task_struct *task)
{
	return on_mark_victim(task);
}

/* Where mark_victim passes only a pid (before 6.8, unless backported), the function that fires
 * it: mark_oom_victim(struct task_struct *tsk), called for the victim with oom_lock held. It is
 * the same point in the kill, so the record is the same. fentry reads the argument through
 * BTF; the kprobe is for kernels (or policies) without BPF trampolines. */
SEC("fentry/mark_oom_victim")
int BPF_PROG(mark_oom_victim_fentry, struct task_struct *tsk)
{
	return on_mark_victim(tsk);
}

SEC("kprobe/mark_oom_victim")
int BPF_KPROBE(mark_oom_victim_kprobe, struct task_struct *tsk)
{
	return on_mark_victim(tsk);
}

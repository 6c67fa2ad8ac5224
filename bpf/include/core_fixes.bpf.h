/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Kernel struct layouts that changed across versions, as CO-RE flavours (`___x`). */
#ifndef PODGAUGE_CORE_FIXES_BPF_H
#define PODGAUGE_CORE_FIXES_BPF_H

#include <vmlinux.h>
#include <bpf/bpf_core_read.h>

/* Linux 6.2 (f1a7941243c1 "mm: convert mm's rss stats into percpu_counter") replaced
 * struct mm_rss_stat { atomic_long_t count[NR_MM_COUNTERS]; } by percpu_counter rss_stat[]. */
struct mm_rss_stat___pre62 {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));

struct mm_struct___pre62 {
	struct mm_rss_stat___pre62 rss_stat;
} __attribute__((preserve_access_index));

/* Resident pages of one MM_* counter. percpu_counter.count omits per-CPU deltas not yet
 * folded in (at most nr_cpus * batch pages): accurate enough to explain an OOM kill. */
static __always_inline __s64 mm_counter_pages(struct mm_struct *mm, int member)
{
	if (bpf_core_type_exists(struct mm_rss_stat___pre62)) {
		struct mm_struct___pre62 *old = (void *)mm;
		return BPF_CORE_READ(old, rss_stat.count[member].counter);
	}
	return BPF_CORE_READ(mm, rss_stat[member].count);
}

/* Linux 5.14 (2f064a59a11f "sched: Change task_struct::state") renamed task_struct::state to
 * __state and made it unsigned int, so that no code reads it without READ_ONCE(). */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

/* The task's scheduler state: 0 (TASK_RUNNING) while it is runnable. */
static __always_inline unsigned int pg_task_state(struct task_struct *task)
{
	if (bpf_core_field_exists(task->__state))
		return BPF_CORE_READ(task, __state);
	return (unsigned int)BPF_CORE_READ((struct task_struct___pre514 *)task, state);
}

#endif

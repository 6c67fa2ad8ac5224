// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Time tasks stall in memory reclaim, per memory cgroup: memcg reclaim (a cgroup at its
 * memory.high or memory.max frees its own pages before it may charge more) and global direct
 * reclaim (the allocator found the node short of free pages).
 *
 * These programs run inside the allocator, possibly with the node out of memory: every map is
 * preallocated, so nothing here allocates. The reclaiming task is `current` at both ends. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "pg_common.bpf.h"
#include "bits.bpf.h"
#include "mem.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader before load: memory_cgrp_id when the memory controller lives in a v1
 * hierarchy (v1 and hybrid nodes), -1 to key by the default hierarchy (pure v2). */
const volatile __s32 memory_subsys_id = -1;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PG_RECLAIM_MAX_TASKS);
	__type(key, __u32);
	__type(value, struct pg_reclaim_start);
} reclaim_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PG_RECLAIM_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct pg_reclaim_value);
} reclaim_stalls SEC(".maps");

static __always_inline __u64 current_memcg_id(void)
{
	struct task_struct *task;

	if (memory_subsys_id < 0)
		return bpf_get_current_cgroup_id();
	task = (struct task_struct *)bpf_get_current_task();
	return pg_task_subsys_cgroup_id(task, memory_subsys_id);
}

static __always_inline __u32 stall_slot(__u64 ns)
{
	__u64 slot;

	if (ns <= (1ull << PG_RECLAIM_FIRST_SHIFT))
		return 0;
	slot = pg_log2l(ns - 1) - (PG_RECLAIM_FIRST_SHIFT - 1);
	return slot < PG_RECLAIM_SLOTS ? slot : PG_RECLAIM_SLOTS - 1;
}

static __always_inline int on_begin(const int kind)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pg_reclaim_start *s, fresh = {};

	s = bpf_map_lookup_elem(&reclaim_start, &tid);
	if (s) {
		s->start_ns[kind] = bpf_ktime_get_ns();
		return 0;
	}
	fresh.start_ns[kind] = bpf_ktime_get_ns();
	/* Full: this stall goes unmeasured (the end finds no start) and is counted as lost. */
	if (bpf_map_update_elem(&reclaim_start, &tid, &fresh, BPF_ANY))
		pg_stat_inc(PG_STAT_MAP_FULL);
	return 0;
}

static __always_inline int on_end(const int kind)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pg_reclaim_start *s;
	struct pg_reclaim_value *v;
	struct pg_reclaim_hist *h;
	__u64 start, stall, id;
	__u32 slot;

	s = bpf_map_lookup_elem(&reclaim_start, &tid);
	if (!s)
		return 0;	/* attached while it was reclaiming */
	start = s->start_ns[kind];
	s->start_ns[kind] = 0;
	if (!s->start_ns[kind ^ 1])
		bpf_map_delete_elem(&reclaim_start, &tid);
	if (!start)
		return 0;
	stall = bpf_ktime_get_ns() - start;

	id = current_memcg_id();
	if (!id) {
		pg_stat_inc(PG_STAT_READ_ERRORS);
		return 0;
	}
	v = bpf_map_lookup_elem(&reclaim_stalls, &id);
	if (!v) {
		struct pg_reclaim_value zero = {};

		/* Another CPU may insert the same cgroup first: then use its entry. */
		bpf_map_update_elem(&reclaim_stalls, &id, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&reclaim_stalls, &id);
		if (!v) {
			pg_stat_inc(PG_STAT_MAP_FULL);
			return 0;
		}
	}
	h = &v->kind[kind];
	slot = stall_slot(stall);
	barrier_var(slot);
	if (slot < PG_RECLAIM_SLOTS)
		__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->stall_ns, stall);
	__sync_fetch_and_add(&h->count, 1);
	pg_stat_inc(PG_STAT_EVENTS);
	return 0;
}

/* The arguments (order, gfp flags; later kernels add the memcg) are not needed: the stall is
 * the reclaiming task's, and that task is current. */
SEC("tp_btf/mm_vmscan_memcg_reclaim_begin")
int BPF_PROG(memcg_reclaim_begin_btf)
{
	return on_begin(PG_RECLAIM_MEMCG);
}

SEC("tp_btf/mm_vmscan_memcg_reclaim_end")
int BPF_PROG(memcg_reclaim_end_btf)
{
	return on_end(PG_RECLAIM_MEMCG);
}

SEC("tp_btf/mm_vmscan_direct_reclaim_begin")
int BPF_PROG(direct_reclaim_begin_btf)
{
	return on_begin(PG_RECLAIM_DIRECT);
}

SEC("tp_btf/mm_vmscan_direct_reclaim_end")
int BPF_PROG(direct_reclaim_end_btf)
{
	return on_end(PG_RECLAIM_DIRECT);
}

SEC("raw_tp/mm_vmscan_memcg_reclaim_begin")
int BPF_PROG(memcg_reclaim_begin_raw)
{
	return on_begin(PG_RECLAIM_MEMCG);
}

SEC("raw_tp/mm_vmscan_memcg_reclaim_end")
int BPF_PROG(memcg_reclaim_end_raw)
{
	return on_end(PG_RECLAIM_MEMCG);
}

SEC("raw_tp/mm_vmscan_direct_reclaim_begin")
int BPF_PROG(direct_reclaim_begin_raw)
{
	return on_begin(PG_RECLAIM_DIRECT);
}

SEC("raw_tp/mm_vmscan_direct_reclaim_end")
int BPF_PROG(direct_reclaim_end_raw)
{
	return on_end(PG_RECLAIM_DIRECT);
}

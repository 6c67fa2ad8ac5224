/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Memory reclaim stalls per memory cgroup, from the vmscan tracepoints. Shared with userspace. */
#ifndef PODGAUGE_BPF_MEM_H
#define PODGAUGE_BPF_MEM_H

#include "stats.h"

/* Stall histogram: slot 0 counts stalls <= 2^PG_RECLAIM_FIRST_SHIFT ns, slot k in
 * 1..PG_RECLAIM_SLOTS-2 stalls in (2^(PG_RECLAIM_FIRST_SHIFT+k-1), 2^(PG_RECLAIM_FIRST_SHIFT+k)]
 * ns, the last slot everything longer (bounds match Prometheus' inclusive `le`). */
#define PG_RECLAIM_FIRST_SHIFT 12	/* 4.096 us */
#define PG_RECLAIM_SLOTS 20		/* last finite bound 2^30 ns = 1.07 s */
#define PG_RECLAIM_MAX_CGROUPS 4096
#define PG_RECLAIM_MAX_TASKS 8192	/* tasks inside reclaim at one moment */

enum pg_reclaim_kind {
	PG_RECLAIM_MEMCG = 0,	/* a memory cgroup at memory.high/max reclaiming its own pages */
	PG_RECLAIM_DIRECT = 1,	/* global direct reclaim: the node ran short of free pages */
	PG_RECLAIM__KINDS = 2,
};

struct pg_reclaim_hist {
	__u64 slots[PG_RECLAIM_SLOTS];	/* per-slot counts (not cumulative) */
	__u64 stall_ns;			/* sum of the stalls */
	__u64 count;			/* reclaim runs that ended */
};

/* Value of the hash `reclaim_stalls`, keyed by memory cgroup id (__u64): the default
 * hierarchy's id on cgroup v2, the v1 memory hierarchy's id otherwise. Shared across CPUs
 * (atomic adds): reclaim is rare next to a context switch, a per-CPU copy would cost
 * nr_cpus x 352 bytes per cgroup for nothing. */
struct pg_reclaim_value {
	struct pg_reclaim_hist kind[PG_RECLAIM__KINDS];
};

/* Value of the hash `reclaim_start`, keyed by thread id (__u32): when the thread entered each
 * kind of reclaim (0: not inside it). */
struct pg_reclaim_start {
	__u64 start_ns[PG_RECLAIM__KINDS];
};

#endif

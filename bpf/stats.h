/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Per-CPU self-counters shared by every BPF family and the agent's self-metrics. */
#ifndef PODGAUGE_BPF_STATS_H
#define PODGAUGE_BPF_STATS_H

enum pg_stat {
	PG_STAT_EVENTS = 0,	/* program invocations that did work */
	PG_STAT_RINGBUF_DROPS = 1,	/* ring buffer full: event lost */
	PG_STAT_MAP_FULL = 2,	/* a per-cgroup map had no room for a new cgroup */
	PG_STAT_READ_ERRORS = 3,	/* a CO-RE read of kernel memory failed */
	PG_STAT_PAIR_MAP_FULL = 4,	/* the preemption pair map had no room: one preemption lost */
	PG_STAT_RATE_LIMITED = 5,	/* a record held back by a per-cgroup rate limit */
	PG_STAT__MAX = 6,
};

#endif

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* An empty sched_switch program: what bpf_stats reports for it is the floor under any
 * sched_switch program's figure on this machine (tracepoint dispatch plus the two clock reads
 * the stats add, which on a VM can be most of it). Used by bench/bpf_floor only. */
#include "../bpf/include/vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/sched_switch")
int empty_switch(unsigned long long *ctx)
{
	return 0;
}

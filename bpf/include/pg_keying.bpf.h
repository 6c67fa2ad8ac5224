/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The cgroup id that keys per-cgroup maps, shared by the families that join on it (cpu, proc):
 * the rodata the loader sets, and the read itself in both flavours. Include after cpu.h. */
#ifndef PODGAUGE_PG_KEYING_BPF_H
#define PODGAUGE_PG_KEYING_BPF_H

/* Set by the loader before load. */
const volatile __u32 cgroup_key = PG_KEY_DEFAULT_HIERARCHY;
const volatile __s32 v1_subsys_id = -1;	/* cpuacct_cgrp_id or cpu_cgrp_id on this kernel */

/* A field: a direct load where the argument is BTF-typed (tp_btf), a probe read otherwise
 * (raw_tp). `btf` is a compile-time constant in each caller, so the other branch is not emitted. */
#define PG_FIELD(btf, ptr, field) ((btf) ? (ptr)->field : BPF_CORE_READ(ptr, field))

static __always_inline __u64 pg_task_keyed_cgroup_id(struct task_struct *task, const bool btf)
{
	if (btf) {
		if (cgroup_key == PG_KEY_DEFAULT_HIERARCHY)
			return task->cgroups->dfl_cgrp->kn->id;
		return task->cgroups->subsys[v1_subsys_id]->cgroup->kn->id;
	}
	if (cgroup_key == PG_KEY_DEFAULT_HIERARCHY)
		return pg_task_dfl_cgroup_id(task);
	return pg_task_subsys_cgroup_id(task, v1_subsys_id);
}

#endif

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Branch-free integer log2 (from libbpf-tools bits.bpf.h): loops cost verifier work and
 * __builtin_clzll has no BPF instruction on older LLVM. */
#ifndef PODGAUGE_BITS_BPF_H
#define PODGAUGE_BITS_BPF_H

#include <vmlinux.h>

static __always_inline __u32 pg_log2(__u32 v)
{
	__u32 shift, r;

	r = (v > 0xFFFF) << 4;
	v >>= r;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

/* floor(log2(v)) for v > 0. */
static __always_inline __u32 pg_log2l(__u64 v)
{
	__u32 hi = v >> 32;

	return hi ? pg_log2(hi) + 32 : pg_log2((__u32)v);
}

#endif

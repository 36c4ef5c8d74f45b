// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only object for bpf/pyframe.bpf.h: every RSS change of one process (rodata target_tgid)
 * is charged to the Python stack of the thread that raised it, grown and freed pages apart.
 * The delta of an event is the change of the member's folded percpu_counter count since the
 * previous event; the unfolded per-CPU parts (under 32 pages per CPU here) make a line's total
 * off by at most that much at its edges, far inside the tests' 2 %. The production program's
 * exact per-CPU sums are not needed for that.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "pyframe.bpf.h"
#include "pyframe_test.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_tgid = 0;
const volatile __u32 mode = PFT_MODE_WALK;

/* Last folded count seen per kernel member (file, anon, swap, shmem) and whether it is set. */
__s64 last[4] = {};
__u32 primed[4] = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct pft_agg);
} agg SEC(".maps");

static __always_inline __s64 folded(struct mm_struct *mm, int k)
{
	if (k == 0)
		return mm->rss_stat[0].count;
	if (k == 1)
		return mm->rss_stat[1].count;
	return mm->rss_stat[3].count;
}

struct pft_reads_ctx {
	__u64 sp;
};

static long pft_read_step(__u64 i, void *arg)
{
	__u64 v;

	bpf_probe_read_user(&v, sizeof(v), (const void *)((struct pft_reads_ctx *)arg)->sp);
	return 0;
}

SEC("tp_btf/rss_stat")
int BPF_PROG(on_rss, struct mm_struct *mm, int member)
{
	struct task_struct *cur = bpf_get_current_task_btf(), *owner;
	__u64 pid_tgid = bpf_get_current_pid_tgid(), id;
	struct pft_agg *a, zero = {};
	__s64 now, delta, *slot;
	__u32 *ready;
	int own, k = member;

	if (k != MM_FILEPAGES && k != MM_ANONPAGES && k != MM_SHMEMPAGES)
		return 0;
	own = cur->mm == mm && (pid_tgid >> 32) == target_tgid;
	if (!own) {
		owner = mm->owner;
		if (!owner || owner->tgid != target_tgid)
			return 0;
	}
	now = folded(mm, k);
	/* constant indices: the verifier then knows each access is inside the array */
	if (k == MM_FILEPAGES)
		slot = &last[0], ready = &primed[0];
	else if (k == MM_ANONPAGES)
		slot = &last[1], ready = &primed[1];
	else
		slot = &last[3], ready = &primed[3];
	delta = now - __sync_lock_test_and_set(slot, now);
	if (!*ready) {
		*ready = 1; /* the first event only sets the reference */
		return 0;
	}
	if (!own) {
		id = PFT_FOREIGN;
	} else if (mode == PFT_MODE_NOWALK) {
		id = MP_PY_STACK_NONE;
	} else if (mode == PFT_MODE_READS) {
		struct pft_reads_ctx rc = {
			.sp = ((struct pt_regs *)bpf_task_pt_regs(cur))->sp,
		};

		bpf_loop(8, pft_read_step, &rc, 0);
		id = MP_PY_STACK_NONE;
	} else {
		if (mode == PFT_MODE_FULL) {
			struct mp_pythread *th = bpf_task_storage_get(&mp_py_threads, cur, 0, 0);

			if (th) {
				th->chain = 0;
				th->stack_id = 0; /* nor its frames: every code object is read */
			}
		}
		id = mp_py_current_stack(pid_tgid);
	}
	a = bpf_map_lookup_elem(&agg, &id);
	if (!a) {
		bpf_map_update_elem(&agg, &id, &zero, BPF_NOEXIST);
		a = bpf_map_lookup_elem(&agg, &id);
		if (!a)
			return 0;
	}
	if (delta > 0)
		__sync_fetch_and_add(&a->grown, delta);
	else if (delta < 0)
		__sync_fetch_and_add(&a->freed, -delta);
	__sync_fetch_and_add(&a->events, 1);
	return 0;
}

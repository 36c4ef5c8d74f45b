/*
 * Kernel-compatibility knowledge, in one place. Every shim names the kernel change that forced it.
 * Selection is by field/type existence (CO-RE), never by version number.
 */
#ifndef MP_CORE_FIXES_BPF_H
#define MP_CORE_FIXES_BPF_H

#include <bpf/bpf_core_read.h>

/*
 * Before v6.2, commit f1a7941243c1 ("mm: convert mm's rss stats into percpu_counter"), the RSS
 * counters were atomics in struct mm_rss_stat (plus per-task caches folded in every 64 events
 * under SPLIT_RSS_COUNTING). These flavours let the same object read both layouts.
 */
struct mm_rss_stat___pre62 {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));

struct mm_struct___pre62 {
	struct mm_rss_stat___pre62 rss_stat;
} __attribute__((preserve_access_index));

static __always_inline bool mp_rss_is_percpu(void)
{
	return !bpf_core_type_exists(struct mm_rss_stat___pre62);
}

/*
 * mm->owner only exists with CONFIG_MEMCG (commit cf475ad28ac3, "cgroups: add an owner to the
 * mm_struct"). It names the task that owns an mm even when the event runs in another context
 * (reclaim, exit teardown), and is cleared by mm_update_next_owner() when the last user goes, so
 * the teardown of an exec'd-away mm is not charged to the new image.
 */
static __always_inline bool mp_have_mm_owner(void)
{
	return bpf_core_field_exists(((struct mm_struct *)0)->owner);
}

/*
 * signal->live counts the live threads of a thread group; do_exit() decrements it before the
 * sched_process_exit tracepoint on every kernel we support, so 0 means the whole group is gone.
 * Since v6.16 (commit "sched: Add group_dead to sched_process_exit") the tracepoint also carries
 * that flag, but reading signal->live works on both.
 */
static __always_inline bool mp_group_dead(struct task_struct *p)
{
	return BPF_CORE_READ(p, signal, live.counter) == 0;
}

#endif

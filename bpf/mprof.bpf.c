// SPDX-License-Identifier: GPL-2.0
/*
 * mprof kernel side: follow the exact RSS (file + anon + shmem pages, what /proc/PID/status calls
 * VmRSS) of a set of processes and of all their descendants, and send userspace only what it needs
 * to draw the curve and know every peak: turning points larger than the granularity, births,
 * execs and deaths. A page-fault storm therefore costs a map update per fault, not a ring-buffer
 * record per fault.
 *
 * Why tp_btf/rss_stat and a per-CPU sum here (measured on 6.18, see README "Exactness"):
 *  - rss_stat fires on every change of an mm counter (add_mm_counter and friends).
 *  - Since v6.2 the counters are percpu_counters. Their .count alone lags by up to
 *    batch * nr_cpus pages (256 KiB on 2 CPUs), which is not what VmRSS says. The classic
 *    tracepoint's size field is exact (percpu_counter_sum_positive() under the counter's lock),
 *    but the classic tracepoint needs tracefs to attach and only tells the value of the member
 *    that changed, for events raised in the mm's own context (curr=1).
 *  - tp_btf gets the mm itself, so we can attribute teardown and reclaim events through
 *    mm->owner, and sum the per-CPU parts ourselves: count + sum over CPUs of counters[cpu],
 *    the per-CPU offsets being learnt from a per-CPU array map (see pcpu_probe). That is the
 *    same sum percpu_counter_sum() makes, without its lock: a fold racing on another CPU can be
 *    seen twice for an instant, never lost (folds only happen in the process's own faults, which
 *    raise their own event right after).
 * Where the kernel refuses this program (before v5.19 there is no bpf_map_lookup_percpu_elem), the
 * loader uses the classic tracepoint program below instead (mounting tracefs if needed).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "mprof.h"
#include "zigzag.h"
#include "core_fixes.bpf.h"

/*
 * --lines: the (tgid, stack) keys of line_agg as they first appear (struct mp_line_new), so
 * that userspace names a new stack at once, each after the snapshots of the code objects it
 * has that were not sent yet (struct mp_pycode_snap): a stack is named from those even when its
 * code is freed at once (a module body) or the process exits right after the line that matters.
 * 8 MiB: the ~3000 code objects of a numpy import, sent within its 100 ms, with room to spare.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} line_new SEC(".maps");

#define MP_PY_SNAP_RING line_new
#include "pyframe.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load. */
const volatile __u32 nr_cpus = 1;
const volatile __u64 granularity = 256; /* pages: 1 MiB of 4 KiB pages */
const volatile __u32 page_shift = 12;
/* Group sums cost two atomics per event: kept only when a group's sum is recorded (-C). */
const volatile bool track_groups = true;
/* The per-CPU sum loads (tp_btf mode); off with the classic tracepoint, for older kernels. */
const volatile bool exact_sums = true;
/* --lines: charge the RSS changes of MP_PROC_LINES processes to their Python stacks. */
const volatile bool py_lines = false;
/* -C: the CPython hook's page holds the sum over group 0 (the tree) instead of the root. */
const volatile bool page_tree = false;
/* Window maxima for the exporter: one compare (and a store) more per event, fleet only. */
const volatile bool track_window = false;
/*
 * Fleet mode: processes join when they match the selectors (at fork, at exec, in the iterator's
 * discovery pass) and leave when an exec makes them stop matching. Otherwise (run, attach) every
 * descendant of a tracked process is tracked.
 */
const volatile bool fleet = false;
const volatile __u32 sel_flags = 0;	     /* MP_SEL_* */
const volatile char sel_name[MP_COMM_LEN] = {}; /* NUL-terminated */
const volatile __u32 sel_name_len = 0;
const volatile __u64 sel_cgroup_id = 0;
const volatile __u32 sel_cgroup_level = 0; /* depth of that cgroup below the root (root: 0) */
const volatile __u32 sel_uid = 0;

struct mp_stats stats = {};
/* Set by userspace: the exporter's current window, and what the next iterator pass does. */
__u32 window_epoch = 0;
__u32 page_on = 0; /* the hook's page is shared (set with MP_PROC_PAGE) */
__u32 iter_mode = MP_ITER_REFRESH;

/* --lines: pages moved per process and Python stack (bpf/mprof.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MP_MAX_LINE_KEYS);
	__type(key, struct mp_line_key);
	__type(value, struct mp_line_val);
} line_agg SEC(".maps");

/* The --pid list of the fleet (and nothing else): key tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} sel_pids SEC(".maps");

/* The process table (bpf/mprof.h): 2^k slots, sized by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2 * MP_MAX_PROCS);
	__type(key, __u32);
	__type(value, struct mp_proc);
} procs SEC(".maps");

/* Set by the loader with the table's size: 32 - log2(slots), slots - 1, processes at most. */
const volatile __u32 procs_shift = 17;
const volatile __u32 procs_mask = 2 * MP_MAX_PROCS - 1;
const volatile __u32 procs_cap = MP_MAX_PROCS;

/* Mapped by userspace too, which adds its tracked processes with atomics, as BPF does. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, MP_MAX_GROUPS);
	__type(key, __u32);
	__type(value, struct mp_group);
} groups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mp_rss_page);
} rss_page SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

/* The slot of @tgid, or NULL: a few inlined array loads (bpf/mprof.h). */
static __always_inline struct mp_proc *proc_find(__u32 tgid)
{
	__u32 h = mp_slot_hash(tgid, procs_shift);

	for (__u32 i = 0; i < MP_PROBES; i++) {
		__u32 idx = (h + i) & procs_mask, t;
		struct mp_proc *p = bpf_map_lookup_elem(&procs, &idx);

		if (!p)
			return NULL;
		t = *(volatile __u32 *)&p->tgid;
		if (t == tgid)
			return p;
		if (t == MP_SLOT_EMPTY)
			return NULL;
	}
	return NULL;
}

/*
 * Claim a free slot for @tgid (not in the table: the caller looked): it is MP_SLOT_BUSY, for the
 * caller to fill and then publish with proc_publish(). NULL when the table is full (counted).
 */
static __always_inline struct mp_proc *proc_claim(__u32 tgid)
{
	__u32 h = mp_slot_hash(tgid, procs_shift);

	if (stats.live >= procs_cap)
		goto full;
	for (__u32 i = 0; i < MP_PROBES; i++) {
		__u32 idx = (h + i) & procs_mask, t;
		struct mp_proc *p = bpf_map_lookup_elem(&procs, &idx);

		if (!p)
			break;
		t = *(volatile __u32 *)&p->tgid;
		if (t != MP_SLOT_EMPTY && t != MP_SLOT_DEAD)
			continue;
		if (__sync_val_compare_and_swap(&p->tgid, t, MP_SLOT_BUSY) == t) {
			__sync_fetch_and_add(&stats.live, 1);
			return p;
		}
	}
full:
	__sync_fetch_and_add(&stats.procs_dropped, 1);
	return NULL;
}

/* Make the filled slot @p visible as @tgid's. */
static __always_inline void proc_publish(struct mp_proc *p, __u32 tgid)
{
	__sync_lock_test_and_set(&p->tgid, tgid); /* a full barrier: the fields come first */
}

/* @tgid is gone: its slot becomes DEAD. Returns 1 for the caller that retired it. */
static __always_inline int proc_retire(struct mp_proc *p, __u32 tgid)
{
	if (__sync_val_compare_and_swap(&p->tgid, tgid, MP_SLOT_DEAD) != tgid)
		return 0;
	__sync_fetch_and_add(&stats.live, -1);
	return 1;
}

/*
 * The time for the per-event path. A precise clock read (a TSC read: ~100 ns on this project's
 * VM, the dearest step of the program, measured by bench/bench_fleet.py) is taken only when the
 * jiffy changed or after MP_TIME_REUSE events on this CPU; in between the last reading is reused,
 * so a time is at most MP_TIME_REUSE - 1 events (a few µs in a page-fault storm) or one jiffy
 * (4 ms at HZ=250, when events are sparse) early. Heights stay exact.
 */
#define MP_TIME_REUSE 8

struct tcache {
	__u64 jif;
	__u64 ns;
	__u32 n;
	__u32 pad;
};

static struct tcache tcache[MP_MAX_CPUS];

static __always_inline __u64 now_cheap(void)
{
	struct tcache *c = &tcache[bpf_get_smp_processor_id() & (MP_MAX_CPUS - 1)];
	__u64 j = bpf_jiffies64();

	if (c->jif != j || ++c->n >= MP_TIME_REUSE) {
		c->ns = bpf_ktime_get_ns();
		c->jif = j;
		c->n = 0;
	}
	return c->ns;
}

/*
 * A one-slot per-CPU array whose only use is to learn the kernel's per-CPU offsets: the address
 * of CPU n's slot minus the array's raw __percpu pointer is __per_cpu_offset[n]. This works on
 * every architecture and needs no kallsyms (a typed ksym such as this_cpu_off is resolved
 * through kallsyms, which lists data symbols only with CONFIG_KALLSYMS_ALL).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pcpu_probe SEC(".maps");

/*
 * A read-only view of any kernel address as a given BTF type (v6.2+). Loads through it are
 * plain instructions with an exception-table fixup, much cheaper than a bpf_probe_read_kernel()
 * call on this hot path (one per CPU per page fault).
 */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

#define bpf_ksym_exists_rdonly() (&bpf_rdonly_cast != NULL)

/* Per-CPU offsets, learnt once (0: not yet). */
__u64 cpu_off[MP_MAX_CPUS] = {};

/*
 * The address in a pointer register, as a number. The verifier forbids arithmetic between map
 * pointers and unknown scalars; reading the spilled register back through probe_read gives a
 * plain scalar (root only: it is a pointer leak by design).
 */
static __always_inline __u64 addr_of(const void *p)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), &p);
	return v;
}

static __always_inline __u64 percpu_offset(__u32 cpu)
{
	__u32 zero = 0, idx = cpu & (MP_MAX_CPUS - 1);
	__u64 raw = 0, off;
	void *slot;

	off = cpu_off[idx];
	if (off)
		return off;
	slot = bpf_map_lookup_percpu_elem(&pcpu_probe, &zero, cpu);
	if (!slot)
		return 0;
	if (bpf_probe_read_kernel(&raw, sizeof(raw),
				  (void *)(addr_of(&pcpu_probe) +
					   bpf_core_field_offset(struct bpf_array, pptrs))))
		return 0;
	off = addr_of(slot) - raw;
	cpu_off[idx] = off;
	return off;
}

/*
 * The kernel's counter index of our member @m. The enum is anonymous in BTF, so CO-RE cannot
 * relocate it; its values have not moved since MM_SHMEMPAGES was added in v4.5 (commit
 * eca56ff906bd, "mm, shmem: add internal shmem resident memory accounting").
 */
static __always_inline int kernel_member(int m)
{
	switch (m) {
	case MP_FILE:
		return MM_FILEPAGES;
	case MP_ANON:
		return MM_ANONPAGES;
	default:
		return MM_SHMEMPAGES;
	}
}

/* Our member index of kernel counter @k, or -1 for counters that are not resident memory. */
static __always_inline int our_member(int k)
{
	if (k == kernel_member(MP_FILE))
		return MP_FILE;
	if (k == kernel_member(MP_ANON))
		return MP_ANON;
	if (k == kernel_member(MP_SHMEM))
		return MP_SHMEM;
	return -1; /* MM_SWAPENTS */
}

/*
 * Exact value of a v6.2+ percpu_counter: count plus every CPU's unfolded part. @c points into an
 * mm handed to tp_btf, which the verifier lets us load from directly (no helper call).
 */
static __always_inline __s64 pcpu_counter_sum(struct percpu_counter *c)
{
	__s64 sum = c->count;
	void *counters = (void *)c->counters;

	for (__u32 cpu = 0; cpu < MP_MAX_CPUS; cpu++) {
		__u64 off;
		__s32 part = 0;

		if (cpu >= nr_cpus)
			break;
		off = percpu_offset(cpu);
		if (!off)
			continue;
		if (bpf_ksym_exists_rdonly()) {
			/* any named struct whose first field is an s32 will do */
			struct refcount_struct *r = bpf_rdonly_cast(
				counters + off, bpf_core_type_id_kernel(struct refcount_struct));

			part = r->refs.counter;
		} else if (bpf_probe_read_kernel(&part, sizeof(part), counters + off)) {
			continue;
		}
		sum += part;
	}
	return sum < 0 ? 0 : sum;
}

/* Before v6.2: the atomic counter (see core_fixes.bpf.h). */
static __always_inline __u64 atomic_member(struct mm_struct *mm, int k)
{
	struct mm_struct___pre62 *old = (void *)mm;
	long v;

	if (k == 0)
		v = BPF_CORE_READ(old, rss_stat.count[0].counter);
	else if (k == 1)
		v = BPF_CORE_READ(old, rss_stat.count[1].counter);
	else if (k == 3)
		v = BPF_CORE_READ(old, rss_stat.count[3].counter);
	else
		v = BPF_CORE_READ(old, rss_stat.count[2].counter);
	return v < 0 ? 0 : v;
}

/* Pages in our member @m of @mm, exactly (per-CPU sum on v6.2+). */
static __always_inline __u64 member_pages(struct mm_struct *mm, int m)
{
	int k = kernel_member(m);

	if (!mp_rss_is_percpu())
		return atomic_member(mm, k);
	/* constant indices keep the CO-RE access strings simple */
	if (k == 0)
		return pcpu_counter_sum(&mm->rss_stat[0]);
	if (k == 1)
		return pcpu_counter_sum(&mm->rss_stat[1]);
	if (k == 3)
		return pcpu_counter_sum(&mm->rss_stat[3]);
	return pcpu_counter_sum(&mm->rss_stat[2]);
}

/* The tgid whose memory @mm is, or 0 when it belongs to nobody we can name. */
static __always_inline __u32 mm_tgid(struct mm_struct *mm)
{
	struct task_struct *cur;

	if (mp_have_mm_owner()) {
		struct task_struct *owner = mm->owner; /* direct: tp_btf's mm is trusted */

		return owner ? owner->tgid : 0;
	}
	cur = bpf_get_current_task_btf();
	return BPF_CORE_READ(cur, mm) == mm ? BPF_CORE_READ(cur, tgid) : 0;
}

static __always_inline __u32 task_uid(struct task_struct *t)
{
	return BPF_CORE_READ(t, cred, euid.val);
}

/* The task's cgroup v2 id: its kernfs node id, which is the cgroup directory's inode number. */
static __always_inline __u64 task_cgroup_id(struct task_struct *t)
{
	return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

static __always_inline void submit(__u32 kind, __u32 tgid, __u32 ppid, __u32 group, __u64 ts,
				   __u64 pages, __u32 is_max, struct mp_proc *p,
				   struct task_struct *task, __u64 group_pages)
{
	struct mp_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&stats.lost, 1);
		return;
	}
	e->kind = kind;
	e->tgid = tgid;
	e->ppid = ppid;
	e->group = group;
	e->ts_ns = ts;
	e->pages = pages;
	e->is_max = is_max;
	e->exit_code = 0;
	e->peak_pages = 0;
	e->peak_ts_ns = 0;
	e->group_pages = group_pages;
	if (p) {
		/* racy read of two words, only used for EXIT where the process is gone */
		e->peak_pages = p->peak;
		e->peak_ts_ns = p->peak_ts;
		if (track_window) {
			__u32 ep = window_epoch;

			e->window_tag = ep;
			e->window_pages = p->wtag[ep & 1] == ep ? p->wmax[ep & 1] : p->rss;
		}
	}
	e->uid = 0;
	e->window_tag = 0;
	e->window_pages = 0;
	e->cgroup_id = 0;
	if (task) {
		BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
		e->exit_code = BPF_CORE_READ(task, exit_code);
		e->uid = task_uid(task);
		e->cgroup_id = task_cgroup_id(task);
	} else {
		e->comm[0] = 0;
	}
	bpf_ringbuf_submit(e, 0);
	__sync_fetch_and_add(&stats.events, 1);
}

/* Raise *@slot to @v if it is lower, atomically; record @now in *@ts_slot when it was. */
static __always_inline void atomic_max(__u64 *slot, __u64 *ts_slot, __u64 v, __u64 now)
{
	for (int i = 0; i < 8; i++) {
		__u64 old = *(volatile __u64 *)slot;

		if (v <= old)
			return;
		if (__sync_val_compare_and_swap(slot, old, v) == old) {
			*ts_slot = now;
			return;
		}
	}
}

/* Tell the CPython hook's page the new RSS; raise the threads' peak slots on a rise. */
static __always_inline void publish_page(__u64 pages, __s64 delta)
{
	__u32 zero = 0, n;
	struct mp_rss_page *pg = bpf_map_lookup_elem(&rss_page, &zero);
	__u64 v = pages << page_shift;

	if (!pg)
		return;
	pg->rss_bytes = v;
	pg->seq++;
	if (delta <= 0)
		return;
	n = pg->slots_used;
	for (__u32 i = 0; i < MP_RSS_PAGE_SLOTS; i++) {
		if (i >= n)
			break;
		if (pg->peak_bytes[i] < v)
			pg->peak_bytes[i] = v;
	}
}

/*
 * Add @delta pages to group @gid and report its turning points. The sum is exact: it is the
 * atomic sum of exact per-member deltas. The zig-zag state is updated without a lock (tracepoint
 * programs cannot take bpf_spin_lock): two CPUs racing on one group can blur a turning point
 * smaller than the granularity, never the peak, which is an atomic maximum.
 */
static __always_inline void group_add(__u32 gid, __s64 delta, int dprocs, __u64 now)
{
	struct mp_group *g = bpf_map_lookup_elem(&groups, &gid);
	__u64 ext = 0, ext_ts = 0, v;
	__u32 is_max = 0;
	__s64 nv;

	if (!g)
		return;
	if (dprocs)
		__sync_fetch_and_add(&g->nprocs, dprocs);
	nv = __sync_fetch_and_add(&g->rss, delta) + delta;
	v = nv < 0 ? 0 : nv;
	atomic_max(&g->peak, &g->peak_ts, v, now);
	if (page_tree && page_on && gid == 0)
		publish_page(v, delta); /* -C: the hook's page follows the tree */
	if (mp_zigzag_update(&g->zz, v, now, granularity, &ext, &ext_ts, &is_max))
		submit(MP_EV_GROUP_EXTREME, 0, 0, gid, ext_ts, ext, is_max, NULL, NULL, 0);
}

/*
 * Store new member values of process @tgid (members in bit mask @mask, values in @vals) and
 * propagate the change. This runs on every page fault of a tracked process, so it does one atomic
 * operation: each member is exchanged, which makes the deltas handed to the group sum exact even
 * when threads fault concurrently. The process total is re-derived from the members rather than
 * accumulated, so it cannot drift; its maximum and turning points are plain stores, which two
 * threads faulting at the same instant can blur by the pages of one fault, never more.
 */
static __always_inline __s64 proc_set(struct mp_proc *p, __u32 tgid, const __u64 *vals,
				      __u32 mask, __u64 now)
{
	__u64 ext = 0, ext_ts = 0, nrss;
	__u32 is_max = 0;
	__s64 delta = 0;

	if (mask & 1)
		delta += (__s64)vals[0] - (__s64)__sync_lock_test_and_set(&p->member[0], vals[0]);
	if (mask & 2)
		delta += (__s64)vals[1] - (__s64)__sync_lock_test_and_set(&p->member[1], vals[1]);
	if (mask & 4)
		delta += (__s64)vals[2] - (__s64)__sync_lock_test_and_set(&p->member[2], vals[2]);
	if (mask == 7 && (p->flags & MP_PROC_FRESH))
		__sync_fetch_and_and(&p->flags, ~MP_PROC_FRESH);
	if (!delta)
		return 0;
	nrss = p->member[0] + p->member[1] + p->member[2];
	p->rss = nrss;
	if ((p->flags & MP_PROC_PAGE) && !page_tree)
		publish_page(nrss, delta);
	if (nrss > p->peak) {
		p->peak = nrss;
		p->peak_ts = now;
	}
	if (track_window) {
		__u32 e = window_epoch, slot = e & 1;

		if (p->wtag[slot] != e) {
			p->wtag[slot] = e;
			p->wmax[slot] = nrss;
		} else if (nrss > p->wmax[slot]) {
			p->wmax[slot] = nrss;
		}
	}
	if (mp_zigzag_update(&p->zz, nrss, now, granularity, &ext, &ext_ts, &is_max))
		submit(MP_EV_EXTREME, tgid, 0, p->group, ext_ts, ext, is_max, NULL, NULL, 0);
	if (track_groups)
		group_add(p->group, delta, 0, now);
	return delta;
}

/*
 * Start values when a process is born or execs when the exact per-CPU sum is not available
 * (classic tracepoint mode): the counters' folded part only. The error (under
 * percpu_counter_batch pages per CPU) lasts until the member next changes, when the rss_stat
 * program stores the exact value.
 */
static __always_inline __u64 approx_member(struct mm_struct *mm, int m)
{
	int k = kernel_member(m);
	__s64 v;

	if (mp_rss_is_percpu()) {
		if (k == 0)
			v = BPF_CORE_READ(mm, rss_stat[0].count);
		else if (k == 1)
			v = BPF_CORE_READ(mm, rss_stat[1].count);
		else if (k == 3)
			v = BPF_CORE_READ(mm, rss_stat[3].count);
		else
			v = BPF_CORE_READ(mm, rss_stat[2].count);
		return v < 0 ? 0 : v;
	}
	return atomic_member(mm, k);
}

static __always_inline void read_all(struct mm_struct *mm, __u64 *vals)
{
	if (exact_sums) {
		vals[0] = member_pages(mm, MP_FILE);
		vals[1] = member_pages(mm, MP_ANON);
		vals[2] = member_pages(mm, MP_SHMEM);
	} else {
		vals[0] = approx_member(mm, MP_FILE);
		vals[1] = approx_member(mm, MP_ANON);
		vals[2] = approx_member(mm, MP_SHMEM);
	}
}

/* Member @m of process @tgid is now @v pages exactly. Returns the change, pages. */
static __always_inline __s64 proc_set_member(struct mp_proc *p, __u32 tgid, int m, __u64 v,
					     __u64 now)
{
	__u64 vals[MP_NR_MEMBERS] = {};

	if (m == MP_FILE)
		vals[0] = v;
	else if (m == MP_ANON)
		vals[1] = v;
	else
		vals[2] = v;
	return proc_set(p, tgid, vals, 1u << m, now);
}

/*
 * --lines: charge @delta pages of process @tgid to the Python stack of the thread that moved
 * them, when the change was raised in the process's own context (a fault, an munmap); otherwise
 * (reclaim, teardown, another process) to MP_LINE_FOREIGN.
 */
static __always_inline void charge_line(__u32 tgid, struct mm_struct *mm, __s64 delta)
{
	struct mp_line_key key = { .tgid = tgid };
	struct mp_line_val *v, zero = {};
	struct task_struct *cur = bpf_get_current_task_btf();

#if defined(MP_LINES_STAGE) && MP_LINES_STAGE == 1 /* bench: the table alone, no walk */
	key.stack = cur->mm == mm ? MP_PY_STACK_NONE : MP_LINE_FOREIGN;
#else
	key.stack = cur->mm == mm ? mp_py_current_stack(bpf_get_current_pid_tgid())
				  : MP_LINE_FOREIGN;
#endif
#if defined(MP_LINES_STAGE) && MP_LINES_STAGE == 2 /* bench: the walk alone, no table */
	/* a test of the walk's result, so the compiler keeps the walk; 12345 is no id it returns */
	if (key.stack != 12345)
		return;
#endif
	v = bpf_map_lookup_elem(&line_agg, &key);
	if (!v) {
		/* the wake-up is cheap and rare: once per distinct stack of the run */
		if (!bpf_map_update_elem(&line_agg, &key, &zero, BPF_NOEXIST)) {
			struct mp_line_new rec = { MP_LINE_REC_STACK, tgid, key.stack };

			if (key.stack >= MP_PY_STACK_FIRST && key.stack != MP_LINE_FOREIGN)
				mp_py_snap_stack(tgid, key.stack);
			if (bpf_ringbuf_output(&line_new, &rec, sizeof(rec), 0))
				__sync_fetch_and_add(&stats.lines_new_lost, 1);
		}
		v = bpf_map_lookup_elem(&line_agg, &key);
		if (!v) {
			__sync_fetch_and_add(&stats.lines_dropped, 1);
			return;
		}
	}
	if (delta > 0)
		__sync_fetch_and_add(&v->grown, delta);
	else
		__sync_fetch_and_add(&v->freed, -delta);
	__sync_fetch_and_add(&v->events, 1);
}

SEC("tp_btf/rss_stat")
int BPF_PROG(on_rss_stat, struct mm_struct *mm, int member)
{
	__u64 vals[MP_NR_MEMBERS] = {};
	struct mp_proc *p;
	__s64 delta;
	__u32 tgid;
	int m;

#ifdef MP_STAGE /* bench/bench_stages.py: stop after step N to price each step */
#define STAGE(n) if (MP_STAGE < (n)) return 0
#else
#define STAGE(n)
#endif
	STAGE(1);
	m = our_member(member);
	if (m < 0)
		return 0;
	tgid = mm_tgid(mm);
	if (!tgid)
		return 0;
	STAGE(2);
	p = proc_find(tgid);
	if (!p || (p->flags & MP_PROC_EXEC_WAIT))
		return 0;
	if (p->flags & MP_PROC_FRESH) {
		read_all(mm, vals); /* exact: this program only loads with exact_sums */
		proc_set(p, tgid, vals, 7, bpf_ktime_get_ns());
		return 0;
	}
	STAGE(3);
	vals[0] = member_pages(mm, m);
	STAGE(4);
	vals[1] = now_cheap();
	STAGE(5);
	/* Only the member that changed is re-summed: every change raises its own event. */
	delta = proc_set_member(p, tgid, m, vals[0], vals[1]);
	if (py_lines && delta && (p->flags & MP_PROC_LINES))
		charge_line(tgid, mm, delta);
	return 0;
}

/*
 * The floor the benchmark compares with: an empty program on the same tracepoint, loaded instead
 * of on_rss_stat (mp_backend_opts.floor). What it costs is what the kernel charges for calling a
 * BPF program at all on every RSS change.
 */
SEC("tp_btf/rss_stat")
int BPF_PROG(on_rss_stat_floor, struct mm_struct *mm, int member)
{
	return 0;
}

/*
 * Fallback when the kernel refuses the tp_btf program: the classic tracepoint, whose size field
 * the kernel computes exactly under the counter's lock. It only names the member that changed and only for
 * the mm's own context, so processes start from the values the loader read in /proc.
 */
SEC("tracepoint/kmem/rss_stat")
int on_rss_stat_tp(struct trace_event_raw_rss_stat *ctx)
{
	struct mp_proc *p;
	__u32 tgid;
	int m;

	if (!ctx->curr)
		return 0;
	m = our_member(ctx->member);
	if (m < 0)
		return 0;
	tgid = bpf_get_current_pid_tgid() >> 32;
	p = proc_find(tgid);
	if (!p || (p->flags & MP_PROC_EXEC_WAIT))
		return 0;
	proc_set_member(p, tgid, m, (__u64)ctx->size >> page_shift, now_cheap());
	return 0;
}

/* Does the task's comm contain sel_name? (both at most MP_COMM_LEN bytes) */
static __always_inline bool comm_matches(const char *comm)
{
	__u32 n = sel_name_len;

	if (!n || n >= MP_COMM_LEN)
		return n == 0;
	for (__u32 i = 0; i < MP_COMM_LEN; i++) {
		bool all = true;

		if (i + n > MP_COMM_LEN - 1)
			break;
		for (__u32 j = 0; j < MP_COMM_LEN; j++) {
			if (j >= n)
				break;
			if (comm[(i + j) & (MP_COMM_LEN - 1)] != sel_name[j]) {
				all = false;
				break;
			}
		}
		if (all)
			return true;
		if (!comm[i & (MP_COMM_LEN - 1)])
			break;
	}
	return false;
}

/* Is @t in the cgroup v2 sel_cgroup_id or below it? */
static __always_inline bool cgroup_matches(struct task_struct *t)
{
	struct cgroup *cg = BPF_CORE_READ(t, cgroups, dfl_cgrp);
	__u32 lvl = sel_cgroup_level;
	struct cgroup *anc = NULL;

	if (!cg || BPF_CORE_READ(cg, level) < (int)lvl)
		return false;
	if (bpf_core_read(&anc, sizeof(anc), &cg->ancestors[lvl & 255]))
		return false;
	return anc && BPF_CORE_READ(anc, kn, id) == sel_cgroup_id;
}

/* A listed pid, or a descendant of one (up to 32 generations up), for the discovery pass. */
static __always_inline bool in_pid_tree(struct task_struct *t)
{
	for (int i = 0; i < 32 && t; i++) {
		__u32 tgid = BPF_CORE_READ(t, tgid);

		if (bpf_map_lookup_elem(&sel_pids, &tgid))
			return true;
		if (tgid <= 1)
			break;
		t = BPF_CORE_READ(t, real_parent);
	}
	return false;
}

/*
 * Do the fleet's selectors take @t? @tree: whether it is known to be in a --pid tree (its parent
 * is, at a fork) or must be looked up.
 */
static __always_inline bool selected(struct task_struct *t, int tree)
{
	char comm[MP_COMM_LEN] = {};
	__u32 f = sel_flags;

	if (!BPF_CORE_READ(t, mm))
		return false; /* kernel threads hold no memory of their own */
	if (f & MP_SEL_ALL)
		return true;
	if ((f & MP_SEL_PID) && !(tree > 0 || (tree < 0 && in_pid_tree(t))))
		return false;
	if (f & MP_SEL_NAME) {
		BPF_CORE_READ_STR_INTO(&comm, t, comm);
		if (!comm_matches(comm))
			return false;
	}
	if ((f & MP_SEL_CGROUP) && !cgroup_matches(t))
		return false;
	if ((f & MP_SEL_USER) && task_uid(t) != sel_uid)
		return false;
	return f != 0;
}

/* Who @p is, for the outputs: comm, uid, cgroup. */
static __always_inline void proc_identity(struct mp_proc *p, struct task_struct *t)
{
	BPF_CORE_READ_STR_INTO(&p->comm, t, comm);
	p->uid = task_uid(t);
	p->cgroup_id = task_cgroup_id(t);
}

/* A fresh entry for @t with its exact values now. Returns 0, or -1 when the map is full. */
static __always_inline int proc_add(__u32 tgid, __u32 parent, __u32 group, __u32 flags,
				    struct task_struct *t, struct mm_struct *mm, __u64 now,
				    __u64 *rss)
{
	struct mp_proc np = {}, *slot;

	np.group = group;
	np.parent = parent;
	np.flags = flags;
	if (mm) {
		read_all(mm, np.member);
		np.rss = np.member[0] + np.member[1] + np.member[2];
	}
	np.peak = np.rss;
	np.peak_ts = now;
	np.zz.dir = 1;
	np.zz.ext = np.rss;
	np.zz.ext_ts = now;
	/* constant indices: a variable one into the stack is compiled to a pointer OR */
	if (window_epoch & 1) {
		np.wtag[1] = window_epoch;
		np.wmax[1] = np.rss;
	} else {
		np.wtag[0] = window_epoch;
		np.wmax[0] = np.rss;
	}
	proc_identity(&np, t);
	if (proc_find(tgid))
		return -1; /* followed already (userspace added it, or a racing pass) */
	slot = proc_claim(tgid);
	if (!slot)
		return -1;
	np.tgid = MP_SLOT_BUSY;
	*slot = np;
	proc_publish(slot, tgid);
	*rss = np.rss;
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid, group = 0, flags = 0;
	struct mp_proc *pp;
	struct mm_struct *mm;
	__u64 now, rss = 0;

	if (ptgid == ctgid)
		return 0; /* a new thread of a tracked process: same mm, same tgid */
	pp = proc_find(ptgid);
	if (fleet) {
		flags = pp ? (pp->flags & MP_PROC_PIDTREE) : 0;
		if (!selected(child, flags ? 1 : 0))
			return 0;
	} else if (!pp) {
		return 0;
	}
	if (pp)
		group = pp->group;
	else
		ptgid = 0; /* joins the fleet on its own: its parent is not in it */
	if (py_lines && pp && (pp->flags & MP_PROC_LINES)) {
		/* a forked interpreter has its parent's layout and addresses: its lines too */
		struct mp_pyproc *py = bpf_map_lookup_elem(&mp_py_procs, &ptgid);

		if (py && !bpf_map_update_elem(&mp_py_procs, &ctgid, py, BPF_ANY))
			flags |= MP_PROC_LINES;
	}
	now = bpf_ktime_get_ns();
	mm = child->mm;
	/*
	 * A CLONE_VM child (vfork, posix_spawn) shares its parent's mm until it execs: its pages are
	 * the parent's, so it starts at zero to keep group sums free of double counting.
	 */
	if (mm == parent->mm)
		mm = NULL;
	if (proc_add(ctgid, ptgid, group, flags, child, mm, now, &rss))
		return 0;
	submit(MP_EV_FORK, ctgid, ptgid, group, now, rss, 0, NULL, child, 0);
	group_add(group, rss, 1, now);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 vals[MP_NR_MEMBERS] = {};
	__u32 tgid = p->tgid;
	struct mp_proc *st;
	struct mm_struct *mm;
	__u64 now, gpages;

	st = proc_find(tgid);
	now = bpf_ktime_get_ns();
	mm = p->mm;
	if (fleet) {
		bool tree = st ? (st->flags & MP_PROC_PIDTREE) : false;
		__u64 rss = 0;

		if (!st) {
			if (!selected(p, -1))
				return 0;
			/* started elsewhere, now one of ours: it joins with its exact values */
			if (proc_add(tgid, 0, 0, 0, p, mm, now, &rss))
				return 0;
			submit(MP_EV_JOIN, tgid, BPF_CORE_READ(p, real_parent, tgid), 0, now, rss, 0,
			       NULL, p, 0);
			return 0;
		}
		if (!selected(p, tree ? 1 : 0)) {
			/* it became something the selectors do not take: it leaves, with its peak */
			submit(MP_EV_LEAVE, tgid, st->parent, st->group, now, st->rss, 0, st, p, 0);
			proc_retire(st, tgid);
			return 0;
		}
	}
	if (!st)
		return 0;
	if (mm)
		read_all(mm, vals);
	if (py_lines && (st->flags & MP_PROC_LINES)) {
		/* another program now: the interpreter described is gone */
		__sync_fetch_and_and(&st->flags, ~MP_PROC_LINES);
		bpf_map_delete_elem(&mp_py_procs, &tgid);
	}
	if (st->flags & MP_PROC_EXEC_WAIT) {
		/* the command itself starts here: its series begins with this image */
		st->peak = 0;
		st->zz.dir = 0;
		__sync_fetch_and_and(&st->flags, ~(MP_PROC_EXEC_WAIT | MP_PROC_FRESH));
	}
	proc_set(st, tgid, vals, 7, now);
	proc_identity(st, p);
	gpages = 0;
	if (track_groups) {
		__u32 gid = st->group;
		struct mp_group *g = bpf_map_lookup_elem(&groups, &gid);

		if (g)
			gpages = g->rss < 0 ? 0 : g->rss;
	}
	submit(MP_EV_EXEC, tgid, 0, st->group, now, st->rss, 0, NULL, p, gpages);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid, gid;
	struct mp_proc *st;
	__u64 now, last;

	st = proc_find(tgid);
	if (!st || !mp_group_dead(p))
		return 0;
	now = bpf_ktime_get_ns();
	last = st->rss;
	gid = st->group;
	submit(MP_EV_EXIT, tgid, st->parent, gid, now, last, 0, st, p, 0);
	/* Whoever retires the slot settles the group, so racing last threads count once. */
	if (!proc_retire(st, tgid))
		return 0;
	group_add(gid, -(__s64)last, -1, now);
	return 0;
}

/*
 * The kernel chose a victim to free memory: count it (once per process) and tell userspace.
 * mark_victim has carried the task since v6.8; before, only its pid (core_fixes would need a
 * flavour for that layout: not done, the program is simply not loaded there).
 */
SEC("tp_btf/mark_victim")
int BPF_PROG(on_oom_victim, struct task_struct *t, uid_t uid)
{
	__u32 tgid = t->tgid;
	struct mp_proc *st = proc_find(tgid);

	if (!st)
		return 0;
	__sync_fetch_and_add(&st->oom_kills, 1);
	__sync_fetch_and_add(&stats.oom_kills, 1);
	submit(MP_EV_OOM, tgid, st->parent, st->group, bpf_ktime_get_ns(), st->rss, 0, NULL, t, 0);
	return 0;
}

/*
 * One pass over every task, run by userspace through an iterator link, in no process's context.
 * REFRESH: a process userspace just started to follow (attach) has its exact values taken now,
 * even when it is idle and raises no event of its own, so the first value of the series is the
 * exact sum the rss_stat program computes, not /proc's folded counters. DISCOVER (fleet start):
 * also add every running process the selectors match, and write its tgid to the iterator's
 * output so userspace learns the initial set.
 */
SEC("iter/task")
int iter_task(struct bpf_iter__task *ctx)
{
	struct task_struct *t = ctx->task;
	__u64 vals[MP_NR_MEMBERS] = {}, now, rss = 0;
	struct mm_struct *mm;
	struct mp_proc *p;
	__u32 tgid;

	if (!t || t->pid != t->tgid)
		return 0; /* one visit per process: its leader */
	tgid = t->tgid;
	mm = t->mm;
	now = bpf_ktime_get_ns();
	p = proc_find(tgid);
	if (p) {
		if (!(p->flags & MP_PROC_FRESH) || !mm || !exact_sums)
			return 0;
		read_all(mm, vals);
		proc_set(p, tgid, vals, 7, now);
		/* the series starts at this exact value: peak and turning points from here */
		p->peak = p->rss;
		p->peak_ts = now;
		p->zz.dir = 1;
		p->zz.ext = p->rss;
		p->zz.ext_ts = now;
		proc_identity(p, t);
		return 0;
	}
	if (iter_mode != MP_ITER_DISCOVER || !fleet || !mm || !selected(t, -1))
		return 0;
	if (proc_add(tgid, 0, 0, in_pid_tree(t) ? MP_PROC_PIDTREE : 0, t, mm, now, &rss))
		return 0;
	bpf_seq_write(ctx->meta->seq, &tgid, sizeof(tgid));
	return 0;
}

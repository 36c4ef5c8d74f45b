/*
 * The turning-point rule, shared verbatim by the BPF program and the userspace tests (and the
 * /proc polling backend), so the policy tested in tests/unit/test_zigzag.c is the one the kernel
 * runs. Plain C over __u64: no helpers, no calls, safe inside a bpf_spin_lock section.
 */
#ifndef MP_BPF_ZIGZAG_H
#define MP_BPF_ZIGZAG_H

/*
 * Feed value @v seen at @now into @z. When the value has come back from the running extreme by
 * at least @gran, that extreme is final: it is returned in *@ext_v / *@ext_ts with *@is_max
 * telling a maximum from a minimum, and the function returns 1. Otherwise returns 0.
 * A maximum is therefore reported with its exact height and time as soon as the value has
 * fallen @gran below it; wiggles smaller than @gran never emit.
 */
static __always_inline int mp_zigzag_update(struct mp_zigzag *z, __u64 v, __u64 now, __u64 gran,
					    __u64 *ext_v, __u64 *ext_ts, __u32 *is_max)
{
	if (z->dir == 0) {
		z->dir = 1;
		z->ext = v;
		z->ext_ts = now;
		return 0;
	}
	if (z->dir > 0) {
		if (v >= z->ext) {
			if (v > z->ext) {
				z->ext = v;
				z->ext_ts = now;
			}
			return 0;
		}
		if (z->ext - v < gran)
			return 0;
		*ext_v = z->ext;
		*ext_ts = z->ext_ts;
		*is_max = MP_EXT_MAX;
		z->dir = -1;
	} else {
		if (v <= z->ext) {
			if (v < z->ext) {
				z->ext = v;
				z->ext_ts = now;
			}
			return 0;
		}
		if (v - z->ext < gran)
			return 0;
		*ext_v = z->ext;
		*ext_ts = z->ext_ts;
		*is_max = MP_EXT_MIN;
		z->dir = 1;
	}
	z->ext = v;
	z->ext_ts = now;
	return 1;
}

#endif

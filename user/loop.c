#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "loop.h"

/* Without pidfds (before v5.3) the root's end is checked this often. */
#define ROOT_CHECK_S 0.05

struct loop {
	struct mp_backend *be;
	struct mp_sink *const *sinks;
	size_t nsinks;
	struct mp_loop_opts o; /* the pipe is dropped from it when every writer is gone */
	struct mp_loop_result *res;
	struct mp_clock clock;
	int pidfd;
	int root_gone;
	int quit; /* a source asked to end */
	/* a hook record split across two reads */
	unsigned char carry[sizeof(struct mp_func_event)];
	size_t ncarry;
};

static double mono_s(void)
{
	return mp_clock__now_mono_ns() / 1e9;
}

static int deliver(void *ctx, const struct mp_sample *s)
{
	struct loop *l = ctx;
	int err;

	for (size_t i = 0; i < l->nsinks; i++) {
		err = l->sinks[i]->event(l->sinks[i], s);
		if (err)
			return err;
	}
	return 0;
}

static int func_record(struct loop *l, const void *rec)
{
	struct mp_sample s;

	if (mp_event__decode(rec, sizeof(struct mp_func_event), &l->clock, &s) ||
	    s.kind != MP_EV_FUNC) {
		l->res->func_bad++;
		return 0;
	}
	return deliver(l, &s);
}

/* Read every hook record waiting in the pipe (non-blocking). Returns 0 or -errno. */
static int read_funcs(struct loop *l)
{
	const size_t rs = sizeof(struct mp_func_event);
	unsigned char buf[64 * sizeof(struct mp_func_event)];
	int err;

	if (l->o.func_fd < 0)
		return 0;
	for (;;) {
		ssize_t n = read(l->o.func_fd, buf, sizeof(buf));
		size_t off = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (n == 0)
			return 0; /* every writer is gone */
		if (l->ncarry) {
			size_t take = rs - l->ncarry < (size_t)n ? rs - l->ncarry : (size_t)n;

			memcpy(l->carry + l->ncarry, buf, take);
			l->ncarry += take;
			off = take;
			if (l->ncarry == rs) {
				l->ncarry = 0;
				err = func_record(l, l->carry);
				if (err)
					return err;
			}
		}
		for (; off + rs <= (size_t)n; off += rs) {
			err = func_record(l, buf + off);
			if (err)
				return err;
		}
		if (off < (size_t)n) {
			memcpy(l->carry, buf + off, n - off);
			l->ncarry = n - off;
		}
	}
}

static int drain(struct loop *l)
{
	int err = l->be->consume(l->be, deliver, l);

	return err ? err : read_funcs(l);
}

static int tick(struct loop *l)
{
	double now;
	int err = l->be->refresh(l->be);

	if (err)
		return err;
	now = mp_clock__now_epoch();
	for (size_t i = 0; i < l->nsinks; i++) {
		err = l->sinks[i]->tick(l->sinks[i], l->be, now);
		if (err)
			return err;
	}
	return 0;
}

/* Has the root ended? Only for the no-pidfd fallback. */
static int root_ended(struct loop *l)
{
	pid_t root = l->o.root;

	if (l->o.reap) {
		int st;
		pid_t w = waitpid(root, &st, WNOHANG);

		if (w == root) {
			l->res->status = st;
			return 1;
		}
		return w < 0 && errno == ECHILD;
	}
	return kill(root, 0) && errno == ESRCH;
}

static int wait_once(struct loop *l, double until)
{
	struct pollfd pfd[3 + MP_LOOP_MAX_SOURCES];
	nfds_t first_src;
	struct timespec ts;
	nfds_t n = 0;
	double left = until - mono_s();
	int bfd = l->be->fd(l->be), r;

	if (l->o.root > 0 && l->pidfd < 0 && left > ROOT_CHECK_S)
		left = ROOT_CHECK_S;
	if (left < 0)
		left = 0;
	ts.tv_sec = (time_t)left;
	ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	if (bfd >= 0)
		pfd[n++] = (struct pollfd){ .fd = bfd, .events = POLLIN };
	if (l->o.func_fd >= 0)
		pfd[n++] = (struct pollfd){ .fd = l->o.func_fd, .events = POLLIN };
	if (l->pidfd >= 0)
		pfd[n++] = (struct pollfd){ .fd = l->pidfd, .events = POLLIN };
	first_src = n;
	for (size_t i = 0; i < l->o.nsources; i++)
		pfd[n++] = (struct pollfd){ .fd = l->o.sources[i]->fd, .events = POLLIN };
	r = ppoll(pfd, n, &ts, l->o.sigmask);
	if (r < 0 && errno != EINTR)
		return -errno;
	if (r > 0 && l->pidfd >= 0 &&
	    (pfd[first_src - 1].revents & (POLLIN | POLLHUP | POLLERR)))
		l->root_gone = 1;
	for (size_t i = 0; r > 0 && i < l->o.nsources; i++) {
		int e;

		if (!(pfd[first_src + i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		e = l->o.sources[i]->ready(l->o.sources[i]);
		if (e < 0)
			return e;
		if (e > 0)
			l->quit = 1;
	}
	if (l->o.func_fd >= 0) {
		/* every writer closed the pipe: stop polling it (it would stay readable) */
		nfds_t fi = bfd >= 0 ? 1 : 0;

		if ((pfd[fi].revents & POLLHUP) && !(pfd[fi].revents & POLLIN))
			l->o.func_fd = -1;
	}
	return 0;
}

int mp_loop__run(struct mp_backend *be, struct mp_sink *const *sinks, size_t nsinks,
		 const struct mp_loop_opts *opts, struct mp_loop_result *res)
{
	struct loop l = { .be = be, .sinks = sinks, .nsinks = nsinks, .o = *opts, .res = res,
			  .pidfd = -1 };
	struct mp_loop_opts *o = &l.o;
	double start, next_tick;
	int err;

	memset(res, 0, sizeof(*res));
	res->status = -1;
	if (!(o->interval > 0) || o->nsources > MP_LOOP_MAX_SOURCES)
		return -EINVAL;
	err = mp_clock__init(&l.clock);
	if (err)
		return err;
	if (o->func_fd >= 0) {
		int fl = fcntl(o->func_fd, F_GETFL);

		if (fl < 0 || fcntl(o->func_fd, F_SETFL, fl | O_NONBLOCK))
			return -errno;
	}
	if (o->root > 0) {
		l.pidfd = (int)syscall(SYS_pidfd_open, o->root, 0);
		if (l.pidfd < 0 && errno == ESRCH)
			l.root_gone = 1;
		else if (l.pidfd < 0 && errno != ENOSYS && errno != EPERM)
			return -errno;
	}
	start = mono_s();
	next_tick = start;
	for (;;) {
		double now, until;

		if (l.quit || (o->interrupted && o->interrupted(o->ctx))) {
			res->end = MP_LOOP_INTERRUPTED;
			break;
		}
		if (o->root > 0 && (l.root_gone || (l.pidfd < 0 && root_ended(&l)))) {
			res->end = MP_LOOP_ROOT_EXITED;
			break;
		}
		now = mono_s();
		if (o->timeout > 0 && now - start >= o->timeout) {
			res->end = MP_LOOP_TIMEOUT;
			break;
		}
		if (now >= next_tick) {
			err = tick(&l);
			if (err)
				goto out;
			next_tick += o->interval;
			if (next_tick <= now)
				next_tick = now + o->interval; /* we were late: skip, do not burst */
		}
		until = next_tick;
		if (o->timeout > 0 && start + o->timeout < until)
			until = start + o->timeout;
		err = wait_once(&l, until);
		if (!err)
			err = drain(&l);
		if (err)
			goto out;
	}
	res->end_mono = mono_s();
	if (res->end == MP_LOOP_ROOT_EXITED && o->reap && res->status == -1) {
		int st;
		pid_t w;

		do
			w = waitpid(o->root, &st, 0);
		while (w < 0 && errno == EINTR);
		if (w == o->root)
			res->status = st;
	}
	/* what the sources still hold: the root's last records come just before its end */
	err = drain(&l);
	for (size_t i = 0; !err && i < nsinks; i++)
		err = sinks[i]->finish(sinks[i], be);
out:
	if (!res->end_mono)
		res->end_mono = mono_s();
	if (l.pidfd >= 0)
		close(l.pidfd);
	return err;
}

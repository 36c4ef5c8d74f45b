/* meter.c - the meters other than plain RSS (see meter.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hook.h"
#include "meter.h"
#include "procwalk.h"

/* Sampled peak registers, one per meter, per thread (like rss.h's statm one). */
static _Thread_local uint64_t tpeak[MP_METER_SLOTS];

/* tracemalloc.get_traced_memory and, from 3.9 on, tracemalloc.reset_peak. */
static PyObject *tm_get, *tm_reset;

/* /proc/self/smaps_rollup (or smaps), opened once; -1 until then. */
static int self_smaps_fd = -1;
static int self_smaps_rollup = 1;
static int atfork_done;

/* A forked child must not read its parent's smaps through the inherited fd. */
static void meter_atfork_child(void)
{
	if (self_smaps_fd >= 0)
		close(self_smaps_fd);
	self_smaps_fd = -1;
	memset(tpeak, 0, sizeof(tpeak));
}

int mp_meter_parse(PyObject *backend, int include_children)
{
	const char *name = NULL;
	int mk;

	if (backend && backend != Py_None) {
		if (!PyUnicode_Check(backend)) {
			PyErr_Format(PyExc_TypeError, "backend must be a str or None, not %.80s",
				     Py_TYPE(backend)->tp_name);
			return -1;
		}
		name = PyUnicode_AsUTF8(backend);
		if (!name)
			return -1;
	}
	if (!name || !strcmp(name, "psutil") || !strcmp(name, "posix")) {
		mk = MP_METER_RSS;
	} else if (!strcmp(name, "psutil_pss")) {
		mk = MP_METER_PSS;
	} else if (!strcmp(name, "psutil_uss")) {
		mk = MP_METER_USS;
	} else if (!strcmp(name, "tracemalloc")) {
		mk = MP_METER_TRACEMALLOC;
	} else {
		PyErr_Format(PyExc_ValueError,
			     "unknown backend '%s': expected psutil, psutil_pss, psutil_uss, "
			     "posix or tracemalloc", name);
		return -1;
	}
	if (mk == MP_METER_TRACEMALLOC) {
		/* tracemalloc follows Python's allocators, not processes. */
		include_children = 0;
		if (!tm_get) {
			PyObject *tm = PyImport_ImportModule("tracemalloc");

			if (!tm)
				return -1;
			tm_get = PyObject_GetAttrString(tm, "get_traced_memory");
			tm_reset = PyObject_GetAttrString(tm, "reset_peak");
			if (!tm_reset)
				PyErr_Clear();	/* 3.8: the peak is sampled */
			Py_DECREF(tm);
			if (!tm_get) {
				Py_CLEAR(tm_reset);
				return -1;
			}
		}
	}
	if (!atfork_done) {
		if (pthread_atfork(NULL, NULL, meter_atfork_child) != 0) {
			PyErr_NoMemory();
			return -1;
		}
		atfork_done = 1;
	}
	return mk | (include_children ? MP_METER_CHILDREN : 0);
}

/* ---- smaps ------------------------------------------------------------------ */

/* Read all of fd from offset 0 into *buf (grown as needed, NUL-terminated). */
static int read_all(int fd, char **buf, size_t *cap)
{
	size_t len = 0;

	for (;;) {
		ssize_t n;

		if (len + 1 >= *cap) {
			size_t ncap = *cap ? *cap * 2 : 4096;
			char *nb = realloc(*buf, ncap);

			if (!nb)
				return -ENOMEM;
			*buf = nb;
			*cap = ncap;
		}
		n = pread(fd, *buf + len, *cap - len - 1, (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	(*buf)[len] = '\0';
	return 0;
}

static int open_smaps(long pid, int *rollup)
{
	char path[64];
	int fd;

	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%ld/smaps_rollup", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/smaps_rollup");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	*rollup = 1;
	if (fd < 0 && errno == ENOENT) {
		/* Linux < 4.14 has no rollup; a gone process has neither. */
		path[strlen(path) - strlen("_rollup")] = '\0';
		fd = open(path, O_RDONLY | O_CLOEXEC);
		*rollup = 0;
	}
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	return fd;
}

int mp_smaps_read(long pid, int kind, uint64_t *out)
{
	static _Thread_local char *buf;
	static _Thread_local size_t cap;
	int fd, err, rollup;

	if (pid <= 0 || pid == (long)getpid()) {
		if (self_smaps_fd < 0) {
			fd = open_smaps(0, &rollup);
			if (fd < 0)
				return fd;
			self_smaps_fd = fd;
			self_smaps_rollup = rollup;
		}
		err = read_all(self_smaps_fd, &buf, &cap);
		if (err < 0)
			return err;
	} else {
		fd = open_smaps(pid, &rollup);
		if (fd < 0)
			return fd;
		err = read_all(fd, &buf, &cap);
		close(fd);
		if (err < 0)
			return err == -ENOENT ? -ESRCH : err;
	}
	*out = mp_smaps_sum(buf, kind == MP_METER_PSS);
	return 0;
}

/* ---- descendants ------------------------------------------------------------- */

/* RSS of pid in bytes from /proc/PID/statm; 0 when it is gone. */
static uint64_t statm_rss(long pid)
{
	char path[64], buf[128];
	unsigned long long size, res;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/statm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu", &size, &res) != 2)
		return 0;
	return res * rss_g.page_size;
}

uint64_t mp_children_sum(int kind)
{
	struct mp_pidlist l = { NULL, 0, 0 };
	uint64_t total = 0;
	size_t i;

	/* out of memory: the children found so far */
	(void)mp_proc_add_descendants(&l, getpid());
	for (i = 0; i < l.n; i++) {
		uint64_t v = 0;

		if (kind == MP_METER_RSS)
			v = statm_rss(l.v[i]);
		else if (mp_smaps_read(l.v[i], kind, &v) < 0)
			v = 0;
		total += v;
	}
	mp_pidlist__release(&l);
	return total;
}

/* ---- the slow meters ----------------------------------------------------------- */

#if PY_VERSION_HEX < 0x03090000
#define PyObject_CallNoArgs(f) PyObject_CallObject((f), NULL)
#endif

/* (current, peak) of tracemalloc in bytes; (0, 0) when it cannot say. */
static void tm_values(uint64_t *cur, uint64_t *peak)
{
	mp_err saved = mp_err_save();
	PyObject *r = tm_get ? PyObject_CallNoArgs(tm_get) : NULL;

	*cur = *peak = 0;
	if (r && PyTuple_Check(r) && PyTuple_GET_SIZE(r) == 2) {
		*cur = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(r, 0));
		*peak = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(r, 1));
		if (PyErr_Occurred())
			*cur = *peak = 0;
	}
	Py_XDECREF(r);
	PyErr_Clear();
	mp_err_restore(saved);
}

uint64_t mp_meter_now_slow(int mk)
{
	int kind = mk & MP_METER_KIND_MASK;
	uint64_t v = 0, peak;

	switch (kind) {
	case MP_METER_RSS:
		v = rss_now();
		break;
	case MP_METER_PSS:
	case MP_METER_USS:
		if (mp_smaps_read(0, kind, &v) < 0)
			v = 0;
		break;
	case MP_METER_TRACEMALLOC:
		tm_values(&v, &peak);
		break;
	}
	if (mk & MP_METER_CHILDREN)
		v += mp_children_sum(kind);
	if (v > tpeak[mk])
		tpeak[mk] = v;
	return v;
}

void mp_meter_mark_slow(int mk, uint64_t now)
{
	tpeak[mk] = now;
	if (mk == MP_METER_TRACEMALLOC && tm_reset) {
		mp_err saved = mp_err_save();
		PyObject *r = PyObject_CallNoArgs(tm_reset);

		Py_XDECREF(r);
		PyErr_Clear();
		mp_err_restore(saved);
	}
}

uint64_t mp_meter_peak_slow(int mk)
{
	if (mk == MP_METER_TRACEMALLOC && tm_reset) {
		uint64_t cur, peak;

		tm_values(&cur, &peak);
		return peak > cur ? peak : cur;
	}
	return tpeak[mk];
}

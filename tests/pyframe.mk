# Reading CPython stacks from BPF (bpf/pyframe.bpf.h, user/py*.c); included by the Makefile.
#
#   make test-pyframe     the layout table against every installed interpreter's headers, then
#                         the end-to-end tests: a test BPF object attached to running
#                         interpreters (root; skipped with the reason otherwise)
#   make bench-pyframe    the per-event cost of the walk (root), bench/bench_pyframe.py
#
# The test object and its driver live under tests/pyframe/, apart from the production programs
# in bpf/.

PYFRAME_OUT := $(OUT)/tests/pyframe
PYFRAME_ATTACH := $(PYFRAME_OUT)/pyframe_attach

.PHONY: test-pyframe bench-pyframe
all: $(PYFRAME_ATTACH)

$(PYFRAME_OUT):
	$(Q)mkdir -p $@

$(PYFRAME_OUT)/pyframe_test.bpf.o: tests/pyframe/pyframe_test.bpf.c tests/pyframe/pyframe_test.h \
		bpf/pyframe.bpf.h bpf/pyframe.h vmlinux/$(ARCH)/vmlinux.h | $(PYFRAME_OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -Itests/pyframe -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp && rm -f $@.tmp

$(PYFRAME_OUT)/pyframe_test.skel.h: $(PYFRAME_OUT)/pyframe_test.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name pyframe_test_bpf > $@

$(PYFRAME_ATTACH): tests/pyframe/pyframe_attach.c $(PYFRAME_OUT)/pyframe_test.skel.h $(LIBMPROF)
	$(call msg,CC,$@)
	$(Q)$(CC) $(MP_CFLAGS) -I$(PYFRAME_OUT) -Itests/pyframe $(CFLAGS) $(MP_LDFLAGS) $(LDFLAGS) \
		-o $@ $< $(LIBMPROF) $(LIBS)

test-pyframe: $(PYFRAME_ATTACH)
	$(Q)PYFRAME_ATTACH=$(abspath $(PYFRAME_ATTACH)) PYFRAME_CC='$(CC)' \
		$(TESTPY) -m pytest -q -p no:cacheprovider tests/pyframe

bench-pyframe: $(PYFRAME_ATTACH)
	$(Q)$(TESTPY) bench/bench_pyframe.py --attach $(abspath $(PYFRAME_ATTACH))

TEST_SUITES += test-pyframe

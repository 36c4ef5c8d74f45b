# mprof-bpf: an eBPF-assisted memory profiler compatible with memory_profiler.
#
#   make            build everything under $(OUT)
#   make deps       install the Debian packages the build and the tests need
#   make test       deps + build + every test (unit, real kernel, files, pyhook)
#   make demo       deps + build + `mprof run` on the bundled example
#   make asan       unit tests under AddressSanitizer/UBSan
#   make valgrind   unit tests under valgrind
#   make bench      the overhead benchmark (bench/README.md)
#   make install    PREFIX=/usr/local DESTDIR= (mprof, its man pages, and the
#                   memory_profiler package for every Python in PYTHONS)
#   make V=1        show the commands

.DELETE_ON_ERROR:
.SUFFIXES:
.SECONDARY:
.DEFAULT_GOAL := all

OUT      ?= build
CLANG    ?= clang
BPFTOOL  ?= bpftool
PYTHON   ?= python3
PROTOC_C ?= protoc-c
# The interpreter that runs the test suites (Debian's, which has pytest).
TESTPY   ?= /usr/bin/python3
PREFIX   ?= /usr/local
# The release, for the package metadata and the man pages (mprof/main.c has its own copy).
MPROF_VERSION ?= 0.1.0
BINDIR   ?= $(PREFIX)/bin
ARCH     ?= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

ifeq ($(V),1)
Q :=
msg =
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

CAIRO_CFLAGS := $(shell pkg-config --cflags cairo 2>/dev/null)
MHD_CFLAGS := $(shell pkg-config --cflags libmicrohttpd 2>/dev/null)

# Our flags come first; the user's CFLAGS/LDFLAGS are appended, never replaced.
MP_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -O2 -g -D_GNU_SOURCE -MMD -MP \
	-I$(OUT) -Iuser -Ibpf $(CAIRO_CFLAGS) $(MHD_CFLAGS) $(EXTRA_CFLAGS)
MP_LDFLAGS := $(EXTRA_LDFLAGS)
# The live view (mprof/live.c) draws with ncurses' wide-character library.
CURSES_LIBS := $(shell pkg-config --libs ncursesw 2>/dev/null || echo -lncursesw -ltinfo)
LIBS := -lbpf -lelf -lz -lm $(shell pkg-config --libs cairo 2>/dev/null) \
	$(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd) $(CURSES_LIBS) \
	$(shell pkg-config --libs libprotobuf-c 2>/dev/null || echo -lprotobuf-c)

# The sanitizer build: ASan, UBSan and float-to-integer overflow (not part of UBSan's default
# set), every finding fatal. `make asan` runs the unit tests under it, test-files and
# test-kernel-asan the command-line tests.
ASAN_CFLAGS := -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
ASAN_LDFLAGS := -fsanitize=address,undefined,float-cast-overflow

# libbpf's usdt.bpf.h includes <linux/errno.h>, whose <asm/...> lives in the multiarch folder.
BPF_SYS_INCLUDES := $(shell $(CC) -print-multiarch 2>/dev/null | sed 's|^..*|-idirafter /usr/include/&|')
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 $(BPF_SYS_INCLUDES) -D__TARGET_ARCH_$(ARCH) -Ivmlinux/$(ARCH) -Ibpf \
	-Wall -Wno-unused-function $(EXTRA_BPF_CFLAGS)

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,$(OUT)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS      := $(patsubst bpf/%.bpf.c,$(OUT)/%.skel.h,$(BPF_SRCS))

USER_SRCS  := $(wildcard user/*.c)
# The protobuf-c code of our schemas (user/*.proto; the pprof writer's is user/profile.proto),
# generated into $(OUT) and archived with the rest of user/.
PROTOS     := $(wildcard user/*.proto)
PROTO_HDRS := $(patsubst user/%.proto,$(OUT)/%.pb-c.h,$(PROTOS))
PROTO_OBJS := $(patsubst user/%.proto,$(OUT)/obj/gen/%.pb-c.o,$(PROTOS))
USER_OBJS  := $(patsubst %.c,$(OUT)/obj/%.o,$(USER_SRCS)) $(PROTO_OBJS)
LIBMPROF   := $(OUT)/libmprof.a

MPROF_SRCS := $(wildcard mprof/*.c)
MPROF_OBJS := $(patsubst %.c,$(OUT)/obj/%.o,$(MPROF_SRCS))
MPROF      := $(OUT)/mprof

UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))
TARGET_SRCS := $(wildcard tests/targets/*.c)
TARGET_BINS := $(patsubst tests/targets/%.c,$(OUT)/tests/targets/%,$(TARGET_SRCS))

.PHONY: all deps test test-unit test-kernel test-kernel-asan demo asan valgrind bench install \
	uninstall clean vmlinux check-deps

all: $(MPROF) $(TARGET_BINS)

# ---- Debian packages ----------------------------------------------------------
DEB_PKGS := clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config \
	libcmocka-dev libcairo2-dev systemtap-sdt-dev python3-dev python3-pytest \
	python3-psutil python3-memory-profiler python3-matplotlib valgrind \
	libclang-rt-14-dev util-linux procps libmicrohttpd-dev prometheus libncurses-dev tmux \
	chromium ipython3 python3-ipykernel jupyter-nbconvert groff-base austin python3-scalene \
	protobuf-c-compiler libprotobuf-c-dev protobuf-compiler python3-protobuf golang-go python3-numpy

deps:
	$(Q)missing=$$(for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "make deps: missing packages: $$missing (run as root: apt-get install $$missing)" >&2; exit 1; \
		fi; \
		echo "  DEPS     $$missing"; \
		apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	fi

# ---- BPF ----------------------------------------------------------------------
$(OUT)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) vmlinux/$(ARCH)/vmlinux.h | $(OUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp && rm -f $@.tmp

$(OUT)/%.skel.h: $(OUT)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

# The vendored vmlinux.h is regenerated only on request, never implicitly.
vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/$(ARCH)/vmlinux.h

# ---- userspace ----------------------------------------------------------------
$(OUT)/obj/user/%.o: user/%.c $(SKELS) $(PROTO_HDRS) | $(OUT)/obj/user
	$(call msg,CC,$@)
	$(Q)$(CC) $(MP_CFLAGS) $(CFLAGS) -c $< -o $@

# A pattern rule with two targets: one run of protoc-c makes both.
$(OUT)/%.pb-c.c $(OUT)/%.pb-c.h: user/%.proto | $(OUT)/obj/gen
	$(call msg,PROTOC-C,$@)
	$(Q)$(PROTOC_C) --proto_path=user --c_out=$(OUT) $<

# protoc-c's output passes our warnings (checked with gcc 12 and clang 14); a newer protoc-c
# that did not would get its -Wno-... here, on these objects alone.
$(OUT)/obj/gen/%.o: $(OUT)/%.c | $(OUT)/obj/gen
	$(call msg,CC,$@)
	$(Q)$(CC) $(MP_CFLAGS) $(CFLAGS) -c $< -o $@

$(LIBMPROF): $(USER_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(OUT)/obj/mprof/%.o: mprof/%.c | $(OUT)/obj/mprof
	$(call msg,CC,$@)
	$(Q)$(CC) $(MP_CFLAGS) $(CFLAGS) -c $< -o $@

$(MPROF): $(MPROF_OBJS) $(LIBMPROF)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(MP_LDFLAGS) $(LDFLAGS) -o $@ $(MPROF_OBJS) $(LIBMPROF) \
		$(LIBS)

# ---- tests --------------------------------------------------------------------
$(OUT)/tests/test_%: tests/unit/test_%.c $(LIBMPROF) | $(OUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(MP_CFLAGS) -Itests/unit $(CFLAGS) $(MP_LDFLAGS) $(LDFLAGS) -o $@ $< \
		$(LIBMPROF) -lcmocka $(LIBS)

# Test targets are plain programs with known memory behaviour.
$(OUT)/tests/targets/%: tests/targets/%.c | $(OUT)/tests/targets
	$(call msg,CC,$@)
	$(Q)$(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -o $@ $<

test-unit: $(UNIT_BINS)
	$(Q)rc=0; for t in $(UNIT_BINS); do $$t || rc=1; done; exit $$rc

test-kernel: $(MPROF) $(TARGET_BINS)
	$(Q)MPROF=$(abspath $(MPROF)) TARGETS=$(abspath $(OUT)/tests/targets) \
		$(TESTPY) -m pytest -q -p no:cacheprovider tests/kernel

# Sub-suites owned by other parts of the tree add themselves to TEST_SUITES.
TEST_SUITES := test-unit asan test-kernel test-kernel-asan
-include mprof/report/report.mk
-include tests/files.mk
-include tests/exporter.mk
-include tests/live.mk
-include tests/pprof.mk
-include tests/pyframe.mk
-include pyhook/pyhook.mk
-include mprof/man/man.mk

test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)rc=0; for s in $(TEST_SUITES); do \
		echo "== $$s"; $(MAKE) --no-print-directory $$s || rc=1; \
	done; \
	if [ $$rc = 0 ]; then echo "make test: all suites passed"; \
	else echo "make test: FAILED" >&2; fi; exit $$rc

asan:
	$(Q)$(MAKE) --no-print-directory OUT=$(OUT)/asan \
		EXTRA_CFLAGS='$(ASAN_CFLAGS)' EXTRA_LDFLAGS='$(ASAN_LDFLAGS)' test-unit

# The real-kernel command-line tests again, against the sanitizer build of mprof.
test-kernel-asan:
	$(Q)$(MAKE) --no-print-directory OUT=$(OUT)/asan \
		EXTRA_CFLAGS='$(ASAN_CFLAGS)' EXTRA_LDFLAGS='$(ASAN_LDFLAGS)' $(OUT)/asan/mprof
	$(Q)MPROF=$(abspath $(OUT)/asan/mprof) TARGETS=$(abspath $(OUT)/tests/targets) \
		ASAN_OPTIONS=detect_leaks=1 \
		$(TESTPY) -m pytest -q -p no:cacheprovider tests/kernel/test_run.py \
		tests/kernel/test_hardening.py
	$(Q)MPROF=$(abspath $(OUT)/asan/mprof) ASAN_OPTIONS=detect_leaks=1 \
		$(TESTPY) -m pytest -q -p no:cacheprovider tests/pyframe/test_lines.py

valgrind: $(UNIT_BINS)
	$(Q)rc=0; for t in $(UNIT_BINS); do \
		valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite $$t >/dev/null || rc=1; \
	done; exit $$rc

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)sh examples/demo.sh $(abspath $(MPROF))

bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(TESTPY) bench/bench_run.py --mprof $(abspath $(MPROF))

# The CPython hook (pyhook/pyhook.mk) and the manual pages (mprof/man/man.mk)
# add their own steps to install and uninstall.
install: all
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(MPROF) $(DESTDIR)$(BINDIR)/mprof

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/mprof

clean:
	rm -rf $(OUT)

$(OUT)/bpf $(OUT)/obj/user $(OUT)/obj/gen $(OUT)/obj/mprof $(OUT)/tests $(OUT)/tests/targets:
	$(Q)mkdir -p $@

-include $(USER_OBJS:.o=.d) $(MPROF_OBJS:.o=.d)

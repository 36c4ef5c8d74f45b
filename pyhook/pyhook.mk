# pyhook/pyhook.mk - the CPython hook: the `memory_profiler` package and its
# C extension, built for every interpreter in PYTHONS into
# $(OUT)/python/memory_profiler/ (one _mprof_hook<EXT_SUFFIX> per ABI).
#
#   make pyhook                 build for every Python found
#   make pyhook PYTHONS=python3.12
#   make test-pyhook            tests/pyhook/ against every built Python
#   make install                the package into $(PYLIBDIR), where mprof finds
#                               it, and a .pth file naming that folder into the
#                               site-packages of every interpreter in
#                               INSTALL_PYTHONS (default: PYTHONS), so that
#                               `import memory_profiler` works there as after
#                               `pip install` (importlib.metadata included,
#                               and the pytest plugin's pytest11 entry point),
#                               byte-compiled by each of them

# user/procwalk.c: the /proc walks the /proc backend uses too (plain libc)
PYHOOK_SRCS  := $(wildcard pyhook/*.c) user/procwalk.c
PYHOOK_HDRS  := $(wildcard pyhook/*.h) user/procwalk.h
PYHOOK_PKG   := $(wildcard pyhook/memory_profiler/*.py)
PYHOOK_DIR   := $(OUT)/python/memory_profiler
PYHOOK_STAMP := $(OUT)/pyhook/built.stamp
# The package metadata: memory_profiler's API version, ours as a local label.
PYHOOK_VERSION  := 0.61.0+mprofbpf.$(MPROF_VERSION)
PYHOOK_DISTINFO := memory_profiler-$(PYHOOK_VERSION).dist-info
# The pytest plugin's registration, a distribution of its own (see dist-info.sh).
PYHOOK_PLUGIN_DISTINFO := mprof_bpf_pytest-$(MPROF_VERSION).dist-info

# Debian's python3 and pyenv's 3.8-3.13, found when first needed (a
# recursively expanded variable, so other targets never pay for it).
PYHOOK_PYENV_ROOT = $(shell pyenv root 2>/dev/null)
PYHOOK_FOUND = $(wildcard /usr/bin/python3) \
	$(if $(PYHOOK_PYENV_ROOT),$(foreach v,8 9 10 11 12 13,\
		$(lastword $(sort $(wildcard $(PYHOOK_PYENV_ROOT)/versions/3.$(v).*/bin/python3)))))
PYTHONS ?= $(strip $(PYHOOK_FOUND))

PYHOOK_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -O2 -g -fPIC -fvisibility=hidden -pthread -D_GNU_SOURCE -Iuser

.PHONY: pyhook test-pyhook pyhook-pythons-check
all: pyhook
pyhook: $(PYHOOK_STAMP)

# Rebuild when the list of interpreters changes, not on every run.
$(OUT)/pyhook/pythons.txt: pyhook-pythons-check
	@mkdir -p $(@D)
	@echo '$(PYTHONS)' | cmp -s - $@ 2>/dev/null || echo '$(PYTHONS)' > $@

$(PYHOOK_STAMP): $(PYHOOK_SRCS) $(PYHOOK_HDRS) $(PYHOOK_PKG) pyhook/pyhook.mk \
		pyhook/build-ext.sh pyhook/dist-info.sh $(OUT)/pyhook/pythons.txt
	$(Q)mkdir -p $(PYHOOK_DIR)
	$(Q)PYHOOK_V='$(V)' sh pyhook/build-ext.sh '$(PYHOOK_DIR)' '$(CC)' \
		'$(PYHOOK_CFLAGS) $(EXTRA_CFLAGS) $(CFLAGS)' '$(EXTRA_LDFLAGS) $(LDFLAGS)' \
		'$(PYHOOK_SRCS)' $(PYTHONS)
	$(Q)cp $(PYHOOK_PKG) $(PYHOOK_DIR)/
	$(Q)rm -rf $(OUT)/python/memory_profiler-*.dist-info $(OUT)/python/mprof_bpf_pytest-*.dist-info
	$(Q)sh pyhook/dist-info.sh '$(OUT)/python' '$(PYHOOK_VERSION)' '$(MPROF_VERSION)'
	$(Q)touch $@

test-pyhook: $(PYHOOK_STAMP) $(MPROF)
	$(Q)MPROF_PYTHONS='$(PYTHONS)' MPROF_PYTHONPATH='$(abspath $(OUT)/python)' \
		MPROF='$(abspath $(MPROF))' MPROF_SRC='$(abspath .)' \
		$(TESTPY) -m pytest -q -p no:cacheprovider tests/pyhook

# ---- install ------------------------------------------------------------------
# The package goes where mprof looks for it: <bindir>/../lib/mprof-bpf/python.
PYLIBDIR ?= $(PREFIX)/lib/mprof-bpf/python
INSTALL_PYTHONS ?= $(PYTHONS)

.PHONY: install-pyhook uninstall-pyhook
install: install-pyhook
# Byte-compiled by each interpreter, as Debian's py3compile does: a user who cannot write the
# folder would otherwise compile the package at every import (checked-hash: the .pyc files stay
# valid when the tree is copied without its times, and are not used once a source changes).
install-pyhook: $(PYHOOK_STAMP)
	install -d $(DESTDIR)$(PYLIBDIR)/memory_profiler $(DESTDIR)$(PYLIBDIR)/$(PYHOOK_DISTINFO) \
		$(DESTDIR)$(PYLIBDIR)/$(PYHOOK_PLUGIN_DISTINFO)
	install -m 0644 $(PYHOOK_DIR)/*.py $(PYHOOK_DIR)/*.so $(DESTDIR)$(PYLIBDIR)/memory_profiler/
	install -m 0644 $(OUT)/python/$(PYHOOK_DISTINFO)/* $(DESTDIR)$(PYLIBDIR)/$(PYHOOK_DISTINFO)/
	install -m 0644 $(OUT)/python/$(PYHOOK_PLUGIN_DISTINFO)/* \
		$(DESTDIR)$(PYLIBDIR)/$(PYHOOK_PLUGIN_DISTINFO)/
	$(Q)for py in $(INSTALL_PYTHONS); do \
		site=$$($$py -c 'import sysconfig; print(sysconfig.get_path("purelib"))') && [ -n "$$site" ] || { \
			echo "install: cannot find the site-packages of '$$py'" >&2; exit 1; }; \
		echo "$$py -m compileall -q --invalidation-mode checked-hash $(DESTDIR)$(PYLIBDIR)/memory_profiler"; \
		$$py -m compileall -q --invalidation-mode checked-hash -d '$(PYLIBDIR)/memory_profiler' \
			'$(DESTDIR)$(PYLIBDIR)/memory_profiler' >/dev/null || exit 1; \
		echo "install -d $(DESTDIR)$$site && echo $(PYLIBDIR) > $(DESTDIR)$$site/mprof-bpf.pth"; \
		install -d "$(DESTDIR)$$site" && echo '$(PYLIBDIR)' > "$(DESTDIR)$$site/mprof-bpf.pth" || exit 1; \
	done

uninstall: uninstall-pyhook
uninstall-pyhook:
	$(Q)for py in $(INSTALL_PYTHONS); do \
		site=$$($$py -c 'import sysconfig; print(sysconfig.get_path("purelib"))') && \
		rm -f "$(DESTDIR)$$site/mprof-bpf.pth"; \
	done
	rm -rf $(DESTDIR)$(PYLIBDIR)

TEST_SUITES += test-pyhook

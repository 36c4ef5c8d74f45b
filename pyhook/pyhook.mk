# pyhook/pyhook.mk - the CPython hook: the `memory_profiler` package and its
# C extension, built for every interpreter in PYTHONS into
# $(OUT)/python/memory_profiler/ (one _mprof_hook<EXT_SUFFIX> per ABI).
#
#   make pyhook                 build for every Python found
#   make pyhook PYTHONS=python3.12
#   make test-pyhook            tests/pyhook/ against every built Python

PYHOOK_SRCS  := $(wildcard pyhook/*.c)
PYHOOK_HDRS  := $(wildcard pyhook/*.h)
PYHOOK_PKG   := $(wildcard pyhook/memory_profiler/*.py)
PYHOOK_DIR   := $(OUT)/python/memory_profiler
PYHOOK_STAMP := $(OUT)/pyhook/built.stamp

# Debian's python3 and pyenv's 3.8-3.13, found when first needed (a
# recursively expanded variable, so other targets never pay for it).
PYHOOK_PYENV_ROOT = $(shell pyenv root 2>/dev/null)
PYHOOK_FOUND = $(wildcard /usr/bin/python3) \
	$(if $(PYHOOK_PYENV_ROOT),$(foreach v,8 9 10 11 12 13,\
		$(lastword $(sort $(wildcard $(PYHOOK_PYENV_ROOT)/versions/3.$(v).*/bin/python3)))))
PYTHONS ?= $(strip $(PYHOOK_FOUND))

PYHOOK_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -O2 -g -fPIC -fvisibility=hidden -pthread -D_GNU_SOURCE

.PHONY: pyhook test-pyhook pyhook-pythons-check
all: pyhook
pyhook: $(PYHOOK_STAMP)

# Rebuild when the list of interpreters changes, not on every run.
$(OUT)/pyhook/pythons.txt: pyhook-pythons-check
	@mkdir -p $(@D)
	@echo '$(PYTHONS)' | cmp -s - $@ 2>/dev/null || echo '$(PYTHONS)' > $@

$(PYHOOK_STAMP): $(PYHOOK_SRCS) $(PYHOOK_HDRS) $(PYHOOK_PKG) pyhook/pyhook.mk \
		pyhook/build-ext.sh $(OUT)/pyhook/pythons.txt
	$(Q)mkdir -p $(PYHOOK_DIR)
	$(Q)PYHOOK_V='$(V)' sh pyhook/build-ext.sh '$(PYHOOK_DIR)' '$(CC)' \
		'$(PYHOOK_CFLAGS) $(EXTRA_CFLAGS) $(CFLAGS)' '$(EXTRA_LDFLAGS) $(LDFLAGS)' \
		'$(PYHOOK_SRCS)' $(PYTHONS)
	$(Q)cp $(PYHOOK_PKG) $(PYHOOK_DIR)/
	$(Q)touch $@

test-pyhook: $(PYHOOK_STAMP)
	$(Q)MPROF_PYTHONS='$(PYTHONS)' MPROF_PYTHONPATH='$(abspath $(OUT)/python)' \
		$(TESTPY) -m pytest -q -p no:cacheprovider tests/pyhook

TEST_SUITES += test-pyhook

# The file commands (plot, peak, list, clean, rm) and the .dat reader; included by the Makefile.
#
#   make test-files                     everything below, as `make test` runs it
#   make fuzz-datfile FUZZ_SECONDS=600  a longer fuzz run of the reader
#
# test-files builds mprof and the reader/plot unit tests with ASan+UBSan (the same build as
# `make asan`), runs those unit tests, runs the CLI tests (tests/files, pytest) against that
# mprof, with memory_profiler's own mprof as the reference, then fuzzes the reader briefly.

FUZZ_SECONDS ?= 20
FILES_ASAN_OUT := $(OUT)/asan
FILES_ASAN_CFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
FILES_ASAN_LDFLAGS := -fsanitize=address,undefined
FILES_UNIT := $(addprefix $(FILES_ASAN_OUT)/tests/,test_datfile test_plot)
FUZZ_DIR := $(OUT)/fuzz
FUZZ_DATFILE := $(FUZZ_DIR)/fuzz_datfile

.PHONY: test-files fuzz-datfile

$(FUZZ_DATFILE): tests/fuzz/fuzz_datfile.c user/datfile.c user/datfile.h
	$(Q)mkdir -p $(FUZZ_DIR)
	$(call msg,FUZZ-CC,$@)
	$(Q)$(CLANG) -std=gnu11 -g -O1 -D_GNU_SOURCE -Wall -Wextra -Werror -Iuser \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-o $@ tests/fuzz/fuzz_datfile.c user/datfile.c

# New inputs go to a scratch corpus under $(OUT); the seeds in tests/data stay as they are.
fuzz-datfile: $(FUZZ_DATFILE)
	$(Q)rm -rf $(FUZZ_DIR)/corpus && mkdir -p $(FUZZ_DIR)/corpus
	$(Q)$(FUZZ_DATFILE) -dict=tests/fuzz/datfile.dict -max_total_time=$(FUZZ_SECONDS) \
		-max_len=4096 -timeout=10 -rss_limit_mb=1024 -artifact_prefix=$(FUZZ_DIR)/ \
		$(FUZZ_DIR)/corpus tests/data >$(FUZZ_DIR)/log 2>&1 || { \
		tail -n 40 $(FUZZ_DIR)/log; \
		echo "fuzz-datfile: the reader failed; the input is saved under $(FUZZ_DIR)/" >&2; \
		exit 1; }
	$(Q)printf '  FUZZ     %s\n' "$$(grep -E '^Done' $(FUZZ_DIR)/log)"

test-files:
	$(Q)$(MAKE) --no-print-directory OUT=$(FILES_ASAN_OUT) EXTRA_CFLAGS='$(FILES_ASAN_CFLAGS)' \
		EXTRA_LDFLAGS='$(FILES_ASAN_LDFLAGS)' $(FILES_ASAN_OUT)/mprof $(FILES_UNIT)
	$(Q)rc=0; for t in $(FILES_UNIT); do $$t || rc=1; done; exit $$rc
	$(Q)MPROF=$(abspath $(FILES_ASAN_OUT)/mprof) TESTPY=$(TESTPY) \
		$(TESTPY) -m pytest -q -p no:cacheprovider tests/files
	$(Q)$(MAKE) --no-print-directory fuzz-datfile

TEST_SUITES += test-files

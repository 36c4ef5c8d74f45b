# The pprof export of line attribution (user/pprof.c); included by the Makefile.
#
#   make test-pprof    the writer's unit tests, then tests/pprof (pytest): files written by
#                      pprof_driver from given stacks, decoded by Python's protobuf (a module
#                      protoc generates from user/profile.proto at test time) and read by
#                      `go tool pprof`; each reader that is not installed skips with the reason
#
# Everything runs on the ASan/UBSan build (the same as `make asan`).

PPROF_ASAN_OUT := $(OUT)/asan
PPROF_DRIVER := $(OUT)/tests/pprof_driver

.PHONY: test-pprof

$(PPROF_DRIVER): tests/pprof/pprof_driver.c $(LIBMPROF) | $(OUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(MP_CFLAGS) $(CFLAGS) $(MP_LDFLAGS) $(LDFLAGS) -o $@ $< $(LIBMPROF) $(LIBS)

test-pprof:
	$(Q)$(MAKE) --no-print-directory OUT=$(PPROF_ASAN_OUT) EXTRA_CFLAGS='$(ASAN_CFLAGS)' \
		EXTRA_LDFLAGS='$(ASAN_LDFLAGS)' $(PPROF_ASAN_OUT)/tests/test_pprof \
		$(PPROF_ASAN_OUT)/tests/pprof_driver
	$(Q)$(PPROF_ASAN_OUT)/tests/test_pprof
	$(Q)ASAN_OPTIONS=detect_leaks=1 PPROF_DRIVER=$(abspath $(PPROF_ASAN_OUT)/tests/pprof_driver) \
		PROFILE_PROTO=$(abspath user/profile.proto) \
		$(TESTPY) -m pytest -q -p no:cacheprovider tests/pprof

TEST_SUITES += test-pprof

-include $(PPROF_DRIVER).d

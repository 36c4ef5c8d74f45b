# The live view of `mprof fleet` (mprof/live.c); included by the Makefile.
#
#   make test-live     the view in a real terminal (tmux, 80x24) and in plain-line mode
#
# The driver (tests/live/live_driver.c) runs the view on a synthetic fleet inside the real
# recording loop. It is built with ASan+UBSan (the `make asan` build), so the tests also catch
# memory errors of the view; the tests (tests/live, pytest) drive it through tmux send-keys and
# read the screen with capture-pane. Without tmux they are skipped with the reason.

LIVE_ASAN_OUT := $(OUT)/asan
LIVE_DRIVER := $(OUT)/tests/live_driver

.PHONY: test-live

$(OUT)/tests/live_driver: tests/live/live_driver.c $(OUT)/obj/mprof/live.o $(LIBMPROF) | $(OUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(MP_CFLAGS) -Improf $(CFLAGS) $(MP_LDFLAGS) $(LDFLAGS) -o $@ $< \
		$(OUT)/obj/mprof/live.o $(LIBMPROF) $(LIBS)

test-live:
	$(Q)$(MAKE) --no-print-directory OUT=$(LIVE_ASAN_OUT) EXTRA_CFLAGS='$(ASAN_CFLAGS)' \
		EXTRA_LDFLAGS='$(ASAN_LDFLAGS)' $(LIVE_ASAN_OUT)/tests/live_driver
	$(Q)LIVE_DRIVER=$(abspath $(LIVE_ASAN_OUT)/tests/live_driver) \
		$(TESTPY) -m pytest -q -p no:cacheprovider tests/live

TEST_SUITES += test-live

-include $(OUT)/tests/live_driver.d

# mprof/man/man.mk - the manual pages: mprof.1 and one mprof-<command>.1 per
# command. A new page dropped here is built, installed and checked by the
# tests (tests/pyhook/test_install.py: it renders without warnings and names
# every option of `mprof <command> --help`). @VERSION@ becomes MPROF_VERSION.
#
#   make man                    $(OUT)/man/man1/*.1
#   make install                also installs them into $(MANDIR)/man1


MANDIR  ?= $(PREFIX)/share/man
MAN_SRCS := $(wildcard mprof/man/*.1)
MAN_OUT  := $(patsubst mprof/man/%,$(OUT)/man/man1/%,$(MAN_SRCS))

.PHONY: man install-man uninstall-man
all: man
man: $(MAN_OUT)

$(OUT)/man/man1/%.1: mprof/man/%.1 mprof/man/man.mk
	$(Q)mkdir -p $(@D)
	$(Q)sed 's/@VERSION@/$(MPROF_VERSION)/g' $< > $@

install: install-man
install-man: $(MAN_OUT)
	install -d $(DESTDIR)$(MANDIR)/man1
	install -m 0644 $(MAN_OUT) $(DESTDIR)$(MANDIR)/man1/

uninstall: uninstall-man
uninstall-man:
	rm -f $(patsubst $(OUT)/man/man1/%,$(DESTDIR)$(MANDIR)/man1/%,$(MAN_OUT))

# mprof report: the page template and the charting library it embeds; included by the Makefile.
#
# The library is pinned in mprof/report/package.json (exact version, package-lock.json without
# download addresses: .npmrc sets omit-lockfile-registry-resolved). `make deps` (and the first
# build, if deps was not run) installs it with `npm ci` into mprof/report/node_modules, which is
# never committed. embed.py then writes $(OUT)/report_assets.h: our template cut at its slots,
# the library's minified JS and CSS and its licence as C strings, so the mprof binary carries
# everything and an installed mprof needs no node_modules.

NPM ?= npm
REPORT_DIR := mprof/report
UPLOT_DIR := $(REPORT_DIR)/node_modules/uplot
UPLOT_FILES := $(UPLOT_DIR)/package.json $(UPLOT_DIR)/dist/uPlot.iife.min.js \
	$(UPLOT_DIR)/dist/uPlot.min.css $(UPLOT_DIR)/LICENSE
REPORT_ASSETS := $(OUT)/report_assets.h

.PHONY: report-deps

# One stamp for the whole install: npm ci runs again only when the pinned versions change.
$(REPORT_DIR)/node_modules/.mprof-installed: $(REPORT_DIR)/package.json $(REPORT_DIR)/package-lock.json
	$(call msg,NPM-CI,$(REPORT_DIR))
	$(Q)command -v $(NPM) >/dev/null 2>&1 || { \
		echo "mprof report needs npm to fetch its pinned charting library (install Node.js and npm)" >&2; exit 1; }
	$(Q)cd $(REPORT_DIR) && $(NPM) ci --no-audit --no-fund --loglevel=error >/dev/null
	$(Q)touch $@

$(UPLOT_FILES): $(REPORT_DIR)/node_modules/.mprof-installed
	@test -f $@ || { echo "$@ is missing after npm ci" >&2; exit 1; }

report-deps: $(REPORT_DIR)/node_modules/.mprof-installed

deps: report-deps

$(REPORT_ASSETS): $(REPORT_DIR)/report.html $(REPORT_DIR)/embed.py $(UPLOT_FILES)
	$(Q)mkdir -p $(@D)
	$(call msg,EMBED,$@)
	$(Q)$(PYTHON) $(REPORT_DIR)/embed.py $(REPORT_DIR)/report.html $(UPLOT_DIR) $@

# report.c includes the generated header: it must exist before the first compile.
$(OUT)/obj/user/report.o: $(REPORT_ASSETS)

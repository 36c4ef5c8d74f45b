#!/bin/sh
# dist-info.sh DIR VERSION PLUGIN_VERSION
#
# Writes the package metadata of DIR/memory_profiler, so that importlib.metadata
# (and pip list) know it, as two distributions:
#
#   memory_profiler-VERSION.dist-info: METADATA, INSTALLER, top_level.txt and
#       RECORD (paths relative to DIR) of the package;
#   mprof_bpf_pytest-PLUGIN_VERSION.dist-info: no module of its own, only
#       entry_points.txt registering memory_profiler.pytest_plugin with pytest
#       (group pytest11), so that pytest loads it with no -p.
#
# Why apart: pytest rewrites the asserts of every module listed in the RECORD
# of a distribution that has a pytest11 entry point, in its own loader, which
# ignores the interpreter's .pyc files; every session that cannot write its
# cache beside them (a user of a root install) would parse and compile the
# whole package again: 30 ms a session here, against 2 ms from the .pyc files.
#
# The entry point is named after its module, so that
# `-p memory_profiler.pytest_plugin` finds the entry point instead of importing
# the module and registering it a second time (with a shorter name, pytest 7.2
# registers the module under both names and stops with "Plugin already
# registered"); `-p no:memory_profiler.pytest_plugin` turns it off.
set -eu
dir=$1 version=$2 plugin_version=$3
info="memory_profiler-$version.dist-info"
mkdir -p "$dir/$info"
cat > "$dir/$info/METADATA" <<META
Metadata-Version: 2.1
Name: memory_profiler
Version: $version
Summary: memory_profiler 0.61's API on mprof-bpf's CPython hook (kernel-exact line reports)
Requires-Python: >=3.8
META
echo mprof-bpf > "$dir/$info/INSTALLER"
echo memory_profiler > "$dir/$info/top_level.txt"
(
	cd "$dir"
	for f in memory_profiler/* "$info/METADATA" "$info/INSTALLER" "$info/top_level.txt"; do
		echo "$f,,"
	done
	echo "$info/RECORD,,"
) > "$dir/$info/RECORD"

plugin="mprof_bpf_pytest-$plugin_version.dist-info"
mkdir -p "$dir/$plugin"
cat > "$dir/$plugin/METADATA" <<META
Metadata-Version: 2.1
Name: mprof-bpf-pytest
Version: $plugin_version
Summary: registers memory_profiler.pytest_plugin (limit_rss, --mprof-top) with pytest
Requires-Dist: memory_profiler (==$version)
META
echo mprof-bpf > "$dir/$plugin/INSTALLER"
printf '[pytest11]\nmemory_profiler.pytest_plugin = memory_profiler.pytest_plugin\n' \
	> "$dir/$plugin/entry_points.txt"
for f in METADATA INSTALLER entry_points.txt RECORD; do
	echo "$plugin/$f,,"
done > "$dir/$plugin/RECORD"

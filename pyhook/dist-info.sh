#!/bin/sh
# dist-info.sh DIR VERSION
#
# Writes DIR/memory_profiler-VERSION.dist-info for the package in
# DIR/memory_profiler, so that importlib.metadata (and pip list) know it:
# METADATA, INSTALLER, top_level.txt, entry_points.txt and RECORD (paths
# relative to DIR).
#
# entry_points.txt registers the pytest plugin (group pytest11), so pytest
# loads it with no -p. The entry point is named after its module, so that
# `-p memory_profiler.pytest_plugin` finds the entry point instead of importing
# the module and registering it a second time (with a shorter name, pytest 7.2
# registers the module under both names and stops with "Plugin already
# registered"); `-p no:memory_profiler.pytest_plugin` turns it off.
set -eu
dir=$1 version=$2
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
printf '[pytest11]\nmemory_profiler.pytest_plugin = memory_profiler.pytest_plugin\n' \
	> "$dir/$info/entry_points.txt"
(
	cd "$dir"
	for f in memory_profiler/* "$info/METADATA" "$info/INSTALLER" "$info/top_level.txt" \
		"$info/entry_points.txt"; do
		echo "$f,,"
	done
	echo "$info/RECORD,,"
) > "$dir/$info/RECORD"

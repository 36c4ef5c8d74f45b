#!/bin/sh
# build-ext.sh OUTDIR CC CFLAGS LDFLAGS "SRCS" PYTHON...
#
# Builds _mprof_hook for each interpreter with that interpreter's headers
# and extension suffix (sysconfig). Interpreters sharing a suffix (Debian's
# and pyenv's 3.11) share one build, made with the first one listed: the
# ABI of a minor version is stable.
set -eu
out=$1 cc=$2 cflags=$3 ldflags=$4 srcs=$5
shift 5
[ $# -gt 0 ] || { echo "pyhook: no Python interpreter found (set PYTHONS=)" >&2; exit 1; }
done_suffixes=" "
for py in "$@"; do
	cfg=$("$py" -c 'import sysconfig as s
print(s.get_config_var("EXT_SUFFIX") or "-", s.get_paths()["include"])') || {
		echo "pyhook: cannot query '$py'" >&2; exit 1; }
	suffix=${cfg%% *} inc=${cfg#* }
	[ -n "$suffix" ] && [ -f "$inc/Python.h" ] || {
		echo "pyhook: '$py' has no development headers ($inc/Python.h)" >&2; exit 1; }
	case "$done_suffixes" in *" $suffix "*) continue ;; esac
	done_suffixes="$done_suffixes$suffix "
	target="$out/_mprof_hook$suffix"
	if [ -n "${PYHOOK_V:-}" ]; then
		echo "$cc $cflags -I$inc -shared -o $target.tmp $srcs $ldflags"
	else
		printf '  %-8s %s\n' PYEXT "$target ($py)"
	fi
	# shellcheck disable=SC2086
	$cc $cflags -I"$inc" -shared -o "$target.tmp" $srcs $ldflags
	mv -f "$target.tmp" "$target"
done

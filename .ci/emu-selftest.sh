#!/bin/sh
# SPDX-License-Identifier: MPL-2.0
#
# Build the /dev/vmmctl emulator, its CLI and the self-test into a
# temporary directory, run the self-test natively, then under valgrind.
#
# The emulator's sources are in tests/emu (tests/emu/README.md).
#
#   sh .ci/emu-selftest.sh              # both runs (valgrind if installed)
#   VALGRIND=0 sh .ci/emu-selftest.sh   # native run only
#   CC=clang sh .ci/emu-selftest.sh     # another compiler
#   KEEP=1 sh .ci/emu-selftest.sh       # keep the build dir (path printed)
#   make emu-selftest                   # the CI gate
#
# Exit status: 0 if every run passed.
set -eu

here=$(cd "$(dirname "$0")/../tests/emu" && pwd)
CC=${CC:-cc}
CFLAGS="-std=c11 -Wall -Wextra -Werror -pedantic -O2 -g"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmmemu.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
	echo "build dir: $tmp"
else
	trap 'rm -rf "$tmp"' EXIT INT TERM
fi

echo "== build"
$CC $CFLAGS -fPIC -shared -o "$tmp/libvmmemu.so" "$here/vmmctl_emu.c" \
    -ldl -lpthread
$CC $CFLAGS -o "$tmp/vmmemu_ctl" "$here/vmmemu_ctl.c"
$CC $CFLAGS -o "$tmp/selftest" "$here/selftest.c" -lpthread

# The self-test sets VMMEMU_* itself; start from a clean environment.
for v in $(env | sed -n 's/^\(VMMEMU_[A-Z_]*\)=.*/\1/p'); do
	unset "$v"
done

echo "== selftest (native)"
mkdir "$tmp/native"
LD_PRELOAD="$tmp/libvmmemu.so" "$tmp/selftest" "$tmp/native" \
    "$tmp/vmmemu_ctl"

if [ "${VALGRIND:-1}" = 0 ]; then
	echo "== valgrind run skipped (VALGRIND=0)"
elif ! command -v valgrind >/dev/null 2>&1; then
	echo "== valgrind not installed: run skipped"
else
	echo "== selftest (valgrind memcheck)"
	# LD_PRELOAD must be in valgrind's own environment: valgrind passes
	# it on to the client after its own preloads.  "valgrind env
	# LD_PRELOAD=... prog" would check only env(1), not prog.
	mkdir "$tmp/valgrind"
	LD_PRELOAD="$tmp/libvmmemu.so" valgrind -q --error-exitcode=1 \
	    --leak-check=full --show-leak-kinds=definite \
	    --errors-for-leak-kinds=definite \
	    "$tmp/selftest" "$tmp/valgrind" "$tmp/vmmemu_ctl"
fi
echo "== all passed"

#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
#
# The README's install example compiles as written and prints what the
# README says it prints.
#
# Takes the first ```c block after the "## Install" heading of README.md,
# compiles it with `cc -std=c99 -Wall -Wextra -Werror -pedantic` against
# include/ and target/lib (building the library and the /dev/vmmctl
# emulator first if needed), runs it on an emulated 16 GiB host (the
# LD_PRELOAD emulator of tests/emu, in a scratch state directory) and
# compares its standard output with the first ```text block after the
# code, exactly.
#
#   bash .ci/readme-example.sh
#   CC=clang bash .ci/readme-example.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
CC=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmmresv-readme.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The first ```c block after "## Install", then the first ```text block
# after that block.
awk -v code="$tmp/example.c" -v want="$tmp/expected" '
    /^## / { inst = ($0 ~ /^## Install/) }
    inst && state == 0 && /^```c[ \t]*$/ { state = 1; next }
    state == 1 && /^```[ \t]*$/ { state = 2; next }
    state == 1 { print > code; next }
    state == 2 && /^```text[ \t]*$/ { state = 3; next }
    state == 3 && /^```[ \t]*$/ { state = 4; exit }
    state == 3 { print > want }
    END { if (state != 4) { print "README.md: no ```c block followed by a ```text block under ## Install" > "/dev/stderr"; exit 1 } }
' README.md

lines=$(wc -l < "$tmp/example.c")
echo "readme: example is $lines lines"

make --no-print-directory -s lib emu

"$CC" -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude -o "$tmp/example" \
    "$tmp/example.c" -Ltarget/lib -lvmmresv -Wl,-rpath,"$root/target/lib"

VMMEMU_STATE="$tmp/vmmctl.state" VMMEMU_PHYSMEM=16G VMMRESV_RUNDIR="$tmp/run" \
    LD_PRELOAD="$root/target/emu/libvmmctl_emu.so" "$tmp/example" > "$tmp/got"

if ! diff -u "$tmp/expected" "$tmp/got"; then
    echo "readme: the example's output differs from the README's (above: - README, + actual)"
    exit 1
fi
echo "readme: the Install example compiles with -Wall -Wextra -Werror -pedantic and prints what the README shows"

#!/bin/sh
# SPDX-License-Identifier: MPL-2.0
#
# The installed man pages as a reader looks them up (make check-man-install).
#
#   check-man-install.sh <header> <mandir> <layout>
#
# <mandir> is the MANDIR of a `make install` into a scratch DESTDIR, and
# <layout> the directories it used (the Makefile's MAN3LIBDIR and MAN3DIR):
#   man3       the default everywhere but illumos: man3/ for the library's
#              pages and links, man8/;
#   illumos    man3lib/, man3vmmresv/, man8/ (the default on illumos).
# With MANPATH set to <mandir> alone, man(1) -w must resolve
#   - every function include/vmmresv.h declares, by its name alone, and in
#     the library's section (`man -w 3vmmresv <f>`; with man3 also `man -w
#     3 <f>`), to a page of the layout's directory whose NAME has `.Nm <f>`
#     (the link leads to the page that documents the function);
#   - libvmmresv (3lib), rsrvrctl, vmmresv-reservoir and vmmresvadm (8),
#     likewise.
# For the man3 layout the names are resolved again with mandoc's man when
# it is installed as mman (Debian's mandoc package), which has no
# mandoc.db for the scratch tree and searches the directories itself.
set -eu

hdr=${1:?usage: check-man-install.sh <header> <mandir> <layout>}
mandir=${2:?usage: check-man-install.sh <header> <mandir> <layout>}
layout=${3:?usage: check-man-install.sh <header> <mandir> <layout>}
case "$layout" in
man3) lib3=man3 sec3=man3 ;;
illumos) lib3=man3lib sec3=man3vmmresv ;;
*) echo "man-install: unknown layout $layout"; exit 1 ;;
esac
[ -d "$mandir" ] || { echo "man-install: no $mandir"; exit 1; }
mandir=$(cd "$mandir" && pwd -P)
command -v man >/dev/null 2>&1 || { echo "man-install: man is not installed"; exit 1; }

# Only the scratch tree, in the C locale (no localized subdirectories), with
# no section list or options from the environment.
unset MANSECT MANOPT MANWIDTH 2>/dev/null || true
MANPATH=$mandir LC_ALL=C
export MANPATH LC_ALL

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# Functions the header declares: identifiers followed by "(" on a line that
# is not inside a comment block (as .ci/check-exports.sh reads them).
sed -e 's#/\*.*\*/##' "$hdr" | awk '
    /\/\*/ { inc=1 } inc && /\*\// { inc=0; next } inc { next }
    { while (match($0, /vmmresv_[a-z0-9_]+\(/)) { print substr($0, RSTART, RLENGTH-1); $0=substr($0, RSTART+RLENGTH) } }
' | sort -u > "$tmp/funcs"
nf=$(wc -l < "$tmp/funcs")
[ "$nf" -gt 10 ] || { echo "man-install: found only $nf functions in $hdr"; exit 1; }

bad=0
fail() { echo "man-install: $*"; bad=1; }

# check <tool> <name> <dir> <found path>: the path is in <mandir>/<dir>
# and the page there (a link is followed) has `.Nm <name>` in its NAME.
check() {
    tool=$1 name=$2 dir=$3 path=$4
    case "$path" in
    "$mandir/$dir/"*) ;;
    "") fail "$tool: $name: not found"; return ;;
    *) fail "$tool: $name: found $path, not in $mandir/$dir"; return ;;
    esac
    if ! awk -v n="$name" '
        /^\.Sh / { s = $2 }
        s == "NAME" && $1 == ".Nm" && $2 == n { found = 1 }
        END { exit !found }' "$path"; then
        fail "$tool: $name: $path does not document it (no .Nm $name in its NAME)"
    fi
}

# lookup <name> <dir> <section...>: man -w <name>, then with each section.
lookup() {
    name=$1 dir=$2; shift 2
    for s in "" "$@"; do
        # shellcheck disable=SC2086 # $s is one word or none
        p=$(man -w $s "$name" 2>"$tmp/err" | head -n 1) || true
        check "man -w${s:+ $s}" "$name" "$dir" "$p"
        [ -n "$p" ] || sed 's/^/    /' "$tmp/err"
        if [ "$layout" = man3 ] && command -v mman >/dev/null 2>&1; then
            # shellcheck disable=SC2086
            p=$(mman -M "$mandir" -w $s "$name" 2>"$tmp/err" | head -n 1) || true
            check "mman -w${s:+ $s}" "$name" "$dir" "$p"
            [ -n "$p" ] || sed 's/^/    /' "$tmp/err"
        fi
    done
}

if [ "$layout" = man3 ]; then secs="3 3vmmresv"; else secs="3vmmresv"; fi
while IFS= read -r f; do
    # shellcheck disable=SC2086 # the sections are words
    lookup "$f" "$sec3" $secs
done < "$tmp/funcs"
lookup libvmmresv "$lib3" 3lib
lookup rsrvrctl man8 8
lookup vmmresv-reservoir man8 8
lookup vmmresvadm man8 8

tools="man"
if [ "$layout" = man3 ] && command -v mman >/dev/null 2>&1; then tools="man and mman"; fi
if [ "$bad" != 0 ]; then
    echo "man-install: FAILED ($layout layout)"
    exit 1
fi
echo "man-install: $layout layout: $nf functions, libvmmresv(3lib), rsrvrctl(8), vmmresv-reservoir(8), vmmresvadm(8) each resolve with $tools -w, by name and section, to the page that documents them"

#!/bin/sh
# Check the ABI surface of the linked shared object:
#   - its SONAME;
#   - the defined dynamic symbols are exactly the functions listed in the
#     mapfile, each bound to the version node that lists it (readelf), and
#     objdump -T agrees;
#   - nothing else leaks (no Rust mangled _ZN/_R symbols, no rust_*);
#   - include/vmmresv.h declares exactly the same functions.
# Usage: check-exports.sh <libvmmresv.so.X.Y.Z> <mapfile> <header> <soname>
set -eu
so=$1 map=$2 hdr=$3 soname=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

got_soname=$(readelf -d -W "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$got_soname" != "$soname" ]; then
    echo "exports: SONAME is '$got_soname', want '$soname'"; fail=1
fi

# name version, from the mapfile: every symbol in a node's global: list.
awk '
    /^[ \t]*#/ { next }
    /^[ \t]*[A-Za-z_][A-Za-z0-9_.]*[ \t]*\{/ { node=$1; sub(/\{.*/, "", node); mode=""; next }
    /global:/ { mode="g"; next }
    /local:/  { mode="l"; next }
    /^[ \t]*\}/ { node=""; mode=""; next }
    mode=="g" { s=$1; sub(/;.*/, "", s); if (s != "") print s, node }
' "$map" | sort > "$tmp/map"

# name version, from readelf: defined symbols (Ndx not UND), skipping the
# version-definition symbols themselves (ABS, named like the node).
readelf --dyn-syms -W "$so" | awk '
    $1 ~ /^[0-9]+:$/ && $7 != "UND" && $8 != "" {
        split($8, p, "@"); name=p[1]; ver=$8; sub(/^[^@]*@@?/, "", ver);
        if ($7 == "ABS" && name == ver) next;
        if (ver == $8) ver="(none)";
        print name, ver
    }' | sort > "$tmp/elf"

if ! diff -u "$tmp/map" "$tmp/elf" > "$tmp/diff"; then
    echo "exports: readelf's defined dynamic symbols differ from the mapfile:"
    cat "$tmp/diff"; fail=1
fi

# objdump -T must agree on the names.
objdump -T "$so" | awk '$0 ~ /DF|DO/ && $0 !~ /\*UND\*|\*ABS\*/ { print $NF }' | sort > "$tmp/objdump"
cut -d' ' -f1 "$tmp/map" > "$tmp/map_names"
if ! diff -u "$tmp/map_names" "$tmp/objdump" > "$tmp/diff2"; then
    echo "exports: objdump -T differs from the mapfile:"
    cat "$tmp/diff2"; fail=1
fi

if readelf --dyn-syms -W "$so" | awk '$7 != "UND"' | grep -E ' (_ZN|_R[A-Z0-9]|rust_)'; then
    echo "exports: Rust internals leak from $so"; fail=1
fi

# Functions the header declares: identifiers followed by "(" on a line
# that is not inside a comment block.
sed -e 's#/\*.*\*/##' "$hdr" | awk '
    /\/\*/ { inc=1 } inc && /\*\// { inc=0; next } inc { next }
    { while (match($0, /vmmresv_[a-z0-9_]+\(/)) { print substr($0, RSTART, RLENGTH-1); $0=substr($0, RSTART+RLENGTH) } }
' | sort -u > "$tmp/hdr"
if ! diff -u "$tmp/map_names" "$tmp/hdr" > "$tmp/diff3"; then
    echo "exports: the header's functions differ from the mapfile:"
    cat "$tmp/diff3"; fail=1
fi

# Every name the header defines is in the library's namespace, so nothing
# collides with illumos headers (PAGESIZE, VMM_*, ...).
bad=$(grep -E '^#define |^typedef |^(enum|struct) ' "$hdr" | grep -v -E '^#define VMMRESV_H$' |
      sed -E 's/^#define ([A-Za-z0-9_]+).*/\1/; s/^typedef [^(]*\(\*([A-Za-z0-9_]+)\).*/\1/; s/^typedef .* ([A-Za-z0-9_]+);$/\1/; s/^(enum|struct) ([A-Za-z0-9_]+).*/\2/; s/^typedef (enum|struct) ([A-Za-z0-9_]+).*/\2/' |
      grep -v -E '^(vmmresv_|VMMRESV_)' || true)
if [ -n "$bad" ]; then
    echo "exports: header defines names outside vmmresv_/VMMRESV_: $bad"; fail=1
fi

n=$(wc -l < "$tmp/map")
if [ "$fail" -ne 0 ]; then
    echo "exports: FAILED"; exit 1
fi
echo "exports: $n functions, all in the mapfile and the header, each at its version; SONAME $soname; nothing else exported"

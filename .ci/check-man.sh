#!/bin/sh
# SPDX-License-Identifier: MPL-2.0
#
# The man pages against the header.
#
#   check-man.sh <header> <mandir>     (make check-man)
#     - every function include/vmmresv.h declares has its exact prototype
#       (.Ft/.Fo/.Fa/.Fc or .Ft/.Fn, compared with whitespace normalized)
#       in the SYNOPSIS of exactly one page, and is a .Nm of that page's
#       NAME (which is also what make install's man links are made from);
#     - every vmmresv_* function a page names (.Nm, .Fn, .Fo) is declared
#       by the header, and every VMMRESV_* constant a page names (.Dv)
#       is defined by it;
#     - libvmmresv.3lib lists every status with its number (.It Dv
#       VMMRESV_STATUS_X Pq N), exactly the header's enum, and lists every
#       function under INTERFACES;
#     - every .Xr to one of this library's pages resolves to a page or a
#       man link that make install creates.
#
#   check-man.sh --lint <mandir>       (make check-man-lint)
#     mandoc -T lint of every page. Two kinds of message are not about the
#     pages and are left out, each for a stated reason:
#       - "unknown manual section" for 3LIB and 3VMMRESV: the illumos
#         sections (libnvpair.3lib, nvlist_alloc.3nvpair, ...); illumos's
#         mandoc knows them, a Linux mandoc knows only 1-9 and 3p;
#       - "referenced manual not found" and mandoc.db notices: mandoc
#         looks .Xr up in the manuals installed on the machine that runs
#         it, which on CI is Linux, not illumos (exec(2), flock(3C));
#         references to this library's own pages are checked above.
#     Every other message, at any level (style included), fails.
set -eu

if [ "${1:-}" = "--lint" ]; then
    mandir=${2:?usage: check-man.sh --lint <mandir>}
    command -v mandoc >/dev/null 2>&1 || {
        echo "man: mandoc is not installed (Debian: apt-get install mandoc)"; exit 1; }
    # Lint messages come on stdout, mandoc.db notices on stderr: read them
    # apart, as 2>&1 interleaves the two streams mid-line.
    errf=$(mktemp); trap 'rm -f "$errf"' EXIT
    out=$(mandoc -T lint -W all "$mandir"/*.3lib "$mandir"/*.3vmmresv "$mandir"/*.8 2>"$errf" || true)
    out=$(printf '%s\n' "$out"; cat "$errf")
    left=$(printf '%s\n' "$out" | grep -v -E \
        -e ': WARNING: unknown manual section: Dt [^ ]+ (3LIB|3VMMRESV)$' \
        -e ': STYLE: referenced manual not found: Xr ' \
        -e '^mandoc: outdated mandoc\.db ' \
        -e '^$' || true)
    n=$(ls "$mandir"/*.3lib "$mandir"/*.3vmmresv "$mandir"/*.8 | wc -l)
    if [ -n "$left" ]; then
        printf '%s\n' "$left"
        echo "man: mandoc -T lint: FAILED"
        exit 1
    fi
    echo "man: mandoc -T lint: $n pages clean"
    exit 0
fi

hdr=${1:?usage: check-man.sh <header> <mandir>}
mandir=${2:?usage: check-man.sh <header> <mandir>}
[ -f "$mandir/libvmmresv.3lib" ] || { echo "man: no $mandir/libvmmresv.3lib"; exit 1; }

# The header, comments and preprocessor lines removed, one declaration per
# line ("F <name> <prototype>"), plus its constants ("C <name> [value]").
sed -e 's#//.*$##' "$hdr" | awk '
    BEGIN { inc = 0; buf = "" }
    {
        line = $0; out = ""
        while (line != "") {
            if (inc) {
                i = index(line, "*/")
                if (i == 0) { line = ""; break }
                line = substr(line, i + 2); inc = 0
            } else {
                i = index(line, "/*")
                if (i == 0) { out = out line; line = ""; break }
                out = out substr(line, 1, i - 1); line = substr(line, i + 2); inc = 1
            }
        }
        if (out ~ /^[ \t]*#/) {
            if (out ~ /^[ \t]*#define[ \t]+VMMRESV_/) {
                split(out, w, /[ \t]+/); print "C " w[2]
            }
            next
        }
        buf = buf " " out
    }
    END {
        gsub(/[{}]/, ";", buf)
        n = split(buf, st, ";")
        for (i = 1; i <= n; i++) {
            s = st[i]
            gsub(/[ \t]+/, " ", s); sub(/^ /, "", s); sub(/ $/, "", s)
            # enum members: NAME = value,
            m = s
            while (match(m, /VMMRESV_[A-Z0-9_]+ = [0-9]+/)) {
                t = substr(m, RSTART, RLENGTH); split(t, w, / = /)
                print "C " w[1] " " w[2]
                m = substr(m, RSTART + RLENGTH)
            }
            if (s ~ /^typedef / || s ~ /^extern /) continue
            if (match(s, /vmmresv_[a-z0-9_]+ ?\(/)) {
                name = substr(s, RSTART, RLENGTH); sub(/ ?\($/, "", name)
                p = s
                gsub(/\( /, "(", p); gsub(/ \)/, ")", p); gsub(/\* /, "*", p)
                gsub(/ ,/, ",", p); gsub(/ \(/, "(", p)
                print "F " name " " p
            }
        }
    }
' > "${TMPDIR:-/tmp}/check-man.$$.hdr"
trap 'rm -f "${TMPDIR:-/tmp}/check-man.$$.hdr"' EXIT

awk -v hdrfile="${TMPDIR:-/tmp}/check-man.$$.hdr" '
    function norm(p) {
        gsub(/[ \t]+/, " ", p); sub(/^ /, "", p); sub(/ $/, "", p)
        gsub(/\( /, "(", p); gsub(/ \)/, ")", p); gsub(/\* /, "*", p)
        gsub(/ ,/, ",", p); gsub(/ \(/, "(", p)
        return p
    }
    # mdoc arguments: blank-separated, "double quotes" group.
    function args(line, a,    n, i, c, q, cur, have) {
        n = 0; q = 0; cur = ""; have = 0
        for (i = 1; i <= length(line); i++) {
            c = substr(line, i, 1)
            if (c == "\"") { q = !q; have = 1; continue }
            if (!q && (c == " " || c == "\t")) {
                if (have) { a[++n] = cur; cur = ""; have = 0 }
                continue
            }
            cur = cur c; have = 1
        }
        if (have) a[++n] = cur
        return n
    }
    function err(msg) { print "man: " msg; bad = 1 }
    BEGIN {
        while ((getline l < hdrfile) > 0) {
            split(l, w, " ")
            if (w[1] == "F") {
                name = w[2]; p = l; sub(/^F [^ ]+ /, "", p)
                hproto[name] = p; hfuncs[++nh] = name
            } else if (w[1] == "C") {
                hconst[w[2]] = 1
                if (w[3] != "") hstatus[w[2]] = w[3]
            }
        }
        bad = 0
    }
    FNR == 1 {
        page = FILENAME; sub(/.*\//, "", page)
        sec = ""; ft = ""; fo = ""; fa = ""
        pages[page] = 1
    }
    /^\.Sh / { sec = substr($0, 5); next }
    /^\./ {
        n = args(substr($0, 2), a)
        m = a[1]
        # names used anywhere: .Nm .Fn .Fo, also inside other macros
        for (i = 1; i <= n; i++) {
            if (a[i] == "Fn" || a[i] == "Fo" || a[i] == "Nm") {
                j = i + 1
                while (j <= n && a[j] ~ /^[(\[]$/) j++
                if (j <= n && a[j] ~ /^vmmresv_[a-z0-9_]+$/)
                    used[a[j]] = used[a[j]] " " page ":" FNR
            }
            if (a[i] == "Dv" && i < n && a[i + 1] ~ /^VMMRESV_/)
                dv[a[i + 1]] = dv[a[i + 1]] " " page ":" FNR
            if (a[i] == "Xr" && i + 2 <= n)
                xr[a[i + 1] " " a[i + 2]] = xr[a[i + 1] " " a[i + 2]] " " page ":" FNR
        }
        if (sec == "NAME" && m == "Nm" && n >= 2) {
            nmpage[a[2]] = nmpage[a[2]] " " page
            if (page ~ /\.3vmmresv$/) mlink[a[2]] = page
        }
        if (sec == "SYNOPSIS") {
            if (m == "Ft") { ft = a[2]; for (i = 3; i <= n; i++) ft = ft " " a[i] }
            else if (m == "Fo") { fo = a[2]; fa = "" }
            else if (m == "Fa" && fo != "") { fa = (fa == "" ? a[2] : fa ", " a[2]) }
            else if (m == "Fc" && fo != "") {
                proto[fo] = proto[fo] "|" norm(ft " " fo "(" fa ")"); ppage[fo] = ppage[fo] " " page
                nproto[fo]++; fo = ""; ft = ""
            } else if (m == "Fn") {
                fa = ""
                for (i = 3; i <= n; i++) fa = (fa == "" ? a[i] : fa ", " a[i])
                proto[a[2]] = proto[a[2]] "|" norm(ft " " a[2] "(" fa ")"); ppage[a[2]] = ppage[a[2]] " " page
                nproto[a[2]]++; ft = ""
            }
        }
        if (page == "libvmmresv.3lib" && sec == "Status codes" && m == "It" && a[2] == "Dv") {
            st[a[3]] = (a[4] == "Pq" ? a[5] : "?")
        }
        if (page == "libvmmresv.3lib" && sec == "INTERFACES" && m == "It") {
            for (i = 2; i <= n; i++) if (a[i - 1] == "Sy" && a[i] ~ /^vmmresv_/) iface[a[i]] = 1
        }
        if (m == "Ss") { sec = a[2]; for (i = 3; i <= n; i++) sec = sec " " a[i] }
    }
    END {
        # every header function: one prototype, identical, named in NAME
        for (k = 1; k <= nh; k++) {
            f = hfuncs[k]
            if (!(f in proto)) { err(f ": declared by the header, in no page'"'"'s SYNOPSIS"); continue }
            if (nproto[f] > 1) err(f ": in the SYNOPSIS of more than one page:" ppage[f])
            split(proto[f], ps, "|")
            if (ps[2] != hproto[f])
                err(f ": prototype differs\n    header: " hproto[f] "\n    page:   " ps[2] " (" ppage[f] " )")
            pg = ppage[f]; sub(/^ /, "", pg)
            if (index(nmpage[f] " ", " " pg " ") == 0)
                err(f ": not a .Nm of the NAME of " pg ", whose SYNOPSIS has it")
            if (!(f in iface)) err(f ": not listed under INTERFACES in libvmmresv.3lib")
        }
        # every documented function exists
        for (f in used) if (!(f in hproto)) err(f ": named by" used[f] ", not declared by the header")
        for (f in proto) if (!(f in hproto)) err(f ": has a SYNOPSIS prototype in" ppage[f] ", not declared by the header")
        for (f in iface) if (!(f in hproto)) err(f ": listed under INTERFACES, not declared by the header")
        for (c in dv) if (!(c in hconst)) err(c ": named by" dv[c] ", not defined by the header")
        # the status table
        for (c in hstatus) {
            if (!(c in st)) err(c " = " hstatus[c] ": not in the status table of libvmmresv.3lib")
            else if (st[c] != hstatus[c]) err(c ": libvmmresv.3lib says " st[c] ", the header " hstatus[c])
        }
        for (c in st) if (!(c in hstatus)) err(c ": in the status table of libvmmresv.3lib, not a status of the header")
        # cross references to our own pages
        for (x in xr) {
            split(x, w, " "); nm = w[1]; s = w[2]
            if (s == "3VMMRESV") {
                if (!((nm ".3vmmresv") in pages) && !(nm in mlink))
                    err(".Xr " x " (" xr[x] " ): no such page or man link")
            } else if (s == "3LIB" && nm ~ /vmmresv/) {
                if (!((nm ".3lib") in pages)) err(".Xr " x " (" xr[x] " ): no such page")
            } else if (nm == "rsrvrctl" || nm ~ /^(lib)?vmmresv/) {
                if (!((nm "." tolower(s)) in pages)) err(".Xr " x " (" xr[x] " ): no such page")
            }
        }
        nst = 0; for (c in hstatus) nst++
        if (bad) { print "man: FAILED"; exit 1 }
        print "man: " nh " functions, each in one page with the header'"'"'s prototype; " nst " statuses with their numbers; every name and cross reference resolves"
    }
' "$mandir"/*.3lib "$mandir"/*.3vmmresv "$mandir"/*.8

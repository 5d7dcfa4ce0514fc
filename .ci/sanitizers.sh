#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
#
# The C consumers of libvmmresv under AddressSanitizer (+ LeakSanitizer)
# and UndefinedBehaviorSanitizer, against the /dev/vmmctl emulator.
#
# cmd/rsrvrctl/rsrvrctl.c (the shipped port), cmd/vmmresvadm/vmmresvadm.c
# (the administrative command), tests/c/zhyve.c, tests/c/report.c and
# tests/c/handles.c (linked with -lvmmresv against
# target/lib/libvmmresv.so) and tests/c/bhyve.c (which talks to the
# emulated device directly) are built with
#     -fsanitize=address,undefined -fno-omit-frame-pointer
#     -fno-sanitize-recover=all
# and run through a scenario each on an emulated 16 GiB host (the
# LD_PRELOAD emulator target/emu/libvmmctl_emu.so, a scratch state file
# and a scratch VMMRESV_RUNDIR, so the admission ledger lives there too).
# Every run's exit status, stdout and stderr are compared with what the
# program must print, and the emulator's state is checked afterwards, so a
# run that silently did nothing fails too.
#
# Any sanitizer report fails the run, three ways: the first report aborts
# the reporting process (abort_on_error: exit 134, never a plausible exit 1),
# which the exit-status checks see; ASan and LSan reports are also written
# to files under the scratch directory (log_path=, one file per process,
# so a report of a bhyve that zhyve spawned cannot hide in zhyve's output)
# and every step checks that there is none; and every step's stderr (which
# includes its children's) is searched for a report's text. (UBSan's own
# log_path does nothing when gcc combines it with ASan, so UBSan reports go
# to stderr and are found there.)
#
# The Rust library itself is not instrumented (it is the release .so that
# ships), but ASan's malloc/free replace the process's, so the C side's
# use of memory the library hands out (and the library's frees of it) is
# checked, and LeakSanitizer sees the library's leaks as well as the C
# programs' (a handle never closed is not one: the library's handle table
# still holds it, as the program holding its address used to). What ASan cannot see is the library's own
# loads and stores (say, writing past a too-small struct a caller passed):
# valgrind memcheck, which needs no instrumentation, covers those (the
# check-valgrind gate of make ci, tests/admission_race.rs).
#
# A canary runs first: three tiny programs with a heap overflow, a signed
# overflow and a leak, under exactly the same environment, must each be
# reported and fail. Without it a broken option string or a runtime that
# is not loaded would pass every scenario.
#
#   bash .ci/sanitizers.sh           (make sanitizers: builds lib, emu)
#   CC=clang bash .ci/sanitizers.sh  (clang links ASan statically)
#   KEEP=1 bash .ci/sanitizers.sh    keep the scratch dir (path printed)
#
# Exit status 0 when every scenario passed and nothing was reported.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
CC=${CC:-gcc}
out=target/san
emu="$root/target/emu/libvmmctl_emu.so"
emuctl="$root/target/emu/vmmemu_ctl"
for f in target/lib/libvmmresv.so "$emu" "$emuctl"; do
    [ -e "$f" ] || { echo "sanitizers: $f is missing: run make lib emu (make sanitizers does)"; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmmresv-san.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "scratch dir: $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi

SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
CWARN="-std=c99 -Wall -Wextra -Werror -pedantic"
mkdir -p "$out"

echo "== build ($CC $SAN)"
build() { # build <source.c> <link flags...>: into $out/<its name>
    local src=$1 name; shift
    name=$(basename "$src" .c)
    echo "  $out/$name"
    "$CC" $CWARN -g -O1 $SAN -Iinclude -Itests/c -o "$out/$name" "$src" "$@"
}
libflags=(-Ltarget/lib -lvmmresv "-Wl,-rpath,$root/target/lib")
build cmd/rsrvrctl/rsrvrctl.c "${libflags[@]}" || exit 1
build cmd/vmmresvadm/vmmresvadm.c "${libflags[@]}" || exit 1
build tests/c/zhyve.c "${libflags[@]}" || exit 1
build tests/c/report.c "${libflags[@]}" || exit 1
build tests/c/handles.c "${libflags[@]}" || exit 1
build tests/c/bhyve.c "${libflags[@]}" || exit 1

# The canary programs (see the header comment).
cat > "$tmp/canary_asan.c" <<'EOF'
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) { char *p = malloc(8); (void)argv; memset(p, 0, 8 + (size_t)argc); free(p); return 0; }
EOF
cat > "$tmp/canary_ubsan.c" <<'EOF'
#include <limits.h>
int main(int argc, char **argv) { int x = INT_MAX - 1 + argc; (void)argv; x += argc; return x == 0; }
EOF
cat > "$tmp/canary_lsan.c" <<'EOF'
#include <stdlib.h>
#include <stdio.h>
void *volatile keep;
int main(void) { keep = malloc(64); keep = NULL; puts("leaked"); return 0; }
EOF
for c in asan ubsan lsan; do
    "$CC" -g -O0 $SAN -o "$out/canary_$c" "$tmp/canary_$c.c" || exit 1
done

# --- How the emulator and ASan are loaded together -----------------------
# The emulator must be LD_PRELOADed (it interposes open/ioctl/close/fcntl/
# dup*). gcc links libasan dynamically, and ASan insists that its runtime
# be the first object in the lookup order ("ASan runtime does not come
# first in initial library list"), else it exits 1 before main: with
# LD_PRELOAD=<emulator> alone, every run fails that way.
# Two ways out, both tried:
#   - ASAN_OPTIONS=verify_asan_link_order=0: runs, but turns off the very
#     check that tells us a preloaded object could be shadowing ASan's
#     malloc or interceptors;
#   - LD_PRELOAD="<libasan> <emulator>": ASan comes first and its check
#     stays on. Chosen. Calls still reach the emulator: the program's
#     ioctl() resolves to ASan's interceptor, whose REAL(ioctl) is
#     dlsym(RTLD_NEXT) from libasan, i.e. the emulator's, which in turn
#     finds libc's. The emulator's state changing (checked below) shows
#     it.
# The libasan to preload is the one the program was linked with (ldd).
# clang links its ASan runtime into the executable, which always comes
# first: nothing to preload then.
asan_rt=$(ldd "$out/rsrvrctl" | awk '/libasan/ { print $3; exit }')
preload=${asan_rt:+$asan_rt }$emu
echo "  ASan runtime: ${asan_rt:-linked into the executables}"

# Sanitizer options. detect_leaks=1: LeakSanitizer at exit (gcc's default
# on x86_64 Linux, spelled out). abort_on_error + halt_on_error: the first
# report kills the process. log_path: every report also lands in a file
# (<prefix>.<pid>) we look for after each step. No suppressions are needed:
# neither the C programs nor the Rust library's std (thread-locals, the
# stdout buffer, ...) leak under these scenarios; if one ever must be
# added, it goes into a suppressions file with a narrow, commented entry.
logs="$tmp/reports"
mkdir -p "$logs" "$tmp/seen"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$logs/asan"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="report_objects=1"

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "  ok   $*"; }
fail() { failed=$((failed + 1)); echo "  FAIL $*"; }

# Sanitizer reports written since the last call (files, and the text of
# one in the last step's stderr): print them, return 1.
reports_clean() { # reports_clean <what>
    local f found=0
    if grep -qE 'runtime error:|ERROR: [A-Za-z]*Sanitizer|SUMMARY: [A-Za-z]*Sanitizer' "$tmp/err"; then
        found=1
        echo "  ---- sanitizer report in stderr ($1)"
    fi
    for f in "$logs"/*; do
        [ -e "$f" ] || continue
        found=1
        echo "  ---- sanitizer report $f ($1):"
        sed 's/^/  | /' "$f"
        mv "$f" "$tmp/seen/"
    done
    [ $found = 0 ]
}

host=""
new_host() { # new_host <tag>: a fresh emulated 16 GiB host
    host="$tmp/$1"
    mkdir -p "$host"
    export VMMEMU_STATE="$host/vmmctl.state" VMMEMU_PHYSMEM=16G VMMRESV_RUNDIR="$host/run"
}

# One run: run <name> <want-exit> <want-stdout> <want-stderr> <cmd...>
# want-stdout/want-stderr are exact texts; a want of '*' is not checked.
run() {
    local name=$1 code=$2 want_out=$3 want_err=$4; shift 4
    local rc got_out got_err ok=1
    # (Status through a command substitution: no "Aborted" job notice from
    # bash when a report kills the program; the exit status says it.)
    rc=$(LD_PRELOAD="$preload" "$@" > "$tmp/out" 2> "$tmp/err"; echo $?)
    got_out=$(cat "$tmp/out"; echo x); got_out=${got_out%x}
    got_err=$(cat "$tmp/err"; echo x); got_err=${got_err%x}
    if [ "$rc" != "$code" ]; then ok=0; echo "    exit $rc, want $code"; fi
    if [ "$want_out" != '*' ] && [ "$got_out" != "$want_out" ]; then
        ok=0; echo "    stdout differs:"; diff <(printf '%s' "$want_out") "$tmp/out" | sed 's/^/    /'
    fi
    if [ "$want_err" != '*' ] && [ "$got_err" != "$want_err" ]; then
        ok=0; echo "    stderr differs:"; diff <(printf '%s' "$want_err") "$tmp/err" | sed 's/^/    /'
    fi
    reports_clean "$name" || ok=0
    if [ $ok = 1 ]; then pass "$name"; else
        fail "$name   ($*)"
        sed 's/^/    | /' "$tmp/out" "$tmp/err"
    fi
}

# The emulator's view: expect <tag> key=value... (vmmemu_ctl show, run
# without the preload and the sanitizers: it is not under test).
expect() {
    local what=$1 kv k v got ok=1; shift
    local show
    show=$(env -u LD_PRELOAD "$emuctl" show) || { fail "$what: vmmemu_ctl show"; return; }
    for kv in "$@"; do
        k=${kv%%=*}; v=${kv#*=}
        got=$(printf '%s\n' "$show" | sed -n "s/^$k=//p")
        if [ "$got" != "$v" ]; then ok=0; echo "    emulator $k=$got, want $v"; fi
    done
    if [ $ok = 1 ]; then pass "$what"; else fail "$what"; fi
}

query() { # the four lines of rsrvrctl -q
    printf 'Free MiB:\t%s\nAllocated MiB:\t%s\nTransient Allocated MiB:\t%s\nSize limit MiB:\t15592\n' "$1" "$2" "$3"
}
USAGE='Usage: rsrvrctl [-a add] [-r remove] [-q]
	-a <SZ> add SZ MiB to the reservoir
	-r <SZ> remove SZ MiB from the reservoir
	-s <SZ> set reservoir to SZ MiB, if possible
	-c <SZ> use SZ MiB chunks when performing resize ops
	-q query reservoir state
	-b <SETTING> apply a boot-time setting (N%, a size, or default)
'
EPERM='permission denied (resizing the reservoir needs sys_config; an admission ledger needs write access to it and its run directory)'
NODEV='no vmm device (is the vmm driver loaded?)'
ENOSPC='not enough space: beyond the reservoir limit, more than its free memory, or a full file system (ENOSPC)'

echo "== canary: a report must fail the run"
new_host canary
canary() { # canary <kind> <report text>
    local rc f
    rc=$(LD_PRELOAD="$preload" "$out/canary_$1" > "$tmp/out" 2> "$tmp/err"; echo $?)
    f=$(cat "$logs"/* "$tmp/err" 2>/dev/null)
    rm -f "$logs"/*
    if [ $rc != 0 ] && printf '%s' "$f" | grep -q "$2"; then
        pass "canary $1: reported ($2), exit $rc"
    else
        fail "canary $1: not reported (exit $rc)"; printf '%s\n' "$f" | sed 's/^/    | /'
    fi
}
canary asan "ERROR: AddressSanitizer: heap-buffer-overflow"
canary ubsan "runtime error: signed integer overflow"
canary lsan "ERROR: LeakSanitizer: detected memory leaks"

echo "== rsrvrctl"
new_host rsrvrctl
R="$out/rsrvrctl"
run "rsrvrctl -q (fresh host)" 0 "$(query 0 0 0)
" "" "$R" -q
# Every SET_TARGET call stops with EINTR after one chunk: 4 chunks take 4
# calls, the library resumes each time (rsrvrctl's progress hook runs at
# every chunk boundary).
VMMEMU_EINTR_AFTER_CHUNKS=1 run "rsrvrctl -s 4096 -c 1024 (EINTR after every chunk)" 0 "" "" "$R" -s 4096 -c 1024
expect "  emulator: 4 GiB reservoir after the interrupted grow" free=4294967296 grown_total=4294967296 target_active=0 adding=0
VMMEMU_EINTR_AFTER_CHUNKS=1 run "rsrvrctl -s 2048 -c 512 (interrupted shrink)" 0 "" "" "$R" -s 2048 -c 512
run "rsrvrctl -a 512" 0 "" "" "$R" -a 512
run "rsrvrctl -r 1024" 0 "" "" "$R" -r 1024
run "rsrvrctl -q (1536 MiB)" 0 "$(query 1536 0 0)
" "" "$R" -q
run "rsrvrctl -s 12G (size with a unit)" 0 "" "" "$R" -s 12G
run "rsrvrctl -a 99999 (no space)" 1 "" "rsrvrctl: Could not add 104856551424 bytes to reservoir: $ENOSPC
rsrvrctl: reservoir size is now 12288 MiB
" "$R" -a 99999
VMMEMU_UNPRIVILEGED=1 run "rsrvrctl -s 1024 (unprivileged: refused)" 1 "" "rsrvrctl: Could not set reservoir size to 1073741824 bytes: $EPERM
rsrvrctl: reservoir size is now 12288 MiB
" "$R" -s 1024
VMMEMU_UNPRIVILEGED=1 run "rsrvrctl -r 1 (unprivileged: refused)" 1 "" '*' "$R" -r 1
VMMEMU_UNPRIVILEGED=1 run "rsrvrctl -q (unprivileged: allowed)" 0 "$(query 12288 0 0)
" "" "$R" -q
run "rsrvrctl -s 0" 0 "" "" "$R" -s 0
expect "  emulator: empty, quiescent, limit never exceeded" free=0 target_active=0 adding=0 limit_exceeded=0
# No device: the emulator loaded but inactive (no state file)...
run "rsrvrctl -q (no device: emulator inactive)" 1 "" "rsrvrctl: Could not open vmmctl: $NODEV
$USAGE" env -u VMMEMU_STATE "$R" -q
# ...and not loaded at all (only the ASan runtime preloaded, if any).
preload=$asan_rt
run "rsrvrctl -s 1024 (no device: no emulator)" 1 "" "rsrvrctl: Could not open vmmctl: $NODEV
$USAGE" "$R" -s 1024
preload=${asan_rt:+$asan_rt }$emu
run "rsrvrctl -x (usage)" 1 "" "target/san/rsrvrctl: invalid option -- 'x'
$USAGE" "$R" -x

echo "== zhyve + bhyve (admission through the ledger in \$VMMRESV_RUNDIR)"
new_host zhyve
Z="$out/zhyve"
B="$out/bhyve"
U=0badc0de-1111-4222-8333-444455556666
run "rsrvrctl -s 4096 (the reservoir)" 0 "" "" "$R" -s 4096
# zhyve names a ledger that is not the host-wide one (VMMRESV_RUNDIR here).
ZNOTE="zhyve: note: admission ledger from VMMRESV_RUNDIR, not the host-wide setting (two ledgers for one host protect nothing)
"
run "zhyve -n 2 -m 1024: two VMs on the reservoir" 0 "zhyve: 0badc0de-1111-4222-8333-444455550000: use_reservoir (ok) charged=1073741824 shortfall=0 free=4294967296 pending=0
zhyve: 0badc0de-1111-4222-8333-444455550001: use_reservoir (ok) charged=1073741824 shortfall=0 free=4294967296 pending=0
zhyve: admitted=2 refused=0 launch_failed=0
" "$ZNOTE" "$Z" -n 2 -m 1024 -u "$U" "$B"
run "zhyve -m 5000: refused (reservoir full)" 0 "zhyve: 0badc0de-1111-4222-8333-444455550000: refuse (reservoir_full) charged=0 shortfall=947912704 free=4294967296 pending=0
zhyve: admitted=0 refused=1 launch_failed=0
" "$ZNOTE" "$Z" -m 5000 -u "$U" "$B"
run "zhyve -p prefer -m 5000: downgraded to no_reservoir" 0 "zhyve: 0badc0de-1111-4222-8333-444455550000: no_reservoir (reservoir_full) charged=5242880000 shortfall=947912704 free=4294967296 pending=0
zhyve: admitted=1 refused=0 launch_failed=0
" "$ZNOTE" "$Z" -p prefer -m 5000 -u "$U" "$B"
run "zhyve -p never -m 512: reservoir not wanted" 0 "zhyve: 0badc0de-1111-4222-8333-444455550000: no_reservoir (reservoir_not_wanted) charged=536870912 shortfall=0 free=4294967296 pending=0
zhyve: admitted=1 refused=0 launch_failed=0
" "$ZNOTE" "$Z" -p never -m 512 -u "$U" "$B"
run "zhyve -m 1024 with a failing bhyve: abort" 3 "zhyve: 0badc0de-1111-4222-8333-444455550000: use_reservoir (ok) charged=1073741824 shortfall=0 free=4294967296 pending=0
zhyve: 0badc0de-1111-4222-8333-444455550000: launch failed (bhyve exit 1)
zhyve: admitted=1 refused=0 launch_failed=1
" "$ZNOTE" "$Z" -m 1024 -u "$U" /bin/false
run "zhyve -q -n 8 -m 768: eight starts, summary only" 0 "zhyve: admitted=8 refused=0 launch_failed=0
" "$ZNOTE" "$Z" -q -n 8 -m 768 -u "$U" "$B"
run "zhyve --no-ledger -m 512 (today's query-and-launch)" 0 "zhyve: 0badc0de-1111-4222-8333-444455550000: use_reservoir (free 4294967296)
zhyve: admitted=1 refused=0 launch_failed=0
" "" "$Z" --no-ledger -m 512 -u "$U" "$B"
if [ -s "$VMMRESV_RUNDIR/admission.ledger" ]; then pass "  ledger is $VMMRESV_RUNDIR/admission.ledger"
else fail "  no ledger in $VMMRESV_RUNDIR"; fi
# 2 + 1 (prefer) + 1 (never) + 8 + 1 (no ledger) bhyves allocated; no VM
# left, nothing allocated, no allocation refused.
expect "  emulator: every VM allocated and destroyed" vm_count=0 alloc=0 alloc_transient=0 \
    allocs_ok=13 allocs_refused=0 free=4294967296 limit_exceeded=0

echo "== zhyve -R (admission under the policy) and the capacity report"
new_host policy
mkdir -p "$host/root/proc"
meminfo() { printf 'MemTotal: 16777216 kB\nMemAvailable: %s kB\n' "$1" > "$host/root/proc/meminfo"; }
run "rsrvrctl -s 4096 (the reservoir)" 0 "" "" "$R" -s 4096
meminfo 8388608
# EVE pillar, 1 GiB, 2 vCPUs: 350 + 20 + 2 x 3 MiB + 2.5% of 1 GiB rounded
# up (26843546) = 421108122; page_t 262144 x 120; minFree of 16 GiB: 6% of
# 4 GiB + 4% of 8 GiB + 2% of 4 GiB = 687194767.
run "zhyve -R -M eve-pillar -c 2 -m 1024: admitted, charged by part" 0 "zhyve: 0badc0de-1111-4222-8333-444455550000: policy model=eve-pillar guest=1073741824 page_t=31457280 overhead=421108122 host=452565402 free=8589934592 free_after=8137369190 state_after=high floor=high floor_bytes=687194767
zhyve: 0badc0de-1111-4222-8333-444455550000: use_reservoir (ok) charged=1073741824 shortfall=0 free=4294967296 pending=0
zhyve: admitted=1 refused=0 launch_failed=0
" "$ZNOTE" "$Z" -R "$host/root" -M eve-pillar -c 2 -m 1024 -u "$U" "$B"
meminfo 1048576
run "zhyve -R -m 1024 with 1 GiB free: refused by the memory state" 0 '*' "$ZNOTE" "$Z" -R "$host/root" -m 1024 -u "$U" "$B"
if grep -q 'refuse (memory_state)' "$tmp/out"; then pass "  the rule named: memory_state"; else fail "  no memory_state refusal"; sed 's/^/    | /' "$tmp/out"; fi
run "report -R -d 1024 -c 2: the JSON report" 0 '*' "" "$out/report" -R "$host/root" -d 1024 -c 2
if grep -q '"schema":"vmmresv-report/2"' "$tmp/out" && grep -q '"driver_dma_bytes":1073741824' "$tmp/out"; then
    pass "  report has its schema and the named input"
else fail "  report text"; sed 's/^/    | /' "$tmp/out"; fi
expect "  emulator: the VM allocated and destroyed, nothing left" vm_count=0 alloc=0 \
    alloc_transient=0 allocs_ok=1 allocs_refused=0 free=4294967296 limit_exceeded=0

echo "== vmmresvadm (every subcommand; a usage error; a refused resize)"
new_host vmmresvadm
A="$out/vmmresvadm"
mkdir -p "$host/root/proc"
printf 'MemTotal: 16777216 kB\nMemAvailable: 12582912 kB\n' > "$host/root/proc/meminfo"
run "vmmresvadm resize -c 1G 4G" 0 "resizing the reservoir from 0 to 4G
reservoir size 0 of 4G (0%)
reservoir size 1G of 4G (25%)
reservoir size 2G of 4G (50%)
reservoir size 3G of 4G (75%)
reservoir size 4G of 4G (100%)
" "" "$A" resize -c 1G 4G
expect "  emulator: 4 GiB free" free=4294967296 limit_exceeded=0
run "vmmresvadm status -Hp -o value (first line)" 0 '*' "" "$A" -R "$host/root" status -Hp -o value
if [ "$(head -n 1 "$tmp/out")" = 4294967296 ]; then pass "  status: reservoir.size 4294967296"
else fail "  status text"; sed 's/^/    | /' "$tmp/out"; fi
run "vmmresvadm status (human)" 0 '*' "" "$A" -R "$host/root" status
run "vmmresvadm report (pretty)" 0 '*' "" "$A" -R "$host/root" report
run "vmmresvadm report -j" 0 '*' "" "$A" -R "$host/root" report -j
if grep -q '"schema":"vmmresv-report/2"' "$tmp/out"; then pass "  report -j has its schema"
else fail "  report -j text"; sed 's/^/    | /' "$tmp/out"; fi
run "vmmresvadm metrics" 0 '*' "" "$A" -R "$host/root" metrics
if grep -qx 'vmmresv_reservoir_size_bytes 4294967296' "$tmp/out"; then pass "  metrics: the reservoir's size"
else fail "  metrics text"; sed 's/^/    | /' "$tmp/out"; fi
run "vmmresvadm reconcile -p" 0 '*' "" "$A" reconcile -p
run "vmmresvadm reconcile -n -Hp" 0 '*' "" "$A" reconcile -n -Hp
run "vmmresvadm claims (none)" 0 "UUID  POOL  SIZE  AGE  STATE  HELD  PID  ZONE
" "" "$A" claims
run "vmmresvadm check -P require" 0 '*' "" "$A" -R "$host/root" check -P require -M fixed -c 2 \
    0b6e6f6e-0000-4000-8000-000000000003 1G
if grep -q '^decision  *use_reservoir$' "$tmp/out"; then pass "  check: use_reservoir"
else fail "  check text"; sed 's/^/    | /' "$tmp/out"; fi
run "vmmresvadm claims after check (still none)" 0 "" "" "$A" claims -H
run "vmmresvadm -F omicron=86.3% status" 0 '*' "" "$A" -R "$host/root" -F omicron=86.3% \
    -F rfd185=8630/10000 status -Hp
run "vmmresvadm -F omicron=86.3: usage, exit 2" 2 "" '*' "$A" -F omicron=86.3 status
run "vmmresvadm check -M bogus: usage, exit 2" 2 "" '*' "$A" check -M bogus \
    0b6e6f6e-0000-4000-8000-000000000003 1G
run "vmmresvadm status -o bogus: usage, exit 2" 2 "" '*' "$A" status -o bogus
run "vmmresvadm resize 100G: refused, exit 1" 1 "resizing the reservoir from 4G to 100G
reservoir size 4G of 100G (0%)
" '*' "$A" resize 100G
# (The status depends on the ledger: NO_SPACE without one, REFUSED with.)
if grep -q "^vmmresvadm: cannot resize the reservoir: " "$tmp/err" &&
    grep -qx "vmmresvadm: the reservoir's size is now 4G (4294967296 bytes)" "$tmp/err"; then
    pass "  the failure and the size reached"
else fail "  resize 100G stderr"; sed 's/^/    | /' "$tmp/err"; fi
expect "  emulator: still 4 GiB free" free=4294967296 limit_exceeded=0

echo "== handles (use after free, double free, stale handles of every type)"
# Every call on a freed handle must return INVALID_ARGUMENT and every
# second free must return, with no read of freed memory and no double
# free: ASan reports either (the library's free goes through ASan's
# quarantine) and the program's own checks fail on a wrong status.
new_host handles
run "handles: freed reservoir, admission and ledger handles" 0 '*' "" "$out/handles"
if tail -n 1 "$tmp/out" | grep -qx 'handles: [0-9]* passed, 0 failed' && ! grep -q '^FAIL' "$tmp/out"; then
    pass "  $(tail -n 1 "$tmp/out")"
else fail "  handles checks"; sed 's/^/    | /' "$tmp/out"; fi

echo
echo "sanitizers: $passed passed, $failed failed"
[ $failed = 0 ]

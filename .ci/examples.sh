#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
#
# The Rust examples (examples/) build and do what they say on an emulated
# host: the LD_PRELOAD emulator of /dev/vmmctl (tests/emu), a fresh state
# and run directory, 16 GiB of RAM.
#
#   resize 4G 1G, the kernel interrupted after every chunk: progress at 1G,
#     2G and 3G, then 4G reached
#   vm_start --keep (3G, require): USE_RESERVOIR; the VM keeps its memory
#   vm_start (2G, prefer): the reservoir is 1G short: NO_RESERVOIR, started
#     without it, destroyed again
#   vm_start (2G, require): REFUSE, exit 3, no VM
#   resize 1G: only the 1G free can leave (no claim is pending, so the
#     kernel answers): the free 1G goes, then NO_SPACE, and it says where
#     the reservoir stands (3G)
#
# and the emulator agrees: one VM holding the whole 3G reservoir, nothing
# over the limit. The examples' binaries alone are preloaded, not cargo.
#
#   bash .ci/examples.sh      (make examples builds the emulator first)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
CARGO=${CARGO:-cargo}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmmresv-examples.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$CARGO" build --locked --examples
bin=target/debug/examples
emu="$root/target/emu/libvmmctl_emu.so"
[ -f "$emu" ] || { echo "examples: $emu is missing: run make emu"; exit 1; }

export VMMEMU_STATE="$tmp/vmmctl.state" VMMEMU_PHYSMEM=16G VMMRESV_RUNDIR="$tmp/run"
failed=0

# run WANT_STATUS NAME ARGS...: the example's output in $tmp/out.
run() {
    local want=$1 rc=0
    shift
    echo "== $*"
    env LD_PRELOAD="$emu" "$bin/$@" > "$tmp/out" 2>&1 || rc=$?
    sed 's/^/   /' "$tmp/out"
    if [ "$rc" != "$want" ]; then
        echo "examples: FAILED: $1 exited $rc, not $want"
        failed=1
    fi
}

# expect LINE: the last run printed exactly this line.
expect() {
    if ! grep -qxF -- "$1" "$tmp/out"; then
        echo "examples: FAILED: no line: $1"
        failed=1
    fi
}

VMMEMU_EINTR_AFTER_CHUNKS=1 run 0 resize 4G 1G
expect "resizing to 4G in chunks of 1G"
expect "progress: 1G of 4G (interrupted, resuming)"
expect "progress: 2G of 4G (interrupted, resuming)"
expect "progress: 3G of 4G (interrupted, resuming)"
expect "reached 4G after 3 interruption(s)"

a=6f1c0e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b
b=7a2d1f3b-4c5e-4f60-9b0c-1d2e3f4a5b6c
c=8b3e2a4c-5d6f-4a71-8c1d-2e3f4a5b6c7d

run 0 vm_start --keep "$a" 3G require
expect "before: reservoir free 4G alloc 0 transient 0 limit 16350203084"
expect "decision UseReservoir, reason Ok: charged 3G, shortfall 0, free 4G, pending 0"
expect "VM $a started with the reservoir; committed 3G"
expect "after: reservoir free 1G alloc 3G transient 0 limit 16350203084"

run 0 vm_start "$b" 2G prefer
expect "decision NoReservoir, reason ReservoirFull: charged 2G, shortfall 1G, free 1G, pending 0"
expect "VM $b started without the reservoir; committed 2G"
expect "VM $b stopped and destroyed"

run 3 vm_start "$c" 2G require
expect "decision Refuse, reason ReservoirFull: charged 0, shortfall 1G, free 1G, pending 0"
expect "VM $c not started"

run 1 resize 1G
expect "reservoir 4G (free 1G), limit 16350203084"
grep -q "not enough space.*(reservoir now 3221225472 bytes)$" "$tmp/out" ||
    { echo "examples: FAILED: the shrink beyond the free memory does not say NO_SPACE and where the reservoir stands"; failed=1; }

echo "== vmmemu_ctl show"
target/emu/vmmemu_ctl show > "$tmp/out"
for line in vm_count=1 alloc=3221225472 free=0 alloc_transient=0 limit_exceeded=0 \
    "vm=$a flags=1 mem=3221225472 arc_resv=0"; do
    expect "$line"
done

if [ "$failed" != 0 ]; then
    echo "examples: FAILED"
    exit 1
fi
echo "examples: vm_start and resize run against the emulator and print what they should"

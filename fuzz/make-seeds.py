#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/seed-* (run from anywhere).

The seeds are committed; this script documents how the binary ones are laid
out (each target's input format is described at the top of its source) and
regenerates them if a format changes. It never deletes other files.
"""

import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "tests", "fixtures", "arc")

K, M, G, T = 1 << 10, 1 << 20, 1 << 30, 1 << 40


def u8(v):
    return struct.pack("<B", v)


def u16(v):
    return struct.pack("<H", v)


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v & (2**64 - 1))


def size(v):
    """Input::size(): selector 4 = a raw u64 (selector 2 = u16 for small)."""
    if v < 65536:
        return u8(2) + u16(v)
    return u8(4) + u64(v)


def write(target, name, data, prefix="seed-"):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, prefix + name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------- size_strings
def size_strings():
    t = "size_strings"
    for name, text in [
        ("64G", b"64G"),
        ("1.5T", b"1.5T"),
        ("512MiB", b"512MiB"),
        ("4096", b"4096"),
        ("ws-64gib", b" \t64gib\r\n"),
        ("fraction-18", b"15.999999999999999999E"),
        ("fraction-19", b"1.0000000000000000000G"),
        ("overflow-16E", b"16E"),
        ("u64max", b"18446744073709551615"),
        ("garbage", b"64 G"),
    ]:
        write(t, name, text)
    write(t, "75pct-of-64G", b"75%\0" + u64(64 * G))
    write(t, "12.5pct-of-8G", b"12.5%\0" + u64(8 * G))
    write(t, "100pct-of-max", b"100.000000000000000000%\0" + u64(2**64 - 1))
    write(t, "pct-no-base", b"75%")


# ---------------------------------------------------------- arc_parsers
def arc_parsers():
    t = "arc_parsers"
    for name, path in [
        ("linux-arcstats", "linux/proc/spl/kstat/zfs/arcstats"),
        ("illumos-kstat-p", "illumos/arcstats.kstat"),
        ("memstat-arcfill", "os8005-4g-arcfill.memstat"),
        ("memstat-fix-before", "os8005-fix-before.memstat"),
        ("memstat-old-pi", "os8005-old-pi.memstat"),
    ]:
        with open(os.path.join(FIX, path), "rb") as f:
            write(t, name, f.read())


# ---------------------------------------------------------- ledger_file
def ops(pool=0, pages=256, hint=0, caps=(0, 0, 0, 0), release=0, reconcile=True, arc=None):
    """The 64-byte operations block. hint: a slot index, or any 64-bit value
    if above 65535. arc: (uuid selector, c_min, c_max, ceiling selector 0 =
    c_max, slack, bytes) or None."""
    b = u8(pool) + size(pages) + (u8(0) + u16(hint) if hint < 65536 else u8(255) + u64(hint))
    for c in caps:
        b += u8(c)
    b += u8(0) + u16(release) + u8(0 if reconcile else 1)
    if arc is None:
        b += u8(1)
    else:
        uuid, c_min, c_max, ceil, slack, nbytes = arc
        b += u8(0) + u8(uuid) + size(c_min) + size(c_max) + u8(ceil) + size(slack) + size(nbytes)
    assert len(b) <= 64, len(b)
    return b.ljust(64, b"\0")


def slot(idx, state, pages, uuid=0, pool=0, gen=1, check_sel=0, pid_sel=1, spill=False, origin=0):
    """pid_sel: 0 pid 0, 1 this process, 2 MAX_PID (only the record locks
    say who lives: nobody holds one on a fresh file).
    check_sel: 0 right check word, 6 wrong."""
    return (
        u16(idx)
        + u8(state)
        + u8((pid_sel << 1) | int(spill))
        + u16(gen)
        + size(pages)
        + u8(uuid)
        + u32(1_700_000_000)
        + u8(origin)
        + u8(pool)
        + u8(check_sel)
    )


def total(tag=0, delta=0, epoch=1, last=0):
    """tag & 3: 0 the slots' sum, 1 below it by delta, 2 above it, 3 raw;
    (tag >> 2) & 3: 0 names no slot, 1 the last apply of slot `last` of the
    image (an index into the slots given), 2 its last release, 3 the raw
    13-bit value `last` (above 4096: a total that does not decode)."""
    return (tag, delta, epoch, last)


def structured(totals, slots):
    b = b""
    for tag, delta, epoch, last in totals:
        b += u8(tag) + u16(delta) + u16(epoch) + u16(last)
    b += u8(len(slots))
    for s in slots:
        b += s
    return b


def ledger_file():
    t = "ledger_file"
    consistent = [total(), total(), total()]
    # 5/0: no file; the library creates an empty ledger.
    write(t, "missing-file", u8(5) + u8(0) + ops() + u8(0))
    # 5/1..4: a directory, a FIFO, a symlink, a group-writable ledger.
    for n, name in [(1, "directory"), (2, "fifo"), (3, "symlink"), (4, "group-writable")]:
        write(t, name, u8(5) + u8(0) + ops() + u8(n))
    # 2: a valid header, no edits: an empty ledger.
    write(t, "valid-empty", u8(2) + u8(0) + ops(pages=1024) + u8(0) + u8(0))
    # 2: the version byte changed to 1, check recomputed: a version-1
    # ledger of the wrong size.
    write(t, "bad-version", u8(2) + u8(0) + ops() + u8(1) + u8(8) + u8(3) + u8(1))
    # 2: the backend changed to 2 (Linux hugetlb), check recomputed: a
    # ledger for another pool.
    write(t, "other-backend", u8(2) + u8(0) + ops() + u8(1) + u8(28) + u8(3) + u8(1))
    # 1: a header-sized prefix of garbage.
    write(t, "garbage-header", u8(1) + u8(0) + ops() + b"VMMRLDG\0" + b"\xff" * 72)
    # 0: a short file.
    write(t, "short-file", u8(0) + u8(0) + ops() + b"VMMRLDG\0\x02\0\0\0")
    # 4: a claim recording this process's pid in slot 7 (but nobody holds
    # its lock: dead); the arbitrary release hits it (NOT_HOLDER).
    write(
        t,
        "dead-claim-own-pid",
        u8(4) + u8(0) + ops(pages=16, hint=7, release=7)
        + structured(consistent, [slot(7, 3, 4096, uuid=1)]),
    )
    # 4: a dead holder's claim and a busy slot: the claim that does not fit
    # reclaims them, and so does reconcile.
    write(
        t,
        "dead-in-the-way",
        u8(4) + u8(0) + ops(pages=8, caps=(3, 3, 3, 3))
        + structured(consistent, [slot(3, 3, 60000, uuid=2, pid_sel=2), slot(4, 1, 1, pid_sel=2)]),
    )
    # 4: a holder dead after its CAS on the total: RESERVING, named by the
    # total's last apply (helped to CLAIMED, then reclaimed).
    write(
        t,
        "dead-after-apply",
        u8(4) + u8(0) + ops(pages=4)
        + structured([total(tag=1 << 2, last=0), total(), total()], [slot(9, 2, 10, uuid=3)]),
    )
    # 4: a holder dead inside its release, after the total's CAS: RELEASING,
    # named by the last release, the total already without it.
    write(
        t,
        "dead-after-release-cas",
        u8(4) + u8(0) + ops(pages=4)
        + structured([total(tag=1 | (2 << 2), delta=10, last=0), total(), total()], [slot(9, 4, 10, uuid=3)]),
    )
    # 4: RELEASING in the reservoir pool, named by the transient total's
    # last release (the slot was reused by another pool since); the claim
    # goes to the transient pool.
    write(
        t,
        "named-by-another-pool",
        u8(4) + u8(0) + ops(pool=1, pages=4)
        + structured([total(), total(tag=2 << 2, last=0), total()], [slot(0, 4, 10, uuid=3)]),
    )
    # 4: a total naming a slot beyond the ledger: it does not decode.
    write(
        t,
        "total-last-out-of-range",
        u8(4) + u8(0) + ops(pages=4)
        + structured([total(tag=3 << 2, last=5000), total(), total()], []),
    )
    # 4: a total larger than its slots (repaired by the claim it blocks).
    write(
        t,
        "total-too-large",
        u8(4) + u8(0) + ops(pages=4, caps=(3, 3, 3, 3))
        + structured([total(tag=2, delta=100), total(), total()], [slot(1, 3, 10, uuid=4)]),
    )
    # 4: a slot with a wrong check word.
    write(
        t,
        "bad-check",
        u8(4) + u8(0) + ops(pages=4)
        + structured(consistent, [slot(2, 3, 10, uuid=5, check_sel=6)]),
    )
    # 4: a FREE slot with the spill bit set (invalid).
    write(
        t,
        "free-with-spill",
        u8(4) + u8(0) + ops(pages=4)
        + structured(consistent, [slot(2, 0, 10, uuid=5, pid_sel=0, spill=True)]),
    )
    # 4: an ARC reservation beside a dead ARC reservation (pool 2), then its
    # release.
    write(
        t,
        "arc-reserve",
        u8(4) + u8(0) + ops(pages=4, arc=(0x11, G, 8 * G, 0, 0, 2 * G))
        + structured(consistent, [slot(40, 3, 1024, uuid=0x22, pool=2)]),
    )
    # 4: an ARC reservation the guard refuses (c_min 7G of c_max 8G).
    write(
        t,
        "arc-refused",
        u8(4) + u8(0) + ops(pages=4, arc=(0x11, 7 * G, 8 * G, 0, 0, 2 * G))
        + structured(consistent, []),
    )
    # Reproducer of a library bug (fuzz/README.md, "Findings"): on a fresh
    # ledger, reserve 2 GiB of ARC with c_min 1G, c_max 8G and a slack of
    # UINT64_MAX: reserve() claims, then target() overflows on the slack;
    # Err(Overflow) is returned and the reservation stays in the ledger.
    write(
        t,
        "arc-slack-overflow",
        u8(5) + u8(0) + ops(pages=4, reconcile=False, arc=(0x11, G, 8 * G, 0, 2**64 - 1, 2 * G)) + u8(0),
        prefix="repro-",
    )
    # Reproducer of a library bug (fuzz/README.md, "Findings"): the last
    # slot holds a claim and the claim's hint is usize::MAX: the slot
    # search's `hint + k` overflowed.
    write(
        t,
        "ledger-hint-overflow",
        u8(4) + u8(0) + ops(pages=4, hint=2**64 - 1, reconcile=False)
        + structured(consistent, [slot(4095, 3, 10, uuid=9)]),
        prefix="repro-",
    )
    # Reproducer of a library bug (found by this target on the v2 layout):
    # the reservoir total names FREE slot 0 as its last apply; the claim
    # takes slot 0, helps itself to CLAIMED (its pages not in the total),
    # fails on its capacity reading, and leaves the slot CLAIMED with nobody
    # holding it (a reclaim then takes off pages that were never added).
    write(
        t,
        "total-names-free-slot",
        u8(4) + u8(0) + ops(pages=4, hint=0, caps=(2, 2, 2, 2), reconcile=False)
        + structured([total(tag=1 << 2, last=0), total(), total()], [slot(0, 0, 4, pid_sel=0)]),
        prefix="repro-",
    )
    # 3: a valid header, raw totals and spill words and one raw slot.
    write(
        t,
        "raw-slot",
        u8(3) + u8(0) + ops() + u64(5) + u64(0) + u64(0) + u64(0) + u16(0)
        + u64(3 | (1 << 4)) + u64(0) + u64(5) + u64(0) * 5,
    )


# ---------------------------------------------------------- reservoir_kernel
EINTR_SEL, ENOMEM_SEL, ENOSPC_SEL, EALREADY_SEL = 1, 2, 3, 4


def q_ok(free, alloc=0, transient=0, limit=T):
    return u8(0) + u8(0) + size(free) + size(alloc) + size(transient) + size(limit)


def q_err(sel):
    return u8(0) + u8(sel)


def s_ans(sel, result, scribble=False):
    return u8(1 | (2 if scribble else 0)) + u8(sel) + size(result)


def reservoir_kernel():
    t = "reservoir_kernel"
    set_target = lambda tgt, ch: u8(0) + size(tgt) + size(ch)
    add = lambda b, ch: u8(1) + size(b) + size(ch)
    remove = lambda b, ch: u8(2) + size(b) + size(ch)
    # set target 4G in 1G chunks, two EINTRs, then success.
    write(
        t,
        "eintr-resume",
        set_target(4 * G, G) + u8(255) + u8(0)
        + q_ok(0) + s_ans(EINTR_SEL, G) + s_ans(EINTR_SEL, 2 * G) + s_ans(0, 4 * G),
    )
    # add 2G; cancelled at the first EINTR.
    write(
        t,
        "add-cancel",
        add(2 * G, 512 * M) + u8(1) + u8(0)
        + q_ok(8 * G, 2 * G) + s_ans(EINTR_SEL, 10 * G + 512 * M),
    )
    # remove 1G; ENOSPC after partial progress, the query says where.
    write(
        t,
        "remove-enospc",
        remove(G, 256 * M) + u8(0) + u8(0)
        + q_ok(4 * G) + s_ans(ENOSPC_SEL, 0) + q_ok(3 * G + 512 * M),
    )
    # grow; ENOMEM and a kernel that scribbles on the request; the
    # follow-up query fails.
    write(
        t,
        "enomem-scribble-query-fails",
        set_target(64 * G, G) + u8(0) + u8(0)
        + q_ok(G) + s_ans(ENOMEM_SEL, 12345, scribble=True) + q_err(ENOMEM_SEL),
    )
    # EALREADY (another resizer).
    write(t, "ealready", set_target(8 * G, 0) + u8(0) + u8(0) + s_ans(EALREADY_SEL, 0))
    # an interrupted query, then query_with alone, then an unaligned target.
    write(
        t,
        "query-eintr-unaligned",
        set_target(4097, 0) + u8(0) + u8(1) + q_err(EINTR_SEL) + q_ok(16 * G),
    )
    # a query that fails outright.
    write(t, "query-eperm", add(G, 0) + u8(0) + u8(0) + q_err(6))


# ---------------------------------------------------------- c_abi_sequences
def c_abi_sequences():
    t = "c_abi_sequences"

    def tgt(h):
        # 0-3: handle slots; 4: NULL; 6: foreign memory, 7: misaligned
        # foreign memory (then its 64 bits; for 7 they also give the offset).
        return u8(h) + (u64(0x0101010101010101) if h % 8 >= 6 else b"")

    new = lambda slot, cap: u8(0) + u8(slot << 4) + size(cap)
    claim = lambda h, pages: u8(2) + u8(0) + tgt(h) + size(pages)
    release = lambda h, pages: u8(3) + u8(0) + tgt(h) + size(pages)
    setcap = lambda h, cap: u8(4) + u8(0) + tgt(h) + size(cap)
    usage = lambda h: u8(5) + u8(0) + tgt(h)
    free = lambda h: u8(1) + u8(0) + tgt(h)
    write(
        t,
        "ledger-lifecycle",
        new(0, 1000) + claim(0, 600) + claim(0, 500) + setcap(0, 100) + usage(0)
        + release(0, 600) + setcap(0, 100) + claim(0, 100) + usage(0) + free(0),
    )
    write(
        t,
        "null-and-foreign",
        new(1, 10) + claim(4, 1) + claim(6, 1) + release(6, 1) + setcap(4, 5)
        + usage(6) + free(6) + claim(7, 1) + usage(7) + free(7) + free(4) + usage(1) + free(1),
    )
    write(t, "new-too-large", new(2, 1 << 48) + new(2, (1 << 48) - 1) + claim(2, (1 << 48) - 1))
    # size_parse "64G" (base 0), "75%" with a base, format into 3 and 5
    # bytes, btopr with a 4 KiB page, round_up, page_t_overhead, strerror
    # of a status and of 12345, abi_version.
    write(
        t,
        "pure-functions",
        u8(9) + u8(0) + u8(3) + b"64G"
        + u8(9) + u8(0x10) + u8(3) + b"75%" + size(64 << 30)
        + u8(10) + u8(0) + size(1536) + u8(3)
        + u8(10) + u8(0) + size(1536) + u8(5)
        + u8(6) + u8(0x10) + size(8193) + u8(0)
        + u8(7) + u8(0) + size(4097) + size(4096)
        + u8(8) + u8(0) + size(1 << 28)
        + u8(11) + u8(0) + u8(3) + u8(11) + u8(0x10) + u32(12345)
        + u8(12) + u8(0),
    )


# ---------------------------------------------------------- policy
def policy():
    """SEL (0 planner, 1 overhead, 2 states + EWMA, 3 headroom, 4 report,
    5 text) then the part's layout (fuzz_targets/policy.rs decode_*)."""
    t = "policy"
    # Kinds index OverheadKind::ALL: Fixed, Proportional, Pooled, Vmadm,
    # EvePillar. bp(): selector 1 = u16 % 10001. vcpus(): u8 < 240 then u8.
    bp = lambda v: u8(1) + u16(v)
    vcpus = lambda n: u8(0) + u8(n)
    spec = lambda guest, n, mmio=None, cap=None: (
        size(guest) + vcpus(n) + u8((mmio is not None) | (cap is not None) << 1)
        + (size(mmio) if mmio is not None else b"") + (size(cap) if cap is not None else b"")
    )

    # planner: DEMAND N (SIZE FLOOR_SEL FLOOR SCORE_SEL SCORE)*N; score
    # selector < 248 then (u8 % 7) - 3.
    def consumer(sz, floor, score):
        return size(sz) + u8(2) + size(floor) + u8(0) + u8(score + 3)

    write(t, "planner-tiers", u8(0) + size(9 * G) + u8(3)
          + consumer(8 * G, 4 * G, 3) + consumer(6 * G, 2 * G, -3) + consumer(4 * G, G, -1))
    write(t, "planner-remainders", u8(0) + size(10) + u8(4)
          + consumer(100, 0, -1) + consumer(100, 0, -1) + consumer(100, 0, -1)
          + consumer(3, 5, -2))
    # overhead: KIND PARAMS(FLAGS ...) HOST N (SPEC LIMIT USAGE)*N NEWFLAG [SPEC]
    # The EVE-OS proposal's stuck VM: a 12.5% pool of 6400 MiB, A uses
    # 500 MiB, B arrives: A stuck.
    write(t, "overhead-pooled-stuck", u8(1) + u8(2) + u16(1 << 2) + bp(1250) + size(6400 * M)
          + u8(1) + spec(4 * G, 2) + size(600 * M) + size(500 * M) + u8(1) + spec(4 * G, 2))
    write(t, "overhead-eve-mmio", u8(1) + u8(4) + u16(0) + size(0) + u8(0) + u8(1)
          + spec(4 * G, 2, mmio=256 * M))
    write(t, "overhead-vmadm-caps", u8(1) + u8(3) + u16(0) + size(64 * G) + u8(2)
          + spec(8 * G, 4, cap=10 * G) + size(2 * G) + size(3 * G)
          + spec(8 * G, 4, cap=8 * G + 100 * M) + size(0) + size(0) + u8(0))
    # Σ excess passes 2^64 at the second VM, before the third's cap below
    # its guest: Overflow, not InvalidArgument (the first failure wins).
    write(t, "overhead-excess-overflow-first", u8(1) + u8(3) + u16(0) + size(64 * G) + u8(3)
          + spec(8 * G, 4) + size(0) + size(2**64 - 1)
          + spec(8 * G, 4) + size(0) + size(2**64 - 1)
          + spec(8 * G, 4, cap=G) + size(0) + size(0) + u8(0))
    # states: SCALE(FLAGS ...) PHYSMEM FREE FREE TAU N (DT_SEL DT SAMPLE)*N
    write(t, "states-100g-ewma", u8(2) + u8(0) + size(100 * G) + size(G) + size(2 * G)
          + u64(2 * 10**9) + u8(3)
          + u8(2) + u64(10**9) + u64(900) + u8(0) + u64(0) + u8(2) + u64(10**9) + u64(0))
    # headroom: 7 sizes, KLIMIT, pct() x3 around EARMARK, CAPS, then the
    # kernel-limit round trip (pages). pct(): selector 0 = a table index
    # (2 = 75, 4 = 91, 3 = 85).
    pct = lambda i: u8(0) + u8(i)
    write(t, "headroom-256g", u8(3) + size(256 * G) + size(10 * G) + size(4 * G) + size(3 * G)
          + size(16 * G) + size(2 * G) + size(8 * G)
          + size(243 * G) + pct(2) + pct(4) + size(44 * G) + pct(3) + size(40 * G)
          + u64(128 * G // 4096) + u64(128 * G // 4096 // 25 + 1024))
    # report: QUERY(4) PENDING(3) KIND PARAMS SCALE FLOOR PHYSMEM FREE_SEL
    # FREE ARC_FLAG [...] DMA ZONES OS BUFFER EARMARK CAPS CHUNK_SEL VCPUS
    tail = size(0) * 6 + u8(0) + vcpus(2)
    write(t, "report-fixed", u8(4) + size(10 * G) + size(0) + size(0) + size(60 * G)
          + size(2 * G) + size(0) + size(0) + u8(0) + u16(0) + u8(0) + u8(0)
          + size(64 * G) + u8(0) + size(24 * G) + u8(0) + tail)
    write(t, "report-pooled-arc", u8(4) + size(8 * G) + size(0) + size(2 * G) + size(60 * G)
          + size(0) + size(G) + size(512 * M) + u8(2) + u16(0) + u8(0) + u8(1)
          + size(64 * G) + u8(0) + size(30 * G)
          + u8(1) + size(G) + size(8 * G) + u8(0) + size(64 * M) + size(6 * G) + tail)
    write(t, "report-free-above-physmem", u8(4) + size(0) * 7 + u8(3) + u16(0) + u8(0) + u8(0)
          + size(G) + u8(3) + size(2 * G) + u8(0) + tail)
    # text: LIMIT CHUNK_SEL PCT TEXT
    text = lambda body: u8(5) + size(100 * G) + u8(1) + u8(75) + body
    write(t, "text-meminfo", text(b"MemTotal:       24551360 kB\nMemFree:         1201212 kB\n"
                                  b"MemAvailable:   18102336 kB\nBuffers:          123456 kB\n"))
    write(t, "text-system-pages", text(b"unix:0:system_pages:availrmem\t1000\n"
                                       b"unix:0:system_pages:freemem\t2048\n"
                                       b"unix:0:system_pages:physmem\t8388608\n"))
    write(t, "text-config", text(b"# vmmresv.conf\n reservoir_size = 1.5T \n\nchunk_size=1G\n"))
    write(t, "text-config-bad", text(b"reservoir_size=75%\nreservoir_size=12G\n"))
    write(t, "text-setting-size", text(b" 12288M\n"))
    write(t, "text-setting-pct", text(b"75%"))


def ledger_protocol():
    """CAPS (3 bytes, pages % 80 per pool), then operations: a kind byte
    (0/1 claim: WHO POOL PAGES-1 HINT DIE; 2 release: PICK DIE; 3 release by
    another: PICK WHO; 4 kill: WHO; 5 reconcile: WHO). DIE below 12 is the
    step the process dies at, 99 never."""
    t = "ledger_protocol"
    claim = lambda who, pool, pages, hint=0, die=99: bytes([0, who, pool, pages - 1, hint, die])
    release = lambda pick, die=99: bytes([2, pick, die])
    other = lambda pick, who: bytes([3, pick, who])
    kill = lambda who: bytes([4, who])
    reconcile = lambda who: bytes([5, who])
    caps = lambda a, b, c: bytes([a, b, c])
    # A claim, one refused (10 + 26 > 40), a release, a reconcile.
    write(t, "claim-refuse-release", caps(40, 30, 20) + claim(0, 0, 10) + claim(1, 0, 26, 1)
          + release(0) + reconcile(0))
    # A claim in each pool, the first holder killed, a reconcile, a
    # release by a process that does not hold the claim.
    write(t, "kill-then-reconcile", caps(60, 60, 60) + claim(0, 0, 6) + claim(1, 1, 6, 1)
          + claim(2, 2, 6, 2) + kill(0) + reconcile(1) + other(0, 2))
    # A holder dying at each step of a claim (its capacity reading included).
    write(t, "die-in-claim", caps(50, 50, 50)
          + b"".join(claim(0, 0, 4, 0, k) for k in range(8)) + reconcile(1))
    # Holders dying inside a release.
    write(t, "die-in-release", caps(50, 50, 50) + claim(0, 0, 4) + claim(1, 1, 4, 1)
          + release(0, 0) + release(0, 2) + reconcile(2))
    # More claims than slots (8).
    write(t, "full", caps(79, 79, 79)
          + b"".join(claim(i % 3, i % 3, 1, i) for i in range(10)) + reconcile(0))


if __name__ == "__main__":
    import sys

    # Every target's seeds, or only those named: make-seeds.py policy
    targets = [size_strings, arc_parsers, ledger_file, ledger_protocol, reservoir_kernel,
               c_abi_sequences, policy]
    wanted = set(sys.argv[1:])
    for f in targets:
        if not wanted or f.__name__ in wanted:
            f()

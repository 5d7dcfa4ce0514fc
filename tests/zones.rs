//! Admission in the shape it is deployed in (issue 12): every VM launcher
//! in its own zone.
//!
//! On SmartOS/Triton, OmniOS and Oxide each VM's launcher runs in a zone of
//! its own, and a zone's /proc shows only that zone's processes; the one
//! ledger is a global-zone directory lofs-mounted into each zone
//! (docs/zones.md). The Linux analog used here: each
//! launcher in its own PID + mount namespace (`unshare --pid --fork --mount
//! --mount-proc`), with the host's ledger directory — which also holds the
//! /dev/vmmctl emulator's state file — bind-mounted at a different path in
//! each, and the host's own path hidden under an empty tmpfs there.
//!
//! The launchers are C programs linked with -lvmmresv only:
//! tests/c/zhyve.c (admit → bhyve → commit, in a loop) for the race, and
//! tests/c/zlaunch.c, driven line by line, for the scenarios that need an
//! exact order of events. tests/c/bhyve.c allocates the VM's memory from
//! the emulated reservoir, which refuses an allocation the reservoir cannot
//! cover ("Unable to allocate memory (N), retrying in 1 second", counted in
//! the emulator's `allocs_refused`): an over-admission shows up there.
//!
//! Needs root (namespaces, mounts): each test prints `SKIPPED:` and
//! returns otherwise. CI runs as root.
//!
//! Against the first liveness design (a claim's owner = pid + start time,
//! read from /proc — what main had before the ledger v2 rewrite), the
//! namespace tests fail: a launcher in another namespace finds the
//! claimant's pid missing from its /proc (or naming one of its own
//! processes with another start time), takes the live claimant for dead and
//! reclaims its claim. What each one showed is written in its comment.

// Tests are not the library: a panic is how a check fails, and their
// arithmetic, casts and indexing are on values they chose. The strict
// lints of Cargo.toml are for the library; their unsafe calls (system
// calls and the C ABI, as a C caller makes them) carry SAFETY comments.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions,
    unsafe_code
)]
// The Linux emulator and namespaces: Linux only.
#![cfg(target_os = "linux")]

mod common;
#[path = "common/launcher.rs"]
mod launcher;

use std::time::Instant;

use common::{zhyve_runs, ZhyveRun, GIB, MIB};
use launcher::*;

const HOST_RAM: u64 = 16 * GIB;

// ---------------------------------------------------------------------
// The 16-launcher race
// ---------------------------------------------------------------------

/// Concurrent zhyves, each in its own namespace.
const ZHYVES: usize = 16;
/// Admissions per run (VMMRESV_ZONES_LONG=1: LONG_ADMISSIONS).
const ADMISSIONS: usize = 10_000;
const LONG_ADMISSIONS: usize = 100_000;
/// A reservoir that fits five or six of the VMs at once.
const RACE_RESERVOIR_MIB: u64 = 4096;

/// VM size of zhyve `i`: 512, 768 or 1024 MiB.
fn vm_mib(i: usize) -> u64 {
    512 + 256 * (i % 3) as u64
}

/// Sixteen zhyves, each in its own zone, `per` VM starts each: admit →
/// bhyve creates the VM and, 2 ms later (a slow boot, so claims stay
/// pending a while), allocates its memory → commit → the VM is stopped and
/// destroyed; a refused start waits 1 ms and tries the next.
fn zoned_race(host: &Host, per: usize) -> Vec<ZhyveRun> {
    let n = per.to_string();
    let bh = bhyve().display().to_string();
    let mut cmds = Vec::new();
    for i in 0..ZHYVES {
        let uuid = format!("{:08x}-2015-4e0e-9a1b-5e6d7c8b0000", i);
        let mib = vm_mib(i).to_string();
        let args = [
            "-q",
            "-B",
            "1",
            "-D",
            "2",
            "-p",
            "require",
            "-n",
            n.as_str(),
            "-u",
            uuid.as_str(),
            "-m",
            mib.as_str(),
            bh.as_str(),
        ];
        cmds.push(host.zoned(i, 0, zhyve(), &args));
    }
    zhyve_runs(host.emu.dir.path(), cmds)
}

fn show(runs: &[ZhyveRun]) -> String {
    runs.iter()
        .enumerate()
        .map(|(i, r)| {
            format!(
                "zone {} ({} MiB): {}\n{}{}",
                i,
                vm_mib(i),
                r.status,
                r.stdout,
                r.stderr.lines().take(5).collect::<Vec<_>>().join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sixteen zhyves, each in its own PID + mount namespace with the ledger
/// directory bind-mounted at its own path, race for a 4 GiB reservoir with
/// VMs of 512–1024 MiB (five or six fit, sixteen want in): ≥ 10,000
/// admissions, and not one VM admitted onto the reservoir finds it short.
///
/// Asserts: every zhyve exits 0 with launch_failed = 0 and all its starts
/// accounted (admitted + refused = per), no bhyve printed "Unable to
/// allocate memory", the emulator refused no allocation (`allocs_refused`
/// = 0) and saw exactly one successful allocation per admitted start,
/// never exceeded the limit; there was contention (admissions and
/// refusals both > 0); at the end no VM is left and the reservoir is all
/// free again.
///
/// VMMRESV_ZONES_LONG=1 runs 100,000 admissions instead.
///
/// Against pid + start-time liveness (main at 40f3a4a), 16 × 625 starts,
/// it failed every time: in three runs only 650, 1,274 and 646 admissions
/// were made before 15, 14 and 15 of the 16 zhyves had exited 1 with
/// `zhyve: vmmresv_commit: this process holds no claim for that VM (status
/// 7024)`: a zone had taken their live claims for dead (their pid, 4 in
/// every namespace, names another process there, with another start time)
/// and reclaimed them. In those runs no bhyve happened to find the
/// reservoir short (each zhyve stopped at its first lost claim, so few VMs
/// overlapped); tests `zones_two_launchers_regression` shows that step.
///
/// After the ledger v2 rewrite (liveness from POSIX record locks), on the
/// 2-core development VM shared with other jobs (load about 6), test
/// profile, release .so:
/// - default: 10,000 admissions (2,430 VMs on the reservoir, 7,570
///   refused), 0 launches failed, 0 allocations refused by the emulated
///   kernel, in 2.6 s (wall time of the 16 zones);
/// - 2026-12-06, VMMRESV_ZONES_LONG=1: 100,000 admissions (23,021 VMs on
///   the reservoir, each allocated by its bhyve; 76,979 refused), 0
///   launches failed, 0 allocations refused, limit never exceeded, every
///   zhyve exited 0, in 27.7 s.
#[test]
fn zones_race_16_launchers() {
    if !zones_available("zones_race_16_launchers") {
        return;
    }
    let long = std::env::var_os("VMMRESV_ZONES_LONG").is_some_and(|v| v == "1");
    let want = if long { LONG_ADMISSIONS } else { ADMISSIONS };
    let per = want.div_ceil(ZHYVES);
    let host = Host::new("zones-race", HOST_RAM, RACE_RESERVOIR_MIB);
    let t0 = Instant::now();
    let runs = zoned_race(&host, per);
    let secs = t0.elapsed().as_secs_f64();
    let all = show(&runs);
    let admitted: u64 = runs.iter().map(|r| r.admitted).sum();
    let refused: u64 = runs.iter().map(|r| r.refused).sum();
    let failed: u64 = runs.iter().map(|r| r.launch_failed).sum();
    let short: usize = runs
        .iter()
        .map(|r| r.stderr.matches("Unable to allocate memory").count())
        .sum();
    let allocs_refused = host.stat("allocs_refused");
    eprintln!(
        "zones_race_16_launchers: {} zones, {} admissions ({} on the reservoir, {} refused), \
         {} launches failed, {} bhyves found the reservoir short, emulator allocs_refused={}, \
         {} zhyves exited non-zero, in {:.1} s",
        ZHYVES,
        admitted + refused,
        admitted,
        refused,
        failed,
        short,
        allocs_refused,
        runs.iter().filter(|r| !r.status.success()).count(),
        secs
    );
    assert_eq!(
        allocs_refused, 0,
        "over-admission: the reservoir was short for {} admitted VMs\n{}",
        allocs_refused, all
    );
    assert_eq!(short, 0, "a bhyve found the reservoir short\n{}", all);
    for (i, r) in runs.iter().enumerate() {
        assert!(r.status.success(), "zone {} failed\n{}", i, all);
        assert_eq!(r.launch_failed, 0, "zone {}\n{}", i, all);
        assert_eq!(r.admitted + r.refused, per as u64, "zone {}\n{}", i, all);
    }
    assert!(admitted + refused >= want as u64);
    assert!(admitted > 0 && refused > 0, "no contention\n{}", all);
    assert_eq!(host.stat("allocs_ok"), admitted);
    assert_eq!(host.stat("limit_exceeded"), 0);
    assert!(host.stat("max_total_seen") <= host.stat("limit"));
    assert_eq!(host.stat("vm_count"), 0, "VMs left behind");
    assert_eq!(host.stat("free"), RACE_RESERVOIR_MIB * MIB);

    // Nothing left claimed: a 4 GiB VM (the whole reservoir) is admitted.
    let mut l = Launcher::start(&host, Place::Zone(ZHYVES, 0), "check");
    let v = l.admit(&uuid(0x12, 1), RACE_RESERVOIR_MIB);
    assert_eq!(v["decision"], decision::USE_RESERVOIR, "{:?}", v);
    assert_eq!(l.abort(&uuid(0x12, 1)), status::OK);
}

// ---------------------------------------------------------------------
// Two launchers (issue 12's scenario)
// ---------------------------------------------------------------------

const TWO_RESERVOIR_MIB: u64 = 2048;
const TWO_VM_MIB: u64 = 1536;

/// The two-launcher scenario, with A and B at `a` and `b`. Returns what B's
/// admission answered, A's bhyve, A's commit, and both launchers' stderr.
fn two_launchers(tag: &str, a_at: Place, b_at: Place) -> (Reply, String, u64, String) {
    let host = Host::new(tag, HOST_RAM, TWO_RESERVOIR_MIB);
    let (ua, ub) = (uuid(0xa, 1), uuid(0xb, 1));
    let mut a = Launcher::start(&host, a_at, "A");
    let mut b = Launcher::start(&host, b_at, "B");

    // A admits 1536 MiB and holds the claim: its bhyve is slow to allocate.
    let va = a.admit(&ua, TWO_VM_MIB);
    assert_eq!(va["status"], status::OK, "{:?}", va);
    assert_eq!(va["decision"], decision::USE_RESERVOIR, "{:?}", va);

    // B, meanwhile, asks for 1536 MiB too.
    let vb = b.admit(&ub, TWO_VM_MIB);
    if vb["status"] == status::OK && vb["decision"] == decision::USE_RESERVOIR {
        // B's VM takes its memory.
        assert_eq!(b.bhyve("vm-b", TWO_VM_MIB), "bhyve ready");
    }

    // A's bhyve allocates now; then A commits.
    let a_bhyve = a.bhyve("vm-a", TWO_VM_MIB);
    let a_commit = a.commit(&ua);
    if a_bhyve == "bhyve ready" {
        assert_eq!(a.stop(), "stop exit=0");
    }
    if vb["decision"] == decision::USE_RESERVOIR {
        assert_eq!(b.stop(), "stop exit=0");
        b.commit(&ub);
    }
    let err = format!("A:\n{}B:\n{}", a.stderr(), b.stderr());
    assert!(a.quit().success());
    assert!(b.quit().success());
    assert_eq!(host.stat("vm_count"), 0);
    (vb, a_bhyve, a_commit, err)
}

/// Issue 12's two-launcher scenario, as a named regression test. Reservoir
/// 2048 MiB; launcher A admits 1536 MiB and holds its claim while its bhyve
/// is slow to allocate; launcher B, in another namespace, asks for 1536 MiB.
/// A's pid is raised (8 extra processes in A's namespace) so that B's /proc
/// has no such pid at all.
///
/// Asserts: B is refused, reason RESERVOIR_FULL, shortfall exactly 1 GiB
/// (2048 − 1536 left 512 MiB of 1536); A's bhyve then gets its memory and
/// A's commit succeeds.
///
/// Against pid + start-time liveness (main at 40f3a4a) it failed as the
/// issue tells it: B found A's pid (12 in A's namespace) missing from its
/// /proc, reclaimed A's claim and was admitted 1536 MiB (`admit status=0
/// decision=1 reason=0 charged=1610612736 shortfall=0 pending=0`); A's
/// bhyve printed `Unable to allocate memory (1610612736), retrying in 1
/// second` (exit 4) and A's commit returned NOT_FOUND (status 7024).
#[test]
fn zones_two_launchers_regression() {
    if !zones_available("zones_two_launchers_regression") {
        return;
    }
    let (vb, a_bhyve, a_commit, err) =
        two_launchers("zones-two", Place::Zone(0, 8), Place::Zone(1, 0));
    assert_eq!(vb["status"], status::OK, "B's admit: {:?}\n{}", vb, err);
    assert_eq!(
        vb["decision"],
        decision::REFUSE,
        "B was admitted on top of A's live claim: {:?}; A's bhyve: {}; A's commit: {}\n{}",
        vb,
        a_bhyve,
        a_commit,
        err
    );
    assert_eq!(vb["reason"], reason::RESERVOIR_FULL, "{:?}", vb);
    assert_eq!(vb["shortfall"], GIB, "{:?}", vb);
    assert_eq!(a_bhyve, "bhyve ready", "{}", err);
    assert!(!err.contains("Unable to allocate memory"), "{}", err);
    assert_eq!(a_commit, status::OK, "{}", err);
}

/// The same scenario without namespaces (both launchers plain processes of
/// the host): B is refused with a 1 GiB shortfall, A's VM starts and A
/// commits. This passed before the liveness rewrite too; it is the control
/// for the test above.
#[test]
fn two_launchers_without_namespaces() {
    let (vb, a_bhyve, a_commit, err) = two_launchers("two-plain", Place::Plain, Place::Plain);
    assert_eq!(vb["status"], status::OK, "{:?}\n{}", vb, err);
    assert_eq!(vb["decision"], decision::REFUSE, "{:?}\n{}", vb, err);
    assert_eq!(vb["reason"], reason::RESERVOIR_FULL, "{:?}", vb);
    assert_eq!(vb["shortfall"], GIB, "{:?}", vb);
    assert_eq!(a_bhyve, "bhyve ready", "{}", err);
    assert_eq!(a_commit, status::OK, "{}", err);
}

// ---------------------------------------------------------------------
// kill -9 and SIGSTOP across zones
// ---------------------------------------------------------------------

/// A claimant in one zone killed with SIGKILL: its claim is reclaimed by an
/// admission from another zone, and only then.
///
/// Reservoir 4 GiB. K (zone 0) admits 3 GiB. L (zone 1) asks for 3 GiB:
/// refused, shortfall 2 GiB, while K lives. kill -9 K (its whole namespace
/// goes with it). L asks again: admitted 3 GiB, and its VM gets the memory.
/// A reconcile from a third zone then finds the ledger consistent.
///
/// Against pid + start-time liveness (main at 40f3a4a) the first step
/// already failed: L was admitted 3 GiB on top of K's live 3 GiB claim.
#[test]
fn zones_kill9_claimant_reclaimed_from_another_zone() {
    if !zones_available("zones_kill9_claimant_reclaimed_from_another_zone") {
        return;
    }
    let host = Host::new("zones-kill9", HOST_RAM, 4096);
    let (uk, ul) = (uuid(0x9, 1), uuid(0x9, 2));
    let mut k = Launcher::start(&host, Place::Zone(0, 3), "K");
    let mut l = Launcher::start(&host, Place::Zone(1, 0), "L");

    let vk = k.admit(&uk, 3072);
    assert_eq!(vk["decision"], decision::USE_RESERVOIR, "{:?}", vk);

    let v = l.admit(&ul, 3072);
    assert_eq!(v["status"], status::OK, "{:?}", v);
    assert_eq!(
        v["decision"],
        decision::REFUSE,
        "admitted on top of a live claim in another zone: {:?}",
        v
    );
    assert_eq!(v["reason"], reason::RESERVOIR_FULL);
    assert_eq!(v["shortfall"], 2 * GIB);

    let st = k.kill9();
    assert!(!st.success(), "K's namespace ended: {}", st);

    let v = l.admit(&ul, 3072);
    assert_eq!(v["status"], status::OK, "{:?}", v);
    assert_eq!(
        v["decision"],
        decision::USE_RESERVOIR,
        "the dead claimant's claim was not reclaimed: {:?}",
        v
    );
    assert_eq!(v["charged"], 3 * GIB);
    assert_eq!(l.bhyve("vm-l", 3072), "bhyve ready", "{}", l.stderr());
    assert_eq!(l.commit(&ul), status::OK);

    let mut r = Launcher::start(&host, Place::Zone(2, 0), "R");
    let rc = r.reconcile();
    assert_eq!(rc["status"], status::OK, "{:?}", rc);
    assert_eq!(rc["after"], 0, "{:?}", rc);
    assert_eq!(l.stop(), "stop exit=0");
    assert!(l.quit().success());
    assert_eq!(host.stat("allocs_refused"), 0);
    assert_eq!(host.stat("vm_count"), 0);
}

/// A SIGSTOPped claimant in one zone keeps its claim and blocks nobody.
///
/// Reservoir 6 GiB. S (zone 0) admits 2 GiB and is stopped. D (zone 1)
/// admits 2 GiB and is killed with SIGKILL. N (zone 2): a 3 GiB VM is
/// admitted (D's claim reclaimed: 6 − 2 held by S leaves 4) and its bhyve
/// gets the memory; a further 2 GiB VM is refused with a 1 GiB shortfall
/// (S's claim is still counted); a reconcile succeeds with S's claim live
/// and D's gone. Every call returns while S is stopped (a wait would hang
/// the test, not fail it on a clock). Then S is resumed and commits.
///
/// Against pid + start-time liveness (main at 40f3a4a): S's live claim was
/// taken for dead from zone 2 along with D's, and the 2 GiB VM was admitted
/// on top of it.
#[test]
fn zones_sigstopped_claimant_keeps_claim_blocks_nobody() {
    if !zones_available("zones_sigstopped_claimant_keeps_claim_blocks_nobody") {
        return;
    }
    let host = Host::new("zones-stop", HOST_RAM, 6144);
    let (us, ud, un1, un2) = (uuid(0x5, 1), uuid(0x5, 2), uuid(0x5, 3), uuid(0x5, 4));
    let mut s = Launcher::start(&host, Place::Zone(0, 5), "S");
    let mut d = Launcher::start(&host, Place::Zone(1, 2), "D");
    let mut n = Launcher::start(&host, Place::Zone(2, 0), "N");

    assert_eq!(s.admit(&us, 2048)["decision"], decision::USE_RESERVOIR);
    assert_eq!(d.admit(&ud, 2048)["decision"], decision::USE_RESERVOIR);
    s.stop_process();
    d.kill9();

    let v = n.admit(&un1, 3072);
    assert_eq!(v["status"], status::OK, "{:?}", v);
    assert_eq!(
        v["decision"],
        decision::USE_RESERVOIR,
        "the dead claim was not reclaimed: {:?}",
        v
    );
    assert_eq!(n.bhyve("vm-n1", 3072), "bhyve ready", "{}", n.stderr());
    assert_eq!(n.commit(&un1), status::OK);

    let v = n.admit(&un2, 2048);
    assert_eq!(v["status"], status::OK, "{:?}", v);
    assert_eq!(
        v["decision"],
        decision::REFUSE,
        "admitted on top of the stopped claimant's claim: {:?}",
        v
    );
    assert_eq!(v["reason"], reason::RESERVOIR_FULL);
    assert_eq!(v["shortfall"], GIB, "{:?}", v);

    let rc = n.reconcile();
    assert_eq!(rc["status"], status::OK, "{:?}", rc);
    assert_eq!(rc["after"], 2 * GIB, "S's claim is the one left: {:?}", rc);
    assert_eq!(rc["live"], 1, "{:?}", rc);

    s.resume();
    assert_eq!(s.commit(&us), status::OK, "{}", s.stderr());
    assert_eq!(n.stop(), "stop exit=0");
    assert!(s.quit().success());
    assert!(n.quit().success());
    assert_eq!(host.stat("allocs_refused"), 0);
    assert_eq!(host.stat("vm_count"), 0);
}

//! Whether a claim's holder is alive, asked of plain processes (no
//! namespaces; tests/zones.rs has those): the over-admissions the first
//! liveness design (pid + start time read from /proc/<pid>/stat) allowed,
//! each as a regression test, and a claimant stopped in the middle of a
//! claim (issue 13, item 4).
//!
//! The actors are tests/c/zlaunch.c processes — C consumers of the ABI,
//! driven line by line — under the /dev/vmmctl emulator of tests/emu. The
//! rule checked everywhere: a live claim is never reclaimed, so a VM that
//! does not fit beside it is refused (or the call fails with a status) and
//! is never admitted on top of it.

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

use std::os::unix::io::AsRawFd;

use common::GIB;
use launcher::*;

const HOST_RAM: u64 = 16 * GIB;

/// Rounds of the EMFILE test and the descriptor-grabbing thread's hold and
/// free times (microseconds) in each: which pattern catches a caller
/// between two of its opens depends on the machine and its load, so
/// several are tried.
const EMFILE_ROUNDS: &[(u32, u32)] = &[
    (5, 5),
    (20, 2),
    (50, 5),
    (2, 20),
    (5, 5),
    (20, 2),
    (100, 10),
    (5, 5),
];

/// A caller short of file descriptors never over-admits.
///
/// Reservoir 4 GiB; H holds a 3 GiB claim. In each round a new process C
/// sets RLIMIT_NOFILE to 64, takes every descriptor but one, runs a thread
/// that keeps grabbing and releasing that last one (zlaunch `emfile`), and
/// asks 300 times for 3 GiB. Asserts, over 8 rounds (2,400 admissions):
/// not one is granted (each is refused with a 2 GiB shortfall or fails
/// with a status), and H's claim is still H's at the end (its commit
/// succeeds).
///
/// Against pid + start-time liveness (main at 40f3a4a): C's read of
/// /proc/<H>/stat failed with EMFILE, which counted as "H is dead", H's
/// claim was reclaimed and C was granted 3 GiB, e.g. `emfile granted=66
/// refused=2 errors=232` in a round, and H's commit returned NOT_FOUND
/// (7024). Whether a round shows it is a race: single rounds of 300 showed
/// it in about one run of five; the 8 rounds failed in 5 runs of 5. (The
/// issue saw 8 of 300 granted.)
#[test]
fn emfile_caller_never_over_admits() {
    let host = Host::new("live-emfile", HOST_RAM, 4096);
    let uh = uuid(0xe1, 1);
    let mut h = Launcher::start(&host, Place::Plain, "H");
    let v = h.admit(&uh, 3072);
    assert_eq!(v["decision"], decision::USE_RESERVOIR, "{:?}", v);

    let mut rounds = Vec::new();
    for (k, (hold, free)) in EMFILE_ROUNDS.iter().enumerate() {
        let mut c = Launcher::start(&host, Place::Plain, &format!("C{}", k));
        let cmd = format!(
            "emfile {} 3072 300 64 {} {}",
            uuid(0xe2, k as u32),
            hold,
            free
        );
        let r = parse_reply(&c.send(&cmd));
        rounds.push(format!("hold {} us, free {} us: {:?}", hold, free, r));
        assert_eq!(
            r["granted"],
            0,
            "admitted on top of a live claim:\n{}",
            rounds.join("\n")
        );
        assert_eq!(r["refused"] + r["errors"], 300, "{:?}", r);
        if r["refused"] > 0 {
            assert_eq!(r["last_shortfall"], 2 * GIB, "{:?}", r);
        }
        assert!(c.quit().success());
    }
    eprintln!("emfile_caller_never_over_admits:\n{}", rounds.join("\n"));
    assert_eq!(
        h.commit(&uh),
        status::OK,
        "H lost its claim: {}",
        h.stderr()
    );

    // With its descriptors, a caller is admitted 3 GiB: H's commit ended
    // the claim.
    let mut c = Launcher::start(&host, Place::Plain, "C");
    let v = c.admit(&uuid(0xe2, 0xff), 3072);
    assert_eq!(v["decision"], decision::USE_RESERVOIR, "{:?}", v);
    assert_eq!(c.abort(&uuid(0xe2, 0xff)), status::OK);
}

/// Linux: a live process whose main thread called pthread_exit() shows Z
/// in /proc/<pid>/stat; it keeps its claim.
///
/// Reservoir 4 GiB; H admits 3 GiB, then its main thread exits
/// (zlaunch `detach`) and another thread carries on. Asserts: H shows
/// state Z (the case is real); O's 3 GiB VM is refused with a 2 GiB
/// shortfall; H (from its other thread) commits successfully.
///
/// Against pid + start-time liveness (main at 40f3a4a): O was admitted
/// 3 GiB on top of H's claim (`decision=1 charged=3221225472`): the Z
/// counted as dead.
#[cfg(target_os = "linux")]
#[test]
fn main_thread_exit_keeps_claim() {
    let host = Host::new("live-pthread-exit", HOST_RAM, 4096);
    let (uh, uo) = (uuid(0x7e, 1), uuid(0x7e, 2));
    let mut h = Launcher::start(&host, Place::Plain, "H");
    let mut o = Launcher::start(&host, Place::Plain, "O");
    assert_eq!(h.admit(&uh, 3072)["decision"], decision::USE_RESERVOIR);
    assert_eq!(h.send("detach"), "detach ok");
    wait_for("H's main thread to exit", || proc_state(h.pid) == Some('Z'));

    let v = o.admit(&uo, 3072);
    assert_eq!(v["status"], status::OK, "{:?}", v);
    assert_eq!(
        v["decision"],
        decision::REFUSE,
        "admitted on top of a live claim whose holder's main thread exited: {:?}",
        v
    );
    assert_eq!(v["reason"], reason::RESERVOIR_FULL);
    assert_eq!(v["shortfall"], 2 * GIB);
    assert_eq!(h.commit(&uh), status::OK, "{}", h.stderr());
    assert!(h.quit().success());
}

/// What a process that opens the ledger after it was replaced gets, while
/// H's 3 GiB claim (of a 4 GiB reservoir) is pending in the old file:
/// never an admission. Accepted: the open or the admission fails with
/// LEDGER_REPLACED (7029), or the 3 GiB VM is refused with a 2 GiB
/// shortfall (the ledger was restored). Returns what happened, for the
/// message.
fn after_replacement(host: &Host, tag: u32) -> String {
    match Launcher::start_with(host, Place::Plain, "N", &[]) {
        Err((st, err)) => {
            assert!(
                err.contains("(status 7029)"),
                "N could not open the ledger, but not with LEDGER_REPLACED: {}\n{}",
                st,
                err
            );
            format!("open: {}", err.trim())
        }
        Ok(mut n) => {
            let v = n.admit(&uuid(tag, 2), 3072);
            assert!(
                v["status"] == status::LEDGER_REPLACED
                    || (v["status"] == status::OK
                        && v["decision"] == decision::REFUSE
                        && v["shortfall"] == 2 * GIB),
                "admitted on top of a claim pending in the replaced ledger: {:?}",
                v
            );
            format!("admit: {:?}", v)
        }
    }
}

/// The ledger file is unlinked while a claim is pending; a new process
/// must not admit on top of that claim.
///
/// Against pid + start-time liveness (main at 40f3a4a): the new process
/// created a fresh, empty ledger and was admitted 3 GiB (`decision=1
/// charged=3221225472`) on top of H's pending 3 GiB.
#[test]
fn ledger_unlinked_while_claim_pending() {
    let host = Host::new("live-unlink", HOST_RAM, 4096);
    let uh = uuid(0x41, 1);
    let mut h = Launcher::start(&host, Place::Plain, "H");
    assert_eq!(h.admit(&uh, 3072)["decision"], decision::USE_RESERVOIR);
    std::fs::remove_file(host.ledger()).unwrap();
    let what = after_replacement(&host, 0x41);
    eprintln!("ledger_unlinked_while_claim_pending: {}", what);
    let st = h.commit(&uh);
    assert!(
        st == status::OK || st == status::LEDGER_REPLACED,
        "H's commit: {}",
        st
    );
}

/// Another ledger file is renamed over the ledger while a claim is
/// pending (a fresh one, valid and empty: made by a process told to use
/// another name in the same directory); a new process must not admit on
/// top of that claim.
///
/// Against pid + start-time liveness (main at 40f3a4a): the new process
/// opened the renamed file and was admitted 3 GiB (`decision=1
/// charged=3221225472`) on top of H's pending 3 GiB.
#[test]
fn ledger_renamed_over_while_claim_pending() {
    let host = Host::new("live-rename", HOST_RAM, 4096);
    let uh = uuid(0x42, 1);
    let mut h = Launcher::start(&host, Place::Plain, "H");
    assert_eq!(h.admit(&uh, 3072)["decision"], decision::USE_RESERVOIR);
    let other = host.real.join("run/other.ledger");
    let x = Launcher::start_with(&host, Place::Plain, "X", &["-l", other.to_str().unwrap()])
        .unwrap_or_else(|(st, e)| panic!("X: {}\n{}", st, e));
    assert!(x.quit().success());
    std::fs::rename(&other, host.ledger()).unwrap();
    let what = after_replacement(&host, 0x42);
    eprintln!("ledger_renamed_over_while_claim_pending: {}", what);
    let st = h.commit(&uh);
    assert!(
        st == status::OK || st == status::LEDGER_REPLACED,
        "H's commit: {}",
        st
    );
}

/// The system call a process is blocked in (/proc/<pid>/syscall's first
/// field), if it is blocked in one.
fn blocked_in(pid: u32) -> Option<i64> {
    let s = std::fs::read_to_string(format!("/proc/{}/syscall", pid)).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Issue 13, item 4: a claimant SIGSTOPped in the middle of its claim
/// (slot RESERVING) blocks nobody.
///
/// Reservoir 4 GiB. D admits 2 GiB. The test takes the emulator's state
/// lock (flock, where the kernel holds vmmr_lock), S asks for 1 GiB and
/// blocks in the reservoir reading its claim is checked against — after
/// its slot was taken, before its total was changed — and is SIGSTOPped
/// there; the lock is released. D is killed with SIGKILL. Asserts: N's
/// 3 GiB VM is admitted (D's claim reclaimed although S is stopped); an
/// explicit reconcile succeeds and leaves only N's claim; once resumed, S's
/// admission completes: admitted 1 GiB (3 + 1 of 4 GiB), and a second
/// reconcile counts both claims.
///
/// Outcomes only: no timings are asserted (the old code also made every
/// admission wait an extra 2 s here).
///
/// Against pid + start-time liveness (main at 40f3a4a): N's 3 GiB VM was
/// refused with a 1 GiB shortfall (`decision=3 reason=2
/// shortfall=1073741824`: D's dead 2 GiB claim never reclaimed, the
/// reconcile gave up waiting for S) and the explicit reconcile returned
/// BUSY (7025).
#[cfg(target_os = "linux")]
#[test]
fn stopped_claimant_mid_claim_blocks_nobody() {
    let host = Host::new("live-stopped", HOST_RAM, 4096);
    let (ud, us, un) = (uuid(0x13, 1), uuid(0x13, 2), uuid(0x13, 3));
    let mut d = Launcher::start(&host, Place::Plain, "D");
    let mut s = Launcher::start(&host, Place::Plain, "S");
    let mut n = Launcher::start(&host, Place::Plain, "N");
    assert_eq!(d.admit(&ud, 2048)["decision"], decision::USE_RESERVOIR);

    // Hold the emulator's lock: S's reading of the reservoir waits on it.
    let state = std::fs::File::open(host.state_file()).unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(unsafe { libc::flock(state.as_raw_fd(), libc::LOCK_EX) }, 0);
    s.send_only(&format!("admit {} 1024", us));
    wait_for("S to block on the reservoir's lock", || {
        blocked_in(s.pid) == Some(libc::SYS_flock)
    });
    s.stop_process();
    drop(state); // the lock goes with the descriptor
    let st = d.kill9();
    assert!(!st.success());

    let v = n.admit(&un, 3072);
    assert_eq!(v["status"], status::OK, "{:?}", v);
    assert_eq!(
        v["decision"],
        decision::USE_RESERVOIR,
        "the dead claim was not reclaimed while a claimant was stopped: {:?}",
        v
    );
    let rc = n.reconcile();
    assert_eq!(rc["status"], status::OK, "reconcile: {:?}", rc);
    assert_eq!(rc["after"], 3 * GIB, "only N's claim is left: {:?}", rc);

    s.resume();
    let vs = parse_reply(&s.answer());
    assert_eq!(vs["status"], status::OK, "S's admission: {:?}", vs);
    assert_eq!(vs["decision"], decision::USE_RESERVOIR, "S: {:?}", vs);
    assert_eq!(vs["charged"], GIB, "S: {:?}", vs);
    let rc = n.reconcile();
    assert_eq!(rc["status"], status::OK, "reconcile: {:?}", rc);
    assert_eq!(rc["after"], 4 * GIB, "N's and S's claims: {:?}", rc);
    assert_eq!(s.abort(&us), status::OK);
    assert_eq!(n.commit(&un), status::OK);
    assert!(s.quit().success());
    assert!(n.quit().success());
}

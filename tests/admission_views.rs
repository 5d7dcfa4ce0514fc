//! The read-only views of the admission ledger (ABI 1.2): the claim
//! listing, a reconcile's dry run and an admission's check. A dead
//! launcher's claim is left in the ledger by a real process
//! (tests/c/zlaunch.c) that exits; the views are then taken in this
//! process, on the same ledger file, against a reservoir that answers from
//! memory. They must leave the file byte for byte as it was, and what they
//! foresee must be what the real calls then do.

// Tests are not the library: a panic is how a check fails, and their
// arithmetic and indexing are on values they chose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions,
    unsafe_code
)]

mod common;

use common::*;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Stdio};

use vmmresv::admission::{parse_uuid, Admission, Decision, Preference, Reason};
use vmmresv::host::HostMemory;
use vmmresv::ledger::{Pool, SlotState};
use vmmresv::policy::overhead::VmSpec;

/// A reservoir with 8 GiB free (and a 16 GiB limit), answering from memory.
struct Free8G;

impl vmmresv::reservoir::Kernel for Free8G {
    fn resv_query(&self) -> Result<vmmresv::sys::vmm_resv_query, i32> {
        Ok(vmmresv::sys::vmm_resv_query {
            vrq_free_sz: 8 * GIB,
            vrq_alloc_sz: 0,
            vrq_alloc_transient_sz: 0,
            vrq_limit: 16 * GIB,
        })
    }
    fn resv_set_target(&self, _: &mut vmmresv::sys::vmm_resv_target) -> Result<(), i32> {
        Err(libc::ENOTTY)
    }
}

/// zlaunch on `ledger`: admits, then lives or exits as told.
struct Launcher {
    child: Child,
    out: std::io::BufReader<ChildStdout>,
}

impl Launcher {
    fn start(host: &EmuHost, ledger: &Path) -> Launcher {
        let mut child = host
            .command(program("zlaunch"))
            .arg("-l")
            .arg(ledger)
            .arg("/bin/false")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        assert!(l.starts_with("ready pid="), "zlaunch: {l:?}");
        Launcher { child, out }
    }

    fn admit(&mut self, uuid: &str, mib: u64) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "admit {uuid} {mib}").unwrap();
        stdin.flush().unwrap();
        let mut l = String::new();
        self.out.read_line(&mut l).unwrap();
        assert!(l.starts_with("admit status=0 decision=1 "), "{l}");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn quit(mut self) {
        let _ = writeln!(self.child.stdin.as_mut().unwrap(), "quit");
        assert!(self.child.wait().unwrap().success());
    }
}

const LIVE: &str = "11111111-0000-4000-8000-000000000001";
const DEAD: &str = "22222222-0000-4000-8000-000000000002";

/// A ledger with a live 1 GiB claim (returned: its launcher) and a dead
/// 2 GiB one, and an admission handle on it in this process.
fn ledger_with_a_dead_claim(host: &EmuHost) -> (Launcher, Admission, std::path::PathBuf) {
    let path = host.dir.path().join("views.ledger");
    let mut live = Launcher::start(host, &path);
    live.admit(LIVE, 1024);
    let mut dead = Launcher::start(host, &path);
    dead.admit(DEAD, 2048);
    dead.quit();
    let a = Admission::open_with_kernel(Box::new(Free8G), &path).unwrap();
    (live, a, path)
}

#[test]
fn the_listing_tells_live_from_dead_and_changes_nothing() {
    let host = EmuHost::with_reservoir("views-list", 16 * GIB, 4096);
    let (live, a, path) = ledger_with_a_dead_claim(&host);
    let before = std::fs::read(&path).unwrap();
    let mut l = a.claims_listing().unwrap();
    l.sort_by_key(|c| c.info.pages);
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(l[0].info.uuid, parse_uuid(LIVE).unwrap());
    assert_eq!(l[0].info.pages, GIB / 4096);
    assert_eq!(l[0].info.pool, Pool::Reservoir);
    assert_eq!(l[0].info.state, SlotState::Claimed);
    assert!(l[0].held, "a live launcher's claim is held");
    assert_eq!(l[0].info.pid, live.pid(), "the taker's pid, as recorded");
    assert!(!l[0].host);
    assert_eq!(l[1].info.uuid, parse_uuid(DEAD).unwrap());
    assert_eq!(l[1].info.pages, 2 * GIB / 4096);
    assert!(!l[1].held, "a dead launcher's claim is not held");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(l[0].info.since <= now && now - l[0].info.since < 600);
    assert_eq!(std::fs::read(&path).unwrap(), before, "the listing wrote");
    // Nothing reclaimed: the dead claim is still in the total.
    assert_eq!(a.pending_bytes(Pool::Reservoir), 3 * GIB);
    live.quit();
}

#[test]
fn the_dry_run_foresees_the_reconcile_and_writes_nothing() {
    let host = EmuHost::with_reservoir("views-dry", 16 * GIB, 4096);
    let (live, a, path) = ledger_with_a_dead_claim(&host);
    let before = std::fs::read(&path).unwrap();
    let dry = a.reconcile_preview().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), before, "the dry run wrote");
    assert_eq!(dry.ledger.reclaimed_slots, 1);
    assert_eq!(dry.ledger.reclaimed_pages, 2 * GIB / 4096);
    assert_eq!(dry.ledger.claimed_before[0], 3 * GIB / 4096);
    assert_eq!(dry.ledger.claimed_after[0], GIB / 4096);
    assert_eq!(dry.ledger.live_claims, 1);
    assert_eq!(dry.ledger.repaired_totals, 0);
    // A second dry run sees the same: nothing was taken.
    assert_eq!(a.reconcile_preview().unwrap(), dry);
    // The real reconcile does what the dry run said.
    let real = a.reconcile().unwrap();
    assert_eq!(real, dry);
    assert_eq!(a.pending_bytes(Pool::Reservoir), GIB);
    // Now there is nothing left to do, and the dry run says so.
    let after = a.reconcile_preview().unwrap();
    assert_eq!(after.ledger.reclaimed_slots, 0);
    assert_eq!(after.ledger.claimed_before, after.ledger.claimed_after);
    live.quit();
}

#[test]
fn the_dry_run_counts_a_total_that_would_be_repaired() {
    let host = EmuHost::with_reservoir("views-repair", 16 * GIB, 4096);
    let path = host.dir.path().join("views.ledger");
    let mut live = Launcher::start(&host, &path);
    live.admit(LIVE, 1024);
    let a = Admission::open_with_kernel(Box::new(Free8G), &path).unwrap();
    // A total that says 5 GiB where the one live claim holds 1 GiB (the
    // reservoir total is the file's first word after its header; written
    // through a second mapping as a hostile writer would).
    {
        let f = vmmresv::ledger::file::LedgerFile::open_or_create(&path).unwrap();
        let l = f.ledger();
        assert_eq!(l.claimed(Pool::Reservoir), GIB / 4096);
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let word_at = find_total(&bytes, GIB / 4096);
    let w = u64::from_ne_bytes(bytes[word_at..word_at + 8].try_into().unwrap());
    let forged = (w & !((1u64 << 35) - 1)) | (5 * GIB / 4096);
    bytes[word_at..word_at + 8].copy_from_slice(&forged.to_ne_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let before = std::fs::read(&path).unwrap();
    let dry = a.reconcile_preview().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), before, "the dry run wrote");
    assert_eq!(dry.ledger.repaired_totals, 1);
    assert_eq!(dry.ledger.claimed_before[0], 5 * GIB / 4096);
    assert_eq!(dry.ledger.claimed_after[0], GIB / 4096);
    assert_eq!(a.reconcile().unwrap(), dry);
    live.quit();
}

/// The offset of the first 8-byte word (8-aligned) whose low 35 bits are
/// `pages`: the reservoir pool's total (the header has no such word).
fn find_total(bytes: &[u8], pages: u64) -> usize {
    (0..bytes.len() / 8)
        .map(|i| i * 8)
        .find(|&o| {
            let w = u64::from_ne_bytes(bytes[o..o + 8].try_into().unwrap());
            w & ((1u64 << 35) - 1) == pages && w >> 35 != 0
        })
        .expect("the reservoir total")
}

#[test]
fn check_foresees_admit() {
    let host = EmuHost::with_reservoir("views-check", 16 * GIB, 4096);
    let (live, a, path) = ledger_with_a_dead_claim(&host);
    let u = |n: u32| parse_uuid(&format!("33333333-0000-4000-8000-{n:012x}")).unwrap();
    let before = std::fs::read(&path).unwrap();
    // 7 GiB fits only once the dead claim is reclaimed: check says so
    // without reclaiming it.
    let c = a.check(&u(1), 7 * GIB, Preference::Require).unwrap();
    assert_eq!(c.decision, Decision::UseReservoir);
    assert_eq!(c.pending_bytes, GIB);
    let c2 = a.check(&u(2), 8 * GIB, Preference::Require).unwrap();
    assert_eq!(c2.decision, Decision::Refuse);
    assert_eq!(c2.reason, Reason::ReservoirFull);
    assert_eq!(c2.shortfall_bytes, GIB);
    let c3 = a.check(&u(3), 8 * GIB, Preference::Prefer).unwrap();
    assert_eq!(c3.decision, Decision::NoReservoir);
    assert_eq!(
        a.check(&parse_uuid(LIVE).unwrap(), GIB, Preference::Require)
            .unwrap()
            .reason,
        Reason::HeldElsewhere
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "check wrote");
    assert_eq!(a.pending_bytes(Pool::Reservoir), 3 * GIB);
    // Each real admission, in the same state, decides the same with the
    // same figures.
    assert_eq!(a.admit(&u(2), 8 * GIB, Preference::Require).unwrap(), c2);
    assert_eq!(a.admit(&u(1), 7 * GIB, Preference::Require).unwrap(), c);
    a.abort(&u(1)).unwrap();
    let c3 = a.check(&u(3), 8 * GIB, Preference::Prefer).unwrap();
    assert_eq!(a.admit(&u(3), 8 * GIB, Preference::Prefer).unwrap(), c3);
    // A retried admission: this process holds it now.
    let again = a.check(&u(3), 8 * GIB, Preference::Prefer).unwrap();
    assert_eq!(again.reason, Reason::AlreadyAdmitted);
    assert_eq!(a.admit(&u(3), 8 * GIB, Preference::Prefer).unwrap(), again);
    a.abort(&u(3)).unwrap();
    live.quit();
}

#[test]
fn check_vm_foresees_admit_vm() {
    let host = EmuHost::with_reservoir("views-check-vm", 16 * GIB, 4096);
    let (live, a, path) = ledger_with_a_dead_claim(&host);
    let u = |n: u32| parse_uuid(&format!("44444444-0000-4000-8000-{n:012x}")).unwrap();
    let vm = |g: u64| VmSpec {
        guest_bytes: g,
        vcpus: 2,
        ..VmSpec::default()
    };
    let mem = HostMemory {
        physmem_bytes: 64 * GIB,
        free_bytes: 10 * GIB,
    };
    // Admitted under the policy, then refused by the memory state (the
    // guest does not fit the reservoir, and outside it the host's free
    // memory cannot take it), then refused by the reservoir.
    for (n, g, pref) in [
        (1, 2 * GIB, Preference::Require),
        (2, 7 * GIB, Preference::Prefer),
        (3, 9 * GIB, Preference::Require),
    ] {
        let before = std::fs::read(&path).unwrap();
        let host_ledger = a.host_ledger_path().to_path_buf();
        let host_before = std::fs::read(&host_ledger).ok();
        let c = a.check_vm(&u(n), &vm(g), pref, Some(&mem)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), before, "check_vm wrote");
        assert_eq!(std::fs::read(&host_ledger).ok(), host_before);
        let v = a.admit_vm(&u(n), &vm(g), pref, &mem).unwrap();
        assert_eq!(v, c, "vm {n}: check {c:?} admit {v:?}");
        if n == 1 {
            assert_eq!(v.verdict.decision, Decision::UseReservoir);
        } else if n == 2 {
            assert_eq!(v.verdict.reason, Reason::MemoryState);
        } else {
            assert_eq!(v.verdict.reason, Reason::ReservoirFull);
        }
    }
    // With VM 1's host claim pending, a second check counts it as admit
    // does.
    let c = a
        .check_vm(&u(4), &vm(GIB), Preference::Require, Some(&mem))
        .unwrap();
    assert!(c.pending_bytes > 0);
    assert_eq!(
        a.admit_vm(&u(4), &vm(GIB), Preference::Require, &mem)
            .unwrap(),
        c
    );
    a.abort(&u(4)).unwrap();
    a.abort(&u(1)).unwrap();
    live.quit();
}

/// The C ABI of the views (vmmresv_admission(3VMMRESV)), in a child on the
/// emulated /dev/vmmctl: the needed-size protocol of vmmresv_claims_list,
/// the claim's fields as C sees them, the dry run against the real
/// reconcile, vmmresv_admit_vm_check against vmmresv_admit_vm, the names.
#[test]
fn the_c_abi_of_the_views() {
    use std::ffi::{CStr, CString};
    use vmmresv::ffi::*;
    use vmmresv::Status;
    if common::child::play(|_| {
        let ledger = CString::new(std::env::var("VIEWS_LEDGER").unwrap()).unwrap();
        let mut r = std::ptr::null_mut();
        assert_eq!(
            vmmresv_reservoir_open(std::ptr::null(), std::ptr::null(), &mut r),
            Status::Ok
        );
        let mut a = std::ptr::null_mut();
        assert_eq!(
            vmmresv_admission_open(r, ledger.as_ptr(), &mut a),
            Status::Ok
        );
        // Needed size: NULL count, then n = 0, then too few, then enough.
        let mut count = 0usize;
        assert_eq!(
            vmmresv_claims_list(a, std::ptr::null_mut(), 0, std::ptr::null_mut()),
            Status::NullArgument
        );
        assert_eq!(
            vmmresv_claims_list(a, std::ptr::null_mut(), 0, &mut count),
            Status::BufferTooSmall
        );
        assert_eq!(count, 2);
        assert_eq!(
            vmmresv_claims_list(a, std::ptr::null_mut(), 1, &mut count),
            Status::NullArgument
        );
        let mut v = vec![vmmresv_claim_info::default(); 4];
        assert_eq!(
            vmmresv_claims_list(a, v.as_mut_ptr(), 1, &mut count),
            Status::BufferTooSmall
        );
        assert_ne!(v[0].bytes, 0, "the first entry was written");
        assert_eq!(v[1].bytes, 0, "past n nothing is written");
        assert_eq!(
            vmmresv_claims_list(a, v.as_mut_ptr(), v.len(), &mut count),
            Status::Ok
        );
        assert_eq!(count, 2);
        let mut got: Vec<(String, u64, u32, u32, u32)> = v[..2]
            .iter()
            .map(|c| {
                let u = unsafe { CStr::from_ptr(c.vm_uuid.as_ptr()) };
                (
                    u.to_str().unwrap().to_string(),
                    c.bytes,
                    c.pool,
                    c.state,
                    c.held,
                )
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                (
                    LIVE.to_string(),
                    GIB,
                    VMMRESV_CLAIM_POOL_RESERVOIR,
                    VMMRESV_CLAIM_CLAIMED,
                    1
                ),
                (
                    DEAD.to_string(),
                    2 * GIB,
                    VMMRESV_CLAIM_POOL_RESERVOIR,
                    VMMRESV_CLAIM_CLAIMED,
                    0
                ),
            ]
        );
        assert!(v[..2]
            .iter()
            .all(|c| c.pad == [0; 2] && c.durable == 0 && c.zone_id == 0));
        // The check, then the admission: the same decision and figures
        // (the dead claim is in the way of 4 of the 4 GiB, until
        // reclaimed).
        let u = c"55555555-0000-4000-8000-000000000005";
        let vm = vmmresv_vm {
            guest_bytes: 3 * GIB,
            vcpus: 1,
            ..Default::default()
        };
        let host = vmmresv_host_memory {
            physmem_bytes: 16 * GIB,
            free_bytes: 12 * GIB,
        };
        let mut check = vmmresv_vm_decision::default();
        assert_eq!(
            vmmresv_admit_vm_check(
                a,
                u.as_ptr(),
                &vm,
                VMMRESV_RESERVOIR_REQUIRE,
                &host,
                &mut check
            ),
            Status::Ok
        );
        assert_eq!(check.decision.decision, VMMRESV_DECISION_USE_RESERVOIR);
        // The dry run is the reconcile the admission would need.
        let mut dry = vmmresv_reconcile_report::default();
        assert_eq!(vmmresv_reconcile_dry_run(a, &mut dry), Status::Ok);
        assert_eq!(dry.reclaimed_claims, 1);
        assert_eq!(dry.reclaimed_bytes, 2 * GIB);
        let mut admit = vmmresv_vm_decision::default();
        assert_eq!(
            vmmresv_admit_vm(
                a,
                u.as_ptr(),
                &vm,
                VMMRESV_RESERVOIR_REQUIRE,
                &host,
                &mut admit
            ),
            Status::Ok
        );
        assert_eq!(format!("{check:?}"), format!("{admit:?}"));
        assert_eq!(
            vmmresv_abort(a, u.as_ptr(), std::ptr::null_mut()),
            Status::Ok
        );
        // Nothing left for a reconcile: the admission reclaimed it.
        let mut real = vmmresv_reconcile_report::default();
        assert_eq!(vmmresv_reconcile(a, &mut real), Status::Ok);
        assert_eq!(real.reclaimed_claims, 0);
        // Bad arguments.
        assert_eq!(
            vmmresv_admit_vm_check(a, c"nope".as_ptr(), &vm, 1, &host, &mut check),
            Status::InvalidArgument
        );
        assert_eq!(
            vmmresv_admit_vm_check(a, u.as_ptr(), &vm, 9, &host, &mut check),
            Status::InvalidArgument
        );
        assert_eq!(
            vmmresv_reconcile_dry_run(std::ptr::null(), &mut dry),
            Status::NullArgument
        );
        let name = |p: *const std::ffi::c_char| unsafe { CStr::from_ptr(p) }.to_str().unwrap();
        assert_eq!(
            name(vmmresv_decision_name(VMMRESV_DECISION_REFUSE)),
            "refuse"
        );
        assert_eq!(name(vmmresv_decision_name(0)), "unknown");
        assert_eq!(
            name(vmmresv_reason_name(VMMRESV_REASON_HELD_ELSEWHERE)),
            "held_elsewhere"
        );
        assert_eq!(
            name(vmmresv_reason_name(VMMRESV_REASON_MEMORY_STATE)),
            "memory_state"
        );
        assert_eq!(name(vmmresv_reason_name(99)), "unknown");
        vmmresv_admission_close(a);
        vmmresv_reservoir_close(r);
        println!("RESULT ok");
    }) {
        return;
    }
    let mut host = EmuHost::with_reservoir("views-c", 16 * GIB, 4096);
    let path = host.dir.path().join("views-c.ledger");
    let mut live = Launcher::start(&host, &path);
    live.admit(LIVE, 1024);
    let mut dead = Launcher::start(&host, &path);
    dead.admit(DEAD, 2048);
    dead.quit();
    host.set("VIEWS_LEDGER", path.to_str().unwrap());
    assert_eq!(
        common::child::run(&host, "the_c_abi_of_the_views", "c"),
        ["ok"]
    );
    live.quit();
}

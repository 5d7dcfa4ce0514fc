//! ARC reservations (OS-8005) through admission: the ledger's ARC pool, the
//! guard and target, `zfs_arc_max` applied and restored under a fixture
//! root, the NO_RESERVOIR decision that reserves ARC, a dead holder's
//! reservation reclaimed — through the Rust API and the C ABI. Each
//! scenario runs in a child under the emulated /dev/vmmctl (see
//! `common::child`).
//!
//! The host is tests/fixtures/arc/linux: a 64 GiB Linux host whose arcstats
//! say c_min 2 GiB, c_max 63 GiB (67,645,734,912 B), size 40.1 GiB.

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

mod common;

use std::ffi::CString;
use std::path::{Path, PathBuf};

use common::child::{self, run};
use common::*;
use vmmresv::admission::{parse_uuid, Admission, ArcHost, Decision, Preference, Reason};
use vmmresv::arc::guard::{ArcLimits, Ceiling, Refusal};
use vmmresv::arc::reserve::{Applied, ArcPolicy, Reservation};
use vmmresv::arc::{desfree_slack, ArcReader, LinuxArcFacts};
use vmmresv::ffi::*;
use vmmresv::ledger::Pool;
use vmmresv::{Reservoir, Status};

const C_MIN: u64 = 2 * GIB;
const C_MAX: u64 = 67_645_734_912;
const ALL_MEMORY: u64 = 64 * GIB;

fn uuid_text(n: u32) -> String {
    format!("a7c3e0d2-0000-4000-8000-{:012x}", n)
}

fn uuid(n: u32) -> [u8; 16] {
    parse_uuid(&uuid_text(n)).unwrap()
}

fn policy(ceiling: Ceiling) -> ArcPolicy {
    ArcPolicy {
        limits: ArcLimits {
            arc_c_min: C_MIN,
            arc_c_max: C_MAX,
        },
        ceiling,
        slack: desfree_slack(ALL_MEMORY),
    }
}

/// A copy of the fixture host under a scratch root, with `zfs_arc_max`
/// set to `original`.
fn fixture_root(dir: &Path, original: u64) -> PathBuf {
    let src = common::root().join("tests/fixtures/arc/linux");
    let root = dir.join("root");
    let stats = root.join("proc/spl/kstat/zfs");
    let params = root.join("sys/module/zfs/parameters");
    std::fs::create_dir_all(&stats).unwrap();
    std::fs::create_dir_all(&params).unwrap();
    std::fs::copy(
        src.join("proc/spl/kstat/zfs/arcstats"),
        stats.join("arcstats"),
    )
    .unwrap();
    std::fs::write(params.join("zfs_arc_max"), format!("{original}\n")).unwrap();
    root
}

fn zfs_arc_max(root: &Path) -> u64 {
    std::fs::read_to_string(root.join("sys/module/zfs/parameters/zfs_arc_max"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn open() -> Admission {
    Admission::open(Reservoir::open().unwrap(), None).unwrap()
}

fn scenario(role: &str) {
    let a = open();
    let p = policy(Ceiling::ArcCMax);
    let scratch = PathBuf::from(std::env::var("VMMRESV_RUNDIR").unwrap());
    match role {
        "api" => {
            // 63 GiB ceiling - 16 GiB reserved - 512 MiB slack.
            let r = match a.arc_reserve(&uuid(1), 16 * GIB, &p).unwrap() {
                Reservation::Reserved(r) => r,
                x => panic!("{:?}", x),
            };
            assert_eq!((r.bytes, r.already), (16 * GIB, false));
            let ceiling = C_MAX / 4096 * 4096;
            assert_eq!(r.target.target_bytes, ceiling - 16 * GIB - 512 * MIB);
            assert_eq!(r.target.reserved_bytes, 16 * GIB);
            // Idempotent.
            match a.arc_reserve(&uuid(1), 16 * GIB, &p).unwrap() {
                Reservation::Reserved(r) => assert!(r.already),
                x => panic!("{:?}", x),
            }
            // 2 + 16 + 50 GiB > 63 GiB: refused, short by the difference.
            match a.arc_reserve(&uuid(2), 50 * GIB, &p).unwrap() {
                Reservation::Refused(Refusal::Shortfall {
                    shortfall_bytes, ..
                }) => {
                    assert_eq!(shortfall_bytes, C_MIN + 16 * GIB + 50 * GIB - ceiling)
                }
                x => panic!("{:?}", x),
            }
            assert_eq!(
                a.arc_release(&uuid(2)).unwrap(),
                0,
                "no reservation: releases nothing"
            );
            assert_eq!(a.arc_release(&uuid(1)).unwrap(), 16 * GIB);
            assert_eq!(a.arc_release(&uuid(1)).unwrap(), 0, "idempotent");
            assert_eq!(a.arc_target(&p).unwrap().target_bytes, ceiling - 512 * MIB);
            // A policy whose target overflows (found by fuzzing): an error,
            // and no reservation left behind.
            let absurd = ArcPolicy {
                slack: u64::MAX - 511,
                ..p
            };
            let e = a.arc_reserve(&uuid(2), GIB, &absurd).unwrap_err();
            assert_eq!(e.status(), Status::Overflow);
            assert_eq!(a.pending_bytes(Pool::Arc), 0);
            println!("RESULT ok");
        }
        "apply" => {
            let root = fixture_root(&scratch, 60 * GIB);
            let facts = LinuxArcFacts {
                all_memory: ALL_MEMORY,
                arc_c_min: C_MIN,
            };
            assert_eq!(
                a.arc_apply_linux(&p, &facts, &root).unwrap(),
                Applied::Unchanged
            );
            a.arc_reserve(&uuid(3), 16 * GIB, &p).unwrap();
            let target = a.arc_target(&p).unwrap().target_bytes;
            assert_eq!(
                a.arc_apply_linux(&p, &facts, &root).unwrap(),
                Applied::Limited {
                    zfs_arc_max: target,
                    original: 60 * GIB
                }
            );
            assert_eq!(zfs_arc_max(&root), target);
            // A second reservation lowers it again; the original stays.
            a.arc_reserve(&uuid(4), 8 * GIB, &p).unwrap();
            let lower = a.arc_target(&p).unwrap().target_bytes;
            assert_eq!(lower, target - 8 * GIB);
            a.arc_apply_linux(&p, &facts, &root).unwrap();
            assert_eq!(zfs_arc_max(&root), lower);
            a.arc_release(&uuid(3)).unwrap();
            a.arc_release(&uuid(4)).unwrap();
            assert_eq!(
                a.arc_apply_linux(&p, &facts, &root).unwrap(),
                Applied::Restored {
                    zfs_arc_max: 60 * GIB
                }
            );
            assert_eq!(zfs_arc_max(&root), 60 * GIB);
            assert!(!scratch.join("zfs_arc_max.orig").exists());
            // An original of 0 (the module default) cannot be written back.
            let root0 = fixture_root(&scratch.join("zero"), 0);
            a.arc_reserve(&uuid(5), GIB, &p).unwrap();
            assert!(matches!(
                a.arc_apply_linux(&p, &facts, &root0).unwrap(),
                Applied::Limited { original: 0, .. }
            ));
            a.arc_release(&uuid(5)).unwrap();
            assert_eq!(
                a.arc_apply_linux(&p, &facts, &root0).unwrap(),
                Applied::CannotRestoreDefault
            );
            println!("RESULT ok");
        }
        "admit" => {
            // No reservoir at all: every VM runs transient, out of the ARC.
            let host = ArcHost {
                policy: policy(Ceiling::Budget(20 * GIB)),
                arc_size: 40 * GIB,
            };
            a.set_arc(Some(host));
            let v = a.admit(&uuid(6), 8 * GIB, Preference::Prefer).unwrap();
            assert_eq!(v.decision, Decision::NoReservoir);
            let arc = v.arc.expect("an ARC reservation with the decision");
            assert_eq!(arc.reserved_bytes, 8 * GIB);
            // 20 GiB budget - 8 GiB - 512 MiB slack, clamped to [2, 63] GiB.
            assert_eq!(arc.target_bytes, 20 * GIB - 8 * GIB - 512 * MIB);
            assert_eq!(arc.arc_size_bytes, 40 * GIB);
            assert_eq!(arc.expected_wait_ms, 1000, "the ARC is above the target");
            // 2 + 8 + 12 GiB > 20 GiB: the ARC guard refuses, short 2 GiB,
            // and the VM's transient claim is given back.
            let v = a.admit(&uuid(7), 12 * GIB, Preference::Never).unwrap();
            assert_eq!((v.decision, v.reason), (Decision::Refuse, Reason::ArcGuard));
            assert_eq!(v.shortfall_bytes, 2 * GIB);
            assert_eq!(a.pending_bytes(Pool::Transient), 8 * GIB);
            assert_eq!(a.pending_bytes(Pool::Arc), 8 * GIB);
            // Without an ARC host, no ARC reservation.
            a.set_arc(None);
            let v = a.admit(&uuid(8), GIB, Preference::Never).unwrap();
            assert_eq!((v.decision, v.arc), (Decision::NoReservoir, None));
            println!("RESULT ok");
        }
        "hold" => match a.arc_reserve(&uuid(9), 4 * GIB, &p).unwrap() {
            Reservation::Reserved(_) => println!("RESULT held"),
            x => panic!("{:?}", x),
        },
        "after_hold" => {
            assert_eq!(
                a.pending_bytes(Pool::Arc),
                4 * GIB,
                "the dead holder's reservation"
            );
            // An admission that fits does no reclaiming (the hot path is
            // O(1)); a reconcile — or a claim that would otherwise be
            // refused — reclaims it: its holder's lock went with it.
            a.admit(&uuid(10), GIB, Preference::Never).unwrap();
            assert_eq!(a.pending_bytes(Pool::Arc), 4 * GIB);
            let r = a.reconcile().unwrap();
            assert_eq!(r.ledger.reclaimed_pages, 4 * GIB / 4096);
            assert_eq!(a.pending_bytes(Pool::Arc), 0);
            a.abort(&uuid(10)).unwrap();
            println!("RESULT ok");
        }
        "c_abi" => c_abi(&scratch),
        other => panic!("unknown role {}", other),
    }
}

/// The same through the C ABI, as zhyve would call it.
fn c_abi(scratch: &Path) {
    let root = fixture_root(scratch, 60 * GIB);
    let croot = CString::new(root.to_str().unwrap()).unwrap();
    let mut host = vmmresv_arc_host::default();
    assert_eq!(
        vmmresv_arc_read_linux(croot.as_ptr(), &mut host),
        Status::Ok
    );
    assert_eq!(
        (
            host.arc_c_min_bytes,
            host.arc_c_max_bytes,
            host.physmem_bytes
        ),
        (C_MIN, C_MAX, ALL_MEMORY)
    );
    assert_eq!(host.arc_size_bytes, 43_078_676_480);
    assert_eq!(host.slack_bytes, ALL_MEMORY / 128);
    let snap = ArcReader::linux(&root).snapshot().unwrap();
    assert_eq!(snap.arc_size, Some(host.arc_size_bytes));

    let mut r: *mut vmmresv_reservoir = std::ptr::null_mut();
    assert_eq!(
        vmmresv_reservoir_open(std::ptr::null(), std::ptr::null(), &mut r),
        Status::Ok
    );
    let mut adm: *mut vmmresv_admission = std::ptr::null_mut();
    assert_eq!(
        vmmresv_admission_open(r, std::ptr::null(), &mut adm),
        Status::Ok
    );
    let u = CString::new(uuid_text(11)).unwrap();
    let mut res = vmmresv_arc_reservation::default();
    assert_eq!(
        vmmresv_arc_reserve(adm, u.as_ptr(), 16 * GIB, &host, &mut res),
        Status::Ok
    );
    assert_eq!((res.reserved, res.already, res.bytes), (1, 0, 16 * GIB));
    let mut written = 0u64;
    assert_eq!(
        vmmresv_arc_apply_linux(adm, croot.as_ptr(), &host, &mut written),
        Status::Ok
    );
    assert_eq!(written, res.target_bytes);
    assert_eq!(zfs_arc_max(&root), res.target_bytes);
    // The fixture ARC (40.1 GiB) is below that target: reached at once.
    let mut size = 0u64;
    let goal = res.target_bytes + host.slack_bytes;
    assert_eq!(
        vmmresv_arc_wait_linux(
            croot.as_ptr(),
            goal,
            1000,
            None,
            std::ptr::null_mut(),
            &mut size
        ),
        Status::Ok
    );
    assert_eq!(size, host.arc_size_bytes);
    // A goal it never reaches times out; a callback can cancel.
    assert_eq!(
        vmmresv_arc_wait_linux(
            croot.as_ptr(),
            GIB,
            300,
            None,
            std::ptr::null_mut(),
            &mut size
        ),
        Status::Timeout
    );
    extern "C" fn cancel(_: u64, _: u64, _: *mut std::ffi::c_void) -> i32 {
        1
    }
    assert_eq!(
        vmmresv_arc_wait_linux(
            croot.as_ptr(),
            GIB,
            5000,
            Some(cancel),
            std::ptr::null_mut(),
            &mut size
        ),
        Status::Interrupted
    );
    // The decision carries the ARC side when the host is set.
    assert_eq!(vmmresv_admission_set_arc(adm, &host), Status::Ok);
    let u2 = CString::new(uuid_text(12)).unwrap();
    let mut d = vmmresv_decision::default();
    assert_eq!(
        vmmresv_admit(adm, u2.as_ptr(), GIB, VMMRESV_RESERVOIR_NEVER, &mut d),
        Status::Ok
    );
    assert_eq!(d.decision, VMMRESV_DECISION_NO_RESERVOIR);
    assert_eq!(d.arc_reserved_bytes, GIB);
    assert_eq!(d.arc_target_bytes, res.target_bytes - GIB);
    // Release both; apply restores the original.
    let mut released = 0u64;
    assert_eq!(
        vmmresv_arc_release(adm, u.as_ptr(), &mut released),
        Status::Ok
    );
    assert_eq!(released, 16 * GIB);
    assert_eq!(
        vmmresv_arc_release(adm, u2.as_ptr(), &mut released),
        Status::Ok
    );
    assert_eq!(
        vmmresv_arc_release(adm, u2.as_ptr(), &mut released),
        Status::Ok
    );
    assert_eq!(released, 0);
    assert_eq!(
        vmmresv_arc_apply_linux(adm, croot.as_ptr(), &host, &mut written),
        Status::Ok
    );
    assert_eq!((written, zfs_arc_max(&root)), (60 * GIB, 60 * GIB));
    // illumos: no run-time zfs_arc_max; the per-VM OS-8005 ioctl only where
    // the kernel has it. The emulated kernel (like today's illumos) does
    // not: a real VM device answers ENOTTY, reported as UNSUPPORTED.
    {
        use std::os::fd::AsFd;
        use zerocopy::IntoBytes;
        let ctl = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags_excl()
            .open("/dev/vmmctl")
            .unwrap();
        let mut req = vmmresv::sys::vm_create_req {
            name: [0; 128],
            flags: 0,
        };
        req.name[..6].copy_from_slice(b"arcvm0");
        // SAFETY: a live vm_create_req for the duration of the call.
        let rv = unsafe {
            vmmresv::sys::ioctl(
                ctl.as_fd(),
                vmmresv::sys::VMM_CREATE_VM,
                req.as_mut_bytes().as_mut_ptr().cast(),
            )
        };
        assert_eq!(rv, Ok(0));
        let vm = CString::new("arcvm0").unwrap();
        assert_eq!(
            vmmresv_arc_apply_illumos(vm.as_ptr(), GIB),
            Status::Unsupported
        );
        assert_eq!(vmmresv_last_errno(), libc::ENOTTY);
        let none = CString::new("novm").unwrap();
        assert_eq!(
            vmmresv_arc_apply_illumos(none.as_ptr(), GIB),
            Status::NoDevice
        );
        let bad = CString::new("a/b").unwrap();
        assert_eq!(
            vmmresv_arc_apply_illumos(bad.as_ptr(), GIB),
            Status::InvalidArgument
        );
    }
    // Bad input: a malformed arcstats file, NULLs.
    std::fs::write(root.join("proc/spl/kstat/zfs/arcstats"), "not arcstats\n").unwrap();
    assert_eq!(
        vmmresv_arc_read_linux(croot.as_ptr(), &mut host),
        Status::MalformedInput
    );
    assert_eq!(
        vmmresv_arc_reserve(adm, u.as_ptr(), GIB, std::ptr::null(), &mut res),
        Status::NullArgument
    );
    vmmresv_admission_close(adm);
    vmmresv_reservoir_close(r);
    println!("RESULT ok");
}

#[test]
fn reserve_release_and_the_guard() {
    if child::play(scenario) {
        return;
    }
    let host = EmuHost::new("arc-api", 64 * GIB);
    assert_eq!(run(&host, "reserve_release_and_the_guard", "api"), ["ok"]);
}

#[test]
fn zfs_arc_max_is_limited_and_restored() {
    if child::play(scenario) {
        return;
    }
    let host = EmuHost::new("arc-apply", 64 * GIB);
    assert_eq!(
        run(&host, "zfs_arc_max_is_limited_and_restored", "apply"),
        ["ok"]
    );
}

#[test]
fn no_reservoir_decisions_reserve_arc() {
    if child::play(scenario) {
        return;
    }
    let host = EmuHost::new("arc-admit", 64 * GIB);
    assert_eq!(
        run(&host, "no_reservoir_decisions_reserve_arc", "admit"),
        ["ok"]
    );
}

#[test]
fn a_dead_holders_arc_reservation_is_reclaimed() {
    if child::play(scenario) {
        return;
    }
    let t = "a_dead_holders_arc_reservation_is_reclaimed";
    let host = EmuHost::new("arc-dead", 64 * GIB);
    assert_eq!(run(&host, t, "hold"), ["held"]);
    assert_eq!(run(&host, t, "after_hold"), ["ok"]);
}

#[test]
fn the_c_abi_reserves_applies_and_waits() {
    if child::play(scenario) {
        return;
    }
    let host = EmuHost::new("arc-cabi", 64 * GIB);
    assert_eq!(
        run(&host, "the_c_abi_reserves_applies_and_waits", "c_abi"),
        ["ok"]
    );
}

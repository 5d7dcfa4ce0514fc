//! Admission under the host's policy (`Admission::admit_vm`) against the
//! emulated `/dev/vmmctl`: guest memory + page_t + the overhead model are
//! counted, a start that would leave the host below the configured memory
//! state is refused with the rule named, and a refused start gives back
//! every claim and reservation it took. Scenarios run in child processes
//! under the emulator (see `common::child`).

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

use common::child::{self, run};
use common::*;
use vmmresv::admission::vm::AdmissionPolicy;
use vmmresv::admission::{parse_uuid, Admission, ArcHost, Decision, Preference, Reason};
use vmmresv::arc::guard::{ArcLimits, Ceiling};
use vmmresv::arc::reserve::ArcPolicy;
use vmmresv::host::HostMemory;
use vmmresv::ledger::Pool;
use vmmresv::policy::overhead::{OverheadKind, OverheadModel, OverheadParams, VmSpec};
use vmmresv::policy::states::{self, MemState, MinFreeScale};
use vmmresv::Reservoir;

const MIB: u64 = 1 << 20;
const HOST: u64 = 64 * GIB;

fn uuid(n: u32) -> [u8; 16] {
    parse_uuid(&format!("7a1c0de5-0000-4000-8000-{:012x}", n)).unwrap()
}

fn vm(guest: u64, vcpus: u32) -> VmSpec {
    VmSpec {
        guest_bytes: guest,
        vcpus,
        ..VmSpec::default()
    }
}

fn host(free: u64) -> HostMemory {
    HostMemory {
        physmem_bytes: HOST,
        free_bytes: free,
    }
}

/// minFree of the emulated host on the default scale.
fn min_free() -> u64 {
    MinFreeScale::default().min_free(HOST)
}

fn page_t(guest: u64) -> u64 {
    guest / 4096 * 120
}

fn scenario(role: &str) {
    let r = Reservoir::open().expect("open the emulated /dev/vmmctl");
    let a = Admission::open(r, None).expect("open the ledger");
    a.reservoir().unwrap().set_target(8 * GIB, 0, None).unwrap();
    let vmadm = 1280 * MIB;
    match role {
        "counts" => {
            // Default policy: SmartOS vmadm's 1280 MiB, floor "high".
            assert_eq!(a.policy(), AdmissionPolicy::default());
            let v = a
                .admit_vm(
                    &uuid(1),
                    &vm(2 * GIB, 2),
                    Preference::Require,
                    &host(4 * GIB),
                )
                .unwrap();
            assert_eq!(
                (v.verdict.decision, v.verdict.reason),
                (Decision::UseReservoir, Reason::Ok)
            );
            assert_eq!(v.charge.model, OverheadKind::Vmadm);
            assert_eq!(
                (
                    v.charge.guest_bytes,
                    v.charge.page_t_bytes,
                    v.charge.overhead_bytes
                ),
                (2 * GIB, page_t(2 * GIB), vmadm)
            );
            // The reservoir holds the guest; the host gives the rest.
            assert_eq!(v.verdict.charged_bytes, 2 * GIB);
            assert_eq!(v.host_bytes, vmadm + page_t(2 * GIB));
            assert_eq!(v.free_after_bytes, 4 * GIB - v.host_bytes);
            assert_eq!((v.state_after, v.floor), (MemState::High, MemState::High));
            assert_eq!(v.floor_bytes, min_free());
            // Its host memory is claimed until commit.
            let held = (vmadm + page_t(2 * GIB)).div_ceil(4096) * 4096;
            assert_eq!(a.host_pending().unwrap(), held);

            // A second start with the same reading sees VM 1's claim:
            // 3.5 GiB free cannot pay both overheads above minFree, although
            // each alone would fit.
            let v = a
                .admit_vm(
                    &uuid(2),
                    &vm(GIB, 2),
                    Preference::Require,
                    &host(3584 * MIB),
                )
                .unwrap();
            assert_eq!(
                (v.verdict.decision, v.verdict.reason),
                (Decision::Refuse, Reason::MemoryState)
            );
            let need = vmadm + page_t(GIB);
            assert_eq!(v.pending_bytes, held);
            assert_eq!(
                v.verdict.shortfall_bytes,
                min_free() + held + need - 3584 * MIB
            );
            assert_eq!(v.verdict.charged_bytes, 0);
            // Its claims were given back: only VM 1's are pending.
            assert_eq!(a.pending_bytes(Pool::Reservoir), 2 * GIB);
            assert_eq!(a.host_pending().unwrap(), held);

            // A retried admission is answered, not re-checked.
            let v = a
                .admit_vm(&uuid(1), &vm(2 * GIB, 2), Preference::Require, &host(0))
                .unwrap();
            assert_eq!(
                (v.verdict.decision, v.verdict.reason),
                (Decision::UseReservoir, Reason::AlreadyAdmitted)
            );
            // Commit releases both claims (the reading taken afterwards
            // shows the memory VM 1 then holds).
            assert_eq!(a.commit(&uuid(1)).unwrap(), 2 * GIB);
            assert_eq!(a.host_pending().unwrap(), 0);

            // 2 GiB free: the reservoir has room for 1 GiB, but its
            // overhead would take the host below minFree.
            let v = a
                .admit_vm(&uuid(2), &vm(GIB, 2), Preference::Require, &host(2 * GIB))
                .unwrap();
            assert_eq!(
                (v.verdict.decision, v.verdict.reason),
                (Decision::Refuse, Reason::MemoryState)
            );
            assert_eq!(v.verdict.shortfall_bytes, min_free() + need - 2 * GIB);
            assert_eq!(a.pending_bytes(Pool::Reservoir), 0);

            // A lower floor admits it: "low" needs 16% of minFree.
            a.set_policy(AdmissionPolicy {
                floor: MemState::Low,
                ..AdmissionPolicy::default()
            });
            let v = a
                .admit_vm(&uuid(2), &vm(GIB, 2), Preference::Require, &host(2 * GIB))
                .unwrap();
            assert_eq!(v.verdict.decision, Decision::UseReservoir);
            let t = states::thresholds(&MinFreeScale::default(), HOST);
            assert_eq!(v.state_after, states::state(&t, 2 * GIB - need));
            assert!(v.state_after > MemState::High, "{:?}", v.state_after);
            assert_eq!(a.abort(&uuid(2)).unwrap(), GIB);
            assert_eq!(a.host_pending().unwrap(), 0);
            a.set_policy(AdmissionPolicy::default());

            // Another model: EVE-OS's fixed 600 MiB fits where vmadm's
            // 1280 MiB did not.
            a.set_policy(AdmissionPolicy {
                overhead: OverheadModel {
                    kind: OverheadKind::Fixed,
                    params: OverheadParams::default(),
                },
                ..AdmissionPolicy::default()
            });
            let v = a
                .admit_vm(&uuid(3), &vm(GIB, 2), Preference::Require, &host(2 * GIB))
                .unwrap();
            assert_eq!(v.verdict.decision, Decision::UseReservoir);
            assert_eq!(
                (v.charge.model, v.charge.overhead_bytes),
                (OverheadKind::Fixed, 600 * MIB)
            );
            a.abort(&uuid(3)).unwrap();
            println!("RESULT ok");
        }
        "no_reservoir" => {
            // Without the reservoir the guest comes out of host memory too.
            let v = a
                .admit_vm(
                    &uuid(10),
                    &vm(2 * GIB, 1),
                    Preference::Never,
                    &host(4 * GIB),
                )
                .unwrap();
            assert_eq!(
                (v.verdict.decision, v.verdict.reason),
                (Decision::Refuse, Reason::MemoryState)
            );
            assert_eq!(v.host_bytes, 2 * GIB + page_t(2 * GIB) + vmadm);
            assert_eq!(a.pending_bytes(Pool::Transient), 0);
            // With 6 GiB free it fits, and its transient claim is pending.
            let v = a
                .admit_vm(
                    &uuid(10),
                    &vm(2 * GIB, 1),
                    Preference::Never,
                    &host(6 * GIB),
                )
                .unwrap();
            assert_eq!(
                (v.verdict.decision, v.verdict.reason),
                (Decision::NoReservoir, Reason::ReservoirNotWanted)
            );
            assert_eq!(a.pending_bytes(Pool::Transient), 2 * GIB);
            // A second one sees the first's host claim (its guest, page_t
            // and overhead): 6 GiB free is no longer enough for both.
            let v = a
                .admit_vm(
                    &uuid(11),
                    &vm(2 * GIB, 1),
                    Preference::Never,
                    &host(6 * GIB),
                )
                .unwrap();
            assert_eq!(
                v.pending_bytes,
                (2 * GIB + page_t(2 * GIB) + vmadm).div_ceil(4096) * 4096
            );
            assert_eq!(
                (v.verdict.decision, v.verdict.reason),
                (Decision::Refuse, Reason::MemoryState)
            );
            assert_eq!(a.pending_bytes(Pool::Transient), 2 * GIB);
            a.abort(&uuid(10)).unwrap();
            println!("RESULT ok");
        }
        "arc" => {
            // On a ZFS host the ARC gives back what it holds above the
            // target its reservations set: 32 GiB ARC, c_max 32 GiB, a
            // 2 GiB reservation → target 30 GiB → 2 GiB comes back.
            let arc = ArcHost {
                policy: ArcPolicy {
                    limits: ArcLimits {
                        arc_c_min: GIB,
                        arc_c_max: 32 * GIB,
                    },
                    ceiling: Ceiling::ArcCMax,
                    slack: 0,
                },
                arc_size: 32 * GIB,
            };
            let shape = vm(2 * GIB, 1);
            // Without the ARC counted, 3 GiB free is too little.
            let v = a
                .admit_vm(&uuid(20), &shape, Preference::Never, &host(3 * GIB))
                .unwrap();
            assert_eq!(v.verdict.reason, Reason::MemoryState);
            a.set_arc(Some(arc));
            let v = a
                .admit_vm(&uuid(20), &shape, Preference::Never, &host(3 * GIB))
                .unwrap();
            assert_eq!(v.verdict.decision, Decision::NoReservoir);
            assert_eq!(v.arc_shrink_bytes, 2 * GIB);
            assert_eq!(a.pending_bytes(Pool::Arc), 2 * GIB);
            a.abort(&uuid(20)).unwrap();
            a.arc_release(&uuid(20)).unwrap();
            // Refused by the state rule: the ARC reservation is released
            // with the transient claim.
            let v = a
                .admit_vm(&uuid(21), &shape, Preference::Never, &host(GIB))
                .unwrap();
            assert_eq!(v.verdict.reason, Reason::MemoryState);
            assert_eq!(a.pending_bytes(Pool::Arc), 0);
            assert_eq!(a.pending_bytes(Pool::Transient), 0);
            println!("RESULT ok");
        }
        "largest" => {
            // The report's largest VMs are exactly what admit_vm admits:
            // that one fits, one page more does not, for the reason the
            // report names.
            use vmmresv::report::{Limit, ReportInputs};
            let reason = |l: Limit| match l {
                Limit::ReservoirFree => Reason::ReservoirFull,
                Limit::TransientLimit => Reason::TransientLimit,
                Limit::ArcGuard => Reason::ArcGuard,
                Limit::MemoryState => Reason::MemoryState,
            };
            let arc = ArcHost {
                policy: ArcPolicy {
                    limits: ArcLimits {
                        arc_c_min: GIB,
                        arc_c_max: 32 * GIB,
                    },
                    ceiling: Ceiling::ArcCMax,
                    slack: 256 * MIB,
                },
                arc_size: 20 * GIB,
            };
            let mut n = 100;
            let mut seen = Vec::new();
            // (free memory, ARC host, model) cases; each binds differently.
            for (free, with_arc, model) in [
                (60 * GIB, false, OverheadKind::Vmadm), // reservoir / transient
                (2662 * MIB, false, OverheadKind::Vmadm), // memory state, both
                (3 * GIB, true, OverheadKind::Vmadm),   // the ARC gives back
                (3 * GIB, true, OverheadKind::EvePillar),
                (40 * GIB, true, OverheadKind::Proportional), // ARC guard
                (30 * GIB, false, OverheadKind::Pooled),      // pool spread over 1 VM
                (5 * GIB, false, OverheadKind::Fixed),        // with a start pending
            ] {
                // The last case runs beside another start that holds its
                // claims (a host claim among them).
                let holder = uuid(99);
                if model == OverheadKind::Fixed {
                    a.set_arc(None);
                    a.set_policy(AdmissionPolicy::default());
                    let v = a
                        .admit_vm(&holder, &vm(GIB, 2), Preference::Require, &host(free))
                        .unwrap();
                    assert_eq!(v.verdict.decision, Decision::UseReservoir);
                    assert!(a.host_pending().unwrap() > 0);
                }
                a.set_arc(if with_arc { Some(arc) } else { None });
                a.set_policy(AdmissionPolicy {
                    overhead: OverheadModel {
                        kind: model,
                        params: OverheadParams::default(),
                    },
                    ..AdmissionPolicy::default()
                });
                let h = host(free);
                let r = a
                    .report(&ReportInputs {
                        host: h,
                        reference_vcpus: 2,
                        ..ReportInputs::default()
                    })
                    .unwrap();
                for (largest, pref) in [
                    (r.with_reservoir, Preference::Require),
                    (r.without_reservoir, Preference::Never),
                ] {
                    let case =
                        format!("free {free} arc {with_arc} {model:?} {pref:?}: {largest:?}");
                    let g = largest.guest_bytes;
                    seen.push(largest.limited_by);
                    if g > 0 {
                        n += 1;
                        let v = a.admit_vm(&uuid(n), &vm(g, 2), pref, &h).unwrap();
                        assert_ne!(v.verdict.decision, Decision::Refuse, "{case}: {v:?}");
                        assert_eq!(v.charge.overhead_bytes, largest.overhead_bytes, "{case}");
                        a.abort(&uuid(n)).unwrap();
                        a.arc_release(&uuid(n)).unwrap();
                    }
                    n += 1;
                    let v = a.admit_vm(&uuid(n), &vm(g + 4096, 2), pref, &h).unwrap();
                    assert_eq!(v.verdict.decision, Decision::Refuse, "{case}: {v:?}");
                    assert_eq!(
                        v.verdict.reason,
                        reason(largest.limited_by),
                        "{case}: {v:?}"
                    );
                    if model != OverheadKind::Fixed {
                        assert_eq!(a.pending_bytes(Pool::Reservoir), 0, "{case}");
                        assert_eq!(a.pending_bytes(Pool::Transient), 0, "{case}");
                        assert_eq!(a.pending_bytes(Pool::Arc), 0, "{case}");
                        assert_eq!(a.host_pending().unwrap(), 0, "{case}");
                    }
                }
                if model == OverheadKind::Fixed {
                    assert_eq!(r.pending.host, a.host_pending().unwrap());
                    a.abort(&holder).unwrap();
                    assert_eq!(a.host_pending().unwrap(), 0);
                }
            }
            // The cases reach every bound the report can name.
            for l in [
                Limit::ReservoirFree,
                Limit::TransientLimit,
                Limit::ArcGuard,
                Limit::MemoryState,
            ] {
                assert!(seen.contains(&l), "no case limited by {l:?}: {seen:?}");
            }
            println!("RESULT ok");
        }
        "hostile_host_ledger" => {
            // The host ledger is untrusted input like the other: garbage
            // there is LEDGER_CORRUPT, and the start's ledger claim is given
            // back, not left behind.
            use std::os::unix::fs::OpenOptionsExt;
            let p = a.host_ledger_path();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(p)
                .unwrap();
            std::io::Write::write_all(&mut f, &vec![0x5a; 528_384]).unwrap();
            drop(f);
            let e = a
                .admit_vm(&uuid(40), &vm(GIB, 1), Preference::Require, &host(8 * GIB))
                .unwrap_err();
            assert_eq!(e.status(), vmmresv::Status::LedgerCorrupt);
            assert_eq!(a.pending_bytes(Pool::Reservoir), 0);
            // A plain admission does not need the host ledger.
            let v = a.admit(&uuid(41), GIB, Preference::Require).unwrap();
            assert_eq!(v.decision, Decision::UseReservoir);
            // And its commit is not held up by the unusable host ledger
            // (no claim anyone can count is in it).
            assert_eq!(a.commit(&uuid(41)).unwrap(), GIB);
            assert_eq!(a.pending_bytes(Pool::Reservoir), 0);
            // The report says so rather than count it as empty.
            assert_eq!(
                a.report(&vmmresv::report::ReportInputs {
                    host: host(8 * GIB),
                    ..Default::default()
                })
                .unwrap_err()
                .status(),
                vmmresv::Status::LedgerCorrupt
            );
            // admit_vm keeps refusing to work with it.
            let e = a
                .admit_vm(&uuid(42), &vm(GIB, 1), Preference::Never, &host(8 * GIB))
                .unwrap_err();
            assert_eq!(e.status(), vmmresv::Status::LedgerCorrupt);
            assert_eq!(a.pending_bytes(Pool::Transient), 0);
            println!("RESULT ok");
        }
        "bad_input" => {
            // Free above physical memory is not a reading.
            let e = a
                .admit_vm(
                    &uuid(30),
                    &vm(GIB, 1),
                    Preference::Require,
                    &HostMemory {
                        physmem_bytes: GIB,
                        free_bytes: 2 * GIB,
                    },
                )
                .unwrap_err();
            assert_eq!(e.status(), vmmresv::Status::InvalidArgument);
            // A zero-sized guest is refused as by admit.
            let e = a
                .admit_vm(&uuid(30), &vm(0, 1), Preference::Require, &host(GIB))
                .unwrap_err();
            assert_eq!(e.status(), vmmresv::Status::InvalidArgument);
            assert_eq!(a.pending_bytes(Pool::Reservoir), 0);
            println!("RESULT ok");
        }
        other => panic!("unknown role {}", other),
    }
}

/// Run scenario `role` as test `test` in a child under a fresh emulated
/// host `tag`; the child must report "ok".
fn in_child(test: &str, tag: &str, role: &str) {
    let host = EmuHost::new(tag, HOST);
    assert_eq!(run(&host, test, role), ["ok"]);
}

#[test]
fn guest_page_t_and_overhead_are_counted_and_the_rule_is_named() {
    if !child::play(scenario) {
        in_child(
            "guest_page_t_and_overhead_are_counted_and_the_rule_is_named",
            "admpol-counts",
            "counts",
        );
    }
}

#[test]
fn without_the_reservoir_the_guest_is_host_memory() {
    if !child::play(scenario) {
        in_child(
            "without_the_reservoir_the_guest_is_host_memory",
            "admpol-noresv",
            "no_reservoir",
        );
    }
}

#[test]
fn the_arc_gives_back_what_it_holds_above_its_target() {
    if !child::play(scenario) {
        in_child(
            "the_arc_gives_back_what_it_holds_above_its_target",
            "admpol-arc",
            "arc",
        );
    }
}

#[test]
fn the_reports_largest_vm_is_admitted_and_one_page_more_is_not() {
    if !child::play(scenario) {
        in_child(
            "the_reports_largest_vm_is_admitted_and_one_page_more_is_not",
            "admpol-largest",
            "largest",
        );
    }
}

#[test]
fn a_hostile_host_ledger_is_refused_and_nothing_is_held() {
    if !child::play(scenario) {
        in_child(
            "a_hostile_host_ledger_is_refused_and_nothing_is_held",
            "admpol-hostile",
            "hostile_host_ledger",
        );
    }
}

#[test]
fn bad_readings_are_refused_and_nothing_is_held() {
    if !child::play(scenario) {
        in_child(
            "bad_readings_are_refused_and_nothing_is_held",
            "admpol-bad",
            "bad_input",
        );
    }
}

// ---------------------------------------------------------------------
// The same from C: zhyve -R (vmmresv_admit_vm, vmmresv_admission_set_policy)
// ---------------------------------------------------------------------

/// `<scratch>/root/proc/meminfo` saying `free` of HOST is available.
fn meminfo(s: &Scratch, free: u64) -> std::path::PathBuf {
    let r = s.path().join("root");
    std::fs::create_dir_all(r.join("proc")).unwrap();
    std::fs::write(
        r.join("proc/meminfo"),
        format!(
            "MemTotal: {} kB\nMemAvailable: {} kB\n",
            HOST / 1024,
            free / 1024
        ),
    )
    .unwrap();
    r
}

fn zhyve_policy(host: &EmuHost, root: &std::path::Path, n: u32, args: &[&str]) -> String {
    let u = format!("7a1c0de5-0000-4000-8000-{:08x}0000", n);
    let o = host
        .command(zhyve())
        .arg("-R")
        .arg(root)
        .args(args)
        .args(["-u", &u, "-m", "1024"])
        .arg(bhyve())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "zhyve {:?}: {}\n{}",
        args,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

#[test]
fn zhyve_admits_under_the_policy_and_names_the_rule() {
    let host = EmuHost::with_reservoir("admpol-zhyve", HOST, 4096);
    let s = Scratch::new("admpol-zhyve-root");

    // Plenty free: admitted with the reservoir, the charge by part shown.
    let out = zhyve_policy(
        &host,
        &meminfo(&s, 8 * GIB),
        1,
        &["-M", "eve-pillar", "-c", "4"],
    );
    assert!(
        out.contains("policy model=eve-pillar guest=1073741824"),
        "{out}"
    );
    assert!(out.contains(&format!("page_t={}", page_t(GIB))), "{out}");
    assert!(out.contains("use_reservoir (ok)"), "{out}");
    assert!(
        out.contains("admitted=1 refused=0 launch_failed=0"),
        "{out}"
    );

    // 1.5 GiB free: vmadm's 1280 MiB + page_t leaves less than minFree.
    let out = zhyve_policy(&host, &meminfo(&s, 1536 * MIB), 2, &[]);
    assert!(out.contains("refuse (memory_state)"), "{out}");
    assert!(out.contains("state_after=low floor=high"), "{out}");
    assert!(out.contains("admitted=0 refused=1"), "{out}");

    // The operator's floor: "low" lets it through.
    let out = zhyve_policy(&host, &meminfo(&s, 1536 * MIB), 2, &["-F", "low"]);
    assert!(out.contains("use_reservoir (ok)"), "{out}");
    assert!(
        out.contains("admitted=1 refused=0 launch_failed=0"),
        "{out}"
    );
    // Nothing is left claimed: every start committed or gave back.
    assert_eq!(host.stat("limit_exceeded"), 0);
}

/// Across processes: a zhyve whose bhyve is slow to allocate (-D) holds
/// its claims, host memory included; a second zhyve with the same reading
/// is refused by the memory state, though either alone would fit. Without
/// the host claim both would start.
#[test]
fn concurrent_starts_with_one_reading_cannot_both_pass_the_state_rule() {
    let host = EmuHost::with_reservoir("admpol-concurrent", HOST, 4096);
    let s = Scratch::new("admpol-concurrent-root");
    // Each start needs 1280 MiB + 30 MiB of page_t: 3584 MiB free less
    // minFree (1270 MiB) holds one of them, not two.
    let root = meminfo(&s, 3584 * MIB);
    let mut first = host
        .command(zhyve())
        .arg("-R")
        .arg(&root)
        .args([
            "-D",
            "3000",
            "-u",
            "7a1c0de5-0000-4000-8000-00000a000000",
            "-m",
            "1024",
        ])
        .arg(bhyve())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for its decision line: from then on its claims are held until
    // its bhyve allocates, 3 s later.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(first.stdout.take().unwrap()));
    let decided = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find(|l| l.contains("use_reservoir") || l.contains("refuse"))
        .expect("the first zhyve decides");
    assert!(decided.contains("use_reservoir (ok)"), "{decided}");
    let second = zhyve_policy(&host, &root, 11, &[]);
    assert!(second.contains("refuse (memory_state)"), "{second}");
    assert!(second.contains("admitted=0 refused=1"), "{second}");
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(first.wait().unwrap().success());
    assert!(
        rest.iter()
            .any(|l| l.contains("admitted=1 refused=0 launch_failed=0")),
        "{rest:?}"
    );
    // Once the first committed, its host claim is gone.
    let third = zhyve_policy(&host, &root, 12, &[]);
    assert!(third.contains("use_reservoir (ok)"), "{third}");
}

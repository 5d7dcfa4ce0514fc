//! Durable ARC reservations: made by a short-lived program (a hook script,
//! an administrative command), they outlive it — until released, or until
//! their VM no longer exists (`docs/ledger.md`, "Durable ARC
//! reservations").
//!
//! The claim is a durable claim of the ledger's ARC pool
//! ([`Ledger::claim_durable`]): counted in the total like any other, never
//! taken out for a missing lock. The VM's existence check is a path kept
//! beside the ledger, in `<run_dir>/arc.vm/<uuid as 32 hex digits>` (one
//! line): a file that exists while the VM does (`/dev/vmm/<name>` on
//! illumos; a QEMU pidfile, or libvirt's `/run/libvirt/qemu/<name>.xml`,
//! elsewhere). [`reconcile`] frees a durable claim only when that path is
//! gone (`ENOENT`, `ENOTDIR`) **and** the claim is older than a grace
//! period: a hook reserves before its VM exists. Anything else — the path
//! present, another error, the record missing, unreadable or malformed, a
//! clock behind the claim's time — keeps it: unknown never frees.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::guard::{guard, GuardInputs};
use super::reserve::{current_target, existing, ArcPolicy, Reservation, Reserved};
use crate::errno;
use crate::ledger::{hint, ClaimInfo, ClaimOutcome, Ledger, Pool, SlotState, World};
use crate::pages;
use crate::status::{Error, Status};

/// Directory (in the run directory) of the VMs' existence checks.
pub const VM_RECORD_DIR: &str = "arc.vm";
/// The grace period a reservation has for its VM to appear (seconds).
pub const DEFAULT_GRACE_SECS: u64 = 300;
/// Longest existence-check path accepted (bytes).
pub const MAX_CHECK_PATH: usize = 1024;

/// What a VM's existence check says now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmState {
    /// The path exists: the VM does.
    Present,
    /// The path does not exist (`ENOENT`, `ENOTDIR`): the VM is gone.
    Gone,
    /// Anything else (another error, no usable record): not a decision.
    Unknown,
}

fn record_path(run_dir: &Path, uuid: &[u8; 16]) -> PathBuf {
    let mut name = String::with_capacity(32);
    for b in uuid {
        let _ = write!(name, "{b:02x}");
    }
    run_dir.join(VM_RECORD_DIR).join(name)
}

/// Whether `p` can be an existence check: absolute, at most
/// [`MAX_CHECK_PATH`] bytes, no newline.
pub fn valid_check(p: &Path) -> bool {
    let b = p.as_os_str().as_bytes();
    p.is_absolute() && b.len() <= MAX_CHECK_PATH && !b.contains(&b'\n') && !b.contains(&0)
}

/// What the path `check` says now.
pub fn check_path(check: &Path) -> VmState {
    match std::fs::metadata(check) {
        Ok(_) => VmState::Present,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => VmState::Gone,
        Err(_) => VmState::Unknown,
    }
}

/// The existence check recorded for VM `uuid`, if a usable one is.
pub fn recorded_check(run_dir: &Path, uuid: &[u8; 16]) -> Option<PathBuf> {
    let bytes = crate::files::read_limited(&record_path(run_dir, uuid)).ok()?;
    let line = bytes.strip_suffix(b"\n")?;
    let p = PathBuf::from(std::ffi::OsString::from_vec(line.to_vec()));
    valid_check(&p).then_some(p)
}

/// What VM `uuid`'s recorded check says now ([`VmState::Unknown`] without
/// a usable record).
pub fn vm_state(run_dir: &Path, uuid: &[u8; 16]) -> VmState {
    recorded_check(run_dir, uuid).map_or(VmState::Unknown, |p| check_path(&p))
}

fn write_record(run_dir: &Path, uuid: &[u8; 16], check: &Path) -> Result<(), Error> {
    let io = |e: std::io::Error| errno::file_io_error(&e);
    let dir = run_dir.join(VM_RECORD_DIR);
    std::fs::create_dir_all(&dir).map_err(io)?;
    let path = record_path(run_dir, uuid);
    let mut tmp = path.clone().into_os_string();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let mut line = check.as_os_str().as_bytes().to_vec();
    line.push(b'\n');
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&line).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

/// Remove VM `uuid`'s record unless a claim of it is still in the ledger
/// (a newer reservation of the same VM keeps its record).
fn forget(ledger: &Ledger<'_>, run_dir: &Path, uuid: &[u8; 16]) -> Result<(), Error> {
    if ledger.find(uuid, hint(uuid), &[Pool::Arc])?.is_none() {
        let _ = std::fs::remove_file(record_path(run_dir, uuid));
    }
    Ok(())
}

fn bytes(p: u64) -> u64 {
    p.saturating_mul(pages::PAGESIZE)
}

/// Reserve `request_bytes` of ARC room for VM `uuid` as a durable
/// reservation whose VM exists while the path `vm_check` does.
///
/// Idempotent per VM: a reservation found is `already`, unless it is a
/// durable one whose VM is gone now — a VM stopped without its release,
/// starting again — which is released and made afresh, so the grace
/// period covers the new start. Refused by the guard as
/// [`super::reserve::reserve`] is.
pub fn reserve(
    ledger: &Ledger<'_>,
    world: &dyn World,
    run_dir: &Path,
    uuid: &[u8; 16],
    request_bytes: u64,
    policy: &ArcPolicy,
    vm_check: &Path,
) -> Result<Reservation, Error> {
    if !valid_check(vm_check) || policy.limits.arc_c_min > policy.limits.arc_c_max {
        return Err(Error::new(Status::InvalidArgument));
    }
    let inputs = GuardInputs::new(&policy.limits, policy.ceiling, 0, request_bytes);
    if inputs.request == 0 {
        return Err(Error::new(Status::InvalidArgument));
    }
    if let Some(c) = existing(ledger, world, uuid)? {
        let stale = c.durable && check_path(vm_check) == VmState::Gone;
        if !stale {
            // The check named now is the one reconcile should judge.
            if c.durable && recorded_check(run_dir, uuid).as_deref() != Some(vm_check) {
                write_record(run_dir, uuid, vm_check)?;
            }
            return Ok(Reservation::Reserved(Reserved {
                bytes: bytes(c.pages),
                already: true,
                target: current_target(ledger, policy)?,
            }));
        }
        match ledger.release_durable(c.slot, c.word) {
            Ok(_) => {}
            // Taken out meanwhile (a reconcile, a release): same outcome.
            Err(e) if e.status() == Status::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    // The record first: a durable CLAIMED slot always has one (unless
    // removed by hand, which only keeps the claim).
    write_record(run_dir, uuid, vm_check)?;
    let capacity = inputs.ceiling.saturating_sub(inputs.arc_c_min);
    let outcome = match ledger.claim_durable(world, *uuid, inputs.request, hint(uuid), &mut || {
        Ok(capacity)
    }) {
        Ok(o) => o,
        Err(e) => {
            forget(ledger, run_dir, uuid)?;
            return Err(e);
        }
    };
    match outcome {
        ClaimOutcome::Claimed { slot, .. } => match current_target(ledger, policy) {
            Ok(target) => {
                // A concurrent drop or reconcile of the same VM may have
                // removed the record between our write and our claim
                // (forget() looks for a claim, and ours was not yet
                // visible): write it again. A record still lost makes the
                // reservation unknown, which keeps it: never over-admits.
                let _ = write_record(run_dir, uuid, vm_check);
                Ok(Reservation::Reserved(Reserved {
                    bytes: bytes(inputs.request),
                    already: false,
                    target,
                }))
            }
            // As in reserve::reserve: nothing is left behind on an error.
            Err(e) => {
                if let Some(c) = ledger.read(slot)? {
                    let _ = ledger.release_durable(slot, c.word);
                }
                forget(ledger, run_dir, uuid)?;
                Err(e)
            }
        },
        ClaimOutcome::Refused(r) => {
            forget(ledger, run_dir, uuid)?;
            match guard(&GuardInputs {
                arc_virt_machine_reserved: r.claimed,
                ..inputs
            }) {
                Err(refusal) => Ok(Reservation::Refused(refusal)),
                Ok(_) => Err(Error::new(Status::LedgerCorrupt)),
            }
        }
    }
}

/// Release VM `uuid`'s durable reservation (any process may). Idempotent:
/// none releases 0 bytes. `NotFound` if the VM's reservation is not a
/// durable one (a process holds it).
pub fn release(ledger: &Ledger<'_>, run_dir: &Path, uuid: &[u8; 16]) -> Result<u64, Error> {
    let released = match ledger.find(uuid, hint(uuid), &[Pool::Arc])? {
        None => 0,
        Some(c) if !c.durable => return Err(Error::new(Status::NotFound)),
        Some(c) => match ledger.release_durable(c.slot, c.word) {
            Ok(p) => bytes(p),
            // Released meanwhile by someone else.
            Err(e) if e.status() == Status::NotFound => 0,
            Err(e) => return Err(e),
        },
    };
    forget(ledger, run_dir, uuid)?;
    Ok(released)
}

/// What [`reconcile`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DurableReport {
    /// Durable reservations whose VM exists (or is within its grace).
    pub kept: u64,
    /// Durable reservations kept because their check is unknown.
    pub unknown: u64,
    /// Durable reservations freed: their VM is gone.
    pub freed: u64,
    /// Bytes freed.
    pub freed_bytes: u64,
}

/// Where illumos makes each VM's device node (every VM's in the global
/// zone, a zone's own elsewhere: docs/kernel.md, "The control device").
pub const VMM_DEV_DIR: &str = "/dev/vmm";

/// The zone id of the global zone (`GLOBAL_ZONEID`); 0 on every other
/// system, where there are no zones.
pub const GLOBAL_ORIGIN: u64 = 0;

/// What VM `c`'s recorded check says, evaluated by a process in zone
/// `here`. A non-global zone sees only its own `/dev/vmm` entries (and its
/// own file system), so a check made in another zone cannot be told from
/// there: [`VmState::Unknown`], never "gone". The global zone (and every
/// process off illumos, where the origin is always 0) judges all.
pub fn vm_state_from(run_dir: &Path, c: &ClaimInfo, here: u64) -> VmState {
    if c.origin == here {
        return vm_state(run_dir, &c.uuid);
    }
    // Another zone's reservation: only the global zone sees into it, and
    // only through /dev/vmm (a path in the zone's own file system, a
    // pidfile say, does not exist here).
    match recorded_check(run_dir, &c.uuid) {
        Some(p) if here == GLOBAL_ORIGIN && p.starts_with(VMM_DEV_DIR) => check_path(&p),
        _ => VmState::Unknown,
    }
}

/// Every durable ARC reservation in the ledger, with its VM's state as a
/// process in zone `here` can tell it ([`vm_state_from`]).
pub fn list(
    ledger: &Ledger<'_>,
    run_dir: &Path,
    here: u64,
) -> Result<Vec<(ClaimInfo, VmState)>, Error> {
    Ok(ledger
        .claims()?
        .into_iter()
        .filter(|c| c.durable && c.state == SlotState::Claimed)
        .map(|c| {
            let s = vm_state_from(run_dir, &c, here);
            (c, s)
        })
        .collect())
}

/// Free the durable reservations whose VM is gone and whose claim is at
/// least `grace_secs` old at `now_secs` (Unix seconds); keep every other.
/// `here` is the caller's zone ([`vm_state_from`]): outside the global
/// zone, only reservations made in the same zone are judged.
/// The VM is checked twice, the second time just before the claim is
/// taken out, which narrows (does not close) the window in which a VM
/// appearing between the check and the release loses a reservation that
/// was found `already` meanwhile.
pub fn reconcile(
    ledger: &Ledger<'_>,
    run_dir: &Path,
    here: u64,
    now_secs: u64,
    grace_secs: u64,
) -> Result<DurableReport, Error> {
    let mut r = DurableReport::default();
    for (c, state) in list(ledger, run_dir, here)? {
        let old = now_secs
            .checked_sub(c.since)
            .is_some_and(|age| age >= grace_secs);
        match state {
            VmState::Gone if old && vm_state_from(run_dir, &c, here) == VmState::Gone => {
                match ledger.release_durable(c.slot, c.word) {
                    Ok(p) => {
                        r.freed = r.freed.saturating_add(1);
                        r.freed_bytes = r.freed_bytes.saturating_add(bytes(p));
                        forget(ledger, run_dir, &c.uuid)?;
                    }
                    // Moved since the listing: someone else decided.
                    Err(e) if e.status() == Status::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            VmState::Unknown => r.unknown = r.unknown.saturating_add(1),
            VmState::Present | VmState::Gone => r.kept = r.kept.saturating_add(1),
        }
    }
    Ok(r)
}

#[cfg(all(test, not(loom)))]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use crate::arc::guard::{ArcLimits, Ceiling};
    use crate::ledger::fake::{FakeLedger, FakeWorld};

    const GIB: u64 = 1 << 30;
    // The fake world's clock.
    const NOW: u64 = 1_700_000_000;

    fn policy() -> ArcPolicy {
        ArcPolicy {
            limits: ArcLimits {
                arc_c_min: 2 * GIB,
                arc_c_max: 30 * GIB,
            },
            ceiling: Ceiling::ArcCMax,
            slack: 0,
        }
    }

    fn reserved(r: Reservation) -> Reserved {
        match r {
            Reservation::Reserved(r) => r,
            Reservation::Refused(f) => panic!("refused: {f:?}"),
        }
    }

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn scratch(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("vmmresv-durable-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "writes reservation records in a directory, refused by Miri's isolation"
    )]
    fn a_reservation_outlives_its_maker_until_its_vm_is_gone_past_the_grace() {
        let d = scratch("outlives");
        let run = &d.0;
        let vm = run.join("vm-1.pid");
        std::fs::write(&vm, "1234\n").unwrap();
        let m = FakeLedger::new(16);
        let l = m.ledger();
        let hook = FakeWorld::process(&m, 1);
        let u = [7u8; 16];
        let r = reserved(reserve(&l, &hook, run, &u, 16 * GIB, &policy(), &vm).unwrap());
        assert_eq!((r.bytes, r.already), (16 * GIB, false));
        assert_eq!(recorded_check(run, &u).as_deref(), Some(vm.as_path()));
        // The hook exits; an admission's reconcile keeps the reservation.
        m.kill(1);
        let other = FakeWorld::process(&m, 2);
        l.reconcile(&other).unwrap();
        assert_eq!(l.claimed(Pool::Arc), 16 * GIB / 4096);
        // A second reserve of the same running VM: already, nothing twice.
        let again = reserved(reserve(&l, &other, run, &u, 16 * GIB, &policy(), &vm).unwrap());
        assert!(again.already);
        assert_eq!(l.claimed(Pool::Arc), 16 * GIB / 4096);
        // The VM runs: kept, whatever the age.
        let rep = reconcile(&l, run, GLOBAL_ORIGIN, NOW + 10_000, 300).unwrap();
        assert_eq!((rep.kept, rep.freed), (1, 0));
        // The VM is gone, but within the grace: kept.
        std::fs::remove_file(&vm).unwrap();
        let rep = reconcile(&l, run, GLOBAL_ORIGIN, NOW + 299, 300).unwrap();
        assert_eq!((rep.kept, rep.freed), (1, 0));
        // A clock behind the claim's time is not past any grace.
        let rep = reconcile(&l, run, GLOBAL_ORIGIN, NOW - 1, 0).unwrap();
        assert_eq!((rep.kept, rep.freed), (1, 0));
        assert_eq!(l.claimed(Pool::Arc), 16 * GIB / 4096);
        // Gone and past the grace: freed, once, with its record.
        let rep = reconcile(&l, run, GLOBAL_ORIGIN, NOW + 300, 300).unwrap();
        assert_eq!((rep.freed, rep.freed_bytes), (1, 16 * GIB));
        assert_eq!(l.claimed(Pool::Arc), 0);
        assert!(recorded_check(run, &u).is_none());
        assert_eq!(
            reconcile(&l, run, GLOBAL_ORIGIN, NOW + 300, 300).unwrap(),
            DurableReport::default()
        );
        assert!(!l.check_total(Pool::Arc).unwrap());
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "writes reservation records in a directory, refused by Miri's isolation"
    )]
    fn another_zones_reservation_is_unknown_outside_the_global_zone() {
        let d = scratch("zones");
        let run = &d.0;
        let m = FakeLedger::new(16);
        let l = m.ledger();
        let w = FakeWorld::process(&m, 1);
        let u = [11u8; 16];
        // Made in the global zone (the fake world's origin, 0), for a VM
        // whose check path does not exist.
        let vm = run.join("gone");
        reserved(reserve(&l, &w, run, &u, GIB, &policy(), &vm).unwrap());
        let c = l.find(&u, hint(&u), &[Pool::Arc]).unwrap().unwrap();
        assert_eq!(vm_state_from(run, &c, GLOBAL_ORIGIN), VmState::Gone);
        // Zone 5 cannot see the global zone's /dev/vmm: unknown, kept.
        assert_eq!(vm_state_from(run, &c, 5), VmState::Unknown);
        let rep = reconcile(&l, run, 5, NOW + 1_000, 0).unwrap();
        assert_eq!((rep.unknown, rep.freed), (1, 0));
        assert_eq!(l.claimed(Pool::Arc), GIB / 4096);
        // The global zone judges it: gone, freed.
        let rep = reconcile(&l, run, GLOBAL_ORIGIN, NOW + 1_000, 0).unwrap();
        assert_eq!(rep.freed, 1);
        assert_eq!(l.claimed(Pool::Arc), 0);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "writes reservation records in a directory, refused by Miri's isolation"
    )]
    fn the_global_zone_judges_another_zones_reservation_only_through_dev_vmm() {
        let d = scratch("zones-global");
        let run = &d.0;
        let m = FakeLedger::new(16);
        let l = m.ledger();
        let w = FakeWorld::process(&m, 1);
        let u = [12u8; 16];
        let pidfile = run.join("zone-local.pid");
        reserved(reserve(&l, &w, run, &u, GIB, &policy(), &pidfile).unwrap());
        let c = l.find(&u, hint(&u), &[Pool::Arc]).unwrap().unwrap();
        // As if made in zone 5: its pidfile is in that zone's file system,
        // which the global zone does not see: unknown, not gone.
        let from_zone = ClaimInfo { origin: 5, ..c };
        assert_eq!(
            vm_state_from(run, &from_zone, GLOBAL_ORIGIN),
            VmState::Unknown
        );
        // Through /dev/vmm the global zone sees every zone's VMs.
        let dev = Path::new("/dev/vmm/SYSbhyve-5-not-here");
        reserved(reserve(&l, &w, run, &u, GIB, &policy(), dev).unwrap());
        assert_eq!(vm_state_from(run, &from_zone, GLOBAL_ORIGIN), VmState::Gone);
        // A zone does not judge the global zone's, nor another zone's.
        assert_eq!(vm_state_from(run, &c, 5), VmState::Unknown);
        assert_eq!(vm_state_from(run, &from_zone, 7), VmState::Unknown);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "writes reservation records in a directory, refused by Miri's isolation"
    )]
    fn only_a_claimed_reservation_is_already() {
        use crate::ledger::Word;
        let d = scratch("states");
        let run = &d.0;
        let vm = run.join("vm.pid");
        std::fs::write(&vm, "1\n").unwrap();
        let u = [13u8; 16];
        // Being made by a live process (which may yet be refused): BUSY.
        let m = FakeLedger::new(16);
        let l = m.ledger();
        let hook = FakeWorld::process(&m, 1);
        let other = FakeWorld::process(&m, 2);
        reserved(crate::arc::reserve::reserve(&l, &other, &u, GIB, &policy()).unwrap());
        let c = l.find(&u, hint(&u), &[Pool::Arc]).unwrap().unwrap();
        let w = Word::unpack(m.slots[c.slot].peek_word()).unwrap();
        m.slots[c.slot].poke_word(w.with(SlotState::Reserving).pack());
        let e = reserve(&l, &hook, run, &u, GIB, &policy(), &vm).unwrap_err();
        assert_eq!(e.status(), Status::Busy);
        // Being released: not a reservation; a fresh one is made.
        m.slots[c.slot].poke_word(w.with(SlotState::Releasing).pack());
        let r = reserved(reserve(&l, &hook, run, &u, GIB, &policy(), &vm).unwrap());
        assert!(!r.already);
        // Left RESERVING by a dead maker, its total naming it: helped,
        // reclaimed (its maker is dead), and a fresh one made: charged once.
        let m = FakeLedger::new(16);
        let l = m.ledger();
        let hook = FakeWorld::process(&m, 1);
        let dead = FakeWorld::process(&m, 3);
        reserved(crate::arc::reserve::reserve(&l, &dead, &u, GIB, &policy()).unwrap());
        let c = l.find(&u, hint(&u), &[Pool::Arc]).unwrap().unwrap();
        let w = Word::unpack(m.slots[c.slot].peek_word()).unwrap();
        m.slots[c.slot].poke_word(w.with(SlotState::Reserving).pack());
        m.kill(3);
        let r = reserved(reserve(&l, &hook, run, &u, GIB, &policy(), &vm).unwrap());
        assert!(!r.already);
        assert_eq!(l.claimed(Pool::Arc), GIB / 4096);
        let claims = l.claims().unwrap();
        assert_eq!(claims.len(), 1);
        assert!(claims[0].durable);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "writes reservation records in a directory, refused by Miri's isolation"
    )]
    fn already_records_the_check_named_now() {
        let d = scratch("recheck");
        let run = &d.0;
        let m = FakeLedger::new(16);
        let l = m.ledger();
        let w = FakeWorld::process(&m, 1);
        let u = [14u8; 16];
        let a = run.join("a.pid");
        let b = run.join("b.pid");
        std::fs::write(&a, "1\n").unwrap();
        std::fs::write(&b, "1\n").unwrap();
        reserved(reserve(&l, &w, run, &u, GIB, &policy(), &a).unwrap());
        let r = reserved(reserve(&l, &w, run, &u, GIB, &policy(), &b).unwrap());
        assert!(r.already);
        assert_eq!(recorded_check(run, &u).as_deref(), Some(b.as_path()));
        // So removing the old path frees nothing.
        std::fs::remove_file(&a).unwrap();
        let rep = reconcile(&l, run, GLOBAL_ORIGIN, NOW + 1_000, 0).unwrap();
        assert_eq!((rep.kept, rep.freed), (1, 0));
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "writes reservation records in a directory, refused by Miri's isolation"
    )]
    fn unknown_never_frees() {
        let d = scratch("unknown");
        let run = &d.0;
        let m = FakeLedger::new(16);
        let l = m.ledger();
        let w = FakeWorld::process(&m, 1);
        let u = [8u8; 16];
        // The VM's path does not exist, but its record goes missing: kept.
        let vm = run.join("never-there");
        reserved(reserve(&l, &w, run, &u, GIB, &policy(), &vm).unwrap());
        std::fs::remove_file(record_path(run, &u)).unwrap();
        let rep = reconcile(&l, run, GLOBAL_ORIGIN, NOW + 1_000_000, 0).unwrap();
        assert_eq!((rep.unknown, rep.freed), (1, 0));
        // A malformed record (a relative path): kept.
        std::fs::write(record_path(run, &u), "relative/path\n").unwrap();
        let rep = reconcile(&l, run, GLOBAL_ORIGIN, NOW + 1_000_000, 0).unwrap();
        assert_eq!((rep.unknown, rep.freed), (1, 0));
        assert_eq!(l.claimed(Pool::Arc), GIB / 4096);
        // An explicit release (it needs no lock) still frees it.
        assert_eq!(release(&l, run, &u).unwrap(), GIB);
        assert_eq!(release(&l, run, &u).unwrap(), 0);
        assert_eq!(l.claimed(Pool::Arc), 0);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "writes reservation records in a directory, refused by Miri's isolation"
    )]
    fn a_stale_reservation_of_a_restarting_vm_is_made_afresh() {
        let d = scratch("restart");
        let run = &d.0;
        let m = FakeLedger::new(16);
        let l = m.ledger();
        let w = FakeWorld::process(&m, 1);
        let u = [9u8; 16];
        let vm = run.join("vm.pid");
        // Reserved while the VM ran; it stopped without a release.
        std::fs::write(&vm, "1\n").unwrap();
        reserved(reserve(&l, &w, run, &u, 4 * GIB, &policy(), &vm).unwrap());
        let old = l.find(&u, hint(&u), &[Pool::Arc]).unwrap().unwrap();
        std::fs::remove_file(&vm).unwrap();
        // The next start's hook (before the VM exists): a fresh claim,
        // not "already", and charged once.
        let r = reserved(reserve(&l, &w, run, &u, 4 * GIB, &policy(), &vm).unwrap());
        assert!(!r.already);
        let new = l.find(&u, hint(&u), &[Pool::Arc]).unwrap().unwrap();
        assert_ne!((new.slot, new.word), (old.slot, old.word));
        assert_eq!(l.claimed(Pool::Arc), 4 * GIB / 4096);
        assert_eq!(l.claims().unwrap().len(), 1);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "writes reservation records in a directory, refused by Miri's isolation"
    )]
    fn refusals_and_bad_arguments_leave_nothing() {
        let d = scratch("refused");
        let run = &d.0;
        let m = FakeLedger::new(16);
        let l = m.ledger();
        let w = FakeWorld::process(&m, 1);
        let u = [10u8; 16];
        let vm = run.join("vm.pid");
        // 2 GiB floor + 29 GiB > 30 GiB.
        match reserve(&l, &w, run, &u, 29 * GIB, &policy(), &vm).unwrap() {
            Reservation::Refused(_) => {}
            Reservation::Reserved(r) => panic!("{r:?}"),
        }
        assert!(l.claims().unwrap().is_empty());
        assert!(recorded_check(run, &u).is_none());
        for bad in [Path::new("relative"), Path::new("/a\nb")] {
            assert_eq!(
                reserve(&l, &w, run, &u, GIB, &policy(), bad)
                    .unwrap_err()
                    .status(),
                Status::InvalidArgument
            );
        }
        assert_eq!(
            reserve(&l, &w, run, &u, 0, &policy(), &vm)
                .unwrap_err()
                .status(),
            Status::InvalidArgument
        );
        // An ordinary (process-held) reservation is not released here.
        crate::arc::reserve::reserve(&l, &w, &u, GIB, &policy()).unwrap();
        assert_eq!(release(&l, run, &u).unwrap_err().status(), Status::NotFound);
        assert!(l.claims().unwrap().len() == 1);
    }
}

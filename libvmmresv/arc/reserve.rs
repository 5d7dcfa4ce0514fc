//! The per-VM ARC reservation ledger (OS-8005's `arc_virt_machine_reserved`,
//! kept by the library instead of the kernel).
//!
//! Reservations live in the shared ledger's `Pool::Arc` ([`crate::ledger`]):
//! the same shared file, the same lock-free claim protocol, the same
//! reclaim of a dead holder (the kernel's record locks) and the same
//! hostile-file rules. A VM's reservation is keyed by its UUID, held by the
//! process that made it (zhyve, and after a hand-off its bhyve) and
//! released on destroy — explicitly, or when its last holder dies.
//!
//! The claim's capacity is the guard's: `ceiling - arc_c_min` in pages, so
//! the ledger's "claimed + request <= capacity" is exactly
//! `arc_c_min + total VMM reservation + request <= ceiling`, compared in one
//! unit (pages) — not illumos-joyent's pages-against-bytes.

use super::guard::{
    guard, target, ArcLimits, Ceiling, GuardInputs, Refusal, TargetInputs, TargetReport,
};
use crate::errno;
use crate::files;
use crate::ledger::{hint, ClaimInfo, ClaimOutcome, Ledger, Pool, SlotState, World};
use crate::pages::{self, PageSize};
use crate::status::{Error, Status};

/// What reservations are checked against, and how the target is formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArcPolicy {
    /// The ARC's floor and ceiling (arcstats `c_min`, `c_max`).
    pub limits: ArcLimits,
    /// The ceiling reservations are taken from (default `arc_c_max`).
    pub ceiling: Ceiling,
    /// Extra room the target asks for, because others allocate while the
    /// ARC shrinks (OS-8005); see [`super::guard::desfree_slack`].
    pub slack: u64,
}

/// A reservation made, or found already made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reserved {
    /// Bytes this VM holds (its request rounded up to pages).
    pub bytes: u64,
    /// The VM already held a reservation: nothing was charged twice.
    pub already: bool,
    /// The ARC target that follows from the ledger now.
    pub target: TargetReport,
}

/// Outcome of [`reserve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// Reserved.
    Reserved(Reserved),
    /// Refused by the guard: the shortfall and the figures behind it.
    Refused(Refusal),
}

fn bytes(p: u64) -> u64 {
    p.saturating_mul(pages::PAGESIZE)
}

/// VM `uuid`'s ARC reservation, if it has one that counts now: a CLAIMED
/// slot. One being released (RELEASING) is no reservation: the caller
/// makes a fresh one. One being made (RESERVING) by a live process is
/// `Busy` (another reserve of the same VM is in progress; it may yet be
/// refused); one left RESERVING by a dead process is reclaimed (or helped
/// to CLAIMED, if its total names it) and looked at again.
pub fn existing(
    ledger: &Ledger<'_>,
    world: &dyn World,
    uuid: &[u8; 16],
) -> Result<Option<ClaimInfo>, Error> {
    for _ in 0..2 {
        let Some(c) = ledger.find(uuid, hint(uuid), &[Pool::Arc])? else {
            return Ok(None);
        };
        match c.state {
            SlotState::Claimed => return Ok(Some(c)),
            SlotState::Releasing | SlotState::Free | SlotState::Busy => return Ok(None),
            SlotState::Reserving => {
                if world.held(c.slot)? {
                    return Err(Error::new(Status::Busy));
                }
                ledger.reclaim_slot(world, c.slot)?;
            }
        }
    }
    Err(Error::new(Status::Busy))
}

/// The ARC target for the ledger's current total.
pub fn current_target(ledger: &Ledger<'_>, policy: &ArcPolicy) -> Result<TargetReport, Error> {
    target(&TargetInputs {
        limits: policy.limits,
        ceiling: policy.ceiling,
        arc_virt_machine_reserved: ledger.claimed(Pool::Arc),
        slack: policy.slack,
    })
}

/// Reserve `request_bytes` of ARC room for VM `uuid`, owned by `me`.
/// Idempotent per UUID.
pub fn reserve(
    ledger: &Ledger<'_>,
    world: &dyn World,
    uuid: &[u8; 16],
    request_bytes: u64,
    policy: &ArcPolicy,
) -> Result<Reservation, Error> {
    if policy.limits.arc_c_min > policy.limits.arc_c_max {
        return Err(Error::new(Status::InvalidArgument));
    }
    if let Some(c) = existing(ledger, world, uuid)? {
        return Ok(Reservation::Reserved(Reserved {
            bytes: bytes(c.pages),
            already: true,
            target: current_target(ledger, policy)?,
        }));
    }
    let inputs = GuardInputs::new(&policy.limits, policy.ceiling, 0, request_bytes);
    if inputs.request == 0 {
        return Err(Error::new(Status::InvalidArgument));
    }
    let capacity = inputs.ceiling.saturating_sub(inputs.arc_c_min);
    let outcome = ledger.claim(
        world,
        *uuid,
        Pool::Arc,
        inputs.request,
        hint(uuid),
        &mut || Ok(capacity),
    )?;
    match outcome {
        ClaimOutcome::Claimed { slot, .. } => match current_target(ledger, policy) {
            Ok(target) => Ok(Reservation::Reserved(Reserved {
                bytes: bytes(inputs.request),
                already: false,
                target,
            })),
            // A policy whose target cannot be computed (a slack so large
            // its bytes overflow) must not leave the reservation behind:
            // the caller gets an error and nothing is held. (Found by the
            // ledger_file fuzz target.)
            Err(e) => {
                let _ = ledger.release(world, slot);
                Err(e)
            }
        },
        ClaimOutcome::Refused(r) => {
            // The guard, on the total the refusing attempt saw, gives the
            // same verdict with the figures an operator wants.
            match guard(&GuardInputs {
                arc_virt_machine_reserved: r.claimed,
                ..inputs
            }) {
                Err(refusal) => Ok(Reservation::Refused(refusal)),
                // The ledger and the guard disagree: a bug, never an
                // admission.
                Ok(_) => Err(Error::new(Status::LedgerCorrupt)),
            }
        }
    }
}

/// Release VM `uuid`'s reservation (on destroy). Idempotent: a VM with no
/// reservation releases 0 bytes. A reservation held by another live
/// process is `NotFound` (it is reclaimed when that process dies).
pub fn release(ledger: &Ledger<'_>, world: &dyn World, uuid: &[u8; 16]) -> Result<u64, Error> {
    match ledger.find(uuid, hint(uuid), &[Pool::Arc])? {
        None => Ok(0),
        Some(c) if world.mine(c.slot) => ledger.release(world, c.slot).map(bytes),
        Some(_) => Err(Error::new(Status::NotFound)),
    }
}

/// Pages → bytes of the ledger's total (for reports).
pub fn reserved_bytes(ledger: &Ledger<'_>) -> u64 {
    pages::ptob(ledger.claimed(Pool::Arc), PageSize::Base4K).unwrap_or(u64::MAX)
}

/// Name of the file (in the run directory) that remembers `zfs_arc_max`
/// as it was before the first reservation limited it.
pub const ARC_MAX_ORIGINAL_FILE: &str = "zfs_arc_max.orig";
/// Name of the lock file serializing [`apply_linux`] calls.
pub const ARC_LOCK_FILE: &str = "arc.lock";

/// What [`apply_linux`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// `zfs_arc_max` now holds the target; `original` is what it held
    /// before the first reservation (restored when the last one goes).
    Limited {
        /// The value written.
        zfs_arc_max: u64,
        /// The value remembered for the restore.
        original: u64,
    },
    /// The last reservation is gone: the original value was written back.
    Restored {
        /// The value written back.
        zfs_arc_max: u64,
    },
    /// The last reservation is gone but the original was 0 (the module
    /// default), which OpenZFS cannot take back on a running system: the
    /// limit stays until the module reloads. Reported, not hidden.
    CannotRestoreDefault,
    /// Nothing reserved and nothing to restore.
    Unchanged,
}

/// Make Linux OpenZFS's `zfs_arc_max` follow the ledger: the target while
/// any VM holds a reservation, the original value once none does.
///
/// `root` is the filesystem root (`/` on a host; a temp dir in tests);
/// `run_dir` keeps the remembered original. Calls are serialized by a lock
/// file, and each one writes what the ledger's total implies *now*, so the
/// last caller's write is the right one whatever the order. A target
/// OpenZFS would ignore (below 64 MiB, not above `arc_c_min`, not below all
/// memory) is refused with `Status::Refused` rather than written.
pub fn apply_linux(
    ledger: &Ledger<'_>,
    policy: &ArcPolicy,
    facts: &super::apply::LinuxArcFacts,
    root: &std::path::Path,
    run_dir: &std::path::Path,
) -> Result<Applied, Error> {
    use super::apply::{zfs_arc_max_for, ZfsArcMax};
    let _lock = files::lock_file(&run_dir.join(ARC_LOCK_FILE))?;
    let param = ZfsArcMax::linux(root);
    let orig_path = run_dir.join(ARC_MAX_ORIGINAL_FILE);
    let remembered = match std::fs::read_to_string(&orig_path) {
        Ok(t) => Some(
            t.trim()
                .parse::<u64>()
                .map_err(|_| Error::new(Status::MalformedInput))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(errno::file_io_error(&e)),
    };
    let io = |e: std::io::Error| errno::file_io_error(&e);
    if ledger.claimed(Pool::Arc) > 0 {
        let t = current_target(ledger, policy)?;
        let value = zfs_arc_max_for(&t, facts).map_err(|_| Error::new(Status::Refused))?;
        let original = match remembered {
            Some(o) => o,
            None => {
                let cur = param.read()?;
                // Written before the limit, so a crash cannot lose it.
                std::fs::write(&orig_path, format!("{cur}\n")).map_err(io)?;
                cur
            }
        };
        param.write(value, facts)?;
        return Ok(Applied::Limited {
            zfs_arc_max: value,
            original,
        });
    }
    match remembered {
        None => Ok(Applied::Unchanged),
        Some(0) => Ok(Applied::CannotRestoreDefault),
        Some(o) => {
            param.write(o, facts)?;
            std::fs::remove_file(&orig_path).map_err(io)?;
            Ok(Applied::Restored { zfs_arc_max: o })
        }
    }
}

/// The two public encodings of OS-8005's `VM_ARC_RESV` (illumos-joyent;
/// see [`crate::sys::VM_ARC_RESV_BY_VALUE`] and
/// [`crate::sys::VM_ARC_RESV_COPYIN`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArcResvAbi {
    /// The early (2020) tree: `_IOW('v', 258, uint64_t)` = 0x80087702, the
    /// length passed by value.
    ByValue,
    /// The later tree: `VMM_IOC_BASE | 0xfe` = 0x766DFE, a pointer to a
    /// `size_t` the kernel copies in.
    Copyin,
}

/// Which encodings to try, in order, given what the VM device said to
/// `VMM_INTERFACE_VERSION` (its version, or the errno).
///
/// - A kernel that tells its interface version has the `VMM_IOC_BASE`
///   numbering (the version ioctl came after the renumbering), so the
///   2020 `_IOW` encoding cannot exist there: only the pointer form, and
///   its ENOTTY (every kernel but that illumos-joyent tree) is the answer.
/// - A kernel that does not tell (ENOTTY: older than the version ioctl,
///   or before version 6 on an instance device) is tried with each, by
///   value first. Each OS-8005 kernel answers the other's number with
///   ENOTTY before reading anything, so the length only ever reaches the
///   kernel that reads a length and the pointer the one that copies in.
/// - Any other error from the version query is not a decision: it is
///   reported (`Err(errno)`, 0 for a device answering version 0, which is
///   not vmm), and nothing is sent.
pub fn arc_resv_plan(version: Result<i32, i32>) -> Result<&'static [ArcResvAbi], i32> {
    match version {
        Ok(v) if v > 0 => Ok(&[ArcResvAbi::Copyin]),
        // vmm versions start at 1: a device answering 0 is not vmm.
        Ok(_) => Err(0),
        Err(libc::ENOTTY) => Ok(&[ArcResvAbi::ByValue, ArcResvAbi::Copyin]),
        Err(e) => Err(e),
    }
}

/// On illumos, apply a VM's reservation with OS-8005's per-VM ioctl on its
/// device (`/dev/vmm/<vm_name>`, or `vm_device` if given), where the kernel
/// has it (illumos-joyent, in either of its two encodings: see
/// [`arc_resv_plan`]); elsewhere (ENOTTY) `Status::Unsupported` — illumos
/// has no run-time `zfs_arc_max`, and the library does not pretend.
/// ENOMEM is the kernel's own guard refusing. Returns the encoding the
/// kernel took.
pub fn apply_illumos(vm_device: &std::path::Path, bytes: u64) -> Result<ArcResvAbi, Error> {
    use std::os::fd::AsFd;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(vm_device)
        .map_err(|e| errno::device_io_error(&e))?;
    let plan = arc_resv_plan(crate::sys::interface_version(f.as_fd())).map_err(|e| match e {
        0 => Error::new(Status::NotVmmDevice),
        e => errno::device_error(e),
    })?;
    for abi in plan {
        let sent = match abi {
            ArcResvAbi::ByValue => crate::sys::vm_arc_resv_by_value(f.as_fd(), bytes),
            ArcResvAbi::Copyin => crate::sys::vm_arc_resv_copyin(f.as_fd(), bytes),
        };
        match sent {
            Ok(()) => return Ok(*abi),
            // Not this kernel's number: try the next encoding, if any.
            Err(libc::ENOTTY) => continue,
            Err(e) => return Err(errno::device_error(e)),
        }
    }
    Err(Error::with_errno(Status::Unsupported, libc::ENOTTY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arc_resv_encoding_follows_the_interface_version() {
        // A kernel that tells its version has the VMM_IOC_BASE numbering:
        // the pointer form only, never a length by value.
        assert_eq!(arc_resv_plan(Ok(18)), Ok(&[ArcResvAbi::Copyin][..]));
        assert_eq!(arc_resv_plan(Ok(1)), Ok(&[ArcResvAbi::Copyin][..]));
        // One that does not tell: each, by value first.
        assert_eq!(
            arc_resv_plan(Err(libc::ENOTTY)),
            Ok(&[ArcResvAbi::ByValue, ArcResvAbi::Copyin][..])
        );
        // Not vmm, or the query failed: nothing is sent.
        assert_eq!(arc_resv_plan(Ok(0)), Err(0));
        assert_eq!(arc_resv_plan(Err(libc::ENXIO)), Err(libc::ENXIO));
    }
}

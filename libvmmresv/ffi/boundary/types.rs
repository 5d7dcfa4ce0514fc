//! The C types more than one area passes: each area's file keeps the
//! types only it uses.
//!
//! Four of them are defined in their area's module and only re-exported
//! here: the ABI baseline (abi/, compared by `make check-abi`) names a
//! struct by its Rust module path (DWARF), and libabigail counts a changed
//! path of a member's or parameter's type as an ABI change.

use core::ffi::{c_int, c_void};

use crate::admission::{ArcHost, Verdict};
use crate::arc::desfree_slack;
use crate::arc::guard::{ArcLimits, Ceiling};
use crate::arc::reserve::ArcPolicy;
use crate::arc::snapshot::HostSnapshot;
use crate::status::{Error, Status};

/// Progress callback of a resize, called after each step the kernel
/// interrupted (EINTR) with the size reached so far, the target, and the
/// caller's `arg`. Return 0 to resume, nonzero to stop: the call then
/// returns `VMMRESV_STATUS_INTERRUPTED` with the size reached. Called on the
/// calling thread, while the library holds the resize lock.
pub type vmmresv_progress_fn =
    Option<unsafe extern "C" fn(reached_bytes: u64, target_bytes: u64, arg: *mut c_void) -> c_int>;

/// An admission decision and the figures behind it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_decision {
    /// VMMRESV_DECISION_*.
    pub decision: u32,
    /// VMMRESV_REASON_*.
    pub reason: u32,
    /// Bytes the claim holds (guest memory rounded up to 4 KiB pages); 0
    /// when nothing is claimed.
    pub charged_bytes: u64,
    /// Bytes missing when the reservoir (or the transient limit) was
    /// short; else 0.
    pub shortfall_bytes: u64,
    /// Reservoir free bytes at the decision.
    pub free_bytes: u64,
    /// Bytes claimed by other admissions not yet committed.
    pub pending_bytes: u64,
    /// NO_RESERVOIR with an ARC host set (vmmresv_admission_set_arc()):
    /// bytes reserved for the VM in the ARC ledger; else 0.
    pub arc_reserved_bytes: u64,
    /// The ARC target that follows (to apply and wait for); else 0.
    pub arc_target_bytes: u64,
    /// The ARC's size in the host reading given; else 0.
    pub arc_size_bytes: u64,
    /// Expected milliseconds until the ARC is at the target: 0 if it is (or
    /// no reservation was made), else one ARC reap cycle (1000 ms;
    /// OS-8005). Wait for it with vmmresv_arc_wait_linux() rather than
    /// trust this.
    pub arc_expected_wait_ms: u64,
}

impl From<Verdict> for vmmresv_decision {
    fn from(v: Verdict) -> Self {
        vmmresv_decision {
            decision: v.decision.to_u32(),
            reason: v.reason.to_u32(),
            charged_bytes: v.charged_bytes,
            shortfall_bytes: v.shortfall_bytes,
            free_bytes: v.free_bytes,
            pending_bytes: v.pending_bytes,
            arc_reserved_bytes: v.arc.map(|a| a.reserved_bytes).unwrap_or(0),
            arc_target_bytes: v.arc.map(|a| a.target_bytes).unwrap_or(0),
            arc_size_bytes: v.arc.map(|a| a.arc_size_bytes).unwrap_or(0),
            arc_expected_wait_ms: v.arc.map(|a| a.expected_wait_ms).unwrap_or(0),
        }
    }
}

/// What the ARC looks like and what reservations are checked against, in
/// bytes. Fill it with vmmresv_arc_read_linux() or vmmresv_arc_read_kstat(),
/// then adjust `ceiling_bytes` and `slack_bytes` if wanted.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_arc_host {
    /// `arc_c_min`: the ARC never shrinks below it.
    pub arc_c_min_bytes: u64,
    /// `arc_c_max`: the ARC never grows above it.
    pub arc_c_max_bytes: u64,
    /// The ARC's size now (arcstats `size`).
    pub arc_size_bytes: u64,
    /// Memory the ARC knows of (Linux arcstats `memory_all_bytes`); 0 if
    /// unknown (illumos arcstats has no such field).
    pub physmem_bytes: u64,
    /// What reservations are checked against: 0 for `arc_c_max` (as the
    /// illumos-joyent OS-8005 code does), else a budget in bytes (physical
    /// memory, or free + ZFS file data + VMM memory from ::memstat).
    pub ceiling_bytes: u64,
    /// Extra room the target asks for, because others allocate while the
    /// ARC shrinks; the readers set physmem/128 (OS-8005's desfree), or 0
    /// when physmem is unknown.
    pub slack_bytes: u64,
}

impl vmmresv_arc_host {
    /// What `zfs_arc_max` is checked against on Linux.
    pub(in crate::ffi) fn linux_facts(&self) -> crate::arc::LinuxArcFacts {
        crate::arc::LinuxArcFacts {
            all_memory: self.physmem_bytes,
            arc_c_min: self.arc_c_min_bytes,
        }
    }

    /// The value an apply wrote (0 for none); UNSUPPORTED when the
    /// original was the module default, which cannot be written back.
    pub(in crate::ffi) fn written(&self, a: crate::arc::reserve::Applied) -> Result<u64, Error> {
        use crate::arc::reserve::Applied;
        match a {
            Applied::Limited { zfs_arc_max, .. } | Applied::Restored { zfs_arc_max } => {
                Ok(zfs_arc_max)
            }
            Applied::Unchanged => Ok(0),
            Applied::CannotRestoreDefault => Err(Error::new(Status::Unsupported)),
        }
    }

    /// The ARC host admission uses: this policy and the ARC's size.
    pub(in crate::ffi) fn arc_host(&self) -> Result<ArcHost, Error> {
        Ok(ArcHost {
            policy: self.policy()?,
            arc_size: self.arc_size_bytes,
        })
    }

    /// The limits and ceiling reservations are checked against.
    pub(in crate::ffi) fn policy(&self) -> Result<ArcPolicy, Error> {
        if self.arc_c_min_bytes > self.arc_c_max_bytes {
            return Err(Error::new(Status::InvalidArgument));
        }
        Ok(ArcPolicy {
            limits: ArcLimits {
                arc_c_min: self.arc_c_min_bytes,
                arc_c_max: self.arc_c_max_bytes,
            },
            ceiling: if self.ceiling_bytes == 0 {
                Ceiling::ArcCMax
            } else {
                Ceiling::Budget(self.ceiling_bytes)
            },
            slack: self.slack_bytes,
        })
    }

    pub(in crate::ffi) fn from_snapshot(s: &HostSnapshot) -> Result<vmmresv_arc_host, Error> {
        let missing = || Error::new(Status::MalformedInput);
        let physmem = s.physmem.unwrap_or(0);
        Ok(vmmresv_arc_host {
            arc_c_min_bytes: s.arc_c_min.ok_or_else(missing)?,
            arc_c_max_bytes: s.arc_c_max.ok_or_else(missing)?,
            arc_size_bytes: s.arc_size.ok_or_else(missing)?,
            physmem_bytes: physmem,
            ceiling_bytes: 0,
            slack_bytes: desfree_slack(physmem),
        })
    }
}

pub use super::super::arc::vmmresv_arc_reservation;
pub use super::super::policy::{vmmresv_overhead_params, vmmresv_vm};
pub use super::super::report::vmmresv_host_memory;

//! The C types more than one area passes: each area's file keeps the
//! types only it uses.

use core::ffi::{c_int, c_void};

use crate::admission::{ArcHost, Verdict};
use crate::arc::desfree_slack;
use crate::arc::guard::{ArcLimits, Ceiling};
use crate::arc::reserve::ArcPolicy;
use crate::arc::snapshot::HostSnapshot;
use crate::host::HostMemory;
use crate::policy::overhead::{OverheadParams, VmSpec};
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

/// A host's memory: how much there is and how much is free, in bytes.
/// Fill it with vmmresv_host_read_linux() or vmmresv_host_read_kstat(), or
/// from any other source the caller trusts.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_host_memory {
    /// Memory the kernel manages (Linux `MemTotal`, illumos `physmem`).
    pub physmem_bytes: u64,
    /// Memory a new VM can have without reclaiming anything (Linux
    /// `MemAvailable`, illumos `freemem`). At most `physmem_bytes`.
    pub free_bytes: u64,
}

impl From<HostMemory> for vmmresv_host_memory {
    fn from(h: HostMemory) -> Self {
        vmmresv_host_memory {
            physmem_bytes: h.physmem_bytes,
            free_bytes: h.free_bytes,
        }
    }
}

impl vmmresv_host_memory {
    /// A caller's reading, checked (free memory above physmem is
    /// INVALID_ARGUMENT).
    pub(in crate::ffi) fn host(self) -> Result<HostMemory, Error> {
        let h = HostMemory::from(self);
        if h.free_bytes > h.physmem_bytes {
            return Err(Error::new(Status::InvalidArgument));
        }
        Ok(h)
    }
}

impl From<vmmresv_host_memory> for HostMemory {
    fn from(h: vmmresv_host_memory) -> Self {
        HostMemory {
            physmem_bytes: h.physmem_bytes,
            free_bytes: h.free_bytes,
        }
    }
}

/// The numbers of every overhead model. Fill it with
/// vmmresv_overhead_params_default() and change what differs. Fields
/// ending in `_bp` are basis points (10000 = 100%) and must be at most
/// 10000, whatever the model.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vmmresv_overhead_params {
    /// FIXED: bytes per VM (600 MiB).
    pub fixed_bytes: u64,
    /// VMADM: overhead without a cap (BHYVE_MEM_OVERHEAD, 1280 MiB).
    pub vmadm_bytes: u64,
    /// VMADM: the least overhead a cap may leave (BHYVE_MIN_MEM_OVERHEAD,
    /// 256 MiB).
    pub vmadm_min_bytes: u64,
    /// EVE_PILLAR: base (350 MiB).
    pub eve_base_bytes: u64,
    /// EVE_PILLAR: the QEMU binaries (20 MiB).
    pub eve_extra_bytes: u64,
    /// EVE_PILLAR: per vCPU (3 MiB).
    pub eve_per_vcpu_bytes: u64,
    /// PROPORTIONAL: basis points of guest RAM (3000 = 30%).
    pub proportional_bp: u32,
    /// POOLED: basis points of host memory in the pool (2500 = 25%).
    pub pool_bp: u32,
    /// EVE_PILLAR: basis points of guest RAM for page tables (250 = 2.5%).
    pub eve_ram_bp: u32,
    /// EVE_PILLAR: basis points of passthrough MMIO (100 = 1%).
    pub eve_mmio_bp: u32,
}

static_assertions::assert_eq_size!(vmmresv_overhead_params, [u64; 8]);

impl From<OverheadParams> for vmmresv_overhead_params {
    fn from(p: OverheadParams) -> Self {
        vmmresv_overhead_params {
            fixed_bytes: p.fixed_bytes,
            vmadm_bytes: p.vmadm_bytes,
            vmadm_min_bytes: p.vmadm_min_bytes,
            eve_base_bytes: p.eve_base_bytes,
            eve_extra_bytes: p.eve_extra_bytes,
            eve_per_vcpu_bytes: p.eve_per_vcpu_bytes,
            proportional_bp: p.proportional_bp,
            pool_bp: p.pool_bp,
            eve_ram_bp: p.eve_ram_bp,
            eve_mmio_bp: p.eve_mmio_bp,
        }
    }
}

impl From<vmmresv_overhead_params> for OverheadParams {
    fn from(p: vmmresv_overhead_params) -> Self {
        OverheadParams {
            fixed_bytes: p.fixed_bytes,
            proportional_bp: p.proportional_bp,
            pool_bp: p.pool_bp,
            vmadm_bytes: p.vmadm_bytes,
            vmadm_min_bytes: p.vmadm_min_bytes,
            eve_base_bytes: p.eve_base_bytes,
            eve_ram_bp: p.eve_ram_bp,
            eve_extra_bytes: p.eve_extra_bytes,
            eve_per_vcpu_bytes: p.eve_per_vcpu_bytes,
            eve_mmio_bp: p.eve_mmio_bp,
        }
    }
}

/// One VM as the overhead models see it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vmmresv_vm {
    /// Guest RAM.
    pub guest_bytes: u64,
    /// Total MMIO BAR size of passthrough devices (EVE_PILLAR).
    pub mmio_bytes: u64,
    /// Cap on guest + overhead (vmadm max_physical_memory); 0 = none.
    /// Only VMADM reads it; it must not be below `guest_bytes`.
    pub cap_bytes: u64,
    /// Virtual CPUs (EVE_PILLAR).
    pub vcpus: u32,
    /// Must be 0 (room for later versions).
    pub reserved: u32,
}

static_assertions::assert_eq_size!(vmmresv_vm, [u64; 4]);

impl vmmresv_vm {
    pub(in crate::ffi) fn spec(&self) -> Result<VmSpec, Status> {
        if self.reserved != 0 {
            return Err(Status::InvalidArgument);
        }
        Ok(VmSpec {
            guest_bytes: self.guest_bytes,
            vcpus: self.vcpus,
            mmio_bytes: self.mmio_bytes,
            cap_bytes: self.cap_bytes,
        })
    }
}

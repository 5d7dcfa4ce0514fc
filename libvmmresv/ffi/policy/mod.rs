//! Policy (vmmresv_policy(3VMMRESV)): one file per section of the page,
//! in its order (which is also the header's). The two structs here are
//! passed by admission too (through the boundary's re-export); they stay
//! at this module path for the ABI baseline (see boundary/types.rs).

use crate::policy::overhead::{OverheadParams, VmSpec};
use crate::status::Status;

mod overhead;

mod states;

mod headroom;

mod profiles;

mod reclaim;

pub use headroom::*;
pub use overhead::*;
pub use profiles::*;
pub use reclaim::*;
pub use states::*;

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

#[cfg(test)]
mod tests;

//! Reservoir headroom (vmmresv_policy(3VMMRESV), "Headroom").

use super::super::boundary::{export, out, read_in};
use crate::policy::headroom::{self, HeadroomInputs};
use crate::status::Status;

/// Memory that is not the reservoir's to take, in bytes (RFD 185's other
/// consumers).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vmmresv_headroom_inputs {
    /// Physical memory.
    pub physmem_bytes: u64,
    /// pages_pp_maximum in bytes; the kernel withholds 120% of it
    /// (vmmresv_unlockable_from_limit() recovers it from the limit).
    pub unlockable_bytes: u64,
    /// The ZFS ARC's floor (arc_c_min).
    pub arc_floor_bytes: u64,
    /// Memory drivers preallocate for DMA.
    pub driver_dma_bytes: u64,
    /// Σ memory caps of zones that are not VMs.
    pub zone_caps_bytes: u64,
    /// Memory kept for the operating system.
    pub os_reserve_bytes: u64,
    /// Memory kept free so VMs can grow at once.
    pub overcommit_buffer_bytes: u64,
}

impl From<vmmresv_headroom_inputs> for HeadroomInputs {
    fn from(i: vmmresv_headroom_inputs) -> Self {
        HeadroomInputs {
            physmem_bytes: i.physmem_bytes,
            unlockable_bytes: i.unlockable_bytes,
            arc_floor_bytes: i.arc_floor_bytes,
            driver_dma_bytes: i.driver_dma_bytes,
            zone_caps_bytes: i.zone_caps_bytes,
            os_reserve_bytes: i.os_reserve_bytes,
            overcommit_buffer_bytes: i.overcommit_buffer_bytes,
        }
    }
}

/// The safe reservoir maximum and how it was reached, in bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vmmresv_headroom_result {
    /// 120% of unlockable_bytes, rounded up.
    pub unlockable_120_bytes: u64,
    /// Σ of every deduction (saturating at UINT64_MAX).
    pub deductions_bytes: u64,
    /// physmem - deductions, rounded down to VMMRESV_PAGESIZE; 0 if the
    /// deductions exceed physmem.
    pub safe_max_bytes: u64,
    /// By how much the deductions exceed physmem, else 0.
    pub short_bytes: u64,
}

/// The safe reservoir maximum: physical memory minus 120% of the
/// unlockable memory and every other consumer in `inputs`, rounded down to
/// the page, with the deductions that explain it.
#[no_mangle]
pub extern "C" fn vmmresv_headroom(
    inputs: *const vmmresv_headroom_inputs,
    out: *mut vmmresv_headroom_result,
) -> Status {
    export(|| {
        let i = read_in!(inputs)?;
        let out = out!(out)?;
        let h = headroom::headroom(&i.into());
        out.set(vmmresv_headroom_result {
            unlockable_120_bytes: h.unlockable_120_bytes,
            deductions_bytes: h.deductions_bytes,
            safe_max_bytes: h.safe_max_bytes,
            short_bytes: h.short_bytes,
        });
        Ok(())
    })
}

/// The unlockable memory (pages_pp_maximum, in bytes) behind the kernel's
/// reservoir limit, which is physmem - 1.2 x pages_pp_maximum: exact for
/// the kernel's own limit; 0 if `limit_bytes` is not below `physmem_bytes`.
#[no_mangle]
pub extern "C" fn vmmresv_unlockable_from_limit(
    physmem_bytes: u64,
    limit_bytes: u64,
    out: *mut u64,
) -> Status {
    export(|| {
        out!(out)?.set(headroom::unlockable_from_limit(physmem_bytes, limit_bytes));
        Ok(())
    })
}

/// The reservoir limit the kernel computes for `physmem_bytes` of memory of
/// which `unlockable_bytes` (pages_pp_maximum in bytes) can never be
/// locked: (physmem_bytes x 10 - unlockable_bytes x 12) / 10, rounded
/// down, as vmm_reservoir.c does with both in pages; 0 if 1.2 x
/// `unlockable_bytes` exceeds `physmem_bytes`. The inverse of
/// vmmresv_unlockable_from_limit(), to the byte (ABI 1.2).
#[no_mangle]
pub extern "C" fn vmmresv_limit_from_unlockable(
    physmem_bytes: u64,
    unlockable_bytes: u64,
    out: *mut u64,
) -> Status {
    export(|| {
        out!(out)?.set(headroom::limit_from_unlockable(
            physmem_bytes,
            unlockable_bytes,
        ));
        Ok(())
    })
}

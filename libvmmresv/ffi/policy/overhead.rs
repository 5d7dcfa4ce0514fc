//! Overhead models (vmmresv_policy(3VMMRESV), "Overhead"). Every
//! function of the policy page is pure: no I/O, no state, no allocation
//! visible to the caller; outputs are written only on success.

use core::ffi::c_char;

use super::super::boundary::{
    boundary, c_values, export, opt_read, out, read_array, read_in, vmmresv_overhead_params,
    vmmresv_vm, write_array,
};
use crate::policy::overhead::{
    self, OverheadKind, OverheadModel, OverheadParams, PoolShare, RunningVm,
};
use crate::status::{Error, Status};

/// Overhead model: the same overhead for every VM (EVE-OS, 600 MiB).
pub const VMMRESV_OVERHEAD_FIXED: u32 = 1;
/// Overhead model: a share of the VM's guest RAM (EVE-OS proposal, 30%).
pub const VMMRESV_OVERHEAD_PROPORTIONAL: u32 = 2;
/// Overhead model: a share of host memory (25%) spread over the VMs in
/// proportion to their guest RAM.
pub const VMMRESV_OVERHEAD_POOLED: u32 = 3;
/// Overhead model: SmartOS vmadm, 1280 MiB, or cap - guest but at least
/// 256 MiB. What SmartOS ships for bhyve.
pub const VMMRESV_OVERHEAD_VMADM: u32 = 4;
/// Overhead model: EVE pillar's estimate, 350 MiB + 2.5% of guest RAM +
/// 20 MiB + 3 MiB per vCPU + 1% of passthrough MMIO.
pub const VMMRESV_OVERHEAD_EVE_PILLAR: u32 = 5;

c_values!(OverheadKind {
    Fixed = VMMRESV_OVERHEAD_FIXED,
    Proportional = VMMRESV_OVERHEAD_PROPORTIONAL,
    Pooled = VMMRESV_OVERHEAD_POOLED,
    Vmadm = VMMRESV_OVERHEAD_VMADM,
    EvePillar = VMMRESV_OVERHEAD_EVE_PILLAR,
});

/// A VM already running, for vmmresv_overhead_recalculate().
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vmmresv_running_vm {
    /// The VM.
    pub vm: vmmresv_vm,
    /// Its current overhead limit.
    pub limit_bytes: u64,
    /// The overhead memory it uses now.
    pub usage_bytes: u64,
}

static_assertions::assert_eq_size!(vmmresv_running_vm, [u64; 6]);

/// What vmmresv_overhead_recalculate() found besides the limits.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vmmresv_recalculation {
    /// The overhead of the VM about to start (0 if none was given).
    pub new_vm_overhead_bytes: u64,
    /// How many running VMs use more than the model now gives them.
    pub stuck_count: u64,
    /// By how much, in total.
    pub stuck_bytes: u64,
    /// VMMRESV_OVERHEAD_*: the model the limits come from.
    pub overhead_model: u32,
    /// Always 0.
    pub reserved: u32,
}

/// A model from C: its kind and a pointer to its numbers.
fn model(kind: u32, params: *const vmmresv_overhead_params) -> Result<OverheadModel, Error> {
    let kind = OverheadKind::from_u32(kind).ok_or(Error::new(Status::InvalidArgument))?;
    let params = read_in!(params)?;
    Ok(OverheadModel {
        kind,
        params: params.into(),
    })
}

/// Fill `*out` with the documents' numbers: fixed 600 MiB, proportional
/// 30%, pooled 25%, vmadm 1280 MiB (256 MiB minimum), EVE pillar 350 MiB +
/// 2.5% + 20 MiB + 3 MiB per vCPU + 1% of MMIO.
#[no_mangle]
pub extern "C" fn vmmresv_overhead_params_default(out: *mut vmmresv_overhead_params) -> Status {
    export(|| {
        out!(out)?.set(OverheadParams::default().into());
        Ok(())
    })
}

/// The overhead of `vm` under the model `kind` (a VMMRESV_OVERHEAD_*
/// value) with `params`. `host_bytes` and `total_guest_bytes` (the guest
/// RAM of every VM sharing the pool, this one included) are read by the
/// POOLED model only. INVALID_ARGUMENT for an unknown kind, a `_bp` field
/// above 10000, a nonzero `reserved`, a pool total below the VM's guest
/// RAM, or a vmadm cap below it; OVERFLOW if the overhead does not fit in
/// 64 bits.
#[no_mangle]
pub extern "C" fn vmmresv_overhead(
    kind: u32,
    params: *const vmmresv_overhead_params,
    vm: *const vmmresv_vm,
    host_bytes: u64,
    total_guest_bytes: u64,
    out: *mut u64,
) -> Status {
    export(|| {
        let m = model(kind, params)?;
        let spec = read_in!(vm)?.spec()?;
        let out = out!(out)?;
        let pool = PoolShare {
            host_bytes,
            total_guest_bytes,
        };
        out.set(m.overhead(&spec, &pool)?);
        Ok(())
    })
}

/// Recompute the overhead limit of the `n` VMs of `running` under the model
/// `kind`, with `new_vm` about to start (NULL: none); under POOLED the pool
/// (a share of `host_bytes`) is spread over all of them. Writes each VM's
/// new limit to `limits[i]` (`n` entries). A limit is never set below the
/// VM's `usage_bytes`: such a VM is "stuck", its limit is its usage, and
/// `excess[i]` (`n` entries; may be NULL) receives usage - the model's
/// overhead, 0 for a VM that is not stuck. `*out` receives the new VM's
/// overhead and the stuck totals, so the caller can refuse the new VM
/// rather than kill a running one. `running`, `limits` and `excess` may be
/// NULL when `n` is 0. Nothing is written on error. Errors as
/// vmmresv_overhead(), and OVERFLOW if the guests' RAM adds up past
/// 64 bits.
#[no_mangle]
pub extern "C" fn vmmresv_overhead_recalculate(
    kind: u32,
    params: *const vmmresv_overhead_params,
    host_bytes: u64,
    running: *const vmmresv_running_vm,
    n: usize,
    new_vm: *const vmmresv_vm,
    limits: *mut u64,
    excess: *mut u64,
    out: *mut vmmresv_recalculation,
) -> Status {
    export(|| {
        let m = model(kind, params)?;
        let out = out!(out)?;
        if n > 0 && limits.is_null() {
            return Err(Error::new(Status::NullArgument));
        }
        let vms = read_array!(running, n)?
            .iter()
            .map(|r| {
                Ok(RunningVm {
                    spec: r.vm.spec()?,
                    limit_bytes: r.limit_bytes,
                    usage_bytes: r.usage_bytes,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let new_spec = match opt_read!(new_vm) {
            Some(v) => Some(v.spec()?),
            None => None,
        };
        let r = overhead::recalculate(&m, host_bytes, &vms, new_spec.as_ref())?;
        write_array!(limits, &r.limits)?;
        if !excess.is_null() {
            let mut ex = vec![0u64; n];
            for s in &r.stuck {
                if let Some(e) = ex.get_mut(s.index) {
                    *e = s.excess_bytes;
                }
            }
            write_array!(excess, &ex)?;
        }
        out.set(vmmresv_recalculation {
            new_vm_overhead_bytes: r.new_vm_overhead,
            stuck_count: u64::try_from(r.stuck.len()).unwrap_or(u64::MAX),
            stuck_bytes: r.stuck_bytes,
            overhead_model: r.model.to_u32(),
            reserved: 0,
        });
        Ok(())
    })
}

/// A static, NUL-terminated name of the overhead model `kind`: "fixed",
/// "proportional", "pooled", "smartos-vmadm", "eve-pillar", or "unknown".
/// Never NULL; must not be freed.
#[no_mangle]
pub extern "C" fn vmmresv_overhead_model_name(kind: u32) -> *const c_char {
    boundary(|| match OverheadKind::from_u32(kind) {
        Some(k) => k.c_name().as_ptr(),
        None => c"unknown".as_ptr(),
    })
}

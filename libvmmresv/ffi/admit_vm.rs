//! C ABI: admission under the host's policy (ABI 1.1) —
//! vmmresv_admit_vm() counts guest memory, page_t and the overhead model
//! and refuses a start that would take the host below the configured
//! memory state.

use core::ffi::c_char;

use super::boundary::{
    checked, export, opt_read, out, read_in, uuid_arg, vmmresv_admission, vmmresv_decision,
    vmmresv_host_memory, vmmresv_overhead_params, vmmresv_vm,
};
use crate::admission::vm::{AdmissionPolicy, VmVerdict};
use crate::admission::Preference;
use crate::policy::overhead::{OverheadKind, OverheadModel, OverheadParams};
use crate::policy::states::{MemState, MinFreeScale};
use crate::status::{Error, Status};

/// What vmmresv_admit_vm() applies on one admission handle. Fill it with
/// vmmresv_policy_default() and change what differs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_policy {
    /// VMMRESV_OVERHEAD_*: how a VM's overhead is estimated (default
    /// VMADM, SmartOS's 1280 MiB).
    pub overhead_model: u32,
    /// VMMRESV_MEMSTATE_*: the worst memory state a start may leave the
    /// host in (default HIGH: free memory stays at or above minFree).
    pub floor_state: u32,
    /// The overhead models' numbers.
    pub params: vmmresv_overhead_params,
}

impl From<AdmissionPolicy> for vmmresv_policy {
    fn from(p: AdmissionPolicy) -> Self {
        vmmresv_policy {
            overhead_model: p.overhead.kind.to_u32(),
            floor_state: p.floor.to_u32(),
            params: p.overhead.params.into(),
        }
    }
}

impl vmmresv_policy {
    fn policy(&self) -> Result<AdmissionPolicy, Error> {
        let kind = OverheadKind::from_u32(self.overhead_model)
            .ok_or(Error::new(Status::InvalidArgument))?;
        let floor =
            MemState::from_u32(self.floor_state).ok_or(Error::new(Status::InvalidArgument))?;
        let params: OverheadParams = self.params.into();
        params.validate()?;
        Ok(AdmissionPolicy {
            overhead: OverheadModel { kind, params },
            scale: MinFreeScale::default(),
            floor,
        })
    }
}

/// A policy decision: the admission decision and the figures of the
/// memory-state rule.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_vm_decision {
    /// The decision, as vmmresv_admit() gives it; `reason` is
    /// VMMRESV_REASON_MEMORY_STATE when the state rule refused, and
    /// `charged_bytes` the guest memory the claim holds.
    pub decision: vmmresv_decision,
    /// Guest memory, rounded up to 4 KiB pages.
    pub guest_bytes: u64,
    /// The page_t of those pages (120 bytes each).
    pub page_t_bytes: u64,
    /// The overhead model's estimate.
    pub overhead_bytes: u64,
    /// Host memory (outside the reservoir) the start takes: page_t and
    /// overhead, plus the guest when it runs without the reservoir.
    /// Claimed (rounded up to pages) in the host ledger until commit or
    /// abort.
    pub host_bytes: u64,
    /// Free memory in the reading given.
    pub free_bytes: u64,
    /// What the ARC gives back for a NO_RESERVOIR start (its size above
    /// the target its reservation set), counted as free; else 0.
    pub arc_shrink_bytes: u64,
    /// Host memory claimed by other starts admitted with
    /// vmmresv_admit_vm() and not yet committed or aborted.
    pub pending_bytes: u64,
    /// free + arc_shrink − pending − host (0 if negative).
    pub free_after_bytes: u64,
    /// The free memory the floor state needs.
    pub floor_bytes: u64,
    /// VMMRESV_OVERHEAD_*: the model that made the estimate.
    pub overhead_model: u32,
    /// VMMRESV_MEMSTATE_*: the state free_after_bytes puts the host in.
    pub state_after: u32,
    /// VMMRESV_MEMSTATE_*: the floor applied.
    pub floor_state: u32,
    /// Always 0.
    pub reserved: u32,
}

impl From<VmVerdict> for vmmresv_vm_decision {
    fn from(v: VmVerdict) -> Self {
        vmmresv_vm_decision {
            decision: v.verdict.into(),
            guest_bytes: v.charge.guest_bytes,
            page_t_bytes: v.charge.page_t_bytes,
            overhead_bytes: v.charge.overhead_bytes,
            host_bytes: v.host_bytes,
            free_bytes: v.free_bytes,
            arc_shrink_bytes: v.arc_shrink_bytes,
            pending_bytes: v.pending_bytes,
            free_after_bytes: v.free_after_bytes,
            floor_bytes: v.floor_bytes,
            overhead_model: v.charge.model.to_u32(),
            state_after: v.state_after.to_u32(),
            floor_state: v.floor.to_u32(),
            reserved: 0,
        }
    }
}

/// The default policy: the VMADM model (1280 MiB per VM, 256 MiB least
/// under a cap) with every model's documented numbers, and the HIGH
/// floor.
#[no_mangle]
pub extern "C" fn vmmresv_policy_default(out: *mut vmmresv_policy) -> Status {
    export(|| {
        out!(out)?.set(AdmissionPolicy::default().into());
        Ok(())
    })
}

/// Use `policy` for this handle's vmmresv_admit_vm() and
/// vmmresv_report_json() calls (NULL: the default). INVALID_ARGUMENT for an
/// unknown model or state, or a basis-point parameter above 10000; the
/// handle's policy is then left as it was.
#[no_mangle]
pub extern "C" fn vmmresv_admission_set_policy(
    admission_handle: *const vmmresv_admission,
    policy: *const vmmresv_policy,
) -> Status {
    export(|| {
        let a = checked(admission_handle)?;
        let p = match opt_read!(policy) {
            Some(p) => p.policy()?,
            None => AdmissionPolicy::default(),
        };
        a.inner.set_policy(p);
        Ok(())
    })
}

/// Admit VM `vm_uuid` of shape `*vm` (guest memory, vCPUs, passthrough
/// MMIO, cap) on a host whose memory was just read as `*host`
/// (vmmresv_host_read_linux(), vmmresv_host_read_kstat()), with
/// `preference` (VMMRESV_RESERVOIR_*), under the handle's policy.
///
/// First as vmmresv_admit() for the guest memory (the claim, with the
/// same guarantees); then the memory-state rule, itself a claim in a second
/// ledger beside the first (`<ledger>.host`): the start's host memory —
/// page_t and overhead, and its guest memory when it runs without the
/// reservoir — is claimed against the host's free memory (plus what the
/// ARC gives back, for a NO_RESERVOIR start with an ARC host set) less the
/// floor state's free memory, together with the host claims of every
/// other start not yet committed; so starts that read free memory at the
/// same moment cannot both pass on the same memory. With `host` NULL
/// (since ABI 1.2) the library reads the host's memory itself
/// (/proc/meminfo on Linux, libkstat `unix:0:system_pages` on illumos),
/// and reads it again inside the claim, after the total it is applied to,
/// so no start that committed meanwhile can be missed. With a caller's
/// reading, that reading is used: take it just before the call (a start
/// that committed before it was taken but after its memory was counted
/// cannot be seen). If the rule refuses, the decision
/// is REFUSE with
/// VMMRESV_REASON_MEMORY_STATE and the shortfall, and the claim (and any
/// ARC reservation) is given back before the call returns. A retried
/// admission of a VM that holds a claim is answered ALREADY_ADMITTED and
/// not re-checked. The claim is ended with vmmresv_commit() or
/// vmmresv_abort() as for vmmresv_admit().
///
/// Errors: INVALID_ARGUMENT (bad UUID, preference, a zero-sized guest,
/// `vm->reserved` not 0, free above physmem), the overhead model's
/// OVERFLOW, and vmmresv_admit()'s. If giving back a refused start's claim
/// or ARC reservation fails (LEDGER_CORRUPT, an I/O error), that error is returned after both were attempted:
/// finish with vmmresv_abort() and vmmresv_arc_release(), which answer
/// NOT_FOUND or 0 bytes once nothing is left.
#[no_mangle]
pub extern "C" fn vmmresv_admit_vm(
    admission_handle: *mut vmmresv_admission,
    vm_uuid: *const c_char,
    vm: *const vmmresv_vm,
    preference: u32,
    host: *const vmmresv_host_memory,
    out: *mut vmmresv_vm_decision,
) -> Status {
    export(|| {
        let a = checked(admission_handle)?;
        let (out, vm) = (out!(out)?, read_in!(vm)?);
        let uuid = uuid_arg!(vm_uuid)?;
        let Some(pref) = Preference::from_u32(preference) else {
            return Err(Error::new(Status::InvalidArgument));
        };
        let spec = vm.spec()?;
        let verdict = match opt_read!(host) {
            Some(h) => a.inner.admit_vm(&uuid, &spec, pref, &h.host()?)?,
            None => a.inner.admit_vm_reading(&uuid, &spec, pref)?,
        };
        out.set(verdict.into());
        Ok(())
    })
}

/// What vmmresv_admit_vm() would decide now, and why, without deciding it
/// (ABI 1.2): the same arguments, the same policy (the handle's), and
/// `*out` filled with the decision and figures vmmresv_admit_vm() would
/// give in the ledger's present state — but nothing is claimed, reserved
/// in the ARC, reclaimed or written, in either ledger. A claim whose holder
/// died, which vmmresv_admit_vm() would reclaim before refusing, is counted
/// as reclaimed. With `host` NULL the host's memory is read once. The
/// answer is a forecast: other admissions may change the state before a
/// real one, and a full ledger (LEDGER_FULL) is not foreseen.
///
/// Errors: as vmmresv_admit_vm(), less those of giving a claim back.
#[no_mangle]
pub extern "C" fn vmmresv_admit_vm_check(
    admission_handle: *const vmmresv_admission,
    vm_uuid: *const c_char,
    vm: *const vmmresv_vm,
    preference: u32,
    host: *const vmmresv_host_memory,
    out: *mut vmmresv_vm_decision,
) -> Status {
    export(|| {
        let a = checked(admission_handle)?;
        let (out, vm) = (out!(out)?, read_in!(vm)?);
        let uuid = uuid_arg!(vm_uuid)?;
        let Some(pref) = Preference::from_u32(preference) else {
            return Err(Error::new(Status::InvalidArgument));
        };
        let spec = vm.spec()?;
        let host = match opt_read!(host) {
            Some(h) => Some(h.host()?),
            None => None,
        };
        out.set(a.inner.check_vm(&uuid, &spec, pref, host.as_ref())?.into());
        Ok(())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_round_trips() {
        let mut p = vmmresv_policy::default();
        assert_eq!(vmmresv_policy_default(&mut p), Status::Ok);
        assert_eq!(p.policy().unwrap(), AdmissionPolicy::default());
        assert_eq!(
            vmmresv_policy_default(core::ptr::null_mut()),
            Status::NullArgument
        );
    }

    #[test]
    fn bad_policies_are_refused() {
        let mut p = vmmresv_policy::default();
        vmmresv_policy_default(&mut p);
        for bad in [
            vmmresv_policy {
                overhead_model: 0,
                ..p
            },
            vmmresv_policy {
                floor_state: 9,
                ..p
            },
            vmmresv_policy {
                params: vmmresv_overhead_params {
                    proportional_bp: 10_001,
                    ..p.params
                },
                ..p
            },
        ] {
            assert_eq!(bad.policy().unwrap_err().status(), Status::InvalidArgument);
        }
        assert_eq!(
            vmmresv_admission_set_policy(core::ptr::null(), &p),
            Status::NullArgument
        );
    }

    #[test]
    fn admit_vm_checks_its_arguments() {
        let vm = vmmresv_vm::default();
        let host = vmmresv_host_memory::default();
        let mut out = vmmresv_vm_decision::default();
        assert_eq!(
            vmmresv_admit_vm(
                core::ptr::null_mut(),
                c"00000000-0000-0000-0000-000000000000".as_ptr(),
                &vm,
                1,
                &host,
                &mut out
            ),
            Status::NullArgument
        );
    }
}

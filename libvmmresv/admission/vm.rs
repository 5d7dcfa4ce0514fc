//! Admission of a VM by its shape, under the host's policy.
//!
//! [`Admission::admit`] answers "does the reservoir (or the transient limit)
//! have room for the guest's memory". A VM costs more than its guest
//! memory: the `page_t`s describing those pages (120 B per 4 KiB page) and
//! the bhyve process's own overhead, which the document's models estimate
//! (EVE-OS, SmartOS vmadm; [`crate::policy::overhead`]). Those come out of
//! the host's ordinary memory, not the reservoir, and so does the guest when
//! it runs without the reservoir. [`Admission::admit_vm`] counts all three
//! and refuses a start that would leave the host below the configured
//! memory state (VMware's minFree scale; [`crate::policy::states`]), saying
//! which rule refused.
//!
//! The order is: the ledger claim first (as `admit`), then the memory-state
//! rule on the outcome; a start the rule refuses gives its claim (and any
//! ARC reservation) back before returning. The host-side bytes are checked
//! against the caller's reading of free memory less the guest memory of
//! other admissions that run without the reservoir and have not allocated
//! yet; they are not held in the ledger (see [`VmVerdict::host_bytes`]).

use super::{Admission, Decision, Preference, Reason, Result, Verdict};
use crate::admission::ledger::Pool;
use crate::host::HostMemory;
use crate::pages::{self, PageSize};
use crate::policy::overhead::{OverheadKind, OverheadModel, PoolShare, VmSpec};
use crate::policy::states::{self, MemState, MinFreeScale};
use crate::status::{Error, Status};

/// What admission asks of the host besides reservoir room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionPolicy {
    /// How a VM's overhead (the bhyve process, device emulation) is
    /// estimated.
    pub overhead: OverheadModel,
    /// The minFree sliding scale the memory states are fractions of.
    pub scale: MinFreeScale,
    /// The worst memory state a start may leave the host in. Default
    /// [`MemState::High`]: free memory stays at or above minFree, so the
    /// host never has to start reclaiming because a VM booted.
    pub floor: MemState,
}

impl Default for AdmissionPolicy {
    fn default() -> AdmissionPolicy {
        AdmissionPolicy {
            overhead: OverheadModel::default(),
            scale: MinFreeScale::default(),
            floor: MemState::High,
        }
    }
}

/// What one VM costs, by part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charge {
    /// Guest memory, rounded up to 4 KiB pages.
    pub guest_bytes: u64,
    /// The `page_t`s of those pages (120 B each).
    pub page_t_bytes: u64,
    /// The overhead model's estimate.
    pub overhead_bytes: u64,
    /// The model that made it.
    pub model: OverheadKind,
}

impl Charge {
    /// guest + page_t + overhead.
    pub fn total(&self) -> u64 {
        self.guest_bytes
            .saturating_add(self.page_t_bytes)
            .saturating_add(self.overhead_bytes)
    }

    /// What the start takes from the host's ordinary memory: page_t and
    /// overhead always, the guest too when it runs without the reservoir.
    pub fn host_bytes(&self, decision: Decision) -> u64 {
        let side = self.page_t_bytes.saturating_add(self.overhead_bytes);
        match decision {
            Decision::UseReservoir => side,
            Decision::NoReservoir | Decision::Refuse => side.saturating_add(self.guest_bytes),
        }
    }
}

/// The charge of a VM of shape `vm` under `model`, on a host of
/// `physmem_bytes` where `running_guest_bytes` of VM memory is allocated
/// already (the pooled model spreads its pool over all of them).
pub fn charge(
    model: &OverheadModel,
    vm: &VmSpec,
    physmem_bytes: u64,
    running_guest_bytes: u64,
) -> Result<Charge> {
    let pages = pages::btopr(vm.guest_bytes, PageSize::Base4K);
    let guest_bytes = pages::ptob(pages, PageSize::Base4K)?;
    let pool = PoolShare {
        host_bytes: physmem_bytes,
        total_guest_bytes: running_guest_bytes.saturating_add(guest_bytes),
    };
    Ok(Charge {
        guest_bytes,
        page_t_bytes: pages::page_t_overhead(pages)?,
        overhead_bytes: model.overhead(vm, &pool)?,
        model: model.kind,
    })
}

/// A policy decision: the ledger's verdict and the figures of the memory
/// state rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmVerdict {
    /// The decision. `charged_bytes` is the guest memory the claim holds;
    /// `reason` is [`Reason::MemoryState`] when the state rule refused.
    pub verdict: Verdict,
    /// The VM's cost by part.
    pub charge: Charge,
    /// Host memory (outside the reservoir) the start takes: see
    /// [`Charge::host_bytes`]. Checked against the reading, not claimed in
    /// the ledger: two starts that read free memory at the same moment can
    /// both pass this rule (the reservoir and transient claims stay exact).
    pub host_bytes: u64,
    /// Free memory in the caller's reading.
    pub free_bytes: u64,
    /// What the ARC is expected to give back for a NO_RESERVOIR start
    /// (its size above the target the ARC reservation set), counted as
    /// free; 0 otherwise.
    pub arc_shrink_bytes: u64,
    /// Guest memory of other no-reservoir admissions not yet allocated.
    pub pending_bytes: u64,
    /// Free memory after the start: free + arc_shrink − pending − host
    /// (0 if that is negative).
    pub free_after_bytes: u64,
    /// The memory state that leaves the host in.
    pub state_after: MemState,
    /// The configured floor and the free memory it needs.
    pub floor: MemState,
    /// Free memory the floor needs (its threshold).
    pub floor_bytes: u64,
}

impl Admission {
    /// The policy [`Admission::admit_vm`] applies.
    pub fn policy(&self) -> AdmissionPolicy {
        *self.policy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Set the policy for later [`Admission::admit_vm`] calls.
    pub fn set_policy(&self, policy: AdmissionPolicy) {
        *self.policy.lock().unwrap_or_else(|p| p.into_inner()) = policy;
    }

    /// Admit VM `uuid` of shape `vm` on a host whose memory was just read
    /// as `host`: [`Admission::admit`] for the guest memory, then the
    /// memory state rule for guest + page_t + overhead.
    ///
    /// A retried admission of a VM that holds a claim is answered as by
    /// `admit` (ALREADY_ADMITTED), with the figures, and not re-checked.
    pub fn admit_vm(
        &self,
        uuid: &[u8; 16],
        vm: &VmSpec,
        pref: Preference,
        host: &HostMemory,
    ) -> Result<VmVerdict> {
        if host.free_bytes > host.physmem_bytes {
            return Err(Error::new(Status::InvalidArgument));
        }
        let policy = self.policy();
        let q = self.reservoir.query()?;
        let charge = charge(
            &policy.overhead,
            vm,
            host.physmem_bytes,
            q.alloc.saturating_add(q.alloc_transient),
        )?;
        let thresholds = states::thresholds(&policy.scale, host.physmem_bytes);
        let floor_bytes = thresholds.bytes_for(policy.floor);

        let verdict = self.admit(uuid, vm.guest_bytes, pref)?;
        let own_transient = match verdict.decision {
            Decision::NoReservoir => verdict.charged_bytes,
            _ => 0,
        };
        let pending = self
            .pending_bytes(Pool::Transient)
            .saturating_sub(own_transient);
        let arc_shrink = verdict
            .arc
            .map(|a| a.arc_size_bytes.saturating_sub(a.target_bytes))
            .unwrap_or(0);
        let host_bytes = charge.host_bytes(verdict.decision);
        let available = host.free_bytes.saturating_add(arc_shrink);
        let need = host_bytes.saturating_add(pending);
        let free_after = available.saturating_sub(need);
        let mut out = VmVerdict {
            verdict,
            charge,
            host_bytes,
            free_bytes: host.free_bytes,
            arc_shrink_bytes: arc_shrink,
            pending_bytes: pending,
            free_after_bytes: free_after,
            state_after: states::state(&thresholds, free_after),
            floor: policy.floor,
            floor_bytes,
        };
        let admitted = matches!(
            verdict.decision,
            Decision::UseReservoir | Decision::NoReservoir
        );
        if !admitted || verdict.reason == Reason::AlreadyAdmitted {
            return Ok(out);
        }
        let shortfall = floor_bytes.saturating_add(need).saturating_sub(available);
        if shortfall == 0 {
            return Ok(out);
        }
        // Refused by the state rule: give back what admit took. Both are
        // attempted whatever the first does (a reconcile holding the pool
        // frozen is BUSY), and the first failure is reported: the caller
        // then retries vmmresv_abort / vmmresv_arc_release, which are
        // idempotent.
        let claim = self.abort(uuid);
        let arc = match verdict.arc {
            Some(_) => self.arc_release(uuid).map(|_| ()),
            None => Ok(()),
        };
        claim?;
        arc?;
        out.verdict = Verdict {
            decision: Decision::Refuse,
            reason: Reason::MemoryState,
            charged_bytes: 0,
            shortfall_bytes: shortfall,
            arc: None,
            ..verdict
        };
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::policy::overhead::{OverheadParams, MIB};

    #[test]
    fn charge_by_part() {
        let m = OverheadModel {
            kind: OverheadKind::Fixed,
            params: OverheadParams::default(),
        };
        let vm = VmSpec {
            guest_bytes: 4096 * 1024 + 1,
            vcpus: 2,
            ..VmSpec::default()
        };
        let c = charge(&m, &vm, 64 << 30, 0).unwrap();
        assert_eq!(c.guest_bytes, 4096 * 1025);
        assert_eq!(c.page_t_bytes, 1025 * 120);
        assert_eq!(c.overhead_bytes, 600 * MIB);
        assert_eq!(c.total(), 4096 * 1025 + 1025 * 120 + 600 * MIB);
        assert_eq!(c.host_bytes(Decision::UseReservoir), 1025 * 120 + 600 * MIB);
        assert_eq!(c.host_bytes(Decision::NoReservoir), c.total());
    }
}

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
//! rule on the outcome. The rule is itself a claim, in a second ledger of
//! the same format beside the first (`<ledger>.host`): the start's
//! host-side bytes are claimed against the caller's reading of free memory
//! less the floor, so concurrent starts that read free memory at the same
//! moment cannot both pass on the same memory — together their claims must
//! fit. The host claim is held, and released, with the ledger claim
//! (commit or abort; reclaimed if the process dies). A start the rule
//! refuses gives its claim (and any ARC reservation) back before
//! returning.
//!
//! What the claim cannot see: a reading taken before another start
//! committed (its claim gone, its memory allocated but not yet out of the
//! reading). Take the reading just before admitting.

use std::path::{Path, PathBuf};

use super::{bytes, claim_in, Admission, Decision, Mode, Preference, Reason, Result, Verdict};
use crate::host::HostMemory;
use crate::ledger::file::LedgerFile;
use crate::ledger::{hint, ClaimOutcome, Pool, Refused, World};
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
    /// [`Charge::host_bytes`]. Claimed, rounded up to pages, in the host
    /// ledger against the reading until commit or abort.
    pub host_bytes: u64,
    /// Free memory in the caller's reading.
    pub free_bytes: u64,
    /// What the ARC is expected to give back for a NO_RESERVOIR start
    /// (its size above the target the ARC reservation set), counted as
    /// free; 0 otherwise.
    pub arc_shrink_bytes: u64,
    /// Host memory claimed by other starts admitted under a policy and not
    /// yet committed or aborted (the host ledger's total without this one).
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
        self.admit_vm_with(uuid, vm, pref, host, None, Mode::Claim)
    }

    /// What [`Admission::admit_vm`] would decide now, with the same
    /// figures, under the handle's policy, without claiming, reserving or
    /// reclaiming anything in either ledger (dead holders that the
    /// admission would reclaim before refusing are counted as reclaimed).
    /// With `host` None the host's memory is read once. Only a full
    /// ledger (LEDGER_FULL) is not foreseen.
    pub fn check_vm(
        &self,
        uuid: &[u8; 16],
        vm: &VmSpec,
        pref: Preference,
        host: Option<&HostMemory>,
    ) -> Result<VmVerdict> {
        let read;
        let host = match host {
            Some(h) => h,
            None => {
                read = crate::host::read_now()?;
                &read
            }
        };
        self.admit_vm_with(uuid, vm, pref, host, None, Mode::Check)
    }

    /// [`Admission::admit_vm`] reading the host's memory itself
    /// ([`crate::host::read_now`]: `/proc/meminfo`, libkstat on illumos):
    /// once for the thresholds, and again inside the host-memory claim,
    /// after the total it is applied to — as the reservoir path re-queries
    /// the kernel — so no start that committed before the claim can be
    /// missed.
    pub fn admit_vm_reading(
        &self,
        uuid: &[u8; 16],
        vm: &VmSpec,
        pref: Preference,
    ) -> Result<VmVerdict> {
        let host = crate::host::read_now()?;
        self.admit_vm_with(
            uuid,
            vm,
            pref,
            &host,
            Some(&crate::host::read_now),
            Mode::Claim,
        )
    }

    /// The common path: `host` for the thresholds and the figures, and
    /// `reread` (if given) for the capacity inside the claim.
    fn admit_vm_with(
        &self,
        uuid: &[u8; 16],
        vm: &VmSpec,
        pref: Preference,
        host: &HostMemory,
        reread: Option<&dyn Fn() -> Result<HostMemory>>,
        mode: Mode,
    ) -> Result<VmVerdict> {
        if host.free_bytes > host.physmem_bytes {
            return Err(Error::new(Status::InvalidArgument));
        }
        let policy = self.policy();
        // Only the pooled model spreads over the VMs already running (the
        // kernel's allocated VM memory); the others need no query beyond
        // the one admit makes.
        let running = match policy.overhead.kind {
            OverheadKind::Pooled => {
                let q = self.query()?;
                q.alloc.saturating_add(q.alloc_transient)
            }
            _ => 0,
        };
        let charge = charge(&policy.overhead, vm, host.physmem_bytes, running)?;
        let thresholds = states::thresholds(&policy.scale, host.physmem_bytes);
        let floor_bytes = thresholds.bytes_for(policy.floor);

        let verdict = self.decide(uuid, vm.guest_bytes, pref, mode)?;
        let arc_shrink = verdict
            .arc
            .map(|a| a.arc_size_bytes.saturating_sub(a.target_bytes))
            .unwrap_or(0);
        let host_bytes = charge.host_bytes(verdict.decision);
        let available = host.free_bytes.saturating_add(arc_shrink);
        let mut out = VmVerdict {
            verdict,
            charge,
            host_bytes,
            free_bytes: host.free_bytes,
            arc_shrink_bytes: arc_shrink,
            pending_bytes: 0,
            free_after_bytes: 0,
            state_after: MemState::Exhausted,
            floor: policy.floor,
            floor_bytes,
        };
        let finish = |out: &mut VmVerdict, pending: u64| {
            out.pending_bytes = pending;
            out.free_after_bytes = available.saturating_sub(pending).saturating_sub(host_bytes);
            out.state_after = states::state(&thresholds, out.free_after_bytes);
        };
        let admitted = matches!(
            verdict.decision,
            Decision::UseReservoir | Decision::NoReservoir
        );
        if !admitted || verdict.reason == Reason::AlreadyAdmitted {
            // Figures only: the rule was not applied.
            finish(&mut out, self.host_pending().unwrap_or(0));
            return Ok(out);
        }
        // The memory-state rule, as a claim: host bytes against the reading
        // (taken again here, after the total, when the library reads it)
        // less the floor.
        let mut last_free = host.free_bytes;
        let mut capacity = || -> Result<u64> {
            if let Some(read) = reread {
                let h = read()?;
                last_free = h.free_bytes;
            }
            let available = last_free.saturating_add(arc_shrink);
            Ok(pages::btop(
                available.saturating_sub(floor_bytes),
                PageSize::Base4K,
            ))
        };
        let claim = self.host_claim(
            uuid,
            pages::btopr(host_bytes, PageSize::Base4K),
            &mut capacity,
            mode,
        );
        // The figures follow the reading the decision used.
        let available = last_free.saturating_add(arc_shrink);
        out.free_bytes = last_free;
        let finish = |out: &mut VmVerdict, pending: u64| {
            out.pending_bytes = pending;
            out.free_after_bytes = available.saturating_sub(pending).saturating_sub(host_bytes);
            out.state_after = states::state(&thresholds, out.free_after_bytes);
        };
        let refused = match claim {
            Ok(HostClaim::Held { others }) => {
                finish(&mut out, bytes(others));
                return Ok(out);
            }
            Ok(HostClaim::Refused(r)) => r,
            Err(e) => {
                // Nothing may stay claimed for a start that is not decided.
                if mode == Mode::Claim {
                    let _ = self.give_back(uuid, verdict.arc.is_some());
                }
                return Err(e);
            }
        };
        finish(&mut out, bytes(refused.claimed));
        if mode == Mode::Claim {
            self.give_back(uuid, verdict.arc.is_some())?;
        }
        out.verdict = Verdict {
            decision: Decision::Refuse,
            reason: Reason::MemoryState,
            charged_bytes: 0,
            // In bytes, from the reading: what free memory lacks for the
            // floor, the other pending starts and this one.
            shortfall_bytes: floor_bytes
                .saturating_add(bytes(refused.claimed))
                .saturating_add(host_bytes)
                .saturating_sub(available)
                .max(1),
            arc: None,
            ..verdict
        };
        Ok(out)
    }

    /// Give back what `admit` took for a start the rule refused. Both are
    /// attempted whatever the first does, and the first failure is
    /// reported: the caller then
    /// retries vmmresv_abort / vmmresv_arc_release, which are idempotent.
    fn give_back(&self, uuid: &[u8; 16], arc: bool) -> Result<()> {
        let claim = self.abort(uuid);
        let arc = if arc {
            self.arc_release(uuid).map(|_| ())
        } else {
            Ok(())
        };
        claim?;
        arc
    }

    /// Where the host-memory ledger lives: beside the admission ledger.
    pub fn host_ledger_path(&self) -> &Path {
        &self.host_path
    }

    /// The host ledger, opened (created if needed) on first use.
    pub(super) fn host_ledger(&self) -> Result<&LedgerFile> {
        if let Some(f) = self.host_file.get() {
            return Ok(f);
        }
        let f = LedgerFile::open_or_create(&self.host_path)?;
        // Another thread may have opened it meanwhile: either is the file.
        Ok(self.host_file.get_or_init(|| f))
    }

    /// The host ledger if this handle opened it or it exists on disk (no
    /// host claim can exist otherwise).
    pub(super) fn host_ledger_if_exists(&self) -> Result<Option<&LedgerFile>> {
        // Only "no such file" is no host ledger: another error (EACCES,
        // EMFILE) is the error, never "no host claims".
        if self.host_file.get().is_none()
            && !self
                .host_path
                .try_exists()
                .map_err(|e| crate::errno::ledger_error(&e))?
        {
            return Ok(None);
        }
        self.host_ledger().map(Some)
    }

    /// Host memory claimed by starts admitted under a policy and not yet
    /// committed (0 when no host ledger exists). An unusable host ledger
    /// is its error (LEDGER_CORRUPT, LEDGER_UNSAFE), not a 0.
    pub fn host_pending(&self) -> Result<u64> {
        Ok(match self.host_ledger_if_exists()? {
            Some(f) => bytes(f.ledger().claimed(Pool::Reservoir)),
            None => 0,
        })
    }

    /// Release this process's host claim for `uuid`, if it holds one.
    pub(super) fn release_host(&self, uuid: &[u8; 16]) -> Result<()> {
        // Only a host ledger this process opened can hold its claim: no
        // file-system call on the commit of a start that made none.
        let opened;
        let f = match self.host_file.get() {
            Some(f) => f,
            None => match LedgerFile::already_open(&self.host_path) {
                Some(f) => {
                    opened = f;
                    &opened
                }
                None => return Ok(()),
            },
        };
        let l = f.ledger();
        match l.find(uuid, hint(uuid), &[Pool::Reservoir])? {
            Some(c) => l.release(&f.world(), c.slot).map(|_| ()),
            None => Ok(()),
        }
    }

    /// Claim `pages` of host memory for `uuid` against `capacity` pages
    /// (the reading less the floor), after reclaiming dead claimants.
    fn host_claim(
        &self,
        uuid: &[u8; 16],
        pages: u64,
        capacity: &mut dyn FnMut() -> Result<u64>,
        mode: Mode,
    ) -> Result<HostClaim> {
        let f = match mode {
            Mode::Claim => self.host_ledger()?,
            Mode::Check => match self.host_ledger_if_exists()? {
                Some(f) => f,
                // No host ledger yet: no other start holds host memory.
                None => {
                    let cap = capacity()?;
                    if pages == 0 || pages > crate::ledger::MAX_PAGES {
                        return Err(Error::new(Status::InvalidArgument));
                    }
                    if pages <= cap {
                        return Ok(HostClaim::Held { others: 0 });
                    }
                    return Ok(HostClaim::Refused(Refused {
                        requested: pages,
                        claimed: 0,
                        capacity: cap,
                        shortfall: pages.saturating_sub(cap).max(1),
                    }));
                }
            },
        };
        f.check_identity()?;
        let l = f.ledger();
        let world = f.world();
        if let Some(c) = l.find(uuid, hint(uuid), &[Pool::Reservoir])? {
            if world.mine(c.slot) {
                // Already claimed (a retried start): not charged twice.
                let others = l.claimed(Pool::Reservoir).saturating_sub(c.pages);
                return Ok(HostClaim::Held { others });
            }
            return Err(Error::new(Status::NotHolder));
        }
        match claim_in(mode, &l, &world, uuid, Pool::Reservoir, pages, capacity)? {
            ClaimOutcome::Claimed { others, .. } => Ok(HostClaim::Held { others }),
            ClaimOutcome::Refused(r) => Ok(HostClaim::Refused(r)),
        }
    }
}

/// The host-memory claim's outcome.
enum HostClaim {
    /// Held; `others` pages of other starts were pending beside it.
    Held { others: u64 },
    /// Not enough host memory above the floor.
    Refused(Refused),
}

/// `<ledger>.host`: the host-memory ledger beside an admission ledger.
pub(super) fn host_path_for(ledger: &Path) -> PathBuf {
    let mut p = ledger.as_os_str().to_owned();
    p.push(".host");
    PathBuf::from(p)
}

#[cfg(test)]
// Tests may panic, index and compute freely: a failure is a test failure.
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions
)]
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

    /// A reservoir that answers from memory: 8 GiB free.
    struct Kernel8G;

    impl crate::reservoir::Kernel for Kernel8G {
        fn resv_query(&self) -> core::result::Result<crate::sys::vmm_resv_query, i32> {
            Ok(crate::sys::vmm_resv_query {
                vrq_free_sz: 8 << 30,
                vrq_alloc_sz: 0,
                vrq_alloc_transient_sz: 0,
                vrq_limit: 16 << 30,
            })
        }
        fn resv_set_target(
            &self,
            _: &mut crate::sys::vmm_resv_target,
        ) -> core::result::Result<(), i32> {
            Err(libc::ENOTTY)
        }
    }

    /// Issue: the host-memory claim was checked against the caller's
    /// reading, taken before the claim's total. When the library reads, it
    /// reads again inside the claim, and that reading decides: here the
    /// first reading has room and the one inside the claim does not.
    #[test]
    #[cfg_attr(miri, ignore)] // files
    fn the_host_reading_inside_the_claim_decides() {
        let dir = std::env::temp_dir().join(format!(
            "vmmresv-vm-reread-{}-{}",
            std::process::id(),
            line!()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let a =
            Admission::open_with_kernel(Box::new(Kernel8G), &dir.join("admission.ledger")).unwrap();
        let before = HostMemory {
            physmem_bytes: 64 << 30,
            free_bytes: 32 << 30,
        };
        let inside = || -> Result<HostMemory> {
            Ok(HostMemory {
                physmem_bytes: 64 << 30,
                free_bytes: 1 << 30,
            })
        };
        let u = [7u8; 16];
        let vm = |guest: u64, vcpus: u32| VmSpec {
            guest_bytes: guest,
            vcpus,
            ..VmSpec::default()
        };
        let v = a
            .admit_vm_with(
                &u,
                &vm(1 << 30, 1),
                Preference::Require,
                &before,
                Some(&inside),
                Mode::Claim,
            )
            .unwrap();
        assert_eq!(v.verdict.reason, Reason::MemoryState);
        assert_eq!(v.free_bytes, 1 << 30, "the figures follow the reading used");
        // The caller's reading alone admits it.
        let v = a
            .admit_vm_with(
                &u,
                &vm(1 << 30, 1),
                Preference::Require,
                &before,
                None,
                Mode::Claim,
            )
            .unwrap();
        assert_eq!(v.verdict.decision, Decision::UseReservoir);
        a.abort(&u).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

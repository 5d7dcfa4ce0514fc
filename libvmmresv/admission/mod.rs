//! Admission: whether a VM may start, and with which memory.
//!
//! One VM start (zhyve): [`Admission::admit`] → bhyve creates the VM and
//! allocates its memory → [`Admission::commit`] (the kernel now accounts
//! those bytes; the claim is dropped) or [`Admission::abort`].
//!
//! With the reservoir, admission claims the VM's pages in the cross-process
//! [`ledger`] against the reservoir's free memory, read after the ledger
//! state the claim is applied to — so two VMs booting at once can no longer
//! both see the same free memory (RFD 185). Without the reservoir the VM's
//! memory is "transient" and the kernel's own limit check is applied; ARC
//! accounting for that path comes with the ARC module.
//!
//! The RFD 185 trade-off is the caller's: [`Preference::Require`] refuses
//! when the reservoir is short, [`Preference::Prefer`] downgrades to
//! running without it, [`Preference::Never`] does not ask it.

pub mod file;
pub mod ledger;
pub mod local;
pub mod owner;
pub mod vm;

use std::path::Path;

use self::file::LedgerFile;
use self::ledger::{ClaimInfo, ClaimOutcome, Host, Pool, ReconcileReport};
use self::owner::Owner;
use crate::arc::guard::Refusal;
use crate::arc::reserve::{self as arc_reserve, Applied, ArcPolicy, Reservation};
use crate::arc::{LinuxArcFacts, TargetReport};
use crate::pages::{self, PageSize, PAGESIZE};
use crate::reservoir::{Reservoir, ReservoirQuery};
use crate::status::{Error, Status};

/// Result of admission calls.
pub type Result<T> = core::result::Result<T, Error>;

/// What the caller wants of the reservoir.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preference {
    /// Use the reservoir or refuse the VM (RFD 185: fail outright).
    Require = 1,
    /// Use the reservoir if it has room, else run without it.
    Prefer = 2,
    /// Do not use the reservoir.
    Never = 3,
}

impl Preference {
    /// From a C value.
    pub fn from_u32(v: u32) -> Option<Preference> {
        match v {
            1 => Some(Preference::Require),
            2 => Some(Preference::Prefer),
            3 => Some(Preference::Never),
            _ => None,
        }
    }
}

/// The decision.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Create the VM with `VCF_RESERVOIR_MEM`; the claim is held until
    /// commit or abort.
    UseReservoir = 1,
    /// Create the VM without the reservoir flag.
    NoReservoir = 2,
    /// Do not start the VM.
    Refuse = 3,
}

/// Why.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The reservoir has room; the claim is held.
    Ok = 0,
    /// This VM already holds a claim (a retried admit): nothing charged
    /// twice.
    AlreadyAdmitted = 1,
    /// The reservoir's free memory, less other pending claims, is short by
    /// the shortfall.
    ReservoirFull = 2,
    /// The caller asked not to use the reservoir.
    ReservoirNotWanted = 3,
    /// Without the reservoir, the VM would pass the kernel's limit on
    /// reservoir plus transient memory.
    TransientLimit = 4,
    /// Without the reservoir, the ARC would have to shrink below
    /// `arc_c_min` (the OS-8005 guard: arc_c_min + VMM reservations +
    /// request > ceiling).
    ArcGuard = 5,
    /// The start would leave the host's free memory below the configured
    /// memory state (guest outside the reservoir + page_t + overhead;
    /// [`Admission::admit_vm`]).
    MemoryState = 6,
}

/// An admission decision with the figures behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// What to do.
    pub decision: Decision,
    /// Why.
    pub reason: Reason,
    /// Bytes the claim holds (guest memory rounded up to pages); 0 when
    /// nothing is claimed.
    pub charged_bytes: u64,
    /// Bytes missing when the reservoir (or the transient limit) was
    /// short, else 0.
    pub shortfall_bytes: u64,
    /// Reservoir free bytes at the decision.
    pub free_bytes: u64,
    /// Bytes claimed by other admissions not yet committed.
    pub pending_bytes: u64,
    /// For NO_RESERVOIR with an ARC host set: the ARC reservation made for
    /// the VM, the ARC target that follows and the expected wait.
    pub arc: Option<ArcVerdict>,
}

/// The ARC side of a NO_RESERVOIR decision (OS-8005): the VM's memory must
/// come out of the ARC, so it is reserved there and the ARC is told how far
/// to shrink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArcVerdict {
    /// Bytes reserved for the VM in the ARC ledger.
    pub reserved_bytes: u64,
    /// The ARC target the ledger now implies.
    pub target_bytes: u64,
    /// The ARC's size when the host was last read.
    pub arc_size_bytes: u64,
    /// Milliseconds until the ARC is expected at the target: 0 if it is
    /// already there (within the slack), else one ARC reap cycle (illumos
    /// reaps about once a second and cuts `arc_c` by the whole deficit plus
    /// arc_c/128 per cycle — OS-8005). The eviction behind it is
    /// asynchronous: wait for it with `arc::wait` rather than trust this.
    pub expected_wait_ms: u64,
}

/// One ARC reap cycle: what [`ArcVerdict::expected_wait_ms`] predicts.
pub const ARC_REAP_CYCLE_MS: u64 = 1000;

/// The host's ARC as admission sees it: the policy reservations follow and
/// the ARC's size at the last reading. Set with [`Admission::set_arc`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArcHost {
    /// Limits, ceiling and slack.
    pub policy: ArcPolicy,
    /// arcstats `size` (bytes).
    pub arc_size: u64,
}

/// Reconcile's findings: the ledger's repair and how it compares with the
/// kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reconciliation {
    /// What the ledger recomputation found and repaired.
    pub ledger: ReconcileReport,
    /// The reservoir, queried after the repair.
    pub reservoir: ReservoirQuery,
    /// Pending reservoir claims (bytes) beyond what the kernel says is free: memory
    /// left the reservoir outside admission (an operator shrank it, a VM
    /// allocated without a claim, a resize stopped part-way). 0 when the
    /// two agree.
    pub claims_beyond_free_bytes: u64,
}

/// Parse a VM UUID in its canonical text form
/// (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, any case).
pub fn parse_uuid(s: &str) -> Result<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return Err(Error::new(Status::InvalidArgument));
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut i = 0;
    while i < 36 {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b[i] != b'-' {
                return Err(Error::new(Status::InvalidArgument));
            }
            i += 1;
            continue;
        }
        let hex = |c: u8| -> Result<u8> {
            (c as char)
                .to_digit(16)
                .map(|d| d as u8)
                .ok_or(Error::new(Status::InvalidArgument))
        };
        out[n] = (hex(b[i])? << 4) | hex(b[i + 1])?;
        n += 1;
        i += 2;
    }
    Ok(out)
}

/// Where a UUID's claim starts looking for a slot: spreads claims so the
/// slot search stays short however many are live.
fn hint(uuid: &[u8; 16]) -> usize {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in uuid {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % ledger::NSLOTS as u64) as usize
}

fn bytes(pages: u64) -> u64 {
    pages.saturating_mul(PAGESIZE)
}

/// The admission point of one host: the reservoir and the claim ledger.
pub struct Admission {
    reservoir: Reservoir,
    file: LedgerFile,
    /// Read once per decision; a mutex so set_arc needs only &self.
    arc: std::sync::Mutex<Option<ArcHost>>,
    /// What admit_vm applies.
    policy: std::sync::Mutex<vm::AdmissionPolicy>,
    /// The host-memory ledger of admit_vm, opened on first use, and its
    /// path (`<ledger>.host`).
    host_file: std::sync::OnceLock<LedgerFile>,
    host_path: std::path::PathBuf,
}

impl Admission {
    /// Open (creating if needed) the ledger at `ledger_path` (default
    /// `admission.ledger` in the run directory `reservoir` was opened with)
    /// for admissions against `reservoir`.
    pub fn open(reservoir: Reservoir, ledger_path: Option<&Path>) -> Result<Admission> {
        let file = match ledger_path {
            Some(p) => LedgerFile::open_or_create(p)?,
            None => LedgerFile::open_or_create(&reservoir.run_dir().join(file::LEDGER_FILE_NAME))?,
        };
        Ok(Admission {
            host_path: vm::host_path_for(file.path()),
            reservoir,
            file,
            arc: std::sync::Mutex::new(None),
            policy: std::sync::Mutex::new(vm::AdmissionPolicy::default()),
            host_file: std::sync::OnceLock::new(),
        })
    }

    /// The reservoir admissions are checked against.
    pub fn reservoir(&self) -> &Reservoir {
        &self.reservoir
    }

    /// The ledger file.
    pub fn ledger_path(&self) -> &Path {
        self.file.path()
    }

    fn me() -> Result<Owner> {
        Owner::current().ok_or(Error::with_errno(Status::Io, libc::ESRCH))
    }

    /// Admit one VM start: `guest_bytes` of memory for VM `uuid`.
    ///
    /// Dead claimants (and a reconcile that died half-way) are repaired
    /// first. A UUID that already holds a live claim gets
    /// `AlreadyAdmitted` without a second charge.
    pub fn admit(&self, uuid: &[u8; 16], guest_bytes: u64, pref: Preference) -> Result<Verdict> {
        let pages = pages::btopr(guest_bytes, PageSize::Base4K);
        if pages == 0 || pages > ledger::MAX_PAGES {
            return Err(Error::new(Status::InvalidArgument));
        }
        let me = Self::me()?;
        let l = self.file.ledger();
        let mut survey = l.survey(&Host, Some(uuid))?;
        if survey.dead_owners || survey.stalled {
            match l.reconcile(&Host, me) {
                Ok(_) => {}
                // Another process is reconciling: its result serves us too.
                Err(e) if e.status() == Status::Busy => {}
                Err(e) => return Err(e),
            }
            survey = l.survey(&Host, Some(uuid))?;
        }
        if let Some(c) = survey.found {
            let q = self.reservoir.query()?;
            let others = l.total(c.pool).claimed.saturating_sub(c.pages);
            return Ok(Verdict {
                decision: if c.pool == Pool::Reservoir {
                    Decision::UseReservoir
                } else {
                    Decision::NoReservoir
                },
                reason: Reason::AlreadyAdmitted,
                charged_bytes: bytes(c.pages),
                shortfall_bytes: 0,
                free_bytes: q.free,
                pending_bytes: bytes(others),
                arc: None,
            });
        }
        let mut free = 0u64;
        if pref != Preference::Never {
            let mut capacity = || -> Result<u64> {
                let q = self.reservoir.query()?;
                free = q.free;
                Ok(pages::btop(q.free, PageSize::Base4K))
            };
            let outcome = l.claim(
                &Host,
                me,
                *uuid,
                Pool::Reservoir,
                pages,
                hint(uuid),
                &mut capacity,
            )?;
            match outcome {
                ClaimOutcome::Claimed { others, .. } => {
                    return Ok(Verdict {
                        decision: Decision::UseReservoir,
                        reason: Reason::Ok,
                        charged_bytes: bytes(pages),
                        shortfall_bytes: 0,
                        free_bytes: free,
                        pending_bytes: bytes(others),
                        arc: None,
                    })
                }
                ClaimOutcome::Refused(r) if pref == Preference::Require => {
                    return Ok(Verdict {
                        decision: Decision::Refuse,
                        reason: Reason::ReservoirFull,
                        charged_bytes: 0,
                        shortfall_bytes: bytes(r.shortfall),
                        free_bytes: free,
                        pending_bytes: bytes(r.claimed),
                        arc: None,
                    })
                }
                ClaimOutcome::Refused(r) => {
                    return self.transient(uuid, pages, Reason::ReservoirFull, bytes(r.shortfall))
                }
            }
        }
        self.transient(uuid, pages, Reason::ReservoirNotWanted, 0)
    }

    /// The no-reservoir path, claimed like the reservoir path against the
    /// room the kernel leaves for transient memory (vmmr_add refuses
    /// free + alloc + transient + new > limit), read after the transient
    /// pool's total — so concurrent downgraded VMs cannot over-admit
    /// either.
    fn transient(
        &self,
        uuid: &[u8; 16],
        pages: u64,
        why_not_reservoir: Reason,
        reservoir_shortfall: u64,
    ) -> Result<Verdict> {
        let me = Self::me()?;
        let l = self.file.ledger();
        let mut free = 0u64;
        let mut capacity = || -> Result<u64> {
            let q = self.reservoir.query()?;
            free = q.free;
            let used = q
                .free
                .saturating_add(q.alloc)
                .saturating_add(q.alloc_transient);
            Ok(pages::btop(q.limit.saturating_sub(used), PageSize::Base4K))
        };
        let outcome = l.claim(
            &Host,
            me,
            *uuid,
            Pool::Transient,
            pages,
            hint(uuid),
            &mut capacity,
        )?;
        let (others, mut verdict) = match outcome {
            ClaimOutcome::Claimed { others, .. } => (
                others,
                Verdict {
                    decision: Decision::NoReservoir,
                    reason: why_not_reservoir,
                    charged_bytes: bytes(pages),
                    shortfall_bytes: reservoir_shortfall,
                    free_bytes: free,
                    pending_bytes: bytes(others),
                    arc: None,
                },
            ),
            ClaimOutcome::Refused(r) => {
                return Ok(Verdict {
                    decision: Decision::Refuse,
                    reason: Reason::TransientLimit,
                    charged_bytes: 0,
                    shortfall_bytes: bytes(r.shortfall),
                    free_bytes: free,
                    pending_bytes: bytes(r.claimed),
                    arc: None,
                })
            }
        };
        let host = self.arc_host();
        let Some(host) = host else {
            return Ok(verdict);
        };
        // OS-8005: the VM's memory comes out of the ARC; reserve it there.
        match arc_reserve::reserve(&l, &Host, me, uuid, bytes(pages), &host.policy) {
            Ok(Reservation::Reserved(r)) => {
                let goal = r.target.target_bytes.saturating_add(r.target.slack_bytes);
                verdict.arc = Some(ArcVerdict {
                    reserved_bytes: r.bytes,
                    target_bytes: r.target.target_bytes,
                    arc_size_bytes: host.arc_size,
                    expected_wait_ms: if host.arc_size > goal {
                        ARC_REAP_CYCLE_MS
                    } else {
                        0
                    },
                });
                Ok(verdict)
            }
            Ok(Reservation::Refused(refusal)) => {
                // Give back the transient claim: the VM will not start.
                let _ = self.release_in(uuid, &[Pool::Transient]);
                let shortfall = match refusal {
                    Refusal::Shortfall {
                        shortfall_bytes, ..
                    } => shortfall_bytes,
                    Refusal::Overflow => u64::MAX,
                };
                Ok(Verdict {
                    decision: Decision::Refuse,
                    reason: Reason::ArcGuard,
                    charged_bytes: 0,
                    shortfall_bytes: shortfall,
                    free_bytes: free,
                    pending_bytes: bytes(others),
                    arc: None,
                })
            }
            Err(e) => {
                let _ = self.release_in(uuid, &[Pool::Transient]);
                Err(e)
            }
        }
    }

    /// Use (or stop using, with None) the host's ARC for NO_RESERVOIR
    /// decisions: each one then also reserves the VM's memory in the ARC
    /// ledger, refuses the VM if the ARC guard would be broken, and
    /// reports the ARC target and the expected wait.
    pub fn set_arc(&self, host: Option<ArcHost>) {
        *self.arc.lock().unwrap_or_else(|p| p.into_inner()) = host;
    }

    /// The ARC host set with [`Admission::set_arc`], if any.
    pub fn arc_host(&self) -> Option<ArcHost> {
        *self.arc.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserve `bytes` of ARC room for VM `uuid` (idempotent per UUID).
    pub fn arc_reserve(
        &self,
        uuid: &[u8; 16],
        bytes: u64,
        policy: &ArcPolicy,
    ) -> Result<Reservation> {
        let me = Self::me()?;
        arc_reserve::reserve(&self.file.ledger(), &Host, me, uuid, bytes, policy)
    }

    /// Release VM `uuid`'s ARC reservation (on destroy); 0 if it had none.
    pub fn arc_release(&self, uuid: &[u8; 16]) -> Result<u64> {
        let me = Self::me()?;
        arc_reserve::release(&self.file.ledger(), &Host, me, uuid)
    }

    /// The ARC target the reservations imply now.
    pub fn arc_target(&self, policy: &ArcPolicy) -> Result<TargetReport> {
        arc_reserve::current_target(&self.file.ledger(), policy)
    }

    /// Make Linux OpenZFS's `zfs_arc_max` (under `root`) follow the ARC
    /// ledger, remembering the original in this handle's run directory and
    /// restoring it when the last reservation is released.
    pub fn arc_apply_linux(
        &self,
        policy: &ArcPolicy,
        facts: &LinuxArcFacts,
        root: &Path,
    ) -> Result<Applied> {
        arc_reserve::apply_linux(
            &self.file.ledger(),
            policy,
            facts,
            root,
            self.reservoir.run_dir(),
        )
    }

    fn release_in(&self, uuid: &[u8; 16], pools: &[Pool]) -> Result<u64> {
        let me = Self::me()?;
        let l = self.file.ledger();
        let c = l.find(uuid, pools)?.ok_or(Error::new(Status::NotFound))?;
        if c.owner != me {
            return Err(Error::new(Status::NotFound));
        }
        l.release(&Host, me, c.slot).map(bytes)
    }

    fn release(&self, uuid: &[u8; 16]) -> Result<u64> {
        // The host-memory claim first. While a reconcile holds the host
        // ledger (BUSY) the call fails with the ledger claim intact, and a
        // retry does both. A host ledger that cannot be used at all
        // (corrupt, unsafe) holds no claim anyone can count (admit_vm
        // refuses to work with it), so it must not keep the ledger claim —
        // reservoir memory — from being released.
        match self.release_host(uuid) {
            Err(e) if e.status() == Status::Busy => return Err(e),
            Ok(()) | Err(_) => {}
        }
        self.release_in(uuid, &[Pool::Reservoir, Pool::Transient])
    }

    /// The VM now holds its reservoir memory (bhyve allocated it): drop the
    /// claim. Call only after the allocation: until then the claim is what
    /// keeps another VM from taking the same memory. Returns the bytes the
    /// claim held.
    pub fn commit(&self, uuid: &[u8; 16]) -> Result<u64> {
        self.release(uuid)
    }

    /// The VM will not start (or did not get its memory): drop the claim.
    pub fn abort(&self, uuid: &[u8; 16]) -> Result<u64> {
        self.release(uuid)
    }

    /// The live claims in the ledger.
    pub fn claims(&self) -> Result<Vec<ClaimInfo>> {
        self.file.ledger().claims()
    }

    /// Pending claimed bytes of a pool (its total in the ledger).
    pub fn pending_bytes(&self, pool: Pool) -> u64 {
        bytes(self.file.ledger().total(pool).claimed)
    }

    /// Recompute the ledger from its live claims (reclaiming the dead) and
    /// compare it with a fresh reservoir query.
    pub fn reconcile(&self) -> Result<Reconciliation> {
        let me = Self::me()?;
        let report = self.file.ledger().reconcile(&Host, me)?;
        let q = self.reservoir.query()?;
        Ok(Reconciliation {
            ledger: report,
            reservoir: q,
            claims_beyond_free_bytes: bytes(report.claimed_after[Pool::Reservoir as usize])
                .saturating_sub(q.free),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_parse_strictly() {
        let u = parse_uuid("0123abcd-4567-89AB-cdef-0123456789ab").unwrap();
        assert_eq!(u[0], 0x01);
        assert_eq!(u[15], 0xab);
        for bad in [
            "",
            "0123abcd-4567-89ab-cdef-0123456789a",
            "0123abcd-4567-89ab-cdef-0123456789abc",
            "0123abcd_4567-89ab-cdef-0123456789ab",
            "0123abcg-4567-89ab-cdef-0123456789ab",
            "+123abcd-4567-89ab-cdef-0123456789ab",
        ] {
            assert!(parse_uuid(bad).is_err(), "{:?}", bad);
        }
    }

    #[test]
    fn hints_spread() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..64u8 {
            let mut u = [0u8; 16];
            u[15] = i;
            seen.insert(hint(&u));
        }
        assert!(seen.len() > 48);
    }
}

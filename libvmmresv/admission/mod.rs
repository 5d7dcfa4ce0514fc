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

pub mod handoff;
pub mod local;
pub mod vm;

use std::path::{Path, PathBuf};

use crate::arc::guard::Refusal;
use crate::arc::reserve::{self as arc_reserve, Applied, ArcPolicy, Reservation};
use crate::arc::{LinuxArcFacts, TargetReport};
use crate::ledger::file::{self, LedgerFile};
use crate::ledger::{self, hint, ClaimInfo, ClaimOutcome, Pool, ReconcileReport, World};
use crate::pages::{self, PageSize, PAGESIZE};
use crate::reservoir::{Kernel, Reservoir, ReservoirQuery};
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

crate::status::c_enum!(Preference {
    Require,
    Prefer,
    Never
});

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

crate::status::c_enum!(Decision {
    UseReservoir,
    NoReservoir,
    Refuse
});

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
    /// Another process holds this VM's claim (it is starting this VM now):
    /// nothing was claimed; that process commits or aborts it, or hands it
    /// over ([`Admission::handoff`]). (Since 1.2.)
    HeldElsewhere = 7,
}

crate::status::c_enum!(Reason {
    Ok,
    AlreadyAdmitted,
    ReservoirFull,
    ReservoirNotWanted,
    TransientLimit,
    ArcGuard,
    MemoryState,
    HeldElsewhere,
});

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
    /// Pending transient claims (bytes) beyond the room the kernel's limit
    /// leaves for transient memory (limit − free − alloc − transient): the
    /// reservoir grew, or transient memory was taken, outside admission.
    /// 0 when they fit.
    pub transient_beyond_room_bytes: u64,
}

/// Parse a VM UUID in its canonical text form
/// (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, any case).
pub fn parse_uuid(s: &str) -> Result<[u8; 16]> {
    let bad = || Error::new(Status::InvalidArgument);
    let b = s.as_bytes();
    if b.len() != 36 {
        return Err(bad());
    }
    // The 32 hex digits, with a dash at 8, 13, 18 and 23 and nowhere else.
    let mut digits = [0u32; 32];
    let mut n = 0usize;
    for (i, c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if *c != b'-' {
                return Err(bad());
            }
            continue;
        }
        *digits.get_mut(n).ok_or_else(bad)? = char::from(*c).to_digit(16).ok_or_else(bad)?;
        n = n.saturating_add(1);
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let [hi, lo] = pair else { return Err(bad()) };
        // Two hex digits: at most 255.
        *o = u8::try_from(hi.saturating_mul(16).saturating_add(*lo)).map_err(|_| bad())?;
    }
    Ok(out)
}

fn bytes(pages: u64) -> u64 {
    pages.saturating_mul(PAGESIZE)
}

pub use crate::rundir::RunDirOrigin as LedgerOrigin;

/// What admissions read capacity from.
enum Device {
    /// The reservoir device.
    Reservoir(Reservoir),
    /// Another kernel (tests and benchmarks: one that answers from memory).
    Kernel(Box<dyn Kernel + Send + Sync>, PathBuf),
}

/// The admission point of one host: the reservoir and the claim ledger.
pub struct Admission {
    device: Device,
    file: LedgerFile,
    origin: LedgerOrigin,
    /// Read once per decision; a mutex so set_arc needs only &self.
    arc: std::sync::Mutex<Option<ArcHost>>,
    /// What admit_vm applies.
    policy: std::sync::Mutex<vm::AdmissionPolicy>,
    /// The sizing profiles' shares this handle's reports apply.
    profile_fractions: std::sync::Mutex<crate::policy::headroom::ProfileFractions>,
    /// The host-memory ledger of admit_vm, opened on first use, and its
    /// path (`<ledger>.host`).
    host_file: std::sync::OnceLock<LedgerFile>,
    host_path: std::path::PathBuf,
    /// Where ARC reservations go when this handle's own ledger is not the
    /// VMM reservoir's (a hugetlb pool's): the host has one ARC, so all of
    /// its reservations are in one file, `admission.ledger` beside this
    /// one (opened on first use). None: this handle's own ledger.
    arc_path: Option<PathBuf>,
    arc_file: std::sync::OnceLock<LedgerFile>,
    /// The separate ARC ledger's total was checked (once, before the
    /// first change through this handle).
    arc_checked: std::sync::atomic::AtomicBool,
    /// This process handed a claim over: its own locks on it linger after
    /// the adopter commits (the slot is free, the lock still ours), and
    /// are dropped before the next admission.
    handed_off: std::sync::atomic::AtomicBool,
}

impl Admission {
    /// Open (creating if needed) the ledger at `ledger_path` (default
    /// [`Reservoir::ledger_name`] — `admission.ledger`, or one per hugetlb
    /// pool — in the run directory `reservoir` was opened with:
    /// [`crate::rundir::run_dir_setting`]) for admissions against
    /// `reservoir`. On a hugetlb pool, USE_RESERVOIR means "start with huge
    /// pages" and NO_RESERVOIR "start without them", against the host's
    /// available memory (docs/hugetlb.md).
    pub fn open(reservoir: Reservoir, ledger_path: Option<&Path>) -> Result<Admission> {
        let (path, origin) = match ledger_path {
            Some(p) => (p.to_path_buf(), LedgerOrigin::Argument),
            None => (
                reservoir.run_dir().join(reservoir.ledger_name()),
                reservoir.run_dir_origin(),
            ),
        };
        let pool = reservoir.pool_id();
        Self::open_on(Device::Reservoir(reservoir), &path, origin, pool)
    }

    /// Admissions against `kernel` (anything that answers the reservoir
    /// query: tests and benchmarks), with the ledger at `ledger_path`.
    pub fn open_with_kernel(
        kernel: Box<dyn Kernel + Send + Sync>,
        ledger_path: &Path,
    ) -> Result<Admission> {
        let dir = ledger_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::open_on(
            Device::Kernel(kernel, dir),
            ledger_path,
            LedgerOrigin::Argument,
            file::PoolId::default(),
        )
    }

    fn open_on(
        device: Device,
        path: &Path,
        origin: LedgerOrigin,
        pool: file::PoolId,
    ) -> Result<Admission> {
        // The caller's name must leave room for the host ledger's beside it.
        if path.file_name().map(|n| n.len()).unwrap_or(0) > file::MAX_NAME {
            return Err(Error::new(Status::InvalidArgument));
        }
        let file = LedgerFile::open_or_create_for(path, pool)?;
        // On open: check each total against the slots (repairing one that
        // does not add up). Not a reclaim: a process that exec()ed in
        // place still holds the record locks of its claims, and neither
        // its map of them nor F_GETLK (which never reports the caller's own
        // locks) can tell until it adopts them (vmmresv_adopt).
        let l = file.ledger();
        for p in Pool::ALL {
            match l.check_total(p) {
                Ok(_) => {}
                Err(e) if e.status() == Status::Busy => {}
                Err(e) => return Err(e),
            }
        }
        // A hugetlb pool's ARC reservations: in the run directory's
        // admission.ledger, the one the ARC handle opens by default.
        let arc_path = (pool != file::PoolId::default()).then(|| {
            let run = match &device {
                Device::Reservoir(r) => r.run_dir().to_path_buf(),
                Device::Kernel(_, d) => d.clone(),
            };
            run.join(file::LEDGER_FILE_NAME)
        });
        if arc_path.as_deref() == Some(file.path()) {
            // That name is the host's ARC ledger, a VMM reservoir ledger.
            return Err(Error::new(Status::InvalidArgument));
        }
        Ok(Admission {
            host_path: vm::host_path_for(file.path()),
            arc_path,
            arc_file: std::sync::OnceLock::new(),
            arc_checked: std::sync::atomic::AtomicBool::new(false),
            device,
            file,
            origin,
            arc: std::sync::Mutex::new(None),
            policy: std::sync::Mutex::new(vm::AdmissionPolicy::default()),
            profile_fractions: std::sync::Mutex::new(Default::default()),
            host_file: std::sync::OnceLock::new(),
            handed_off: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The reservoir admissions are checked against (None for a handle
    /// opened on another kernel).
    pub fn reservoir(&self) -> Option<&Reservoir> {
        match &self.device {
            Device::Reservoir(r) => Some(r),
            Device::Kernel(..) => None,
        }
    }

    /// A fresh reading of the reservoir.
    pub fn query(&self) -> Result<ReservoirQuery> {
        match &self.device {
            Device::Reservoir(r) => r.query(),
            Device::Kernel(k, _) => crate::reservoir::query_with(k.as_ref()),
        }
    }

    fn run_dir(&self) -> &Path {
        match &self.device {
            Device::Reservoir(r) => r.run_dir(),
            Device::Kernel(_, d) => d,
        }
    }

    /// The ledger file.
    pub fn ledger_path(&self) -> &Path {
        self.file.path()
    }

    /// Where the ledger's path came from.
    pub fn ledger_origin(&self) -> LedgerOrigin {
        self.origin
    }

    /// The ledger file's header (its backend and pool, its instance).
    pub fn ledger_header(&self) -> &file::FileHeader {
        self.file.header()
    }

    /// Admit one VM start: `guest_bytes` of memory for VM `uuid`.
    ///
    /// A UUID whose claim this process holds gets `AlreadyAdmitted` without
    /// a second charge; one whose claim another process holds is refused
    /// with `HeldElsewhere`. Dead holders standing in the way are
    /// reclaimed before anything is refused.
    pub fn admit(&self, uuid: &[u8; 16], guest_bytes: u64, pref: Preference) -> Result<Verdict> {
        self.decide(uuid, guest_bytes, pref, Mode::Claim)
    }

    /// What [`Admission::admit`] would decide now, with its figures,
    /// without claiming, reserving or reclaiming anything (a dead holder
    /// that admit would reclaim before refusing is counted as reclaimed).
    /// Only a full ledger (LEDGER_FULL) is not foreseen.
    pub fn check(&self, uuid: &[u8; 16], guest_bytes: u64, pref: Preference) -> Result<Verdict> {
        self.decide(uuid, guest_bytes, pref, Mode::Check)
    }

    pub(super) fn decide(
        &self,
        uuid: &[u8; 16],
        guest_bytes: u64,
        pref: Preference,
        mode: Mode,
    ) -> Result<Verdict> {
        let pages = pages::btopr(guest_bytes, PageSize::Base4K);
        if pages == 0 || pages > ledger::MAX_PAGES {
            return Err(Error::new(Status::InvalidArgument));
        }
        self.file.check_identity()?;
        if mode == Mode::Claim
            && self.handed_off.load(std::sync::atomic::Ordering::Acquire)
            && self.drop_stale_locks()? == 0
        {
            self.handed_off
                .store(false, std::sync::atomic::Ordering::Release);
        }
        let l = self.file.ledger();
        let world = self.file.world();
        if let Some(c) = l.find(uuid, hint(uuid), &[Pool::Reservoir, Pool::Transient])? {
            if matches!(
                c.state,
                ledger::SlotState::Claimed | ledger::SlotState::Reserving
            ) {
                return self.already(&l, &world, &c);
            }
        }
        // The reservoir hands out whole pages of its own size (a hugetlb
        // pool's huge pages): a VM takes its memory rounded up to them.
        let pool_pages = match self.reservoir().map(Reservoir::page_size) {
            Some(ps) if ps > PAGESIZE => {
                pages::btopr(pages::round_up(guest_bytes, ps)?, PageSize::Base4K)
            }
            _ => pages,
        };
        if pool_pages > ledger::MAX_PAGES {
            return Err(Error::new(Status::InvalidArgument));
        }
        let mut free = 0u64;
        if pref != Preference::Never {
            let mut capacity = || -> Result<u64> {
                let q = self.query()?;
                free = q.free;
                Ok(pages::btop(q.free, PageSize::Base4K))
            };
            let outcome = claim_in(
                mode,
                &l,
                &world,
                uuid,
                Pool::Reservoir,
                pool_pages,
                &mut capacity,
            )?;
            match outcome {
                ClaimOutcome::Claimed { others, .. } => {
                    return Ok(Verdict {
                        decision: Decision::UseReservoir,
                        reason: Reason::Ok,
                        charged_bytes: bytes(pool_pages),
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
                    return self.transient(
                        uuid,
                        pages,
                        Reason::ReservoirFull,
                        bytes(r.shortfall),
                        mode,
                    )
                }
            }
        }
        self.transient(uuid, pages, Reason::ReservoirNotWanted, 0, mode)
    }

    /// The answer for a VM whose claim already exists.
    fn already(&self, l: &ledger::Ledger<'_>, world: &dyn World, c: &ClaimInfo) -> Result<Verdict> {
        let q = self.query()?;
        let others = l.claimed(c.pool).saturating_sub(c.pages);
        if !world.mine(c.slot) {
            return Ok(Verdict {
                decision: Decision::Refuse,
                reason: Reason::HeldElsewhere,
                charged_bytes: 0,
                shortfall_bytes: 0,
                free_bytes: q.free,
                pending_bytes: bytes(others),
                arc: None,
            });
        }
        Ok(Verdict {
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
        })
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
        mode: Mode,
    ) -> Result<Verdict> {
        let l = self.file.ledger();
        let world = self.file.world();
        let mut free = 0u64;
        let mut capacity = || -> Result<u64> {
            let q = self.query()?;
            free = q.free;
            Ok(pages::btop(q.transient_room(), PageSize::Base4K))
        };
        let outcome = claim_in(
            mode,
            &l,
            &world,
            uuid,
            Pool::Transient,
            pages,
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
        let reservation = match mode {
            Mode::Claim => self.arc_ledger().and_then(|f| {
                arc_reserve::reserve(&f.ledger(), &f.world(), uuid, bytes(pages), &host.policy)
            }),
            Mode::Check => self
                .arc_ledger_to_read()
                .and_then(|f| arc_check(&f.ledger(), &f.world(), uuid, bytes(pages), &host.policy)),
        };
        match reservation {
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
                if mode == Mode::Claim {
                    let _ = self.release_in(uuid, &[Pool::Transient]);
                }
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
                if mode == Mode::Claim {
                    let _ = self.release_in(uuid, &[Pool::Transient]);
                }
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

    /// The share of `profile` this handle's capacity reports apply (its
    /// default percentage until set).
    pub fn set_profile_fraction(
        &self,
        profile: crate::policy::headroom::Profile,
        f: crate::policy::headroom::Fraction,
    ) {
        self.profile_fractions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set(profile, f);
    }

    /// The shares set with [`Admission::set_profile_fraction`].
    pub fn profile_fractions(&self) -> crate::policy::headroom::ProfileFractions {
        *self
            .profile_fractions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
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
        let f = self.arc_ledger()?;
        arc_reserve::reserve(&f.ledger(), &f.world(), uuid, bytes, policy)
    }

    /// Release VM `uuid`'s ARC reservation (on destroy); 0 if it had none.
    pub fn arc_release(&self, uuid: &[u8; 16]) -> Result<u64> {
        if self.arc_path.is_some() && self.separate_arc_ledger()?.is_none() {
            return Ok(0); // no ARC ledger: no reservation
        }
        let f = self.arc_ledger()?;
        arc_reserve::release(&f.ledger(), &f.world(), uuid)
    }

    /// The ARC target the reservations imply now.
    pub fn arc_target(&self, policy: &ArcPolicy) -> Result<TargetReport> {
        arc_reserve::current_target(&self.arc_ledger_to_read()?.ledger(), policy)
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
            &self.arc_ledger_to_read()?.ledger(),
            policy,
            facts,
            root,
            self.run_dir(),
        )
    }

    fn release_in(&self, uuid: &[u8; 16], pools: &[Pool]) -> Result<u64> {
        let l = self.file.ledger();
        let c = l
            .find(uuid, hint(uuid), pools)?
            .ok_or(Error::new(Status::NotFound))?;
        l.release(&self.file.world(), c.slot).map(bytes)
    }

    fn release(&self, uuid: &[u8; 16]) -> Result<u64> {
        // The host-memory claim first. A host ledger that cannot be used
        // at all (corrupt, unsafe) holds no claim anyone can count
        // (admit_vm refuses to work with it), so it must not keep the
        // ledger claim — reservoir memory — from being released.
        match self.release_host(uuid) {
            Err(e) if e.status() == Status::NotHolder => return Err(e),
            Ok(()) | Err(_) => {}
        }
        self.release_in(uuid, &[Pool::Reservoir, Pool::Transient])
    }

    /// The VM now holds its reservoir memory (bhyve allocated it): drop the
    /// claim. Call only after the allocation: until then the claim is what
    /// keeps another VM from taking the same memory. Returns the bytes the
    /// claim held. NOT_HOLDER if another process holds it.
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

    /// Every claim in both ledgers of this handle (the admission ledger's
    /// reservoir, transient and ARC pools; the host-memory ledger of
    /// [`Admission::admit_vm`] if it exists), each with whether a process
    /// holds its lock now (the kernel's record locks: `F_GETLK`, or this
    /// process's own). Read-only: nothing is reclaimed. Each slot is read
    /// consistently; the list is not one instant of the whole ledger.
    pub fn claims_listing(&self) -> Result<Vec<ListedClaim>> {
        let mut v = Vec::new();
        let mut add = |f: &LedgerFile, host: bool, arc_only: bool| -> Result<()> {
            let l = f.ledger();
            let world = f.world();
            for c in l.claims()? {
                if arc_only && c.pool != Pool::Arc {
                    continue;
                }
                let held = world.held(c.slot)?;
                v.push(ListedClaim {
                    info: c,
                    host,
                    held,
                });
            }
            Ok(())
        };
        add(&self.file, false, false)?;
        if let Some(a) = self.separate_arc_ledger()? {
            add(a, false, true)?;
        }
        if let Some(h) = self.host_ledger_if_exists()? {
            add(h, true, false)?;
        }
        Ok(v)
    }

    /// What [`Admission::reconcile`] would find and change now, writing
    /// nothing: dead holders' claims are counted as reclaimed (not
    /// reclaimed), totals that would be repaired are counted (not
    /// repaired), and the reservoir is queried.
    pub fn reconcile_preview(&self) -> Result<Reconciliation> {
        let mut report = self.file.ledger().reconcile_preview(&self.file.world())?;
        if let Some(a) = self.separate_arc_ledger()? {
            add_arc_ledger(&mut report, &a.ledger().reconcile_preview(&a.world())?);
        }
        self.against_the_kernel(report)
    }

    /// A ledger's reconcile report beside a fresh reservoir query.
    fn against_the_kernel(&self, report: ReconcileReport) -> Result<Reconciliation> {
        let q = self.query()?;
        Ok(Reconciliation {
            ledger: report,
            reservoir: q,
            claims_beyond_free_bytes: bytes(report.after(Pool::Reservoir)).saturating_sub(q.free),
            transient_beyond_room_bytes: bytes(report.after(Pool::Transient))
                .saturating_sub(q.transient_room()),
        })
    }

    /// Pending claimed bytes of a pool (its total in this handle's own
    /// ledger; for the host's ARC reservations, which a hugetlb pool's
    /// handle keeps in another file, [`Admission::arc_pending_bytes`]).
    pub fn pending_bytes(&self, pool: Pool) -> u64 {
        bytes(self.file.ledger().claimed(pool))
    }

    /// The host's ARC reservations (bytes): in the ARC ledger, which for a
    /// hugetlb pool's handle is another file; its error if it cannot be
    /// read, never a 0.
    pub fn arc_pending_bytes(&self) -> Result<u64> {
        Ok(bytes(
            self.arc_ledger_to_read()?.ledger().claimed(Pool::Arc),
        ))
    }

    /// Reclaim dead holders' claims, check every total against the live
    /// claims (repairing one that does not add up) and compare the result
    /// with a fresh reservoir query.
    pub fn reconcile(&self) -> Result<Reconciliation> {
        let _ = self.drop_stale_locks()?;
        let mut report = self.file.ledger().reconcile(&self.file.world())?;
        if self.separate_arc_ledger()?.is_some() {
            let a = self.arc_ledger()?;
            add_arc_ledger(&mut report, &a.ledger().reconcile(&a.world())?);
        }
        self.against_the_kernel(report)
    }
}

/// What the separate ARC ledger's reconcile found, added to the admission
/// ledger's: its ARC totals are the host's, its counts add to this
/// handle's (that file is the host's ARC ledger: its dead claims, of any
/// pool, are reclaimed and counted here too).
fn add_arc_ledger(report: &mut ReconcileReport, arc: &ReconcileReport) {
    let k = Pool::Arc.index();
    if let (Some(b), Some(a)) = (report.claimed_before.get_mut(k), arc.claimed_before.get(k)) {
        *b = *a;
    }
    if let (Some(b), Some(a)) = (report.claimed_after.get_mut(k), arc.claimed_after.get(k)) {
        *b = *a;
    }
    report.live_claims = report.live_claims.saturating_add(arc.live_claims);
    report.reclaimed_slots = report.reclaimed_slots.saturating_add(arc.reclaimed_slots);
    report.reclaimed_pages = report.reclaimed_pages.saturating_add(arc.reclaimed_pages);
    report.repaired_totals = report.repaired_totals.saturating_add(arc.repaired_totals);
}

/// One claim of [`Admission::claims_listing`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListedClaim {
    /// What the slot records.
    pub info: ClaimInfo,
    /// In the host-memory ledger (`<ledger>.host`; its claims are in
    /// [`Pool::Reservoir`] there) rather than the admission ledger.
    pub host: bool,
    /// A process holds the claim's record lock now; false: its holder died
    /// and the next admission that needs the room, or a reconcile,
    /// reclaims it.
    pub held: bool,
}

/// Whether a decision takes what it decides, or only says what it would
/// decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// Claim (admit).
    Claim,
    /// Read only (check).
    Check,
}

/// A ledger claim, or (checking) what it would give: the total first,
/// then, where the claim would retry after reclaiming dead holders and
/// checking the total, the live claims' sum.
pub(super) fn claim_in(
    mode: Mode,
    l: &ledger::Ledger<'_>,
    world: &dyn World,
    uuid: &[u8; 16],
    pool: Pool,
    pages: u64,
    capacity: &mut dyn FnMut() -> Result<u64>,
) -> Result<ClaimOutcome> {
    if mode == Mode::Claim {
        return l.claim(world, *uuid, pool, pages, hint(uuid), capacity);
    }
    if pages == 0 || pages > ledger::MAX_PAGES {
        return Err(Error::new(Status::InvalidArgument));
    }
    let claimed = l.total(pool)?.claimed;
    let cap = capacity()?;
    let want = claimed.saturating_add(pages);
    if want <= cap && want <= ledger::MAX_PAGES {
        return Ok(ClaimOutcome::Claimed {
            slot: l.len(),
            others: claimed,
        });
    }
    let claimed = l.reconcile_preview(world)?.after(pool);
    let cap = capacity()?;
    let want = claimed.saturating_add(pages);
    if want <= cap && want <= ledger::MAX_PAGES {
        return Ok(ClaimOutcome::Claimed {
            slot: l.len(),
            others: claimed,
        });
    }
    Ok(ClaimOutcome::Refused(ledger::Refused {
        requested: pages,
        claimed,
        capacity: cap,
        shortfall: want.saturating_sub(cap).max(1),
    }))
}

/// [`arc_reserve::reserve`] read-only: what it would answer now.
fn arc_check(
    l: &ledger::Ledger<'_>,
    world: &dyn World,
    uuid: &[u8; 16],
    request_bytes: u64,
    policy: &ArcPolicy,
) -> Result<Reservation> {
    use crate::arc::guard::{guard, target, GuardInputs, TargetInputs};
    if policy.limits.arc_c_min > policy.limits.arc_c_max {
        return Err(Error::new(Status::InvalidArgument));
    }
    let target_for = |reserved: u64| {
        target(&TargetInputs {
            limits: policy.limits,
            ceiling: policy.ceiling,
            arc_virt_machine_reserved: reserved,
            slack: policy.slack,
        })
    };
    if let Some(c) = l.find(uuid, hint(uuid), &[Pool::Arc])? {
        return Ok(Reservation::Reserved(arc_reserve::Reserved {
            bytes: bytes(c.pages),
            already: true,
            target: target_for(l.claimed(Pool::Arc))?,
        }));
    }
    let inputs = GuardInputs::new(&policy.limits, policy.ceiling, 0, request_bytes);
    if inputs.request == 0 {
        return Err(Error::new(Status::InvalidArgument));
    }
    let capacity = inputs.ceiling.saturating_sub(inputs.arc_c_min);
    match claim_in(
        Mode::Check,
        l,
        world,
        uuid,
        Pool::Arc,
        inputs.request,
        &mut || Ok(capacity),
    )? {
        ClaimOutcome::Claimed { others, .. } => Ok(Reservation::Reserved(arc_reserve::Reserved {
            bytes: bytes(inputs.request),
            already: false,
            target: target_for(others.saturating_add(inputs.request))?,
        })),
        ClaimOutcome::Refused(r) => match guard(&GuardInputs {
            arc_virt_machine_reserved: r.claimed,
            ..inputs
        }) {
            Err(refusal) => Ok(Reservation::Refused(refusal)),
            Ok(_) => Err(Error::new(Status::LedgerCorrupt)),
        },
    }
}

impl Admission {
    /// Drop this process's locks on slots that are free again (claims it
    /// handed over and the adopter committed), in both ledgers.
    fn drop_stale_locks(&self) -> Result<usize> {
        let mut left = self.file.drop_stale_locks()?;
        for f in [self.host_file.get(), self.arc_file.get()]
            .into_iter()
            .flatten()
        {
            left = left.saturating_add(f.drop_stale_locks()?);
        }
        Ok(left)
    }

    /// The ledger of this host's ARC reservations, for a change (a
    /// reservation, a release, an adoption, a reconcile): this handle's
    /// own, or (a hugetlb pool's handle) `admission.ledger` in the run
    /// directory, opened (created if needed) on first use, its ARC total
    /// checked before the first change, and its identity on every one: a
    /// replaced file must not go on taking reservations no one else sees.
    pub(super) fn arc_ledger(&self) -> Result<&LedgerFile> {
        use std::sync::atomic::Ordering::{Acquire, Release};
        let Some(path) = &self.arc_path else {
            return Ok(&self.file);
        };
        let f = match self.arc_file.get() {
            Some(f) => f,
            None => {
                let f = LedgerFile::open_or_create(path)?;
                // Another thread may have opened it meanwhile: either is
                // the file (one shared descriptor and lock registry).
                self.arc_file.get_or_init(|| f)
            }
        };
        f.check_identity()?;
        if !self.arc_checked.load(Acquire) {
            match f.ledger().check_total(Pool::Arc) {
                Ok(_) => {}
                Err(e) if e.status() == Status::Busy => {}
                Err(e) => return Err(e),
            }
            self.arc_checked.store(true, Release);
        }
        Ok(f)
    }

    /// The separate ARC ledger, to read: None if this handle has none, or
    /// the file does not exist (no reservation can be in it then). Nothing
    /// is created, checked or repaired.
    pub(super) fn separate_arc_ledger(&self) -> Result<Option<&LedgerFile>> {
        let Some(path) = &self.arc_path else {
            return Ok(None);
        };
        if let Some(f) = self.arc_file.get() {
            return Ok(Some(f));
        }
        // Only "no such file" is no file: another error (EACCES, EMFILE)
        // is the error, never "no reservations".
        if !path
            .try_exists()
            .map_err(|e| crate::errno::ledger_error(&e))?
        {
            return Ok(None);
        }
        let f = LedgerFile::open_or_create(path)?;
        Ok(Some(self.arc_file.get_or_init(|| f)))
    }

    /// The ledger to read the host's ARC reservations from: the separate
    /// one if it exists, else this handle's own (whose ARC pool is then
    /// the host's, or, for a hugetlb pool's handle, empty: no reservation
    /// exists without the file).
    pub(super) fn arc_ledger_to_read(&self) -> Result<&LedgerFile> {
        Ok(self.separate_arc_ledger()?.unwrap_or(&self.file))
    }

    pub(super) fn mark_handed_off(&self) {
        self.handed_off
            .store(true, std::sync::atomic::Ordering::Release);
    }
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
}

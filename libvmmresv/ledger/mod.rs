//! The cross-process claim ledger: fixed slots and one total per pool, in a
//! shared file every admitting process maps (layout: [`file`](mod@file);
//! protocol in full: `docs/ledger.md`).
//!
//! # The race it closes (RFD 185)
//! Two VMs boot at once, both query the reservoir, both see room, both
//! launch, one dies. A claim here is checked against a capacity reading
//! taken *after* the total it is applied to, and applied by a CAS on that
//! one word, which also holds an epoch and the last operation. Any change to
//! the total changes the word, so a claim computed from a reading older than
//! the latest change fails its CAS and reads again. The reservoir's free
//! memory only falls when a VM allocates, a VM allocates only after its
//! claim is in the total, and its claim leaves the total (commit) only after
//! it allocated: at every successful CAS, `claimed + request <= free` held
//! for a `free` read after the last change to `claimed`.
//!
//! # Liveness: the kernel's record locks, not `/proc`
//! A claim lives exactly while a process holding it lives. Each slot has two
//! lock bytes beyond the file's data (holder and adopter, [`Role`]); a
//! process write-locks its byte (POSIX `F_SETLK`) *before* it takes the slot
//! and unlocks it only *after* the slot is free again. A slot in use whose
//! bytes no process holds has a dead holder: the kernel dropped the lock
//! when it died, in whatever zone or PID namespace it ran. Why POSIX record
//! locks: on illumos, OFD locks are whole-file only and are keyed on the
//! vnode of the open file, which for a file opened through lofs is that
//! mount's lofs node, so two zones' mounts would not see each other's;
//! record locks go through `VOP_FRLOCK`, which lofs passes to the real
//! vnode (illumos-gate `usr/src/uts/common/os/flock.c` `ofdlock()`,
//! `usr/src/uts/common/fs/lofs/lofs_vnops.c` `lo_frlock()`). Their traps —
//! owned by the process, all dropped when it closes *any* descriptor of the
//! file, not inherited by fork, invisible to their owner's `F_GETLK` — are
//! the file layer's business ([`file`](mod@file): one descriptor per file per
//! process, and a per-process map of what it holds). An error while asking
//! is an error, never "dead".
//!
//! One exception: a **durable** claim (ARC pool only; a bit in the slot's
//! pool word, [`DURABLE_BIT`]) is guarded by its maker's lock only while
//! it is being made (BUSY, RESERVING). Once CLAIMED its maker drops the
//! lock and no lock-driven path takes it out: only
//! [`Ledger::release_durable`] does, on an explicit release or when the
//! layer above finds its VM gone (`crate::arc::durable`). It counts in the
//! total like any other claim.
//!
//! # The total word
//! `claimed:35 | last:13 | op:1 | epoch:15` (claimed in 4 KiB pages: up to
//! 128 TiB; `last` = slot index + 1 of the last apply or release, 0 for
//! none). A CAS could only be fooled by a word that came back exactly:
//! the same total, the same last slot and operation, and 2^15 changes
//! (a multiple of 32768), all between one claimant's read and its CAS. Before anyone CASes a total, it *helps* the operation the word
//! names: the slot of the last apply, if still RESERVING, is moved to
//! CLAIMED; the slot of the last release, if still RELEASING, to FREE. So
//! the only slot that can be mid-operation with its effect already in the
//! total is the one the word names, and every other slot's effect is known
//! from its state alone. That makes every repair a single CAS: no freeze,
//! no reconciler to wait for, nothing a stopped (SIGSTOP) process can hold
//! up.
//!
//! # Slots
//! 64 bytes each: a state word `state:3 | spill:1 | pid:23 | gen:37` and the
//! claim's fields (pool, pages, VM UUID, time, origin, check).
//! `FREE → BUSY` (the owner's CAS; fields written while BUSY) `→ RESERVING`
//! (fields final) `→ CLAIMED` (in the total) `→ RELEASING → FREE`; a refused
//! claim goes `RESERVING → FREE`. A dead holder's slot is taken through the
//! same release by whoever finds it: `CLAIMED → RELEASING`, the total
//! lowered by a CAS naming it, `→ FREE`. `pid` is the taker's pid in its own
//! namespace: for people reading the ledger, never for a decision.
//!
//! # Where the work is
//! A claim that fits probes [`PROBE`] slots from its UUID's hint and makes a
//! handful of CASes: nothing proportional to the slots or the live claims.
//! Dead holders are reclaimed and each total is checked against its slots
//! when a claim would otherwise be refused (then tried once more) and on
//! reconcile; an open checks the totals but does not reclaim (a process
//! that exec'd in place holds locks it cannot see until it adopts them).
//!
//! # Hostile files
//! Every word read is validated: an unknown state, a pid or page count out
//! of range, a slot whose check word does not match, or a total that does
//! not add up (and cannot be repaired) is [`Status::LedgerCorrupt`] — never
//! a crash, never a reason to admit.
//!
//! # Who uses it
//! Admission claims VM memory in the reservoir and transient pools, the ARC
//! module keeps its per-VM reservations in the ARC pool, and a reservoir
//! resize holds its change here: all of them sit above this module, which
//! knows none of them.

#[doc(hidden)]
pub mod fake;
pub mod file;

#[cfg(loom)]
pub use loom::sync::atomic::AtomicU64;
#[cfg(not(loom))]
pub use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

use crate::status::{Error, Status};

/// Result of the ledger's calls.
pub type Result<T> = core::result::Result<T, Error>;

/// Where a UUID's claim starts looking for a slot: spreads claims so the
/// slot search stays short however many are live.
pub fn hint(uuid: &[u8; 16]) -> usize {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in uuid {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    // The remainder is a slot index: below NSLOTS, so it converts back.
    usize::try_from(h % NSLOTS_U64).unwrap_or(0)
}

/// Slots in a ledger file: room for this many live claims at once.
pub const NSLOTS: usize = 4096;
/// Slots a UUID's claim is looked for (and placed) from its hint before the
/// search widens to the whole ledger.
pub const PROBE: usize = 32;
/// The most pages the total (and so one claim) can hold: 35 bits (128
/// TiB of 4 KiB pages).
pub const MAX_PAGES: u64 = (1 << 35) - 1;
/// Largest pid a slot can record (23 bits): Linux's `pid_max` is at most
/// 2^22, illumos's `maxpid` at most 999,999.
pub const MAX_PID: u32 = (1 << 23) - 1;

const CLAIMED_BITS: u32 = 35;
const CLAIMED_MASK: u64 = (1 << CLAIMED_BITS) - 1;
const LAST_SHIFT: u32 = 35;
const LAST_MASK: u64 = (1 << 13) - 1;
const OP_SHIFT: u32 = 48;
const EPOCH_SHIFT: u32 = 49;
const EPOCH_MASK: u64 = (1 << 15) - 1;
/// [`NSLOTS`] as a `u64` (a const: `From` is not available there).
#[allow(clippy::as_conversions)]
const NSLOTS_U64: u64 = NSLOTS as u64;
static_assertions::const_assert!(NSLOTS_U64 <= LAST_MASK);

/// What the last change to a total did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A claim was added.
    Apply,
    /// A claim was taken out.
    Release,
}

/// The total word, unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Total {
    /// Pages claimed by admissions not yet committed or aborted.
    pub claimed: u64,
    /// The slot of the last apply or release (None after a repair).
    pub last: Option<(usize, Op)>,
    /// Bumped by every change.
    pub epoch: u64,
}

impl Total {
    fn unpack(w: u64) -> Result<Total> {
        let last = (w >> LAST_SHIFT) & LAST_MASK;
        let op = if (w >> OP_SHIFT) & 1 == 0 {
            Op::Apply
        } else {
            Op::Release
        };
        // The slot index + 1 (13 bits: always a usize).
        let last = match usize::try_from(last) {
            Ok(0) => None,
            Ok(n) if n <= NSLOTS => Some((n.saturating_sub(1), op)),
            _ => return Err(Error::new(Status::LedgerCorrupt)),
        };
        Ok(Total {
            claimed: w & CLAIMED_MASK,
            last,
            epoch: (w >> EPOCH_SHIFT) & EPOCH_MASK,
        })
    }

    fn pack(self) -> u64 {
        // The slot index + 1; an index is below NSLOTS, so neither the
        // conversion nor the addition can fail.
        let code = |i: usize| u64::try_from(i).map_or(0, |i| i.saturating_add(1));
        let (last, op) = match self.last {
            None => (0, 0),
            Some((i, Op::Apply)) => (code(i), 0),
            Some((i, Op::Release)) => (code(i), 1),
        };
        (self.claimed & CLAIMED_MASK)
            | ((last & LAST_MASK) << LAST_SHIFT)
            | (op << OP_SHIFT)
            | ((self.epoch & EPOCH_MASK) << EPOCH_SHIFT)
    }

    /// The next word: epoch bumped, claimed and last as given.
    fn next(self, claimed: u64, last: Option<(usize, Op)>) -> u64 {
        Total {
            claimed,
            last,
            epoch: self.epoch.wrapping_add(1) & EPOCH_MASK,
        }
        .pack()
    }
}

/// A slot's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// Unused.
    Free,
    /// Taken by its owner, fields being written; never in the total.
    Busy,
    /// Fields final; the owner is applying the claim to the total.
    Reserving,
    /// In the total.
    Claimed,
    /// Being taken out of the total (by a holder, or by whoever reclaims a
    /// dead holder's claim).
    Releasing,
}

impl SlotState {
    fn code(self) -> u64 {
        match self {
            SlotState::Free => 0,
            SlotState::Busy => 1,
            SlotState::Reserving => 2,
            SlotState::Claimed => 3,
            SlotState::Releasing => 4,
        }
    }

    fn from_code(c: u64) -> Option<SlotState> {
        Some(match c {
            0 => SlotState::Free,
            1 => SlotState::Busy,
            2 => SlotState::Reserving,
            3 => SlotState::Claimed,
            4 => SlotState::Releasing,
            _ => return None,
        })
    }
}

/// A slot's state word, unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Word {
    /// The state.
    pub state: SlotState,
    /// Taken outside its UUID's probe window (counted in the spill word).
    pub spill: bool,
    /// The taker's pid, in its own namespace (diagnostics only).
    pub pid: u32,
    /// Bumped each time the slot is taken.
    pub gen: u64,
}

const SPILL_BIT: u64 = 1 << 3;
const PID_SHIFT: u32 = 4;
const GEN_SHIFT: u32 = 27;
const GEN_MASK: u64 = (1 << 37) - 1;

impl Word {
    pub(crate) fn unpack(w: u64) -> Result<Word> {
        let state = SlotState::from_code(w & 7).ok_or(Error::new(Status::LedgerCorrupt))?;
        // Masked to 23 bits: always a u32.
        let pid = u32::try_from((w >> PID_SHIFT) & u64::from(MAX_PID)).unwrap_or(MAX_PID);
        let word = Word {
            state,
            spill: w & SPILL_BIT != 0,
            pid,
            gen: (w >> GEN_SHIFT) & GEN_MASK,
        };
        if state == SlotState::Free && (pid != 0 || word.spill) {
            return Err(Error::new(Status::LedgerCorrupt));
        }
        Ok(word)
    }

    pub(crate) fn pack(self) -> u64 {
        self.state.code()
            | if self.spill { SPILL_BIT } else { 0 }
            | (u64::from(self.pid & MAX_PID) << PID_SHIFT)
            | ((self.gen & GEN_MASK) << GEN_SHIFT)
    }

    pub(crate) fn with(self, state: SlotState) -> Word {
        Word { state, ..self }
    }

    fn freed(self) -> Word {
        Word {
            state: SlotState::Free,
            spill: false,
            pid: 0,
            gen: self.gen,
        }
    }
}

/// One slot: 64 bytes, a cache line, all atomics (the file is shared with
/// other processes, so every access is atomic).
#[repr(C, align(64))]
pub struct Slot {
    word: AtomicU64,
    origin: AtomicU64,
    pages: AtomicU64,
    uuid_hi: AtomicU64,
    uuid_lo: AtomicU64,
    since: AtomicU64,
    check: AtomicU64,
    pool: AtomicU64,
}

#[cfg(not(loom))]
static_assertions::const_assert_eq!(core::mem::size_of::<Slot>(), 64);

impl Slot {
    /// A free slot (for ledgers in memory: tests and model checking).
    pub fn new() -> Slot {
        Slot {
            word: AtomicU64::new(0),
            origin: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            uuid_hi: AtomicU64::new(0),
            uuid_lo: AtomicU64::new(0),
            since: AtomicU64::new(0),
            check: AtomicU64::new(0),
            pool: AtomicU64::new(0),
        }
    }

    /// Overwrite the raw state word: for tests that play a hostile file or
    /// a process that died mid-operation.
    #[doc(hidden)]
    pub fn poke_word(&self, raw: u64) {
        self.word.store(raw, Relaxed);
    }

    /// The raw state word.
    #[doc(hidden)]
    pub fn peek_word(&self) -> u64 {
        self.word.load(Relaxed)
    }
}

impl Default for Slot {
    fn default() -> Self {
        Slot::new()
    }
}

/// Which total a claim counts against.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pool {
    /// The reservoir's free memory: VMs created with `VCF_RESERVOIR_MEM`.
    Reservoir = 0,
    /// Room under the kernel's limit for transient memory: VMs created
    /// without the flag (vmmr_add refuses free + alloc + transient + new >
    /// limit).
    Transient = 1,
    /// ARC reservations of VMs running without the reservoir (OS-8005's
    /// arc_virt_machine_reserved): memory the ZFS ARC must leave them.
    Arc = 2,
}

/// Number of pools (totals) in a ledger.
pub const NPOOLS: usize = 3;

impl Pool {
    /// Every pool.
    pub const ALL: [Pool; NPOOLS] = [Pool::Reservoir, Pool::Transient, Pool::Arc];

    pub(crate) fn index(self) -> usize {
        match self {
            Pool::Reservoir => 0,
            Pool::Transient => 1,
            Pool::Arc => 2,
        }
    }

    fn raw(self) -> u64 {
        match self {
            Pool::Reservoir => 0,
            Pool::Transient => 1,
            Pool::Arc => 2,
        }
    }

    fn from_raw(v: u64) -> Option<Pool> {
        match v {
            0 => Some(Pool::Reservoir),
            1 => Some(Pool::Transient),
            2 => Some(Pool::Arc),
            _ => None,
        }
    }
}

/// A claim's fields, as read from a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimInfo {
    /// Slot index.
    pub slot: usize,
    /// The slot's state word when read.
    pub word: Word,
    /// State when read (`word.state`).
    pub state: SlotState,
    /// The taker's pid in its own namespace (diagnostics only).
    pub pid: u32,
    /// Where the taker ran: its zone id on illumos, 0 elsewhere
    /// (diagnostics only).
    pub origin: u64,
    /// The total it counts against.
    pub pool: Pool,
    /// Pages claimed.
    pub pages: u64,
    /// The VM's UUID.
    pub uuid: [u8; 16],
    /// Seconds since the epoch when claimed.
    pub since: u64,
    /// A durable claim ([`Ledger::claim_durable`]): its liveness is not a
    /// lock, and no lock-driven path takes it out.
    pub durable: bool,
}

/// Bit of a slot's pool word that marks a durable claim (ARC pool only).
/// A field like the others: written while BUSY, final from RESERVING on,
/// covered by the check word.
pub const DURABLE_BIT: u64 = 1 << 8;

/// Mixes a slot's fields into its check word, so a slot written by
/// something other than this code (or torn) is noticed.
fn check_of(w: Word, origin: u64, pages: u64, hi: u64, lo: u64, since: u64, pool: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in [u64::from(w.pid), w.gen, origin, pages, hi, lo, since, pool] {
        h ^= v;
        h = h.wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    }
    h
}

/// A claim the ledger refused: how much was missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Pages asked for.
    pub requested: u64,
    /// Pages already claimed by others in the same pool.
    pub claimed: u64,
    /// Pages the capacity reading allowed.
    pub capacity: u64,
    /// `claimed + requested - capacity`.
    pub shortfall: u64,
}

/// Outcome of a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// In the total, held in this slot.
    Claimed {
        /// The slot holding it.
        slot: usize,
        /// Pages other pending claims of the pool held when this one was
        /// applied.
        others: u64,
    },
    /// Not enough room.
    Refused(Refused),
}

/// What a reconcile found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Each pool's total before (indexed by `Pool as usize`).
    pub claimed_before: [u64; NPOOLS],
    /// Each pool's total after: the sum of its live claims.
    pub claimed_after: [u64; NPOOLS],
    /// Live claims counted.
    pub live_claims: u64,
    /// Slots of dead holders freed.
    pub reclaimed_slots: u64,
    /// Pages those dead holders held.
    pub reclaimed_pages: u64,
    /// Totals that did not match their slots and were set to them.
    pub repaired_totals: u64,
}

impl ReconcileReport {
    /// A pool's total after the repair.
    pub fn after(&self, pool: Pool) -> u64 {
        self.claimed_after.get(pool.index()).copied().unwrap_or(0)
    }
}

/// A slot's two lock bytes.
///
/// The taker locks *both* (one call: it fails if anyone holds either, so a
/// lock left on a free slot — an adopter's after the launcher committed —
/// keeps the slot from being taken rather than keeping the next claim in it
/// alive). A holder handing its claim over lets go of the adopter byte
/// ([`World::share`]) for the adopter to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The process that took the slot: both bytes, or the first after a
    /// hand-off.
    Holder,
    /// A process the claim was handed to (fork + exec): the second byte.
    Adopter,
}

/// The kernel as the protocol needs it: record locks on a slot's bytes and
/// the clock. The real one is the ledger file ([`file`](mod@file)); tests,
/// model checking and fuzzing substitute a world of their own.
pub trait World {
    /// Take this process's lock on `slot`'s byte for `role`: `Ok(false)`
    /// if another process (or another thread of this one) holds it.
    fn lock(&self, slot: usize, role: Role) -> Result<bool>;
    /// Drop this process's lock on `slot`'s byte(s) for `role`.
    fn unlock(&self, slot: usize, role: Role);
    /// As `slot`'s holder, let go of its adopter byte (a hand-off), keeping
    /// the holder byte.
    fn share(&self, slot: usize);
    /// Whether this process holds a lock on `slot` (either role).
    fn mine(&self, slot: usize) -> bool;
    /// Whether another process holds a lock on `slot` (either role). An
    /// error is an error: the caller must not take it for "no".
    fn others_hold(&self, slot: usize) -> Result<bool>;
    /// Whether any process, this one included, holds a lock on `slot`.
    fn held(&self, slot: usize) -> Result<bool> {
        Ok(self.mine(slot) || self.others_hold(slot)?)
    }
    /// This process's pid, recorded for diagnostics.
    fn pid(&self) -> u32;
    /// Where this process runs (zone id on illumos), for diagnostics.
    fn origin(&self) -> u64;
    /// Wall-clock seconds, for reports.
    fn now_secs(&self) -> u64;
}

/// The shared words: one total per pool, the spill count and the slots.
/// Backed by the mapped file, or by memory in tests.
pub struct Ledger<'a> {
    totals: [&'a AtomicU64; NPOOLS],
    spilled: &'a AtomicU64,
    slots: &'a [Slot],
}

fn corrupt() -> Error {
    Error::new(Status::LedgerCorrupt)
}

impl<'a> Ledger<'a> {
    /// A ledger over these words: one total per pool (indexed by `Pool as
    /// usize`), the count of spilled slots and the slots.
    pub fn new(
        totals: [&'a AtomicU64; NPOOLS],
        spilled: &'a AtomicU64,
        slots: &'a [Slot],
    ) -> Ledger<'a> {
        Ledger {
            totals,
            spilled,
            slots,
        }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the ledger has no slots (never, for a file).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// A pool's total, unpacked.
    pub fn total(&self, pool: Pool) -> Result<Total> {
        Total::unpack(self.total_word(pool).load(Acquire))
    }

    /// Pages claimed in a pool (a corrupt total reads as its raw bits'
    /// claimed field, which is what reports show).
    pub fn claimed(&self, pool: Pool) -> u64 {
        self.total_word(pool).load(Acquire) & CLAIMED_MASK
    }

    /// A pool's total word.
    fn total_word(&self, pool: Pool) -> &'a AtomicU64 {
        let [reservoir, transient, arc] = self.totals;
        match pool {
            Pool::Reservoir => reservoir,
            Pool::Transient => transient,
            Pool::Arc => arc,
        }
    }

    fn slot(&self, i: usize) -> Result<&Slot> {
        self.slots.get(i).ok_or(Error::new(Status::InvalidArgument))
    }

    fn word(&self, i: usize) -> Result<Word> {
        Word::unpack(self.slot(i)?.word.load(Acquire))
    }

    /// Whether slot `i` is free.
    pub fn is_free(&self, i: usize) -> Result<bool> {
        Ok(self.word(i)?.state == SlotState::Free)
    }

    /// Read a slot's claim consistently (its word unchanged across the
    /// read) and validate it; None if the slot is free or busy.
    pub fn read(&self, i: usize) -> Result<Option<ClaimInfo>> {
        let s = self.slot(i)?;
        loop {
            let w1 = s.word.load(Acquire);
            let w = Word::unpack(w1)?;
            if matches!(w.state, SlotState::Free | SlotState::Busy) {
                return Ok(None);
            }
            let origin = s.origin.load(Relaxed);
            let pages = s.pages.load(Relaxed);
            let hi = s.uuid_hi.load(Relaxed);
            let lo = s.uuid_lo.load(Relaxed);
            let since = s.since.load(Relaxed);
            let pool = s.pool.load(Relaxed);
            let check = s.check.load(Relaxed);
            if s.word.load(Acquire) != w1 {
                continue; // moved while we read; read again
            }
            let durable = pool & DURABLE_BIT != 0;
            let pool = match Pool::from_raw(pool & !DURABLE_BIT) {
                Some(p)
                    if check == check_of(w, origin, pages, hi, lo, since, pool)
                        && (!durable || p == Pool::Arc) =>
                {
                    p
                }
                _ => return Err(corrupt()),
            };
            if pages == 0 || pages > MAX_PAGES {
                return Err(corrupt());
            }
            let mut uuid = [0u8; 16];
            uuid[..8].copy_from_slice(&hi.to_be_bytes());
            uuid[8..].copy_from_slice(&lo.to_be_bytes());
            return Ok(Some(ClaimInfo {
                slot: i,
                word: w,
                state: w.state,
                pid: w.pid,
                origin,
                pool,
                pages,
                uuid,
                since,
                durable,
            }));
        }
    }

    /// Every claim in a slot that is reserving, claimed or releasing.
    pub fn claims(&self) -> Result<Vec<ClaimInfo>> {
        let mut v = Vec::new();
        for i in 0..self.slots.len() {
            if let Some(c) = self.read(i)? {
                v.push(c);
            }
        }
        Ok(v)
    }

    /// Move a slot from `from` to `to` if its word is exactly `from`.
    fn cas_slot(&self, s: &Slot, from: Word, to: Word) -> bool {
        s.word
            .compare_exchange(from.pack(), to.pack(), AcqRel, Acquire)
            .is_ok()
    }

    /// The slots a UUID's claim is placed in first (and looked for).
    fn window(&self, hint: usize) -> impl Iterator<Item = usize> {
        let n = self.slots.len();
        // hint % n first: a caller's hint near usize::MAX must not overflow
        // (found by the ledger_file fuzz target).
        let start = hint.checked_rem(n).unwrap_or(0);
        // start + k < 2n: no overflow.
        (0..PROBE.min(n)).map(move |k| start.saturating_add(k).checked_rem(n).unwrap_or(0))
    }

    /// Take a free slot for this process: its hint's window first, then
    /// (spilling) anywhere in the ledger, then again after reclaiming dead
    /// holders.
    fn take_slot(&self, world: &dyn World, hint: usize) -> Result<(usize, Word)> {
        let n = self.slots.len();
        let start = hint.checked_rem(n).unwrap_or(0);
        for round in 0..2 {
            if round == 1 {
                self.reclaim_all(world)?;
            }
            for i in self.window(hint) {
                if let Some(w) = self.try_take(world, i, false)? {
                    return Ok((i, w));
                }
            }
            for i in 0..n {
                // How far past the window's start, going round the ledger.
                let from_start = if i >= start {
                    i.saturating_sub(start)
                } else {
                    n.saturating_sub(start).saturating_add(i)
                };
                let spill = from_start >= PROBE;
                if let Some(w) = self.try_take(world, i, spill)? {
                    return Ok((i, w));
                }
            }
        }
        Err(Error::new(Status::LedgerFull))
    }

    fn try_take(&self, world: &dyn World, i: usize, spill: bool) -> Result<Option<Word>> {
        let s = self.slot(i)?;
        let w = Word::unpack(s.word.load(Relaxed))?;
        if w.state != SlotState::Free {
            return Ok(None);
        }
        // The lock first: from the moment the slot is ours, the kernel
        // knows we are alive.
        if !world.lock(i, Role::Holder)? {
            return Ok(None);
        }
        let busy = Word {
            state: SlotState::Busy,
            spill,
            pid: world.pid(),
            gen: w.gen.wrapping_add(1) & GEN_MASK,
        };
        if spill {
            // Counted before the slot is taken, so a lookup that misses in
            // the window already knows to widen.
            self.spilled.fetch_add(1, AcqRel);
        }
        if self.cas_slot(s, w, busy) {
            return Ok(Some(busy));
        }
        if spill {
            self.spilled.fetch_sub(1, AcqRel);
        }
        world.unlock(i, Role::Holder);
        Ok(None)
    }

    /// Free a slot this caller moved (or found) in state `from`, then drop
    /// this process's locks on it if it held them.
    fn free_slot(&self, i: usize, from: Word) -> bool {
        let freed = self
            .slots
            .get(i)
            .is_some_and(|s| self.cas_slot(s, from, from.freed()));
        if freed && from.spill {
            self.spilled.fetch_sub(1, AcqRel);
        }
        freed
    }

    fn drop_locks(&self, world: &dyn World, i: usize) {
        world.unlock(i, Role::Holder);
        world.unlock(i, Role::Adopter);
    }

    /// Help the operation a total names (move its slot on), so that every
    /// slot's effect on the total is told by its state alone.
    fn help(&self, pool: Pool, t: &Total) -> Result<()> {
        let Some((j, op)) = t.last else {
            return Ok(());
        };
        let s = self.slot(j).map_err(|_| corrupt())?;
        let raw = s.word.load(Acquire);
        let w = Word::unpack(raw)?;
        match (op, w.state) {
            (Op::Apply, SlotState::Reserving) | (Op::Release, SlotState::Releasing) => {
                // A slot of another pool: the operation named finished long
                // ago and the slot was reused since (reusing it in this
                // pool would have changed this total). Nothing to help.
                // The durable bit is not part of the pool.
                let p = s.pool.load(Relaxed) & !DURABLE_BIT;
                if Pool::from_raw(p) != Some(pool) {
                    return Ok(());
                }
                let to = if op == Op::Apply {
                    w.with(SlotState::Claimed)
                } else {
                    w.freed()
                };
                if self.cas_slot(s, w, to) && op == Op::Release && w.spill {
                    self.spilled.fetch_sub(1, AcqRel);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Claim `pages` of `pool` for VM `uuid`.
    ///
    /// `capacity` is asked for the pages available *after* each read of
    /// the pool's total (for admission: from a fresh reservoir query); the
    /// claim succeeds only if `claimed + pages <= capacity` for a capacity
    /// read after the total the CAS replaces. Before refusing, dead holders
    /// of the pool are reclaimed and the total is checked against its
    /// slots, and the claim is tried once more.
    pub fn claim(
        &self,
        world: &dyn World,
        uuid: [u8; 16],
        pool: Pool,
        pages: u64,
        hint: usize,
        capacity: &mut dyn FnMut() -> Result<u64>,
    ) -> Result<ClaimOutcome> {
        self.claim_as(world, uuid, pool, pages, hint, capacity, false)
    }

    /// Claim `pages` of the ARC pool for VM `uuid` as a **durable** claim:
    /// made like any claim (its maker's lock guards it while BUSY and
    /// RESERVING, so a maker that dies half-way leaves nothing), but once
    /// CLAIMED the maker drops its locks and the claim outlives it. No
    /// lock-driven path (a refused claim's reclaim, a full ledger,
    /// reconcile) ever takes it out; only [`Ledger::release_durable`]
    /// does. It counts in the total exactly like any other claim.
    pub fn claim_durable(
        &self,
        world: &dyn World,
        uuid: [u8; 16],
        pages: u64,
        hint: usize,
        capacity: &mut dyn FnMut() -> Result<u64>,
    ) -> Result<ClaimOutcome> {
        let out = self.claim_as(world, uuid, Pool::Arc, pages, hint, capacity, true)?;
        if let ClaimOutcome::Claimed { slot, .. } = out {
            // CLAIMED (ours or helped): from here its liveness is not ours.
            self.drop_locks(world, slot);
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn claim_as(
        &self,
        world: &dyn World,
        uuid: [u8; 16],
        pool: Pool,
        pages: u64,
        hint: usize,
        capacity: &mut dyn FnMut() -> Result<u64>,
        durable: bool,
    ) -> Result<ClaimOutcome> {
        if pages == 0 || pages > MAX_PAGES || (durable && pool != Pool::Arc) {
            return Err(Error::new(Status::InvalidArgument));
        }
        let (i, busy) = self.take_slot(world, hint)?;
        let s = self.slot(i)?;
        let hi = u64::from_be_bytes(uuid[..8].try_into().unwrap_or_default());
        let lo = u64::from_be_bytes(uuid[8..].try_into().unwrap_or_default());
        let since = world.now_secs();
        let origin = world.origin();
        let pool_raw = pool.raw() | if durable { DURABLE_BIT } else { 0 };
        s.origin.store(origin, Relaxed);
        s.pages.store(pages, Relaxed);
        s.uuid_hi.store(hi, Relaxed);
        s.uuid_lo.store(lo, Relaxed);
        s.since.store(since, Relaxed);
        s.pool.store(pool_raw, Relaxed);
        s.check.store(
            check_of(busy, origin, pages, hi, lo, since, pool_raw),
            Relaxed,
        );
        let reserving = busy.with(SlotState::Reserving);
        // AcqRel: the fields above are visible to whoever sees RESERVING.
        if !self.cas_slot(s, busy, reserving) {
            // Only a hostile writer moves a live holder's slot.
            self.drop_locks(world, i);
            return Err(corrupt());
        }
        let result = self.apply(world, i, reserving, pool, pages, capacity);
        match result {
            Ok(ClaimOutcome::Claimed { .. }) => {}
            _ => {
                // Never applied. A total that (falsely) named this slot may
                // have had it helped to CLAIMED: free it from there too, or
                // a later reclaim would take out pages never put in.
                if !self.free_slot(i, reserving) {
                    self.free_slot(i, reserving.with(SlotState::Claimed));
                }
                self.drop_locks(world, i);
            }
        }
        result
    }

    /// Apply slot `i`'s claim to its pool's total (the slot is RESERVING
    /// and ours), with one retry after reclaiming if it does not fit.
    fn apply(
        &self,
        world: &dyn World,
        i: usize,
        reserving: Word,
        pool: Pool,
        pages: u64,
        capacity: &mut dyn FnMut() -> Result<u64>,
    ) -> Result<ClaimOutcome> {
        let total = self.total_word(pool);
        let mut retried = false;
        loop {
            let raw = total.load(Acquire);
            let t = Total::unpack(raw)?;
            if t.last == Some((i, Op::Apply)) {
                // Our claim is not in the total yet: a word that says it
                // is was not written by this protocol.
                return Err(corrupt());
            }
            self.help(pool, &t)?;
            // The capacity reading is taken after the total it is checked
            // against: the heart of the protocol.
            let cap = capacity()?;
            // Both below 2^35: cannot saturate.
            let want = t.claimed.saturating_add(pages);
            if want > cap || want > MAX_PAGES {
                if !retried {
                    // Refuse only after the claims in the way were checked
                    // alive and the total against them.
                    retried = true;
                    self.reclaim_pool(world, Some(pool))?;
                    self.check_total(pool)?;
                    continue;
                }
                return Ok(ClaimOutcome::Refused(Refused {
                    requested: pages,
                    claimed: t.claimed,
                    capacity: cap,
                    shortfall: want.saturating_sub(cap).max(1),
                }));
            }
            let new = t.next(want, Some((i, Op::Apply)));
            if total.compare_exchange(raw, new, AcqRel, Acquire).is_ok() {
                // Someone may already have helped us to CLAIMED.
                let s = self.slot(i)?;
                if !self.cas_slot(s, reserving, reserving.with(SlotState::Claimed))
                    && self.word(i)? != reserving.with(SlotState::Claimed)
                {
                    return Err(corrupt());
                }
                return Ok(ClaimOutcome::Claimed {
                    slot: i,
                    others: t.claimed,
                });
            }
        }
    }

    /// Take claim `slot`, in state `from` (CLAIMED or RELEASING), out of
    /// its pool's total and free the slot. Whoever calls it (a holder, or a
    /// reclaimer of a dead holder's claim) may be racing others doing the
    /// same: the total is lowered once, by the CAS that names the slot.
    fn finish_release(&self, i: usize, releasing: Word, pool: Pool, pages: u64) -> Result<()> {
        let total = self.total_word(pool);
        loop {
            let raw = total.load(Acquire);
            let t = Total::unpack(raw)?;
            if t.last == Some((i, Op::Release)) {
                break; // applied (by us or a concurrent reclaimer)
            }
            self.help(pool, &t)?;
            if self.word(i)? != releasing {
                return Ok(()); // someone else finished it
            }
            let Some(left) = t.claimed.checked_sub(pages) else {
                return Err(corrupt());
            };
            let new = t.next(left, Some((i, Op::Release)));
            if total.compare_exchange(raw, new, AcqRel, Acquire).is_ok() {
                break;
            }
        }
        let s = self.slot(i)?;
        if self.cas_slot(s, releasing, releasing.freed()) && releasing.spill {
            self.spilled.fetch_sub(1, AcqRel);
        }
        Ok(())
    }

    /// Take claim `slot` (held by this process) out of its pool's total:
    /// commit or abort. Returns the pages it held.
    pub fn release(&self, world: &dyn World, slot: usize) -> Result<u64> {
        let info = self.read(slot)?.ok_or(Error::new(Status::NotFound))?;
        if info.state != SlotState::Claimed {
            return Err(Error::new(Status::NotFound));
        }
        if !world.mine(slot) {
            return Err(Error::new(Status::NotHolder));
        }
        let releasing = info.word.with(SlotState::Releasing);
        if !self.cas_slot(self.slot(slot)?, info.word, releasing) {
            return Err(Error::new(Status::NotFound));
        }
        let r = self.finish_release(slot, releasing, info.pool, info.pages);
        if r.is_ok() {
            self.drop_locks(world, slot);
        }
        r.map(|()| info.pages)
    }

    /// Take durable claim `slot`, last seen as `seen` (its word, the
    /// generation included), out of the ARC total and free the slot. Needs
    /// no lock: whoever may write the ledger decides (an explicit release,
    /// or a reconcile that found its VM gone). A claim that moved since
    /// `seen` (released, or the slot retaken) is `NotFound`, so a stale
    /// decision frees nothing; racing releasers take it out once.
    pub fn release_durable(&self, slot: usize, seen: Word) -> Result<u64> {
        let c = self.read(slot)?.ok_or(Error::new(Status::NotFound))?;
        if !c.durable || c.word != seen || c.state != SlotState::Claimed {
            return Err(Error::new(Status::NotFound));
        }
        let releasing = seen.with(SlotState::Releasing);
        if !self.cas_slot(self.slot(slot)?, seen, releasing) {
            return Err(Error::new(Status::NotFound));
        }
        self.finish_release(slot, releasing, c.pool, c.pages)?;
        Ok(c.pages)
    }

    /// Take slot `i` out if its holder is dead, as the reclaim of a refused
    /// claim would (a durable CLAIMED slot is kept; one whose total names
    /// it is helped first). `None` if it lives, was kept or moved.
    pub fn reclaim_slot(&self, world: &dyn World, i: usize) -> Result<Option<u64>> {
        self.reclaim(world, i)
    }

    /// Reclaim slot `i` if its holder is dead; returns the pages it held
    /// (0 if it held none or lives).
    fn reclaim(&self, world: &dyn World, i: usize) -> Result<Option<u64>> {
        let w = self.word(i)?;
        if w.state == SlotState::Free || world.held(i)? {
            return Ok(None);
        }
        if w.state == SlotState::Busy {
            // Never in a total.
            return Ok(self.free_slot(i, w).then_some(0));
        }
        let Some(c) = self.read(i)? else {
            return Ok(None);
        };
        if c.word != w {
            return Ok(None); // moved since: look again next time
        }
        if c.durable && w.state == SlotState::Claimed {
            // Its liveness is not a lock: never taken out for a missing one.
            return Ok(None);
        }
        let t = self.total(c.pool)?;
        match w.state {
            SlotState::Reserving => {
                if t.last == Some((i, Op::Apply)) {
                    // Applied: finish it, then release it as a claim.
                    self.help(c.pool, &t)?;
                    return self.reclaim(world, i);
                }
                // Not applied (only the word could say so): just free.
                Ok(self.free_slot(i, w).then_some(0))
            }
            SlotState::Claimed => {
                let releasing = w.with(SlotState::Releasing);
                if !self.cas_slot(self.slot(i)?, w, releasing) {
                    return Ok(None);
                }
                self.finish_release(i, releasing, c.pool, c.pages)?;
                Ok(Some(c.pages))
            }
            SlotState::Releasing => {
                // A holder or a reclaimer died half-way: finish it.
                self.finish_release(i, w, c.pool, c.pages)?;
                Ok(Some(c.pages))
            }
            SlotState::Free | SlotState::Busy => Ok(None),
        }
    }

    /// Reclaim every dead holder's slot of `pool` (all pools with None).
    fn reclaim_pool(&self, world: &dyn World, pool: Option<Pool>) -> Result<(u64, u64)> {
        let (mut slots, mut pages) = (0u64, 0u64);
        for i in 0..self.slots.len() {
            let w = self.word(i)?;
            if w.state == SlotState::Free {
                continue;
            }
            if let (Some(p), SlotState::Reserving | SlotState::Claimed | SlotState::Releasing) =
                (pool, w.state)
            {
                let raw = self.slot(i)?.pool.load(Relaxed) & !DURABLE_BIT;
                if Pool::from_raw(raw) != Some(p) {
                    continue;
                }
            }
            if let Some(n) = self.reclaim(world, i)? {
                slots = slots.saturating_add(1);
                pages = pages.saturating_add(n);
            }
        }
        Ok((slots, pages))
    }

    fn reclaim_all(&self, world: &dyn World) -> Result<(u64, u64)> {
        self.reclaim_pool(world, None)
    }

    /// Check `pool`'s total against its slots, read between two identical
    /// readings of the total (nothing that changes the sum can happen
    /// without changing the total), and repair it with one CAS if they
    /// differ. Returns whether it was repaired.
    pub fn check_total(&self, pool: Pool) -> Result<bool> {
        let total = self.total_word(pool);
        for _ in 0..1000 {
            let raw = total.load(Acquire);
            let t = Total::unpack(raw)?;
            self.help(pool, &t)?;
            let mut sum = 0u64;
            for i in 0..self.slots.len() {
                let Some(c) = self.read(i)? else { continue };
                if c.pool != pool {
                    continue;
                }
                let counts = match c.state {
                    SlotState::Claimed => true,
                    SlotState::Reserving => t.last == Some((i, Op::Apply)),
                    SlotState::Releasing => t.last != Some((i, Op::Release)),
                    SlotState::Free | SlotState::Busy => false,
                };
                if counts {
                    sum = sum.saturating_add(c.pages);
                }
            }
            if total.load(Acquire) != raw {
                continue; // changed during the scan: look again
            }
            if sum == t.claimed {
                return Ok(false);
            }
            if sum > MAX_PAGES {
                return Err(corrupt());
            }
            if total
                .compare_exchange(raw, t.next(sum, None), AcqRel, Acquire)
                .is_ok()
            {
                return Ok(true);
            }
        }
        // The total changed on every pass: claims are flowing, so it is
        // being kept, not stuck.
        Err(Error::new(Status::Busy))
    }

    /// Reclaim every dead holder's claim and check every total against
    /// the slots (repairing one that does not add up). Safe at any time,
    /// beside any number of claimants, releasers and other reconcilers:
    /// each change is a CAS against the exact word it was computed from.
    pub fn reconcile(&self, world: &dyn World) -> Result<ReconcileReport> {
        let mut report = ReconcileReport::default();
        for (before, p) in report.claimed_before.iter_mut().zip(Pool::ALL) {
            *before = self.claimed(p);
        }
        let (slots, pages) = self.reclaim_all(world)?;
        report.reclaimed_slots = slots;
        report.reclaimed_pages = pages;
        for (after, p) in report.claimed_after.iter_mut().zip(Pool::ALL) {
            if self.check_total(p)? {
                report.repaired_totals = report.repaired_totals.saturating_add(1);
            }
            *after = self.claimed(p);
        }
        for i in 0..self.slots.len() {
            if let Some(c) = self.read(i)? {
                if matches!(c.state, SlotState::Claimed | SlotState::Releasing) {
                    report.live_claims = report.live_claims.saturating_add(1);
                }
            }
        }
        Ok(report)
    }

    /// The claim for `uuid` in one of `pools`, if any: its hint's window,
    /// and the whole ledger only while some claim is spilled.
    pub fn find(&self, uuid: &[u8; 16], hint: usize, pools: &[Pool]) -> Result<Option<ClaimInfo>> {
        let hit = |c: &ClaimInfo| &c.uuid == uuid && pools.contains(&c.pool);
        for i in self.window(hint) {
            if let Some(c) = self.read(i)? {
                if hit(&c) {
                    return Ok(Some(c));
                }
            }
        }
        if self.spilled.load(Acquire) == 0 {
            return Ok(None);
        }
        for i in 0..self.slots.len() {
            if let Some(c) = self.read(i)? {
                if hit(&c) {
                    return Ok(Some(c));
                }
            }
        }
        Ok(None)
    }

    /// Become a holder of claim `slot`, last seen as `word`, handed over by
    /// another process (fork + exec) or by this process before an exec
    /// (`inherited`: its holder lock survived the exec). Fails with
    /// NotFound if the claim is gone or nobody held it any more.
    pub fn adopt(
        &self,
        world: &dyn World,
        slot: usize,
        gen: u64,
        uuid: &[u8; 16],
        inherited: bool,
    ) -> Result<ClaimInfo> {
        let role = if inherited {
            Role::Holder
        } else {
            Role::Adopter
        };
        let c = self.read(slot)?.ok_or(Error::new(Status::NotFound))?;
        if &c.uuid != uuid || c.word.gen != gen || c.durable {
            return Err(Error::new(Status::NotFound));
        }
        if !world.lock(slot, role)? {
            return Err(Error::new(Status::Busy));
        }
        // After our lock: still the same claim, and (handed over by another
        // process) still held by it — else a reclaimer may have found it
        // dead before our lock was there, and is taking it.
        let checked = (|| -> Result<bool> {
            let same = matches!(self.read(slot)?, Some(a) if a.word == c.word);
            Ok(same && (inherited || world.others_hold(slot)?))
        })();
        match checked {
            Ok(true) => Ok(c),
            // An error asking is an error, not "nobody holds it".
            Ok(false) | Err(_) => {
                world.unlock(slot, role);
                checked.and(Err(Error::new(Status::NotFound)))
            }
        }
    }
}

/// Read-only views for operators (`vmmresvadm claims`, `reconcile -n`,
/// `check`): nothing here takes a lock, moves a slot or changes a total.
impl Ledger<'_> {
    /// What [`Ledger::reconcile`] would find and do now, without doing it:
    /// a slot in use whose lock bytes no process holds (the kernel's record
    /// locks, as for a real reconcile) counts as reclaimed, and a total that
    /// would not equal the sum of the live claims after that as repaired.
    /// Read between two identical readings of the totals; BUSY if they
    /// changed on every one of many tries.
    pub fn reconcile_preview(&self, world: &dyn World) -> Result<ReconcileReport> {
        'again: for _ in 0..1000 {
            let mut raws = [0u64; NPOOLS];
            let mut totals = [Total::unpack(0)?; NPOOLS];
            for ((raw, t), p) in raws.iter_mut().zip(totals.iter_mut()).zip(Pool::ALL) {
                *raw = self.total_word(p).load(Acquire);
                *t = Total::unpack(*raw)?;
            }
            let mut report = ReconcileReport::default();
            let mut dead_counting = [0u64; NPOOLS];
            for i in 0..self.slots.len() {
                let w = self.word(i)?;
                if w.state == SlotState::Free {
                    continue;
                }
                let live = world.held(i)?;
                let Some(c) = self.read(i)? else {
                    // Busy: never in a total; a dead taker's is freed.
                    if !live {
                        report.reclaimed_slots = report.reclaimed_slots.saturating_add(1);
                    }
                    continue;
                };
                let t = totals.get(c.pool.index()).ok_or_else(corrupt)?;
                let counts = match c.state {
                    SlotState::Claimed => true,
                    SlotState::Reserving => t.last == Some((i, Op::Apply)),
                    SlotState::Releasing => t.last != Some((i, Op::Release)),
                    SlotState::Free | SlotState::Busy => false,
                };
                // A durable claim's liveness is not a lock: reclaim keeps it
                // once CLAIMED, and helps one whose total names it to CLAIMED.
                let live = live
                    || (c.durable
                        && matches!(c.state, SlotState::Claimed | SlotState::Reserving)
                        && counts);
                let k = c.pool.index();
                if live {
                    if counts {
                        report.live_claims = report.live_claims.saturating_add(1);
                        if let Some(a) = report.claimed_after.get_mut(k) {
                            *a = a.saturating_add(c.pages);
                        }
                    }
                    continue;
                }
                report.reclaimed_slots = report.reclaimed_slots.saturating_add(1);
                if counts || c.state == SlotState::Releasing {
                    report.reclaimed_pages = report.reclaimed_pages.saturating_add(c.pages);
                }
                if counts {
                    if let Some(d) = dead_counting.get_mut(k) {
                        *d = d.saturating_add(c.pages);
                    }
                }
            }
            for (p, raw) in Pool::ALL.iter().zip(raws) {
                if self.total_word(*p).load(Acquire) != raw {
                    continue 'again; // changed during the scan
                }
            }
            for (k, t) in totals.iter().enumerate() {
                let before = t.claimed;
                let left = before.saturating_sub(dead_counting.get(k).copied().unwrap_or(0));
                if let Some(b) = report.claimed_before.get_mut(k) {
                    *b = before;
                }
                if report.claimed_after.get(k).copied() != Some(left) {
                    report.repaired_totals = report.repaired_totals.saturating_add(1);
                }
            }
            return Ok(report);
        }
        Err(Error::new(Status::Busy))
    }
}

#[cfg(all(test, not(loom)))]
// Tests may panic, index and compute freely: a failure is a test failure.
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions
)]
mod tests;

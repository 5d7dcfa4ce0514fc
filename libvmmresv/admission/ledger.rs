//! The cross-process claim ledger: fixed slots and one total, in a shared
//! file every admitting process maps.
//!
//! # The race it closes (RFD 185)
//! Two VMs boot at once, both query the reservoir, both see room, both
//! launch, one dies. A claim here is checked against a reservoir reading
//! taken *after* the ledger state it is applied to, and applied by a CAS on
//! one word that holds the claimed total and an epoch. Any change to the
//! ledger bumps the epoch, so a claim computed from a reading older than the
//! latest change fails its CAS and reads again. Why that is enough: the
//! reservoir's free memory only falls when a VM allocates, and a VM
//! allocates only after its claim is in the total and is dropped from the
//! total (commit) only after it allocated. So at the instant of a
//! successful CAS, `claimed + request <= free` held for a `free` read after
//! the last change to `claimed`: pending claims never exceed free memory.
//! (The window between a VM's allocation and its commit counts it twice —
//! conservative, never over-admitting.)
//!
//! # The total word `G`
//! `frozen:1 | epoch:27 | claimed:36` (claimed in 4 KiB pages: up to 256
//! TiB). The epoch wraps after 2^27 changes; a CAS could only be fooled by
//! exactly a multiple of 134 million changes, all between one claimant's
//! load and its CAS, ending on the same total.
//!
//! # Slots
//! 64 bytes each: a state word `state:3 | pid:23 | gen:38` and the claim's
//! fields (owner start time, pages, VM UUID, time, check). States:
//! `FREE → BUSY` (a CAS that names the owner pid; fields are written while
//! BUSY) `→ RESERVING` (fields final; the owner's CAS on G may or may not
//! have happened) `→ CLAIMED → RELEASING → FREE`. A refused claim goes
//! `RESERVING → FREE`. Only the owner moves its slot, except reconcile.
//!
//! # Dead claimants: reconcile
//! A process that dies mid-operation can leave a slot whose effect on G is
//! unknown (it died between its CAS and the slot update). Reclaiming is
//! therefore not a per-slot undo but a recomputation: the reconciler sets
//! the frozen bit in G (every CAS on G now fails, so live claimants and
//! releasers roll their slot back to a stable state and wait), waits until
//! no live owner is mid-operation, frees the slots of dead owners, and
//! writes G = the sum of the live CLAIMED slots with a new epoch. A
//! reconciler that dies is replaced after its pid is gone or its stamp is
//! older than [`STALE_RECONCILE_MS`].
//!
//! # Hostile files
//! Every word read is validated: an unknown state, a pid or page count out
//! of range, a slot whose check word does not match, or a total that does
//! not add up is [`Status::LedgerCorrupt`] — never a crash, never a reason
//! to admit. (A file truncated *after* it was mapped would raise SIGBUS;
//! only its owner can do that, and the open checks the owner.)

#[cfg(loom)]
pub use loom::sync::atomic::AtomicU64;
#[cfg(not(loom))]
pub use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

use super::owner::{self, Owner};
use crate::status::{Error, Status};

/// Result of the ledger's calls.
pub type Result<T> = core::result::Result<T, Error>;

/// Slots in a ledger file: room for this many live claims at once.
pub const NSLOTS: usize = 8192;
/// The most pages the total (and so one claim) can hold: 36 bits.
pub const MAX_PAGES: u64 = (1 << 36) - 1;
/// A reconciler stamp older than this is presumed dead even if its pid
/// exists (pid reuse). A live reconciler gives up after
/// [`RECONCILE_WAIT_MS`], far sooner.
pub const STALE_RECONCILE_MS: u64 = 10_000;
/// How long a reconciler waits for live owners to finish an operation.
pub const RECONCILE_WAIT_MS: u64 = 2_000;
/// How long a claimant waits for a reconcile to finish before giving up
/// with `Status::Busy`.
pub const FROZEN_WAIT_MS: u64 = 5_000;

const FROZEN: u64 = 1 << 63;
const CLAIMED_BITS: u32 = 36;
const CLAIMED_MASK: u64 = (1 << CLAIMED_BITS) - 1;
const EPOCH_MASK: u64 = (1 << 27) - 1;

/// The total word, unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Total {
    /// A reconcile is in progress: no claim or release can complete.
    pub frozen: bool,
    /// Bumped by every change.
    pub epoch: u64,
    /// Pages claimed by admissions not yet committed or aborted.
    pub claimed: u64,
}

impl Total {
    fn unpack(w: u64) -> Total {
        Total {
            frozen: w & FROZEN != 0,
            epoch: (w >> CLAIMED_BITS) & EPOCH_MASK,
            claimed: w & CLAIMED_MASK,
        }
    }

    fn pack(self) -> u64 {
        (if self.frozen { FROZEN } else { 0 })
            | ((self.epoch & EPOCH_MASK) << CLAIMED_BITS)
            | (self.claimed & CLAIMED_MASK)
    }

    /// The next state: epoch bumped, claimed as given.
    fn next(self, claimed: u64, frozen: bool) -> Total {
        Total {
            frozen,
            epoch: (self.epoch + 1) & EPOCH_MASK,
            claimed,
        }
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
    /// The owner is taking the claim out of the total.
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

    /// Mid-operation: the owner's effect on the total is in flux.
    fn transitional(self) -> bool {
        matches!(self, SlotState::Reserving | SlotState::Releasing)
    }
}

/// A slot's state word, unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Word {
    state: SlotState,
    pid: u32,
    gen: u64,
}

const GEN_SHIFT: u32 = 26;
const GEN_MASK: u64 = (1 << 38) - 1;

impl Word {
    fn unpack(w: u64) -> Result<Word> {
        let state = SlotState::from_code(w & 7).ok_or(Error::new(Status::LedgerCorrupt))?;
        let pid = ((w >> 3) & u64::from(owner::MAX_PID)) as u32;
        let gen = (w >> GEN_SHIFT) & GEN_MASK;
        if state == SlotState::Free && pid != 0 {
            return Err(Error::new(Status::LedgerCorrupt));
        }
        if state != SlotState::Free && pid == 0 {
            return Err(Error::new(Status::LedgerCorrupt));
        }
        Ok(Word { state, pid, gen })
    }

    fn pack(self) -> u64 {
        self.state.code() | (u64::from(self.pid) << 3) | ((self.gen & GEN_MASK) << GEN_SHIFT)
    }

    fn with(self, state: SlotState) -> Word {
        Word { state, ..self }
    }
}

/// One slot: 64 bytes, a cache line, all atomics (the file is shared with
/// other processes, so every access is atomic).
#[repr(C, align(64))]
pub struct Slot {
    word: AtomicU64,
    start: AtomicU64,
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
            start: AtomicU64::new(0),
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
    /// Both pools.
    pub const ALL: [Pool; NPOOLS] = [Pool::Reservoir, Pool::Transient, Pool::Arc];

    fn index(self) -> usize {
        self as usize
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
    /// State when read.
    pub state: SlotState,
    /// Who holds it.
    pub owner: Owner,
    /// The total it counts against.
    pub pool: Pool,
    /// Pages claimed.
    pub pages: u64,
    /// The VM's UUID.
    pub uuid: [u8; 16],
    /// Seconds since the epoch when claimed.
    pub since: u64,
}

/// Mixes a slot's fields into its check word, so a slot written by
/// something other than this code (or torn) is noticed.
fn check_of(w: Word, start: u64, pages: u64, hi: u64, lo: u64, since: u64, pool: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in [u64::from(w.pid), w.gen, start, pages, hi, lo, since, pool] {
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
    /// Slots of dead owners freed.
    pub reclaimed_slots: u64,
    /// Pages those dead owners held.
    pub reclaimed_pages: u64,
}

/// One pass over the ledger, as admission needs it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Survey {
    /// Some slot's owner is dead: a reconcile would reclaim something.
    pub dead_owners: bool,
    /// A total is frozen and no live reconciler is working on it.
    pub stalled: bool,
    /// The claim for the UUID asked about, if one is live.
    pub found: Option<ClaimInfo>,
}

/// How the protocol asks whether an owner lives and what time it is; the
/// real one reads /proc and the clock, tests substitute their own.
pub trait World {
    /// Is this exact process alive?
    fn alive(&self, owner: Owner) -> bool;
    /// Is any process with this pid alive (start time unknown)?
    fn pid_exists(&self, pid: u32) -> bool;
    /// Monotonic milliseconds, shared by all processes of the host.
    fn now_ms(&self) -> u64;
    /// Wall-clock seconds, for reports.
    fn now_secs(&self) -> u64;
    /// Wait a little (a reconcile is running).
    fn pause(&self);
}

/// The host: /proc and the system clocks.
pub struct Host;

impl World for Host {
    fn alive(&self, o: Owner) -> bool {
        o.is_alive()
    }

    fn pid_exists(&self, pid: u32) -> bool {
        owner::pid_exists(pid)
    }

    fn now_ms(&self) -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        (ts.tv_sec as u64).saturating_mul(1000) + (ts.tv_nsec as u64) / 1_000_000
    }

    fn now_secs(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn pause(&self) {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// The shared words: one total per pool, the reconciler stamp, and the
/// slots. Backed by the mapped file, or by memory in tests.
pub struct Ledger<'a> {
    totals: [&'a AtomicU64; NPOOLS],
    reconciler: &'a AtomicU64,
    slots: &'a [Slot],
}

/// A reconciler stamp: `pid:23 | monotonic ms:41`.
fn stamp(pid: u32, ms: u64) -> u64 {
    u64::from(pid) | ((ms & ((1 << 41) - 1)) << 23)
}

fn unstamp(s: u64) -> (u32, u64) {
    ((s & u64::from(owner::MAX_PID)) as u32, s >> 23)
}

impl<'a> Ledger<'a> {
    /// A ledger over these words: one total per pool (indexed by `Pool as
    /// usize`), the reconciler stamp and the slots.
    pub fn new(
        totals: [&'a AtomicU64; NPOOLS],
        reconciler: &'a AtomicU64,
        slots: &'a [Slot],
    ) -> Ledger<'a> {
        Ledger {
            totals,
            reconciler,
            slots,
        }
    }

    /// A pool's total.
    pub fn total(&self, pool: Pool) -> Total {
        Total::unpack(self.totals[pool.index()].load(Acquire))
    }

    fn slot(&self, i: usize) -> Result<&Slot> {
        self.slots.get(i).ok_or(Error::new(Status::InvalidArgument))
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
            let start = s.start.load(Relaxed);
            let pages = s.pages.load(Relaxed);
            let hi = s.uuid_hi.load(Relaxed);
            let lo = s.uuid_lo.load(Relaxed);
            let since = s.since.load(Relaxed);
            let pool = s.pool.load(Relaxed);
            let check = s.check.load(Relaxed);
            if s.word.load(Acquire) != w1 {
                continue; // moved while we read; read again
            }
            let pool_ok = Pool::from_raw(pool);
            if check != check_of(w, start, pages, hi, lo, since, pool)
                || pages == 0
                || pages > MAX_PAGES
                || pool_ok.is_none()
            {
                return Err(Error::new(Status::LedgerCorrupt));
            }
            let mut uuid = [0u8; 16];
            uuid[..8].copy_from_slice(&hi.to_be_bytes());
            uuid[8..].copy_from_slice(&lo.to_be_bytes());
            return Ok(Some(ClaimInfo {
                slot: i,
                state: w.state,
                owner: Owner { pid: w.pid, start },
                pool: pool_ok.unwrap_or(Pool::Reservoir),
                pages,
                uuid,
                since,
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

    /// Take a free slot for `me`, searching from `hint`.
    fn take_slot(&self, me: Owner, hint: usize) -> Result<(usize, Word)> {
        let n = self.slots.len();
        for k in 0..n {
            // hint % n first: a caller's hint near usize::MAX must not overflow
            // (found by the ledger_file fuzz target).
            let i = (hint % n + k) % n;
            let s = &self.slots[i];
            let w = Word::unpack(s.word.load(Relaxed))?;
            if w.state != SlotState::Free {
                continue;
            }
            let busy = Word {
                state: SlotState::Busy,
                pid: me.pid,
                gen: (w.gen + 1) & GEN_MASK,
            };
            if self.cas_slot(s, w, busy) {
                return Ok((i, busy));
            }
        }
        Err(Error::new(Status::LedgerFull))
    }

    /// Wait while `pool`'s total is frozen by a reconcile; Busy if it stays
    /// frozen too long (admission then reconciles itself if the reconciler
    /// is gone: see [`Ledger::survey`]).
    fn wait_unfrozen(&self, world: &dyn World, pool: Pool) -> Result<Total> {
        let t0 = world.now_ms();
        loop {
            let t = self.total(pool);
            if !t.frozen {
                return Ok(t);
            }
            if world.now_ms().saturating_sub(t0) > FROZEN_WAIT_MS {
                return Err(Error::new(Status::Busy));
            }
            world.pause();
        }
    }

    /// Claim `pages` of `pool` for VM `uuid`, owned by `me`.
    ///
    /// `capacity` is asked for the pages available *after* each read of
    /// the pool's total (for admission: from a fresh reservoir query); the
    /// claim succeeds only if `claimed + pages <= capacity` for a capacity
    /// read after the total the CAS replaces.
    #[allow(clippy::too_many_arguments)]
    pub fn claim(
        &self,
        world: &dyn World,
        me: Owner,
        uuid: [u8; 16],
        pool: Pool,
        pages: u64,
        hint: usize,
        capacity: &mut dyn FnMut() -> Result<u64>,
    ) -> Result<ClaimOutcome> {
        if pages == 0 || pages > MAX_PAGES {
            return Err(Error::new(Status::InvalidArgument));
        }
        let total = self.totals[pool.index()];
        let (i, busy) = self.take_slot(me, hint)?;
        let s = &self.slots[i];
        let hi = u64::from_be_bytes(uuid[..8].try_into().unwrap_or_default());
        let lo = u64::from_be_bytes(uuid[8..].try_into().unwrap_or_default());
        let since = world.now_secs();
        let pool_raw = pool as u64;
        s.start.store(me.start, Relaxed);
        s.pages.store(pages, Relaxed);
        s.uuid_hi.store(hi, Relaxed);
        s.uuid_lo.store(lo, Relaxed);
        s.since.store(since, Relaxed);
        s.pool.store(pool_raw, Relaxed);
        s.check.store(
            check_of(busy, me.start, pages, hi, lo, since, pool_raw),
            Relaxed,
        );
        let reserving = busy.with(SlotState::Reserving);
        // AcqRel: the fields above are visible to whoever sees RESERVING.
        if !self.cas_slot(s, busy, reserving) {
            return Err(Error::new(Status::LedgerCorrupt));
        }
        let others = loop {
            let raw = total.load(Acquire);
            let t = Total::unpack(raw);
            if t.frozen {
                // Step back to a state a reconciler need not wait for.
                if !self.cas_slot(s, reserving, busy) {
                    return Err(Error::new(Status::LedgerCorrupt));
                }
                let waited = self.wait_unfrozen(world, pool);
                if !self.cas_slot(s, busy, reserving) {
                    return Err(Error::new(Status::LedgerCorrupt));
                }
                if let Err(e) = waited {
                    self.free_own(s, reserving);
                    return Err(e);
                }
                continue;
            }
            // The capacity reading is taken after the total it is checked
            // against: the heart of the protocol.
            let cap = match capacity() {
                Ok(c) => c,
                Err(e) => {
                    self.free_own(s, reserving);
                    return Err(e);
                }
            };
            let want = t.claimed + pages; // both < 2^36: no overflow
            if want > cap || want > MAX_PAGES {
                self.free_own(s, reserving);
                return Ok(ClaimOutcome::Refused(Refused {
                    requested: pages,
                    claimed: t.claimed,
                    capacity: cap,
                    shortfall: want.saturating_sub(cap).max(1),
                }));
            }
            let new = t.next(want, false).pack();
            if total.compare_exchange(raw, new, AcqRel, Acquire).is_ok() {
                break t.claimed;
            }
        };
        if !self.cas_slot(s, reserving, reserving.with(SlotState::Claimed)) {
            return Err(Error::new(Status::LedgerCorrupt));
        }
        Ok(ClaimOutcome::Claimed { slot: i, others })
    }

    /// Give up our own slot that never reached (or has left) the total.
    fn free_own(&self, s: &Slot, from: Word) {
        let free = Word {
            state: SlotState::Free,
            pid: 0,
            gen: from.gen,
        };
        // If this fails a reconciler judged us dead, which we are not; the
        // slot is then its business.
        let _ = self.cas_slot(s, from, free);
    }

    /// Take claim `slot` (held by `me`) out of its pool's total: commit or
    /// abort. Returns the pages it held.
    pub fn release(&self, world: &dyn World, me: Owner, slot: usize) -> Result<u64> {
        let s = self.slot(slot)?;
        let info = self.read(slot)?.ok_or(Error::new(Status::NotFound))?;
        if info.owner != me || info.state != SlotState::Claimed {
            return Err(Error::new(Status::NotFound));
        }
        let total = self.totals[info.pool.index()];
        let claimed = Word::unpack(s.word.load(Acquire))?;
        if claimed.state != SlotState::Claimed || claimed.pid != me.pid {
            return Err(Error::new(Status::NotFound));
        }
        let releasing = claimed.with(SlotState::Releasing);
        if !self.cas_slot(s, claimed, releasing) {
            return Err(Error::new(Status::NotFound));
        }
        loop {
            let raw = total.load(Acquire);
            let t = Total::unpack(raw);
            if t.frozen {
                if !self.cas_slot(s, releasing, claimed) {
                    return Err(Error::new(Status::LedgerCorrupt));
                }
                // On Busy the slot is still CLAIMED: nothing lost.
                self.wait_unfrozen(world, info.pool)?;
                if !self.cas_slot(s, claimed, releasing) {
                    return Err(Error::new(Status::NotFound));
                }
                continue;
            }
            if t.claimed < info.pages {
                // The total lost a claim it should hold: only a corrupt
                // file (or a bug) does that. Leave the slot for reconcile.
                return Err(Error::new(Status::LedgerCorrupt));
            }
            let new = t.next(t.claimed - info.pages, false).pack();
            if total.compare_exchange(raw, new, AcqRel, Acquire).is_ok() {
                break;
            }
        }
        self.free_own(s, releasing);
        Ok(info.pages)
    }

    /// Whether a slot's owner is alive; a busy slot's start time may not
    /// be written yet, so only its pid can be asked.
    fn owner_alive(world: &dyn World, state: SlotState, owner: Owner) -> bool {
        if state == SlotState::Busy {
            world.pid_exists(owner.pid)
        } else {
            world.alive(owner)
        }
    }

    /// Whether the reconciler stamp names no live, recent reconciler.
    fn reconciler_gone(&self, world: &dyn World) -> bool {
        let cur = self.reconciler.load(Acquire);
        if cur == 0 {
            return true;
        }
        let (pid, at) = unstamp(cur);
        !world.pid_exists(pid) || world.now_ms().saturating_sub(at) > STALE_RECONCILE_MS
    }

    /// One pass for admission: dead owners, a stalled freeze, the
    /// admission claim (reservoir or transient) of `uuid` — and a consistency check of each total against the claims
    /// listed in the slots: every page in a total belongs to a slot that
    /// is reserving, claimed or releasing, so a total larger than those
    /// slots hold (while it did not change during the pass) is a corrupt
    /// file, not a reason to refuse or admit anything.
    pub fn survey(&self, world: &dyn World, uuid: Option<&[u8; 16]>) -> Result<Survey> {
        let before = Pool::ALL.map(|p| self.totals[p.index()].load(Acquire));
        let mut listed = [0u64; NPOOLS];
        let mut out = Survey::default();
        for (i, s) in self.slots.iter().enumerate() {
            let w = Word::unpack(s.word.load(Acquire))?;
            match w.state {
                SlotState::Free => {}
                SlotState::Busy => {
                    if !world.pid_exists(w.pid) {
                        out.dead_owners = true;
                    }
                }
                _ => {
                    let Some(c) = self.read(i)? else { continue };
                    listed[c.pool.index()] = listed[c.pool.index()].saturating_add(c.pages);
                    if !world.alive(c.owner) {
                        out.dead_owners = true;
                    } else if uuid == Some(&c.uuid)
                        && c.pool != Pool::Arc
                        && matches!(c.state, SlotState::Claimed | SlotState::Reserving)
                    {
                        out.found = Some(c);
                    }
                }
            }
        }
        for p in Pool::ALL {
            let after = self.totals[p.index()].load(Acquire);
            let t = Total::unpack(after);
            if t.frozen {
                out.stalled |= self.reconciler_gone(world);
            } else if after == before[p.index()] && t.claimed > listed[p.index()] {
                return Err(Error::new(Status::LedgerCorrupt));
            }
        }
        Ok(out)
    }

    /// Recompute every total from the live claims, freeing the slots of
    /// dead owners. See the module documentation for why this is safe
    /// while other processes claim and release.
    pub fn reconcile(&self, world: &dyn World, me: Owner) -> Result<ReconcileReport> {
        // 1. Become the reconciler (or replace a dead or stale one).
        let mine_at = world.now_ms();
        let mine = loop {
            let cur = self.reconciler.load(Acquire);
            if cur != 0 && !self.reconciler_gone(world) {
                // Someone else is on it; wait for them to finish.
                if world.now_ms().saturating_sub(mine_at) > FROZEN_WAIT_MS {
                    return Err(Error::new(Status::Busy));
                }
                world.pause();
                continue;
            }
            let candidate = stamp(me.pid, world.now_ms());
            if self
                .reconciler
                .compare_exchange(cur, candidate, AcqRel, Acquire)
                .is_ok()
            {
                break candidate;
            }
        };
        let result = self.reconcile_frozen(world);
        let _ = self.reconciler.compare_exchange(mine, 0, AcqRel, Acquire);
        result
    }

    fn reconcile_frozen(&self, world: &dyn World) -> Result<ReconcileReport> {
        // 2. Freeze every total (some may already be frozen by a reconciler
        //    we replaced).
        let frozen_raw = Pool::ALL.map(|p| {
            let total = self.totals[p.index()];
            loop {
                let raw = total.load(Acquire);
                let t = Total::unpack(raw);
                if t.frozen {
                    break raw;
                }
                let f = Total { frozen: true, ..t }.pack();
                if total.compare_exchange(raw, f, AcqRel, Acquire).is_ok() {
                    break f;
                }
            }
        });
        let before = frozen_raw.map(Total::unpack);
        let unfreeze_unchanged = || {
            for p in Pool::ALL {
                let b = before[p.index()];
                let _ = self.totals[p.index()].compare_exchange(
                    frozen_raw[p.index()],
                    b.next(b.claimed, false).pack(),
                    AcqRel,
                    Acquire,
                );
            }
        };
        match self.recount(world, before) {
            Ok((sums, mut report)) => {
                // 5. Publish the recomputed totals with new epochs: every
                //    claim computed before now fails its CAS and reads
                //    again.
                let mut lost = false;
                for p in Pool::ALL {
                    let new = before[p.index()].next(sums[p.index()], false).pack();
                    lost |= self.totals[p.index()]
                        .compare_exchange(frozen_raw[p.index()], new, AcqRel, Acquire)
                        .is_err();
                }
                if lost {
                    // A reconciler that replaced us (we were judged stale)
                    // published first; its result stands.
                    return Err(Error::new(Status::Busy));
                }
                report.claimed_after = sums;
                Ok(report)
            }
            Err(e) => {
                unfreeze_unchanged();
                Err(e)
            }
        }
    }

    /// Steps 3 and 4 of a reconcile, with the totals frozen.
    fn recount(
        &self,
        world: &dyn World,
        before: [Total; NPOOLS],
    ) -> Result<([u64; NPOOLS], ReconcileReport)> {
        // 3. Wait until no live owner is mid-operation: their CAS on a
        //    total now fails, so they finish or roll back.
        let t0 = world.now_ms();
        loop {
            let mut busy = false;
            for (i, s) in self.slots.iter().enumerate() {
                let w = Word::unpack(s.word.load(Acquire))?;
                if !w.state.transitional() {
                    continue;
                }
                if let Some(c) = self.read(i)? {
                    busy |= c.state.transitional() && world.alive(c.owner);
                }
            }
            if !busy {
                break;
            }
            if world.now_ms().saturating_sub(t0) > RECONCILE_WAIT_MS {
                return Err(Error::new(Status::Busy));
            }
            world.pause();
        }
        // 4. Sum the live claims; free what the dead held.
        let mut report = ReconcileReport {
            claimed_before: before.map(|t| t.claimed),
            ..Default::default()
        };
        let mut sums = [0u64; NPOOLS];
        for (i, s) in self.slots.iter().enumerate() {
            let w = Word::unpack(s.word.load(Acquire))?;
            if w.state == SlotState::Free {
                continue;
            }
            let info = self.read(i)?;
            let owner = Owner {
                pid: w.pid,
                start: info.map(|c| c.owner.start).unwrap_or(0),
            };
            if Self::owner_alive(world, w.state, owner) {
                // A live RELEASING slot is one whose release could not
                // complete (the totals are frozen): still in its total. A
                // live RESERVING one began after step 3, so its CAS cannot
                // have succeeded: not in the total.
                if let Some(c) = info {
                    if matches!(w.state, SlotState::Claimed | SlotState::Releasing) {
                        sums[c.pool.index()] += c.pages;
                        report.live_claims += 1;
                    }
                }
                continue;
            }
            // Dead: whatever it was doing, it no longer holds anything.
            let free = Word {
                state: SlotState::Free,
                pid: 0,
                gen: w.gen,
            };
            if self.cas_slot(s, w, free) {
                report.reclaimed_slots += 1;
                if w.state != SlotState::Busy {
                    report.reclaimed_pages += info.map(|c| c.pages).unwrap_or(0);
                }
            }
        }
        if sums.iter().any(|s| *s > MAX_PAGES) {
            return Err(Error::new(Status::LedgerCorrupt));
        }
        Ok((sums, report))
    }

    /// The claim for `uuid` in one of `pools`, if any.
    pub fn find(&self, uuid: &[u8; 16], pools: &[Pool]) -> Result<Option<ClaimInfo>> {
        for i in 0..self.slots.len() {
            if let Some(c) = self.read(i)? {
                if &c.uuid == uuid && pools.contains(&c.pool) {
                    return Ok(Some(c));
                }
            }
        }
        Ok(None)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    /// A world whose processes live and die as the test says.
    struct Fake {
        alive: Mutex<HashSet<Owner>>,
        ms: std::sync::atomic::AtomicU64,
    }

    impl Fake {
        fn new(owners: &[Owner]) -> Fake {
            Fake {
                alive: Mutex::new(owners.iter().copied().collect()),
                ms: std::sync::atomic::AtomicU64::new(1_000),
            }
        }
        fn kill(&self, o: Owner) {
            self.alive.lock().unwrap().remove(&o);
        }
    }

    impl World for Fake {
        fn alive(&self, o: Owner) -> bool {
            self.alive.lock().unwrap().contains(&o)
        }
        fn pid_exists(&self, pid: u32) -> bool {
            self.alive.lock().unwrap().iter().any(|o| o.pid == pid)
        }
        fn now_ms(&self) -> u64 {
            self.ms.load(Relaxed)
        }
        fn now_secs(&self) -> u64 {
            1_700_000_000
        }
        fn pause(&self) {
            self.ms.fetch_add(1, Relaxed);
            std::thread::yield_now();
        }
    }

    struct Mem {
        total: AtomicU64,
        transient: AtomicU64,
        arc: AtomicU64,
        rec: AtomicU64,
        slots: Vec<Slot>,
    }

    impl Mem {
        fn new(n: usize) -> Mem {
            Mem {
                total: AtomicU64::new(0),
                transient: AtomicU64::new(0),
                arc: AtomicU64::new(0),
                rec: AtomicU64::new(0),
                slots: (0..n).map(|_| Slot::new()).collect(),
            }
        }
        fn ledger(&self) -> Ledger<'_> {
            Ledger::new(
                [&self.total, &self.transient, &self.arc],
                &self.rec,
                &self.slots,
            )
        }
    }

    const A: Owner = Owner { pid: 100, start: 7 };
    const B: Owner = Owner { pid: 200, start: 9 };

    fn uuid(n: u8) -> [u8; 16] {
        let mut u = [0u8; 16];
        u[15] = n;
        u
    }

    #[test]
    fn claim_release_and_refusal() {
        let m = Mem::new(8);
        let l = m.ledger();
        let w = Fake::new(&[A, B]);
        let out = l
            .claim(&w, A, uuid(1), Pool::Reservoir, 10, 0, &mut || Ok(16))
            .unwrap();
        let slot = match out {
            ClaimOutcome::Claimed { slot, others } => {
                assert_eq!(others, 0);
                slot
            }
            r => panic!("{:?}", r),
        };
        assert_eq!(l.total(Pool::Reservoir).claimed, 10);
        // 10 + 7 > 16: refused, short by 1; the slot went back.
        let r = l
            .claim(&w, B, uuid(2), Pool::Reservoir, 7, 0, &mut || Ok(16))
            .unwrap();
        assert_eq!(
            r,
            ClaimOutcome::Refused(Refused {
                requested: 7,
                claimed: 10,
                capacity: 16,
                shortfall: 1
            })
        );
        assert_eq!(l.claims().unwrap().len(), 1);
        let c = l.find(&uuid(1), &Pool::ALL).unwrap().unwrap();
        assert_eq!((c.owner, c.pages, c.state), (A, 10, SlotState::Claimed));
        // Only the owner releases.
        assert_eq!(
            l.release(&w, B, slot).unwrap_err().status(),
            Status::NotFound
        );
        assert_eq!(l.release(&w, A, slot).unwrap(), 10);
        assert_eq!(l.total(Pool::Reservoir).claimed, 0);
        assert!(l.claims().unwrap().is_empty());
        // Releasing twice finds nothing.
        assert_eq!(
            l.release(&w, A, slot).unwrap_err().status(),
            Status::NotFound
        );
    }

    #[test]
    fn capacity_is_read_after_the_total() {
        // The capacity closure sees the total at the time it is asked: a
        // claim that lands between our read and our CAS makes us retry
        // with a fresh capacity reading.
        let m = Mem::new(8);
        let l = m.ledger();
        let w = Fake::new(&[A, B]);
        let mut calls = 0;
        let out = l
            .claim(&w, A, uuid(1), Pool::Reservoir, 4, 0, &mut || {
                calls += 1;
                if calls == 1 {
                    // B claims 8 behind our back, after we read the total.
                    let inner = m.ledger();
                    let r = inner
                        .claim(&w, B, uuid(2), Pool::Reservoir, 8, 4, &mut || Ok(10))
                        .unwrap();
                    assert!(matches!(r, ClaimOutcome::Claimed { .. }));
                }
                Ok(10)
            })
            .unwrap();
        // Our first CAS failed (epoch moved); the retry saw 8 claimed.
        assert_eq!(calls, 2);
        assert!(matches!(
            out,
            ClaimOutcome::Refused(Refused {
                claimed: 8,
                shortfall: 2,
                ..
            })
        ));
        assert_eq!(l.total(Pool::Reservoir).claimed, 8);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "too slow under Miri (4 threads x 2000 claims: about 8 minutes); the interleavings are model-checked by loom (tests/loom_ledger.rs)"
    )]
    fn threads_never_over_claim() {
        let m = Mem::new(256);
        let owners: Vec<Owner> = (1..=4).map(|p| Owner { pid: p, start: 1 }).collect();
        let w = Fake::new(&owners);
        let cap = 1000u64;
        std::thread::scope(|s| {
            for (t, o) in owners.iter().enumerate() {
                let (m, w) = (&m, &w);
                s.spawn(move || {
                    let l = m.ledger();
                    for i in 0..2000u32 {
                        let pages = u64::from(i % 97 + 1);
                        let mut u = [0u8; 16];
                        u[0] = t as u8;
                        u[12..].copy_from_slice(&i.to_be_bytes());
                        match l
                            .claim(
                                w,
                                *o,
                                u,
                                Pool::Reservoir,
                                pages,
                                (i as usize) * 7,
                                &mut || Ok(cap),
                            )
                            .unwrap()
                        {
                            ClaimOutcome::Claimed { slot, .. } => {
                                assert!(l.total(Pool::Reservoir).claimed <= cap);
                                assert_eq!(l.release(w, *o, slot).unwrap(), pages);
                            }
                            ClaimOutcome::Refused(r) => assert!(r.shortfall > 0),
                        }
                    }
                });
            }
        });
        assert_eq!(m.ledger().total(Pool::Reservoir).claimed, 0);
        assert!(m.ledger().claims().unwrap().is_empty());
    }

    #[test]
    fn dead_claims_are_reclaimed_by_reconcile() {
        let m = Mem::new(8);
        let l = m.ledger();
        let w = Fake::new(&[A, B]);
        l.claim(&w, A, uuid(1), Pool::Reservoir, 5, 0, &mut || Ok(100))
            .unwrap();
        l.claim(&w, B, uuid(2), Pool::Reservoir, 7, 0, &mut || Ok(100))
            .unwrap();
        assert!(!l.survey(&w, None).unwrap().dead_owners);
        w.kill(A);
        assert!(l.survey(&w, None).unwrap().dead_owners);
        let rep = l.reconcile(&w, B).unwrap();
        assert_eq!(rep.claimed_before[0], 12);
        assert_eq!(rep.claimed_after[0], 7);
        assert_eq!(
            (rep.reclaimed_slots, rep.reclaimed_pages, rep.live_claims),
            (1, 5, 1)
        );
        assert_eq!(
            l.total(Pool::Reservoir),
            Total {
                frozen: false,
                epoch: 3,
                claimed: 7
            }
        );
        assert!(l.find(&uuid(1), &Pool::ALL).unwrap().is_none());
        assert_eq!(m.rec.load(Relaxed), 0, "reconciler stamp cleared");
    }

    #[test]
    fn pid_reuse_does_not_keep_a_claim_alive() {
        let m = Mem::new(8);
        let l = m.ledger();
        let old = Owner { pid: 300, start: 1 };
        let reused = Owner { pid: 300, start: 2 };
        let w = Fake::new(&[old, B]);
        l.claim(&w, old, uuid(1), Pool::Reservoir, 5, 0, &mut || Ok(100))
            .unwrap();
        w.kill(old);
        w.alive.lock().unwrap().insert(reused);
        assert!(l.survey(&w, None).unwrap().dead_owners);
        assert_eq!(l.reconcile(&w, B).unwrap().claimed_after[0], 0);
    }

    #[test]
    fn death_between_cas_and_slot_update_is_repaired() {
        // A claimant whose CAS on the total succeeded but who died before
        // marking its slot CLAIMED: the total holds pages no live claim
        // explains. Reconcile recomputes from live claims.
        let m = Mem::new(8);
        let l = m.ledger();
        let w = Fake::new(&[A, B]);
        let slot = match l
            .claim(&w, A, uuid(1), Pool::Reservoir, 6, 0, &mut || Ok(100))
            .unwrap()
        {
            ClaimOutcome::Claimed { slot, .. } => slot,
            r => panic!("{:?}", r),
        };
        let raw = m.slots[slot].peek_word();
        m.slots[slot].poke_word((raw & !7) | SlotState::Reserving.code());
        w.kill(A);
        let rep = l.reconcile(&w, B).unwrap();
        assert_eq!((rep.claimed_before[0], rep.claimed_after[0]), (6, 0));
        assert_eq!(rep.reclaimed_slots, 1);
    }

    #[test]
    fn a_stalled_reconciler_is_replaced() {
        let m = Mem::new(8);
        let l = m.ledger();
        let dead = Owner { pid: 400, start: 1 };
        let w = Fake::new(&[A, B]);
        l.claim(&w, A, uuid(1), Pool::Reservoir, 3, 0, &mut || Ok(100))
            .unwrap();
        // A reconciler froze the total and died.
        m.rec.store(stamp(dead.pid, w.now_ms()), Relaxed);
        let t = l.total(Pool::Reservoir);
        m.total.store(Total { frozen: true, ..t }.pack(), Relaxed);
        // A claim now waits, then gives up with Busy rather than hang.
        let e = l
            .claim(&w, B, uuid(2), Pool::Reservoir, 1, 0, &mut || Ok(100))
            .unwrap_err();
        assert_eq!(e.status(), Status::Busy);
        assert!(
            l.find(&uuid(2), &Pool::ALL).unwrap().is_none(),
            "the waiting claim left nothing behind"
        );
        // The next reconcile replaces the dead reconciler and unfreezes.
        let rep = l.reconcile(&w, B).unwrap();
        assert_eq!(rep.claimed_after[0], 3);
        assert!(!l.total(Pool::Reservoir).frozen);
        assert!(matches!(
            l.claim(&w, B, uuid(2), Pool::Reservoir, 1, 0, &mut || Ok(100))
                .unwrap(),
            ClaimOutcome::Claimed { .. }
        ));
    }

    #[test]
    fn hostile_words_are_corrupt_not_crashes() {
        let m = Mem::new(8);
        let l = m.ledger();
        let w = Fake::new(&[A]);
        // An unknown state.
        m.slots[3].poke_word(7 | (100 << 3));
        assert_eq!(l.claims().unwrap_err().status(), Status::LedgerCorrupt);
        assert_eq!(
            l.reconcile(&w, A).unwrap_err().status(),
            Status::LedgerCorrupt
        );
        assert!(
            !l.total(Pool::Reservoir).frozen,
            "a failed reconcile unfreezes"
        );
        // A claimed slot whose fields do not match their check.
        m.slots[3].poke_word(
            Word {
                state: SlotState::Claimed,
                pid: 100,
                gen: 1,
            }
            .pack(),
        );
        assert_eq!(l.claims().unwrap_err().status(), Status::LedgerCorrupt);
        // A free slot naming an owner.
        m.slots[3].poke_word(100 << 3);
        assert_eq!(
            l.find(&uuid(1), &Pool::ALL).unwrap_err().status(),
            Status::LedgerCorrupt
        );
        // Oversized requests are refused up front.
        m.slots[3].poke_word(0);
        let e = l
            .claim(
                &w,
                A,
                uuid(1),
                Pool::Reservoir,
                MAX_PAGES + 1,
                0,
                &mut || Ok(u64::MAX),
            )
            .unwrap_err();
        assert_eq!(e.status(), Status::InvalidArgument);
    }

    #[test]
    fn a_huge_hint_does_not_overflow() {
        let m = Mem::new(4);
        let l = m.ledger();
        let w = Fake::new(&[A]);
        // Occupy the slot the hint lands on, so the search must move on.
        l.claim(&w, A, uuid(1), Pool::Reservoir, 1, usize::MAX, &mut || {
            Ok(100)
        })
        .unwrap();
        let r = l.claim(&w, A, uuid(2), Pool::Reservoir, 1, usize::MAX, &mut || {
            Ok(100)
        });
        assert!(matches!(r, Ok(ClaimOutcome::Claimed { .. })));
    }

    #[test]
    fn full_ledger_says_so() {
        let m = Mem::new(2);
        let l = m.ledger();
        let w = Fake::new(&[A]);
        l.claim(&w, A, uuid(1), Pool::Reservoir, 1, 0, &mut || Ok(100))
            .unwrap();
        l.claim(&w, A, uuid(2), Pool::Reservoir, 1, 0, &mut || Ok(100))
            .unwrap();
        let e = l
            .claim(&w, A, uuid(3), Pool::Reservoir, 1, 0, &mut || Ok(100))
            .unwrap_err();
        assert_eq!(e.status(), Status::LedgerFull);
    }
}

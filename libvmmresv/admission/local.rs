//! The in-process claim ledger: a capacity and a claimed total, in pages,
//! shared by the threads of one process.
//!
//! A thread that wants to start a VM claims the pages it will lock
//! ([`LocalLedger::try_claim`], or [`LocalLedger::claim`] for a guard that
//! gives them back on drop); when the kernel has taken over the accounting,
//! or the start failed, it releases them ([`LocalLedger::release`]). A claim
//! that does not fit is refused with the shortfall ([`Refused`]). The ledger
//! **never over-admits**: the claimed total never exceeds the capacity in
//! force (docs/ledger.md, "What the ledger is for").
//!
//! # CAS loop, not fetch_add + undo
//!
//! Linux memcg's `page_counter_try_charge` adds speculatively
//! (`atomic_long_add_return`), compares with the limit and undoes on failure:
//! one atomic in the common case, but the raw counter transiently reads above
//! the limit and a racing smaller charge can be refused falsely ("the error
//! is limited to the difference between the two sizes", mm/page_counter.c).
//! tokio's `batch_semaphore::try_acquire` is a compare-and-swap loop: load,
//! check, CAS, retry on interference. **This ledger uses the CAS loop**:
//!
//! - it is exact: a claim is refused only if it does not fit beside the pages
//!   that are really claimed, so there is no false refusal, and the
//!   [`Refused::shortfall`] a caller reports to an operator (or to CNAPI) is
//!   the true number of missing pages, not one inflated by other threads'
//!   speculative adds;
//! - [`LocalLedger::claimed`] never overshoots: every value the counter takes
//!   is an admitted total, so a report can show it as is;
//! - the price, a retry when another thread changed the counter between the
//!   load and the CAS, is paid only under contention. Uncontended, a claim is
//!   one load plus one `lock cmpxchg` on x86 (memcg's is one `lock xadd`,
//!   which costs the same), and the capacity it compares with sits in the
//!   same cache line.
//!
//! # Layout: one word for claims, two slots for the capacity
//!
//! `word` holds the claimed page count in its low [`COUNT_BITS`] bits and a
//! *generation* in the high bits. The capacity lives in two slots; the one
//! in force is `capacity[generation & 1]`. Claims and releases change only
//! the count (the generation rides along unchanged in their CAS);
//! [`LocalLedger::set_capacity`] writes the new capacity into the *other*
//! slot and then flips the generation with one CAS on `word` that also
//! checks `claimed <= new`. That CAS is the single instant at which a new
//! capacity takes effect, and it is atomic with the check, so lowering the
//! capacity is exact, with no window in which a claim checked against the
//! old capacity can slip in: a claim reads `word`, then the slot its
//! generation names, and CASes `word`. If a `set_capacity` committed in
//! between, the generation differs and the claim's CAS fails and re-reads.
//! If the claim's CAS came first, the setter's CAS sees the claimed pages
//! and refuses a capacity below them (`Status::NoSpace`, memcg's `EBUSY`).
//!
//! Setters are serialised among themselves by a `Mutex` (two setters would
//! otherwise write the same spare slot); memcg's `page_counter_set_max`
//! likewise requires its callers to serialise. Claims and releases never
//! touch that mutex.
//!
//! The generation has `64 - COUNT_BITS` = 16 bits and wraps. A claim could
//! be fooled only if, between its load of `word` and its CAS (a handful of
//! instructions), exactly a multiple of 65 536 capacity changes committed
//! *and* the claimed count came back to the same value; capacity changes
//! follow reservoir resizes, which take seconds each.
//!
//! # Guarantees
//!
//! - The claimed total never exceeds the capacity in force, at every instant
//!   of the single modification order of `word` (every change to the
//!   claimed total and every capacity change is a CAS on it).
//! - A successful claim was checked against the capacity in force when its
//!   CAS took effect. A claim that starts after `set_capacity` returned
//!   `Ok` (happens-after it, e.g. on the same thread or after a join) sees
//!   the new capacity or a later one; a claim that overlaps a
//!   `set_capacity` is ordered entirely before or entirely after it.
//! - A refused claim reports a consistent snapshot: `claimed` is a value the
//!   claimed total really had while `capacity` was in force (the claim
//!   re-reads `word` after reading the capacity and retries if either
//!   changed), so `shortfall = claimed + requested - capacity` is truthful.
//! - A failed `set_capacity` has no visible effect.
//!
//! # Memory orderings
//!
//! Every load and CAS of `word` in a claim is `Acquire`, and a successful
//! claim's CAS is `AcqRel`. Acquire pairs with the setter's `Release` CAS,
//! so a claim that reads generation `g` also sees the capacity that was
//! written into slot `g & 1` before the flip to `g`. It also pairs with a
//! release's `Release` CAS, so whatever a thread did before giving pages
//! back (tearing down a VM) is visible to the thread that claims them next.
//! The Release half of a claim's CAS lets an observer that acquires the
//! count see a capacity at least as new as the one the claim was checked
//! against. Every write to `word` is a read-modify-write, so each one
//! continues the release sequences of the ones before it.
//!
//! The capacity slots are stored `Release` and loaded `Acquire`. That is
//! what makes a stale reader safe: a claim holding an old `word` may read a
//! slot that a later setter is already rewriting; Acquire then makes the
//! generation flip that preceded that setter visible, so the claim's CAS
//! (or its refusal's re-read) sees a newer generation and retries instead
//! of acting on a capacity from a different generation. On x86 all of these
//! are plain `mov`s and `lock cmpxchg`, so the orderings cost nothing; on
//! aarch64 they are `ldar`/`casal`. None of them is decoration: with the
//! slot orderings, or the claim's orderings on `word`, weakened to
//! `Relaxed`, the loom models in tests/loom_local.rs fail.
//!
//! A release's loads and CAS failure ordering are `Relaxed`: it only
//! subtracts, whatever the capacity is.
//!
//! # Overflow caps
//!
//! Capacities and requests are at most [`MAX_PAGES`] = 2^48 - 1 pages (with
//! 4 KiB pages just under 1 EiB, far above any host: 2^32 pages are 16 TiB).
//! So `claimed + request` is below 2^49 and can never wrap, and a count that
//! fits the capacity can never carry into the generation bits. Larger
//! requests are refused up front; a larger capacity is `InvalidArgument`.
//! Releasing more than is claimed is a caller bug: `debug_assert!`, and in
//! release builds the count clamps at 0 (memcg's `page_counter_cancel` warns
//! and clamps the same way).
//!
//! # Why the hot path is only atomics
//!
//! [`LocalLedger::try_claim`], [`LocalLedger::release`] and the guard's drop
//! touch `word` and one capacity slot, both in one cache line, and nothing
//! else: no mutex (a lock holder that is descheduled would stall every VM
//! start), no syscall, no allocation, no panic in release builds. They are
//! lock-free: a CAS fails (or a refusal re-reads) only because another
//! thread's operation succeeded, or spuriously on LL/SC machines. The ledger is aligned to 128 bytes, a pair of 64-byte lines,
//! because x86's adjacent-line prefetcher pulls lines in pairs, so no
//! unrelated data shares (and falsely contends on) its lines.

#![forbid(unsafe_code)]

use core::fmt;

use crate::status::{Error, Status};

use self::sync::{AtomicU64, Mutex, Ordering};

/// The atomics and the setter mutex: loom's model-checked versions when the
/// crate is built with `--cfg loom`, std's otherwise.
mod sync {
    pub(super) use core::sync::atomic::Ordering;
    #[cfg(loom)]
    pub(super) use loom::sync::{atomic::AtomicU64, Mutex};
    #[cfg(not(loom))]
    pub(super) use std::sync::{atomic::AtomicU64, Mutex};
}

/// Bits of the ledger word that hold the claimed page count; the rest hold
/// the capacity generation.
pub const COUNT_BITS: u32 = 48;

/// The largest capacity, and the largest single claim, in pages: 2^48 - 1.
///
/// With 4 KiB pages that is just under 1 EiB. The cap keeps `claimed +
/// request` far from wrapping a `u64` and keeps the count out of the
/// generation bits; anything larger is refused up front.
pub const MAX_PAGES: u64 = (1 << COUNT_BITS) - 1;

/// The count part of the ledger word.
const COUNT_MASK: u64 = MAX_PAGES;

/// One step of the generation (the bits above the count).
const GENERATION_ONE: u64 = 1 << COUNT_BITS;

/// The claimed count in a ledger word.
const fn count(word: u64) -> u64 {
    word & COUNT_MASK
}

/// The capacity slot in force for a ledger word: the generation's parity.
const fn slot(word: u64) -> usize {
    // Bit COUNT_BITS is the generation's lowest bit; the result is 0 or 1.
    if word & GENERATION_ONE == 0 {
        0
    } else {
        1
    }
}

/// `claimed + requested - capacity`, saturated to `0..=u64::MAX`.
///
/// Exact whenever the true value fits, which it always does for the
/// snapshots a ledger reports (there `claimed <= capacity <= MAX_PAGES`);
/// total for any inputs so no caller can make it wrap or panic.
fn shortfall(claimed: u64, requested: u64, capacity: u64) -> u64 {
    // Two u64s cannot saturate a u128.
    let need = u128::from(claimed).saturating_add(u128::from(requested));
    let short = need.saturating_sub(u128::from(capacity));
    u64::try_from(short).unwrap_or(u64::MAX)
}

/// A claim the ledger refused: it did not fit beside the pages already
/// claimed.
///
/// The three inputs are one consistent snapshot (see the module docs), and
/// `shortfall = claimed + requested - capacity` exactly (saturated at
/// `u64::MAX` for a `requested` near `u64::MAX` that is far beyond
/// [`MAX_PAGES`] anyway). It is always greater than 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Refused {
    /// The pages the refused claim asked for.
    pub requested: u64,
    /// The claimed total the claim was checked against.
    pub claimed: u64,
    /// The capacity the claim was checked against.
    pub capacity: u64,
    /// How many pages were missing: `claimed + requested - capacity`.
    pub shortfall: u64,
}

impl Refused {
    fn new(requested: u64, claimed: u64, capacity: u64) -> Refused {
        Refused {
            requested,
            claimed,
            capacity,
            shortfall: shortfall(claimed, requested, capacity),
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot claim {} pages: {} of {} pages already claimed, {} pages short",
            self.requested, self.claimed, self.capacity, self.shortfall
        )
    }
}

impl std::error::Error for Refused {}

/// A refusal is `Status::Refused` at the C boundary (the shortfall travels
/// separately).
impl From<Refused> for Error {
    fn from(_: Refused) -> Error {
        Error::new(Status::Refused)
    }
}

/// A consistent reading of a ledger: the claimed total and the capacity in
/// force at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Usage {
    /// Pages claimed.
    pub claimed: u64,
    /// Capacity in force, in pages; never less than `claimed`.
    pub capacity: u64,
}

impl Usage {
    /// Pages that can still be claimed: `capacity - claimed` (saturating,
    /// though a ledger never reports `claimed > capacity`).
    #[must_use]
    pub const fn available(&self) -> u64 {
        self.capacity.saturating_sub(self.claimed)
    }
}

/// An in-process claim ledger: a capacity and a claimed total, in pages,
/// shared by reference (or `Arc`) among threads.
///
/// Claims and releases are lock-free CAS loops (see the module docs for the
/// design and the guarantees). `LocalLedger` is `Send + Sync`.
// 128 bytes: a pair of 64-byte cache lines, as x86 prefetches lines in pairs
// (crossbeam's CachePadded uses the same figure on x86_64 and aarch64).
#[repr(align(128))]
pub struct LocalLedger {
    /// Claimed pages (low COUNT_BITS bits) and the capacity generation (the
    /// rest). Every change to it is a CAS (or an RMW).
    word: AtomicU64,
    /// The capacity in force is `capacity[slot(word)]`; the other slot is
    /// where the next `set_capacity` stages its value.
    capacity: [AtomicU64; 2],
    /// Serialises `set_capacity` callers only; never taken by a claim or a
    /// release.
    setter: Mutex<()>,
}

impl LocalLedger {
    /// A ledger with `capacity_pages` of capacity and nothing claimed.
    ///
    /// `InvalidArgument` if `capacity_pages > MAX_PAGES`.
    pub fn new(capacity_pages: u64) -> Result<LocalLedger, Error> {
        if capacity_pages > MAX_PAGES {
            return Err(Error::new(Status::InvalidArgument));
        }
        Ok(LocalLedger {
            word: AtomicU64::new(0),
            capacity: [
                AtomicU64::new(capacity_pages),
                AtomicU64::new(capacity_pages),
            ],
            setter: Mutex::new(()),
        })
    }

    /// Capacity slot `i` (0 or 1, as [`slot`] gives it).
    #[inline]
    fn capacity_slot(&self, i: usize) -> &AtomicU64 {
        let [even, odd] = &self.capacity;
        if i == 0 {
            even
        } else {
            odd
        }
    }

    /// Claims `pages` pages if they fit beside those already claimed; the
    /// raw form, for callers (the C ABI) that pair it with
    /// [`release`](Self::release) themselves.
    ///
    /// - `pages == 0` always succeeds and changes nothing: an empty claim
    ///   fits in any ledger, and a [`Refused`] must have a shortfall > 0.
    /// - `pages > MAX_PAGES` is refused up front (it cannot fit any
    ///   capacity), with the shortfall computed without overflow.
    /// - Otherwise the claim succeeds iff `claimed + pages <= capacity` at
    ///   the instant its CAS takes effect; there is no false refusal.
    ///
    /// Lock-free: no mutex, no syscall, no allocation.
    #[inline]
    pub fn try_claim(&self, pages: u64) -> Result<(), Refused> {
        if pages == 0 {
            return Ok(());
        }
        if pages > MAX_PAGES {
            return Err(self.refuse_oversize(pages));
        }
        // Acquire: see the capacity staged before this generation's flip,
        // and what releasers did before giving pages back.
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            // Acquire: if this slot was already rewritten by a later setter,
            // its generation flip becomes visible, so the CAS below (or the
            // re-read on refusal) fails and we retry.
            let capacity = self.capacity_slot(slot(word)).load(Ordering::Acquire);
            let claimed = count(word);
            // claimed <= MAX_PAGES and pages <= MAX_PAGES: cannot saturate.
            let total = claimed.saturating_add(pages);
            if total <= capacity {
                // total <= capacity <= MAX_PAGES: the add cannot carry into
                // the generation bits (nor saturate).
                match self.word.compare_exchange_weak(
                    word,
                    word.saturating_add(pages),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return Ok(()),
                    Err(actual) => {
                        word = actual;
                        continue;
                    }
                }
            }
            // Refusal: report it only if `word` is unchanged since it was
            // read, so claimed and capacity are one snapshot (the capacity
            // load above is Acquire, so this load cannot move before it).
            let now = self.word.load(Ordering::Acquire);
            if now == word {
                return Err(Refused {
                    requested: pages,
                    claimed,
                    capacity,
                    // total > capacity, checked above.
                    shortfall: total.saturating_sub(capacity),
                });
            }
            word = now;
        }
    }

    /// Refusal of a request above `MAX_PAGES`, kept off the hot path.
    #[cold]
    #[inline(never)]
    fn refuse_oversize(&self, pages: u64) -> Refused {
        let usage = self.usage();
        Refused::new(pages, usage.claimed, usage.capacity)
    }

    /// Claims `pages` pages like [`try_claim`](Self::try_claim) and returns
    /// a guard that releases them when dropped, unless
    /// [`Claim::commit`] keeps them.
    #[inline]
    pub fn claim(&self, pages: u64) -> Result<Claim<'_>, Refused> {
        self.try_claim(pages)?;
        Ok(Claim {
            ledger: self,
            pages,
        })
    }

    /// Gives back `pages` pages claimed earlier.
    ///
    /// `pages == 0` does nothing. Releasing more than is claimed is a caller
    /// bug: it panics in debug builds (`debug_assert!`) and clamps the
    /// claimed total at 0 in release builds (never wraps).
    ///
    /// Lock-free: no mutex, no syscall, no allocation.
    #[inline]
    pub fn release(&self, pages: u64) {
        if pages == 0 {
            return;
        }
        // Relaxed load and failure ordering: a release only subtracts, and
        // does not depend on the capacity or on other threads' data.
        let mut word = self.word.load(Ordering::Relaxed);
        loop {
            let claimed = count(word);
            let left = match claimed.checked_sub(pages) {
                Some(left) => left,
                None => {
                    debug_assert!(
                        false,
                        "LocalLedger::release({pages}) with only {claimed} pages claimed"
                    );
                    0
                }
            };
            // Keep the generation; replace the count.
            let new = (word & !COUNT_MASK) | left;
            // Release: publish what this thread did before giving the pages
            // back to the thread that claims them next.
            match self
                .word
                .compare_exchange_weak(word, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => word = actual,
            }
        }
    }

    /// Sets the capacity to `pages`; returns the previous capacity.
    ///
    /// - `InvalidArgument` if `pages > MAX_PAGES`.
    /// - `NoSpace` if more than `pages` pages are claimed (memcg's `EBUSY`
    ///   for a limit below usage): lowering the capacity never strands a
    ///   claim, and a refused change has no effect at all.
    ///
    /// Exact: the change takes effect at one CAS that also checks the
    /// claimed total, so after `Ok` the claimed total is within the new
    /// capacity and every later claim is checked against it (module docs).
    ///
    /// Not on the hot path: callers of `set_capacity` are serialised by a
    /// mutex (claims and releases never take it).
    pub fn set_capacity(&self, pages: u64) -> Result<u64, Error> {
        if pages > MAX_PAGES {
            return Err(Error::new(Status::InvalidArgument));
        }
        // Nothing in the critical section panics, so a poisoned mutex can
        // only come from a panic elsewhere; the ledger is still consistent.
        let _serial = self
            .setter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Only setters change the generation, and we hold the mutex, so the
        // generation (and the slot in force) stays put until our CAS.
        let mut word = self.word.load(Ordering::Acquire);
        let current = slot(word);
        // Relaxed: only setters write the slots, and the mutex orders us
        // after the previous setter.
        let old = self.capacity_slot(current).load(Ordering::Relaxed);
        if count(word) > pages {
            return Err(Error::new(Status::NoSpace));
        }
        // Stage the new value in the slot not in force. Release: a claim
        // holding a stale word that reads it also sees the flips before
        // this call (see the module docs). Nobody treats it as the capacity
        // until the CAS below flips the generation to point at it.
        self.capacity_slot(current ^ 1)
            .store(pages, Ordering::Release);
        loop {
            if count(word) > pages {
                // A claim got in since the check above; the staged slot is
                // not in force, so there is nothing to undo.
                return Err(Error::new(Status::NoSpace));
            }
            // Flip the generation (wrapping out of the top bit is intended),
            // keeping the count. Release: a claim that acquires the new
            // generation sees the staged capacity.
            match self.word.compare_exchange_weak(
                word,
                word.wrapping_add(GENERATION_ONE),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(old),
                Err(actual) => word = actual,
            }
        }
    }

    /// Pages claimed now (a snapshot that may be stale as soon as it is
    /// returned).
    #[inline]
    #[must_use]
    pub fn claimed(&self) -> u64 {
        count(self.word.load(Ordering::Acquire))
    }

    /// The capacity in force now, in pages.
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.usage().capacity
    }

    /// Pages that can be claimed now: capacity minus claimed, from one
    /// consistent snapshot (saturating).
    #[must_use]
    pub fn available(&self) -> u64 {
        self.usage().available()
    }

    /// The claimed total and the capacity in force at one instant, so that
    /// `claimed <= capacity` always holds for the pair (two separate calls
    /// to [`claimed`](Self::claimed) and [`capacity`](Self::capacity) can
    /// straddle a claim, release or capacity change).
    #[must_use]
    pub fn usage(&self) -> Usage {
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            let capacity = self.capacity_slot(slot(word)).load(Ordering::Acquire);
            // Same re-read as a refusal: the slot must still be the one in
            // force for this word.
            let now = self.word.load(Ordering::Acquire);
            if now == word {
                return Usage {
                    claimed: count(word),
                    capacity,
                };
            }
            word = now;
        }
    }
}

impl fmt::Debug for LocalLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let usage = self.usage();
        f.debug_struct("LocalLedger")
            .field("claimed", &usage.claimed)
            .field("capacity", &usage.capacity)
            .finish()
    }
}

/// Pages claimed through [`LocalLedger::claim`]; released when dropped
/// unless [`commit`](Claim::commit)ted.
///
/// Dropping it is a [`LocalLedger::release`] of exactly its pages (lock-free;
/// a guard for 0 pages releases nothing).
#[must_use = "dropping a Claim releases its pages at once; call commit() to keep them"]
pub struct Claim<'a> {
    ledger: &'a LocalLedger,
    pages: u64,
}

impl Claim<'_> {
    /// The pages this guard holds.
    #[must_use]
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Keeps the pages claimed after the guard is gone and returns their
    /// count; the caller now owes a [`LocalLedger::release`] of that many.
    pub fn commit(mut self) -> u64 {
        // Drop then releases 0 pages, which does nothing.
        core::mem::take(&mut self.pages)
    }
}

impl Drop for Claim<'_> {
    #[inline]
    fn drop(&mut self) {
        self.ledger.release(self.pages);
    }
}

impl fmt::Debug for Claim<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim").field("pages", &self.pages).finish()
    }
}

static_assertions::assert_impl_all!(LocalLedger: Send, Sync);
static_assertions::assert_impl_all!(Claim<'static>: Send, Sync);
static_assertions::assert_impl_all!(Refused: Send, Sync, Copy, std::error::Error);
static_assertions::const_assert!(MAX_PAGES < GENERATION_ONE);
static_assertions::const_assert_eq!(core::mem::align_of::<LocalLedger>(), 128);

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
mod tests {
    use super::*;

    fn ledger(capacity: u64) -> LocalLedger {
        LocalLedger::new(capacity).expect("capacity within MAX_PAGES")
    }

    fn usage(claimed: u64, capacity: u64) -> Usage {
        Usage { claimed, capacity }
    }

    #[test]
    fn new_accepts_zero_and_max_and_rejects_above() {
        assert_eq!(ledger(0).capacity(), 0);
        assert_eq!(ledger(MAX_PAGES).capacity(), MAX_PAGES);
        for bad in [MAX_PAGES + 1, u64::MAX] {
            let e = LocalLedger::new(bad).unwrap_err();
            assert_eq!(e.status(), Status::InvalidArgument);
        }
    }

    #[test]
    fn zero_pages_always_succeeds_and_changes_nothing() {
        let l = ledger(0);
        assert_eq!(l.try_claim(0), Ok(()));
        let g = l.claim(0).unwrap();
        assert_eq!(g.pages(), 0);
        drop(g);
        let l = ledger(5);
        l.try_claim(5).unwrap();
        assert_eq!(l.try_claim(0), Ok(()));
        l.release(0);
        assert_eq!(l.claimed(), 5);
        assert_eq!(l.claim(0).unwrap().commit(), 0);
        assert_eq!(l.claimed(), 5);
    }

    #[test]
    fn capacity_zero_refuses_everything_but_zero() {
        let l = ledger(0);
        assert_eq!(
            l.try_claim(1),
            Err(Refused {
                requested: 1,
                claimed: 0,
                capacity: 0,
                shortfall: 1
            })
        );
        assert_eq!(l.available(), 0);
        assert_eq!(l.claimed(), 0);
    }

    #[test]
    fn claim_to_capacity_then_one_more_is_short_by_one() {
        for cap in [1, 3, 4096, MAX_PAGES] {
            let l = ledger(cap);
            l.try_claim(cap).unwrap();
            assert_eq!(l.claimed(), cap);
            assert_eq!(l.available(), 0);
            let r = l.try_claim(1).unwrap_err();
            assert_eq!(
                r,
                Refused {
                    requested: 1,
                    claimed: cap,
                    capacity: cap,
                    shortfall: 1
                }
            );
            l.release(cap);
            assert_eq!(l.claimed(), 0);
        }
    }

    #[test]
    fn shortfall_is_claimed_plus_requested_minus_capacity() {
        let l = ledger(10);
        l.try_claim(7).unwrap();
        let r = l.try_claim(5).unwrap_err();
        assert_eq!(r.claimed, 7);
        assert_eq!(r.capacity, 10);
        assert_eq!(r.shortfall, 2);
        assert_eq!(l.claimed(), 7, "a refusal changes nothing");
    }

    #[test]
    fn oversize_requests_are_refused_up_front_without_overflow() {
        let l = ledger(MAX_PAGES);
        l.try_claim(MAX_PAGES).unwrap();
        for req in [MAX_PAGES + 1, u64::MAX - 1, u64::MAX] {
            let r = l.try_claim(req).unwrap_err();
            assert_eq!(r.requested, req);
            assert_eq!(r.claimed, MAX_PAGES);
            assert_eq!(r.capacity, MAX_PAGES);
            // claimed == capacity, so the shortfall is the request itself.
            assert_eq!(r.shortfall, req);
        }
        let l = ledger(0);
        let r = l.try_claim(u64::MAX).unwrap_err();
        assert_eq!(r.shortfall, u64::MAX);
        let l = ledger(100);
        l.try_claim(40).unwrap();
        let r = l.try_claim(MAX_PAGES + 1).unwrap_err();
        assert_eq!(r.shortfall, MAX_PAGES + 1 - 60);
        assert!(l.claim(u64::MAX).is_err());
        assert_eq!(l.claimed(), 40);
    }

    #[test]
    fn shortfall_arithmetic_at_u64_extremes() {
        assert_eq!(shortfall(0, 1, 0), 1);
        assert_eq!(shortfall(0, u64::MAX, 0), u64::MAX);
        assert_eq!(shortfall(u64::MAX, u64::MAX, 0), u64::MAX, "saturates");
        assert_eq!(shortfall(u64::MAX, u64::MAX, u64::MAX), u64::MAX);
        assert_eq!(shortfall(u64::MAX, 1, u64::MAX), 1);
        assert_eq!(shortfall(1, u64::MAX, u64::MAX), 1);
        assert_eq!(shortfall(0, u64::MAX, u64::MAX), 0);
        assert_eq!(shortfall(MAX_PAGES, MAX_PAGES, MAX_PAGES), MAX_PAGES);
        assert_eq!(shortfall(MAX_PAGES, u64::MAX, MAX_PAGES), u64::MAX);
        assert_eq!(shortfall(5, 3, 10), 0, "fits: no shortfall");
        let r = Refused::new(u64::MAX, MAX_PAGES, 0);
        assert_eq!(r.shortfall, u64::MAX);
    }

    #[test]
    fn release_zero_and_exact_release() {
        let l = ledger(8);
        l.release(0);
        assert_eq!(l.claimed(), 0);
        l.try_claim(3).unwrap();
        l.try_claim(5).unwrap();
        l.release(5);
        assert_eq!(l.claimed(), 3);
        l.release(3);
        assert_eq!(l.claimed(), 0);
    }

    #[cfg(not(debug_assertions))]
    #[test]
    fn release_underflow_clamps_at_zero_in_release_builds() {
        let l = ledger(8);
        l.release(1);
        assert_eq!(l.claimed(), 0);
        l.try_claim(3).unwrap();
        l.release(u64::MAX);
        assert_eq!(l.claimed(), 0);
        // The generation survives a clamp: capacity changes still work.
        l.set_capacity(4).unwrap();
        l.try_claim(2).unwrap();
        l.release(5);
        assert_eq!(l.usage(), usage(0, 4));
        l.try_claim(4).unwrap();
        assert_eq!(l.available(), 0);
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "with only 2 pages claimed")]
    fn release_underflow_panics_in_debug_builds() {
        let l = ledger(8);
        l.try_claim(2).unwrap();
        l.release(3);
    }

    #[test]
    fn guard_releases_on_drop_and_commit_keeps() {
        let l = ledger(10);
        {
            let g = l.claim(4).unwrap();
            assert_eq!(g.pages(), 4);
            assert_eq!(l.claimed(), 4);
        }
        assert_eq!(l.claimed(), 0);
        let g = l.claim(6).unwrap();
        assert_eq!(g.commit(), 6);
        assert_eq!(l.claimed(), 6);
        let r = l.claim(5).unwrap_err();
        assert_eq!(r.shortfall, 1);
        l.release(6);
        assert_eq!(l.claimed(), 0);
        assert!(format!("{:?}", l.claim(1).unwrap()).contains("pages: 1"));
        assert_eq!(l.claimed(), 0);
    }

    #[test]
    fn set_capacity_raises_lowers_and_refuses_below_claimed() {
        let l = ledger(10);
        l.try_claim(6).unwrap();
        assert_eq!(l.set_capacity(20), Ok(10));
        assert_eq!(l.capacity(), 20);
        l.try_claim(14).unwrap();
        assert_eq!(l.available(), 0);
        l.release(14);
        assert_eq!(l.set_capacity(6), Ok(20), "lowering to exactly claimed");
        assert_eq!(l.usage(), usage(6, 6));
        let e = l.set_capacity(5).unwrap_err();
        assert_eq!(e.status(), Status::NoSpace);
        assert_eq!(l.capacity(), 6, "a refused change has no effect");
        assert_eq!(l.claimed(), 6);
        let r = l.try_claim(1).unwrap_err();
        assert_eq!((r.capacity, r.shortfall), (6, 1));
        for bad in [MAX_PAGES + 1, u64::MAX] {
            assert_eq!(
                l.set_capacity(bad).unwrap_err().status(),
                Status::InvalidArgument
            );
        }
        assert_eq!(l.capacity(), 6);
        l.release(6);
        assert_eq!(l.set_capacity(0), Ok(6));
        assert!(l.try_claim(1).is_err());
        assert_eq!(l.set_capacity(MAX_PAGES), Ok(0));
        l.try_claim(MAX_PAGES).unwrap();
        assert_eq!(l.claimed(), MAX_PAGES);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "too slow under Miri (2^16 + 3 capacity changes to wrap the generation: about 3.5 minutes)"
    )]
    fn generation_wraps_without_disturbing_the_count() {
        let l = ledger(100);
        l.try_claim(37).unwrap();
        // More than 2^16 flips: the generation wraps out of the top bits.
        let flips = (1u64 << (64 - COUNT_BITS)) + 3;
        for i in 0..flips {
            let cap = 37 + (i % 5);
            l.set_capacity(cap).unwrap();
            assert_eq!(l.usage(), usage(37, cap));
        }
        l.release(37);
        assert_eq!(l.claimed(), 0);
        l.set_capacity(MAX_PAGES).unwrap();
        l.try_claim(MAX_PAGES).unwrap();
        assert_eq!(l.usage(), usage(MAX_PAGES, MAX_PAGES));
    }

    #[test]
    fn refused_is_an_error_mapping_to_refused() {
        let r = Refused::new(5, 3, 4);
        assert_eq!(r.shortfall, 4);
        let text = r.to_string();
        assert!(
            text.contains("5 pages") && text.contains("4 pages short"),
            "{text}"
        );
        let e: Error = r.into();
        assert_eq!(e.status(), Status::Refused);
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(r);
        assert!(!boxed.to_string().is_empty());
    }

    #[test]
    fn usage_available_saturates() {
        assert_eq!(usage(9, 4).available(), 0);
        assert_eq!(usage(4, 9).available(), 5);
        let l = ledger(9);
        l.try_claim(4).unwrap();
        assert_eq!(l.available(), 5);
        assert!(format!("{l:?}").contains("claimed: 4"));
    }

    #[test]
    fn ledger_is_send_sync_and_cache_line_aligned() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<LocalLedger>();
        send_sync::<Claim<'_>>();
        assert_eq!(core::mem::align_of::<LocalLedger>(), 128);
        assert!(
            core::mem::size_of::<LocalLedger>() <= 128,
            "one aligned block"
        );
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "too slow under Miri (4 threads x 10,000 claims: about 2 minutes); the interleavings are model-checked by loom (tests/loom_local.rs)"
    )]
    fn threads_share_a_ledger() {
        let l = ledger(64);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..10_000u64 {
                        let n = 1 + i % 16;
                        if let Ok(g) = l.claim(n) {
                            assert!(l.usage().claimed <= 64);
                            drop(g);
                        }
                    }
                });
            }
        });
        assert_eq!(l.claimed(), 0);
    }
}

//! The opaque handles of the C ABI, and how a freed one is told apart from
//! a live one without reading memory the library has given back.
//!
//! A handle the library gives C is not the address of the object: it is a
//! number (in a pointer-sized, never-dereferenced value) that names a slot
//! of a per-type table, with the slot's generation and a tag for the type:
//!
//! ```text
//!   bit 63 ........ 28 27 ......... 4 3 .. 0
//!   |   generation    |  slot index  | tag  |
//! ```
//!
//! Each slot is a state word (`generation << 1 | live`) and the object
//! itself, stored in place. The first 32 slots of a type are inside its
//! table (a static); the rest live in buckets that are allocated once and
//! never freed. So checking a handle reads only the library's own live
//! memory, whatever the caller passes:
//!
//! - a call checks the tag, finds the slot (if the index was ever handed
//!   out) and compares its state word with the handle's generation, live:
//!   one atomic load, from memory next to the object it then uses (for the
//!   first 32 handles of a type no other load: the C-ABI benchmark's path
//!   costs what the magic word in the object cost before);
//! - a free swaps the state word from live to freed with a compare-and-swap
//!   (of two frees of one handle, at once or not, exactly one wins), then
//!   drops the object in place and puts the slot on the free list;
//! - reusing the slot bumps its generation, so a stale handle (an older
//!   generation) never reaches the new object. A slot whose generation
//!   cannot grow any more is retired, never reused.
//!
//! So a freed, stale, foreign or wrong-typed handle gives
//! `VMMRESV_STATUS_INVALID_ARGUMENT` (a free of one does nothing), never a
//! read of freed memory, a double free or another handle's object. What
//! this cannot make safe is a handle freed while another thread is still
//! inside a call with it: that call may use the object as it is dropped.
//! That stays the caller's bug (the man pages say so), as with free(3).
//!
//! Leak checkers: live objects sit in the tables (statics) and in buckets
//! the tables point to, so LeakSanitizer and valgrind count what a handle
//! a program never frees owns as reachable, not leaked (as they did when
//! the program held the object's address itself).

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::status::Status;

/// Bits of the type tag (the low bits of every handle).
const TAG_BITS: u32 = 4;
/// Bits of the slot index: at most 2^24 - 1 live handles of one type.
const INDEX_BITS: u32 = 24;
/// Bits of the generation: the rest of the pointer-sized value.
const GEN_BITS: u32 = usize::BITS - TAG_BITS - INDEX_BITS;
const TAG_MASK: usize = (1 << TAG_BITS) - 1;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
/// The last generation a handle can carry; a slot that reached it retires.
const GEN_MAX: u64 = (1u64 << GEN_BITS) - 1;

/// The first 2^FIRST_BITS slots are in the table itself; bucket b (b >= 1)
/// holds 2^(FIRST_BITS + b) more: enough buckets for every index, and no
/// allocation for the common process that holds a handle or two.
const FIRST_BITS: u32 = 5;
const FIRST_LEN: usize = 1 << FIRST_BITS;
const BUCKETS: usize = (INDEX_BITS + 1 - FIRST_BITS) as usize;

const LIVE: u64 = 1;

/// The tags: nonzero and odd, so no pointer to an aligned object (a
/// foreign pointer) and no handle of another type matches.
pub(super) const TAG_RESERVOIR: usize = 0x3;
pub(super) const TAG_ADMISSION: usize = 0x5;
pub(super) const TAG_LEDGER: usize = 0x7;
pub(super) const TAG_ARC: usize = 0x9;

struct Slot<T> {
    /// `generation << 1 | LIVE`: the generation of the slot's current (or
    /// last) object, and whether it is still live. 0 for a slot never used.
    state: AtomicU64,
    /// The object; initialized exactly while `state` has LIVE set (and
    /// during the insert and free that set and clear it).
    value: UnsafeCell<MaybeUninit<T>>,
}

impl<T> Slot<T> {
    const fn empty() -> Slot<T> {
        Slot {
            state: AtomicU64::new(0),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

/// Which slots are free, and how many were ever handed out.
struct Alloc {
    free: Vec<u32>,
    next: u32,
}

/// One table per handle type.
pub(super) struct Table<T> {
    tag: usize,
    /// Slots 0 .. FIRST_LEN.
    first: [Slot<T>; FIRST_LEN],
    /// `rest[b - 1]` is bucket b, 2^(FIRST_BITS + b) slots; allocated on
    /// first use, never freed or moved.
    rest: [AtomicPtr<Slot<T>>; BUCKETS - 1],
    alloc: Mutex<Alloc>,
}

// SAFETY: a slot's value is written only by the insert that owns the
// (unlisted, not live) slot, read through `get` only while live, and
// dropped only by the one free that wins the state word: the object is
// shared between threads as an `Arc<T>` would be, so T: Send + Sync.
unsafe impl<T: Send + Sync> Sync for Table<T> {}
// SAFETY: as above; a table moved to another thread takes its objects.
unsafe impl<T: Send + Sync> Send for Table<T> {}

/// Bucket and offset of slot `index` (bucket 0 is `first`).
fn locate(index: usize) -> (usize, usize) {
    let j = index + FIRST_LEN;
    let top = usize::BITS - 1 - j.leading_zeros();
    let b = (top - FIRST_BITS) as usize;
    (b, j - (1 << top))
}

/// Bucket b's slots: 2^(FIRST_BITS + b), but no more than the indices
/// left below 2^24 (the last bucket holds 32, not 2^24).
fn bucket_len(b: usize) -> usize {
    let len = 1usize << (FIRST_BITS as usize + b);
    let first = len - FIRST_LEN; // the bucket's first index
    len.min(INDEX_MASK + 1 - first)
}

// Handles are 64-bit numbers: on a 32-bit target the generation would have
// 4 bits, and a slot would retire after 15 uses.
const _: () = assert!(usize::BITS == 64, "handles need a 64-bit target");

impl<T> Table<T> {
    pub(super) const fn new(tag: usize) -> Table<T> {
        Table {
            tag,
            first: [const { Slot::empty() }; FIRST_LEN],
            rest: [const { AtomicPtr::new(core::ptr::null_mut()) }; BUCKETS - 1],
            alloc: Mutex::new(Alloc {
                free: Vec::new(),
                next: 0,
            }),
        }
    }
}

/// Drop the object of a live slot (`&mut`: nothing else uses it).
fn drop_if_live<T>(s: &mut Slot<T>) {
    if *s.state.get_mut() & LIVE != 0 {
        // SAFETY: LIVE set: the value was initialized by `insert` and not
        // dropped since (a free clears LIVE first).
        unsafe { s.value.get_mut().assume_init_drop() };
    }
}

/// The tables the library hands out handles from are statics and are never
/// dropped; a table that is (a unit test's) drops every live object and
/// gives back its buckets.
impl<T> Drop for Table<T> {
    fn drop(&mut self) {
        for s in self.first.iter_mut() {
            drop_if_live(s);
        }
        for (i, bucket) in self.rest.iter().enumerate() {
            let p = bucket.load(Ordering::Acquire);
            if p.is_null() {
                continue;
            }
            // SAFETY: `p` came from Box::into_raw of a boxed slice of
            // bucket_len(i + 1) slots in `insert`; &mut self: no handle use
            // is in flight.
            let mut slots =
                unsafe { Box::from_raw(core::ptr::slice_from_raw_parts_mut(p, bucket_len(i + 1))) };
            for s in slots.iter_mut() {
                drop_if_live(s);
            }
        }
    }
}

impl<T: Send + Sync> Table<T> {
    /// The slot of `index`, if it exists.
    #[inline]
    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        if let Some(s) = self.first.get(index) {
            return Some(s);
        }
        let (b, off) = locate(index);
        let bucket = self.rest.get(b.checked_sub(1)?)?.load(Ordering::Acquire);
        if bucket.is_null() {
            return None;
        }
        // SAFETY: a non-null bucket pointer was stored (Release) by
        // `insert` from a leaked allocation of bucket_len(b) initialized
        // slots, never freed; off < bucket_len(b) by `locate`.
        Some(unsafe { &*bucket.add(off) })
    }

    /// Split a handle into (slot, expected state word), refusing anything
    /// that is not a handle of this table's type.
    #[inline]
    fn decode(&self, h: usize) -> Result<(&Slot<T>, u64), Status> {
        if h & TAG_MASK != self.tag {
            return Err(Status::InvalidArgument);
        }
        let index = (h >> TAG_BITS) & INDEX_MASK;
        let generation = (h >> (TAG_BITS + INDEX_BITS)) as u64;
        let slot = self.slot(index).ok_or(Status::InvalidArgument)?;
        Ok((slot, generation << 1 | LIVE))
    }

    /// Register a new object; the handle to give C.
    ///
    /// Errors: OUT_OF_MEMORY when 2^24 - 1 handles of this type are live.
    pub(super) fn insert(&self, obj: T) -> Result<*mut T, Status> {
        let index = {
            let mut a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
            match a.free.pop() {
                Some(i) => i as usize,
                None => {
                    let i = a.next as usize;
                    if i > INDEX_MASK {
                        return Err(Status::OutOfMemory);
                    }
                    let (b, off) = locate(i);
                    if b > 0 && off == 0 {
                        // An allocation that fails is OUT_OF_MEMORY, not
                        // an abort of the caller's process.
                        let mut v: Vec<Slot<T>> = Vec::new();
                        v.try_reserve_exact(bucket_len(b))
                            .map_err(|_| Status::OutOfMemory)?;
                        v.extend((0..bucket_len(b)).map(|_| Slot::empty()));
                        let slots = v.into_boxed_slice();
                        // Leaked on purpose: handles are checked against
                        // these slots for as long as the process runs.
                        let p = Box::into_raw(slots).cast::<Slot<T>>();
                        self.rest[b - 1].store(p, Ordering::Release);
                    }
                    a.next += 1;
                    i
                }
            }
        };
        // This thread owns the slot now: it is on no free list, not live,
        // and its last object (if any) was dropped before it was listed.
        let slot = self.slot(index).ok_or(Status::Panic)?;
        let generation = (slot.state.load(Ordering::Relaxed) >> 1) + 1;
        // SAFETY: the slot is ours (above): no other thread reads or writes
        // its value until the state word below makes it live.
        unsafe { (*slot.value.get()).write(obj) };
        // Release: whoever sees the slot live sees the object written above.
        slot.state.store(generation << 1 | LIVE, Ordering::Release);
        let h = (generation as usize) << (TAG_BITS + INDEX_BITS) | index << TAG_BITS | self.tag;
        // A number, never dereferenced: a pointer without provenance.
        Ok(core::ptr::null_mut::<u8>().wrapping_add(h).cast())
    }

    /// The object of a live handle. NULL gives NULL_ARGUMENT; anything but
    /// a live handle of this type gives INVALID_ARGUMENT.
    #[inline]
    pub(super) fn get(&self, h: *const T) -> Result<&T, Status> {
        if h.is_null() {
            return Err(Status::NullArgument);
        }
        let (slot, live) = self.decode(h as usize)?;
        if slot.state.load(Ordering::Acquire) != live {
            return Err(Status::InvalidArgument);
        }
        // SAFETY: the slot was live in the handle's generation (Acquire
        // pairs with insert's Release): its value is initialized and is
        // dropped only by the free that clears LIVE. A free by another
        // thread during this call is the caller's bug (module comment,
        // man pages).
        Ok(unsafe { (*slot.value.get()).assume_init_ref() })
    }

    /// Free a live handle's object; NULL, a freed, stale or foreign handle
    /// is a no-op.
    ///
    /// # Safety
    ///
    /// No reference that [`get`](Self::get) returned for `h` may be in use,
    /// in this thread or another: the object is dropped here. (The C ABI
    /// passes this on to its callers: freeing a handle another thread
    /// still uses is the caller's bug.)
    pub(super) unsafe fn free(&self, h: *mut T) {
        if h.is_null() {
            return;
        }
        let Ok((slot, live)) = self.decode(h as usize) else {
            return;
        };
        // Exactly one free of a live handle wins.
        if slot
            .state
            .compare_exchange(live, live & !LIVE, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        // SAFETY: this free won the state word: the value is initialized,
        // no later `get` reaches it (not live) and no insert writes it (the
        // slot is not on the free list yet).
        unsafe { (*slot.value.get()).assume_init_drop() };
        // Listed only after the drop: an insert may then overwrite it. A
        // drop that panics leaves the slot unlisted, never reused.
        if live >> 1 < GEN_MAX {
            let index = (h as usize >> TAG_BITS) & INDEX_MASK;
            let mut a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
            a.free.push(index as u32);
        }
    }
}

#[cfg(test)]
// Tests may panic: a failure is a test failure.
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    /// Free in a test: no reference from `get` is held across it.
    fn free<T: Send + Sync>(t: &Table<T>, h: *mut T) {
        // SAFETY: the tests drop every reference from get before a free.
        unsafe { t.free(h) }
    }

    #[test]
    fn locate_covers_every_index_once() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate((1 << FIRST_BITS) - 1), (0, (1 << FIRST_BITS) - 1));
        assert_eq!(locate(1 << FIRST_BITS), (1, 0));
        let (b, off) = locate(INDEX_MASK);
        assert!(b < BUCKETS);
        assert!(off < bucket_len(b));
        // Consecutive indices walk the buckets without a gap.
        let mut prev = locate(0);
        for i in 1..5000 {
            let cur = locate(i);
            if cur.0 == prev.0 {
                assert_eq!(cur.1, prev.1 + 1);
            } else {
                assert_eq!((cur.0, cur.1), (prev.0 + 1, 0));
                assert_eq!(prev.1 + 1, bucket_len(prev.0));
            }
            prev = cur;
        }
    }

    #[test]
    fn buckets_hold_every_index_and_no_more() {
        let total: usize = FIRST_LEN + (1..BUCKETS).map(bucket_len).sum::<usize>();
        assert_eq!(total, INDEX_MASK + 1);
        assert_eq!(bucket_len(BUCKETS - 1), FIRST_LEN);
        // The last index lands in the last slot of the last bucket.
        assert_eq!(
            locate(INDEX_MASK),
            (BUCKETS - 1, bucket_len(BUCKETS - 1) - 1)
        );
    }

    #[test]
    fn freed_and_stale_handles_are_refused() {
        let t: Table<u64> = Table::new(TAG_LEDGER);
        let a = t.insert(1).unwrap();
        assert_eq!(*t.get(a).unwrap(), 1);
        free(&t, a);
        assert_eq!(t.get(a), Err(Status::InvalidArgument));
        // A second free is a no-op.
        free(&t, a);
        // The slot is reused with the next generation: the old handle
        // does not reach the new object, and its free does not free it.
        let b = t.insert(2).unwrap();
        assert_ne!(a, b);
        assert_eq!(
            a as usize >> TAG_BITS & INDEX_MASK,
            b as usize >> TAG_BITS & INDEX_MASK
        );
        assert_eq!(t.get(a), Err(Status::InvalidArgument));
        free(&t, a);
        assert_eq!(*t.get(b).unwrap(), 2);
        free(&t, b);
    }

    #[test]
    fn foreign_and_wrong_type_handles_are_refused() {
        let ledgers: Table<u64> = Table::new(TAG_LEDGER);
        let others: Table<u64> = Table::new(TAG_ADMISSION);
        let l = ledgers.insert(7).unwrap();
        assert_eq!(others.get(l), Err(Status::InvalidArgument));
        free(&others, l);
        assert_eq!(*ledgers.get(l).unwrap(), 7);
        let x = 5u64;
        assert_eq!(ledgers.get(&x), Err(Status::InvalidArgument));
        assert_eq!(ledgers.get(core::ptr::null()), Err(Status::NullArgument));
        // Right tag, an index never handed out.
        let never = (1000 << TAG_BITS | TAG_LEDGER) as *const u64;
        assert_eq!(ledgers.get(never), Err(Status::InvalidArgument));
        // Right tag and index, wrong generation.
        let wrong_gen = (l as usize + (1 << (TAG_BITS + INDEX_BITS))) as *const u64;
        assert_eq!(ledgers.get(wrong_gen), Err(Status::InvalidArgument));
        free(&ledgers, l);
    }

    #[test]
    fn many_handles_grow_the_buckets() {
        let t: Table<usize> = Table::new(TAG_RESERVOIR);
        let hs: Vec<_> = (0..300).map(|i| t.insert(i).unwrap()).collect();
        for (i, h) in hs.iter().enumerate() {
            assert_eq!(*t.get(*h).unwrap(), i);
        }
        for h in &hs {
            free(&t, *h);
        }
        for h in &hs {
            assert_eq!(t.get(*h), Err(Status::InvalidArgument));
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "many threads: slow under Miri")]
    fn concurrent_frees_free_once() {
        use std::sync::atomic::AtomicUsize;
        use std::sync::Arc;

        static DROPS: AtomicUsize = AtomicUsize::new(0);
        struct Counted;
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::Relaxed);
            }
        }
        static T: Table<Counted> = Table::new(TAG_ADMISSION);
        for _ in 0..200 {
            let h = T.insert(Counted).unwrap() as usize;
            let go = Arc::new(std::sync::Barrier::new(4));
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let go = go.clone();
                    std::thread::spawn(move || {
                        go.wait();
                        free(&T, h as *mut Counted);
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
        }
        assert_eq!(DROPS.load(Ordering::Relaxed), 200);
    }
}

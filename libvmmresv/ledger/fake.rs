//! A ledger in memory and a world of make-believe processes, for the
//! protocol's tests: unit tests, model checking (loom), property tests and
//! fuzzing all use this one. Not part of the supported API.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

use super::{AtomicU64, Ledger, Result, Role, Slot, World};
use crate::status::{Error, Status};

/// Totals, spill count and slots in memory, and the record locks of the
/// processes playing against them.
pub struct FakeLedger {
    /// The pools' total words.
    pub totals: [AtomicU64; 3],
    /// The spill count.
    pub spilled: AtomicU64,
    /// The slots.
    pub slots: Vec<Slot>,
    /// Who holds each lock byte: (slot, role) → process id.
    locks: Mutex<HashMap<(usize, Role), u32>>,
    /// Make every "does another process hold it" question fail (EMFILE).
    failing: AtomicBool,
}

impl FakeLedger {
    /// An empty ledger of `n` slots.
    pub fn new(n: usize) -> FakeLedger {
        FakeLedger {
            totals: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            spilled: AtomicU64::new(0),
            slots: (0..n).map(|_| Slot::new()).collect(),
            locks: Mutex::new(HashMap::new()),
            failing: AtomicBool::new(false),
        }
    }

    /// The protocol over these words.
    pub fn ledger(&self) -> Ledger<'_> {
        Ledger::new(
            [&self.totals[0], &self.totals[1], &self.totals[2]],
            &self.spilled,
            &self.slots,
        )
    }

    /// Process `id` dies: the kernel drops its locks.
    pub fn kill(&self, id: u32) {
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, holder| *holder != id);
    }

    /// Whether the "others hold" question fails from now on.
    pub fn fail_held(&self, on: bool) {
        self.failing.store(on, Relaxed);
    }

    /// Lock bytes held by process `id`.
    pub fn held_by(&self, id: u32) -> usize {
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|h| **h == id)
            .count()
    }
}

/// One make-believe process.
pub struct FakeWorld<'a> {
    ledger: &'a FakeLedger,
    id: u32,
}

impl<'a> FakeWorld<'a> {
    /// Process `id` (never 0) playing against `ledger`.
    pub fn process(ledger: &'a FakeLedger, id: u32) -> FakeWorld<'a> {
        FakeWorld { ledger, id }
    }
}

impl World for FakeWorld<'_> {
    fn lock(&self, slot: usize, role: Role) -> Result<bool> {
        let mut l = self.ledger.locks.lock().unwrap_or_else(|p| p.into_inner());
        // The holder takes both bytes, the adopter its own. A real
        // process's second thread finds its own bit set: the same answer as
        // another process's lock.
        let keys: &[Role] = match role {
            Role::Holder => &[Role::Holder, Role::Adopter],
            Role::Adopter => &[Role::Adopter],
        };
        if keys.iter().any(|r| l.contains_key(&(slot, *r))) {
            return Ok(false);
        }
        for r in keys {
            l.insert((slot, *r), self.id);
        }
        Ok(true)
    }

    fn unlock(&self, slot: usize, role: Role) {
        let mut l = self.ledger.locks.lock().unwrap_or_else(|p| p.into_inner());
        let keys: &[Role] = match role {
            Role::Holder => &[Role::Holder, Role::Adopter],
            Role::Adopter => &[Role::Adopter],
        };
        for r in keys {
            if l.get(&(slot, *r)) == Some(&self.id) {
                l.remove(&(slot, *r));
            }
        }
    }

    fn share(&self, slot: usize) {
        let mut l = self.ledger.locks.lock().unwrap_or_else(|p| p.into_inner());
        if l.get(&(slot, Role::Holder)) == Some(&self.id)
            && l.get(&(slot, Role::Adopter)) == Some(&self.id)
        {
            l.remove(&(slot, Role::Adopter));
        }
    }

    fn mine(&self, slot: usize) -> bool {
        let l = self.ledger.locks.lock().unwrap_or_else(|p| p.into_inner());
        [Role::Holder, Role::Adopter]
            .iter()
            .any(|r| l.get(&(slot, *r)) == Some(&self.id))
    }

    fn others_hold(&self, slot: usize) -> Result<bool> {
        if self.ledger.failing.load(Relaxed) {
            return Err(Error::with_errno(Status::Io, libc::EMFILE));
        }
        let l = self.ledger.locks.lock().unwrap_or_else(|p| p.into_inner());
        Ok([Role::Holder, Role::Adopter]
            .iter()
            .any(|r| matches!(l.get(&(slot, *r)), Some(h) if *h != self.id)))
    }

    fn pid(&self) -> u32 {
        self.id
    }

    fn origin(&self) -> u64 {
        0
    }

    fn now_secs(&self) -> u64 {
        1_700_000_000
    }
}

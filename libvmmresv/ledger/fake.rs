//! A ledger in memory and a world of make-believe processes, for the
//! protocol's tests: unit tests, model checking (loom), property tests and
//! fuzzing all use this one. Not part of the supported API.
//!
//! [`FakeWorld`] is a process that lives; [`Mortal`] one that dies at a
//! chosen step (its locks dropped, its thread stopped), which the model
//! checker and the property tests use to kill a holder inside a claim or a
//! release.

use std::cell::Cell;
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

/// Unwind payload of a [`Mortal`] process stopped dead.
pub struct Died;

/// Keep the panic hook quiet about [`Died`] unwinds (every other panic is
/// still reported). Once per test binary; idempotent.
pub fn quiet_deaths() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let old = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<Died>().is_none() {
                old(info)
            }
        }));
    });
}

/// Run `f` as a process that may die: `None` if it died ([`Died`]); any
/// other panic is a failure and goes on unwinding.
pub fn survive<R>(f: impl FnOnce() -> R) -> Option<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(e) if e.downcast_ref::<Died>().is_some() => None,
        Err(e) => std::panic::resume_unwind(e),
    }
}

/// A make-believe process that dies at its `die_at`-th step (never, for
/// `u32::MAX`): a step is each call of the World, and each capacity
/// reading whose closure calls [`Mortal::step`]. Dying, it drops its locks
/// (as the kernel does) and stops its thread there: it unwinds with
/// [`Died`] (see [`survive`], [`quiet_deaths`]).
pub struct Mortal<'a> {
    ledger: &'a FakeLedger,
    w: FakeWorld<'a>,
    left: Cell<u32>,
    syscall: Option<Box<dyn Fn() + 'a>>,
}

impl<'a> Mortal<'a> {
    /// Process `id` (never 0) on `ledger`, dead at its `die_at`-th step.
    pub fn new(ledger: &'a FakeLedger, id: u32, die_at: u32) -> Mortal<'a> {
        Mortal {
            ledger,
            w: FakeWorld::process(ledger, id),
            left: Cell::new(die_at),
            syscall: None,
        }
    }

    /// Call `f` before every call that reaches the kernel's lock table
    /// (and before dying): the model checker makes it one access to a
    /// model-checked atomic, so that the lock table's operations are
    /// ordered against the ledger's words.
    pub fn on_syscall(mut self, f: impl Fn() + 'a) -> Mortal<'a> {
        self.syscall = Some(Box::new(f));
        self
    }

    /// This process's id.
    pub fn id(&self) -> u32 {
        self.w.id
    }

    fn syscall(&self) {
        if let Some(f) = &self.syscall {
            f();
        }
    }

    /// One step: the `die_at`-th kills the process (its locks dropped)
    /// and unwinds with [`Died`].
    // Unwinding is how a fake process dies: the test catches it.
    #[allow(clippy::panic)]
    pub fn step(&self) {
        let n = self.left.get();
        if n == 0 {
            self.syscall();
            self.ledger.kill(self.w.id);
            std::panic::panic_any(Died);
        }
        if n != u32::MAX {
            self.left.set(n.saturating_sub(1));
        }
    }

    fn call<R>(&self, f: impl FnOnce(&FakeWorld<'a>) -> R) -> R {
        self.step();
        self.syscall();
        f(&self.w)
    }
}

impl World for Mortal<'_> {
    fn lock(&self, slot: usize, role: Role) -> Result<bool> {
        self.call(|w| w.lock(slot, role))
    }

    fn unlock(&self, slot: usize, role: Role) {
        self.call(|w| w.unlock(slot, role))
    }

    fn share(&self, slot: usize) {
        self.call(|w| w.share(slot))
    }

    fn mine(&self, slot: usize) -> bool {
        self.call(|w| w.mine(slot))
    }

    fn others_hold(&self, slot: usize) -> Result<bool> {
        self.call(|w| w.others_hold(slot))
    }

    fn pid(&self) -> u32 {
        self.step();
        self.w.pid()
    }

    fn origin(&self) -> u64 {
        self.step();
        self.w.origin()
    }

    fn now_secs(&self) -> u64 {
        self.step();
        self.w.now_secs()
    }
}

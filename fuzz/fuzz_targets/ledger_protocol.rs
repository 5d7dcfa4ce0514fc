//! The cross-process claim ledger's protocol on the one fake world
//! (`vmmresv::ledger::fake`, the same the unit tests, loom and the
//! property tests use): sequences of claims, releases, deaths and
//! reconciles by make-believe processes, any of which may die at any step
//! of a claim (its capacity reading included) or of a release. The file
//! format is the `ledger_file` target's; this one is the protocol with
//! holders that are alive, which a fresh file (nobody holds its locks)
//! cannot have.
//!
//! Input: three capacities (one byte each, pages 0..=79, one per pool),
//! then up to 48 operations, each a kind byte and its arguments (an
//! exhausted input reads as zeros, and stops the sequence):
//!
//! - claim (kinds 0, 1): process, pool, pages (1..=40), slot hint, and a
//!   death byte (below 12: dies at that step; else never);
//! - release (2): a live claim, released by its holder, with a death byte;
//! - release by another (3): a live claim and a process that does not hold
//!   it;
//! - kill (4): a process dies (the kernel drops its locks); a new one takes
//!   its place;
//! - reconcile (5): by a live process.
//!
//! Invariants (a plain model of the live claims: those whose holder lives
//! and has not released them):
//! - never a panic but a planned death; `claims` never fails (the protocol
//!   never leaves a word it cannot read);
//! - a claim that succeeds fits the capacity it was checked against
//!   (others + pages <= capacity), reads back as a CLAIMED slot with its
//!   VM, pool and pages, and is locked by its holder; a refusal has a
//!   shortfall; a claim that fails holds no new lock;
//! - a live claim is never reclaimed or taken: it stays listed, and each
//!   pool's total counts at least the live claims' pages;
//! - a release by the holder gives back exactly the claim's pages; a
//!   release by another process fails (NOT_HOLDER) and changes nothing;
//! - after a reconcile the listed claims are exactly the live ones and each
//!   pool's total is exactly their pages; at the end, with every process
//!   dead, a reconcile leaves no claim and every total 0.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vmmresv::ledger::fake::{quiet_deaths, survive, FakeLedger, FakeWorld, Mortal};
use vmmresv::ledger::{ClaimOutcome, Ledger, Pool, SlotState, World};
use vmmresv::Status;
use vmmresv_fuzz::Input;

/// Slots of the ledger: few, so that it fills up.
const SLOTS: usize = 8;
/// Processes playing at once.
const PROCS: usize = 3;
/// Operations per input at the most.
const MAX_OPS: usize = 48;

/// A claim whose holder lives and has not released it.
#[derive(Clone, Copy, Debug)]
struct Live {
    slot: usize,
    uuid: [u8; 16],
    pool: Pool,
    pages: u64,
    holder: u32,
}

struct Model<'a> {
    fake: &'a FakeLedger,
    l: Ledger<'a>,
    cap: [u64; 3],
    procs: [u32; PROCS],
    next_id: u32,
    next_uuid: u32,
    live: Vec<Live>,
}

/// A death byte: below 12, the step the process dies at; else never.
fn die_at(b: u8) -> u32 {
    if b < 12 {
        u32::from(b)
    } else {
        u32::MAX
    }
}

impl<'a> Model<'a> {
    fn fresh(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    fn uuid(&mut self) -> [u8; 16] {
        self.next_uuid += 1;
        let mut u = [0x5A; 16];
        u[12..].copy_from_slice(&self.next_uuid.to_be_bytes());
        u
    }

    /// Process `id` died: its claims are no longer live; a fresh process
    /// takes its place.
    fn died(&mut self, id: u32) {
        self.fake.kill(id);
        self.live.retain(|c| c.holder != id);
        for p in self.procs.iter_mut() {
            if *p == id {
                self.next_id += 1;
                *p = self.next_id;
            }
        }
    }

    /// Pages of the live claims in `pool`.
    fn live_pages(&self, pool: Pool) -> u64 {
        self.live
            .iter()
            .filter(|c| c.pool == pool)
            .map(|c| c.pages)
            .sum()
    }

    /// After every operation: what no operation may ever break.
    fn check(&self) {
        let listed = self
            .l
            .claims()
            .expect("claims() failed on a ledger only the protocol wrote");
        for c in &self.live {
            let got = listed.iter().find(|i| i.slot == c.slot);
            assert!(
                matches!(got, Some(i) if i.uuid == c.uuid && i.state == SlotState::Claimed
                    && i.pool == c.pool && i.pages == c.pages),
                "live claim {:?} is not listed as it was made: {:?}",
                c,
                got
            );
        }
        for pool in Pool::ALL {
            let live = self.live_pages(pool);
            assert!(
                self.l.claimed(pool) >= live,
                "{:?}: total {} below the live claims' {} pages",
                pool,
                self.l.claimed(pool),
                live
            );
        }
    }

    /// After a reconcile (every live process's operation is complete):
    /// the listed claims are the live ones, the totals their pages.
    fn check_settled(&self) {
        let listed = self.l.claims().unwrap();
        let mut slots: Vec<usize> = listed.iter().map(|i| i.slot).collect();
        let mut want: Vec<usize> = self.live.iter().map(|c| c.slot).collect();
        slots.sort_unstable();
        want.sort_unstable();
        assert_eq!(slots, want, "after a reconcile: {:?}", listed);
        for pool in Pool::ALL {
            let live = self.live_pages(pool);
            assert_eq!(self.l.claimed(pool), live, "{:?} after a reconcile", pool);
        }
    }

    fn claim(&mut self, inp: &mut Input<'_>) {
        let who = usize::from(inp.u8()) % PROCS;
        let pool = Pool::ALL[usize::from(inp.u8()) % 3];
        let pages = 1 + u64::from(inp.u8() % 40);
        let hint = usize::from(inp.u8()) % SLOTS;
        let at = die_at(inp.u8());
        let id = self.procs[who];
        let uuid = self.uuid();
        let cap = self.cap[pool as usize];
        let held = self.fake.held_by(id);
        let p = Mortal::new(self.fake, id, at);
        let l = &self.l;
        let got = survive(|| {
            l.claim(&p, uuid, pool, pages, hint, &mut || {
                p.step();
                Ok(cap)
            })
        });
        match got {
            None => self.died(id),
            Some(Ok(ClaimOutcome::Claimed { slot, others })) => {
                assert!(
                    others + pages <= cap,
                    "claim of {} over capacity {} ({} others)",
                    pages,
                    cap,
                    others
                );
                assert!(
                    FakeWorld::process(self.fake, id).mine(slot),
                    "claim not locked"
                );
                self.live.push(Live {
                    slot,
                    uuid,
                    pool,
                    pages,
                    holder: id,
                });
            }
            Some(Ok(ClaimOutcome::Refused(r))) => {
                assert!(r.shortfall > 0, "a refusal without a shortfall: {:?}", r);
                assert_eq!(self.fake.held_by(id), held, "a refused claim holds a lock");
            }
            Some(Err(e)) => {
                assert_ne!(e.status(), Status::Panic, "{:?}", e);
                assert_eq!(
                    self.fake.held_by(id),
                    held,
                    "a failed claim holds a lock: {:?}",
                    e
                );
            }
        }
    }

    fn release(&mut self, inp: &mut Input<'_>) {
        let pick = usize::from(inp.u8());
        let at = die_at(inp.u8());
        if self.live.is_empty() {
            return;
        }
        let k = pick % self.live.len();
        let c = self.live[k];
        let p = Mortal::new(self.fake, c.holder, at);
        let l = &self.l;
        match survive(|| l.release(&p, c.slot)) {
            None => self.died(c.holder),
            Some(r) => {
                assert_eq!(r.map_err(|e| e.status()), Ok(c.pages), "release of {:?}", c);
                self.live.remove(k);
            }
        }
    }

    fn release_by_another(&mut self, inp: &mut Input<'_>) {
        let pick = usize::from(inp.u8());
        let who = usize::from(inp.u8()) % PROCS;
        if self.live.is_empty() {
            return;
        }
        let c = self.live[pick % self.live.len()];
        let id = self.procs[who];
        if id == c.holder {
            return;
        }
        let before = self.l.claims().unwrap();
        let totals: Vec<u64> = Pool::ALL.iter().map(|p| self.l.claimed(*p)).collect();
        let got = self.l.release(&FakeWorld::process(self.fake, id), c.slot);
        assert_eq!(
            got.map_err(|e| e.status()),
            Err(Status::NotHolder),
            "{:?} by {}",
            c,
            id
        );
        assert_eq!(
            self.l.claims().unwrap(),
            before,
            "a refused release changed the slots"
        );
        let after: Vec<u64> = Pool::ALL.iter().map(|p| self.l.claimed(*p)).collect();
        assert_eq!(after, totals, "a refused release changed a total");
    }

    fn reconcile(&mut self, id: u32) {
        let r = self.l.reconcile(&FakeWorld::process(self.fake, id));
        assert!(r.is_ok(), "reconcile failed: {:?}", r);
        self.check_settled();
    }
}

fuzz_target!(|data: &[u8]| {
    quiet_deaths();
    let fake = FakeLedger::new(SLOTS);
    let mut inp = Input::new(data);
    let cap = [
        u64::from(inp.u8() % 80),
        u64::from(inp.u8() % 80),
        u64::from(inp.u8() % 80),
    ];
    let mut m = Model {
        fake: &fake,
        l: fake.ledger(),
        cap,
        procs: [1, 2, 3],
        next_id: PROCS as u32,
        next_uuid: 0,
        live: Vec::new(),
    };
    for _ in 0..MAX_OPS {
        if inp.is_empty() {
            break;
        }
        match inp.u8() % 6 {
            0 | 1 => m.claim(&mut inp),
            2 => m.release(&mut inp),
            3 => m.release_by_another(&mut inp),
            4 => {
                let id = m.procs[usize::from(inp.u8()) % PROCS];
                m.died(id);
            }
            _ => {
                let id = m.procs[usize::from(inp.u8()) % PROCS];
                m.reconcile(id);
            }
        }
        m.check();
    }
    // Every process dies; a newcomer's reconcile leaves nothing behind.
    for id in m.procs {
        m.died(id);
    }
    let last = m.fresh();
    m.reconcile(last);
    assert!(m.l.claims().unwrap().is_empty());
    for pool in Pool::ALL {
        assert_eq!(m.l.claimed(pool), 0, "{:?} after everyone died", pool);
    }
});

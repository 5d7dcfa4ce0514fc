//! Model checking of the cross-process claim ledger's protocol with loom:
//! every interleaving (up to a preemption bound) of 2–3 threads doing
//! claim, release (commit/abort) and reconcile (reclaiming a dead owner).
//! Threads stand in for processes: the protocol only touches the shared
//! words, which loom's atomics model here.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_ledger`
//!
//! Bugs planted by hand in ledger.rs, each caught here: the claim's CAS on
//! the total replaced by a plain store (racing_claims_never_over_admit);
//! reconcile not counting a live owner's RELEASING slot, whose release the
//! freeze stopped (both reconcile models).

#![cfg(loom)]

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

use loom::sync::Arc;
use vmmresv::admission::ledger::{AtomicU64, ClaimOutcome, Ledger, Pool, Slot, SlotState, World};
use vmmresv::admission::owner::Owner;
use vmmresv::Status;

/// Processes live and die as the model says; time moves a second per pause
/// so waits time out within a few steps instead of exploding the model.
struct Fake {
    alive: Mutex<HashSet<Owner>>,
    ms: std::sync::atomic::AtomicU64,
}

impl Fake {
    fn new(owners: &[Owner]) -> Fake {
        Fake {
            alive: Mutex::new(owners.iter().copied().collect()),
            ms: std::sync::atomic::AtomicU64::new(0),
        }
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
        0
    }
    fn pause(&self) {
        self.ms.fetch_add(1000, Relaxed);
        loom::thread::yield_now();
    }
}

struct Mem {
    total: AtomicU64,
    transient: AtomicU64,
    arc: AtomicU64,
    rec: AtomicU64,
    slots: Vec<Slot>,
    world: Fake,
}

impl Mem {
    fn new(n: usize, owners: &[Owner]) -> Arc<Mem> {
        Arc::new(Mem {
            total: AtomicU64::new(0),
            transient: AtomicU64::new(0),
            arc: AtomicU64::new(0),
            rec: AtomicU64::new(0),
            slots: (0..n).map(|_| Slot::new()).collect(),
            world: Fake::new(owners),
        })
    }
    fn ledger(&self) -> Ledger<'_> {
        Ledger::new(
            [&self.total, &self.transient, &self.arc],
            &self.rec,
            &self.slots,
        )
    }
    /// The ledger is consistent: the total is exactly the live claims.
    fn assert_consistent(&self) {
        let l = self.ledger();
        let t = l.total(Pool::Reservoir);
        assert!(!t.frozen);
        let live: u64 = l
            .claims()
            .unwrap()
            .iter()
            .filter(|c| c.state == SlotState::Claimed && self.world.alive(c.owner))
            .map(|c| c.pages)
            .sum();
        assert_eq!(t.claimed, live, "total disagrees with the live claims");
    }
}

const A: Owner = Owner { pid: 1, start: 1 };
const B: Owner = Owner { pid: 2, start: 1 };
const C: Owner = Owner { pid: 3, start: 1 };
const DEAD: Owner = Owner { pid: 9, start: 1 };

fn uuid(n: u8) -> [u8; 16] {
    let mut u = [0u8; 16];
    u[15] = n;
    u
}

/// The spawn orders to try: loom 0.7's partial-order reduction remembers
/// only the last access to an atomic, so when thread A loads a word and
/// thread B then loads and CASes it, loom never tries B's CAS before A's
/// load (tokio-rs/loom#166, #392). Every CAS loop starts with a load, so
/// each model runs once per spawn order: both orders of two threads, the
/// three rotations of three (every pair in both relative orders). See
/// tests/loom_local.rs for the planted bugs a single order missed.
fn orders(n: usize) -> Vec<Vec<usize>> {
    match n {
        2 => vec![vec![0, 1], vec![1, 0]],
        3 => vec![vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1]],
        _ => panic!("models here have 2 or 3 threads"),
    }
}

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Spawn `jobs` in `order` and join them all.
fn run(order: &[usize], jobs: Vec<Job>) {
    let mut jobs: Vec<Option<Job>> = jobs.into_iter().map(Some).collect();
    let handles: Vec<_> = order
        .iter()
        .map(|&i| loom::thread::spawn(jobs[i].take().expect("each job spawned once")))
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Run the model `f(order)` under loom for every spawn order of `threads`
/// threads (preemption bound 2) and return how many interleavings were
/// explored in all, so a test can assert the model did explore (a check
/// that ran once would prove nothing).
fn explore(threads: usize, f: impl Fn(&[usize]) + Sync + Send + Clone + 'static) -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    for order in orders(threads) {
        let r = runs.clone();
        let f = f.clone();
        let mut b = loom::model::Builder::new();
        if b.preemption_bound.is_none() {
            b.preemption_bound = Some(2);
        }
        b.check(move || {
            r.fetch_add(1, Ordering::Relaxed);
            f(&order)
        });
    }
    let n = runs.load(Ordering::Relaxed);
    println!("explored {} interleavings", n);
    n
}

/// Two claimants race for room for only one: exactly one wins, the total
/// never passes the capacity, and after the winner's release it is 0.
#[test]
fn racing_claims_never_over_admit() {
    let n = explore(2, |order| {
        let m = Mem::new(3, &[A, B]);
        let won = Arc::new(std::sync::Mutex::new(Vec::new()));
        let jobs: Vec<Job> = [(A, 1u8), (B, 2u8)]
            .into_iter()
            .map(|(o, n)| {
                let m = m.clone();
                let won = won.clone();
                Box::new(move || {
                    let l = m.ledger();
                    match l
                        .claim(
                            &m.world,
                            o,
                            uuid(n),
                            Pool::Reservoir,
                            2,
                            n as usize,
                            &mut || Ok(3),
                        )
                        .unwrap()
                    {
                        ClaimOutcome::Claimed { slot, .. } => {
                            assert!(l.total(Pool::Reservoir).claimed <= 3);
                            won.lock().unwrap().push((o, slot));
                        }
                        ClaimOutcome::Refused(r) => assert!(r.shortfall > 0),
                    }
                }) as Job
            })
            .collect();
        run(order, jobs);
        let won = won.lock().unwrap().clone();
        assert_eq!(won.len(), 1, "exactly one of two 2-page claims fits in 3");
        m.assert_consistent();
        let (o, slot) = won[0];
        assert_eq!(m.ledger().release(&m.world, o, slot).unwrap(), 2);
        assert_eq!(m.ledger().total(Pool::Reservoir).claimed, 0);
    });
    assert!(n > 10, "loom explored only {} interleavings", n);
}

/// A claim, a commit of an earlier claim, and a reconcile that reclaims a
/// dead owner's claim, all at once: afterwards the total is exactly the
/// live claims, and the dead owner's pages are gone.
#[test]
fn claim_commit_and_reclaim_interleave_consistently() {
    let n = explore(3, |order| {
        let m = Mem::new(4, &[A, B, C, DEAD]);
        let l = m.ledger();
        // A dead process's claim, and one of A's to commit.
        assert!(matches!(
            l.claim(&m.world, DEAD, uuid(9), Pool::Reservoir, 2, 0, &mut || Ok(
                10
            ))
            .unwrap(),
            ClaimOutcome::Claimed { .. }
        ));
        let a_slot = match l
            .claim(&m.world, A, uuid(1), Pool::Reservoir, 3, 1, &mut || Ok(10))
            .unwrap()
        {
            ClaimOutcome::Claimed { slot, .. } => slot,
            r => panic!("{:?}", r),
        };
        m.world.alive.lock().unwrap().remove(&DEAD);

        let (m1, m2, m3) = (m.clone(), m.clone(), m.clone());
        let jobs: Vec<Job> = vec![
            Box::new(move || {
                // Busy is allowed (a reconcile held the total too long);
                // the claim then simply stays.
                match m1.ledger().release(&m1.world, A, a_slot) {
                    Ok(p) => assert_eq!(p, 3),
                    Err(e) => assert_eq!(e.status(), Status::Busy),
                }
            }),
            Box::new(move || {
                match m2
                    .ledger()
                    .claim(&m2.world, B, uuid(2), Pool::Reservoir, 4, 2, &mut || Ok(10))
                {
                    Ok(_) => {}
                    Err(e) => assert_eq!(e.status(), Status::Busy),
                }
            }),
            Box::new(move || match m3.ledger().reconcile(&m3.world, C) {
                Ok(r) => assert!(r.claimed_after[0] <= 3 + 4),
                Err(e) => assert_eq!(e.status(), Status::Busy),
            }),
        ];
        run(order, jobs);
        // Whatever the interleaving, one more reconcile leaves the ledger
        // exactly equal to its live claims, without the dead one.
        m.ledger().reconcile(&m.world, C).unwrap();
        m.assert_consistent();
        assert!(m.ledger().find(&uuid(9), &Pool::ALL).unwrap().is_none());
    });
    assert!(n > 10, "loom explored only {} interleavings", n);
}

/// Reconcile never counts a live claim as dead or a dead one as live, even
/// while the live owner claims and releases: at every quiescent point the
/// total equals the live claims.
#[test]
fn reconcile_during_claim_release_keeps_live_claims() {
    let n = explore(2, |order| {
        let m = Mem::new(3, &[A, B, DEAD]);
        assert!(matches!(
            m.ledger()
                .claim(&m.world, DEAD, uuid(9), Pool::Reservoir, 1, 0, &mut || Ok(
                    8
                ))
                .unwrap(),
            ClaimOutcome::Claimed { .. }
        ));
        m.world.alive.lock().unwrap().remove(&DEAD);
        let (m1, m2) = (m.clone(), m.clone());
        let jobs: Vec<Job> = vec![
            Box::new(move || {
                let l = m1.ledger();
                if let Ok(ClaimOutcome::Claimed { slot, .. }) =
                    l.claim(&m1.world, A, uuid(1), Pool::Reservoir, 5, 1, &mut || Ok(8))
                {
                    // Hold it across the reconcile, then maybe release.
                    let _ = l.release(&m1.world, A, slot);
                }
            }),
            Box::new(move || {
                let _ = m2.ledger().reconcile(&m2.world, B);
            }),
        ];
        run(order, jobs);
        // Quiescent: no frozen total left behind by the reconciler, and
        // after a final reconcile the total is exactly the live claims.
        assert!(!m.ledger().total(Pool::Reservoir).frozen);
        m.ledger().reconcile(&m.world, B).unwrap();
        m.assert_consistent();
    });
    assert!(n > 10, "loom explored only {} interleavings", n);
}

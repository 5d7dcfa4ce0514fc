//! Model checking of the cross-process claim ledger's protocol with loom:
//! every interleaving (up to a preemption bound) of 2–3 threads standing in
//! for processes on one [`FakeLedger`] — claims racing for room, holders
//! dying at every step of a claim and of a release, reclaimers racing each
//! other (one stopped half-way while another finishes), operations left
//! half-done and helped on by whoever touches the total next, and a
//! hand-off racing the death of the process handing over.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_ledger`
//!
//! Death: a process dies at its k-th call of the World (or capacity
//! reading): its locks are dropped (as the kernel does) and its thread
//! stops there (unwinds). Each model runs once per k, so a holder is
//! killed before and after each of its lock, slot and total steps. The
//! steps with no World call between them (a claim's CAS on the total and
//! its slot's move to CLAIMED; a release's three CASes) are played by
//! leaving the words as that death leaves them before the threads start.
//!
//! The kernel's lock table lives behind a std mutex in [`FakeLedger`],
//! which loom does not see; every World call here first touches one loom
//! atomic (the "kernel"), so loom orders the lock-table operations against
//! the ledger's words and explores their interleavings like any other
//! shared access (the kernel's record locks are as ordered as that).

// Tests are not the library: a panic is how a check fails, and their
// arithmetic, casts and indexing are on values they chose. The strict
// lints of Cargo.toml are for the library.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions
)]
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use vmmresv::ledger::fake::{quiet_deaths, survive, FakeLedger, FakeWorld, Mortal};
use vmmresv::ledger::{ClaimOutcome, Pool, World};
use vmmresv::Status;

/// The ledger and the kernel's lock table, shared by the threads.
struct Host {
    fake: FakeLedger,
    kernel: AtomicUsize,
}

impl Host {
    fn new(slots: usize) -> Arc<Host> {
        Arc::new(Host {
            fake: FakeLedger::new(slots),
            kernel: AtomicUsize::new(0),
        })
    }

    /// A system call: one step loom orders against the others.
    fn syscall(&self) {
        self.kernel.fetch_add(1, SeqCst);
    }

    fn kill(&self, id: u32) {
        self.syscall();
        self.fake.kill(id);
    }

    fn total(&self, pool: Pool) -> u64 {
        self.fake.ledger().claimed(pool)
    }

    /// Pages of the claims in `pool` whose slot is CLAIMED or RELEASING
    /// (what a settled total must be).
    fn listed(&self, pool: Pool) -> u64 {
        self.fake
            .ledger()
            .claims()
            .unwrap()
            .iter()
            .filter(|c| c.pool == pool)
            .map(|c| c.pages)
            .sum()
    }

    /// Settled and consistent: a reconcile by a process that holds
    /// nothing repairs nothing, and leaves each total equal to its claims.
    fn assert_settled(&self) {
        let p = proc(self, 99, u32::MAX);
        let r = self.fake.ledger().reconcile(&p).unwrap();
        assert_eq!(r.repaired_totals, 0, "a total did not add up: {:?}", r);
        for pool in Pool::ALL {
            assert_eq!(self.total(pool), self.listed(pool), "{:?}", pool);
        }
    }
}

/// A process: the one fake world's mortal process ([`Mortal`]), each World
/// call a system call, and dead at its `die_at`-th step (never, for
/// u32::MAX).
fn proc(host: &Host, id: u32, die_at: u32) -> Mortal<'_> {
    Mortal::new(&host.fake, id, die_at).on_syscall(move || host.syscall())
}

fn uuid(n: u8) -> [u8; 16] {
    let mut u = [0u8; 16];
    u[0] = 0x42;
    u[15] = n;
    u
}

fn claimed(out: ClaimOutcome) -> Option<(usize, u64)> {
    match out {
        ClaimOutcome::Claimed { slot, others } => Some((slot, others)),
        ClaimOutcome::Refused(r) => {
            assert!(r.shortfall > 0);
            None
        }
    }
}

/// A claim (of a process that never dies) in the single-threaded prelude.
fn setup_claim(h: &Host, id: u32, n: u8, pool: Pool, pages: u64) -> usize {
    let p = proc(h, id, u32::MAX);
    let out = h
        .fake
        .ledger()
        .claim(&p, uuid(n), pool, pages, usize::from(n), &mut || Ok(100))
        .unwrap();
    claimed(out).expect("room in the prelude").0
}

/// Put slot `i` in `state` (its low 3 bits; ledger.rs module docs).
fn poke_state(h: &Host, i: usize, state: u64) {
    let w = h.fake.slots[i].peek_word();
    h.fake.slots[i].poke_word((w & !7) | state);
}

const RESERVING: u64 = 2;
const RELEASING: u64 = 4;

/// The spawn orders to try: loom 0.7's partial-order reduction remembers
/// only the last access to an atomic, so when thread A loads a word and
/// thread B then loads and CASes it, loom never tries B's CAS before A's
/// load (tokio-rs/loom#166, #392). Every CAS loop starts with a load, so
/// each model runs once per spawn order: both orders of two threads, the
/// three rotations of three (every pair in both relative orders).
fn orders(n: usize) -> Vec<Vec<usize>> {
    match n {
        2 => vec![vec![0, 1], vec![1, 0]],
        3 => vec![vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1]],
        _ => panic!("models here have 2 or 3 threads"),
    }
}

type Job = Box<dyn FnOnce() + Send + 'static>;

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
/// threads and return how many executions were explored, so a test can
/// assert the model did explore.
fn explore(
    threads: usize,
    bound: usize,
    f: impl Fn(&[usize]) + Sync + Send + Clone + 'static,
) -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    quiet_deaths();
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    for order in orders(threads) {
        let r = runs.clone();
        let f = f.clone();
        let mut b = loom::model::Builder::new();
        if b.preemption_bound.is_none() {
            b.preemption_bound = Some(bound);
        }
        // A reconcile scans every slot more than once: far more steps
        // than loom's default allows, though each loop is bounded.
        b.max_branches = 100_000;
        b.check(move || {
            r.fetch_add(1, Ordering::Relaxed);
            f(&order)
        });
    }
    runs.load(Ordering::Relaxed)
}

/// Two claimants race for room for only one: exactly one wins, its claim
/// was checked against the total it replaced, and after its release the
/// total is 0.
#[test]
fn racing_claims_never_over_admit() {
    let n = explore(2, 3, |order| {
        let h = Host::new(3);
        let won = Arc::new(loom::sync::Mutex::new(Vec::new()));
        let jobs: Vec<Job> = [1u32, 2]
            .into_iter()
            .map(|id| {
                let (h, won) = (h.clone(), won.clone());
                Box::new(move || {
                    let p = proc(&h, id, u32::MAX);
                    let out = h
                        .fake
                        .ledger()
                        .claim(
                            &p,
                            uuid(id as u8),
                            Pool::Reservoir,
                            2,
                            id as usize,
                            &mut || Ok(3),
                        )
                        .unwrap();
                    if let Some((slot, others)) = claimed(out) {
                        assert!(others + 2 <= 3);
                        won.lock().unwrap().push((id, slot));
                    }
                }) as Job
            })
            .collect();
        run(order, jobs);
        let won = won.lock().unwrap().clone();
        assert_eq!(won.len(), 1, "exactly one of two 2-page claims fits in 3");
        assert_eq!(h.total(Pool::Reservoir), 2);
        let (id, slot) = won[0];
        let p = proc(&h, id, u32::MAX);
        assert_eq!(h.fake.ledger().release(&p, slot).unwrap(), 2);
        assert_eq!(h.total(Pool::Reservoir), 0);
        h.assert_settled();
    });
    assert!(n > 10, "loom explored only {} executions", n);
}

/// A holder dies at each step of its claim (before its lock, holding the
/// slot BUSY, RESERVING before its CAS on the total) while another process
/// claims room only one of them fits in: the other never over-admits, is
/// refused only while the dying one still holds its claim, and the dead
/// one's pages are never counted once its slot is gone.
#[test]
fn a_holder_dying_at_any_step_of_its_claim() {
    let mut n = 0;
    // lock, pid, now, origin, capacity; 5: it completes its claim.
    for die_at in 0..=5u32 {
        n += explore(2, 2, move |order| {
            let h = Host::new(2);
            let (h1, h2) = (h.clone(), h.clone());
            let jobs: Vec<Job> = vec![
                Box::new(move || {
                    let p = proc(&h1, 1, die_at);
                    let _ = survive(|| {
                        h1.fake
                            .ledger()
                            .claim(&p, uuid(1), Pool::Reservoir, 2, 0, &mut || {
                                p.step();
                                Ok(3)
                            })
                            .unwrap()
                    });
                }),
                Box::new(move || {
                    let p = proc(&h2, 2, u32::MAX);
                    let out = h2
                        .fake
                        .ledger()
                        .claim(&p, uuid(2), Pool::Reservoir, 2, 1, &mut || Ok(3))
                        .unwrap();
                    if let Some((_, others)) = claimed(out) {
                        assert!(others + 2 <= 3, "over-admitted beside a dying claim");
                    }
                }),
            ];
            run(order, jobs);
            // Process 1 is dead (or dies now, having completed).
            h.kill(1);
            h.assert_settled();
            let l = h.fake.ledger();
            let mine = l.find(&uuid(2), 1, &[Pool::Reservoir]).unwrap();
            assert!(
                l.find(&uuid(1), 0, &[Pool::Reservoir]).unwrap().is_none(),
                "dead claim kept"
            );
            assert_eq!(h.total(Pool::Reservoir), if mine.is_some() { 2 } else { 0 });
        });
    }
    assert!(n > 50, "loom explored only {} executions", n);
}

/// What races a dying or half-done holder.
#[derive(Clone, Copy, Debug)]
enum Other {
    /// A reconcile (a reclaimer).
    Reconcile,
    /// A claim that fits only once the dead claim is gone (it reclaims
    /// and checks the total before refusing).
    Claim,
}

/// The job of process `id` doing `what` on `h`.
fn other(h: &Arc<Host>, id: u32, what: Other) -> Job {
    let h = h.clone();
    Box::new(move || {
        let p = proc(&h, id, u32::MAX);
        let l = h.fake.ledger();
        match what {
            Other::Reconcile => {
                let r = l.reconcile(&p).unwrap();
                assert_eq!(r.repaired_totals, 0, "{:?}", r);
                assert!(r.claimed_after[0] <= 3);
            }
            Other::Claim => {
                let out = l
                    .claim(&p, uuid(id as u8), Pool::Reservoir, 2, 2, &mut || Ok(3))
                    .unwrap();
                if let Some((_, others)) = claimed(out) {
                    assert!(others + 2 <= 3, "over-admitted beside a dying holder");
                }
            }
        }
    })
}

/// A holder dies at each step of its release (before it starts; after the
/// release, while dropping its locks) while another process reconciles or
/// claims: the dead claim's pages leave the total exactly once, and the
/// claimant is never refused for them once they are gone.
#[test]
fn a_holder_dying_in_its_release() {
    let mut n = 0;
    // mine, unlock holder, unlock adopter; 3: it completes.
    for die_at in 0..=3u32 {
        for what in [Other::Reconcile, Other::Claim] {
            n += explore(2, 2, move |order| {
                let h = Host::new(2);
                let slot = setup_claim(&h, 1, 1, Pool::Reservoir, 2);
                let h1 = h.clone();
                let jobs: Vec<Job> = vec![
                    Box::new(move || {
                        let p = proc(&h1, 1, die_at);
                        if let Some(r) = survive(|| h1.fake.ledger().release(&p, slot)) {
                            assert_eq!(r.unwrap(), 2);
                        }
                    }),
                    other(&h, 3, what),
                ];
                run(order, jobs);
                h.kill(1);
                h.assert_settled();
                let l = h.fake.ledger();
                assert!(l.find(&uuid(1), 1, &[Pool::Reservoir]).unwrap().is_none());
                let third = l.find(&uuid(3), 2, &[Pool::Reservoir]).unwrap();
                assert_eq!(
                    h.total(Pool::Reservoir),
                    if third.is_some() { 2 } else { 0 }
                );
            });
        }
    }
    assert!(n > 50, "loom explored only {} executions", n);
}

/// The steps with no World call between them: a holder dead after its
/// claim's CAS on the total (slot still RESERVING, named by the total),
/// inside its release before the total's CAS (RELEASING, not named), and
/// after it (RELEASING, named). Two reclaimers race — either may stop
/// anywhere and resume after the other finished (a stale reclaimer) — or a
/// reclaimer races a claimant that helps whatever the total names: the
/// dead pages leave the total exactly once, a live claim beside them is
/// untouched, and a reconcile that returned left the dead slot free.
#[test]
fn half_done_operations_are_finished_once_by_racing_reclaimers() {
    let mut n = 0;
    for stage in 0..3 {
        for what in [Other::Reconcile, Other::Claim] {
            n += explore(2, 1, move |order| {
                let h = Host::new(3);
                // A live claim of process 5 in the same pool.
                let live = setup_claim(&h, 5, 5, Pool::Reservoir, 1);
                let slot = setup_claim(&h, 1, 1, Pool::Reservoir, 2);
                let claimed_word = h.fake.slots[slot].peek_word();
                match stage {
                    0 => poke_state(&h, slot, RESERVING),
                    1 => poke_state(&h, slot, RELEASING),
                    _ => {
                        // A release run to its last step: play it through
                        // a holder that dies dropping its locks, then put
                        // the slot back to RELEASING (the total names it).
                        let p = proc(&h, 1, 1);
                        assert!(survive(|| h.fake.ledger().release(&p, slot)).is_none());
                        assert_eq!(h.fake.slots[slot].peek_word() & 7, 0);
                        h.fake.slots[slot].poke_word((claimed_word & !7) | RELEASING);
                    }
                }
                h.kill(1);
                assert_eq!(h.total(Pool::Reservoir), if stage == 2 { 1 } else { 3 });
                let h1 = h.clone();
                let jobs: Vec<Job> = vec![
                    Box::new(move || {
                        let p = proc(&h1, 2, u32::MAX);
                        let l = h1.fake.ledger();
                        let r = l.reconcile(&p).unwrap();
                        assert_eq!(r.repaired_totals, 0, "{:?}", r);
                        // A reclaimer skips a slot another one moved under
                        // it (that one may stop there for good): the next
                        // reconcile finishes it, unless moved again — which
                        // takes the other's progress, and that is finite.
                        for _ in 0..3 {
                            if l.read(slot).unwrap().is_none() {
                                break;
                            }
                            let r = l.reconcile(&p).unwrap();
                            assert_eq!(r.repaired_totals, 0, "{:?}", r);
                        }
                        let left = l.read(slot).unwrap();
                        assert!(left.is_none(), "stage {stage}, {what:?}: {left:?}");
                    }),
                    other(&h, 4, what),
                ];
                run(order, jobs);
                h.assert_settled();
                let l = h.fake.ledger();
                let c = l.read(live).unwrap().expect("the live claim stays");
                assert_eq!((c.uuid, c.pages), (uuid(5), 1));
                let fourth = l.find(&uuid(4), 2, &[Pool::Reservoir]).unwrap();
                assert_eq!(
                    h.total(Pool::Reservoir),
                    1 + if fourth.is_some() { 2 } else { 0 }
                );
            });
        }
    }
    assert!(n > 50, "loom explored only {} executions", n);
}

/// Helping: a claimant stopped between its CAS on the total and its
/// slot's move to CLAIMED is finished by the next process that touches the
/// total, whatever it does (claim in the same pool, release another claim,
/// reconcile): no total ever counts a claim twice or drops it.
#[test]
fn claims_and_releases_help_each_other_through() {
    let n = explore(3, 2, |order| {
        let h = Host::new(4);
        let other = setup_claim(&h, 3, 3, Pool::Reservoir, 1);
        let (h1, h2, h3) = (h.clone(), h.clone(), h.clone());
        let jobs: Vec<Job> = vec![
            Box::new(move || {
                let p = proc(&h1, 1, u32::MAX);
                let out = h1
                    .fake
                    .ledger()
                    .claim(&p, uuid(1), Pool::Reservoir, 2, 0, &mut || Ok(5))
                    .unwrap();
                let (slot, others) = claimed(out).expect("1 + 2 + 2 fits in 5");
                assert!(others + 2 <= 5);
                assert_eq!(h1.fake.ledger().release(&p, slot).unwrap(), 2);
            }),
            Box::new(move || {
                let p = proc(&h2, 2, u32::MAX);
                let out = h2
                    .fake
                    .ledger()
                    .claim(&p, uuid(2), Pool::Reservoir, 2, 1, &mut || Ok(5))
                    .unwrap();
                let (slot, others) = claimed(out).expect("1 + 2 + 2 fits in 5");
                assert!(others + 2 <= 5);
                // Held past the join: it must still be there.
                assert!(h2.fake.ledger().read(slot).unwrap().is_some());
            }),
            Box::new(move || {
                let p = proc(&h3, 3, u32::MAX);
                assert_eq!(h3.fake.ledger().release(&p, other).unwrap(), 1);
            }),
        ];
        run(order, jobs);
        h.assert_settled();
        assert_eq!(h.total(Pool::Reservoir), 2, "process 2's claim alone");
    });
    assert!(n > 10, "loom explored only {} executions", n);
}

/// A hand-off racing the death of the process handing over, and a
/// reconcile: either the adopter became a holder (then the claim survives
/// the reconcile and its release by the adopter gives back its pages) or
/// the adoption failed (NotFound) and the claim is gone after a reconcile.
#[test]
fn an_adoption_races_the_handing_process_s_death() {
    let n = explore(3, 2, |order| {
        let h = Host::new(2);
        let slot = setup_claim(&h, 1, 1, Pool::Reservoir, 2);
        // The hand-off: the holder lets go of the adopter byte.
        FakeWorld::process(&h.fake, 1).share(slot);
        let gen = h.fake.ledger().read(slot).unwrap().unwrap().word.gen;
        let adopted = Arc::new(loom::sync::Mutex::new(None));
        let (h1, h2, h3, a) = (h.clone(), h.clone(), h.clone(), adopted.clone());
        let jobs: Vec<Job> = vec![
            Box::new(move || h1.kill(1)),
            Box::new(move || {
                let p = proc(&h2, 2, u32::MAX);
                let r = h2.fake.ledger().adopt(&p, slot, gen, &uuid(1), false);
                if let Err(e) = &r {
                    assert_eq!(e.status(), Status::NotFound);
                }
                *a.lock().unwrap() = Some(r.is_ok());
            }),
            Box::new(move || {
                let p = proc(&h3, 3, u32::MAX);
                h3.fake.ledger().reconcile(&p).unwrap();
            }),
        ];
        run(order, jobs);
        h.assert_settled();
        let adopted = adopted.lock().unwrap().expect("adopt ran");
        let l = h.fake.ledger();
        if adopted {
            assert_eq!(
                h.total(Pool::Reservoir),
                2,
                "an adopted claim was reclaimed"
            );
            let p = proc(&h, 2, u32::MAX);
            assert_eq!(l.release(&p, slot).unwrap(), 2);
        } else {
            assert!(l.read(slot).unwrap().is_none());
        }
        assert_eq!(h.total(Pool::Reservoir), 0);
    });
    assert!(n > 10, "loom explored only {} executions", n);
}

/// A durable ARC claim's maker dies at each step of its claim (and after
/// it) while another process claims ARC room only one of them fits in,
/// or reconciles: the durable claim ends whole (CLAIMED, in the total)
/// or gone, the other never over-admits beside it, and once CLAIMED no
/// lock-driven path (the claimant's reclaim before refusing, reconcile)
/// takes it out.
#[test]
fn a_durable_maker_dying_at_any_step_against_a_claim_or_a_reconcile() {
    let mut n = 0;
    // lock, pid, now, origin, capacity; 5 and up: it completes its claim.
    for die_at in 0..=6u32 {
        for what in [Other::Claim, Other::Reconcile] {
            n += explore(2, 2, move |order| {
                let h = Host::new(2);
                let h1 = h.clone();
                let done = Arc::new(AtomicUsize::new(0));
                let done1 = done.clone();
                let second: Job = match what {
                    Other::Reconcile => other(&h, 2, Other::Reconcile),
                    Other::Claim => {
                        let h2 = h.clone();
                        Box::new(move || {
                            let p = proc(&h2, 2, u32::MAX);
                            let out = h2
                                .fake
                                .ledger()
                                .claim(&p, uuid(2), Pool::Arc, 2, 1, &mut || Ok(3))
                                .unwrap();
                            if let Some((_, others)) = claimed(out) {
                                assert!(others + 2 <= 3, "over-admitted beside a durable claim");
                            }
                        })
                    }
                };
                let jobs: Vec<Job> = vec![
                    Box::new(move || {
                        let p = proc(&h1, 1, die_at);
                        let r = survive(|| {
                            h1.fake
                                .ledger()
                                .claim_durable(&p, uuid(1), 2, 0, &mut || {
                                    p.step();
                                    Ok(3)
                                })
                                .unwrap()
                        });
                        if let Some(out) = r {
                            if claimed(out).is_some() {
                                done1.store(1, SeqCst);
                            }
                        }
                    }),
                    second,
                ];
                run(order, jobs);
                // The maker is gone now in every case.
                h.kill(1);
                h.assert_settled();
                let l = h.fake.ledger();
                let durable = l.find(&uuid(1), 0, &[Pool::Arc]).unwrap();
                let theirs = l.find(&uuid(2), 1, &[Pool::Arc]).unwrap();
                if done.load(SeqCst) == 1 {
                    let c = durable.expect("a durable claim made is kept past its maker");
                    assert!(c.durable);
                }
                if let Some(c) = durable {
                    assert!(c.durable, "{c:?}");
                }
                assert!(
                    durable.is_none() || theirs.is_none(),
                    "both 2-page claims in 3 pages"
                );
                let want = 2 * (u64::from(durable.is_some()) + u64::from(theirs.is_some()));
                assert_eq!(h.total(Pool::Arc), want);
            });
        }
    }
    assert!(n > 50, "loom explored only {} executions", n);
}

/// Two processes release one durable claim at once (an explicit release
/// and a reconcile that found its VM gone), beside a third that claims the
/// room: the pages leave the total exactly once, one releaser wins, and
/// the claimant is admitted only once they are out.
#[test]
fn racing_durable_releases_take_it_out_once() {
    let n = explore(3, 2, |order| {
        let h = Host::new(3);
        let maker = proc(&h, 1, u32::MAX);
        let out = h
            .fake
            .ledger()
            .claim_durable(&maker, uuid(1), 2, 0, &mut || Ok(3))
            .unwrap();
        let (slot, _) = claimed(out).expect("room in the prelude");
        h.kill(1);
        let seen = h.fake.ledger().read(slot).unwrap().unwrap().word;
        let wins = Arc::new(AtomicUsize::new(0));
        let mut jobs: Vec<Job> = Vec::new();
        for _ in 0..2 {
            let (h, wins) = (h.clone(), wins.clone());
            jobs.push(Box::new(move || {
                match h.fake.ledger().release_durable(slot, seen) {
                    Ok(pages) => {
                        assert_eq!(pages, 2);
                        wins.fetch_add(1, SeqCst);
                    }
                    Err(e) => assert_eq!(e.status(), Status::NotFound),
                }
            }));
        }
        let h3 = h.clone();
        jobs.push(Box::new(move || {
            let p = proc(&h3, 3, u32::MAX);
            let out = h3
                .fake
                .ledger()
                .claim(&p, uuid(3), Pool::Arc, 2, 2, &mut || Ok(3))
                .unwrap();
            if let Some((_, others)) = claimed(out) {
                assert!(others + 2 <= 3, "admitted over a durable claim");
            }
        }));
        run(order, jobs);
        assert_eq!(wins.load(SeqCst), 1, "exactly one release wins");
        h.assert_settled();
        let l = h.fake.ledger();
        assert!(l.find(&uuid(1), 0, &[Pool::Arc]).unwrap().is_none());
        let theirs = l.find(&uuid(3), 2, &[Pool::Arc]).unwrap();
        assert_eq!(h.total(Pool::Arc), if theirs.is_some() { 2 } else { 0 });
    });
    assert!(n > 10, "loom explored only {} executions", n);
}

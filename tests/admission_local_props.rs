//! Property and stress tests for `vmmresv::admission::local::LocalLedger`.
//!
//! - Random operation sequences (claim, guard claim, release of an earlier
//!   claim, guard drop or commit, set_capacity) run against the ledger and
//!   against a plain sequential model; after every operation the two agree
//!   on the claimed total, the capacity and each outcome, shortfall
//!   included. The model recomputes everything in u128, so a wrapping bug in
//!   the ledger cannot hide behind the same bug here.
//! - Multi-thread stress (std threads, not timed): 4 threads x 100 000
//!   claims of random sizes, each held for a while and released, never hold
//!   more pages than the capacity (also while another thread keeps changing
//!   it), and the ledger returns to 0.

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

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::thread;

use proptest::prelude::*;
use vmmresv::admission::local::{Claim, LocalLedger, Refused, Usage, MAX_PAGES};
use vmmresv::Status;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 10_000,
        ..ProptestConfig::default()
    }
}

/// Page counts biased to the interesting places: small values (so claims
/// collide with small capacities), the `MAX_PAGES` boundary, and the top of
/// `u64`.
fn pages() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 0u64..=12,
        2 => 0u64..=100,
        1 => (MAX_PAGES - 4)..=(MAX_PAGES + 4),
        1 => (u64::MAX - 4)..=u64::MAX,
        1 => any::<u64>(),
    ]
}

fn capacity() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..=24,
        2 => 0u64..=100,
        2 => (MAX_PAGES - 4)..=MAX_PAGES,
        1 => (MAX_PAGES + 1)..=(MAX_PAGES + 2),
        1 => any::<u64>(),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    /// `try_claim(n)`; a success is remembered as a raw claim.
    TryClaim(u64),
    /// `claim(n)`; a success is kept as a live guard.
    Guard(u64),
    /// `release` of one earlier raw (or committed) claim.
    ReleaseRaw(prop::sample::Index),
    /// Drop one live guard.
    DropGuard(prop::sample::Index),
    /// Commit one live guard: its pages become a raw claim.
    CommitGuard(prop::sample::Index),
    /// `set_capacity(n)`.
    SetCapacity(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => pages().prop_map(Op::TryClaim),
        3 => pages().prop_map(Op::Guard),
        3 => any::<prop::sample::Index>().prop_map(Op::ReleaseRaw),
        2 => any::<prop::sample::Index>().prop_map(Op::DropGuard),
        1 => any::<prop::sample::Index>().prop_map(Op::CommitGuard),
        2 => capacity().prop_map(Op::SetCapacity),
    ]
}

/// The sequential model: two plain integers.
#[derive(Debug)]
struct Model {
    claimed: u64,
    capacity: u64,
}

impl Model {
    fn claim(&mut self, n: u64) -> Result<(), Refused> {
        if n == 0 {
            return Ok(());
        }
        let need = u128::from(self.claimed) + u128::from(n);
        if n > MAX_PAGES || need > u128::from(self.capacity) {
            let short = need - u128::from(self.capacity);
            return Err(Refused {
                requested: n,
                claimed: self.claimed,
                capacity: self.capacity,
                shortfall: u64::try_from(short).unwrap_or(u64::MAX),
            });
        }
        self.claimed += n;
        Ok(())
    }

    fn release(&mut self, n: u64) {
        self.claimed -= n;
    }

    fn set_capacity(&mut self, n: u64) -> Result<u64, Status> {
        if n > MAX_PAGES {
            return Err(Status::InvalidArgument);
        }
        if self.claimed > n {
            return Err(Status::NoSpace);
        }
        Ok(std::mem::replace(&mut self.capacity, n))
    }
}

fn check_agree(ledger: &LocalLedger, model: &Model, raw: &[u64], guards: &[Claim<'_>]) {
    let usage = ledger.usage();
    assert_eq!(
        usage,
        Usage {
            claimed: model.claimed,
            capacity: model.capacity
        }
    );
    assert_eq!(ledger.claimed(), model.claimed);
    assert_eq!(ledger.capacity(), model.capacity);
    assert_eq!(ledger.available(), model.capacity - model.claimed);
    assert!(usage.claimed <= usage.capacity, "never over-admits");
    // Every claimed page belongs to a live guard or an outstanding raw claim.
    let held: u64 = raw.iter().sum::<u64>() + guards.iter().map(Claim::pages).sum::<u64>();
    assert_eq!(held, model.claimed);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ledger_matches_the_sequential_model(
        initial in capacity(),
        ops in prop::collection::vec(op(), 0..48),
    ) {
        let ledger = match LocalLedger::new(initial) {
            Ok(l) => l,
            Err(e) => {
                prop_assert!(initial > MAX_PAGES);
                prop_assert_eq!(e.status(), Status::InvalidArgument);
                return Ok(());
            }
        };
        prop_assert!(initial <= MAX_PAGES);
        let mut model = Model { claimed: 0, capacity: initial };
        let mut raw: Vec<u64> = Vec::new();
        let mut guards: Vec<Claim<'_>> = Vec::new();
        check_agree(&ledger, &model, &raw, &guards);

        for op in ops {
            match op {
                Op::TryClaim(n) => {
                    let got = ledger.try_claim(n);
                    prop_assert_eq!(got, model.claim(n), "try_claim({})", n);
                    if let Err(r) = got {
                        prop_assert!(r.shortfall > 0);
                    } else if n > 0 {
                        raw.push(n);
                    }
                }
                Op::Guard(n) => {
                    let got = ledger.claim(n);
                    let want = model.claim(n);
                    match got {
                        Ok(g) => {
                            prop_assert_eq!(Ok(()), want, "claim({})", n);
                            prop_assert_eq!(g.pages(), n);
                            guards.push(g);
                        }
                        Err(r) => prop_assert_eq!(Err(r), want, "claim({})", n),
                    }
                }
                Op::ReleaseRaw(i) => {
                    if !raw.is_empty() {
                        let n = raw.swap_remove(i.index(raw.len()));
                        ledger.release(n);
                        model.release(n);
                    }
                }
                Op::DropGuard(i) => {
                    if !guards.is_empty() {
                        let g = guards.swap_remove(i.index(guards.len()));
                        let n = g.pages();
                        drop(g);
                        model.release(n);
                    }
                }
                Op::CommitGuard(i) => {
                    if !guards.is_empty() {
                        let g = guards.swap_remove(i.index(guards.len()));
                        let n = g.pages();
                        prop_assert_eq!(g.commit(), n);
                        raw.push(n);
                    }
                }
                Op::SetCapacity(n) => {
                    let got = ledger.set_capacity(n).map_err(|e| e.status());
                    prop_assert_eq!(got, model.set_capacity(n), "set_capacity({})", n);
                }
            }
            check_agree(&ledger, &model, &raw, &guards);
        }

        // Everything given back: the ledger returns to 0.
        guards.clear();
        for n in raw.drain(..) {
            ledger.release(n);
        }
        prop_assert_eq!(ledger.claimed(), 0);
        prop_assert_eq!(ledger.capacity(), model.capacity);
    }
}

/// xorshift64*: a deterministic, dependency-free source of request sizes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

const WORKERS: u64 = 4;
const ROUNDS: u32 = 100_000;

/// How many claims a worker holds at once before releasing its oldest.
const HOLD: usize = 3;

/// One worker: `ROUNDS` claims of 1..=`max_request` pages (half raw, half
/// through the guard), holding up to `HOLD` of them and releasing the oldest
/// when full. `held` counts the pages that workers really hold: raised
/// after a claim succeeds, lowered before its release, so it never exceeds
/// the ledger's claimed total; if it ever exceeded `bound`, the ledger
/// over-admitted. Returns (granted, refused).
fn worker(
    ledger: &LocalLedger,
    held: &AtomicU64,
    seed: u64,
    max_request: u64,
    bound: u64,
) -> (u64, u64) {
    let mut rng = XorShift(seed);
    let (mut granted, mut refused) = (0, 0);
    // (pages, guard if claimed through one)
    let mut holding: VecDeque<(u64, Option<Claim<'_>>)> = VecDeque::with_capacity(HOLD);
    let give_back = |(n, guard): (u64, Option<Claim<'_>>)| {
        held.fetch_sub(n, Ordering::SeqCst);
        match guard {
            Some(g) => drop(g),
            None => ledger.release(n),
        }
    };
    for i in 0..ROUNDS {
        if holding.len() == HOLD {
            give_back(holding.pop_front().expect("full"));
        }
        let n = 1 + rng.next() % max_request;
        let result = if i % 2 == 0 {
            ledger.try_claim(n).map(|()| None)
        } else {
            ledger.claim(n).map(Some)
        };
        match result {
            Ok(guard) => {
                let now = held.fetch_add(n, Ordering::SeqCst) + n;
                assert!(
                    now <= bound,
                    "over-admitted: {now} pages held, bound {bound}"
                );
                granted += 1;
                holding.push_back((n, guard));
            }
            Err(r) => {
                assert!(r.shortfall > 0, "{r:?}");
                assert!(r.claimed <= r.capacity, "{r:?}");
                assert_eq!(r.claimed + r.requested - r.capacity, r.shortfall, "{r:?}");
                refused += 1;
            }
        }
    }
    holding.into_iter().for_each(give_back);
    (granted, refused)
}

/// Samples the ledger until `stop`: every snapshot within the capacity and
/// within `bound`. Returns the number of samples.
fn sampler(ledger: &LocalLedger, stop: &AtomicBool, bound: u64) -> u64 {
    let mut samples = 0;
    while !stop.load(Ordering::Acquire) {
        let u = ledger.usage();
        assert!(u.claimed <= u.capacity, "{u:?}");
        assert!(u.claimed <= bound, "{u:?}");
        assert!(ledger.claimed() <= bound);
        samples += 1;
    }
    samples
}

#[test]
fn stress_four_threads_never_over_admit_and_return_to_zero() {
    const CAPACITY: u64 = 64;
    let ledger = LocalLedger::new(CAPACITY).unwrap();
    let held = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let (granted, refused, samples) = thread::scope(|s| {
        let sample = s.spawn(|| sampler(&ledger, &stop, CAPACITY));
        let workers: Vec<_> = (0..WORKERS)
            .map(|t| {
                let (ledger, held) = (&ledger, &held);
                s.spawn(move || worker(ledger, held, 0x9E37_79B9 + t, 24, CAPACITY))
            })
            .collect();
        let (mut granted, mut refused) = (0, 0);
        for w in workers {
            let (g, r) = w.join().unwrap();
            granted += g;
            refused += r;
        }
        stop.store(true, Ordering::Release);
        (granted, refused, sample.join().unwrap())
    });
    assert_eq!(granted + refused, WORKERS * u64::from(ROUNDS));
    assert!(
        granted > 0 && refused > 0,
        "contention exercised: {granted} granted, {refused} refused"
    );
    assert!(samples > 0);
    assert_eq!(held.load(Ordering::SeqCst), 0);
    assert_eq!(ledger.claimed(), 0);
    assert_eq!(ledger.capacity(), CAPACITY);
}

#[test]
fn stress_with_capacity_changes_never_over_admits() {
    const HIGH: u64 = 64;
    const LOW: u64 = 16;
    /// The setter keeps going at least this long, even if the workers are
    /// done first.
    const MIN_CHANGES: u64 = 1_000;
    let ledger = LocalLedger::new(HIGH).unwrap();
    let held = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    // Workers and setter start together, so the changes overlap the claims.
    let start = Barrier::new(usize::try_from(WORKERS).unwrap() + 1);
    let (lowered, refused_lowerings) = thread::scope(|s| {
        let sample = s.spawn(|| sampler(&ledger, &stop, HIGH));
        let setter = s.spawn(|| {
            start.wait();
            let (mut lowered, mut refused) = (0u64, 0u64);
            while !stop.load(Ordering::Acquire) || lowered + refused < MIN_CHANGES {
                let now_low = match ledger.set_capacity(LOW) {
                    Ok(old) => {
                        assert_eq!(old, HIGH);
                        lowered += 1;
                        true
                    }
                    Err(e) => {
                        assert_eq!(e.status(), Status::NoSpace);
                        refused += 1;
                        false
                    }
                };
                // Raising never fails; it reports the capacity it replaced.
                let old = ledger.set_capacity(HIGH).expect("raising never fails");
                assert_eq!(old, if now_low { LOW } else { HIGH });
                thread::yield_now();
            }
            (lowered, refused)
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|t| {
                let (ledger, held, start) = (&ledger, &held, &start);
                s.spawn(move || {
                    start.wait();
                    worker(ledger, held, 0xC0FF_EE00 + t, 12, HIGH)
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::Release);
        sample.join().unwrap();
        setter.join().unwrap()
    });
    assert!(lowered + refused_lowerings >= MIN_CHANGES);
    assert_eq!(held.load(Ordering::SeqCst), 0);
    assert_eq!(
        ledger.usage(),
        Usage {
            claimed: 0,
            capacity: HIGH
        }
    );
}

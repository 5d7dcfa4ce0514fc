//! Durable ARC claims under random interleavings of ordinary and durable
//! claims, holder deaths, reconciles and releases (explicit, stale, and by
//! a holder that does not hold them), on the in-memory ledger
//! ([`FakeLedger`]): after every step each total is the sum of its
//! claims, no pool is claimed beyond its capacity, every durable claim
//! made is still there with the same word until a release_durable takes
//! it out (whoever died, whatever reconciled), and after a reconcile no
//! ordinary claim of a dead holder is left.

// Tests are not the library: a panic is how a check fails, and their
// arithmetic, casts and indexing are on values they chose. The strict
// lints of Cargo.toml are for the library.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions
)]

use std::collections::HashMap;

use proptest::prelude::*;
use vmmresv::ledger::fake::{FakeLedger, FakeWorld};
use vmmresv::ledger::{ClaimOutcome, Pool, Word};
use vmmresv::Status;

const CAPACITY: u64 = 40;
const SLOTS: usize = 8;
const PROCS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Durable {
        who: usize,
        pages: u64,
        hint: usize,
    },
    Claim {
        who: usize,
        arc: bool,
        pages: u64,
        hint: usize,
    },
    Kill {
        who: usize,
    },
    Reconcile {
        who: usize,
    },
    ReleaseDurable {
        pick: usize,
        stale: bool,
    },
    HolderRelease {
        pick: usize,
        who: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..PROCS, 1..15u64, 0..SLOTS).prop_map(|(who, pages, hint)| Op::Durable { who, pages, hint }),
        3 => (0..PROCS, any::<bool>(), 1..15u64, 0..SLOTS)
            .prop_map(|(who, arc, pages, hint)| Op::Claim { who, arc, pages, hint }),
        2 => (0..PROCS).prop_map(|who| Op::Kill { who }),
        2 => (0..PROCS).prop_map(|who| Op::Reconcile { who }),
        2 => (0..8usize, any::<bool>()).prop_map(|(pick, stale)| Op::ReleaseDurable { pick, stale }),
        1 => (0..8usize, 0..PROCS).prop_map(|(pick, who)| Op::HolderRelease { pick, who }),
    ]
}

fn uuid(n: u32) -> [u8; 16] {
    let mut u = [0u8; 16];
    u[0] = 0x42;
    u[12..].copy_from_slice(&n.to_be_bytes());
    u
}

fn simulate(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let fake = FakeLedger::new(SLOTS);
    let l = fake.ledger();
    // Each "who" is a process id; a killed one is replaced by a new id.
    let mut ids: Vec<u32> = (1..=PROCS as u32).collect();
    let mut next_id = 100u32;
    let mut next_uuid = 0u32;
    // Durable claims made: slot -> (word when made, pages).
    let mut durable: HashMap<usize, (Word, u64)> = HashMap::new();
    // Words of durable claims released (for stale releases).
    let mut released: Vec<(usize, Word)> = Vec::new();
    for op in ops {
        next_uuid += 1;
        match op {
            Op::Durable { who, pages, hint } => {
                let w = FakeWorld::process(&fake, ids[who]);
                match l.claim_durable(&w, uuid(next_uuid), pages, hint, &mut || Ok(CAPACITY)) {
                    Ok(ClaimOutcome::Claimed { slot, others }) => {
                        prop_assert!(others + pages <= CAPACITY);
                        let c = l.read(slot).unwrap().unwrap();
                        prop_assert!(c.durable && c.pool == Pool::Arc && c.pages == pages);
                        durable.insert(slot, (c.word, pages));
                    }
                    Ok(ClaimOutcome::Refused(_)) => {}
                    Err(e) => prop_assert_eq!(e.status(), Status::LedgerFull),
                }
            }
            Op::Claim {
                who,
                arc,
                pages,
                hint,
            } => {
                let w = FakeWorld::process(&fake, ids[who]);
                let pool = if arc { Pool::Arc } else { Pool::Reservoir };
                match l.claim(&w, uuid(next_uuid), pool, pages, hint, &mut || Ok(CAPACITY)) {
                    Ok(ClaimOutcome::Claimed { others, .. }) => {
                        prop_assert!(others + pages <= CAPACITY);
                    }
                    Ok(ClaimOutcome::Refused(_)) => {}
                    Err(e) => prop_assert_eq!(e.status(), Status::LedgerFull),
                }
            }
            Op::Kill { who } => {
                fake.kill(ids[who]);
                ids[who] = next_id;
                next_id += 1;
            }
            Op::Reconcile { who } => {
                let w = FakeWorld::process(&fake, ids[who]);
                let r = l.reconcile(&w).unwrap();
                prop_assert_eq!(r.repaired_totals, 0, "{:?}", r);
                // No ordinary claim of a dead holder is left.
                for c in l.claims().unwrap() {
                    if !c.durable {
                        prop_assert!(ids.contains(&c.pid), "dead holder's claim kept: {:?}", c);
                    }
                }
            }
            Op::ReleaseDurable { pick, stale } => {
                if stale && !released.is_empty() {
                    let (slot, word) = released[pick % released.len()];
                    let r = l.release_durable(slot, word);
                    prop_assert_eq!(r.unwrap_err().status(), Status::NotFound);
                } else if !durable.is_empty() {
                    let mut slots: Vec<usize> = durable.keys().copied().collect();
                    slots.sort_unstable();
                    let slot = slots[pick % slots.len()];
                    let (word, pages) = durable.remove(&slot).unwrap();
                    prop_assert_eq!(l.release_durable(slot, word).unwrap(), pages);
                    released.push((slot, word));
                }
            }
            Op::HolderRelease { pick, who } => {
                if !durable.is_empty() {
                    let mut slots: Vec<usize> = durable.keys().copied().collect();
                    slots.sort_unstable();
                    let slot = slots[pick % slots.len()];
                    let w = FakeWorld::process(&fake, ids[who]);
                    prop_assert_eq!(l.release(&w, slot).unwrap_err().status(), Status::NotHolder);
                }
            }
        }
        // After every step: totals = sums, within capacity, durable kept.
        let claims = l.claims().unwrap();
        for pool in [Pool::Reservoir, Pool::Arc] {
            let sum: u64 = claims
                .iter()
                .filter(|c| c.pool == pool)
                .map(|c| c.pages)
                .sum();
            prop_assert_eq!(l.claimed(pool), sum, "{:?}", pool);
            prop_assert!(sum <= CAPACITY);
        }
        for (slot, (word, pages)) in &durable {
            let c = l.read(*slot).unwrap();
            prop_assert!(
                matches!(c, Some(c) if c.word == *word && c.pages == *pages && c.durable),
                "durable claim in slot {} lost: {:?}",
                slot,
                c
            );
        }
        let n_durable = claims.iter().filter(|c| c.durable).count();
        prop_assert_eq!(n_durable, durable.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, .. ProptestConfig::default() })]

    #[test]
    fn durable_claims_live_until_released(ops in prop::collection::vec(op(), 1..50)) {
        simulate(ops)?;
    }
}

//! Property tests of the cross-process claim ledger's protocol: random
//! sequences of claim, release (commit/abort), owner death and reconcile,
//! applied to the real ledger (over memory instead of the shared file) and
//! to a plain sequential model; after every step the two must agree on
//! each pool's total, on every live claim, and on each outcome (a refusal's
//! shortfall included).

use std::collections::HashSet;
use std::sync::atomic::AtomicU64 as StdAtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

use proptest::prelude::*;
use vmmresv::admission::ledger::{AtomicU64, ClaimOutcome, Ledger, Pool, Refused, Slot, World};
use vmmresv::admission::owner::Owner;

struct Fake {
    alive: Mutex<HashSet<Owner>>,
    ms: StdAtomicU64,
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
        self.ms.fetch_add(1, Relaxed);
    }
}

#[derive(Clone, Debug)]
enum Op {
    Claim {
        owner: usize,
        pool: usize,
        pages: u64,
    },
    Release {
        pick: usize,
    },
    Kill {
        owner: usize,
    },
    Reconcile,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..3usize, 1..24u64).prop_map(|(owner, pool, pages)| Op::Claim { owner, pool, pages }),
        3 => any::<usize>().prop_map(|pick| Op::Release { pick }),
        1 => (0..3usize).prop_map(|owner| Op::Kill { owner }),
        1 => Just(Op::Reconcile),
    ]
}

/// One claim as the model sees it.
#[derive(Clone, Copy, Debug)]
struct M {
    uuid: u32,
    owner: Owner,
    pool: Pool,
    pages: u64,
    slot: usize,
}

const CAPACITY: [u64; 3] = [60, 40, 50];
const SLOTS: usize = 24;

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, .. ProptestConfig::default() })]

    #[test]
    fn ledger_matches_a_sequential_model(ops in prop::collection::vec(op(), 1..60)) {
        let total = AtomicU64::new(0);
        let transient = AtomicU64::new(0);
        let arc = AtomicU64::new(0);
        let rec = AtomicU64::new(0);
        let slots: Vec<Slot> = (0..SLOTS).map(|_| Slot::new()).collect();
        let l = Ledger::new([&total, &transient, &arc], &rec, &slots);
        // Three "processes"; a killed one is replaced by a new process
        // (same pid, new start time: pid reuse).
        let mut owners: Vec<Owner> = (0..3).map(|i| Owner { pid: 10 + i, start: 1 }).collect();
        let world = Fake { alive: Mutex::new(owners.iter().copied().collect()), ms: StdAtomicU64::new(0) };
        let mut model: Vec<M> = Vec::new();
        let mut dead: Vec<M> = Vec::new();
        let mut next_uuid = 0u32;

        for op in ops {
            match op {
                Op::Claim { owner, pool, pages } => {
                    let pool = Pool::ALL[pool];
                    let me = owners[owner];
                    next_uuid += 1;
                    let mut u = [0u8; 16];
                    u[12..].copy_from_slice(&next_uuid.to_be_bytes());
                    let held: u64 = model.iter().chain(dead.iter())
                        .filter(|m| m.pool == pool).map(|m| m.pages).sum();
                    let used = model.len() + dead.len();
                    let cap = CAPACITY[pool as usize];
                    let got = l.claim(&world, me, u, pool, pages, next_uuid as usize, &mut || Ok(cap));
                    if used == SLOTS {
                        prop_assert_eq!(got.unwrap_err().status(), vmmresv::Status::LedgerFull);
                    } else if held + pages <= cap {
                        match got.unwrap() {
                            ClaimOutcome::Claimed { slot, others } => {
                                prop_assert_eq!(others, held);
                                model.push(M { uuid: next_uuid, owner: me, pool, pages, slot });
                            }
                            r => prop_assert!(false, "refused {:?} with {} + {} <= {}", r, held, pages, cap),
                        }
                    } else {
                        prop_assert_eq!(got.unwrap(), ClaimOutcome::Refused(Refused {
                            requested: pages, claimed: held, capacity: cap, shortfall: held + pages - cap,
                        }));
                    }
                }
                Op::Release { pick } => {
                    if model.is_empty() {
                        continue;
                    }
                    let m = model.remove(pick % model.len());
                    prop_assert_eq!(l.release(&world, m.owner, m.slot).unwrap(), m.pages);
                    // Released once; a second release finds nothing.
                    prop_assert!(l.release(&world, m.owner, m.slot).is_err());
                }
                Op::Kill { owner } => {
                    let old = owners[owner];
                    let reused = Owner { pid: old.pid, start: old.start + 1 };
                    {
                        let mut a = world.alive.lock().unwrap();
                        a.remove(&old);
                        a.insert(reused);
                    }
                    owners[owner] = reused;
                    let (gone, live): (Vec<M>, Vec<M>) = model.drain(..).partition(|m| m.owner == old);
                    model = live;
                    dead.extend(gone);
                    prop_assert_eq!(l.survey(&world, None).unwrap().dead_owners, !dead.is_empty());
                }
                Op::Reconcile => {
                    let r = l.reconcile(&world, owners[0]).unwrap();
                    prop_assert_eq!(r.reclaimed_slots, dead.len() as u64);
                    prop_assert_eq!(r.reclaimed_pages, dead.iter().map(|m| m.pages).sum::<u64>());
                    prop_assert_eq!(r.live_claims, model.len() as u64);
                    dead.clear();
                }
            }
            // After every step: totals and claims agree with the model.
            for pool in Pool::ALL {
                let want: u64 = model.iter().chain(dead.iter())
                    .filter(|m| m.pool == pool).map(|m| m.pages).sum();
                let t = l.total(pool);
                prop_assert!(!t.frozen);
                prop_assert_eq!(t.claimed, want);
                prop_assert!(t.claimed <= CAPACITY[pool as usize]);
            }
            let mut got: Vec<(u32, u64)> = l.claims().unwrap().iter()
                .map(|c| (u32::from_be_bytes(c.uuid[12..].try_into().unwrap()), c.pages)).collect();
            let mut want: Vec<(u32, u64)> = model.iter().chain(dead.iter()).map(|m| (m.uuid, m.pages)).collect();
            got.sort_unstable();
            want.sort_unstable();
            prop_assert_eq!(got, want);
        }
    }
}

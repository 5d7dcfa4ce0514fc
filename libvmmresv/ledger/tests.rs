//! The protocol's unit tests, on the in-memory ledger ([`super::fake`]).

use super::fake::{FakeLedger, FakeWorld};
use super::*;

#[test]
fn hints_spread() {
    let mut seen = std::collections::HashSet::new();
    for i in 0..64u8 {
        let mut u = [0u8; 16];
        u[15] = i;
        seen.insert(hint(&u));
    }
    assert!(seen.len() > 48);
}

fn uuid(n: u8) -> [u8; 16] {
    let mut u = [0u8; 16];
    u[15] = n;
    u[0] = 0x42;
    u
}

#[test]
fn total_words_round_trip() {
    for t in [
        Total {
            claimed: MAX_PAGES,
            last: Some((NSLOTS - 1, Op::Release)),
            epoch: EPOCH_MASK,
        },
        Total {
            claimed: 0,
            last: None,
            epoch: 0,
        },
        Total {
            claimed: 12,
            last: Some((0, Op::Apply)),
            epoch: 5,
        },
    ] {
        assert_eq!(Total::unpack(t.pack()).unwrap(), t);
    }
    // A last slot beyond the ledger is a hostile word.
    let bad = (NSLOTS as u64 + 1) << LAST_SHIFT;
    assert_eq!(
        Total::unpack(bad).unwrap_err().status(),
        Status::LedgerCorrupt
    );
}

#[test]
fn claim_release_and_refusal() {
    let m = FakeLedger::new(64);
    let l = m.ledger();
    let a = FakeWorld::process(&m, 1);
    let b = FakeWorld::process(&m, 2);
    let out = l
        .claim(&a, uuid(1), Pool::Reservoir, 10, 0, &mut || Ok(15))
        .unwrap();
    let slot = match out {
        ClaimOutcome::Claimed { slot, others } => {
            assert_eq!(others, 0);
            slot
        }
        r => panic!("{:?}", r),
    };
    // b: 10 more does not fit in 15 while a holds 10.
    let r = l
        .claim(&b, uuid(2), Pool::Reservoir, 10, 0, &mut || Ok(15))
        .unwrap();
    assert_eq!(
        r,
        ClaimOutcome::Refused(Refused {
            requested: 10,
            claimed: 10,
            capacity: 15,
            shortfall: 5
        })
    );
    // b cannot release a's claim: it is not a holder.
    assert_eq!(l.release(&b, slot).unwrap_err().status(), Status::NotHolder);
    assert_eq!(l.release(&a, slot).unwrap(), 10);
    assert_eq!(l.claimed(Pool::Reservoir), 0);
    assert!(!a.mine(slot), "the holder lock went with the claim");
    assert_eq!(l.release(&a, slot).unwrap_err().status(), Status::NotFound);
}

#[test]
fn capacity_is_read_after_the_total() {
    let m = FakeLedger::new(16);
    let l = m.ledger();
    let a = FakeWorld::process(&m, 1);
    let b = FakeWorld::process(&m, 2);
    let mut sneaked = false;
    // While a reads capacity, b claims: a's CAS must fail and a must
    // read again, seeing b's claim.
    let out = l
        .claim(&a, uuid(1), Pool::Reservoir, 8, 0, &mut || {
            if !sneaked {
                sneaked = true;
                let r = l
                    .claim(&b, uuid(2), Pool::Reservoir, 8, 5, &mut || Ok(10))
                    .unwrap();
                assert!(matches!(r, ClaimOutcome::Claimed { .. }));
            }
            Ok(10)
        })
        .unwrap();
    assert!(matches!(out, ClaimOutcome::Refused(_)), "{:?}", out);
    assert_eq!(l.claimed(Pool::Reservoir), 8);
}

#[test]
fn a_dead_holders_claim_is_reclaimed_when_it_stands_in_the_way() {
    let m = FakeLedger::new(64);
    let l = m.ledger();
    let a = FakeWorld::process(&m, 1);
    let b = FakeWorld::process(&m, 2);
    l.claim(&a, uuid(1), Pool::Reservoir, 10, 0, &mut || Ok(15))
        .unwrap();
    // A live holder keeps its claim.
    let r = l
        .claim(&b, uuid(2), Pool::Reservoir, 10, 0, &mut || Ok(15))
        .unwrap();
    assert!(matches!(r, ClaimOutcome::Refused(_)));
    m.kill(1);
    let r = l
        .claim(&b, uuid(2), Pool::Reservoir, 10, 0, &mut || Ok(15))
        .unwrap();
    assert!(
        matches!(r, ClaimOutcome::Claimed { others: 0, .. }),
        "{:?}",
        r
    );
    assert_eq!(l.claimed(Pool::Reservoir), 10);
}

#[test]
fn an_error_asking_the_kernel_is_not_death() {
    let m = FakeLedger::new(64);
    let l = m.ledger();
    let a = FakeWorld::process(&m, 1);
    let b = FakeWorld::process(&m, 2);
    l.claim(&a, uuid(1), Pool::Reservoir, 10, 0, &mut || Ok(15))
        .unwrap();
    m.fail_held(true);
    let e = l
        .claim(&b, uuid(2), Pool::Reservoir, 10, 0, &mut || Ok(15))
        .unwrap_err();
    assert_eq!(e.errno(), Some(libc::EMFILE));
    m.fail_held(false);
    assert_eq!(l.claimed(Pool::Reservoir), 10);
    assert_eq!(l.claims().unwrap().len(), 1);
}

/// Death at every step of a claim and a release leaves nothing a
/// reconcile cannot put right, and no page counted twice or lost.
#[test]
fn death_between_cas_and_slot_update_is_repaired() {
    let m = FakeLedger::new(16);
    let l = m.ledger();
    let a = FakeWorld::process(&m, 1);
    let b = FakeWorld::process(&m, 2);
    let out = l
        .claim(&a, uuid(1), Pool::Reservoir, 4, 0, &mut || Ok(100))
        .unwrap();
    let ClaimOutcome::Claimed { slot, .. } = out else {
        panic!()
    };
    // Play a's death after its CAS but before CLAIMED: the slot is
    // RESERVING and the total names it.
    let w = Word::unpack(m.slots[slot].peek_word()).unwrap();
    m.slots[slot].poke_word(w.with(SlotState::Reserving).pack());
    m.kill(1);
    let rep = l.reconcile(&b).unwrap();
    assert_eq!(rep.reclaimed_pages, 4);
    assert_eq!(l.claimed(Pool::Reservoir), 0);
    assert_eq!(l.read(slot).unwrap(), None);
    // Death before its CAS (RESERVING, not named): freed, total as it
    // was.
    let c = FakeWorld::process(&m, 3);
    l.claim(&c, uuid(3), Pool::Reservoir, 4, 0, &mut || Ok(100))
        .unwrap();
    let d = FakeWorld::process(&m, 4);
    let out = l
        .claim(&d, uuid(4), Pool::Reservoir, 5, 8, &mut || Ok(100))
        .unwrap();
    let ClaimOutcome::Claimed { slot: sd, .. } = out else {
        panic!()
    };
    // d's claim applied; now c claims again so the total no longer
    // names d, and we fake d as never having applied... instead: a
    // RESERVING slot whose pool total names another slot.
    let w = Word::unpack(m.slots[sd].peek_word()).unwrap();
    l.claim(&c, uuid(5), Pool::Reservoir, 1, 3, &mut || Ok(100))
        .unwrap();
    // Pretend d died before applying: RESERVING and not named. Its 5
    // pages are then in the total with no claim: check_total repairs.
    m.slots[sd].poke_word(w.with(SlotState::Reserving).pack());
    m.kill(4);
    let rep = l.reconcile(&b).unwrap();
    assert_eq!(rep.repaired_totals, 1);
    assert_eq!(l.claimed(Pool::Reservoir), 5, "c's 4 + 1");
}

#[test]
fn a_stopped_holder_blocks_nobody_and_keeps_its_claim() {
    let m = FakeLedger::new(64);
    let l = m.ledger();
    let a = FakeWorld::process(&m, 1);
    let b = FakeWorld::process(&m, 2);
    // a is "stopped" holding a RESERVING slot that never applied.
    let (i, busy) = l.take_slot(&a, 7).unwrap();
    m.slots[i].poke_word(busy.with(SlotState::Busy).pack());
    // b claims, releases, reconciles: nothing waits on a.
    let out = l
        .claim(&b, uuid(2), Pool::Reservoir, 3, 7, &mut || Ok(10))
        .unwrap();
    let ClaimOutcome::Claimed { slot, .. } = out else {
        panic!()
    };
    l.release(&b, slot).unwrap();
    let rep = l.reconcile(&b).unwrap();
    assert_eq!(rep.reclaimed_slots, 0, "a lives: its slot stays");
    assert_eq!(
        Word::unpack(m.slots[i].peek_word()).unwrap().state,
        SlotState::Busy
    );
}

/// Issue: a reconciler paused, replaced, and resumed after a claimant
/// was killed freed that claimant's slot while the totals were no longer
/// frozen, leaving 1 GiB in a total no slot held (LEDGER_CORRUPT for
/// every admission). Now every step is a CAS on the exact words it read:
/// a stale reclaimer's steps fail or finish the same release once.
#[test]
fn a_stale_reclaimer_cannot_lose_pages() {
    let m = FakeLedger::new(16);
    let l = m.ledger();
    let a = FakeWorld::process(&m, 1);
    let b = FakeWorld::process(&m, 2);
    let out = l
        .claim(&a, uuid(1), Pool::Reservoir, 6, 0, &mut || Ok(100))
        .unwrap();
    let ClaimOutcome::Claimed { slot, .. } = out else {
        panic!()
    };
    l.claim(&b, uuid(2), Pool::Reservoir, 2, 4, &mut || Ok(100))
        .unwrap();
    m.kill(1);
    // A reclaimer marks the dead claim RELEASING and stops there.
    let w = Word::unpack(m.slots[slot].peek_word()).unwrap();
    let releasing = w.with(SlotState::Releasing);
    assert!(l.cas_slot(&m.slots[slot], w, releasing));
    // Another finishes it; then the stale one resumes.
    let c = FakeWorld::process(&m, 3);
    l.reconcile(&c).unwrap();
    assert_eq!(l.claimed(Pool::Reservoir), 2);
    l.finish_release(slot, releasing, Pool::Reservoir, 6)
        .unwrap();
    assert_eq!(l.claimed(Pool::Reservoir), 2, "not lowered twice");
    assert!(!l.check_total(Pool::Reservoir).unwrap());
}

#[test]
fn a_total_that_does_not_add_up_is_repaired_by_the_admission_it_blocks() {
    let m = FakeLedger::new(16);
    let l = m.ledger();
    let a = FakeWorld::process(&m, 1);
    // 9 pages in the total that no slot holds.
    m.totals[0].store(
        Total {
            claimed: 9,
            last: None,
            epoch: 3,
        }
        .pack(),
        Relaxed,
    );
    let out = l
        .claim(&a, uuid(1), Pool::Reservoir, 5, 0, &mut || Ok(10))
        .unwrap();
    assert!(
        matches!(out, ClaimOutcome::Claimed { others: 0, .. }),
        "{:?}",
        out
    );
}

#[test]
fn hostile_words_are_corrupt_not_crashes() {
    let m = FakeLedger::new(8);
    let l = m.ledger();
    let a = FakeWorld::process(&m, 1);
    m.slots[3].poke_word(7); // unknown state
    assert_eq!(l.read(3).unwrap_err().status(), Status::LedgerCorrupt);
    assert_eq!(l.claims().unwrap_err().status(), Status::LedgerCorrupt);
    m.slots[3].poke_word(0);
    // FREE with a pid.
    m.slots[2].poke_word(1 << PID_SHIFT);
    assert_eq!(l.read(2).unwrap_err().status(), Status::LedgerCorrupt);
    m.slots[2].poke_word(0);
    // CLAIMED with a bad check.
    m.slots[1].poke_word(
        Word {
            state: SlotState::Claimed,
            spill: false,
            pid: 5,
            gen: 1,
        }
        .pack(),
    );
    assert_eq!(l.read(1).unwrap_err().status(), Status::LedgerCorrupt);
    m.slots[1].poke_word(0);
    // A total naming a slot of another pool.
    let out = l
        .claim(&a, uuid(1), Pool::Transient, 1, 0, &mut || Ok(10))
        .unwrap();
    let ClaimOutcome::Claimed { slot, .. } = out else {
        panic!()
    };
    m.totals[0].store(
        Total {
            claimed: 1,
            last: Some((slot, Op::Apply)),
            epoch: 0,
        }
        .pack(),
        Relaxed,
    );
    let w = Word::unpack(m.slots[slot].peek_word()).unwrap();
    m.slots[slot].poke_word(w.with(SlotState::Reserving).pack());
    // Naming a slot of another pool is what a finished operation looks
    // like once the slot was reused: nothing to help, nothing moved.
    let out = l
        .claim(&a, uuid(2), Pool::Reservoir, 1, 0, &mut || Ok(10))
        .unwrap();
    assert!(matches!(out, ClaimOutcome::Claimed { .. }), "{:?}", out);
    assert_eq!(
        Word::unpack(m.slots[slot].peek_word()).unwrap().state,
        SlotState::Reserving
    );
    // A total that names the claimant's own slot as applied, before
    // it is: not this protocol's word. The claim fails and its slot is
    // freed, not left CLAIMED for a reclaim to subtract.
    let b = FakeWorld::process(&m, 2);
    let (i, _) = l.take_slot(&b, 3).unwrap();
    b.unlock(i, Role::Holder);
    m.slots[i].poke_word(0);
    m.totals[1].store(
        Total {
            claimed: 0,
            last: Some((i, Op::Apply)),
            epoch: 9,
        }
        .pack(),
        Relaxed,
    );
    assert_eq!(
        l.claim(&b, uuid(3), Pool::Transient, 1, 3, &mut || Ok(10))
            .unwrap_err()
            .status(),
        Status::LedgerCorrupt
    );
    assert!(l.is_free(i).unwrap());
    assert!(!b.mine(i));
}

#[test]
fn a_huge_hint_does_not_overflow() {
    let m = FakeLedger::new(8);
    let l = m.ledger();
    let a = FakeWorld::process(&m, 1);
    let out = l
        .claim(&a, uuid(1), Pool::Reservoir, 1, usize::MAX, &mut || Ok(10))
        .unwrap();
    assert!(matches!(out, ClaimOutcome::Claimed { .. }));
    assert!(l
        .find(&uuid(1), usize::MAX, &[Pool::Reservoir])
        .unwrap()
        .is_some());
}

#[test]
fn a_crowded_window_spills_and_is_still_found() {
    let m = FakeLedger::new(4 * PROBE);
    let l = m.ledger();
    let a = FakeWorld::process(&m, 1);
    // Fill the window of hint 0 with other claims.
    for k in 0..PROBE {
        let out = l
            .claim(&a, uuid(100 + k as u8), Pool::Reservoir, 1, 0, &mut || {
                Ok(1000)
            })
            .unwrap();
        assert!(matches!(out, ClaimOutcome::Claimed { slot, .. } if slot < PROBE));
    }
    assert_eq!(m.spilled.load(Relaxed), 0);
    let out = l
        .claim(&a, uuid(1), Pool::Reservoir, 1, 0, &mut || Ok(1000))
        .unwrap();
    let ClaimOutcome::Claimed { slot, .. } = out else {
        panic!()
    };
    assert!(slot >= PROBE);
    assert_eq!(m.spilled.load(Relaxed), 1);
    let c = l.find(&uuid(1), 0, &[Pool::Reservoir]).unwrap().unwrap();
    assert_eq!(c.slot, slot);
    l.release(&a, slot).unwrap();
    assert_eq!(m.spilled.load(Relaxed), 0);
}

#[test]
fn full_ledger_says_so_and_a_dead_holder_makes_room() {
    let m = FakeLedger::new(4);
    let l = m.ledger();
    let a = FakeWorld::process(&m, 1);
    let b = FakeWorld::process(&m, 2);
    for k in 0..4 {
        l.claim(&a, uuid(k), Pool::Reservoir, 1, 0, &mut || Ok(100))
            .unwrap();
    }
    assert_eq!(
        l.claim(&b, uuid(9), Pool::Reservoir, 1, 0, &mut || Ok(100))
            .unwrap_err()
            .status(),
        Status::LedgerFull
    );
    m.kill(1);
    let out = l
        .claim(&b, uuid(9), Pool::Reservoir, 1, 0, &mut || Ok(100))
        .unwrap();
    assert!(
        matches!(out, ClaimOutcome::Claimed { others: 0, .. }),
        "{:?}",
        out
    );
}

#[test]
fn handed_over_claims_live_while_either_holder_does() {
    let m = FakeLedger::new(16);
    let l = m.ledger();
    let parent = FakeWorld::process(&m, 1);
    let child = FakeWorld::process(&m, 2);
    let other = FakeWorld::process(&m, 3);
    let out = l
        .claim(&parent, uuid(1), Pool::Reservoir, 4, 0, &mut || Ok(100))
        .unwrap();
    let ClaimOutcome::Claimed { slot, .. } = out else {
        panic!()
    };
    let gen = l.read(slot).unwrap().unwrap().word.gen;
    assert_eq!(
        l.adopt(&child, slot, gen + 1, &uuid(1), false)
            .unwrap_err()
            .status(),
        Status::NotFound
    );
    // The parent has not shared the adopter byte yet: taken.
    assert_eq!(
        l.adopt(&child, slot, gen, &uuid(1), false)
            .unwrap_err()
            .status(),
        Status::Busy
    );
    parent.share(slot);
    l.adopt(&child, slot, gen, &uuid(1), false).unwrap();
    m.kill(1);
    l.reconcile(&other).unwrap();
    assert_eq!(l.claimed(Pool::Reservoir), 4, "the child still holds it");
    assert_eq!(l.release(&child, slot).unwrap(), 4);
    // A claim nobody holds any more cannot be adopted.
    let p2 = FakeWorld::process(&m, 4);
    let out = l
        .claim(&p2, uuid(2), Pool::Reservoir, 4, 0, &mut || Ok(100))
        .unwrap();
    let ClaimOutcome::Claimed { slot, .. } = out else {
        panic!()
    };
    let gen = l.read(slot).unwrap().unwrap().word.gen;
    p2.share(slot);
    m.kill(4);
    let c2 = FakeWorld::process(&m, 5);
    assert_eq!(
        l.adopt(&c2, slot, gen, &uuid(2), false)
            .unwrap_err()
            .status(),
        Status::NotFound
    );
}

#[test]
fn threads_never_over_claim() {
    let m = std::sync::Arc::new(FakeLedger::new(64));
    let cap = 100u64;
    let mut handles = Vec::new();
    for t in 0..4u32 {
        let m = m.clone();
        handles.push(std::thread::spawn(move || {
            let w = FakeWorld::process(&m, 10 + t);
            let l = m.ledger();
            let rounds = if cfg!(miri) { 10 } else { 300u32 };
            for k in 0..rounds {
                let mut u = [0u8; 16];
                u[..4].copy_from_slice(&t.to_be_bytes());
                u[4..8].copy_from_slice(&k.to_be_bytes());
                let out = l
                    .claim(&w, u, Pool::Reservoir, 30, k as usize, &mut || Ok(cap))
                    .unwrap();
                if let ClaimOutcome::Claimed { slot, .. } = out {
                    assert!(l.claimed(Pool::Reservoir) <= cap);
                    l.release(&w, slot).unwrap();
                }
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(m.ledger().claimed(Pool::Reservoir), 0);
}

#[test]
fn a_durable_claim_outlives_its_maker_through_every_lock_driven_path() {
    let m = FakeLedger::new(4);
    let l = m.ledger();
    let a = FakeWorld::process(&m, 1);
    let b = FakeWorld::process(&m, 2);
    let out = l.claim_durable(&a, uuid(1), 10, 0, &mut || Ok(15)).unwrap();
    let ClaimOutcome::Claimed { slot, .. } = out else {
        panic!("{out:?}")
    };
    // The maker holds no lock on it once CLAIMED.
    assert_eq!(m.held_by(1), 0);
    let c = l.read(slot).unwrap().unwrap();
    assert!(c.durable);
    assert_eq!(
        (c.pool, c.pages, c.state),
        (Pool::Arc, 10, SlotState::Claimed)
    );
    m.kill(1);
    // A claim it stands in the way of is refused (after the reclaim and
    // the check it triggers), not admitted over it.
    let r = l
        .claim(&b, uuid(2), Pool::Arc, 10, 0, &mut || Ok(15))
        .unwrap();
    assert!(matches!(r, ClaimOutcome::Refused(_)), "{r:?}");
    // A reconcile's dry run says what the reconcile does: nothing
    // reclaimed, the durable claim live.
    let pre = l.reconcile_preview(&b).unwrap();
    assert_eq!((pre.reclaimed_slots, pre.reclaimed_pages), (0, 0));
    assert_eq!((pre.live_claims, pre.after(Pool::Arc)), (1, 10));
    // Reconcile: nothing reclaimed, nothing repaired, the total stands.
    let rep = l.reconcile(&b).unwrap();
    assert_eq!(rep.live_claims, 1);
    assert_eq!((rep.reclaimed_slots, rep.repaired_totals), (0, 0));
    assert_eq!(l.claimed(Pool::Arc), 10);
    assert!(!l.check_total(Pool::Arc).unwrap());
    // A full ledger reclaims dead holders, but not the durable claim.
    for k in 3..6 {
        l.claim(&b, uuid(k), Pool::Reservoir, 1, 0, &mut || Ok(100))
            .unwrap();
    }
    m.kill(2);
    let d = FakeWorld::process(&m, 4);
    l.claim(&d, uuid(9), Pool::Reservoir, 1, 0, &mut || Ok(100))
        .unwrap();
    assert_eq!(l.read(slot).unwrap().unwrap().word, c.word);
    assert_eq!(l.claimed(Pool::Arc), 10);
    // Nobody holds it: a holder's release and an adoption refuse.
    assert_eq!(l.release(&d, slot).unwrap_err().status(), Status::NotHolder);
    assert_eq!(
        l.adopt(&d, slot, c.word.gen, &uuid(1), false)
            .unwrap_err()
            .status(),
        Status::NotFound
    );
    // release_durable takes it out once; a stale second one frees nothing.
    assert_eq!(l.release_durable(slot, c.word).unwrap(), 10);
    assert_eq!(l.claimed(Pool::Arc), 0);
    assert!(l.is_free(slot).unwrap());
    assert_eq!(
        l.release_durable(slot, c.word).unwrap_err().status(),
        Status::NotFound
    );
    assert_eq!(l.claimed(Pool::Arc), 0);
}

#[test]
fn durable_claims_are_arc_only_and_checked_like_any_field() {
    let m = FakeLedger::new(8);
    let l = m.ledger();
    let a = FakeWorld::process(&m, 1);
    // Only the ARC pool has durable claims.
    assert_eq!(
        l.claim_as(&a, uuid(1), Pool::Reservoir, 1, 0, &mut || Ok(9), true)
            .unwrap_err()
            .status(),
        Status::InvalidArgument
    );
    // An ordinary claim is not durable, and release_durable refuses it.
    let ClaimOutcome::Claimed { slot, .. } = l
        .claim(&a, uuid(2), Pool::Arc, 1, 0, &mut || Ok(9))
        .unwrap()
    else {
        panic!()
    };
    let c = l.read(slot).unwrap().unwrap();
    assert!(!c.durable);
    assert_eq!(
        l.release_durable(slot, c.word).unwrap_err().status(),
        Status::NotFound
    );
    // The durable bit is covered by the check word: set on a slot by
    // anything but the protocol, the slot is corrupt.
    let s = &m.slots[slot];
    s.pool.store(Pool::Arc.raw() | DURABLE_BIT, Relaxed);
    assert_eq!(l.read(slot).unwrap_err().status(), Status::LedgerCorrupt);
    // And a durable bit on another pool is corrupt even with a good check.
    let w = c.word;
    let bad = Pool::Reservoir.raw() | DURABLE_BIT;
    s.pool.store(bad, Relaxed);
    s.check.store(
        check_of(
            w,
            c.origin,
            c.pages,
            s.uuid_hi.load(Relaxed),
            s.uuid_lo.load(Relaxed),
            c.since,
            bad,
        ),
        Relaxed,
    );
    assert_eq!(l.read(slot).unwrap_err().status(), Status::LedgerCorrupt);
}

#[test]
fn a_durable_makers_death_at_any_step_leaves_it_whole_or_gone() {
    use super::fake::{quiet_deaths, survive, Mortal};
    quiet_deaths();
    let mut outcomes = std::collections::HashSet::new();
    for k in 0..40u32 {
        let m = FakeLedger::new(8);
        let l = m.ledger();
        let maker = Mortal::new(&m, 1, k);
        let out = survive(|| {
            l.claim_durable(&maker, uuid(1), 10, 0, &mut || {
                maker.step();
                Ok(15)
            })
        });
        // Whoever comes next reconciles (as a process holding nothing).
        let b = FakeWorld::process(&m, 2);
        l.reconcile(&b).unwrap();
        let claims = l.claims().unwrap();
        match claims.as_slice() {
            // Died before CLAIMED: nothing stays, in the slots or the total.
            [] => assert_eq!(l.claimed(Pool::Arc), 0, "k={k}"),
            // Reached CLAIMED (its own CAS, or helped): whole, durable, in
            // the total, and no lock of the maker's left.
            [c] => {
                assert!(c.durable && c.state == SlotState::Claimed, "k={k} {c:?}");
                assert_eq!(l.claimed(Pool::Arc), 10, "k={k}");
            }
            more => panic!("k={k}: {more:?}"),
        }
        assert!(!l.check_total(Pool::Arc).unwrap(), "k={k}");
        assert_eq!(m.held_by(1), 0, "k={k}");
        outcomes.insert((out.is_some(), claims.len()));
        if out.is_some() {
            assert_eq!(claims.len(), 1, "k={k}: a finished claim stays");
        }
    }
    // Both ends were reached: deaths before the claim and a claim made.
    assert!(outcomes.contains(&(false, 0)), "{outcomes:?}");
    assert!(outcomes.contains(&(true, 1)), "{outcomes:?}");
}

#[test]
fn a_durable_maker_dead_between_its_cas_and_claimed_is_helped_not_reclaimed() {
    let m = FakeLedger::new(16);
    let l = m.ledger();
    let a = FakeWorld::process(&m, 1);
    let b = FakeWorld::process(&m, 2);
    let ClaimOutcome::Claimed { slot, .. } =
        l.claim_durable(&a, uuid(1), 4, 0, &mut || Ok(100)).unwrap()
    else {
        panic!()
    };
    // Play the maker's death after its CAS on the total, before CLAIMED:
    // RESERVING, named by the total. Helped to CLAIMED, then kept.
    let w = Word::unpack(m.slots[slot].peek_word()).unwrap();
    m.slots[slot].poke_word(w.with(SlotState::Reserving).pack());
    m.kill(1);
    // The dry run foresees it: nothing reclaimed, the claim live.
    let pre = l.reconcile_preview(&b).unwrap();
    assert_eq!((pre.reclaimed_slots, pre.reclaimed_pages), (0, 0));
    assert_eq!((pre.live_claims, pre.after(Pool::Arc)), (1, 4));
    let rep = l.reconcile(&b).unwrap();
    assert_eq!((rep.reclaimed_slots, rep.reclaimed_pages), (0, 0));
    assert_eq!(rep.repaired_totals, 0);
    let c = l.read(slot).unwrap().unwrap();
    assert_eq!((c.state, c.durable), (SlotState::Claimed, true));
    assert_eq!(l.claimed(Pool::Arc), 4);
    // A durable release left half-done (RELEASING, total not lowered) is
    // finished by whoever finds it, once.
    let r = c.word.with(SlotState::Releasing);
    m.slots[slot].poke_word(r.pack());
    let pre = l.reconcile_preview(&b).unwrap();
    assert_eq!((pre.reclaimed_pages, pre.after(Pool::Arc)), (4, 0));
    let rep = l.reconcile(&b).unwrap();
    assert_eq!(rep.reclaimed_pages, 4);
    assert_eq!(l.claimed(Pool::Arc), 0);
    assert!(l.is_free(slot).unwrap());
    assert!(!l.check_total(Pool::Arc).unwrap());
}

//! Property tests of the ARC module (10,000 cases each): the parsers never
//! panic on any input and round-trip what they render; the guard and the
//! target match an independent oracle computed in u128 bytes; the default
//! limits stay ordered; the rate estimate and the wait stay sane.

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

use std::time::Duration;

use proptest::prelude::*;
use vmmresv::arc::arcstats::KstatHeader;
use vmmresv::arc::guard::illumos_arc_limits_for_allmem;
use vmmresv::arc::{
    guard, openzfs_linux_arc_limits, openzfs_linux_arc_limits_pre_2_3, parse_kstat_p, parse_linux,
    parse_memstat, target, wait, Admitted, ArcLimits, Arcstats, Ceiling, Clock, Flow, GuardInputs,
    KstatNamed, KstatValue, Memstat, MemstatLine, MemstatRow, Refusal, ShrinkRate, TargetInputs,
    WaitOptions, WaitOutcome,
};

const CASES: u32 = 10_000;
const P: u128 = 4096;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------- arcstats

// Strings are built from byte vectors rather than regexes: proptest's
// regex generator is slow in debug builds, and `make test` runs debug.

const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_";
const NAME_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789:.";

/// A statistic name: a letter or '_', then up to `max` name characters
/// (longer than 31 on purpose: the `%-31s` column overflows then).
fn name(first: &'static [u8], rest: &'static [u8], max: usize) -> impl Strategy<Value = String> {
    (
        prop::sample::select(first),
        prop::collection::vec(prop::sample::select(rest), 0..max),
    )
        .prop_map(|(first, rest)| {
            let mut v = vec![first];
            v.extend(rest);
            String::from_utf8(v).unwrap()
        })
}

/// Printable ASCII without leading or trailing spaces (a text value is
/// read back trimmed).
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(0x20u8..0x7f, 0..20).prop_map(|mut v| {
        if let Some(f) = v.first_mut() {
            if *f == b' ' {
                *f = b'~';
            }
        }
        if let Some(l) = v.last_mut() {
            if *l == b' ' {
                *l = b'~';
            }
        }
        String::from_utf8(v).unwrap()
    })
}

/// A (data type, value) pair the Linux format can carry.
fn typed_value() -> impl Strategy<Value = (u32, KstatValue)> {
    prop_oneof![
        any::<i32>().prop_map(|v| (1, KstatValue::Signed(i64::from(v)))),
        any::<u32>().prop_map(|v| (2, KstatValue::Unsigned(u64::from(v)))),
        any::<i64>().prop_map(|v| (3, KstatValue::Signed(v))),
        any::<u64>().prop_map(|v| (4, KstatValue::Unsigned(v))),
        any::<i64>().prop_map(|v| (5, KstatValue::Signed(v))),
        any::<u64>().prop_map(|v| (6, KstatValue::Unsigned(v))),
        text().prop_map(|s| (0, KstatValue::Text(s))),
        text().prop_map(|s| (7, KstatValue::Text(s))),
    ]
}

fn linux_arcstats() -> impl Strategy<Value = Arcstats> {
    let header = (
        any::<i32>(),
        any::<u8>(),
        any::<u32>(),
        any::<i64>(),
        any::<i64>(),
    );
    let stats = prop::collection::btree_map(name(LETTERS, NAME_CHARS, 41), typed_value(), 0..24);
    (header, stats).prop_map(|((kid, flags, data_size, crtime, snaptime), stats)| {
        let stats: Vec<KstatNamed> = stats
            .into_iter()
            .enumerate()
            .map(|(i, (name, (ty, value)))| KstatNamed {
                name,
                data_type: Some(ty),
                value,
                line: i + 3,
            })
            .collect();
        Arcstats {
            header: Some(KstatHeader {
                kid: i64::from(kid),
                ks_type: 1,
                flags: u32::from(flags),
                ndata: stats.len() as u64,
                data_size: u64::from(data_size),
                crtime,
                snaptime,
            }),
            instance: None,
            stats,
        }
    })
}

fn kstat_p_arcstats() -> impl Strategy<Value = Arcstats> {
    let value = prop_oneof![
        any::<u64>().prop_map(KstatValue::Unsigned),
        (i64::MIN..0i64).prop_map(KstatValue::Signed),
        // Not an integer: it starts with a letter.
        (prop::sample::select(LETTERS), text())
            .prop_map(|(c, t)| { KstatValue::Text(format!("{}{t}", char::from(c))) }),
    ];
    // kstat -p names: no ':' (it separates the key's fields).
    let stats = prop::collection::btree_map(name(LETTERS, &NAME_CHARS[..63], 31), value, 1..24);
    (any::<u32>(), stats).prop_map(|(inst, stats)| Arcstats {
        header: None,
        instance: Some(u64::from(inst)),
        stats: stats
            .into_iter()
            .enumerate()
            .map(|(i, (name, value))| KstatNamed {
                name,
                data_type: None,
                value,
                line: i + 1,
            })
            .collect(),
    })
}

// ----------------------------------------------------------------- memstat

const CATEGORIES: [(MemstatRow, &str, bool); 10] = [
    (MemstatRow::Kernel, "Kernel", true),
    (MemstatRow::BootPages, "Boot pages", false),
    (MemstatRow::ZfsFileData, "ZFS File Data", false),
    (MemstatRow::VmmMemory, "VMM Memory", false),
    (MemstatRow::Anon, "Anon", true),
    (MemstatRow::ExecAndLibs, "Exec and libs", true),
    (MemstatRow::PageCache, "Page cache", true),
    (MemstatRow::FreeCachelist, "Free (cachelist)", true),
    (MemstatRow::FreeFreelist, "Free (freelist)", true),
    (MemstatRow::Balloon, "Balloon", false),
];

fn row(row: MemstatRow, label: &str, pages: u64, pct: Option<u64>) -> MemstatLine {
    MemstatLine {
        row,
        label: label.to_string(),
        pages,
        bytes: pages * 4096,
        mb: pages >> 8,
        pct,
        line: 0,
    }
}

/// A consistent table: every category's pages, Total their sum, Physical
/// optional; optional rows (absent or nonzero) and up to two unknown rows.
fn memstat_table() -> impl Strategy<Value = Memstat> {
    let pages = prop_oneof![0u64..1_000, 0u64..(1 << 36)];
    let cats = prop::collection::vec((pages.clone(), any::<bool>(), 0u64..1000), 10);
    let label = (
        name(&LETTERS[..52], &LETTERS[..52], 8),
        prop::option::of(name(LETTERS, LETTERS, 6)),
    )
        .prop_map(|(a, b)| b.map_or(a.clone(), |b| format!("{a} {b}")));
    let others = prop::collection::vec((label, pages.clone(), 0u64..1000), 0..3);
    (cats, others, prop::option::of(pages)).prop_map(|(cats, others, physical)| {
        let mut rows = Vec::new();
        for ((r, label, always), (p, present, pct)) in CATEGORIES.iter().zip(cats) {
            if *always || (present && p > 0) {
                rows.push(row(*r, label, p, Some(pct)));
            }
        }
        for (label, p, pct) in others {
            if MemstatRow::from_label(&label) == MemstatRow::Other
                && !rows.iter().any(|r| r.label == label)
            {
                rows.push(row(MemstatRow::Other, &label, p, Some(pct)));
            }
        }
        let total: u64 = rows.iter().map(|r| r.pages).sum();
        rows.push(row(MemstatRow::Total, "Total", total, None));
        if let Some(p) = physical {
            rows.push(row(MemstatRow::Physical, "Physical", p, None));
        }
        // Line numbers as rendered: header, dashes, categories, a blank
        // line, then Total and Physical.
        let mut n = 2;
        for r in &mut rows {
            n += if r.row.is_category() || r.row == MemstatRow::Physical {
                1
            } else {
                2
            };
            r.line = n;
        }
        Memstat { rows }
    })
}

/// A few edits of a valid text: overwrite, insert or delete bytes, or
/// duplicate a line.
fn mutate(text: &str, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    for &(at, kind, byte) in edits {
        let at = if b.is_empty() { 0 } else { at % b.len() };
        match kind % 4 {
            0 if !b.is_empty() => b[at] = byte,
            1 => b.insert(at, byte),
            2 if !b.is_empty() => {
                b.remove(at);
            }
            _ => {
                let start = b[..at]
                    .iter()
                    .rposition(|c| *c == b'\n')
                    .map_or(0, |i| i + 1);
                let end = b[at..]
                    .iter()
                    .position(|c| *c == b'\n')
                    .map_or(b.len(), |i| at + i + 1);
                let line = b[start..end].to_vec();
                b.splice(start..start, line);
            }
        }
    }
    b
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6)
}

fn line_count(b: &[u8]) -> usize {
    b.iter().filter(|c| **c == b'\n').count() + 1
}

fn ceiling_of(which: u8, other: u64) -> Ceiling {
    match which {
        0 => Ceiling::ArcCMax,
        1 => Ceiling::Physmem(other),
        _ => Ceiling::Budget(other),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn linux_parser_is_total(input in prop::collection::vec(any::<u8>(), 0..1024)) {
        if let Err(e) = parse_linux(&input) {
            prop_assert!(e.line <= line_count(&input));
        }
    }

    #[test]
    fn kstat_p_parser_is_total(input in prop::collection::vec(any::<u8>(), 0..1024)) {
        if let Err(e) = parse_kstat_p(&input) {
            prop_assert!(e.line <= line_count(&input));
        }
    }

    #[test]
    fn memstat_parser_is_total(input in prop::collection::vec(any::<u8>(), 0..1024)) {
        if let Err(e) = parse_memstat(&input) {
            prop_assert!(e.line <= line_count(&input));
        }
    }

    #[test]
    fn linux_round_trip(a in linux_arcstats()) {
        let text = a.to_linux_text();
        prop_assert_eq!(parse_linux(&text), Ok(a.clone()));
        // And the snapshot never panics (it may reject text values).
        let _ = a.snapshot();
    }

    #[test]
    fn kstat_p_round_trip(a in kstat_p_arcstats()) {
        prop_assert_eq!(parse_kstat_p(&a.to_kstat_p_text()), Ok(a.clone()));
        let _ = a.snapshot();
    }

    #[test]
    fn memstat_round_trip(m in memstat_table(), aligned in any::<bool>()) {
        let text = m.to_text(aligned);
        prop_assert_eq!(parse_memstat(&text), Ok(m.clone()));
        let s = m.snapshot();
        let total = m.pages(MemstatRow::Total).unwrap();
        prop_assert_eq!(s.physmem, Some(total * 4096));
        let free = m.pages(MemstatRow::FreeCachelist).unwrap()
            + m.pages(MemstatRow::FreeFreelist).unwrap();
        prop_assert_eq!(s.free, Some(free * 4096));
        prop_assert_eq!(s.vmm, Some(m.pages(MemstatRow::VmmMemory).unwrap_or(0) * 4096));
    }

    #[test]
    fn mutated_texts_never_panic(
        (kind, text) in prop_oneof![
            linux_arcstats().prop_map(|a| (0, a.to_linux_text())),
            kstat_p_arcstats().prop_map(|k| (1, k.to_kstat_p_text())),
            (memstat_table(), any::<bool>()).prop_map(|(m, aligned)| (2, m.to_text(aligned))),
        ],
        e in edits(),
    ) {
        let bytes = mutate(&text, &e);
        let line = match kind {
            0 => parse_linux(&bytes).err(),
            1 => parse_kstat_p(&bytes).err(),
            _ => parse_memstat(&bytes).err(),
        }
        .map_or(0, |err| err.line);
        prop_assert!(line <= line_count(&bytes));
    }

    /// The guard against an oracle in u128: demands rounded up, supply down,
    /// pages compared with pages. Admissions are also checked in exact bytes,
    /// so a guard that mixed units or rounded the wrong way would fail here.
    #[test]
    fn guard_matches_a_byte_oracle(
        c_min in any::<u64>(),
        c_max in any::<u64>(),
        which in 0u8..3,
        other in any::<u64>(),
        reserved in 0u64..(1 << 53),
        request in any::<u64>(),
    ) {
        let limits = ArcLimits { arc_c_min: c_min, arc_c_max: c_max };
        let ceiling = ceiling_of(which, other);
        let ceiling_bytes = u128::from(if which == 0 { c_max } else { other });
        let got = guard(&GuardInputs::new(&limits, ceiling, reserved, request));

        let up = |b: u64| u128::from(b).div_ceil(P);
        let need = up(c_min) + u128::from(reserved) + up(request);
        let supply = ceiling_bytes / P;
        if need <= supply {
            prop_assert_eq!(got, Ok(Admitted {
                arc_virt_machine_reserved:
                    u64::try_from(u128::from(reserved) + up(request)).unwrap(),
                headroom: u64::try_from(supply - need).unwrap(),
            }));
            // Exact bytes: c_min + reservations + request fit the ceiling.
            let exact = u128::from(c_min) + u128::from(reserved) * P + u128::from(request);
            prop_assert!(exact <= ceiling_bytes);
        } else {
            let short = need - supply;
            prop_assert_eq!(got, Err(Refusal::Shortfall {
                shortfall_bytes: u64::try_from(short * P).unwrap_or(u64::MAX),
                shortfall_pages: u64::try_from(short).unwrap(),
                need: u64::try_from(need).unwrap(),
                ceiling: u64::try_from(supply).unwrap(),
            }));
        }
    }

    #[test]
    fn guard_overflow_is_refused(
        reserved in any::<u64>(),
        request in any::<u64>(),
        c_min in any::<u64>(),
    ) {
        let limits = ArcLimits { arc_c_min: c_min, arc_c_max: u64::MAX };
        let i = GuardInputs::new(&limits, Ceiling::ArcCMax, reserved, request);
        let need = u128::from(reserved) + u128::from(i.request) + u128::from(i.arc_c_min);
        let got = guard(&i);
        if need > u128::from(u64::MAX) {
            prop_assert_eq!(got, Err(Refusal::Overflow));
        } else {
            prop_assert_eq!(got.is_ok(), need <= u128::from(u64::MAX) / P);
        }
    }

    #[test]
    fn target_stays_within_the_arc_limits(
        a in any::<u64>(),
        b in any::<u64>(),
        which in 0u8..3,
        other in any::<u64>(),
        reserved in prop_oneof![0u64..(1 << 52), any::<u64>()],
        slack in any::<u64>(),
    ) {
        let limits = ArcLimits { arc_c_min: a.min(b), arc_c_max: a.max(b) };
        let ceiling = ceiling_of(which, other);
        let inputs = TargetInputs { limits, ceiling, arc_virt_machine_reserved: reserved, slack };
        let r = target(&inputs);
        if u128::from(reserved) * P > u128::from(u64::MAX) {
            prop_assert!(r.is_err());
            return Ok(());
        }
        let r = r.unwrap();
        prop_assert!(r.target_bytes >= limits.arc_c_min && r.target_bytes <= limits.arc_c_max);
        let ceiling_pages = u128::from(ceiling.bytes(&limits)) / P;
        let want = ceiling_pages
            .checked_sub(u128::from(reserved))
            .and_then(|v| v.checked_sub(u128::from(slack).div_ceil(P)));
        prop_assert_eq!(r.unclamped_bytes.map(u128::from), want.map(|p| p * P));
        let clamped = match want.map(|p| p * P) {
            Some(w) if w >= u128::from(limits.arc_c_min) && w <= u128::from(limits.arc_c_max) => w,
            Some(w) if w > u128::from(limits.arc_c_max) => u128::from(limits.arc_c_max),
            _ => u128::from(limits.arc_c_min),
        };
        prop_assert_eq!(u128::from(r.target_bytes), clamped);
    }

    #[test]
    fn default_limits_are_ordered(allmem in prop_oneof![any::<u64>(), 0u64..(1 << 34)]) {
        let i = illumos_arc_limits_for_allmem(allmem).limits;
        prop_assert!(i.arc_c_min >= 64 << 20 && i.arc_c_min <= 1 << 30);
        prop_assert!(i.arc_c_min <= i.arc_c_max);
        let linux = [
            openzfs_linux_arc_limits(allmem).limits,
            openzfs_linux_arc_limits_pre_2_3(allmem).limits,
        ];
        for l in linux {
            prop_assert!(l.arc_c_min >= 32 << 20);
            prop_assert!(l.arc_c_min <= l.arc_c_max);
        }
        // 2.3 never gives less than before.
        prop_assert!(openzfs_linux_arc_limits(allmem).limits.arc_c_max
            >= openzfs_linux_arc_limits_pre_2_3(allmem).limits.arc_c_max);
    }

    /// The EWMA is a running convex combination of the interval rates, so
    /// it stays within their range (integer division: within 1).
    #[test]
    fn shrink_rate_stays_within_the_observed_rates(
        tau_ms in 0u64..10_000,
        steps in prop::collection::vec((1u64..5_000, any::<u64>()), 1..40),
        first in any::<u64>(),
    ) {
        let mut r = ShrinkRate::new(Duration::from_millis(tau_ms));
        let (mut t, mut prev) = (0u64, first);
        r.observe(Duration::ZERO, first);
        let (mut lo, mut hi) = (i128::MAX, i128::MIN);
        for (dt, size) in steps {
            t += dt;
            let shrunk = i128::from(prev) - i128::from(size);
            let inst = shrunk * 1_000_000_000 / (i128::from(dt) * 1_000_000);
            let inst = inst.clamp(i128::from(i64::MIN), i128::from(i64::MAX));
            lo = lo.min(inst);
            hi = hi.max(inst);
            r.observe(Duration::from_millis(t), size);
            prev = size;
            let got = i128::from(r.rate().unwrap());
            prop_assert!(got >= lo - 1 && got <= hi + 1, "{} not in [{}, {}]", got, lo, hi);
            if let Some(eta) = r.eta(1 << 30) {
                prop_assert!(got > 0);
                prop_assert!(eta.as_nanos() <= u128::from(u64::MAX));
            }
        }
    }

    /// The wait on a fake clock always ends, and how it ends agrees with the
    /// last sample and the bounds.
    #[test]
    fn wait_ends_consistently(
        sizes in prop::collection::vec(any::<u64>(), 1..30),
        jitter in prop::collection::vec(0u64..300, 1..30),
        goal in any::<u64>(),
        deadline_ms in 0u64..5_000,
        poll_ms in 0u64..1_000,
        cancel_at in 0u64..40,
    ) {
        struct Fake { now: Duration, jitter: Vec<u64>, i: usize }
        impl Clock for Fake {
            fn now(&mut self) -> Duration { self.now }
            fn sleep(&mut self, d: Duration) {
                let j = self.jitter[self.i % self.jitter.len()];
                self.i += 1;
                self.now += d + Duration::from_millis(j);
            }
        }
        let mut clock = Fake { now: Duration::ZERO, jitter, i: 0 };
        let opts = WaitOptions {
            goal,
            deadline: Duration::from_millis(deadline_ms),
            poll: Duration::from_millis(poll_ms),
            tau: Duration::from_secs(2),
        };
        let mut k = 0usize;
        let mut calls = 0u64;
        let out: Result<WaitOutcome, ()> = wait(
            || { let s = sizes[k.min(sizes.len() - 1)]; k += 1; Ok(s) },
            &mut clock,
            &opts,
            |_| { calls += 1; if calls == cancel_at { Flow::Cancel } else { Flow::Continue } },
        );
        let out = out.unwrap();
        let p = *out.progress();
        prop_assert_eq!(p.samples, calls);
        let bound = deadline_ms / poll_ms.max(1) + 2;
        prop_assert!(p.samples <= bound);
        match out {
            WaitOutcome::Reached(p) => prop_assert!(p.arc_size <= goal && p.remaining == 0),
            WaitOutcome::Cancelled(p) => prop_assert!(p.arc_size > goal && p.samples == cancel_at),
            WaitOutcome::Deadline(p) => {
                prop_assert!(p.arc_size > goal);
                prop_assert!(p.elapsed >= opts.deadline || p.samples == bound);
            }
        }
    }
}

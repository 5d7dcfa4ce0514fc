//! Property tests for `vmmresv::pages`: page arithmetic never wraps, rounding
//! is exact for any alignment, and size strings round-trip and never panic.
//!
//! Every expected value is recomputed here independently, in u128, so a
//! wrapping bug in the library cannot hide behind the same bug in the test.

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

use proptest::prelude::*;
use vmmresv::pages::*;
use vmmresv::status::Status;

const ALL_SIZES: [PageSize; 3] = [PageSize::Base4K, PageSize::Large2M, PageSize::Huge1G];

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 10_000,
        ..ProptestConfig::default()
    }
}

fn page_size() -> impl Strategy<Value = PageSize> {
    prop::sample::select(ALL_SIZES.to_vec())
}

/// Byte counts biased to the edges: small values, values near `u64::MAX`,
/// and exact page / unit multiples plus or minus a little.
fn bytes() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..=65_536,
        (u64::MAX - 65_536)..=u64::MAX,
        (any::<u64>(), 0u32..=63, -2i64..=2).prop_map(|(m, s, d)| {
            let v = m.checked_shr(s).unwrap_or(0) << s;
            v.checked_add_signed(d).unwrap_or(v)
        }),
    ]
}

/// Nonzero alignments: powers of two, page multiples that are not powers of
/// two (1536 MiB chunks), small odd numbers, and huge values.
fn align() -> impl Strategy<Value = u64> {
    prop_oneof![
        1u64..=10_000,
        (0u32..=63).prop_map(|s| 1u64 << s),
        (1u64..=4096).prop_map(|m| m * 4096),
        Just(1536u64 << 20),
        1u64..=u64::MAX,
        (u64::MAX - 10_000)..=u64::MAX,
    ]
}

/// Page counts biased to the overflow threshold of every page size.
fn pages() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..=65_536,
        (page_size(), -3i64..=3).prop_map(|(ps, d)| {
            let edge = u64::MAX >> ps.shift();
            edge.checked_add_signed(d).unwrap_or(edge)
        }),
        (u64::MAX / 120 - 3)..=(u64::MAX / 120 + 3),
    ]
}

/// Every suffix `parse_size` accepts for a byte count or unit, with its shift.
const SUFFIXES: [(&str, u32); 20] = [
    ("", 0),
    ("B", 0),
    ("K", 10),
    ("KB", 10),
    ("KiB", 10),
    ("M", 20),
    ("MB", 20),
    ("MiB", 20),
    ("G", 30),
    ("GB", 30),
    ("GiB", 30),
    ("T", 40),
    ("TiB", 40),
    ("P", 50),
    ("PB", 50),
    ("PiB", 50),
    ("E", 60),
    ("EB", 60),
    ("EiB", 60),
    ("TB", 40),
];

/// The suffix with the case of each letter flipped where `mask` has a bit.
fn recase(suffix: &str, mask: u8) -> String {
    suffix
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if (mask >> (i % 8)) & 1 == 1 {
                if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                }
            } else {
                c
            }
        })
        .collect()
}

fn status_of<T: core::fmt::Debug>(r: core::result::Result<T, vmmresv::status::Error>) -> Status {
    match r {
        Ok(_) => Status::Ok,
        Err(e) => e.status(),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn btop_btopr_bracket_the_value(x in bytes(), ps in page_size()) {
        let size = ps.bytes();
        let down = btop(x, ps);
        let back = ptob(down, ps).expect("btop(x) pages always fit back");
        prop_assert!(back <= x);
        prop_assert!(x - back < size);
        prop_assert_eq!(u128::from(down), u128::from(x) / u128::from(size));

        let up = btopr(x, ps);
        prop_assert!(up == down || up == down + 1);
        prop_assert_eq!(up == down, x % size == 0);
        match ptob(up, ps) {
            Ok(v) => prop_assert!(v >= x),
            // Only a partial last page near u64::MAX can fail to fit.
            Err(e) => {
                prop_assert_eq!(e.status(), Status::Overflow);
                prop_assert!(u128::from(up) * u128::from(size) > u128::from(u64::MAX));
            }
        }
    }

    #[test]
    fn ptob_never_wraps(p in pages(), ps in page_size()) {
        let size = ps.bytes();
        match ptob(p, ps) {
            Ok(v) => {
                prop_assert_eq!(v / size, p);
                prop_assert_eq!(v % size, 0);
                prop_assert!(p <= u64::MAX >> ps.shift());
            }
            Err(e) => {
                prop_assert_eq!(e.status(), Status::Overflow);
                prop_assert!(p > u64::MAX >> ps.shift());
            }
        }
        let exact = u128::from(p) << ps.shift();
        prop_assert_eq!(ptob(p, ps).is_ok(), exact <= u128::from(u64::MAX));
    }

    #[test]
    fn rounding_is_monotonic(a in bytes(), b in bytes(), ps in page_size(), al in align()) {
        let (x, y) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(btop(x, ps) <= btop(y, ps));
        prop_assert!(btopr(x, ps) <= btopr(y, ps));
        let (dx, dy) = (round_down(x, al), round_down(y, al));
        prop_assert!(dx.is_ok() && dy.is_ok());
        prop_assert!(dx.unwrap() <= dy.unwrap());
        if let (Ok(ux), Ok(uy)) = (round_up(x, al), round_up(y, al)) {
            prop_assert!(ux <= uy);
        }
        // If the larger one rounds up fine, so does the smaller one.
        if round_up(y, al).is_ok() {
            prop_assert!(round_up(x, al).is_ok());
        }
    }

    #[test]
    fn round_up_down_are_exact(x in bytes(), al in align()) {
        let wide_x = u128::from(x);
        let wide_a = u128::from(al);

        let down = round_down(x, al).expect("round_down never fails for align > 0");
        prop_assert_eq!(down % al, 0);
        prop_assert!(down <= x);
        prop_assert!(x - down < al);
        prop_assert_eq!(u128::from(down), wide_x / wide_a * wide_a);

        let true_up = wide_x.div_ceil(wide_a) * wide_a;
        match round_up(x, al) {
            Ok(up) => {
                prop_assert_eq!(u128::from(up), true_up);
                prop_assert_eq!(up % al, 0);
                prop_assert!(x <= up);
                prop_assert!(up - x < al);
                prop_assert!(down <= x && x <= up);
            }
            Err(e) => {
                prop_assert_eq!(e.status(), Status::Overflow);
                prop_assert!(true_up > u128::from(u64::MAX));
            }
        }
        prop_assert_eq!(is_aligned(x, al), x % al == 0);
        prop_assert_eq!(is_aligned(x, al), down == x);
    }

    #[test]
    fn zero_alignment_is_refused(x in bytes()) {
        prop_assert_eq!(status_of(round_up(x, 0)), Status::InvalidArgument);
        prop_assert_eq!(status_of(round_down(x, 0)), Status::InvalidArgument);
        prop_assert!(!is_aligned(x, 0));
    }

    #[test]
    fn page_t_overhead_is_exact(p in pages(), x in bytes()) {
        let exact = u128::from(p) * u128::from(PAGE_T_SIZE);
        match page_t_overhead(p) {
            Ok(v) => prop_assert_eq!(u128::from(v), exact),
            Err(e) => {
                prop_assert_eq!(e.status(), Status::Overflow);
                prop_assert!(exact > u128::from(u64::MAX));
            }
        }
        prop_assert_eq!(page_t_overhead(p).is_ok(), exact <= u128::from(u64::MAX));

        // Covering x bytes needs ceil(x / 4096) page_t; never overflows.
        let need = u128::from(x).div_ceil(4096) * 120;
        let got = page_t_overhead_bytes(x).expect("at most 2^52 * 120 bytes");
        prop_assert_eq!(u128::from(got), need);
    }

    #[test]
    fn format_then_parse_round_trips(x in bytes()) {
        let s = format_size(x);
        prop_assert!(s.len() <= FORMAT_SIZE_MAX_LEN);
        prop_assert_eq!(parse_size(&s, None), Ok(x), "text {:?}", s);
        prop_assert_eq!(parse_size(&s, Some(x)), Ok(x));
        // The unit form is only used when it is exact: no more than 3
        // fraction digits and at least one whole unit.
        if let Some((_, frac)) = s.split_once('.') {
            prop_assert!(frac.len() <= 4); // three digits and the unit
            prop_assert!(!frac.trim_end_matches(char::is_alphabetic).ends_with('0'));
        }
    }

    #[test]
    fn unit_multiples_format_with_their_unit(m in 1u64..=1023, idx in 1usize..=6) {
        let letters = ['B', 'K', 'M', 'G', 'T', 'P', 'E'];
        // Only 1..=15 whole EiB fit in a u64.
        let m = if idx == 6 { 1 + m % 15 } else { m };
        let x = m << (10 * idx);
        prop_assert_eq!(format_size(x), format!("{}{}", m, letters[idx]));
    }

    #[test]
    fn format_into_matches_format(x in bytes(), cap in 0usize..=24) {
        let s = format_size(x);
        let mut buf = vec![0xA5u8; cap];
        match format_size_into(x, &mut buf) {
            Ok(n) => {
                prop_assert_eq!(n, s.len());
                prop_assert_eq!(&buf[..n], s.as_bytes());
                prop_assert!(buf[n..].iter().all(|b| *b == 0xA5), "no NUL, no extra bytes");
            }
            Err(needed) => {
                prop_assert_eq!(needed, s.len());
                prop_assert!(cap < needed);
                prop_assert!(buf.iter().all(|b| *b == 0xA5), "untouched on Err");
            }
        }
    }

    #[test]
    fn parse_integer_with_unit(
        n in bytes(),
        idx in 0usize..SUFFIXES.len(),
        mask in any::<u8>(),
        pad in prop::sample::select(vec!["", " ", "\t", "\n", "  \r\n"]),
    ) {
        let (suffix, shift) = SUFFIXES[idx];
        let s = format!("{pad}{n}{}{pad}", recase(suffix, mask));
        let exact = u128::from(n) << shift;
        if exact <= u128::from(u64::MAX) {
            prop_assert_eq!(parse_size(&s, None), Ok(n << shift), "{:?}", s);
        } else {
            prop_assert_eq!(status_of(parse_size(&s, None)), Status::Overflow, "{:?}", s);
        }
        // The base is irrelevant without '%'.
        prop_assert_eq!(parse_size(&s, None), parse_size(&s, Some(n)));
    }

    #[test]
    fn parse_fraction_with_unit_rounds_down(
        (k, i) in (1u32..=18).prop_flat_map(|k| {
            // Keep (i + 1) * 10^k * 2^60 below 2^128 for the u128 check.
            let max_i = ((1u128 << 68) / 10u128.pow(k)).min(u128::from(u64::MAX)) as u64;
            (Just(k), 0..max_i)
        }),
        f_seed in any::<u64>(),
        shift_idx in 1u32..=6,
        mask in any::<u8>(),
    ) {
        let shift = 10 * shift_idx;
        let scale = 10u64.pow(k);
        let f = f_seed % scale;
        let letter = ["K", "M", "G", "T", "P", "E"][(shift_idx - 1) as usize];
        let s = format!("{i}.{f:0width$}{}", recase(letter, mask), width = k as usize);
        let num = (u128::from(i) * u128::from(scale) + u128::from(f)) << shift;
        let expected = num / u128::from(scale);
        if expected <= u128::from(u64::MAX) {
            prop_assert_eq!(parse_size(&s, None), Ok(expected as u64), "{:?}", s);
        } else {
            prop_assert_eq!(status_of(parse_size(&s, None)), Status::Overflow, "{:?}", s);
        }
        // A fraction of a byte is never accepted.
        let bytes_form = format!("{i}.{f:0width$}", width = k as usize);
        prop_assert_eq!(status_of(parse_size(&bytes_form, None)), Status::ParseSize);
    }

    #[test]
    fn percent_of_base(base in bytes(), p in 0u64..=100) {
        let s = format!("{p}%");
        let expected = u128::from(base) * u128::from(p) / 100;
        prop_assert_eq!(parse_size(&s, Some(base)).map(u128::from), Ok(expected));
        prop_assert_eq!(status_of(parse_size(&s, None)), Status::InvalidArgument);
    }

    #[test]
    fn fractional_percent_of_base(
        base in bytes(),
        (k, num) in (1u32..=16).prop_flat_map(|k| (Just(k), 0u64..=100 * 10u64.pow(k))),
    ) {
        // num / 10^k percent, written with exactly k fraction digits.
        let scale = 10u64.pow(k);
        let s = format!("{}.{:0width$}%", num / scale, num % scale, width = k as usize);
        let expected = u128::from(base) * u128::from(num) / (100 * u128::from(scale));
        prop_assert_eq!(parse_size(&s, Some(base)).map(u128::from), Ok(expected), "{:?}", s);
    }

    #[test]
    fn percent_over_100_is_refused(base in bytes(), p in 101u64..=u64::MAX) {
        prop_assert_eq!(status_of(parse_size(&format!("{p}%"), Some(base))), Status::ParseSize);
    }

    #[test]
    fn parse_never_panics_on_any_string(s in ".*", base in prop::option::of(bytes())) {
        let st = status_of(parse_size(&s, base));
        prop_assert!(matches!(
            st,
            Status::Ok | Status::ParseSize | Status::Overflow | Status::InvalidArgument
        ));
        if base.is_some() || !s.contains('%') {
            prop_assert_ne!(st, Status::InvalidArgument);
        }
    }

    #[test]
    fn parse_never_panics_on_any_bytes(
        raw in prop::collection::vec(any::<u8>(), 0..64),
        base in prop::option::of(bytes()),
    ) {
        let s = String::from_utf8_lossy(&raw);
        let st = status_of(parse_size(&s, base));
        prop_assert!(matches!(
            st,
            Status::Ok | Status::ParseSize | Status::Overflow | Status::InvalidArgument
        ));
        // Anything non-ASCII inside the trimmed text is garbage.
        let trimmed = s.trim_matches(|c: char| c.is_ascii_whitespace());
        if !trimmed.is_ascii() {
            prop_assert_eq!(st, Status::ParseSize);
        }
    }

    #[test]
    fn parse_never_panics_on_size_shaped_input(
        s in "[0-9.%a-zA-Z ]{0,40}",
        base in prop::option::of(bytes()),
    ) {
        let r = parse_size(&s, base);
        let st = status_of(r);
        prop_assert!(matches!(
            st,
            Status::Ok | Status::ParseSize | Status::Overflow | Status::InvalidArgument
        ));
        if let Ok(v) = r {
            // Whatever was accepted is stable under padding...
            let padded = format!(" \t{s}\n ");
            prop_assert_eq!(parse_size(&padded, base), Ok(v));
            // ...and has a digit first and no inner space.
            let t = s.trim();
            prop_assert!(t.starts_with(|c: char| c.is_ascii_digit()));
            prop_assert!(!t.contains(' '));
        }
    }
}

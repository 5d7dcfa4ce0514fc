//! Size strings: `pages::parse_size` on any text and any base, checked
//! against an independent oracle of the documented grammar; every value it
//! returns formats (`format_size`) to text that parses back to it; and
//! `format_size_into` agrees with `format_size` for every buffer length.
//!
//! Input: `TEXT [NUL BASE]`. Split at the last NUL byte: before it, the
//! text (lossily UTF-8); after it, up to 8 bytes of the percentage base
//! (little-endian; none = no base). Without a NUL the whole input is the
//! text and there is no base. The first 8 bytes of the input, read as a
//! little-endian u64, are also formatted and parsed back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vmmresv::pages::{format_size, format_size_into, parse_size, FORMAT_SIZE_MAX_LEN};
use vmmresv::Status;

/// What the documented grammar says `parse_size` must return.
#[derive(Debug)]
enum Expect {
    Value(u64),
    /// `floor(base * num / den)`, checked with 256-bit products.
    PercentOf {
        base: u64,
        num: u128,
        den: u128,
    },
    Err(Status),
}

fn is_ws(b: u8) -> bool {
    // u8::is_ascii_whitespace, spelled out.
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r')
}

fn digits(s: &[u8]) -> usize {
    s.iter().take_while(|c| c.is_ascii_digit()).count()
}

/// Decimal digits to u128, `None` if above u64::MAX.
fn value(d: &[u8]) -> Option<u128> {
    let sig: &[u8] = {
        let z = d.iter().take_while(|c| **c == b'0').count();
        &d[z..]
    };
    if sig.len() > 20 {
        return None;
    }
    let mut v: u128 = 0;
    for c in sig {
        v = v * 10 + u128::from(c - b'0');
    }
    (v <= u128::from(u64::MAX)).then_some(v)
}

fn oracle(text: &str, base: Option<u64>) -> Expect {
    let mut s = text.as_bytes();
    while let Some((f, r)) = s.split_first() {
        if !is_ws(*f) {
            break;
        }
        s = r;
    }
    while let Some((l, r)) = s.split_last() {
        if !is_ws(*l) {
            break;
        }
        s = r;
    }
    let parse = Expect::Err(Status::ParseSize);
    let n = digits(s);
    if n == 0 {
        return parse;
    }
    let (int, mut rest) = s.split_at(n);
    let mut frac: &[u8] = &[];
    if let Some(after) = rest.strip_prefix(b".") {
        let f = digits(after);
        if f == 0 || f > 18 {
            return parse;
        }
        frac = &after[..f];
        rest = &after[f..];
    }
    let lower: Vec<u8> = rest.iter().map(|c| c.to_ascii_lowercase()).collect();
    enum Suf {
        Bytes,
        Unit(u32),
        Percent,
    }
    let unit = |c: u8| match c {
        b'k' => Some(10),
        b'm' => Some(20),
        b'g' => Some(30),
        b't' => Some(40),
        b'p' => Some(50),
        b'e' => Some(60),
        _ => None,
    };
    let suf = match lower.as_slice() {
        [] | [b'b'] => Suf::Bytes,
        [b'%'] => Suf::Percent,
        [u] | [u, b'b'] | [u, b'i', b'b'] => match unit(*u) {
            Some(sh) => Suf::Unit(sh),
            None => return parse,
        },
        _ => return parse,
    };
    let flen = u32::try_from(frac.len()).unwrap();
    let scale = 10u128.pow(flen);
    let fval = value(frac).unwrap_or(0); // at most 18 digits: fits
    let ival = value(int);
    match suf {
        Suf::Bytes => {
            if !frac.is_empty() {
                return parse;
            }
            match ival {
                Some(v) => Expect::Value(v as u64),
                None => Expect::Err(Status::Overflow),
            }
        }
        Suf::Unit(sh) => {
            let Some(i) = ival else {
                return Expect::Err(Status::Overflow);
            };
            // i < 2^64, so i << 60 < 2^124; fval < 10^18 < 2^60.
            let v = (i << sh) + ((fval << sh) / scale);
            match u64::try_from(v) {
                Ok(v) => Expect::Value(v),
                Err(_) => Expect::Err(Status::Overflow),
            }
        }
        Suf::Percent => {
            let Some(i) = ival else { return parse };
            let num = i * scale + fval; // < 2^64 * 10^18 < 2^124
            let den = 100 * scale;
            if num > den {
                return parse;
            }
            match base {
                None => Expect::Err(Status::InvalidArgument),
                Some(base) => Expect::PercentOf { base, num, den },
            }
        }
    }
}

/// a * b as (high, low) 128-bit halves.
fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    const M: u128 = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & M);
    let (b1, b0) = (b >> 64, b & M);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 & M) + (p10 & M);
    let lo = (p00 & M) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

fn check_format(v: u64) {
    let text = format_size(v);
    assert!(
        text.len() <= FORMAT_SIZE_MAX_LEN,
        "{v} -> {text:?} too long"
    );
    assert!(text.is_ascii() && !text.is_empty(), "{v} -> {text:?}");
    assert_eq!(
        parse_size(&text, None),
        Ok(v),
        "{v} -> {text:?} does not parse back"
    );
    match oracle(&text, None) {
        Expect::Value(x) => assert_eq!(x, v, "{text:?}: the grammar reads another value"),
        other => panic!("{v} -> {text:?}: the grammar says {other:?}"),
    }
    for len in 0..=FORMAT_SIZE_MAX_LEN + 2 {
        let mut buf = [0xA5u8; FORMAT_SIZE_MAX_LEN + 2];
        match format_size_into(v, &mut buf[..len]) {
            Ok(n) => {
                assert_eq!(
                    n,
                    text.len(),
                    "{v}: length differs with a {len}-byte buffer"
                );
                assert!(n <= len);
                assert_eq!(&buf[..n], text.as_bytes(), "{v}: text differs");
                assert!(
                    buf[n..].iter().all(|b| *b == 0xA5),
                    "{v}: wrote past the text"
                );
            }
            Err(need) => {
                assert_eq!(need, text.len(), "{v}: needed length differs");
                assert!(len < need, "{v}: refused a {len}-byte buffer that fits");
                assert!(buf.iter().all(|b| *b == 0xA5), "{v}: wrote on refusal");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (text, base) = match data.iter().rposition(|b| *b == 0) {
        Some(p) => {
            let tail = &data[p + 1..];
            let base = if tail.is_empty() {
                None
            } else {
                let mut b = [0u8; 8];
                let n = tail.len().min(8);
                b[..n].copy_from_slice(&tail[..n]);
                Some(u64::from_le_bytes(b))
            };
            (&data[..p], base)
        }
        None => (data, None),
    };
    let text = String::from_utf8_lossy(text);

    let got = parse_size(&text, base);
    match (oracle(&text, base), got) {
        (Expect::Value(v), Ok(g)) => assert_eq!(g, v, "{text:?}"),
        (Expect::PercentOf { base, num, den }, Ok(g)) => {
            // g = floor(base * num / den)  <=>  g*den <= base*num < (g+1)*den
            let bn = mul_wide(u128::from(base), num);
            assert!(
                mul_wide(u128::from(g), den) <= bn,
                "{text:?} of {base}: {g} too big"
            );
            assert!(
                mul_wide(u128::from(g) + 1, den) > bn,
                "{text:?} of {base}: {g} too small"
            );
        }
        (Expect::Err(s), Err(e)) => assert_eq!(e.status(), s, "{text:?} base {base:?}"),
        (want, got) => panic!("{text:?} base {base:?}: want {want:?}, got {got:?}"),
    }
    if let Ok(v) = got {
        check_format(v);
    }
    let mut first = [0u8; 8];
    let n = data.len().min(8);
    first[..n].copy_from_slice(&data[..n]);
    check_format(u64::from_le_bytes(first));
    if let Some(b) = base {
        check_format(b);
    }
});

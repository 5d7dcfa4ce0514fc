//! Page arithmetic, size strings and the `page_t` overhead (pure integer code).
//!
//! Everything here is a total function over integers: no I/O, no `unsafe`, no
//! floating point, and no arithmetic that can wrap or panic. A result that
//! does not fit in a `u64` is `Status::Overflow`, a malformed size string is
//! `Status::ParseSize`, and an impossible argument (zero alignment, a page
//! size illumos does not have, a percentage without a base) is
//! `Status::InvalidArgument`.
//!
//! Why it matters: the kernel's reservoir (`vmmr_set_target()` in illumos
//! `uts/intel/io/vmm/vmm_reservoir.c`) answers `EINVAL` to any target or chunk
//! that is not a multiple of `PAGESIZE`, and a size that silently wrapped
//! would ask it for the wrong amount of memory. So every size is computed
//! exactly or refused.
//!
//! Size strings use binary (IEC) units, as illumos tools do: `K` = 2^10 up
//! to `E` = 2^60, with the suffix grammar of libzfs `str2shift()` ("G" =
//! "GB" = "GiB", case-insensitively), so "64G" means what `zfs set` and
//! `vmadm` users expect.

use crate::status::{Error, Status};

/// The result of every fallible function of this module.
pub type Result<T> = core::result::Result<T, crate::status::Error>;

/// Base page: illumos `PAGESIZE` on amd64. The reservoir requires sizes and
/// chunks to be multiples of it (`vmmr_set_target()` returns `EINVAL`
/// otherwise).
pub const PAGESIZE: u64 = 4096;
/// Large page (2 MiB): the amd64 PDE-mapped page size.
pub const PAGESIZE_2M: u64 = 2 << 20;
/// Huge page (1 GiB): the amd64 PDPTE-mapped page size.
pub const PAGESIZE_1G: u64 = 1 << 30;

/// Size of one illumos `page_t` in bytes on amd64.
///
/// Source: oxidecomputer/omicron sled-agent hard-codes `PAGE_T_SIZE = 120`
/// ("the last time page_t changed was illumos-gate commit a5652762e5 from
/// 2006"). Every 4 KiB page of physical memory costs one `page_t` of kernel
/// memory that can never go to a VM, so reservoir sizing must subtract it
/// (docs/kernel.md, "page_t").
pub const PAGE_T_SIZE: u64 = 120;

/// Longest text [`format_size`] can produce: 22 bytes, for
/// `2^64 - 128` = "18014398509481983.875K" (17 integer digits of KiB, 3
/// fraction digits, the unit). Plain byte counts are at most 20 digits, and
/// larger units have fewer integer digits. Callers that format into a fixed
/// buffer (the C ABI) can size it with this, plus one for a NUL.
pub const FORMAT_SIZE_MAX_LEN: usize = 22;

/// The three amd64 page sizes; the discriminant is the shift (log2 of bytes).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    /// 4 KiB, illumos `PAGESIZE` / `PAGESHIFT` = 12.
    Base4K = 12,
    /// 2 MiB large page.
    Large2M = 21,
    /// 1 GiB huge page.
    Huge1G = 30,
}

impl PageSize {
    /// log2 of the page size in bytes (illumos `PAGESHIFT` for `Base4K`).
    pub const fn shift(self) -> u32 {
        // Spelled out (equal to the discriminant, checked by a test) so no
        // `as` cast is needed.
        match self {
            PageSize::Base4K => 12,
            PageSize::Large2M => 21,
            PageSize::Huge1G => 30,
        }
    }

    /// The page size in bytes.
    pub const fn bytes(self) -> u64 {
        // shift() is 12, 21 or 30: never >= 64, so this cannot overflow.
        1u64 << self.shift()
    }

    /// The page size whose size in bytes is `bytes`: 4096, 2 MiB or 1 GiB.
    /// Anything else is `InvalidArgument` (amd64 has no other page size).
    pub fn from_bytes(bytes: u64) -> Result<PageSize> {
        match bytes {
            PAGESIZE => Ok(PageSize::Base4K),
            PAGESIZE_2M => Ok(PageSize::Large2M),
            PAGESIZE_1G => Ok(PageSize::Huge1G),
            _ => Err(Error::new(Status::InvalidArgument)),
        }
    }

    /// `bytes() - 1`: the in-page offset bits (illumos `PAGEOFFSET`).
    const fn offset_mask(self) -> u64 {
        // The low shift() bits, without arithmetic (shift() < 64).
        !(u64::MAX << self.shift())
    }
}

/// Bytes to whole pages, truncating (illumos `btop`). A right shift: it
/// cannot overflow.
pub fn btop(bytes: u64, ps: PageSize) -> u64 {
    bytes >> ps.shift()
}

/// Bytes to pages, rounding up (illumos `btopr`).
///
/// illumos computes `(bytes + PAGEOFFSET) >> PAGESHIFT`, which wraps for
/// `bytes` within a page of `u64::MAX`; here the partial page is detected
/// from the remainder instead, so it is exact for every `u64`. The result is
/// at most `u64::MAX >> 12` + 1, so the increment cannot overflow.
pub fn btopr(bytes: u64, ps: PageSize) -> u64 {
    let whole = btop(bytes, ps);
    let partial = u64::from(bytes & ps.offset_mask() != 0);
    whole.saturating_add(partial)
}

/// Pages to bytes (illumos `ptob`); `Overflow` if the byte count does not fit
/// in a `u64` (a plain shift would silently drop the high bits).
pub fn ptob(pages: u64, ps: PageSize) -> Result<u64> {
    if pages > u64::MAX >> ps.shift() {
        return Err(Error::new(Status::Overflow));
    }
    Ok(pages << ps.shift())
}

/// Rounds `bytes` up to a multiple of `align`.
///
/// `align` need not be a power of two (resize chunks such as 1536 MiB are
/// not), so this uses the remainder rather than a mask. `align == 0` is
/// `InvalidArgument`; a result above `u64::MAX` is `Overflow`.
pub fn round_up(bytes: u64, align: u64) -> Result<u64> {
    let rem = bytes
        .checked_rem(align)
        .ok_or(Error::new(Status::InvalidArgument))?;
    if rem == 0 {
        return Ok(bytes);
    }
    // rem < align, so align - rem cannot underflow.
    let gap = align.checked_sub(rem).ok_or(Error::new(Status::Overflow))?;
    bytes.checked_add(gap).ok_or(Error::new(Status::Overflow))
}

/// Rounds `bytes` down to a multiple of `align` (any nonzero `align`; zero is
/// `InvalidArgument`). Never overflows: the result is <= `bytes`.
pub fn round_down(bytes: u64, align: u64) -> Result<u64> {
    let rem = bytes
        .checked_rem(align)
        .ok_or(Error::new(Status::InvalidArgument))?;
    // rem <= bytes, so this cannot underflow.
    bytes
        .checked_sub(rem)
        .ok_or(Error::new(Status::InvalidArgument))
}

/// Whether `bytes` is a multiple of `align`. Nothing is a multiple of zero,
/// so `align == 0` gives `false` (rather than a division by zero).
pub fn is_aligned(bytes: u64, align: u64) -> bool {
    bytes.checked_rem(align) == Some(0)
}

/// Kernel memory taken by the `page_t`s of `pages` base pages:
/// `pages * PAGE_T_SIZE`, or `Overflow` if that does not fit.
pub fn page_t_overhead(pages: u64) -> Result<u64> {
    pages
        .checked_mul(PAGE_T_SIZE)
        .ok_or(Error::new(Status::Overflow))
}

/// The `page_t` cost of covering `bytes` of physical memory with 4 KiB pages
/// (a partial page still needs a whole `page_t`, hence `btopr`).
///
/// It cannot actually overflow (at most 2^52 pages * 120 < 2^59), but keeps
/// the `Result` so callers treat it like the other size computations.
pub fn page_t_overhead_bytes(bytes: u64) -> Result<u64> {
    page_t_overhead(btopr(bytes, PageSize::Base4K))
}

/// At most this many digits after the decimal point: 10^18 - 1 still fits a
/// `u64`, and the exact u128 arithmetic below stays far from overflow.
const MAX_FRACTION_DIGITS: usize = 18;

/// What follows the number in a size string.
#[derive(Clone, Copy)]
enum Suffix {
    /// No suffix, or "B": a byte count.
    Bytes,
    /// A binary unit: the value is shifted left by this much.
    Unit(u32),
    /// "%": a percentage of the caller's base.
    Percent,
}

fn parse_err() -> Error {
    Error::new(Status::ParseSize)
}

/// Splits a leading run of ASCII digits off `s`.
fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    s.split_at_checked(n).unwrap_or((s, &[]))
}

/// The decimal value of a run of ASCII digits, or `None` if it exceeds
/// `u64::MAX`. Checked at every step, so any length of input is safe.
fn digits_value(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &c| {
        let d = char::from(c).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// The shift of a unit letter (case-insensitive), as libzfs `str2shift()`.
fn unit_shift(letter: u8) -> Option<u32> {
    match letter.to_ascii_uppercase() {
        b'K' => Some(10),
        b'M' => Some(20),
        b'G' => Some(30),
        b'T' => Some(40),
        b'P' => Some(50),
        b'E' => Some(60),
        _ => None,
    }
}

/// Classifies the text after the number: "", "B", "%", or a unit letter
/// optionally followed by "B" or "iB" (all case-insensitive, like libzfs
/// `str2shift()`; "b" never means bits here). Anything else is garbage.
fn parse_suffix(s: &[u8]) -> Option<Suffix> {
    match s {
        [] => Some(Suffix::Bytes),
        [b'%'] => Some(Suffix::Percent),
        [b] if b.eq_ignore_ascii_case(&b'B') => Some(Suffix::Bytes),
        [u, tail @ ..] => {
            let shift = unit_shift(*u)?;
            match tail {
                [] => Some(Suffix::Unit(shift)),
                [b] if b.eq_ignore_ascii_case(&b'B') => Some(Suffix::Unit(shift)),
                [i, b] if i.eq_ignore_ascii_case(&b'I') && b.eq_ignore_ascii_case(&b'B') => {
                    Some(Suffix::Unit(shift))
                }
                _ => None,
            }
        }
    }
}

/// `floor(a * n / d)` for `n <= d < 2^67`, exactly, in u128 only.
///
/// `a * n` can need 131 bits, so `a` is split into 32-bit halves:
/// `a*n = (hi*n)*2^32 + lo*n`, and with `hi*n = q*d + r`,
/// `floor(a*n/d) = q*2^32 + floor((r*2^32 + lo*n) / d)`. Every intermediate
/// stays below 2^100. `None` only if a precondition is broken.
fn mul_div_floor(a: u64, n: u128, d: u128) -> Option<u64> {
    let hi = u128::from(a >> 32);
    let lo = u128::from(a & 0xFFFF_FFFF);
    let t = hi.checked_mul(n)?;
    let q = t.checked_div(d)?;
    let r = t.checked_rem(d)?;
    let rest = r.checked_mul(1 << 32)?.checked_add(lo.checked_mul(n)?)?;
    let v = q.checked_mul(1 << 32)?.checked_add(rest.checked_div(d)?)?;
    u64::try_from(v).ok()
}

/// Parses a size as operators type it: "4096", "4096B", "512M", "64G",
/// "64GiB", "1.5T", "75%".
///
/// Grammar (after trimming leading/trailing ASCII whitespace, as
/// [`u8::is_ascii_whitespace`]):
/// `DIGITS [ "." DIGITS ] [ SUFFIX ]`, where SUFFIX is one of
/// - nothing or `B`: bytes;
/// - `K` `M` `G` `T` `P` `E`, optionally followed by `B` or `iB`
///   (case-insensitive): binary units 2^10 .. 2^60, as libzfs `str2shift()`;
/// - `%`: that percentage of `base`.
///
/// Decisions (so "what did the operator mean" is never guessed):
/// - No whitespace between the number and the suffix ("64 G" is
///   `ParseSize`): a size is one shell word ("quota=64G"), and "64 G" is
///   more likely a split or mangled argument than a size.
/// - A fraction needs a unit or `%` ("1.5G", "12.5%"); on a byte count
///   ("1.5", "1.5B") it is `ParseSize`, since half a byte is meaningless.
///   At most 18 fraction digits. The value is computed exactly in integers;
///   if it is not a whole number of bytes it is rounded DOWN, because callers
///   align sizes down to pages anyway and a parse must never ask for more
///   than was written.
/// - A percentage is `floor(base * p / 100)`; above 100% is `ParseSize`
///   (asking for more than the whole is a typo), and `base == None` is
///   `InvalidArgument` (the caller did not say what it is a percentage of);
///   the string is checked first, so "150%" is `ParseSize` with or without
///   a base. The arithmetic is exact for every base and every percentage
///   with up to 18 decimals.
/// - Signs, hex, exponents, digit separators, a leading or trailing '.',
///   several units, a unit with no number, non-ASCII and NUL bytes are all
///   `ParseSize`. The whole string is validated before any value is
///   computed, so garbage is `ParseSize` even when its digits are huge.
/// - A well-formed size above `u64::MAX` (e.g. "16E") is `Overflow`.
pub fn parse_size(s: &str, base: Option<u64>) -> Result<u64> {
    let s = s.as_bytes().trim_ascii();
    let (int_digits, rest) = split_digits(s);
    if int_digits.is_empty() {
        return Err(parse_err());
    }
    let (frac_digits, rest) = match rest.strip_prefix(b".") {
        Some(after_dot) => {
            let (frac, rest) = split_digits(after_dot);
            if frac.is_empty() || frac.len() > MAX_FRACTION_DIGITS {
                return Err(parse_err());
            }
            (frac, rest)
        }
        None => (&[][..], rest),
    };
    let suffix = parse_suffix(rest).ok_or_else(parse_err)?;

    // Fraction numerator and denominator: value = int + frac / scale.
    // At most 18 digits, so frac < 10^18 and scale <= 10^18 fit a u64.
    let frac = digits_value(frac_digits).ok_or_else(parse_err)?;
    let frac_len = u32::try_from(frac_digits.len()).map_err(|_| parse_err())?;
    let scale = 10u64.checked_pow(frac_len).ok_or_else(parse_err)?;
    let int = digits_value(int_digits);

    match suffix {
        Suffix::Bytes => {
            if !frac_digits.is_empty() {
                return Err(parse_err());
            }
            int.ok_or(Error::new(Status::Overflow))
        }
        Suffix::Unit(shift) => {
            let int = int.ok_or(Error::new(Status::Overflow))?;
            scaled(int, frac, scale, shift).ok_or(Error::new(Status::Overflow))
        }
        Suffix::Percent => {
            // More than u64::MAX percent is certainly more than 100%.
            let int = int.ok_or_else(parse_err)?;
            let scale = u128::from(scale);
            // p = num / den exactly, with den = 100 * 10^digits <= 10^20.
            let num = u128::from(int)
                .checked_mul(scale)
                .and_then(|v| v.checked_add(u128::from(frac)))
                .ok_or_else(parse_err)?;
            let den = scale.checked_mul(100).ok_or_else(parse_err)?;
            if num > den {
                return Err(parse_err());
            }
            let base = base.ok_or(Error::new(Status::InvalidArgument))?;
            mul_div_floor(base, num, den).ok_or(Error::new(Status::Overflow))
        }
    }
}

/// `floor((int + frac/scale) * 2^shift)` exactly, or `None` if above
/// `u64::MAX`. In u128: `int << 60 < 2^124` and `frac << 60 < 2^120`.
fn scaled(int: u64, frac: u64, scale: u64, shift: u32) -> Option<u64> {
    let unit = 1u128.checked_shl(shift)?;
    let whole = u128::from(int).checked_mul(unit)?;
    let part = u128::from(frac)
        .checked_mul(unit)?
        .checked_div(u128::from(scale))?;
    u64::try_from(whole.checked_add(part)?).ok()
}

/// A fixed stack buffer for [`format_size`]'s text (no allocation, so the C
/// ABI can format into caller memory).
struct SizeText {
    buf: [u8; FORMAT_SIZE_MAX_LEN],
    len: usize,
}

impl SizeText {
    fn new() -> SizeText {
        SizeText {
            buf: [0; FORMAT_SIZE_MAX_LEN],
            len: 0,
        }
    }

    /// Appends one byte. The buffer holds the longest possible text (see
    /// [`FORMAT_SIZE_MAX_LEN`], checked by the unit and property tests), so
    /// the `None` branch is never taken; it exists so that this cannot panic.
    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len = self.len.saturating_add(1);
        }
    }

    /// Appends `v` in decimal.
    fn push_decimal(&mut self, v: u64) {
        let mut digits = [0u8; FORMAT_SIZE_MAX_LEN];
        let mut n = 0usize;
        let mut v = v;
        loop {
            if let Some(slot) = digits.get_mut(n) {
                *slot = ascii_digit(v % 10);
                n = n.saturating_add(1);
            }
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for d in digits.iter().take(n).rev() {
            self.push(*d);
        }
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

/// The ASCII digit for `d` (< 10 by construction).
fn ascii_digit(d: u64) -> u8 {
    u8::try_from(d % 10)
        .ok()
        .and_then(|d| b'0'.checked_add(d))
        .unwrap_or(b'0')
}

/// Units from largest to smallest, for [`format_size`].
const UNITS: [(u32, u8); 6] = [
    (60, b'E'),
    (50, b'P'),
    (40, b'T'),
    (30, b'G'),
    (20, b'M'),
    (10, b'K'),
];

/// The fraction of a unit for a remainder of `r` eighths (r * 0.125), with
/// trailing zeros stripped: the only fractions of at most 3 decimal digits
/// that a power-of-two unit can produce.
const EIGHTHS: [&[u8]; 8] = [
    b"", b".125", b".25", b".375", b".5", b".625", b".75", b".875",
];

fn render(bytes: u64) -> SizeText {
    let mut out = SizeText::new();
    for (shift, letter) in UNITS {
        // bytes / 2^shift has at most 3 decimals iff it is m / 1000 =
        // m / (2^3 * 125) for an integer m, i.e. iff 2^(shift-3) divides
        // bytes; then the fraction is a whole number of eighths.
        let frac_shift = shift.saturating_sub(3);
        if bytes >> shift == 0 || bytes.trailing_zeros() < frac_shift {
            continue;
        }
        let unit_mask = !(u64::MAX << shift);
        let eighths = (bytes & unit_mask) >> frac_shift;
        let Some(frac) = usize::try_from(eighths).ok().and_then(|i| EIGHTHS.get(i)) else {
            continue;
        };
        out.push_decimal(bytes >> shift);
        for b in frac.iter() {
            out.push(*b);
        }
        out.push(letter);
        return out;
    }
    out.push_decimal(bytes);
    out
}

/// Formats a size for people: the largest binary unit that shows it EXACTLY
/// with at most 3 fraction digits (trailing zeros stripped, no "B"), else
/// plain bytes. 64 GiB is "64G", 1.5 TiB "1.5T", 4096 "4K", 1536 "1.5K",
/// 1025 "1025", 0 "0".
///
/// Exactness (rather than rounding, as `zfs list` does) is what makes
/// `parse_size(&format_size(x), None) == Ok(x)` hold for every `u64`, so a
/// value printed by one tool can be pasted into another. The largest unit is
/// chosen even when a smaller one would be a character shorter
/// ("1.125G", not "1152M"), so a size always reads in its natural scale.
pub fn format_size(bytes: u64) -> String {
    String::from_utf8_lossy(render(bytes).as_bytes()).into_owned()
}

/// Writes [`format_size`]'s text into `out`, WITHOUT a trailing NUL.
///
/// `Ok(len)` with the text in `out[..len]`, or `Err(needed)` (and `out`
/// untouched) if `out` is shorter than the `needed` bytes. Never allocates,
/// so the C ABI can use it on caller memory; the text is never longer than
/// [`FORMAT_SIZE_MAX_LEN`].
pub fn format_size_into(bytes: u64, out: &mut [u8]) -> core::result::Result<usize, usize> {
    let text = render(bytes);
    let text = text.as_bytes();
    match out.get_mut(..text.len()) {
        Some(dst) => {
            for (d, s) in dst.iter_mut().zip(text) {
                *d = *s;
            }
            Ok(text.len())
        }
        None => Err(text.len()),
    }
}

#[cfg(test)]
// Tests may panic, index and compute freely: a failure is a test failure.
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions
)]
mod tests {
    use super::*;

    const K: u64 = 1 << 10;
    const M: u64 = 1 << 20;
    const G: u64 = 1 << 30;
    const T: u64 = 1 << 40;
    const P: u64 = 1 << 50;
    const E: u64 = 1 << 60;

    fn status<T: core::fmt::Debug>(r: Result<T>) -> Status {
        match r {
            Ok(v) => panic!("expected an error, got Ok({v:?})"),
            Err(e) => e.status(),
        }
    }

    fn parse(s: &str) -> Result<u64> {
        parse_size(s, None)
    }

    #[test]
    fn page_size_constants() {
        assert_eq!(PAGESIZE, 4096);
        assert_eq!(PAGESIZE_2M, 2 * M);
        assert_eq!(PAGESIZE_1G, G);
        assert_eq!(PageSize::Base4K.shift(), 12);
        assert_eq!(PageSize::Large2M.shift(), 21);
        assert_eq!(PageSize::Huge1G.shift(), 30);
        assert_eq!(PageSize::Base4K.bytes(), PAGESIZE);
        assert_eq!(PageSize::Large2M.bytes(), PAGESIZE_2M);
        assert_eq!(PageSize::Huge1G.bytes(), PAGESIZE_1G);
        for ps in [PageSize::Base4K, PageSize::Large2M, PageSize::Huge1G] {
            assert_eq!(ps as u32, ps.shift(), "discriminant is the shift");
            assert_eq!(PageSize::from_bytes(ps.bytes()), Ok(ps));
        }
    }

    #[test]
    fn page_size_from_bytes() {
        assert_eq!(PageSize::from_bytes(4096), Ok(PageSize::Base4K));
        assert_eq!(PageSize::from_bytes(2 * M), Ok(PageSize::Large2M));
        assert_eq!(PageSize::from_bytes(G), Ok(PageSize::Huge1G));
        for bad in [0, 1, 4095, 4097, 8192, M, 4 * M, 2 * G, u64::MAX] {
            assert_eq!(
                status(PageSize::from_bytes(bad)),
                Status::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn btop_truncates() {
        let b = PageSize::Base4K;
        assert_eq!(btop(0, b), 0);
        assert_eq!(btop(1, b), 0);
        assert_eq!(btop(4095, b), 0);
        assert_eq!(btop(4096, b), 1);
        assert_eq!(btop(4097, b), 1);
        assert_eq!(btop(u64::MAX, b), (1 << 52) - 1);
        assert_eq!(btop(u64::MAX - 4095, b), (1 << 52) - 1);
        assert_eq!(btop(u64::MAX - 4096, b), (1 << 52) - 2);
        assert_eq!(btop(2 * M - 1, PageSize::Large2M), 0);
        assert_eq!(btop(2 * M, PageSize::Large2M), 1);
        assert_eq!(btop(u64::MAX, PageSize::Huge1G), (1 << 34) - 1);
    }

    #[test]
    fn btopr_rounds_up_without_wrapping() {
        let b = PageSize::Base4K;
        assert_eq!(btopr(0, b), 0);
        assert_eq!(btopr(1, b), 1);
        assert_eq!(btopr(4095, b), 1);
        assert_eq!(btopr(4096, b), 1);
        assert_eq!(btopr(4097, b), 2);
        // (bytes + 4095) >> 12 would wrap to 0 here.
        assert_eq!(btopr(u64::MAX, b), 1 << 52);
        assert_eq!(btopr(u64::MAX - 4095, b), (1 << 52) - 1);
        assert_eq!(btopr(u64::MAX - 4096, b), (1 << 52) - 1);
        assert_eq!(btopr(u64::MAX, PageSize::Large2M), 1 << 43);
        assert_eq!(btopr(u64::MAX, PageSize::Huge1G), 1 << 34);
        assert_eq!(btopr(G + 1, PageSize::Huge1G), 2);
    }

    #[test]
    fn ptob_checks_overflow() {
        let b = PageSize::Base4K;
        assert_eq!(ptob(0, b), Ok(0));
        assert_eq!(ptob(1, b), Ok(4096));
        assert_eq!(ptob(u64::MAX >> 12, b), Ok(u64::MAX - 4095));
        assert_eq!(status(ptob((u64::MAX >> 12) + 1, b)), Status::Overflow);
        assert_eq!(status(ptob(u64::MAX, b)), Status::Overflow);
        assert_eq!(ptob(3, PageSize::Large2M), Ok(6 * M));
        assert_eq!(
            ptob(u64::MAX >> 30, PageSize::Huge1G),
            Ok(u64::MAX - (G - 1))
        );
        assert_eq!(status(ptob(1 << 34, PageSize::Huge1G)), Status::Overflow);
    }

    #[test]
    fn round_up_any_alignment() {
        assert_eq!(round_up(0, 4096), Ok(0));
        assert_eq!(round_up(1, 4096), Ok(4096));
        assert_eq!(round_up(4095, 4096), Ok(4096));
        assert_eq!(round_up(4096, 4096), Ok(4096));
        assert_eq!(round_up(4097, 4096), Ok(8192));
        // Non-power-of-two chunk: 1536 MiB.
        assert_eq!(round_up(1, 1536 * M), Ok(1536 * M));
        assert_eq!(round_up(2 * G, 1536 * M), Ok(3 * G));
        assert_eq!(round_up(7, 3), Ok(9));
        assert_eq!(round_up(u64::MAX, 1), Ok(u64::MAX));
        assert_eq!(round_up(u64::MAX - 4095, 4096), Ok(u64::MAX - 4095));
        assert_eq!(status(round_up(u64::MAX - 4094, 4096)), Status::Overflow);
        assert_eq!(status(round_up(u64::MAX, 4096)), Status::Overflow);
        assert_eq!(round_up(5, u64::MAX), Ok(u64::MAX));
        assert_eq!(round_up(u64::MAX, u64::MAX), Ok(u64::MAX));
        assert_eq!(status(round_up(5, 0)), Status::InvalidArgument);
        assert_eq!(status(round_up(0, 0)), Status::InvalidArgument);
    }

    #[test]
    fn round_down_any_alignment() {
        assert_eq!(round_down(0, 4096), Ok(0));
        assert_eq!(round_down(1, 4096), Ok(0));
        assert_eq!(round_down(4095, 4096), Ok(0));
        assert_eq!(round_down(4096, 4096), Ok(4096));
        assert_eq!(round_down(8191, 4096), Ok(4096));
        assert_eq!(round_down(u64::MAX, 4096), Ok(u64::MAX - 4095));
        assert_eq!(round_down(u64::MAX - 4095, 4096), Ok(u64::MAX - 4095));
        assert_eq!(round_down(4 * G, 1536 * M), Ok(3 * G));
        assert_eq!(round_down(u64::MAX, u64::MAX), Ok(u64::MAX));
        assert_eq!(round_down(u64::MAX - 1, u64::MAX), Ok(0));
        assert_eq!(status(round_down(5, 0)), Status::InvalidArgument);
    }

    #[test]
    fn is_aligned_examples() {
        assert!(is_aligned(0, 4096));
        assert!(!is_aligned(1, 4096));
        assert!(!is_aligned(4095, 4096));
        assert!(is_aligned(4096, 4096));
        assert!(is_aligned(u64::MAX - 4095, 4096));
        assert!(!is_aligned(u64::MAX, 4096));
        assert!(is_aligned(3 * G, 1536 * M));
        assert!(!is_aligned(0, 0));
        assert!(!is_aligned(4096, 0));
        assert!(is_aligned(u64::MAX, 1));
    }

    #[test]
    fn page_t_overhead_examples() {
        assert_eq!(page_t_overhead(0), Ok(0));
        assert_eq!(page_t_overhead(1), Ok(120));
        // 1 TiB of 4 KiB pages: 2^28 page_t of 120 bytes = 30 GiB.
        assert_eq!(page_t_overhead(1 << 28), Ok(30 * G));
        assert_eq!(page_t_overhead(u64::MAX / 120), Ok(u64::MAX / 120 * 120));
        assert_eq!(
            status(page_t_overhead(u64::MAX / 120 + 1)),
            Status::Overflow
        );
        assert_eq!(status(page_t_overhead(u64::MAX)), Status::Overflow);

        assert_eq!(page_t_overhead_bytes(0), Ok(0));
        assert_eq!(page_t_overhead_bytes(1), Ok(120));
        assert_eq!(page_t_overhead_bytes(4095), Ok(120));
        assert_eq!(page_t_overhead_bytes(4096), Ok(120));
        assert_eq!(page_t_overhead_bytes(4097), Ok(240));
        assert_eq!(page_t_overhead_bytes(T), Ok(30 * G));
        assert_eq!(page_t_overhead_bytes(u64::MAX), Ok((1 << 52) * 120));
        assert_eq!(
            page_t_overhead_bytes(u64::MAX - 4095),
            Ok(((1 << 52) - 1) * 120)
        );
    }

    #[test]
    fn parse_plain_bytes() {
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("1"), Ok(1));
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("4096B"), Ok(4096));
        assert_eq!(parse("4096b"), Ok(4096));
        assert_eq!(parse("000123"), Ok(123));
        assert_eq!(parse("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse("018446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse("  4096\t\n"), Ok(4096));
        assert_eq!(parse("\r\n 64G \x0c"), Ok(64 * G));
    }

    #[test]
    fn parse_units() {
        assert_eq!(parse("64G"), Ok(64 * G));
        assert_eq!(parse("64g"), Ok(64 * G));
        assert_eq!(parse("64GB"), Ok(64 * G));
        assert_eq!(parse("64Gb"), Ok(64 * G));
        assert_eq!(parse("64GiB"), Ok(64 * G));
        assert_eq!(parse("64gib"), Ok(64 * G));
        assert_eq!(parse("64GIB"), Ok(64 * G));
        assert_eq!(parse("512M"), Ok(512 * M));
        assert_eq!(parse("4K"), Ok(4096));
        assert_eq!(parse("4KiB"), Ok(4096));
        assert_eq!(parse("2T"), Ok(2 * T));
        assert_eq!(parse("3P"), Ok(3 * P));
        assert_eq!(parse("15E"), Ok(15 * E));
        assert_eq!(parse("0G"), Ok(0));
        assert_eq!(parse("0E"), Ok(0));
        assert_eq!(parse("17179869183G"), Ok(17179869183 * G));
    }

    #[test]
    fn parse_fractions() {
        assert_eq!(parse("1.5T"), Ok(T + T / 2));
        assert_eq!(parse("0.5G"), Ok(G / 2));
        assert_eq!(parse("1.5K"), Ok(1536));
        assert_eq!(parse("1.125G"), Ok(1152 * M));
        assert_eq!(parse("1.50000G"), Ok(1536 * M));
        assert_eq!(parse("00.25M"), Ok(256 * K));
        // Not a whole number of bytes: rounded down.
        assert_eq!(parse("0.001K"), Ok(1)); // 1.024 bytes
        assert_eq!(parse("0.0001K"), Ok(0)); // 0.1024 bytes
        assert_eq!(parse("1.1K"), Ok(1126)); // 1126.4 bytes

        // 18 fraction digits: the maximum.
        assert_eq!(parse("1.000000000000000000E"), Ok(E));
        assert_eq!(parse("0.999999999999999999K"), Ok(1023));
        // 15.999E is the largest E with three decimals; it fits.
        // floor(0.999 * 2^60) = 2^60 - ceil(2^60 / 1000).
        assert_eq!(parse("15.999E"), Ok(15 * E + (E - 1_152_921_504_606_847)));
        // floor((16 - 10^-18) * 2^60) = 2^64 - ceil(2^60 / 10^18) = 2^64 - 2.
        assert_eq!(parse("15.999999999999999999E"), Ok(u64::MAX - 1));
    }

    #[test]
    fn parse_percent() {
        let base = 16 * G;
        assert_eq!(parse_size("75%", Some(base)), Ok(12 * G));
        assert_eq!(parse_size("12.5%", Some(8 * G)), Ok(G));
        assert_eq!(parse_size("0%", Some(base)), Ok(0));
        assert_eq!(parse_size("0.0%", Some(base)), Ok(0));
        assert_eq!(parse_size("100%", Some(base)), Ok(base));
        assert_eq!(parse_size("100.000%", Some(base)), Ok(base));
        assert_eq!(parse_size("100%", Some(u64::MAX)), Ok(u64::MAX));
        assert_eq!(parse_size("50%", Some(u64::MAX)), Ok(u64::MAX / 2));
        assert_eq!(parse_size("33%", Some(100)), Ok(33));
        assert_eq!(parse_size("33%", Some(10)), Ok(3)); // 3.3, floor
        assert_eq!(parse_size("1%", Some(99)), Ok(0)); // 0.99, floor
        assert_eq!(parse_size(" 75% ", Some(base)), Ok(12 * G));
        // 18 fraction digits, exact on the full u64 range.
        assert_eq!(parse_size("12.500000000000000000%", Some(8 * G)), Ok(G));
        assert_eq!(
            parse_size("99.999999999999999999%", Some(u64::MAX)),
            Ok(u64::MAX - 1)
        );
        assert_eq!(parse_size("0.000000000000000001%", Some(u64::MAX)), Ok(0));
        assert_eq!(
            parse_size("50.000000000000000001%", Some(u64::MAX)),
            Ok(u64::MAX / 2)
        );
        assert_eq!(
            parse_size("100.000000000000000000%", Some(u64::MAX)),
            Ok(u64::MAX)
        );
        // Over 100% is a typo.
        assert_eq!(status(parse_size("101%", Some(base))), Status::ParseSize);
        assert_eq!(status(parse_size("100.1%", Some(base))), Status::ParseSize);
        assert_eq!(
            status(parse_size("100.000000000000000001%", Some(base))),
            Status::ParseSize
        );
        assert_eq!(
            status(parse_size("99999999999999999999999999%", Some(base))),
            Status::ParseSize
        );
        // A percentage of nothing.
        assert_eq!(status(parse_size("75%", None)), Status::InvalidArgument);
        assert_eq!(status(parse_size("0%", None)), Status::InvalidArgument);
        // Malformed percentages.
        for bad in ["%", "75%%", "75 %", "75G%", "75%G", ".5%", "5.%", "-5%"] {
            assert_eq!(
                status(parse_size(bad, Some(base))),
                Status::ParseSize,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn parse_overflow() {
        assert_eq!(status(parse("18446744073709551616")), Status::Overflow);
        assert_eq!(status(parse("18446744073709551616B")), Status::Overflow);
        assert_eq!(status(parse("16E")), Status::Overflow);
        assert_eq!(status(parse("16.0E")), Status::Overflow);
        assert_eq!(status(parse("17179869184G")), Status::Overflow);
        assert_eq!(status(parse("16384P")), Status::Overflow);
        assert_eq!(status(parse("18446744073709551615K")), Status::Overflow);
        let long = "9".repeat(10_000);
        assert_eq!(status(parse(&long)), Status::Overflow);
        assert_eq!(status(parse(&format!("{long}G"))), Status::Overflow);
        assert_eq!(status(parse(&format!("{long}.5G"))), Status::Overflow);
        // Long runs of leading zeros are still just zero.
        assert_eq!(parse(&format!("{}1G", "0".repeat(10_000))), Ok(G));
    }

    #[test]
    fn parse_rejections() {
        let bad = [
            "",
            "   ",
            "\t\n",
            "G",
            "GiB",
            "B",
            "iB",
            ".5G",
            "5.G",
            "5.",
            ".",
            "1..5G",
            "1.5.5G",
            "1.5",
            "1.5B",
            "0.5",
            "+5G",
            "-5G",
            "+5",
            "-0",
            "0x10",
            "0x10G",
            "1e5",
            "1E5",
            "12abc",
            "64 G",
            "64\tG",
            "64GG",
            "64KM",
            "64GBB",
            "64GiBB",
            "64iB",
            "64BiB",
            "64BB",
            "64Bi",
            "64Gi",
            "64Z",
            "64Y",
            "1_000",
            "1,000",
            "1 000",
            "6\u{0}4G",
            "64G\u{0}",
            "\u{0}64G",
            "\u{ff16}\u{ff14}G",
            "64\u{00a0}",
            "\u{00a0}64",
            "64G\u{200b}",
            "64Gé",
            "1.0000000000000000000G", // 19 fraction digits
            "NaN",
            "inf",
        ];
        for s in bad {
            assert_eq!(status(parse(s)), Status::ParseSize, "{s:?}");
            assert_eq!(status(parse_size(s, Some(G))), Status::ParseSize, "{s:?}");
        }
        // Garbage is ParseSize even when the number would overflow.
        let long = "9".repeat(100);
        assert_eq!(status(parse(&format!("{long}x"))), Status::ParseSize);
        assert_eq!(status(parse(&format!("{long}.5"))), Status::ParseSize);
    }

    #[test]
    fn format_examples() {
        assert_eq!(format_size(0), "0");
        assert_eq!(format_size(1), "1");
        assert_eq!(format_size(512), "512");
        assert_eq!(format_size(1000), "1000");
        assert_eq!(format_size(1023), "1023");
        assert_eq!(format_size(1024), "1K");
        assert_eq!(format_size(1025), "1025");
        assert_eq!(format_size(1152), "1.125K");
        assert_eq!(format_size(1088), "1088"); // 1.0625K: 4 digits
        assert_eq!(format_size(1536), "1.5K");
        assert_eq!(format_size(4095), "4095");
        assert_eq!(format_size(4096), "4K");
        assert_eq!(format_size(64 * G), "64G");
        assert_eq!(format_size(T + T / 2), "1.5T");
        assert_eq!(format_size(1152 * M), "1.125G");
        assert_eq!(format_size(1536 * M), "1.5G");
        assert_eq!(format_size(1023 * M), "1023M");
        assert_eq!(format_size(1024 * P), "1E");
        assert_eq!(format_size(15 * E + 7 * E / 8), "15.875E");
        assert_eq!(format_size(u64::MAX), "18446744073709551615");
        // The longest text of all: 2^64 - 128 in KiB with 3 decimals.
        assert_eq!(format_size(u64::MAX - 127), "18014398509481983.875K");
        assert_eq!(format_size(u64::MAX - 127).len(), FORMAT_SIZE_MAX_LEN);
        assert_eq!(format_size(u64::MAX - 255), "18014398509481983.75K");
        assert_eq!(format_size(u64::MAX - 511), "18014398509481983.5K");
        assert_eq!(format_size(u64::MAX - 1023), "18014398509481983K");
        // 2^64 - 4096 = (2^54 - 4) KiB; not a whole MiB.
        assert_eq!(format_size(u64::MAX - 4095), "18014398509481980K");
    }

    #[test]
    fn format_round_trips_examples() {
        for x in [
            0,
            1,
            4095,
            4096,
            1025,
            1536,
            64 * G,
            T + T / 2,
            u64::MAX,
            u64::MAX - 4095,
            u64::MAX - 127,
            u64::MAX - (E / 8 - 1),
            15 * E + 7 * E / 8,
            E,
            E - 1,
        ] {
            let s = format_size(x);
            assert!(s.len() <= FORMAT_SIZE_MAX_LEN, "{s}");
            assert_eq!(parse(&s), Ok(x), "{x} -> {s}");
        }
    }

    #[test]
    fn format_into_buffer() {
        let mut buf = [0xAAu8; 32];
        assert_eq!(format_size_into(64 * G, &mut buf), Ok(3));
        assert_eq!(&buf[..3], b"64G");
        assert_eq!(buf[3], 0xAA, "no NUL is written");

        let mut small = [0xAAu8; 2];
        assert_eq!(format_size_into(64 * G, &mut small), Err(3));
        assert_eq!(small, [0xAA; 2], "untouched on Err");

        let mut exact = [0u8; 3];
        assert_eq!(format_size_into(1536, &mut exact), Err(4));
        assert_eq!(format_size_into(64 * G, &mut exact), Ok(3));
        assert_eq!(&exact, b"64G");

        assert_eq!(format_size_into(0, &mut []), Err(1));
        assert_eq!(format_size_into(u64::MAX, &mut []), Err(20));
        let mut max = [0u8; FORMAT_SIZE_MAX_LEN];
        assert_eq!(format_size_into(u64::MAX, &mut max), Ok(20));
        assert_eq!(&max[..20], b"18446744073709551615");
        assert_eq!(format_size_into(u64::MAX - 127, &mut max), Ok(22));
        assert_eq!(&max, b"18014398509481983.875K");
        assert_eq!(format_size_into(u64::MAX - 127, &mut max[..21]), Err(22));
    }

    #[test]
    fn mul_div_floor_is_exact_at_the_edges() {
        let d = 10u128.pow(20);
        assert_eq!(mul_div_floor(u64::MAX, d, d), Some(u64::MAX));
        assert_eq!(mul_div_floor(u64::MAX, 0, d), Some(0));
        assert_eq!(mul_div_floor(u64::MAX, d - 1, d), Some(u64::MAX - 1));
        assert_eq!(mul_div_floor(0, d, d), Some(0));
        assert_eq!(mul_div_floor(7, 1, 0), None);
        assert_eq!(mul_div_floor(10, 1, 3), Some(3));
    }
}

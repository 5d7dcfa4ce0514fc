//! Shared plumbing of the text parsers: numbered lines and strict numbers.
//! Every function is total: any byte string in, a value or a
//! [`ParseError`] out. (Files are read by [`crate::files::read_limited`].)

use super::error::ParseError;

/// One line of input: its 1-based number and its text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Line<'a> {
    pub number: usize,
    pub text: &'a str,
}

impl<'a> Line<'a> {
    /// A parse error about this line.
    pub fn err(&self, why: &'static str) -> ParseError {
        ParseError::at(self.number, self.text, why)
    }

    /// Whether the line is empty or only ASCII whitespace.
    pub fn is_blank(&self) -> bool {
        self.text.trim_ascii().is_empty()
    }
}

/// Splits `input` into lines numbered from 1. A trailing `'\r'` is dropped
/// (text pasted from a terminal on another system); a line that is not
/// UTF-8 is an error naming it. The piece after a final `'\n'` is an empty
/// line, which every parser treats as blank.
pub(crate) fn lines(input: &[u8]) -> impl Iterator<Item = Result<Line<'_>, ParseError>> {
    input.split(|b| *b == b'\n').enumerate().map(|(i, raw)| {
        // i < input.len() + 1 <= isize::MAX + 1: cannot overflow a
        // usize; saturating only to satisfy the no-panic rule.
        let number = i.saturating_add(1);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        match std::str::from_utf8(raw) {
            Ok(text) => Ok(Line { number, text }),
            Err(_) => Err(ParseError::at_bytes(number, raw, "not UTF-8 text")),
        }
    })
}

/// A non-empty run of ASCII digits as a `u64`; `None` for anything else
/// (signs, spaces, hex, overflow). Stricter than `u64::from_str`, which
/// accepts a leading `+`.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, c| {
        let d = char::from(c).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// An optional `-` followed by digits, as an `i64` (range-checked).
pub(crate) fn parse_i64(s: &str) -> Option<i64> {
    match s.strip_prefix('-') {
        Some(digits) => {
            let magnitude = i128::from(parse_u64(digits)?);
            i64::try_from(magnitude.checked_neg()?).ok()
        }
        None => i64::try_from(parse_u64(s)?).ok(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_strict() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("007"), Some(7));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "+1",
            "-1",
            " 1",
            "1 ",
            "0x10",
            "18446744073709551616",
            "1e3",
        ] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
        assert_eq!(parse_i64("-174063616"), Some(-174_063_616));
        assert_eq!(parse_i64("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64("9223372036854775807"), Some(i64::MAX));
        for bad in [
            "",
            "-",
            "--1",
            "+1",
            "9223372036854775808",
            "-9223372036854775809",
        ] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lines_are_numbered_and_checked() {
        let got: Vec<_> = lines(b"a\r\nb\n")
            .map(|l| l.map(|l| (l.number, l.text)))
            .collect();
        assert_eq!(got, vec![Ok((1, "a")), Ok((2, "b")), Ok((3, ""))]);
        let bad: Vec<_> = lines(b"ok\n\xff\xfe\n").collect();
        let e = bad[1].clone().unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(lines(b"").count(), 1);
    }
}

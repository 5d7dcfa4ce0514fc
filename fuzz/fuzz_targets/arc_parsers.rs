//! The ARC text parsers on arbitrary bytes: Linux arcstats
//! (`parse_linux`), illumos `kstat -p` (`parse_kstat_p`) and `mdb -k
//! ::memstat` (`parse_memstat`).
//!
//! Checked: no panic; an error names a line that exists (1-based, at most
//! the number of '\n'-separated pieces, or 0 for the input as a whole) and
//! keeps at most PARSE_ERROR_TEXT_MAX characters of it; what parses renders
//! (`to_linux_text`, `to_kstat_p_text`, `to_text`) to text that parses back
//! to the same statistics (line numbers aside where the rendering drops
//! skipped or blank lines); the snapshots of parsed input do not panic.
//!
//! Input: the raw bytes, given to all three parsers.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vmmresv::arc::error::PARSE_ERROR_TEXT_MAX;
use vmmresv::arc::{
    parse_kstat_p, parse_linux, parse_memstat, Arcstats, KstatValue, Memstat, ParseError,
};
use vmmresv_fuzz::line_count;

fn check_err(what: &str, input: &[u8], e: &ParseError) {
    let lines = line_count(input);
    assert!(
        e.line <= lines,
        "{what}: error names line {} of {lines}: {e}",
        e.line
    );
    assert!(
        e.text.chars().count() <= PARSE_ERROR_TEXT_MAX,
        "{what}: error text not bounded"
    );
    if e.line == 0 {
        assert!(e.text.is_empty(), "{what}: whole-input error with a text");
    }
    // Display must not panic either.
    let _ = e.to_string();
}

/// The statistics without line numbers, `-0` (Signed(0)) read as 0: what a
/// rendering must preserve.
fn stats_key(a: &Arcstats) -> Vec<(String, Option<u32>, KstatValue)> {
    a.stats
        .iter()
        .map(|s| {
            let v = match &s.value {
                KstatValue::Signed(0) => KstatValue::Unsigned(0),
                v => v.clone(),
            };
            (s.name.clone(), s.data_type, v)
        })
        .collect()
}

fn memstat_key(m: &Memstat) -> Vec<String> {
    m.rows
        .iter()
        .map(|r| {
            format!(
                "{:?}|{}|{}|{}|{}|{:?}",
                r.row, r.label, r.pages, r.bytes, r.mb, r.pct
            )
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    match parse_linux(data) {
        Ok(a) => {
            let text = a.to_linux_text();
            match parse_linux(&text) {
                // Same file layout (blank lines only at the end), so even
                // the line numbers must agree.
                Ok(b) => assert_eq!(a, b, "linux: rendering does not parse back:\n{text}"),
                Err(e) => panic!("linux: rendering rejected: {e}\n{text}"),
            }
            let _ = a.snapshot();
        }
        Err(e) => check_err("linux", data, &e),
    }

    match parse_kstat_p(data) {
        Ok(a) => {
            let text = a.to_kstat_p_text();
            match parse_kstat_p(&text) {
                Ok(b) => {
                    assert_eq!(a.instance, b.instance, "kstat -p: instance changed");
                    assert_eq!(
                        stats_key(&a),
                        stats_key(&b),
                        "kstat -p: rendering does not parse back:\n{text}"
                    );
                }
                Err(e) => panic!("kstat -p: rendering rejected: {e}\n{text}"),
            }
            let _ = a.snapshot();
        }
        Err(e) => check_err("kstat -p", data, &e),
    }

    match parse_memstat(data) {
        Ok(m) => {
            for aligned in [true, false] {
                let text = m.to_text(aligned);
                match parse_memstat(&text) {
                    Ok(n) => assert_eq!(
                        memstat_key(&m),
                        memstat_key(&n),
                        "memstat: rendering (aligned {aligned}) does not parse back:\n{text}"
                    ),
                    Err(e) => {
                        panic!("memstat: rendering (aligned {aligned}) rejected: {e}\n{text}")
                    }
                }
            }
            let _ = m.snapshot();
        }
        Err(e) => check_err("memstat", data, &e),
    }
});

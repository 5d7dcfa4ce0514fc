//! `mdb -k ::memstat` output: where the host's pages are.
//!
//! Format (illumos `usr/src/cmd/mdb/common/modules/genunix/memory.c`,
//! `memstat()`; the VMM row from the bhyve-era illumos-joyent version):
//!
//! ```text
//! Page Summary                Pages                MB  %Tot
//! ------------     ----------------  ----------------  ----
//! Kernel                     392116              1531   38%
//! ...
//! Free (freelist)            408399              1595   39%
//!
//! Total                     1045110              4082
//! Physical                  1045109              4082
//! ```
//!
//! - Rows `Kernel`, `Anon`, `Exec and libs`, `Page cache`, `Free
//!   (cachelist)`, `Free (freelist)` and `Total` are always printed;
//!   `Boot pages`, `ZFS File Data` and `VMM Memory` only when nonzero,
//!   `Balloon` only under Xen, `Physical` only when `total_pages` differs
//!   from `physmem`. Older versions lack some rows; a row this parser does
//!   not know is kept as [`MemstatRow::Other`].
//! - `Total` is `physmem`, `Physical` is `total_pages`.
//! - MB is `pages * PAGESIZE / (1024 * 1024)`, truncated. It is checked
//!   against Pages at 4 KiB per page: a mismatch means the text was damaged
//!   or comes from a host with another page size, whose page counts would be
//!   misread.
//! - `Free (freelist)` is printed as `physmem` minus every page counted
//!   above it (clamped at 0), so the rows add up to `Total` exactly; all
//!   seven tables in OS-8005 do. The parser checks it, which catches a row
//!   lost in copy-paste.
//!
//! Both the aligned form mdb prints and the whitespace-collapsed form seen in
//! OS-8005 (pasted through a tool that squeezed the spaces) are accepted.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use super::error::{ArcError, ParseError};
use super::snapshot::HostSnapshot;
use super::text::{self, parse_u64, Line};
use crate::files;
use crate::pages::{self, PageSize};

/// The rows of a `::memstat` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemstatRow {
    /// `Kernel`.
    Kernel,
    /// `Boot pages`.
    BootPages,
    /// `ZFS File Data` (ARC data; ARC metadata counts as Kernel).
    ZfsFileData,
    /// `VMM Memory` (bhyve guests).
    VmmMemory,
    /// `Anon`.
    Anon,
    /// `Exec and libs`.
    ExecAndLibs,
    /// `Page cache`.
    PageCache,
    /// `Free (cachelist)`.
    FreeCachelist,
    /// `Free (freelist)`.
    FreeFreelist,
    /// `Balloon` (Xen).
    Balloon,
    /// `Total` (`physmem`).
    Total,
    /// `Physical` (`total_pages`).
    Physical,
    /// A row this parser does not know (a later illumos may add some).
    Other,
}

const KNOWN_ROWS: [(MemstatRow, &str); 12] = [
    (MemstatRow::Kernel, "Kernel"),
    (MemstatRow::BootPages, "Boot pages"),
    (MemstatRow::ZfsFileData, "ZFS File Data"),
    (MemstatRow::VmmMemory, "VMM Memory"),
    (MemstatRow::Anon, "Anon"),
    (MemstatRow::ExecAndLibs, "Exec and libs"),
    (MemstatRow::PageCache, "Page cache"),
    (MemstatRow::FreeCachelist, "Free (cachelist)"),
    (MemstatRow::FreeFreelist, "Free (freelist)"),
    (MemstatRow::Balloon, "Balloon"),
    (MemstatRow::Total, "Total"),
    (MemstatRow::Physical, "Physical"),
];

impl MemstatRow {
    /// The row for a label (words separated by single spaces).
    pub fn from_label(label: &str) -> MemstatRow {
        KNOWN_ROWS
            .iter()
            .find(|(_, l)| *l == label)
            .map_or(MemstatRow::Other, |(r, _)| *r)
    }

    /// mdb's label for the row (`None` for [`MemstatRow::Other`]).
    pub fn label(self) -> Option<&'static str> {
        KNOWN_ROWS.iter().find(|(r, _)| *r == self).map(|(_, l)| *l)
    }

    /// Whether the row is a category of pages (has a %Tot and counts toward
    /// Total) rather than a total.
    pub fn is_category(self) -> bool {
        !matches!(self, MemstatRow::Total | MemstatRow::Physical)
    }
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemstatLine {
    /// Which row.
    pub row: MemstatRow,
    /// The label as printed (words joined by single spaces).
    pub label: String,
    /// The Pages column.
    pub pages: u64,
    /// `pages` in bytes (`pages::ptob`, 4 KiB pages).
    pub bytes: u64,
    /// The MB column.
    pub mb: u64,
    /// The %Tot column (categories only).
    pub pct: Option<u64>,
    /// The 1-based line number (0 if built in code).
    pub line: usize,
}

impl MemstatLine {
    fn err(&self, why: &'static str) -> ParseError {
        let text = match self.pct {
            Some(p) => format!("{} {} {} {}%", self.label, self.pages, self.mb, p),
            None => format!("{} {} {}", self.label, self.pages, self.mb),
        };
        ParseError::at(self.line, &text, why)
    }
}

/// A parsed `::memstat` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Memstat {
    /// The rows in the order printed; labels are unique, Total is present,
    /// and the categories add up to Total.
    pub rows: Vec<MemstatLine>,
}

impl Memstat {
    /// The row `row` (the first [`MemstatRow::Other`] for `Other`).
    pub fn get(&self, row: MemstatRow) -> Option<&MemstatLine> {
        self.rows.iter().find(|r| r.row == row)
    }

    /// The Pages column of `row`.
    pub fn pages(&self, row: MemstatRow) -> Option<u64> {
        self.get(row).map(|r| r.pages)
    }

    fn bytes(&self, row: MemstatRow) -> Option<u64> {
        self.get(row).map(|r| r.bytes)
    }

    /// The host snapshot of this table (bytes). Rows mdb prints only when
    /// nonzero (Boot pages, ZFS File Data, VMM Memory, Balloon) are `Some(0)`
    /// when absent; `physical` defaults to Total, as mdb prints Physical only
    /// when it differs; `free` = cachelist + freelist (`freemem` counts
    /// both). The ARC's own counters are `None`: take them from kstat and
    /// [`HostSnapshot::merge`].
    pub fn snapshot(&self) -> HostSnapshot {
        let or_zero = |row| Some(self.bytes(row).unwrap_or(0));
        let cachelist = self.bytes(MemstatRow::FreeCachelist);
        let freelist = self.bytes(MemstatRow::FreeFreelist);
        let free = match (cachelist, freelist) {
            (None, None) => None,
            // Both are parts of physmem, so their sum fits whenever the
            // table passed its sum check; saturating is never reached.
            (c, f) => Some(c.unwrap_or(0).saturating_add(f.unwrap_or(0))),
        };
        let physmem = self.bytes(MemstatRow::Total);
        HostSnapshot {
            physmem,
            physical: self.bytes(MemstatRow::Physical).or(physmem),
            kernel: self.bytes(MemstatRow::Kernel),
            boot_pages: or_zero(MemstatRow::BootPages),
            zfs_file_data: or_zero(MemstatRow::ZfsFileData),
            vmm: or_zero(MemstatRow::VmmMemory),
            anon: self.bytes(MemstatRow::Anon),
            exec_and_libs: self.bytes(MemstatRow::ExecAndLibs),
            page_cache: self.bytes(MemstatRow::PageCache),
            free_cachelist: cachelist,
            free_freelist: freelist,
            balloon: or_zero(MemstatRow::Balloon),
            free,
            ..HostSnapshot::default()
        }
    }

    /// The table as text: `aligned` as mdb prints it (columns of
    /// `memory.c`), otherwise with single spaces (the OS-8005 pasted form).
    /// Both parse back to `self`.
    pub fn to_text(&self, aligned: bool) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored.
        if aligned {
            let _ = writeln!(
                out,
                "Page Summary                Pages                MB  %Tot"
            );
            let _ = writeln!(
                out,
                "------------     ----------------  ----------------  ----"
            );
        } else {
            let _ = writeln!(out, "Page Summary Pages MB %Tot");
            let _ = writeln!(out, "------------ ---------------- ---------------- ----");
        }
        let mut blank_done = false;
        for r in &self.rows {
            if !r.row.is_category() && !blank_done {
                // memory.c: mdb_printf("\nTotal ...").
                out.push('\n');
                blank_done = true;
            }
            let _ = match (aligned, r.pct) {
                (true, Some(p)) => writeln!(
                    out,
                    "{:<16} {:>16}  {:>16}  {:>3}%",
                    r.label, r.pages, r.mb, p
                ),
                (true, None) => writeln!(out, "{:<16} {:>16}  {:>16}", r.label, r.pages, r.mb),
                (false, Some(p)) => writeln!(out, "{} {} {} {}%", r.label, r.pages, r.mb, p),
                (false, None) => writeln!(out, "{} {} {}", r.label, r.pages, r.mb),
            };
        }
        out
    }
}

const HEADER: [&str; 5] = ["Page", "Summary", "Pages", "MB", "%Tot"];

fn parse_row(line: &Line<'_>) -> Result<MemstatLine, ParseError> {
    let tokens: Vec<&str> = line.text.split_ascii_whitespace().collect();
    let (pct, rest) = match tokens.split_last() {
        Some((last, rest)) if last.ends_with('%') => {
            let p = last
                .strip_suffix('%')
                .and_then(parse_u64)
                .ok_or_else(|| line.err("%Tot is not a percentage"))?;
            (Some(p), rest)
        }
        _ => (None, tokens.as_slice()),
    };
    let (mb, rest) = rest
        .split_last()
        .ok_or_else(|| line.err("expected a label, Pages and MB"))?;
    let (pages, label) = rest
        .split_last()
        .ok_or_else(|| line.err("expected a label, Pages and MB"))?;
    if !label
        .first()
        .is_some_and(|w| w.starts_with(|c: char| c.is_ascii_alphabetic()))
    {
        return Err(line.err("expected a row label before Pages and MB"));
    }
    let pages = parse_u64(pages).ok_or_else(|| line.err("Pages is not a count"))?;
    let mb = parse_u64(mb).ok_or_else(|| line.err("MB is not a number"))?;
    let label = label.join(" ");
    let row = MemstatRow::from_label(&label);
    match (row.is_category(), pct) {
        (true, None) => return Err(line.err("missing the %Tot column")),
        (false, Some(_)) => return Err(line.err("Total and Physical have no %Tot column")),
        _ => {}
    }
    let bytes = pages::ptob(pages, PageSize::Base4K)
        .map_err(|_| line.err("page count too large for 64-bit bytes"))?;
    // memory.c: pages * PAGESIZE / (1024 * 1024), truncated.
    if bytes >> 20 != mb {
        return Err(line.err("MB does not match Pages at 4 KiB pages"));
    }
    Ok(MemstatLine {
        row,
        label,
        pages,
        bytes,
        mb,
        pct,
        line: line.number,
    })
}

/// Parses `::memstat` output (any bytes; total). Blank lines are ignored;
/// the first two other lines must be the header and the dashes; every
/// further line is a row. Checked: the header, the dashes, each row's
/// columns, MB against Pages, unique labels, a Total row, and that the
/// categories add up to Total (or exceed it with a zero freelist, which is
/// how mdb clamps double-counted pages).
pub fn parse_memstat<T: AsRef<[u8]> + ?Sized>(input: &T) -> Result<Memstat, ParseError> {
    let mut seen_header = false;
    let mut seen_dashes = false;
    let mut rows: Vec<MemstatLine> = Vec::new();
    let mut labels = HashSet::new();
    for line in text::lines(input.as_ref()) {
        let line = line?;
        if line.is_blank() {
            continue;
        }
        if !seen_header {
            if !line.text.split_ascii_whitespace().eq(HEADER) {
                return Err(line.err("expected the ::memstat header 'Page Summary Pages MB %Tot'"));
            }
            seen_header = true;
        } else if !seen_dashes {
            let mut t = line.text.split_ascii_whitespace();
            if t.clone().count() != 4 || !t.all(|w| w.bytes().all(|c| c == b'-')) {
                return Err(line.err("expected the dashed line under the header"));
            }
            seen_dashes = true;
        } else {
            let row = parse_row(&line)?;
            if !labels.insert(row.label.clone()) {
                return Err(line.err("row appears twice"));
            }
            rows.push(row);
        }
    }
    if !seen_dashes {
        return Err(ParseError::whole("no ::memstat table in the input"));
    }
    let table = Memstat { rows };
    let total = table
        .get(MemstatRow::Total)
        .ok_or_else(|| ParseError::whole("no Total row (truncated output?)"))?;
    let sum = table
        .rows
        .iter()
        .filter(|r| r.row.is_category())
        .try_fold(0u64, |acc, r| acc.checked_add(r.pages))
        .ok_or_else(|| total.err("the rows add up to more than 2^64 pages"))?;
    let freelist = table.pages(MemstatRow::FreeFreelist).unwrap_or(0);
    if sum != total.pages && !(freelist == 0 && sum > total.pages) {
        return Err(total.err("the rows do not add up to Total"));
    }
    Ok(table)
}

/// Reads a file of `::memstat` output (at most
/// [`crate::files::MAX_INPUT_BYTES`]) and parses it.
pub fn read_memstat_file<P: AsRef<Path>>(path: P) -> Result<Memstat, ArcError> {
    let bytes = files::read_limited(path.as_ref())?;
    Ok(parse_memstat(&bytes)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// OS-8005, the 4 GiB host before the VM started (aligned, verbatim).
    const SMALL: &str = "Page Summary                Pages                MB  %Tot
------------     ----------------  ----------------  ----
Kernel                     392116              1531   38%
Boot pages                  76071               297    7%
ZFS File Data              118101               461   11%
Anon                        14558                56    1%
Exec and libs                 539                 2    0%
Page cache                   3520                13    0%
Free (cachelist)            31806               124    3%
Free (freelist)            408399              1595   39%

Total                     1045110              4082
Physical                  1045109              4082
";

    #[test]
    fn parses_and_renders_the_aligned_form_exactly() {
        let m = parse_memstat(SMALL).unwrap();
        assert_eq!(m.rows.len(), 10);
        assert_eq!(m.pages(MemstatRow::ZfsFileData), Some(118_101));
        assert_eq!(m.pages(MemstatRow::VmmMemory), None);
        assert_eq!(m.get(MemstatRow::Kernel).unwrap().pct, Some(38));
        assert_eq!(m.get(MemstatRow::Total).unwrap().line, 12);
        assert_eq!(m.to_text(true), SMALL);
        let collapsed = m.to_text(false);
        assert!(collapsed.contains("\nFree (freelist) 408399 1595 39%\n\nTotal 1045110 4082\n"));
        assert_eq!(parse_memstat(&collapsed).unwrap(), {
            // Same rows; only the line numbers match too (same layout).
            m.clone()
        });
        let s = m.snapshot();
        assert_eq!(s.physmem, Some(1_045_110 * 4096));
        assert_eq!(s.physical, Some(1_045_109 * 4096));
        assert_eq!(s.vmm, Some(0));
        assert_eq!(s.free, Some((31_806 + 408_399) * 4096));
        assert_eq!(s.arc_size, None);
    }

    #[test]
    fn rejections_name_the_line() {
        let swap = |from: &str, to: &str| SMALL.replacen(from, to, 1);
        let cases: Vec<(String, usize)> = vec![
            (String::new(), 0),
            ("Page Summary Pages MB %Tot\n".into(), 0),
            (swap("Page Summary", "Page Summry"), 1),
            (swap("------------     ", "------------ x "), 2),
            // MB does not match Pages (an 8 KiB-page host would do this).
            (swap("1531   38%", "3062   38%"), 3),
            (swap("   38%", "   38"), 3),
            (swap("   38%", "   x%"), 3),
            (swap("Kernel    ", "          "), 3),
            (
                swap(
                    "Kernel                     392116",
                    "Kernel                    -392116",
                ),
                3,
            ),
            // A row lost: the sum no longer matches Total (line 12).
            (
                swap(
                    "Anon                        14558                56    1%\n",
                    "",
                ),
                11,
            ),
            (
                swap("Total                     1045110              4082\n", ""),
                0,
            ),
            (
                swap(
                    "Physical                  1045109              4082",
                    "Physical                  1045109              4082  99%",
                ),
                13,
            ),
            (swap("Anon  ", "Kernel"), 6),
            (format!("{SMALL}root - kraid ~ # arcstat 1\n"), 14),
            (format!("{SMALL}Mystery 1 0 0%\n"), 12),
        ];
        for (input, line) in cases {
            let e = parse_memstat(&input).unwrap_err();
            assert_eq!(e.line, line, "{input}\n=> {e}");
        }
    }

    #[test]
    fn unknown_rows_count_toward_total_and_clamped_freelist_is_accepted() {
        let t = "Page Summary Pages MB %Tot\n- - - -\nKernel 10 0 50%\nDefdump prealloc 10 0 50%\n\
                 Anon 0 0 0%\nExec and libs 0 0 0%\nPage cache 0 0 0%\nFree (cachelist) 0 0 0%\n\
                 Free (freelist) 0 0 0%\n\nTotal 20 0\n";
        let m = parse_memstat(t).unwrap();
        assert_eq!(m.get(MemstatRow::Other).unwrap().label, "Defdump prealloc");
        // Double counting: categories exceed Total while the freelist is 0.
        let over = t.replace("Kernel 10 0 50%", "Kernel 11 0 55%");
        assert!(parse_memstat(&over).is_ok());
        let under = t.replace("Kernel 10 0 50%", "Kernel 9 0 45%");
        assert_eq!(parse_memstat(&under).unwrap_err().line, 11);
    }
}

//! ARC statistics: Linux `/proc/spl/kstat/zfs/arcstats` and illumos
//! `kstat -p zfs:0:arcstats` text.
//!
//! **Linux** (OpenZFS `module/os/linux/spl/spl-kstat.c`; docs/kernel.md,
//! "arcstats"): line 1 is the kstat header `"%d %d 0x%02x %d %d %lld %lld"`
//! (kid, type, flags, ndata, data_size, crtime, snaptime); line 2 is
//! `"%-31s %-4s %s"` of `name type data`; then one `"%-31s %-4d "` + value
//! line per statistic. Data types (`include/os/linux/spl/sys/kstat.h`):
//! CHAR 0, INT32 1, UINT32 2, INT64 3, UINT64 4, LONG 5, ULONG 6, STRING 7.
//! Almost every arcstat is UINT64; `memory_available_bytes` is INT64 and
//! goes negative when the ARC must shrink (openzfs/zfs#9548).
//!
//! **illumos** (`usr/src/cmd/stat/kstat/kstat.c`, `ks_instance_print()`):
//! `kstat -p` prints `module:instance:name:statistic`, a tab, the value.
//! The library does not run kstat; it parses text the caller captured. Lines
//! of other kstats are skipped, so `kstat -p zfs:::` output works too.
//!
//! Neither parser needs the kstat `p` (gone since OpenZFS 2.2, commit
//! a8d83e2a24) or any field beyond what a caller asks for: a statistic is
//! looked up by name, and a missing one is `None`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::error::{ArcError, ParseError};
use super::snapshot::HostSnapshot;
use super::text::{self, parse_i64, parse_u64, Line};
use crate::files;

/// The Linux arcstats file, relative to the root directory.
pub const LINUX_ARCSTATS: &str = "proc/spl/kstat/zfs/arcstats";

/// kstat data type: a 16-byte char array.
pub const KSTAT_DATA_CHAR: u32 = 0;
/// kstat data type: `int32_t`.
pub const KSTAT_DATA_INT32: u32 = 1;
/// kstat data type: `uint32_t`.
pub const KSTAT_DATA_UINT32: u32 = 2;
/// kstat data type: `int64_t` (`memory_available_bytes`).
pub const KSTAT_DATA_INT64: u32 = 3;
/// kstat data type: `uint64_t` (nearly every arcstat).
pub const KSTAT_DATA_UINT64: u32 = 4;
/// kstat data type: `long` (SPL).
pub const KSTAT_DATA_LONG: u32 = 5;
/// kstat data type: `unsigned long` (SPL).
pub const KSTAT_DATA_ULONG: u32 = 6;
/// kstat data type: a string (SPL).
pub const KSTAT_DATA_STRING: u32 = 7;
/// kstat type of a named kstat such as arcstats (`KSTAT_TYPE_NAMED`).
pub const KSTAT_TYPE_NAMED: i64 = 1;

/// A statistic's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KstatValue {
    /// A signed integer (INT32, INT64, LONG; or a negative `kstat -p` value).
    Signed(i64),
    /// An unsigned integer (UINT32, UINT64, ULONG; or a `kstat -p` value
    /// that is a plain non-negative integer).
    Unsigned(u64),
    /// Anything else: CHAR and STRING statistics, and `kstat -p` values that
    /// are not integers (`class misc`, `crtime 68.437226768`).
    Text(String),
}

impl std::fmt::Display for KstatValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KstatValue::Signed(v) => write!(f, "{v}"),
            KstatValue::Unsigned(v) => write!(f, "{v}"),
            KstatValue::Text(s) => f.write_str(s),
        }
    }
}

/// One named statistic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KstatNamed {
    /// The statistic's name (`size`, `c`, `c_min`, ...).
    pub name: String,
    /// The kstat data type, when the source shows it (Linux does, `kstat
    /// -p` does not).
    pub data_type: Option<u32>,
    /// The value.
    pub value: KstatValue,
    /// The 1-based line it came from (0 if built in code).
    pub line: usize,
}

impl KstatNamed {
    fn err(&self, why: &'static str) -> ParseError {
        ParseError::at(self.line, &format!("{} {}", self.name, self.value), why)
    }
}

/// The header line of a Linux kstat file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KstatHeader {
    /// `ks_kid`.
    pub kid: i64,
    /// `ks_type` (1 = named).
    pub ks_type: i64,
    /// `ks_flags`.
    pub flags: u32,
    /// `ks_ndata`: the number of statistics that follow.
    pub ndata: u64,
    /// `ks_data_size`.
    pub data_size: u64,
    /// `ks_crtime` (ns).
    pub crtime: i64,
    /// `ks_snaptime` (ns).
    pub snaptime: i64,
}

/// Parsed arcstats, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arcstats {
    /// The kstat header (Linux only).
    pub header: Option<KstatHeader>,
    /// The kstat instance (`kstat -p` only; `zfs:0:arcstats` → 0).
    pub instance: Option<u64>,
    /// The statistics, in the order read; names are unique.
    pub stats: Vec<KstatNamed>,
}

impl Arcstats {
    /// The statistic called `name`.
    pub fn get(&self, name: &str) -> Option<&KstatNamed> {
        self.stats.iter().find(|s| s.name == name)
    }

    /// `name` as a byte count: `None` if absent, an error naming its line
    /// if it is text or negative.
    pub fn get_u64(&self, name: &str) -> Result<Option<u64>, ParseError> {
        let Some(s) = self.get(name) else {
            return Ok(None);
        };
        match &s.value {
            KstatValue::Unsigned(v) => Ok(Some(*v)),
            KstatValue::Signed(v) => u64::try_from(*v)
                .map(Some)
                .map_err(|_| s.err("negative where a size was expected")),
            KstatValue::Text(_) => Err(s.err("not a number")),
        }
    }

    /// `name` as a signed integer: `None` if absent, an error naming its
    /// line if it is text or above `i64::MAX`.
    pub fn get_i64(&self, name: &str) -> Result<Option<i64>, ParseError> {
        let Some(s) = self.get(name) else {
            return Ok(None);
        };
        match &s.value {
            KstatValue::Signed(v) => Ok(Some(*v)),
            KstatValue::Unsigned(v) => i64::try_from(*v)
                .map(Some)
                .map_err(|_| s.err("too large for a signed value")),
            KstatValue::Text(_) => Err(s.err("not a number")),
        }
    }

    /// The host snapshot these statistics give: `size`, `c`, `c_min`,
    /// `c_max` everywhere; on Linux also `memory_all_bytes` (→ physmem),
    /// `memory_free_bytes` (→ free) and `memory_available_bytes`.
    pub fn snapshot(&self) -> Result<HostSnapshot, ParseError> {
        Ok(HostSnapshot {
            arc_size: self.get_u64("size")?,
            arc_c: self.get_u64("c")?,
            arc_c_min: self.get_u64("c_min")?,
            arc_c_max: self.get_u64("c_max")?,
            physmem: self.get_u64("memory_all_bytes")?,
            free: self.get_u64("memory_free_bytes")?,
            arc_available: self.get_i64("memory_available_bytes")?,
            ..HostSnapshot::default()
        })
    }

    /// The Linux text of these statistics, byte for byte as `spl-kstat.c`
    /// prints it. The header is kept except `ndata`, which is always the
    /// number of statistics (so the text parses back); without a header one
    /// is made up (kid 0, named, flags 0x01, `data_size` = 272 bytes per
    /// statistic as `kstat_named_t` has on Linux). A statistic without a data
    /// type is written as UINT64, INT64 or STRING by its value.
    pub fn to_linux_text(&self) -> String {
        let n = u64::try_from(self.stats.len()).unwrap_or(u64::MAX);
        let h = self.header.unwrap_or(KstatHeader {
            kid: 0,
            ks_type: KSTAT_TYPE_NAMED,
            flags: 1,
            ndata: n,
            // Display only; saturating because no real count gets near.
            data_size: n.saturating_mul(272),
            crtime: 0,
            snaptime: 0,
        });
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored.
        let _ = writeln!(
            out,
            "{} {} 0x{:02x} {} {} {} {}",
            h.kid, h.ks_type, h.flags, n, h.data_size, h.crtime, h.snaptime
        );
        let _ = writeln!(out, "{:<31} {:<4} data", "name", "type");
        for s in &self.stats {
            let ty = s.data_type.unwrap_or(match s.value {
                KstatValue::Unsigned(_) => KSTAT_DATA_UINT64,
                KstatValue::Signed(_) => KSTAT_DATA_INT64,
                KstatValue::Text(_) => KSTAT_DATA_STRING,
            });
            let _ = writeln!(out, "{:<31} {:<4} {}", s.name, ty, s.value);
        }
        out
    }

    /// The `kstat -p` text of these statistics
    /// (`zfs:<instance>:arcstats:<name>\t<value>`), instance 0 if unknown.
    pub fn to_kstat_p_text(&self) -> String {
        let inst = self.instance.unwrap_or(0);
        let mut out = String::new();
        for s in &self.stats {
            let _ = writeln!(out, "zfs:{inst}:arcstats:{}\t{}", s.name, s.value);
        }
        out
    }
}

/// The next token of `s` and the text after it (starting with the
/// whitespace that ended the token), or `None` if only whitespace is left.
fn split_token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_ascii_start();
    if s.is_empty() {
        return None;
    }
    let end = s.find(|c: char| c.is_ascii_whitespace()).unwrap_or(s.len());
    s.split_at_checked(end)
}

fn parse_header(line: &Line<'_>) -> Result<KstatHeader, ParseError> {
    let bad = |why| line.err(why);
    let mut t = line.text.split_ascii_whitespace();
    let mut field = || t.next().ok_or_else(|| bad("kstat header needs 7 fields"));
    let kid = parse_i64(field()?).ok_or_else(|| bad("kstat header: kid is not a number"))?;
    let ks_type = parse_i64(field()?).ok_or_else(|| bad("kstat header: type is not a number"))?;
    let flags = field()?
        .strip_prefix("0x")
        .filter(|h| !h.is_empty() && h.bytes().all(|c| c.is_ascii_hexdigit()))
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or_else(|| bad("kstat header: flags are not 0x-prefixed hex"))?;
    let ndata = parse_u64(field()?).ok_or_else(|| bad("kstat header: ndata is not a count"))?;
    let data_size =
        parse_u64(field()?).ok_or_else(|| bad("kstat header: data_size is not a size"))?;
    let crtime = parse_i64(field()?).ok_or_else(|| bad("kstat header: crtime is not a number"))?;
    let snaptime =
        parse_i64(field()?).ok_or_else(|| bad("kstat header: snaptime is not a number"))?;
    if t.next().is_some() {
        return Err(bad("kstat header has more than 7 fields"));
    }
    if ks_type != KSTAT_TYPE_NAMED {
        return Err(bad("not a named kstat (header type is not 1)"));
    }
    Ok(KstatHeader {
        kid,
        ks_type,
        flags,
        ndata,
        data_size,
        crtime,
        snaptime,
    })
}

/// A numeric value of kstat type `ty`, range-checked for that type.
fn numeric_value(ty: u32, v: &str) -> Option<KstatValue> {
    match ty {
        KSTAT_DATA_INT32 => i32::try_from(parse_i64(v)?)
            .ok()
            .map(|x| KstatValue::Signed(i64::from(x))),
        KSTAT_DATA_UINT32 => u32::try_from(parse_u64(v)?)
            .ok()
            .map(|x| KstatValue::Unsigned(u64::from(x))),
        KSTAT_DATA_INT64 | KSTAT_DATA_LONG => parse_i64(v).map(KstatValue::Signed),
        KSTAT_DATA_UINT64 | KSTAT_DATA_ULONG => parse_u64(v).map(KstatValue::Unsigned),
        _ => None,
    }
}

fn parse_stat_line(line: &Line<'_>) -> Result<KstatNamed, ParseError> {
    let (name, rest) = split_token(line.text).ok_or_else(|| line.err("empty statistic line"))?;
    let (ty, rest) = split_token(rest).ok_or_else(|| line.err("no data type after the name"))?;
    let ty = parse_u64(ty)
        .and_then(|t| u32::try_from(t).ok())
        .ok_or_else(|| line.err("data type is not a number"))?;
    let value = rest.trim_ascii();
    let value = match ty {
        KSTAT_DATA_CHAR | KSTAT_DATA_STRING => KstatValue::Text(value.to_string()),
        KSTAT_DATA_INT32..=KSTAT_DATA_ULONG => numeric_value(ty, value)
            .ok_or_else(|| line.err("value is not a valid number of its data type"))?,
        _ => return Err(line.err("unknown kstat data type")),
    };
    Ok(KstatNamed {
        name: name.to_string(),
        data_type: Some(ty),
        value,
        line: line.number,
    })
}

/// Parses Linux `/proc/spl/kstat/zfs/arcstats` text (any bytes; total).
///
/// Checked: the header's 7 fields and type 1 (named); the exact `name type
/// data` line; every statistic's data type and that its value fits it;
/// unique names; and that the number of statistics equals the header's
/// `ndata` (a short count means a truncated read). Blank lines are allowed
/// only at the end.
pub fn parse_linux<T: AsRef<[u8]> + ?Sized>(input: &T) -> Result<Arcstats, ParseError> {
    let mut it = text::lines(input.as_ref());
    // split() always yields a first piece, possibly empty.
    let first = it
        .next()
        .transpose()?
        .ok_or_else(|| ParseError::whole("empty input: no kstat header"))?;
    if first.is_blank() {
        return Err(if input.as_ref().trim_ascii().is_empty() {
            ParseError::whole("empty input: no kstat header")
        } else {
            first.err("expected the kstat header on line 1")
        });
    }
    let header = parse_header(&first)?;
    let second = it
        .next()
        .transpose()?
        .ok_or_else(|| ParseError::whole("truncated: no 'name type data' line"))?;
    if !second
        .text
        .split_ascii_whitespace()
        .eq(["name", "type", "data"])
    {
        return Err(second.err("expected the 'name type data' line"));
    }
    let mut stats = Vec::new();
    let mut names = HashSet::new();
    let mut blank: Option<Line<'_>> = None;
    for line in it {
        let line = line?;
        if line.is_blank() {
            blank = blank.or(Some(line));
            continue;
        }
        if let Some(b) = blank {
            return Err(b.err("blank line between statistics"));
        }
        let stat = parse_stat_line(&line)?;
        if !names.insert(stat.name.clone()) {
            return Err(line.err("statistic appears twice"));
        }
        stats.push(stat);
    }
    if u64::try_from(stats.len()).ok() != Some(header.ndata) {
        return Err(first.err("the header's ndata differs from the number of statistics"));
    }
    Ok(Arcstats {
        header: Some(header),
        instance: None,
        stats,
    })
}

/// Parses `kstat -p` output for `zfs:<n>:arcstats` (any bytes; total).
///
/// Each non-blank line is `module:instance:name:statistic`, whitespace (a
/// tab from kstat; spaces are accepted for pasted text), and a value.
/// Lines of other kstats are skipped; a second arcstats instance, a repeated
/// statistic, or no arcstats line at all is an error. A value is an integer
/// if it is one, else text.
pub fn parse_kstat_p<T: AsRef<[u8]> + ?Sized>(input: &T) -> Result<Arcstats, ParseError> {
    let mut stats = Vec::new();
    let mut names = HashSet::new();
    let mut instance = None;
    for line in text::lines(input.as_ref()) {
        let line = line?;
        if line.is_blank() {
            continue;
        }
        let (key, value) = split_token(line.text)
            .ok_or_else(|| line.err("expected module:instance:name:statistic and a value"))?;
        let mut parts = key.split(':');
        let mut part = || parts.next().filter(|p| !p.is_empty());
        let (Some(module), Some(inst), Some(name), Some(stat)) = (part(), part(), part(), part())
        else {
            return Err(line.err("expected module:instance:name:statistic"));
        };
        if parts.next().is_some() {
            return Err(line.err("more than four ':'-separated fields"));
        }
        if value.is_empty() {
            return Err(line.err("no value after the statistic name"));
        }
        let inst = parse_u64(inst).ok_or_else(|| line.err("kstat instance is not a number"))?;
        if module != "zfs" || name != "arcstats" {
            continue;
        }
        if *instance.get_or_insert(inst) != inst {
            return Err(line.err("a second arcstats instance"));
        }
        let value = value.trim_ascii();
        let value = match (parse_u64(value), parse_i64(value)) {
            (Some(u), _) => KstatValue::Unsigned(u),
            (None, Some(i)) => KstatValue::Signed(i),
            (None, None) => KstatValue::Text(value.to_string()),
        };
        if !names.insert(stat.to_string()) {
            return Err(line.err("statistic appears twice"));
        }
        stats.push(KstatNamed {
            name: stat.to_string(),
            data_type: None,
            value,
            line: line.number,
        });
    }
    if stats.is_empty() {
        return Err(ParseError::whole(
            "no zfs:N:arcstats statistics in the input",
        ));
    }
    Ok(Arcstats {
        header: None,
        instance,
        stats,
    })
}

/// Which text format a reader parses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArcstatsFormat {
    /// Linux `/proc/spl/kstat/zfs/arcstats`.
    LinuxProc,
    /// A file holding `kstat -p zfs:0:arcstats` output (illumos).
    KstatP,
}

/// Reads arcstats from a file, every call afresh.
///
/// `ArcReader::linux(root)` reads `<root>/proc/spl/kstat/zfs/arcstats`, so
/// tests point `root` at a fixture tree and production passes `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArcReader {
    path: PathBuf,
    format: ArcstatsFormat,
}

impl ArcReader {
    /// Linux arcstats under `root` (`/` on a real host).
    pub fn linux<P: AsRef<Path>>(root: P) -> ArcReader {
        ArcReader {
            path: root.as_ref().join(LINUX_ARCSTATS),
            format: ArcstatsFormat::LinuxProc,
        }
    }

    /// A file of `kstat -p zfs:0:arcstats` output (illumos; the library does
    /// not run kstat itself).
    pub fn kstat_p_file<P: AsRef<Path>>(path: P) -> ArcReader {
        ArcReader {
            path: path.as_ref().to_path_buf(),
            format: ArcstatsFormat::KstatP,
        }
    }

    /// The file this reader reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format it parses.
    pub fn format(&self) -> ArcstatsFormat {
        self.format
    }

    /// Reads and parses the file (at most [`crate::files::MAX_INPUT_BYTES`]).
    pub fn read(&self) -> Result<Arcstats, ArcError> {
        let bytes = files::read_limited(&self.path)?;
        let parsed = match self.format {
            ArcstatsFormat::LinuxProc => parse_linux(&bytes),
            ArcstatsFormat::KstatP => parse_kstat_p(&bytes),
        };
        Ok(parsed?)
    }

    /// Reads the file and returns its host snapshot.
    pub fn snapshot(&self) -> Result<HostSnapshot, ArcError> {
        Ok(self.read()?.snapshot()?)
    }

    /// The ARC's current size (`size`); an error if the file has none.
    pub fn arc_size(&self) -> Result<u64, ArcError> {
        self.read()?
            .get_u64("size")?
            .ok_or_else(|| ArcError::Parse(ParseError::whole("no 'size' statistic")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// docs/kernel.md, "arcstats": openzfs/zfs#14686 header and name line, #1779 and #9548
    /// sizing lines (the header's ndata set to the 5 lines kept here).
    const SAMPLE: &str = "9 1 0x01 5 1360 4026867198 8436358124041
name                            type data
hits                            4    10390029
c                               4    25240503504
c_min                           4    3758096384
c_max                           4    17179869184
memory_available_bytes          3    -174063616
";

    #[test]
    fn parses_the_sample_and_renders_it_back_exactly() {
        let a = parse_linux(SAMPLE).unwrap();
        let h = a.header.unwrap();
        assert_eq!((h.kid, h.ks_type, h.flags, h.ndata), (9, 1, 1, 5));
        assert_eq!(a.get_u64("c").unwrap(), Some(25_240_503_504));
        assert_eq!(a.get_u64("c_min").unwrap(), Some(3_758_096_384));
        assert_eq!(
            a.get_i64("memory_available_bytes").unwrap(),
            Some(-174_063_616)
        );
        assert_eq!(a.get("memory_available_bytes").unwrap().line, 7);
        assert_eq!(a.get_u64("size").unwrap(), None);
        // Negative where a size is expected: an error naming line 7.
        let e = a.get_u64("memory_available_bytes").unwrap_err();
        assert_eq!(e.line, 7);
        assert_eq!(a.to_linux_text(), SAMPLE);
        let s = a.snapshot().unwrap();
        assert_eq!(s.arc_c_max, Some(17_179_869_184));
        assert_eq!(s.arc_available, Some(-174_063_616));
        assert_eq!(s.arc_size, None);
    }

    #[test]
    fn rejects_malformed_linux_text_naming_the_line() {
        let cases: &[(&str, usize)] = &[
            ("", 0),
            (" \n\n", 0),
            ("\n9 1 0x01 0 0 0 0\nname type data\n", 1),
            ("9 1 0x01 0 0 0\nname type data\n", 1),
            ("9 1 0x01 0 0 0 0 7\nname type data\n", 1),
            ("9 3 0x01 0 0 0 0\nname type data\n", 1),
            ("9 1 01 0 0 0 0\nname type data\n", 1),
            ("9 1 0x01 0 0 0 0\n", 2),
            ("9 1 0x01 0 0 0 0", 0),
            ("9 1 0x01 0 0 0 0\nname type value\n", 2),
            ("9 1 0x01 1 0 0 0\nname type data\nsize 4 -1\n", 3),
            ("9 1 0x01 1 0 0 0\nname type data\nsize 4 1 2\n", 3),
            ("9 1 0x01 1 0 0 0\nname type data\nsize 9 1\n", 3),
            ("9 1 0x01 1 0 0 0\nname type data\nsize\n", 3),
            ("9 1 0x01 1 0 0 0\nname type data\nsize x 1\n", 3),
            ("9 1 0x01 1 0 0 0\nname type data\nsize 1 2147483648\n", 3),
            ("9 1 0x01 2 0 0 0\nname type data\nsize 4 1\nsize 4 2\n", 4),
            ("9 1 0x01 2 0 0 0\nname type data\nsize 4 1\n\nc 4 2\n", 4),
            ("9 1 0x01 2 0 0 0\nname type data\nsize 4 1\n", 1),
            ("9 1 0x01 1 0 0 0\nname type data\nsize 4 1\nc 4 1\n", 1),
        ];
        for (input, line) in cases {
            let e = parse_linux(input.as_bytes()).unwrap_err();
            assert_eq!(e.line, *line, "{input:?}: {e}");
        }
        // Invalid UTF-8 is reported, not a panic.
        let e = parse_linux(b"9 1 0x01 1 0 0 0\nname type data\nsize 4 \xff\n").unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn text_types_and_trailing_blank_lines() {
        let t = "1 1 0x01 2 0 0 0\nname type data\nlabel 7 hello world\nch 0 \n\n\n";
        let a = parse_linux(t).unwrap();
        assert_eq!(a.stats[0].value, KstatValue::Text("hello world".into()));
        assert_eq!(a.stats[1].value, KstatValue::Text(String::new()));
        assert!(a.get_u64("label").is_err());
    }

    #[test]
    fn kstat_p_parses_illumos_output() {
        let t = "zfs:0:arcstats:class\tmisc\nzfs:0:arcstats:crtime\t68.437226768\n\
                 zfs:0:arcstats:size\t425138704\nzfs:0:arcstats:c 358000000\n\
                 unix:0:system_pages:freemem\t12\n\nzfs:0:arcstats:c_min\t67108864\n";
        let a = parse_kstat_p(t).unwrap();
        assert_eq!(a.instance, Some(0));
        assert_eq!(a.get_u64("size").unwrap(), Some(425_138_704));
        assert_eq!(a.get_u64("c").unwrap(), Some(358_000_000));
        assert!(a.get("freemem").is_none());
        assert_eq!(
            a.get("crtime").unwrap().value,
            KstatValue::Text("68.437226768".into())
        );
        let s = a.snapshot().unwrap();
        assert_eq!(
            (s.arc_size, s.arc_c_min, s.physmem),
            (Some(425_138_704), Some(67_108_864), None)
        );
        let again = parse_kstat_p(&a.to_kstat_p_text()).unwrap();
        assert_eq!(again.stats.len(), a.stats.len());
    }

    #[test]
    fn kstat_p_rejections() {
        let cases: &[(&str, usize)] = &[
            ("", 0),
            ("\n\n", 0),
            ("unix:0:system_pages:freemem\t1\n", 0),
            ("zfs:0:arcstats:size\n", 1),
            ("zfs:0:arcstats\t1\n", 1),
            ("zfs:0:arcstats:size:x\t1\n", 1),
            ("zfs:x:arcstats:size\t1\n", 1),
            ("zfs::arcstats:size\t1\n", 1),
            ("zfs:0:arcstats:size\t1\nzfs:1:arcstats:c\t1\n", 2),
            ("zfs:0:arcstats:size\t1\nzfs:0:arcstats:size\t2\n", 2),
        ];
        for (input, line) in cases {
            let e = parse_kstat_p(*input).unwrap_err();
            assert_eq!(e.line, *line, "{input:?}: {e}");
        }
    }
}

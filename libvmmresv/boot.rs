//! The boot-time reservoir setting (RFD 185).
//!
//! Nothing in illumos sizes the reservoir at boot: it starts empty every
//! time (docs/kernel.md, "VM memory and the reservoir"). RFD 185 proposes
//! a boot-time tunable, default 75% of the maximum the vmm subsystem
//! reports (docs/sources.md, "Reservoir size"). This module is the
//! pure part of that: what a setting may say ([`BootSetting`]), what target
//! it means on a host ([`boot_target`]), and the config-file fallback
//! ([`read_config`]). The SMF service (`smf/`) applies it through the
//! rsrvrctl port (`rsrvrctl -b`), which calls this through the C ABI.
//!
//! The setting grammar, after trimming ASCII whitespace:
//! - `N%`, N a whole number 0..=100: that share of the kernel's limit;
//! - a size with a unit, in the library's size syntax
//!   ([`pages::parse_size`]): "12G", "12288M", "1.5T", "4096B";
//! - `default`: 75%.
//!
//! A plain number ("12288") is refused: rsrvrctl reads it as MiB and the
//! size syntax as bytes, and a boot setting must not be guessed.
//! Fractional percentages are refused too (the setting is a whole-percent
//! tunable; "12.5%" is more likely a typo than a wish).
//!
//! Config file (default [`DEFAULT_CONFIG_PATH`]): lines `key=value`, blanks
//! around key and value ignored, `#` starts a comment line, blank lines
//! ignored. Keys: `reservoir_size` (a setting as above) and `chunk_size`
//! (a size with a unit). Everything else — an unknown key, a line without
//! `=`, a key given twice, a bad value — is an error naming the line: the
//! file is read once at boot by a root service, and a typo silently
//! falling back to the default would size the reservoir of every boot
//! wrongly without anyone noticing.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::errno;
use crate::files::{read_limited, FileError, MAX_INPUT_BYTES};
use crate::pages::{self, PAGESIZE};
use crate::policy::headroom::DEFAULT_TARGET_PERCENT;
use crate::status::{Error, Status};

/// The result of this module's pure functions.
pub type Result<T> = core::result::Result<T, Error>;

/// Where the config-file fallback lives unless the caller says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/vmmresv/vmmresv.conf";
/// The config-file key of the reservoir setting (also the SMF property
/// `config/reservoir_size`).
pub const KEY_RESERVOIR_SIZE: &str = "reservoir_size";
/// The config-file key of the resize chunk (SMF `config/chunk_size`).
pub const KEY_CHUNK_SIZE: &str = "chunk_size";
/// The config-file key of the host's run directory (where the one
/// admission ledger of the host lives): an absolute path.
pub const KEY_RUN_DIR: &str = "run_dir";

/// What the boot-time reservoir setting asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootSetting {
    /// That share (0..=100) of the limit the kernel reports.
    Percent(u32),
    /// That many bytes (clamped to the limit by [`boot_target`]).
    Size(u64),
}

impl Default for BootSetting {
    /// RFD 185: 75% of the kernel's limit.
    fn default() -> BootSetting {
        // 75 fits; were it not to, boot_target would refuse the setting.
        BootSetting::Percent(u32::try_from(DEFAULT_TARGET_PERCENT).unwrap_or(u32::MAX))
    }
}

impl BootSetting {
    /// Parse a setting (see the module documentation for the grammar).
    /// `ParseSize` for anything malformed, `Overflow` for a size beyond 64
    /// bits.
    pub fn parse(text: &str) -> Result<BootSetting> {
        let t = text.trim_ascii();
        if t == "default" {
            return Ok(BootSetting::default());
        }
        if let Some(num) = t.strip_suffix('%') {
            // Whole percent only: digits and nothing else (no sign, no
            // blank before the '%', no fraction).
            if num.is_empty() || num.len() > 3 || !num.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::new(Status::ParseSize));
            }
            return match num.parse::<u32>() {
                Ok(p) if p <= 100 => Ok(BootSetting::Percent(p)),
                _ => Err(Error::new(Status::ParseSize)),
            };
        }
        // A unit is required: the last character must be a letter.
        match t.bytes().last() {
            Some(b) if b.is_ascii_alphabetic() => {}
            _ => return Err(Error::new(Status::ParseSize)),
        }
        pages::parse_size(t, None).map(BootSetting::Size)
    }
}

impl fmt::Display for BootSetting {
    /// "75%" or the exact size ("12G"), which [`BootSetting::parse`] reads
    /// back to the same setting.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootSetting::Percent(p) => write!(f, "{}%", p),
            BootSetting::Size(b) => {
                let s = pages::format_size(*b);
                // format_size prints a bare byte count for sizes under 1 KiB;
                // the setting grammar wants a unit.
                if s.bytes().last().is_some_and(|c| c.is_ascii_digit()) {
                    write!(f, "{}B", s)
                } else {
                    f.write_str(&s)
                }
            }
        }
    }
}

/// What a setting means on one host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootTarget {
    /// The setting it was computed from.
    pub setting: BootSetting,
    /// The setting in bytes, before clamping and rounding.
    pub requested_bytes: u64,
    /// The kernel's limit it was computed against.
    pub limit_bytes: u64,
    /// The size to set: requested, clamped to the limit, rounded down to
    /// the chunk (or the page).
    pub target_bytes: u64,
    /// The setting asked for more than the limit and was cut to it.
    pub clamped: bool,
}

/// The target `setting` means for a kernel limit of `limit_bytes`, rounded
/// down to `chunk_bytes` (a multiple of the page; 0 = the page), so every
/// chunk of the resize is whole and the result is page-aligned as the
/// kernel requires. A size above the limit is clamped to it (reported in
/// [`BootTarget::clamped`]) rather than refused: at boot, the most the host
/// allows is the closest thing to what the operator asked for, and the
/// service logs the clamp.
///
/// `Percent(75)` gives exactly [`crate::policy::default_target_for`].
/// `Unaligned` for a chunk that is not a multiple of the page,
/// `InvalidArgument` for a percentage above 100.
pub fn boot_target(setting: BootSetting, limit_bytes: u64, chunk_bytes: u64) -> Result<BootTarget> {
    if chunk_bytes != 0 && !pages::is_aligned(chunk_bytes, PAGESIZE) {
        return Err(Error::new(Status::Unaligned));
    }
    let align = if chunk_bytes == 0 {
        PAGESIZE
    } else {
        chunk_bytes
    };
    let (requested, clamped) = match setting {
        BootSetting::Percent(p) if p > 100 => return Err(Error::new(Status::InvalidArgument)),
        BootSetting::Percent(p) => {
            // Exact in u128: limit * 100 cannot overflow it, and the
            // quotient is at most the limit, so it fits a u64.
            let share = u128::from(limit_bytes).saturating_mul(u128::from(p)) / 100;
            (
                u64::try_from(share).map_err(|_| Error::new(Status::Overflow))?,
                false,
            )
        }
        BootSetting::Size(b) => (b, b > limit_bytes),
    };
    let target = pages::round_down(requested.min(limit_bytes), align)?;
    Ok(BootTarget {
        setting,
        requested_bytes: requested,
        limit_bytes,
        target_bytes: target,
        clamped,
    })
}

/// The settings a config file gives; `None` where it says nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootConfig {
    /// `reservoir_size=`.
    pub reservoir_size: Option<BootSetting>,
    /// `chunk_size=`, in bytes.
    pub chunk_size: Option<u64>,
    /// `run_dir=`: the host's run directory (absolute).
    pub run_dir: Option<PathBuf>,
}

/// At most this many characters of an offending line are kept in a
/// [`ConfigError`], so a hostile file cannot make a huge message.
const ERROR_TEXT_MAX: usize = 120;

/// A config file that could not be used: which file, which line (1-based;
/// 0 for the file as a whole, e.g. unreadable), what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number, or 0.
    pub line: usize,
    /// The offending line (shortened), empty for line 0.
    pub text: String,
    /// What is wrong with it.
    pub why: String,
    /// The status the C ABI would report.
    pub error: Error,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.why)
        } else {
            write!(
                f,
                "{}: line {}: {}: {:?}",
                self.path.display(),
                self.line,
                self.why,
                self.text
            )
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        e.error
    }
}

/// Parse the text of a config file (`path` only names it in errors).
pub fn parse_config(path: &Path, text: &str) -> core::result::Result<BootConfig, ConfigError> {
    let mut cfg = BootConfig::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i.saturating_add(1);
        let err = |why: String, error: Error| ConfigError {
            path: path.to_path_buf(),
            line,
            text: raw.chars().take(ERROR_TEXT_MAX).collect(),
            why,
            error,
        };
        let l = raw.trim_ascii();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let Some((key, value)) = l.split_once('=') else {
            return Err(err(
                "not key=value".into(),
                Error::new(Status::InvalidArgument),
            ));
        };
        let (key, value) = (key.trim_ascii(), value.trim_ascii());
        match key {
            KEY_RESERVOIR_SIZE => {
                if cfg.reservoir_size.is_some() {
                    return Err(err(
                        format!("{} given twice", key),
                        Error::new(Status::InvalidArgument),
                    ));
                }
                let s = BootSetting::parse(value).map_err(|e| {
                    err(
                        format!(
                            "{}: {} (a whole percentage such as 75%, a size with a unit such as 12G, or default)",
                            key,
                            e.status()
                        ),
                        e,
                    )
                })?;
                cfg.reservoir_size = Some(s);
            }
            KEY_CHUNK_SIZE => {
                if cfg.chunk_size.is_some() {
                    return Err(err(
                        format!("{} given twice", key),
                        Error::new(Status::InvalidArgument),
                    ));
                }
                // The same "unit required" rule as the setting.
                let c = match BootSetting::parse(value) {
                    Ok(BootSetting::Size(b)) => Ok(b),
                    Ok(_) => Err(Error::new(Status::ParseSize)),
                    Err(e) => Err(e),
                }
                .map_err(|e| {
                    err(
                        format!("{}: {} (a size with a unit such as 1G)", key, e.status()),
                        e,
                    )
                })?;
                cfg.chunk_size = Some(c);
            }
            KEY_RUN_DIR => {
                if cfg.run_dir.is_some() {
                    return Err(err(
                        format!("{} given twice", key),
                        Error::new(Status::InvalidArgument),
                    ));
                }
                if !value.starts_with('/') {
                    return Err(err(
                        format!("{}: not an absolute path", key),
                        Error::new(Status::InvalidArgument),
                    ));
                }
                cfg.run_dir = Some(PathBuf::from(value));
            }
            _ => {
                return Err(err(
                    format!(
                        "unknown key {:?} (known: {}, {}, {})",
                        key, KEY_RESERVOIR_SIZE, KEY_CHUNK_SIZE, KEY_RUN_DIR
                    ),
                    Error::new(Status::InvalidArgument),
                ))
            }
        }
    }
    Ok(cfg)
}

/// Read a config file. A missing file is `Ok(None)` (the fallback is
/// optional); an unreadable or malformed one is an error naming the file
/// and the line.
pub fn read_config_file(path: &Path) -> core::result::Result<Option<BootConfig>, ConfigError> {
    let fail = |why: String, error: Error| ConfigError {
        path: path.to_path_buf(),
        line: 0,
        text: String::new(),
        why,
        error,
    };
    // Bounded like every text input (a config path pointing at /dev/zero
    // must not exhaust memory).
    let bytes = match read_limited(path) {
        Ok(b) => b,
        Err(FileError::Io {
            errno: Some(libc::ENOENT),
            ..
        }) => return Ok(None),
        Err(FileError::TooLarge { .. }) => {
            return Err(fail(
                format!("larger than {} bytes", MAX_INPUT_BYTES),
                Error::new(Status::InvalidArgument),
            ))
        }
        Err(FileError::Io { errno, .. }) => {
            let n = errno.unwrap_or(libc::EIO);
            return Err(fail(
                format!("cannot read: {}", std::io::Error::from_raw_os_error(n)),
                errno::file_error(Some(n)),
            ));
        }
        Err(e) => return Err(fail(e.to_string(), Error::from(e))),
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(
            format!("not UTF-8 text (at byte {})", e.utf8_error().valid_up_to()),
            Error::new(Status::InvalidArgument),
        )
    })?;
    parse_config(path, &text).map(Some)
}

/// The reservoir setting of a config file: `Ok(None)` if the file is
/// missing or has no `reservoir_size` line.
pub fn read_config(path: &Path) -> core::result::Result<Option<BootSetting>, ConfigError> {
    Ok(read_config_file(path)?.and_then(|c| c.reservoir_size))
}

/// The host's run directory as the config file ([`DEFAULT_CONFIG_PATH`])
/// sets it: None if the file or the key is absent. A file that cannot be
/// read or parsed is its error — the ledger's place is not guessed.
pub fn configured_run_dir() -> core::result::Result<Option<PathBuf>, ConfigError> {
    Ok(read_config_file(Path::new(DEFAULT_CONFIG_PATH))?.and_then(|c| c.run_dir))
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
    use crate::policy::default_target_for;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn parse(s: &str) -> core::result::Result<BootSetting, Status> {
        BootSetting::parse(s).map_err(|e| e.status())
    }

    #[test]
    fn boot_setting_grammar() {
        assert_eq!(parse("75%"), Ok(BootSetting::Percent(75)));
        assert_eq!(parse(" \t0%\n"), Ok(BootSetting::Percent(0)));
        assert_eq!(parse("100%"), Ok(BootSetting::Percent(100)));
        assert_eq!(parse("007%"), Ok(BootSetting::Percent(7)));
        assert_eq!(parse("default"), Ok(BootSetting::Percent(75)));
        assert_eq!(BootSetting::default(), BootSetting::Percent(75));
        assert_eq!(parse("4G"), Ok(BootSetting::Size(4 * GIB)));
        assert_eq!(parse(" 12288M "), Ok(BootSetting::Size(12 * GIB)));
        assert_eq!(parse("1.5GiB"), Ok(BootSetting::Size(GIB + GIB / 2)));
        assert_eq!(parse("4096B"), Ok(BootSetting::Size(4096)));
        assert_eq!(parse("0G"), Ok(BootSetting::Size(0)));
        for bad in [
            "", " ", "%", "101%", "1000%", "-5%", "+5%", "12.5%", "75 %", "75%%", "12288", "0",
            "12 G", "12X", "G", "abc", "Default", "75%x", "0x10G",
        ] {
            assert_eq!(parse(bad), Err(Status::ParseSize), "{:?}", bad);
        }
        assert_eq!(parse("16E"), Err(Status::Overflow));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            BootSetting::Percent(0),
            BootSetting::Percent(75),
            BootSetting::Size(0),
            BootSetting::Size(512),
            BootSetting::Size(4 * GIB),
            BootSetting::Size(GIB + 4096),
        ] {
            assert_eq!(BootSetting::parse(&s.to_string()), Ok(s), "{}", s);
        }
        assert_eq!(BootSetting::Percent(75).to_string(), "75%");
        assert_eq!(BootSetting::Size(12 * GIB).to_string(), "12G");
    }

    #[test]
    fn percent_75_is_the_reservoir_default() {
        for limit in [0, 4095, 16 * GIB, 16_350_203_084, 98_188_804_915, u64::MAX] {
            for chunk in [0, 4096, 2 * MIB, GIB, 3 * GIB / 2] {
                let t = boot_target(BootSetting::default(), limit, chunk).unwrap();
                assert_eq!(
                    Ok(t.target_bytes),
                    default_target_for(limit, chunk),
                    "limit {} chunk {}",
                    limit,
                    chunk
                );
                assert!(!t.clamped);
            }
        }
    }

    #[test]
    fn targets_round_down_and_clamp() {
        // The emulated 16 GiB host: limit 15592 MiB and a bit.
        let limit = 16_350_203_084;
        let t = boot_target(BootSetting::Percent(100), limit, 0).unwrap();
        assert_eq!(t.target_bytes, limit / 4096 * 4096);
        assert!(!t.clamped);
        let t = boot_target(BootSetting::Percent(0), limit, GIB).unwrap();
        assert_eq!(t.target_bytes, 0);
        let t = boot_target(BootSetting::Size(4 * GIB), limit, GIB).unwrap();
        assert_eq!((t.target_bytes, t.clamped), (4 * GIB, false));
        // Rounded down to the chunk, not clamped.
        let t = boot_target(BootSetting::Size(4 * GIB + 5 * MIB), limit, GIB).unwrap();
        assert_eq!((t.target_bytes, t.clamped), (4 * GIB, false));
        assert_eq!(t.requested_bytes, 4 * GIB + 5 * MIB);
        // More than the limit: clamped, then rounded down.
        let t = boot_target(BootSetting::Size(32 * GIB), limit, GIB).unwrap();
        assert_eq!((t.target_bytes, t.clamped), (15 * GIB, true));
        assert_eq!((t.requested_bytes, t.limit_bytes), (32 * GIB, limit));
        let t = boot_target(BootSetting::Size(u64::MAX), u64::MAX, 0).unwrap();
        assert_eq!(t.target_bytes, u64::MAX / 4096 * 4096);
        assert!(!t.clamped);
        // Exactly the limit is not a clamp.
        let t = boot_target(BootSetting::Size(8 * GIB), 8 * GIB, 0).unwrap();
        assert_eq!((t.target_bytes, t.clamped), (8 * GIB, false));
        assert_eq!(
            boot_target(BootSetting::Percent(75), limit, 4095)
                .unwrap_err()
                .status(),
            Status::Unaligned
        );
        assert_eq!(
            boot_target(BootSetting::Percent(101), limit, 0)
                .unwrap_err()
                .status(),
            Status::InvalidArgument
        );
    }

    fn cfg(text: &str) -> core::result::Result<BootConfig, ConfigError> {
        parse_config(Path::new("/etc/vmmresv/vmmresv.conf"), text)
    }

    #[test]
    fn config_file_grammar() {
        assert_eq!(cfg(""), Ok(BootConfig::default()));
        let c = cfg("# boot-time reservoir\n\n  reservoir_size = 60% \nchunk_size=1G\n").unwrap();
        assert_eq!(c.reservoir_size, Some(BootSetting::Percent(60)));
        assert_eq!(c.chunk_size, Some(GIB));
        assert_eq!(
            cfg("reservoir_size=4G\r\n").unwrap().reservoir_size,
            Some(BootSetting::Size(4 * GIB))
        );
        let e = cfg("# ok\nreservoir_size=12288\n").unwrap_err();
        assert_eq!((e.line, e.error.status()), (2, Status::ParseSize));
        assert_eq!(e.text, "reservoir_size=12288");
        let shown = e.to_string();
        assert!(
            shown.starts_with("/etc/vmmresv/vmmresv.conf: line 2: reservoir_size: invalid size"),
            "{}",
            shown
        );
        let e = cfg("reservoir_sise=50%\n").unwrap_err();
        assert_eq!((e.line, e.error.status()), (1, Status::InvalidArgument));
        assert!(e.why.contains("unknown key \"reservoir_sise\""), "{}", e);
        let e = cfg("\n\njust words\n").unwrap_err();
        assert_eq!((e.line, e.why.as_str()), (3, "not key=value"));
        let e = cfg("reservoir_size=50%\nreservoir_size=60%\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.why.contains("twice"));
        let e = cfg("chunk_size=50%\n").unwrap_err();
        assert_eq!(e.error.status(), Status::ParseSize);
        let e = cfg("chunk_size=default\n").unwrap_err();
        assert_eq!(e.error.status(), Status::ParseSize);
        let long = format!("x{}", "y".repeat(1000));
        assert_eq!(cfg(&long).unwrap_err().text.chars().count(), ERROR_TEXT_MAX);
    }

    #[test]
    #[cfg_attr(miri, ignore = "reads the file system")]
    fn config_file_reading() {
        let dir = std::env::temp_dir().join(format!("vmmresv-boot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.conf");
        assert_eq!(read_config(&missing), Ok(None));
        let p = dir.join("vmmresv.conf");
        std::fs::write(&p, "chunk_size=2M\n").unwrap();
        assert_eq!(read_config(&p), Ok(None));
        assert_eq!(
            read_config_file(&p).unwrap().unwrap().chunk_size,
            Some(2 * MIB)
        );
        std::fs::write(&p, "reservoir_size=4G\n").unwrap();
        assert_eq!(read_config(&p), Ok(Some(BootSetting::Size(4 * GIB))));
        std::fs::write(&p, b"reservoir_size=4G\xff\n").unwrap();
        let e = read_config(&p).unwrap_err();
        assert_eq!(e.line, 0);
        assert!(e.to_string().contains("not UTF-8"), "{}", e);
        // A directory where the file should be: unreadable, an Io error.
        let e = read_config(&dir).unwrap_err();
        assert_eq!(e.error.status(), Status::Io);
        // Larger than any text input may be: refused, not read whole.
        let big = vec![b'#'; usize::try_from(MAX_INPUT_BYTES).unwrap() + 1];
        std::fs::write(&p, big).unwrap();
        let e = read_config(&p).unwrap_err();
        assert_eq!(e.error.status(), Status::InvalidArgument);
        assert!(e.to_string().contains("larger than"), "{}", e);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

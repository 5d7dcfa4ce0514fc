//! What can go wrong in the ARC module, with enough detail to act on.
//!
//! [`ParseError`] names the offending line of an arcstats, `kstat -p` or
//! `::memstat` text (number and text), so an operator can find it.
//! [`ArcError`] adds the file-system side (which path, which errno) and the
//! two refusals of the apply step (one of them an [`ArcMaxRejection`]).
//! Both convert into the crate-wide [`Error`] for the C ABI; the detail is
//! then reduced to a [`Status`].

use std::fmt;
use std::path::PathBuf;

use super::platform::Platform;
use crate::errno;
use crate::files::FileError;
use crate::status::{Error, Status};

/// At most this many characters of an offending line are kept in a
/// [`ParseError`]: enough to recognise the line, and a hostile multi-megabyte
/// "line" does not become a multi-megabyte error message.
pub const PARSE_ERROR_TEXT_MAX: usize = 120;

/// Malformed arcstats / `kstat -p` / `::memstat` text.
///
/// `line` counts from 1; 0 means the input as a whole (empty, truncated, or
/// missing a required part). `text` is the line as read (lossily decoded if
/// it was not UTF-8, cut to [`PARSE_ERROR_TEXT_MAX`] characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number; 0 for the input as a whole.
    pub line: usize,
    /// The offending line (possibly shortened).
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl ParseError {
    /// An error about line `line` (1-based) whose text is `text`.
    pub(crate) fn at(line: usize, text: &str, why: &'static str) -> ParseError {
        ParseError {
            line,
            text: text.chars().take(PARSE_ERROR_TEXT_MAX).collect(),
            why,
        }
    }

    /// An error about line `line` whose bytes are not UTF-8.
    pub(crate) fn at_bytes(line: usize, bytes: &[u8], why: &'static str) -> ParseError {
        ParseError::at(line, &String::from_utf8_lossy(bytes), why)
    }

    /// An error about the input as a whole.
    pub(crate) fn whole(why: &'static str) -> ParseError {
        ParseError {
            line: 0,
            text: String::new(),
            why,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.why)
        } else {
            write!(f, "line {}: {}: {:?}", self.line, self.why, self.text)
        }
    }
}

impl std::error::Error for ParseError {}

/// Malformed text has its own status, so a caller (zhyve) can tell
/// "arcstats unreadable, fall back" from its own bad argument; the line
/// detail lives in the Rust error.
impl From<ParseError> for Error {
    fn from(_: ParseError) -> Error {
        Error::new(Status::MalformedInput)
    }
}

/// Why a `zfs_arc_max` value was not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArcMaxRejection {
    /// 0 asks for the default, which OpenZFS does not restore while loaded.
    Zero,
    /// Below `MIN_ARC_MAX`.
    BelowMinimum {
        /// The value asked for.
        value: u64,
        /// OpenZFS `MIN_ARC_MAX` (64 MiB).
        minimum: u64,
    },
    /// Not below all memory.
    NotBelowAllMemory {
        /// The value asked for.
        value: u64,
        /// `arc_all_memory()` (arcstats `memory_all_bytes`).
        all_memory: u64,
    },
    /// Not above `arc_c_min`.
    NotAboveArcCMin {
        /// The value asked for.
        value: u64,
        /// arcstats `c_min`.
        arc_c_min: u64,
    },
}

impl fmt::Display for ArcMaxRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArcMaxRejection::Zero => write!(
                f,
                "zfs_arc_max 0 (default) cannot be restored while the zfs module is loaded"
            ),
            ArcMaxRejection::BelowMinimum { value, minimum } => write!(
                f,
                "zfs_arc_max {value} is below OpenZFS's minimum of {minimum} and would be ignored"
            ),
            ArcMaxRejection::NotBelowAllMemory { value, all_memory } => write!(
                f,
                "zfs_arc_max {value} is not below all memory ({all_memory}) and would be ignored"
            ),
            ArcMaxRejection::NotAboveArcCMin { value, arc_c_min } => write!(
                f,
                "zfs_arc_max {value} is not above arc_c_min ({arc_c_min}) and would be ignored"
            ),
        }
    }
}

impl std::error::Error for ArcMaxRejection {}

/// An error of the ARC readers, the wait and the apply step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArcError {
    /// The text read is malformed.
    Parse(ParseError),
    /// Reading or writing `path` failed (`errno` when the OS gave one).
    Io {
        /// The file involved.
        path: PathBuf,
        /// The OS error number, if any.
        errno: Option<i32>,
    },
    /// The file is larger than any arcstats / memstat / parameter file can
    /// be ([`crate::files::MAX_INPUT_BYTES`]); it was not parsed.
    TooLarge {
        /// The file involved.
        path: PathBuf,
    },
    /// The platform has no run-time ARC limit this library can set
    /// (illumos: `zfs_arc_max` is read from /etc/system at boot only).
    Unsupported {
        /// The platform asked about.
        platform: Platform,
        /// What is not supported there.
        what: &'static str,
    },
    /// A `zfs_arc_max` value OpenZFS would silently ignore; nothing was
    /// written.
    ArcMaxRejected(ArcMaxRejection),
    /// An arithmetic or argument error from the page module (`Overflow`,
    /// `InvalidArgument`).
    Status(Error),
}

impl ArcError {
    pub(crate) fn io(path: &std::path::Path, e: &std::io::Error) -> ArcError {
        ArcError::Io {
            path: path.to_path_buf(),
            errno: e.raw_os_error(),
        }
    }
}

impl fmt::Display for ArcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArcError::Parse(e) => write!(f, "{e}"),
            ArcError::Io { path, errno } => match errno {
                Some(n) => write!(
                    f,
                    "{}: {}",
                    path.display(),
                    std::io::Error::from_raw_os_error(*n)
                ),
                None => write!(f, "{}: I/O error", path.display()),
            },
            ArcError::TooLarge { path } => {
                write!(
                    f,
                    "{}: too large for an ARC statistics file",
                    path.display()
                )
            }
            ArcError::Unsupported { platform, what } => {
                write!(f, "{what} is not supported on {platform:?}")
            }
            ArcError::ArcMaxRejected(r) => write!(f, "{r}"),
            ArcError::Status(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ArcError {}

impl From<ParseError> for ArcError {
    fn from(e: ParseError) -> ArcError {
        ArcError::Parse(e)
    }
}

impl From<Error> for ArcError {
    fn from(e: Error) -> ArcError {
        ArcError::Status(e)
    }
}

/// A file read through [`crate::files::read_limited`]: the same path and
/// errno, in the ARC's own words.
impl From<FileError> for ArcError {
    fn from(e: FileError) -> ArcError {
        match e {
            FileError::Io { path, errno } => ArcError::Io { path, errno },
            FileError::TooLarge { path } => ArcError::TooLarge { path },
            e @ FileError::Lock { .. } => ArcError::Status(Error::from(e)),
        }
    }
}

impl From<ArcMaxRejection> for ArcError {
    fn from(r: ArcMaxRejection) -> ArcError {
        ArcError::ArcMaxRejected(r)
    }
}

impl From<ArcError> for Error {
    fn from(e: ArcError) -> Error {
        match e {
            ArcError::Parse(p) => Error::from(p),
            ArcError::Io { errno, .. } => errno::file_error(errno),
            ArcError::TooLarge { .. } => Error::new(Status::InvalidArgument),
            ArcError::Unsupported { .. } => Error::new(Status::Unsupported),
            // The value itself is the problem: an invalid argument, not a
            // refusal for lack of room.
            ArcError::ArcMaxRejected(_) => Error::new(Status::InvalidArgument),
            ArcError::Status(s) => s,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_text_is_bounded_and_displayed() {
        let long = "x".repeat(10_000);
        let e = ParseError::at(7, &long, "bad");
        assert_eq!(e.text.chars().count(), PARSE_ERROR_TEXT_MAX);
        assert_eq!(e.line, 7);
        assert!(e.to_string().starts_with("line 7: bad: \"xxx"));
        assert_eq!(ParseError::whole("empty").to_string(), "empty");
        let b = ParseError::at_bytes(2, b"a\xffb", "not UTF-8");
        assert_eq!(b.text, "a\u{fffd}b");
    }

    #[test]
    fn conversions_to_status() {
        let p = ParseError::whole("x");
        assert_eq!(Error::from(p.clone()).status(), Status::MalformedInput);
        let io = ArcError::Io {
            path: PathBuf::from("/x"),
            errno: Some(2),
        };
        let e = Error::from(io);
        assert_eq!((e.status(), e.errno()), (Status::Io, Some(2)));
        assert_eq!(
            Error::from(ArcError::Status(Error::new(Status::Overflow))).status(),
            Status::Overflow
        );
        assert_eq!(
            Error::from(ArcError::from(p)).status(),
            Status::MalformedInput
        );
        let u = ArcError::Unsupported {
            platform: crate::arc::platform::Platform::Illumos,
            what: "zfs_arc_max",
        };
        assert_eq!(Error::from(u).status(), Status::Unsupported);
    }
}

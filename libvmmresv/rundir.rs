//! The run directory: where run-time state lives (the resize lock, the
//! shared ledger, the ARC apply step's lock and remembered value), and
//! where that setting came from.
//!
//! One host has one ledger, so the place is a host-wide setting: `run_dir=`
//! in the host's config file ([`crate::boot`]), else [`DEFAULT_RUN_DIR`].
//! The environment or an argument overrides it for one process only, and
//! the origin is reported so a mis-set one is seen.

use std::path::PathBuf;

use crate::boot;
use crate::status::Error;

/// Result of the run directory's calls.
pub type Result<T> = core::result::Result<T, Error>;

/// Where run-time state lives unless the config file, `VMMRESV_RUNDIR` or
/// an explicit path says otherwise.
pub const DEFAULT_RUN_DIR: &str = "/var/run/vmmresv";
/// Environment variable that overrides [`DEFAULT_RUN_DIR`].
pub const RUN_DIR_ENV: &str = "VMMRESV_RUNDIR";

/// The run directory of [`run_dir_setting`], or [`DEFAULT_RUN_DIR`] if the
/// config file cannot be used.
pub fn run_dir() -> PathBuf {
    run_dir_setting()
        .map(|(d, _)| d)
        .unwrap_or_else(|_| PathBuf::from(DEFAULT_RUN_DIR))
}

/// Where a run directory (and so the admission ledger in it) came from.
/// One host has one ledger: the host-wide setting (the config file, or the
/// default) is what every launcher must share; an argument or the
/// environment overrides it for one process only, and is reported so a
/// mis-set one is seen.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunDirOrigin {
    /// The built-in default ([`DEFAULT_RUN_DIR`]).
    Default = 0,
    /// `run_dir=` in the host's config file.
    Config = 1,
    /// The [`RUN_DIR_ENV`] environment variable.
    Environment = 2,
    /// An argument of the call that opened the handle.
    Argument = 3,
}

// `name`: the name reports use.
crate::status::c_enum!(RunDirOrigin, names: name -> &'static str {
    Default => "default",
    Config => "config",
    Environment => "environment",
    Argument => "argument",
});

impl RunDirOrigin {
    /// Whether this is the host-wide setting rather than an override.
    pub fn host_wide(self) -> bool {
        matches!(self, RunDirOrigin::Default | RunDirOrigin::Config)
    }
}

/// The run directory and where it came from: the environment
/// ([`RUN_DIR_ENV`]), else `run_dir=` in the host's config file, else
/// [`DEFAULT_RUN_DIR`]. A config file that cannot be read or parsed is an
/// error, never a silent default (two ledgers for one host protect
/// nothing).
pub fn run_dir_setting() -> Result<(PathBuf, RunDirOrigin)> {
    if let Some(d) = std::env::var_os(RUN_DIR_ENV) {
        if !d.is_empty() {
            return Ok((PathBuf::from(d), RunDirOrigin::Environment));
        }
    }
    Ok(match boot::configured_run_dir().map_err(Error::from)? {
        Some(d) => (d, RunDirOrigin::Config),
        None => (PathBuf::from(DEFAULT_RUN_DIR), RunDirOrigin::Default),
    })
}

//! Applying an ARC target: Linux `zfs_arc_max` (the pure part and the
//! parameter file's read/write; remembering and restoring the original is
//! the caller's).
//!
//! OpenZFS applies a new `zfs_arc_max` only if it is **≥ 64 MiB**
//! (`MIN_ARC_MAX`, = `DMU_MAX_ACCESS`), **below all memory**
//! (`arc_all_memory()`, arcstats `memory_all_bytes`) and **above
//! `arc_c_min`**; otherwise it logs "ignoring tunable zfs_arc_max" and keeps
//! the old limit (`arc_tuning_update()` in `module/zfs/arc.c`;
//! docs/kernel.md, "Changing the ARC at run time"). Writing such a value
//! would look like success and change nothing, so it is refused here with
//! the reason instead. 0 means
//! "default" and cannot be restored while the module is loaded (zfs.4);
//! to undo a change, write back the `c_max` read from arcstats before it.
//!
//! Lowering the limit caps `arc_c` at once, but the ARC shrinks
//! asynchronously: follow with [`super::wait()`].
//!
//! illumos has no run-time `zfs_arc_max` (it is read from /etc/system in
//! `arc_init()`); [`ZfsArcMax::for_platform`] reports that as
//! [`ArcError::Unsupported`].

use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::{ArcError, ArcMaxRejection, ParseError};
use super::guard::TargetReport;
use super::platform::Platform;
use super::snapshot::HostSnapshot;
use super::text::{self, parse_u64};
use crate::files;

/// The Linux module parameter, relative to the root directory.
pub const ZFS_ARC_MAX_PARAM: &str = "sys/module/zfs/parameters/zfs_arc_max";

/// OpenZFS `MIN_ARC_MAX` (64 MiB): a smaller `zfs_arc_max` is ignored.
pub const MIN_ARC_MAX: u64 = 64 << 20;

/// What OpenZFS checks a new `zfs_arc_max` against (from Linux arcstats).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinuxArcFacts {
    /// `arc_all_memory()`: arcstats `memory_all_bytes`.
    pub all_memory: u64,
    /// arcstats `c_min`.
    pub arc_c_min: u64,
}

impl LinuxArcFacts {
    /// From a Linux arcstats snapshot (`None` if it lacks either field).
    pub fn from_snapshot(s: &HostSnapshot) -> Option<LinuxArcFacts> {
        Some(LinuxArcFacts {
            all_memory: s.physmem?,
            arc_c_min: s.arc_c_min?,
        })
    }
}

/// `value` if OpenZFS would apply it as `zfs_arc_max`, else why not.
pub fn check_zfs_arc_max(value: u64, facts: &LinuxArcFacts) -> Result<u64, ArcMaxRejection> {
    if value == 0 {
        return Err(ArcMaxRejection::Zero);
    }
    if value < MIN_ARC_MAX {
        return Err(ArcMaxRejection::BelowMinimum {
            value,
            minimum: MIN_ARC_MAX,
        });
    }
    if value >= facts.all_memory {
        return Err(ArcMaxRejection::NotBelowAllMemory {
            value,
            all_memory: facts.all_memory,
        });
    }
    if value <= facts.arc_c_min {
        return Err(ArcMaxRejection::NotAboveArcCMin {
            value,
            arc_c_min: facts.arc_c_min,
        });
    }
    Ok(value)
}

/// The `zfs_arc_max` to write for an ARC target: the target itself, if
/// OpenZFS would apply it.
///
/// A target clamped to `arc_c_min` is refused here (OpenZFS wants `>
/// arc_c_min`): the ARC cannot be limited that far; the caller can still
/// wait for it to shrink toward its floor.
pub fn zfs_arc_max_for(
    target: &TargetReport,
    facts: &LinuxArcFacts,
) -> Result<u64, ArcMaxRejection> {
    check_zfs_arc_max(target.target_bytes, facts)
}

/// The `zfs_arc_max` module parameter file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZfsArcMax {
    path: PathBuf,
}

impl ZfsArcMax {
    /// `<root>/sys/module/zfs/parameters/zfs_arc_max` (root `/` on a host).
    pub fn linux<P: AsRef<Path>>(root: P) -> ZfsArcMax {
        ZfsArcMax {
            path: root.as_ref().join(ZFS_ARC_MAX_PARAM),
        }
    }

    /// The parameter for `platform`: Linux only; illumos and others are
    /// [`ArcError::Unsupported`].
    pub fn for_platform<P: AsRef<Path>>(
        platform: Platform,
        root: P,
    ) -> Result<ZfsArcMax, ArcError> {
        match platform {
            Platform::Linux => Ok(ZfsArcMax::linux(root)),
            Platform::Illumos | Platform::Other => Err(ArcError::Unsupported {
                platform,
                what: "changing zfs_arc_max at run time",
            }),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current value (0 = the module's default).
    pub fn read(&self) -> Result<u64, ArcError> {
        let bytes = files::read_limited(&self.path)?;
        let mut lines = text::lines(&bytes);
        let first = lines
            .next()
            .transpose()?
            .ok_or_else(|| ParseError::whole("empty zfs_arc_max"))?;
        let value =
            parse_u64(first.text.trim_ascii()).ok_or_else(|| first.err("not a byte count"))?;
        for rest in lines {
            let rest = rest?;
            if !rest.is_blank() {
                return Err(rest.err("more than one value").into());
            }
        }
        Ok(value)
    }

    /// Writes `value` after [`check_zfs_arc_max`]; nothing is written if the
    /// check fails. One `write(2)` of the decimal value and a newline, as
    /// `echo N > zfs_arc_max` does; the file is never created.
    pub fn write(&self, value: u64, facts: &LinuxArcFacts) -> Result<(), ArcError> {
        let value = check_zfs_arc_max(value, facts)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&self.path)
            .map_err(|e| ArcError::io(&self.path, &e))?;
        f.write_all(format!("{value}\n").as_bytes())
            .map_err(|e| ArcError::io(&self.path, &e))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::arc::guard::{target, ArcLimits, Ceiling, TargetInputs};

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn facts() -> LinuxArcFacts {
        LinuxArcFacts {
            all_memory: 16 * GIB,
            arc_c_min: 512 * MIB,
        }
    }

    #[test]
    fn the_checks_openzfs_makes() {
        let f = facts();
        assert_eq!(check_zfs_arc_max(0, &f), Err(ArcMaxRejection::Zero));
        assert_eq!(
            check_zfs_arc_max(MIN_ARC_MAX - 1, &f),
            Err(ArcMaxRejection::BelowMinimum {
                value: MIN_ARC_MAX - 1,
                minimum: MIN_ARC_MAX
            })
        );
        assert!(matches!(
            check_zfs_arc_max(16 * GIB, &f),
            Err(ArcMaxRejection::NotBelowAllMemory { .. })
        ));
        assert_eq!(check_zfs_arc_max(16 * GIB - 1, &f), Ok(16 * GIB - 1));
        assert!(matches!(
            check_zfs_arc_max(512 * MIB, &f),
            Err(ArcMaxRejection::NotAboveArcCMin { .. })
        ));
        assert_eq!(check_zfs_arc_max(512 * MIB + 1, &f), Ok(512 * MIB + 1));
        // With a tiny c_min, 64 MiB is the binding floor.
        let small = LinuxArcFacts {
            all_memory: GIB,
            arc_c_min: 32 * MIB,
        };
        assert_eq!(check_zfs_arc_max(MIN_ARC_MAX, &small), Ok(MIN_ARC_MAX));
        assert!(ArcMaxRejection::Zero
            .to_string()
            .contains("cannot be restored"));
    }

    #[test]
    fn a_target_clamped_to_c_min_is_not_written() {
        let f = facts();
        let t = target(&TargetInputs {
            limits: ArcLimits {
                arc_c_min: f.arc_c_min,
                arc_c_max: 8 * GIB,
            },
            ceiling: Ceiling::ArcCMax,
            arc_virt_machine_reserved: (8 * GIB) / 4096,
            slack: 0,
        })
        .unwrap();
        assert_eq!(t.target_bytes, f.arc_c_min);
        assert!(matches!(
            zfs_arc_max_for(&t, &f),
            Err(ArcMaxRejection::NotAboveArcCMin { .. })
        ));
    }

    #[test]
    fn illumos_is_unsupported() {
        let e = ZfsArcMax::for_platform(Platform::Illumos, "/").unwrap_err();
        assert!(matches!(
            e,
            ArcError::Unsupported {
                platform: Platform::Illumos,
                ..
            }
        ));
        assert!(ZfsArcMax::for_platform(Platform::Linux, "/x").is_ok());
        assert_eq!(
            ZfsArcMax::linux("/").path(),
            Path::new("/sys/module/zfs/parameters/zfs_arc_max")
        );
    }
}

//! Which platform the library runs on, as far as the ARC is concerned:
//! where `zfs_arc_max` can be changed at run time and where it cannot.

/// The platforms the apply step knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    /// Linux with OpenZFS: `zfs_arc_max` is writable at run time.
    Linux,
    /// illumos: ARC limits are boot-time tunables.
    Illumos,
    /// Anything else (FreeBSD has `vfs.zfs.arc.max`, a sysctl this library
    /// does not drive).
    Other,
}

impl Platform {
    /// The platform this library was built for.
    pub const fn current() -> Platform {
        if cfg!(target_os = "linux") {
            Platform::Linux
        } else if cfg!(any(target_os = "illumos", target_os = "solaris")) {
            Platform::Illumos
        } else {
            Platform::Other
        }
    }
}

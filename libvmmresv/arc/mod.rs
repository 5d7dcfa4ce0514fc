//! The ZFS ARC and VM memory (OS-8005, "bhyve memory pressure needs to
//! target ARC better"). The kernel and OpenZFS facts used here, with their
//! sources: docs/kernel.md, from "OS-8005: the per-VM ARC ledger" on.
//!
//! A VM started without the VMM reservoir takes its memory from whatever
//! the host has free, and on a ZFS host most of that is the ARC, which
//! shrinks only when asked and only asynchronously. This module is the pure
//! part of asking it properly:
//!
//! - [`guard`](mod@guard): the arc_c_min guard (`arc_virt_machine_reserved`
//!   in pages, compared in like units), the ARC target the reservations
//!   imply, the ARC's default limits on illumos and OpenZFS/Linux, and a
//!   VM's demand (guest + `page_t` + overhead, through the page module).
//! - [`arcstats`]: Linux `/proc/spl/kstat/zfs/arcstats` and illumos
//!   `kstat -p zfs:0:arcstats` text; [`ArcReader`] reads either under a
//!   configurable root.
//! - [`memstat`]: `mdb -k ::memstat` tables (aligned or whitespace-collapsed).
//! - [`snapshot`]: [`HostSnapshot`], what any of those sources saw.
//! - [`wait`](mod@wait): waiting for the ARC to reach a target, with a
//!   deadline, a cancellable progress callback and a smoothed shrink rate.
//! - [`apply`]: the `zfs_arc_max` value OpenZFS would accept, and the Linux
//!   parameter file's read and write.
//! - [`platform`]: where `zfs_arc_max` can be set at run time.
//! - [`error`]: [`ParseError`] (naming the line), [`ArcError`] and
//!   [`ArcMaxRejection`].
//!
//! - [`reserve`]: the per-VM reservations themselves, persisted in the
//!   shared ledger's ARC pool ([`crate::ledger`]) (shared file, reclaimed when the owner
//!   dies), checked by the guard, with the target that follows; and
//!   [`apply_linux`](reserve::apply_linux), which writes `zfs_arc_max` and
//!   restores the original when the last reservation is released.
//! - [`durable`]: reservations that outlive their maker, until released or
//!   their VM is gone; [`reservations`]: a handle on a ledger's ARC pool
//!   that needs no reservoir.
//!
//! No `unsafe`, no panics: the crate's lints (`Cargo.toml`) make
//! indexing, unchecked arithmetic, `unwrap`/`expect`/`panic!` and `as`
//! casts errors outside tests, and the parsers are proptested on arbitrary
//! bytes (tests/arc_props.rs).

pub mod apply;
pub mod arcstats;
pub mod durable;
pub mod error;
pub mod guard;
pub mod memstat;
pub mod platform;
pub mod reservations;
pub mod reserve;
pub mod snapshot;
mod text;
pub mod wait;

pub use apply::{check_zfs_arc_max, zfs_arc_max_for, LinuxArcFacts, ZfsArcMax, MIN_ARC_MAX};
pub use arcstats::{parse_kstat_p, parse_linux, ArcReader, Arcstats, KstatNamed, KstatValue};
pub use error::{ArcError, ArcMaxRejection, ParseError};
pub use guard::{
    desfree_slack, guard, illumos_arc_limits, illumos_arc_limits_for_allmem,
    openzfs_linux_arc_limits, openzfs_linux_arc_limits_pre_2_3, target, Admitted, ArcDefaults,
    ArcLimits, Ceiling, Clamp, GuardInputs, Refusal, SwapfsMinfree, TargetInputs, TargetReport,
    VmDemand,
};
pub use memstat::{parse_memstat, read_memstat_file, Memstat, MemstatLine, MemstatRow};
pub use platform::Platform;
pub use snapshot::HostSnapshot;
pub use wait::{
    wait, wait_for_reader, Clock, Flow, ShrinkRate, SystemClock, WaitOptions, WaitOutcome,
    WaitProgress,
};

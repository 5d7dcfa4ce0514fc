//! Who holds a claim: a process, named by pid and start time.
//!
//! A pid alone does not name a process for long: pids are reused, and a
//! dead claimant whose pid went to an unrelated process would keep its
//! memory claimed forever. The start time — fixed for the life of a
//! process, different for its pid's next owner — closes that. A zombie (dead
//! but not yet reaped) counts as dead: it can never commit.
//!
//! Linux: `/proc/<pid>/stat` field 22 (`starttime`, clock ticks since boot)
//! and field 3 (state; `Z`/`X` = dead). illumos: `/proc/<pid>/psinfo`,
//! `pr_start` (a `timestruc_t` at offset 88 of `psinfo_t` on LP64, after ten
//! 32-bit ids, four pointer-sized fields and `pr_ttydev`, `pr_pctcpu`,
//! `pr_pctmem`; illumos-gate `usr/src/uts/common/sys/procfs.h`) and
//! `pr_nlwp == 0` for a zombie.

use std::path::Path;

/// A process identity that survives pid reuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    /// The process id.
    pub pid: u32,
    /// Its start time, in the platform's units (never 0 for a live process
    /// this module read).
    pub start: u64,
}

/// Largest pid the ledger can record (23 bits): Linux's `pid_max` is at
/// most 2^22, illumos's `maxpid` at most 999,999.
pub const MAX_PID: u32 = (1 << 23) - 1;

impl Owner {
    /// This process, read afresh (so a forked child gets its own).
    pub fn current() -> Option<Owner> {
        let pid = std::process::id();
        start_time(pid).map(|start| Owner { pid, start })
    }

    /// Whether this exact process is still running (not a zombie, not a
    /// different process that reused the pid).
    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// Whether any live process has this pid (start time unknown): used only
/// for a claim whose start time was not yet recorded.
pub fn pid_exists(pid: u32) -> bool {
    start_time(pid).is_some()
}

/// The start time of live process `pid`, or None if there is none (or it
/// is a zombie, or /proc cannot be read).
pub fn start_time(pid: u32) -> Option<u64> {
    if pid == 0 || pid > MAX_PID {
        return None;
    }
    start_time_at(Path::new("/proc"), pid)
}

#[cfg(target_os = "linux")]
fn start_time_at(proc_root: &Path, pid: u32) -> Option<u64> {
    let text = std::fs::read(proc_root.join(pid.to_string()).join("stat")).ok()?;
    parse_linux_stat(&text)
}

/// Parse `/proc/<pid>/stat`: the command name (field 2) is in parentheses
/// and may itself contain spaces and ')', so fields are counted from the
/// last ')'.
pub fn parse_linux_stat(text: &[u8]) -> Option<u64> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(text.get(close + 1..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    // fields after ')' start at field 3 (state); starttime is field 22.
    let state = fields.next()?;
    if state == "Z" || state == "X" || state == "x" {
        return None;
    }
    let start: u64 = fields.nth(22 - 4)?.parse().ok()?;
    // A start of 0 is legal for very early processes; shift by one so 0
    // can mean "not recorded" in the ledger.
    start.checked_add(1)
}

#[cfg(any(target_os = "illumos", target_os = "solaris"))]
fn start_time_at(proc_root: &Path, pid: u32) -> Option<u64> {
    let bytes = std::fs::read(proc_root.join(pid.to_string()).join("psinfo")).ok()?;
    parse_psinfo(&bytes)
}

/// Parse the start time out of an LP64 `psinfo_t`.
pub fn parse_psinfo(bytes: &[u8]) -> Option<u64> {
    const PR_NLWP: usize = 4;
    const PR_START: usize = 88;
    let nlwp = i32::from_ne_bytes(bytes.get(PR_NLWP..PR_NLWP + 4)?.try_into().ok()?);
    if nlwp == 0 {
        return None; // zombie
    }
    let sec = i64::from_ne_bytes(bytes.get(PR_START..PR_START + 8)?.try_into().ok()?);
    let nsec = i64::from_ne_bytes(bytes.get(PR_START + 8..PR_START + 16)?.try_into().ok()?);
    let sec = u64::try_from(sec).ok()?;
    let nsec = u64::try_from(nsec).ok()?;
    sec.checked_mul(1_000_000_000)?
        .checked_add(nsec)?
        .checked_add(1)
}

#[cfg(not(any(target_os = "linux", target_os = "illumos", target_os = "solaris")))]
fn start_time_at(_proc_root: &Path, pid: u32) -> Option<u64> {
    // No start time here: fall back to "the pid exists", which pid reuse
    // can fool. Only Linux and illumos are supported hosts.
    // SAFETY: kill with signal 0 only checks for existence.
    let alive = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
    alive.then_some(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        miri,
        ignore = "reads /proc/<pid>/stat of this process: file system access, refused by Miri's isolation"
    )]
    fn this_process_is_alive_and_named_by_start() {
        let me = Owner::current().expect("read our own start time");
        assert!(me.is_alive());
        assert!(me.start > 0);
        let reused = Owner {
            pid: me.pid,
            start: me.start + 1,
        };
        assert!(
            !reused.is_alive(),
            "a different start time is a different process"
        );
    }

    #[test]
    fn missing_and_absurd_pids_are_dead() {
        assert_eq!(start_time(0), None);
        assert_eq!(start_time(MAX_PID + 1), None);
        assert_eq!(start_time(u32::MAX), None);
    }

    #[test]
    fn linux_stat_with_hostile_command_names() {
        let line = b"1234 (a) b) (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(parse_linux_stat(line), Some(987655));
        let zombie =
            b"1234 (x) Z 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(parse_linux_stat(zombie), None);
        assert_eq!(parse_linux_stat(b""), None);
        assert_eq!(parse_linux_stat(b"1 (x) S 1 2"), None);
        assert_eq!(
            parse_linux_stat(b"1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 0 0 1 0 notanumber"),
            None
        );
    }

    #[test]
    fn psinfo_start_and_zombie() {
        let mut b = vec![0u8; 416];
        b[4..8].copy_from_slice(&1i32.to_ne_bytes());
        b[88..96].copy_from_slice(&1_700_000_000i64.to_ne_bytes());
        b[96..104].copy_from_slice(&5i64.to_ne_bytes());
        assert_eq!(parse_psinfo(&b), Some(1_700_000_000 * 1_000_000_000 + 6));
        b[4..8].copy_from_slice(&0i32.to_ne_bytes());
        assert_eq!(parse_psinfo(&b), None);
        assert_eq!(parse_psinfo(&b[..50]), None);
    }
}

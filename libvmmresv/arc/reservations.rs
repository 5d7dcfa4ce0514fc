//! ARC reservations without a reservoir: a handle on the shared ledger's
//! ARC pool for hosts that have ZFS but no `/dev/vmmctl` (KVM guests
//! against the ARC on Proxmox VE or TrueNAS SCALE), and for short-lived
//! programs on any host (a hook script, `vmmresvadm arc`).
//!
//! Reservations made here are durable ([`super::durable`]): they outlive
//! the program that made them, until released or until their VM's
//! existence check says the VM is gone (on reconcile, past a grace). They
//! share the ARC total with the reservations admission handles make on the
//! same ledger file, so the arc_c_min guard sees all of them at once.

use std::path::{Path, PathBuf};

use super::apply::LinuxArcFacts;
use super::durable::{self, DurableReport, VmState};
use super::reserve::{self, Applied, ArcPolicy, Reservation};
use super::TargetReport;
use crate::ledger::file::LedgerFile;
use crate::ledger::{ClaimInfo, Pool, ReconcileReport, World};
use crate::status::{Error, Status};

/// The ARC pool of one ledger file, with the run directory beside it
/// (existence checks, the remembered `zfs_arc_max`, its lock).
#[derive(Debug)]
pub struct ArcReservations {
    file: LedgerFile,
    run_dir: PathBuf,
}

/// One ARC reservation as the ledger records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArcHolding {
    /// The ledger's record of it.
    pub claim: ClaimInfo,
    /// For a durable reservation, what its VM's existence check says now;
    /// `None` for one a process holds (it lives as long as that process).
    pub vm: Option<VmState>,
    /// For a durable reservation, its recorded existence check.
    pub check: Option<PathBuf>,
}

/// What [`ArcReservations::reconcile`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArcReconciliation {
    /// The durable reservations: kept, unknown, freed.
    pub durable: DurableReport,
    /// The whole ledger's reconcile after it (dead holders' claims of
    /// every pool reclaimed, totals checked).
    pub ledger: ReconcileReport,
}

impl ArcReservations {
    /// Open (creating it if missing) the ledger at `path`, a VMM
    /// reservoir ledger (another pool's is INVALID_ARGUMENT); its
    /// directory is the run directory. Checks the ARC total against
    /// the slots, as opening an admission handle does.
    pub fn open(path: &Path) -> Result<ArcReservations, Error> {
        // Absolute once: the run directory must not move with the
        // caller's working directory.
        let path = std::path::absolute(path).map_err(|e| crate::errno::file_io_error(&e))?;
        let path = path.as_path();
        // The host's ARC ledger is a VMM reservoir ledger: a hugetlb
        // pool's holds no ARC reservation (its admissions keep theirs in
        // admission.ledger too), so one named here is refused.
        let file = LedgerFile::open_or_create(path)?;
        match file.ledger().check_total(Pool::Arc) {
            Ok(_) => {}
            Err(e) if e.status() == Status::Busy => {}
            Err(e) => return Err(e),
        }
        let run_dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(ArcReservations { file, run_dir })
    }

    /// The ledger file.
    pub fn ledger_path(&self) -> &Path {
        self.file.path()
    }

    /// The run directory (the ledger's).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Reserve `bytes` of ARC room for VM `uuid`, durable, while the path
    /// `vm_check` says the VM exists ([`durable::reserve`]).
    pub fn hold(
        &self,
        uuid: &[u8; 16],
        bytes: u64,
        policy: &ArcPolicy,
        vm_check: &Path,
    ) -> Result<Reservation, Error> {
        durable::reserve(
            &self.file.ledger(),
            &self.file.world(),
            &self.run_dir,
            uuid,
            bytes,
            policy,
            vm_check,
        )
    }

    /// Release VM `uuid`'s durable reservation; 0 if it has none.
    /// `NotFound` if its reservation is a process's (not durable).
    pub fn drop_hold(&self, uuid: &[u8; 16]) -> Result<u64, Error> {
        durable::release(&self.file.ledger(), &self.run_dir, uuid)
    }

    /// Free the durable reservations whose VM is gone and which are at
    /// least `grace_secs` old, then reconcile the whole ledger (dead
    /// holders' claims).
    pub fn reconcile(&self, grace_secs: u64) -> Result<ArcReconciliation, Error> {
        let world = self.file.world();
        let l = self.file.ledger();
        let durable = durable::reconcile(
            &l,
            &self.run_dir,
            world.origin(),
            world.now_secs(),
            grace_secs,
        )?;
        let ledger = l.reconcile(&world)?;
        Ok(ArcReconciliation { durable, ledger })
    }

    /// Every ARC reservation in the ledger, durable or a process's.
    pub fn list(&self) -> Result<Vec<ArcHolding>, Error> {
        let here = self.file.world().origin();
        Ok(self
            .file
            .ledger()
            .claims()?
            .into_iter()
            .filter(|c| c.pool == Pool::Arc)
            .map(|c| {
                let (vm, check) = if c.durable {
                    let check = durable::recorded_check(&self.run_dir, &c.uuid);
                    let vm = durable::vm_state_from(&self.run_dir, &c, here);
                    (Some(vm), check)
                } else {
                    (None, None)
                };
                ArcHolding {
                    claim: c,
                    vm,
                    check,
                }
            })
            .collect())
    }

    /// All ARC reservations of the ledger now (bytes).
    pub fn reserved_bytes(&self) -> u64 {
        reserve::reserved_bytes(&self.file.ledger())
    }

    /// The ARC target the reservations imply now.
    pub fn target(&self, policy: &ArcPolicy) -> Result<TargetReport, Error> {
        reserve::current_target(&self.file.ledger(), policy)
    }

    /// Make Linux OpenZFS's `zfs_arc_max` (under `root`) follow the ARC
    /// pool ([`reserve::apply_linux`]), remembering the original in the
    /// run directory.
    pub fn apply_linux(
        &self,
        policy: &ArcPolicy,
        facts: &LinuxArcFacts,
        root: &Path,
    ) -> Result<Applied, Error> {
        reserve::apply_linux(&self.file.ledger(), policy, facts, root, &self.run_dir)
    }
}

#[cfg(all(test, not(loom), not(miri)))]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use crate::arc::guard::{ArcLimits, Ceiling};

    const GIB: u64 = 1 << 30;

    fn policy() -> ArcPolicy {
        ArcPolicy {
            limits: ArcLimits {
                arc_c_min: GIB,
                arc_c_max: 16 * GIB,
            },
            ceiling: Ceiling::ArcCMax,
            slack: 0,
        }
    }

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn holds_are_shared_through_the_file_and_listed_with_their_vm() {
        let d = Dir(std::env::temp_dir().join(format!("vmmresv-arcres-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(&d.0);
        let path = d.0.join("admission.ledger");
        let a = ArcReservations::open(&path).unwrap();
        let vm = d.0.join("vm.pid");
        std::fs::write(&vm, "1\n").unwrap();
        let r = a.hold(&[1; 16], 4 * GIB, &policy(), &vm).unwrap();
        assert!(matches!(r, Reservation::Reserved(_)), "{r:?}");
        // A second handle on the same file sees it, and the guard counts
        // it: 1 GiB floor + 4 + 12 > 16.
        let b = ArcReservations::open(&path).unwrap();
        assert_eq!(b.reserved_bytes(), 4 * GIB);
        let refused = b.hold(&[2; 16], 12 * GIB, &policy(), &vm).unwrap();
        assert!(matches!(refused, Reservation::Refused(_)), "{refused:?}");
        let list = b.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].vm, Some(VmState::Present));
        assert_eq!(list[0].check.as_deref(), Some(vm.as_path()));
        assert_eq!(b.target(&policy()).unwrap().target_bytes, 12 * GIB);
        // Gone and past a grace of 0: freed by reconcile.
        std::fs::remove_file(&vm).unwrap();
        let rec = b.reconcile(0).unwrap();
        assert_eq!((rec.durable.freed, rec.durable.freed_bytes), (1, 4 * GIB));
        assert_eq!(a.reserved_bytes(), 0);
        assert_eq!(a.drop_hold(&[1; 16]).unwrap(), 0);
    }
}

//! Handing a claim to another program: a launcher that forks and execs
//! bhyve (or execs it in place) passes the VM's claims on, and bhyve — which
//! links the library — adopts them and commits once its memory is
//! allocated. The claim lives while any holder lives.
//!
//! The token is text, for an environment variable
//! ([`HANDOFF_ENV`]) or an argument:
//! `vmmresv-handoff-2;pid=P;uuid=U;fd=F;hfd=H;afd=A;l=S.G,…;h=S.G,…;a=S.G,…`
//! — the holder's pid, the VM's UUID (32 hex digits), the ledger
//! descriptors (`-1` for none) made to survive exec, and each claim as
//! slot.generation in the admission ledger (`l`), the host-memory ledger
//! (`h`) and, for a hugetlb pool's handle, the host's ARC ledger (`a`:
//! `admission.ledger`, where every ARC reservation of the host is).
//!
//! After a fork the new process takes each slot's adopter lock, while the
//! launcher still holds its own: from then on either keeps the claim
//! alive. After an exec in place the process already holds its locks — if
//! the ledger descriptor survived the exec, which is what [`Admission::handoff_fds`]
//! arranges; adopting re-registers them and closes the descriptor on the
//! next exec again.

use std::os::fd::RawFd;

use super::{Admission, Result};
use crate::ledger::file::LedgerFile;
use crate::ledger::{hint, Ledger, Pool, Role, World};
use crate::status::{Error, Status};

/// The environment variable the stand-ins pass the token in.
pub const HANDOFF_ENV: &str = "VMMRESV_HANDOFF";
const PREFIX: &str = "vmmresv-handoff-2";

/// A parsed token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The process that made it.
    pub pid: u32,
    /// The VM.
    pub uuid: [u8; 16],
    /// The admission ledger's descriptor in that process.
    pub fd: RawFd,
    /// The host ledger's descriptor, or -1.
    pub host_fd: RawFd,
    /// The separate ARC ledger's descriptor, or -1.
    pub arc_fd: RawFd,
    /// Claims in the admission ledger: (slot, generation).
    pub ledger: Vec<(usize, u64)>,
    /// Claims in the host ledger.
    pub host: Vec<(usize, u64)>,
    /// Claims in the separate ARC ledger.
    pub arc: Vec<(usize, u64)>,
}

fn bad() -> Error {
    Error::new(Status::InvalidArgument)
}

fn slots(v: &[(usize, u64)]) -> String {
    v.iter()
        .map(|(s, g)| format!("{}.{}", s, g))
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_slots(s: &str) -> Result<Vec<(usize, u64)>> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|p| {
            let (a, b) = p.split_once('.').ok_or_else(bad)?;
            Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
        })
        .collect()
}

impl Token {
    /// The text form.
    pub fn render(&self) -> String {
        let hex: String = self.uuid.iter().map(|b| format!("{:02x}", b)).collect();
        format!(
            "{};pid={};uuid={};fd={};hfd={};afd={};l={};h={};a={}",
            PREFIX,
            self.pid,
            hex,
            self.fd,
            self.host_fd,
            self.arc_fd,
            slots(&self.ledger),
            slots(&self.host),
            slots(&self.arc)
        )
    }

    /// Parse the text form (strictly: every field, in order).
    pub fn parse(text: &str) -> Result<Token> {
        let mut f = text.split(';');
        if f.next() != Some(PREFIX) {
            return Err(bad());
        }
        let mut field = |name: &str| -> Result<&str> {
            let kv = f.next().ok_or_else(bad)?;
            kv.strip_prefix(name)
                .and_then(|r| r.strip_prefix('='))
                .ok_or_else(bad)
        };
        let pid = field("pid")?.parse().map_err(|_| bad())?;
        let hex = field("uuid")?;
        let fd = field("fd")?.parse().map_err(|_| bad())?;
        let host_fd = field("hfd")?.parse().map_err(|_| bad())?;
        let arc_fd = field("afd")?.parse().map_err(|_| bad())?;
        let ledger = parse_slots(field("l")?)?;
        let host = parse_slots(field("h")?)?;
        let arc = parse_slots(field("a")?)?;
        let n = ledger
            .len()
            .saturating_add(host.len())
            .saturating_add(arc.len());
        if f.next().is_some() || hex.len() != 32 || n > 8 {
            return Err(bad());
        }
        let mut uuid = [0u8; 16];
        for (b, pair) in uuid.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *b = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Token {
            pid,
            uuid,
            fd,
            host_fd,
            arc_fd,
            ledger,
            host,
            arc,
        })
    }
}

/// This process's claims for `uuid` in `l`: NotHolder if another process
/// holds one.
fn held(
    l: &Ledger<'_>,
    w: &dyn World,
    uuid: &[u8; 16],
    pools: &[Pool],
) -> Result<Vec<(usize, u64)>> {
    let mut out = Vec::new();
    for p in pools {
        if let Some(c) = l.find(uuid, hint(uuid), &[*p])? {
            if !w.mine(c.slot) {
                return Err(Error::new(Status::NotHolder));
            }
            out.push((c.slot, c.word.gen));
        }
    }
    Ok(out)
}

fn adopt_all(f: &LedgerFile, t: &Token, list: &[(usize, u64)], inherited: bool) -> Result<()> {
    let l = f.ledger();
    let w = f.world();
    // If the launcher ends the claim, this process's lock lingers on the
    // free slot: dropped at its next admission or reconcile.
    f.note_handed(list.iter().map(|(s, _)| *s));
    for (k, (slot, gen)) in list.iter().enumerate() {
        if let Err(e) = l.adopt(&w, *slot, *gen, &t.uuid, inherited) {
            // Give back what this call took (after an exec in place the
            // holder locks were ours before: keep those).
            if !inherited {
                for (s, _) in list.iter().take(k) {
                    w.unlock(*s, Role::Adopter);
                }
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Hand `list`'s slots of `f` over: let go of each slot's adopter byte
/// for the adopter to take, remember them, and keep the descriptor open
/// across exec.
fn hand_over(f: &LedgerFile, list: &[(usize, u64)]) -> Result<()> {
    let w = f.world();
    for (s, _) in list {
        w.share(*s);
    }
    f.note_handed(list.iter().map(|(s, _)| *s));
    f.keep_across_exec().map(|_| ())
}

impl Admission {
    /// The hand-off token for VM `uuid`'s claims held by this process
    /// (admission claim, ARC reservation, host-memory claim). NotFound if
    /// it holds none, NotHolder if another process holds them. Nothing
    /// changes until [`Admission::handoff_fds`].
    pub fn handoff_token(&self, uuid: &[u8; 16]) -> Result<Token> {
        let l = self.file.ledger();
        let (ledger, arc, arc_fd) = match self.separate_arc_ledger()? {
            Some(a) => (
                held(
                    &l,
                    &self.file.world(),
                    uuid,
                    &[Pool::Reservoir, Pool::Transient],
                )?,
                held(&a.ledger(), &a.world(), uuid, &[Pool::Arc])?,
                a.raw_fd(),
            ),
            None => (
                held(
                    &l,
                    &self.file.world(),
                    uuid,
                    &[Pool::Reservoir, Pool::Transient, Pool::Arc],
                )?,
                Vec::new(),
                -1,
            ),
        };
        let (host, host_fd) = match self.host_ledger_if_exists()? {
            Some(h) => (
                held(&h.ledger(), &h.world(), uuid, &[Pool::Reservoir])?,
                h.raw_fd(),
            ),
            None => (Vec::new(), -1),
        };
        if ledger.is_empty() && host.is_empty() && arc.is_empty() {
            return Err(Error::new(Status::NotFound));
        }
        Ok(Token {
            pid: std::process::id(),
            uuid: *uuid,
            fd: self.file.raw_fd(),
            host_fd: if host.is_empty() { -1 } else { host_fd },
            arc_fd: if arc.is_empty() { -1 } else { arc_fd },
            ledger,
            host,
            arc,
        })
    }

    /// Make the ledger descriptors survive an exec (for a hand-off to the
    /// program this process is about to exec, in place or after a fork).
    pub fn handoff_fds(&self, t: &Token) -> Result<()> {
        self.mark_handed_off();
        hand_over(&self.file, &t.ledger)?;
        if t.host_fd >= 0 {
            if let Some(h) = self.host_ledger_if_exists()? {
                hand_over(h, &t.host)?;
            }
        }
        if t.arc_fd >= 0 {
            if let Some(a) = self.separate_arc_ledger()? {
                hand_over(a, &t.arc)?;
            }
        }
        Ok(())
    }

    /// The token for `uuid`, with the descriptors made to survive exec.
    pub fn handoff(&self, uuid: &[u8; 16]) -> Result<String> {
        let t = self.handoff_token(uuid)?;
        self.handoff_fds(&t)?;
        Ok(t.render())
    }

    /// Become a holder of the claims a token names: after a fork (the
    /// launcher still holds them) or after an exec in place (this process
    /// held them before the exec, and they survived it only if the ledger
    /// descriptor did). NotFound if a claim is gone or nobody holds it;
    /// Busy if another process adopted it; InvalidArgument for a malformed
    /// token.
    pub fn adopt(&self, text: &str) -> Result<Token> {
        let t = Token::parse(text)?;
        self.file.check_identity()?;
        let inherited = t.pid == std::process::id();
        // After an exec in place the descriptor carries this process's
        // locks; after a fork and exec it is an inherited copy. Either way
        // it is taken over (close-on-exec again, never closed: closing it
        // would drop every lock this process holds on the file).
        if !self.file.adopt_inherited(t.fd)? && inherited {
            // The exec closed the descriptor: the locks went with it.
            return Err(Error::new(Status::NotFound));
        }
        // The ARC ledger first: a token naming ARC claims in a file this
        // process cannot see is refused before any claim is taken over.
        let arc = if t.arc.is_empty() {
            None
        } else if self.arc_path.is_some() && self.separate_arc_ledger()?.is_none() {
            return Err(Error::new(Status::NotFound));
        } else {
            Some(self.arc_ledger()?)
        };
        self.mark_handed_off();
        adopt_all(&self.file, &t, &t.ledger, inherited)?;
        if !t.host.is_empty() {
            let h = self.host_ledger()?;
            if !h.adopt_inherited(t.host_fd)? && inherited {
                return Err(Error::new(Status::NotFound));
            }
            adopt_all(h, &t, &t.host, inherited)?;
        }
        if let Some(a) = arc {
            if !a.adopt_inherited(t.arc_fd)? && inherited {
                return Err(Error::new(Status::NotFound));
            }
            adopt_all(a, &t, &t.arc, inherited)?;
        }
        Ok(t)
    }
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

    #[test]
    fn tokens_round_trip_and_refuse_garbage() {
        let t = Token {
            pid: 42,
            uuid: [0xab; 16],
            fd: 7,
            host_fd: -1,
            arc_fd: 9,
            ledger: vec![(3, 9), (100, 1)],
            host: vec![],
            arc: vec![(5, 2)],
        };
        assert_eq!(Token::parse(&t.render()).unwrap(), t);
        for bad in [
            "",
            "vmmresv-handoff-1;pid=1",
            "vmmresv-handoff-3;pid=1",
            &t.render().replace("pid=42", "pid=x"),
            &(t.render() + ";extra=1"),
            &t.render().replace("uuid=ab", "uuid=zz"),
            &t.render().replace("l=3.9", "l=3"),
        ] {
            assert_eq!(
                Token::parse(bad).unwrap_err().status(),
                Status::InvalidArgument,
                "{:?}",
                bad
            );
        }
    }
}

//! One VM start from Rust, as a launcher and bhyve make it together:
//! admit → create the VM and allocate its memory → commit.
//!
//! ```text
//! vm_start [--device PATH] [--run-dir DIR] [--keep] UUID SIZE [require|prefer|never]
//! ```
//!
//! `SIZE` is the guest's memory ("2G", "768M"); the preference defaults to
//! `prefer`. The run directory (where the shared admission ledger lives)
//! is `--run-dir`, else what the library finds (`VMMRESV_RUNDIR`, the
//! host's config file, `/var/run/vmmresv`).
//!
//! The VM is created as bhyve creates it (illumos `libvmmapi`): a
//! `VMM_CREATE_VM` on `/dev/vmmctl`, with `VCF_RESERVOIR_MEM` when the
//! decision is to use the reservoir, then `VM_ALLOC_MEMSEG` of the guest's
//! memory on `/dev/vmm/<UUID>`. The kernel takes the memory at that
//! allocation, so the claim is committed only after it; a refused
//! allocation aborts the claim. Without `--keep` the VM is destroyed again
//! at the end, as bhyve does when its guest stops; with it the VM keeps its
//! memory, and the next start sees less free reservoir.
//!
//! Exit status: 0 the VM started, 3 admission refused it, 1 an error, 2
//! usage. Linux CI runs it against the `/dev/vmmctl` emulator
//! (`make examples`).

// The VM's creation is two raw ioctls on the vmm devices: bhyve's part,
// not the library's.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

use vmmresv::admission::{self, Admission, Decision, Preference, Verdict};
use vmmresv::pages::{self, format_size, PAGESIZE};
use vmmresv::sys::{self, vm_create_req, VCF_RESERVOIR_MEM, VMM_CREATE_VM, VM_MAX_NAMELEN};
use vmmresv::{Reservoir, ReservoirQuery};
use zerocopy::IntoBytes;

/// illumos `sys/vmm_dev.h`: the base of the ioctls that lock the whole VM,
/// `('v' << 16) | ('l' << 8)`.
const VMM_LOCK_IOC_BASE: i32 = i32::from_be_bytes([0, b'v', b'l', 0]);
/// Allocate a memory segment of the VM (`struct vm_memseg`).
const VM_ALLOC_MEMSEG: i32 = VMM_LOCK_IOC_BASE | 0x05;
/// Destroy the VM through its own device.
const VM_DESTROY_SELF: i32 = sys::VMM_IOC_BASE | 0x25;
/// The guest's system memory segment (`sys/vmm.h` `VM_SYSMEM`).
const VM_SYSMEM: i32 = 0;

/// `struct vm_memseg` (LP64: 144 bytes).
#[repr(C)]
struct VmMemseg {
    segid: i32,
    len: usize,
    name: [u8; 128],
}
const _: () = assert!(std::mem::size_of::<VmMemseg>() == 144);

const EXIT_REFUSED: u8 = 3;
const USAGE: &str =
    "usage: vm_start [--device PATH] [--run-dir DIR] [--keep] UUID SIZE [require|prefer|never]";

struct Args {
    device: PathBuf,
    run_dir: Option<PathBuf>,
    keep: bool,
    name: String,
    uuid: [u8; 16],
    bytes: u64,
    pref: Preference,
}

fn parse_args() -> Result<Args, String> {
    let mut device = PathBuf::from(sys::VMM_CTL_DEV);
    let mut run_dir = None;
    let mut keep = false;
    let mut rest = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--device" => device = it.next().ok_or(USAGE)?.into(),
            "--run-dir" => run_dir = Some(it.next().ok_or(USAGE)?.into()),
            "--keep" => keep = true,
            _ => rest.push(a),
        }
    }
    let (name, size, pref) = match rest.as_slice() {
        [u, s] => (u, s, "prefer"),
        [u, s, p] => (u, s, p.as_str()),
        _ => return Err(USAGE.into()),
    };
    let uuid = admission::parse_uuid(name).map_err(|e| format!("{name}: {e}"))?;
    let bytes = pages::parse_size(size, None).map_err(|e| format!("{size}: {e}"))?;
    let pref = match pref {
        "require" => Preference::Require,
        "prefer" => Preference::Prefer,
        "never" => Preference::Never,
        _ => return Err(USAGE.into()),
    };
    Ok(Args {
        device,
        run_dir,
        keep,
        name: name.to_ascii_lowercase(),
        uuid,
        bytes,
        pref,
    })
}

fn show(label: &str, q: &ReservoirQuery) {
    println!(
        "{label}: reservoir free {} alloc {} transient {} limit {}",
        format_size(q.free),
        format_size(q.alloc),
        format_size(q.alloc_transient),
        format_size(q.limit)
    );
}

fn print_verdict(v: &Verdict) {
    println!(
        "decision {:?}, reason {:?}: charged {}, shortfall {}, free {}, pending {}",
        v.decision,
        v.reason,
        format_size(v.charged_bytes),
        format_size(v.shortfall_bytes),
        format_size(v.free_bytes),
        format_size(v.pending_bytes)
    );
}

/// What bhyve does with the decision: create the VM (with reservoir
/// memory or not) and allocate its memory. Returns the VM's own device,
/// or the errno and which step failed.
fn create_vm(
    device: &std::path::Path,
    name: &str,
    reservoir: bool,
    bytes: u64,
) -> Result<File, (&'static str, i32)> {
    let os_err = |step, e: std::io::Error| (step, e.raw_os_error().unwrap_or(libc::EIO));
    let mut req = vm_create_req {
        name: [0; VM_MAX_NAMELEN],
        flags: if reservoir { VCF_RESERVOIR_MEM } else { 0 },
    };
    // A UUID's 36 bytes fit the 128 of the name with its NUL.
    for (d, s) in req.name.iter_mut().zip(name.bytes()) {
        *d = s;
    }
    // libvmmapi vm_create(): the control device is opened for this one ioctl.
    let ctl = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_EXCL)
        .open(device)
        .map_err(|e| os_err("open the vmm control device", e))?;
    // SAFETY: `req` is a live `struct vm_create_req` for the whole call,
    // which the kernel only reads.
    unsafe {
        sys::ioctl(
            ctl.as_fd(),
            VMM_CREATE_VM,
            req.as_mut_bytes().as_mut_ptr().cast(),
        )
    }
    .map_err(|e| ("VMM_CREATE_VM", e))?;
    drop(ctl);

    let vm = OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/dev/vmm/{name}"))
        .map_err(|e| os_err("open the VM's device", e))?;
    let len = pages::round_up(bytes, PAGESIZE)
        .ok()
        .and_then(|b| usize::try_from(b).ok())
        .ok_or(("VM_ALLOC_MEMSEG", libc::EINVAL))?;
    let mut seg = VmMemseg {
        segid: VM_SYSMEM,
        len,
        name: [0; 128],
    };
    // SAFETY: `seg` is a live `struct vm_memseg` for the whole call.
    let alloc = unsafe {
        sys::ioctl(
            vm.as_fd(),
            VM_ALLOC_MEMSEG,
            std::ptr::from_mut(&mut seg).cast(),
        )
    };
    if let Err(e) = alloc {
        destroy_vm(&vm);
        return Err(("VM_ALLOC_MEMSEG", e));
    }
    Ok(vm)
}

fn destroy_vm(vm: &File) {
    // SAFETY: VM_DESTROY_SELF takes no argument.
    if let Err(e) = unsafe { sys::ioctl(vm.as_fd(), VM_DESTROY_SELF, std::ptr::null_mut()) } {
        eprintln!(
            "vm_start: VM_DESTROY_SELF: {}",
            std::io::Error::from_raw_os_error(e)
        );
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vm_start: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<ExitCode, String> {
    // The launcher's part: open the reservoir and the shared ledger.
    let reservoir = Reservoir::open_at(&args.device, args.run_dir.as_deref())
        .map_err(|e| format!("{}: {e}", args.device.display()))?;
    let adm = Admission::open(reservoir, None).map_err(|e| format!("admission ledger: {e}"))?;
    println!(
        "ledger {} ({})",
        adm.ledger_path().display(),
        adm.ledger_origin().name()
    );
    show("before", &adm.query().map_err(|e| format!("query: {e}"))?);

    // Admit: a claim on the memory, held until commit or abort.
    let v = adm
        .admit(&args.uuid, args.bytes, args.pref)
        .map_err(|e| format!("admit: {e}"))?;
    print_verdict(&v);
    let reservoir = match v.decision {
        Decision::Refuse => {
            println!("VM {} not started", args.name);
            return Ok(ExitCode::from(EXIT_REFUSED));
        }
        Decision::UseReservoir => true,
        Decision::NoReservoir => false,
    };

    // bhyve's part: create the VM and allocate its memory.
    let vm = match create_vm(&args.device, &args.name, reservoir, args.bytes) {
        Ok(vm) => vm,
        Err((step, errno)) => {
            // No memory for this VM after all: give the claim back.
            if let Err(e) = adm.abort(&args.uuid) {
                eprintln!("vm_start: abort: {e}");
            }
            let why = std::io::Error::from_raw_os_error(errno);
            return Err(format!("{step}: {why}; claim aborted"));
        }
    };
    // The kernel accounts the memory now: the claim has done its job.
    let held = adm.commit(&args.uuid).map_err(|e| format!("commit: {e}"))?;
    println!(
        "VM {} started {} the reservoir; committed {}",
        args.name,
        if reservoir { "with" } else { "without" },
        format_size(held)
    );
    show("after", &adm.query().map_err(|e| format!("query: {e}"))?);

    if !args.keep {
        destroy_vm(&vm);
        println!("VM {} stopped and destroyed", args.name);
    }
    Ok(ExitCode::SUCCESS)
}

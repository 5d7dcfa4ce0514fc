//! Resize the VMM reservoir from Rust, in chunks, with progress.
//!
//! ```text
//! resize [--device PATH] [--run-dir DIR] TARGET [CHUNK]
//! ```
//!
//! `TARGET` is a size ("12G") or a percentage of the kernel's limit
//! ("75%", RFD 185's boot-time default); `CHUNK` defaults to 1G (0: one
//! step). Resizing needs the `sys_config` privilege. Resizes through the
//! library serialize on the lock file in the run directory (`--run-dir`,
//! else what the library finds: `VMMRESV_RUNDIR`, the host's config file,
//! `/var/run/vmmresv`).
//!
//! The kernel grows or shrinks the reservoir a chunk at a time and stops
//! early when a signal arrives (EINTR), reporting the size it reached. The
//! library then calls the progress closure with that size and the target,
//! and resumes unless the closure answers [`Progress::Cancel`]. Against
//! the `/dev/vmmctl` emulator, `VMMEMU_EINTR_AFTER_CHUNKS=N` plays that
//! signal after every N chunks (`make examples` does).
//!
//! Exit status: 0 the target was reached, 1 it was not (the size reached is
//! printed), 2 usage.

use std::path::PathBuf;
use std::process::ExitCode;

use vmmresv::pages::{self, format_size};
use vmmresv::{Progress, Reservoir};

const USAGE: &str = "usage: resize [--device PATH] [--run-dir DIR] TARGET [CHUNK]";

struct Args {
    device: PathBuf,
    run_dir: Option<PathBuf>,
    target: String,
    chunk: String,
}

fn parse_args() -> Option<Args> {
    let mut device = PathBuf::from(vmmresv::sys::VMM_CTL_DEV);
    let mut run_dir = None;
    let mut rest = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--device" => device = it.next()?.into(),
            "--run-dir" => run_dir = Some(it.next()?.into()),
            _ => rest.push(a),
        }
    }
    let (target, chunk) = match rest.as_slice() {
        [t] => (t.clone(), "1G".to_string()),
        [t, c] => (t.clone(), c.clone()),
        _ => return None,
    };
    Some(Args {
        device,
        run_dir,
        target,
        chunk,
    })
}

fn main() -> ExitCode {
    let Some(args) = parse_args() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("resize: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let r = Reservoir::open_at(&args.device, args.run_dir.as_deref())
        .map_err(|e| format!("{}: {e}", args.device.display()))?;
    let q = r.query().map_err(|e| format!("query: {e}"))?;
    println!(
        "reservoir {} (free {}), limit {}",
        format_size(q.size()),
        format_size(q.free),
        format_size(q.limit)
    );

    // A percentage is of the kernel's limit; the kernel wants whole pages,
    // and whole chunks keep the last step from being a sliver.
    let chunk = pages::parse_size(&args.chunk, None).map_err(|e| format!("{}: {e}", args.chunk))?;
    let asked = pages::parse_size(&args.target, Some(q.limit))
        .map_err(|e| format!("{}: {e}", args.target))?;
    let align = if chunk == 0 { pages::PAGESIZE } else { chunk };
    let target = pages::round_down(asked, align).map_err(|e| format!("{}: {e}", args.chunk))?;
    println!(
        "resizing to {} in chunks of {}",
        format_size(target),
        if chunk == 0 {
            "one step".to_string()
        } else {
            format_size(chunk)
        }
    );

    let mut stops = 0u32;
    let mut progress = |reached: u64, target: u64| {
        stops = stops.saturating_add(1);
        println!(
            "progress: {} of {} (interrupted, resuming)",
            format_size(reached),
            format_size(target)
        );
        // Progress::Cancel here would stop the resize where it stands.
        Progress::Continue
    };
    match r.set_target(target, chunk, Some(&mut progress)) {
        Ok(reached) => {
            println!(
                "reached {} after {stops} interruption(s)",
                format_size(reached)
            );
            Ok(())
        }
        // The error says where the reservoir stands: what is done stays done.
        Err(e) => Err(format!("resize to {}: {e}", format_size(target))),
    }
}

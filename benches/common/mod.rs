//! What the benchmarks share (included by benches/ledger.rs and
//! benches/admission.rs as `mod common;`): where the tree and criterion's
//! output are, the quick mode and rounds, and reading criterion's samples
//! back for the ratios.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// The repository (the crate's manifest directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The dynamic linker's last error message.
pub fn dlerror() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated message.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: non-null and NUL-terminated, read before any other dl call.
        unsafe { std::ffi::CStr::from_ptr(e) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Where criterion writes its data (its own rule, short of asking `cargo
/// metadata`: a `build.target-dir` in a cargo config is not seen).
pub fn criterion_home() -> PathBuf {
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(h);
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t).join("criterion");
    }
    root().join("target/criterion")
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The array of numbers under `"key":[...]` in criterion's compact JSON.
pub fn json_numbers(json: &str, key: &str) -> Option<Vec<f64>> {
    let tag = format!("\"{key}\":[");
    let start = json.find(&tag)? + tag.len();
    let end = start + json[start..].find(']')?;
    json[start..end]
        .split(',')
        .map(|v| v.trim().parse().ok())
        .collect()
}

/// Benchmark `id`'s median time per iteration in ns — the median of its
/// samples' means, criterion's own `median` estimate — from criterion's
/// raw samples (`<id>/new/sample.json`: iteration counts and total times),
/// if it was measured at or after `since`.
pub fn median_ns(id: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_home().join(id).join("new/sample.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let json = std::fs::read_to_string(&path).ok()?;
    let iters = json_numbers(&json, "iters")?;
    let times = json_numbers(&json, "times")?;
    if iters.is_empty() || iters.len() != times.len() {
        return None;
    }
    let mut per: Vec<f64> = times.iter().zip(&iters).map(|(t, n)| t / n).collect();
    Some(median(&mut per))
}

/// `VMMRESV_BENCH_QUICK=1`: one short round (CI).
pub fn quick() -> bool {
    std::env::var("VMMRESV_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Whether criterion will measure (not `cargo test`'s one-shot run or a
/// listing), so that there are samples to compute ratios from.
pub fn measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let has = |a: &str| args.iter().any(|x| x == a);
    has("--bench") && !has("--test") && !has("--list") && !has("--profile-time")
}

/// How many times the whole suite runs: `VMMRESV_BENCH_ROUNDS`, else 1 in
/// quick mode and 3 otherwise. Each round measures every subject close in
/// time to its baselines; the median over rounds discards a round that a
/// burst of other work on the machine distorted.
pub fn rounds() -> usize {
    if !measuring() {
        return 1;
    }
    std::env::var("VMMRESV_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(if quick() { 1 } else { 3 })
}

/// Now, rounded down to whole seconds (some filesystems keep no finer
/// mtimes), so that only samples written from here on count.
pub fn now_floor() -> SystemTime {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// The cells right-aligned in columns of `width`, one space apart.
pub fn fmt_row(cells: &[String], width: usize) -> String {
    cells
        .iter()
        .map(|c| format!("{c:>width$}"))
        .collect::<Vec<_>>()
        .join(" ")
}

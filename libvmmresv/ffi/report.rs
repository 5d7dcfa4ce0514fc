//! C ABI: report.

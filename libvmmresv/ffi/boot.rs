//! C ABI: boot.

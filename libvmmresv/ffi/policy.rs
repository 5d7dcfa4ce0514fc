//! C ABI: policy.

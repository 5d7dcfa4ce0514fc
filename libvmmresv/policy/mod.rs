//! Policy from the source documents (pure functions, no I/O).

//! The boot-time reservoir setting (RFD 185).

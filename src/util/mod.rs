//! Small helpers shared by every layer.

pub mod pii;

//! Small helpers shared by every layer.

pub mod hex;
pub mod idmap;
pub mod pii;
pub mod post;
pub mod seed;
pub mod time;
pub mod toml_where;

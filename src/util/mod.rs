//! Small helpers shared by every layer. They use nothing else of the crate: util
//! sits below every layer, so none of them can form a cycle through it.

pub mod hex;
pub mod hmac;
pub mod idmap;
pub mod pii;
pub mod post;
pub mod seed;
pub mod time;
pub mod toml_where;

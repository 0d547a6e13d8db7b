//! The two sides of a B2BUA call.

/// Which side of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller: the leg the gateway answers as a UAS.
    A,
    /// The callee: the leg the gateway places as a UAC.
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

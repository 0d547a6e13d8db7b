//! Registrar: REGISTER with digest authentication (being built; see issue 3).

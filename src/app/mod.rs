//! What each binary is made of: the one place the adapters are wired together, and how a binary
//! that could not start says why and exits.

pub mod exit;
pub mod wiring;

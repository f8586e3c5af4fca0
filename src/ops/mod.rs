//! Operators' commands: `make replay` sends the notifier's dead letters back through it.

pub mod replay;

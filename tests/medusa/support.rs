//! What the tests beside a real Medusa use of `tests/support`. Each binary includes only the files
//! its tests use, so that nothing in them is dead code there.

#[path = "../support/mod.rs"]
mod shared;
pub use shared::*;
#[path = "../support/update.rs"]
mod update;

#[path = "../support/local_runner.rs"]
pub mod local_runner;
#[path = "../support/medusa.rs"]
pub mod medusa;

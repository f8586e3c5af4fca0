//! What the functions tell their operators: logs (one line per request or event), X-Ray traces
//! carried across the bus, and CloudWatch metrics as EMF documents.

pub mod logs;
pub mod metrics;
pub mod trace;

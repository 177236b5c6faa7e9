//! One conformance suite per port, run against every backend: [`store`] for `Store`
//! (SQLite, PostgreSQL) and [`queue`] for `JobQueue` (SQLite, Redis).

pub mod queue;
pub mod store;

pub use store::{DynStore, owner};

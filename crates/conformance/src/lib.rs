//! One conformance suite per port, run against every backend: [`store`] for `Store`
//! (SQLite, PostgreSQL), [`queue`] for `JobQueue` (SQLite, Redis) and [`checkpoint`] for
//! `Checkpointer` (memory, SQLite, PostgreSQL) [`memory`] for `Memory` and [`usage`] for `UsageLedger` (SQLite, PostgreSQL).

pub mod checkpoint;
pub mod memory;
pub mod queue;
pub mod store;
pub mod usage;

pub use store::{DynStore, owner, two_tenants};
